package cli

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
)

// nodeExport writes nodes in ironpool's own node file format, the one
// `node import` reads: inventory can move between servers or be kept in a
// repository. BMC passwords are included for admins (each node is read with
// reveal); for any other token they are left out, and stderr says so.
func (a *app) nodeExport() *cobra.Command {
	q := map[string]*string{"pool": new(string), "state": new(string), "owner": new(string), "flavor": new(string)}
	var noSecrets bool
	c := &cobra.Command{
		Use:   "export [--pool P] [--state S] [--no-secrets] [-o yaml|json]",
		Short: "Write nodes as a node file that `node import` takes back (passwords for admins only)",
		Example: `  ironpool node export > nodes.yaml          # every node, with BMC passwords (admin token)
  ironpool node export --pool ci -o json > ci.json
  ironpool --url https://other:8650 node import nodes.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := nodeQuery(q)
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			nodes, err := cl.ListNodes(ctx, v)
			if err != nil {
				return err
			}
			out := struct {
				Nodes []fileNode `yaml:"nodes" json:"nodes"`
			}{Nodes: []fileNode{}}
			reveal := !noSecrets
			for _, n := range nodes {
				if reveal && n.BMC.Password != "" {
					var full ironpool.Node
					_, err := cl.Do(ctx, "GET", "/v1/nodes/"+url.PathEscape(n.Name)+"?reveal=true", nil, &full)
					switch ironpool.ErrorCode(err) {
					case "":
						n = &full
					case ironpool.EFORBIDDEN:
						fmt.Fprintln(a.env.Stderr, "ironpool: BMC passwords left out: only an admin token may export them")
						reveal = false
					default:
						return err
					}
				}
				f := toFileNode(n)
				if !reveal || f.BMC.Password == ironpool.MaskedSecret {
					f.BMC.Password = ""
				}
				out.Nodes = append(out.Nodes, f)
			}
			if a.output == "json" {
				enc := json.NewEncoder(a.env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			enc := yaml.NewEncoder(a.env.Stdout)
			enc.SetIndent(2)
			return enc.Encode(out)
		},
	}
	for k, p := range q {
		c.Flags().StringVar(p, k, "", "only nodes with this "+k)
	}
	c.Flags().BoolVar(&noSecrets, "no-secrets", false, "leave BMC passwords out even for an admin")
	return withFormats(c, "table", "yaml", "json")
}
