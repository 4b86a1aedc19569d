package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
)

// ironicCmd is `ironpool ironic …`: operations on the Ironic behind the pool.
func (a *app) ironicCmd() *cobra.Command {
	c := &cobra.Command{Use: "ironic", Short: "The Ironic behind the pool: sync"}
	var includeIgnored bool
	syncCmd := &cobra.Command{
		Use:   "sync",
		Short: "Import Ironic's nodes into the pool and refresh the ones it has, now (nodes deleted from the pool stay out unless --include-ignored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r ironpool.SyncResult
			path := "/v1/ironic/sync"
			if includeIgnored {
				path += "?include_ignored=true"
			}
			if err := a.call(cmd.Context(), "POST", path, nil, &r); err != nil {
				return err
			}
			return a.print(&r, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "ironic\t%s\n", r.Endpoint)
				fmt.Fprintf(w, "seen\t%d\n", r.Seen)
				fmt.Fprintf(w, "imported\t%d\t%s\n", len(r.Imported), strings.Join(r.Imported, ","))
				fmt.Fprintf(w, "updated\t%d\t%s\n", len(r.Updated), strings.Join(r.Updated, ","))
				fmt.Fprintf(w, "unchanged\t%d\n", r.Unchanged)
				fmt.Fprintf(w, "foreign (active, see `node manageable`)\t%d\n", r.Foreign)
				if len(r.Missing) > 0 {
					fmt.Fprintf(w, "missing from Ironic\t%d\t%s\n", len(r.Missing), strings.Join(r.Missing, ","))
				}
				for _, s := range r.Skipped {
					fmt.Fprintf(w, "skipped\t%s\n", s)
				}
				if len(r.Ignored) > 0 {
					fmt.Fprintf(w, "ignored (deleted from the pool; --include-ignored)\t%d\t%s\n", len(r.Ignored), strings.Join(r.Ignored, ","))
				}
				for _, e := range r.Endpoints {
					fmt.Fprintf(w, "endpoint %s\tseen %d, imported %d, updated %d%s\n", e.Endpoint, e.Seen, len(e.Imported), len(e.Updated), errNote(e.Error))
				}
			})
		},
	}
	syncCmd.Flags().BoolVar(&includeIgnored, "include-ignored", false, "also import Ironic nodes that were deleted from the pool")
	c.AddCommand(syncCmd)
	return c
}

// errNote is ", error: MSG" for a non-empty message.
func errNote(msg string) string {
	if msg == "" {
		return ""
	}
	return ", error: " + msg
}

// manageableColumns are the columns of `node manageable`.
var manageableColumns = []string{"ironic_uuid", "name", "resource_class", "cpus", "memory_mb", "provision_state"}

// ironicNodeCmds are the node verbs that go through Ironic only; power
// and inspect, which also work without it, are in bmc.go.
func (a *app) ironicNodeCmds() []*cobra.Command {
	nodeVerb := func(use, short, path string) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var n ironpool.Node
				if err := a.call(cmd.Context(), "POST", "/v1/nodes/"+url.PathEscape(args[0])+"/"+path, nil, &n); err != nil {
					return err
				}
				return a.printNode(&n)
			},
		}
	}
	manageable := &cobra.Command{
		Use:   "manageable",
		Short: "List Ironic nodes ironpool could adopt (active, no instance, a resource class, not in the pool)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Nodes []*ironpool.Node `json:"nodes"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/ironic/manageable", nil, &out); err != nil {
				return err
			}
			t := Table{Columns: manageableColumns}
			for _, n := range out.Nodes {
				t.Rows = append(t.Rows, []string{n.IronicUUID, n.Name, n.ResourceClass, itoa(n.CPUs), i64(n.MemoryMB), n.ProvisionState})
			}
			return a.render(a.env.Stdout, &out, t)
		},
	}
	withColumns(manageable, manageableColumns)
	var owner, name, ttl, lease string
	adopt := &cobra.Command{
		Use:   "adopt IRONIC_UUID --owner OWNER [--name NAME] [--ttl D | --lease none]",
		Short: "Take an active (or, through Ironic's adopt verb, a manageable) Ironic node into the pool, held by OWNER (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if owner == "" {
				return usagef("--owner is required")
			}
			if lease != "" && lease != "none" {
				return ironpool.FieldErrorf("lease", "%q is not a lease kind (want none, or give --ttl)", lease)
			}
			if lease != "" && ttl != "" {
				return ironpool.FieldErrorf("lease", "none cannot be combined with --ttl")
			}
			if _, err := ironpool.ParseDuration("ttl", ttl); err != nil {
				return err
			}
			var al ironpool.Allocation
			body := map[string]string{"ironic_uuid": args[0], "owner": owner, "name": name, "ttl": ttl, "lease": lease}
			if err := a.call(cmd.Context(), "POST", "/v1/ironic/adopt", body, &al); err != nil {
				return err
			}
			return a.printAllocation(&al)
		},
	}
	adopt.Flags().StringVar(&owner, "owner", "", "owner the node is allocated to")
	adopt.Flags().StringVar(&name, "name", "", "pool name of the node (default: its Ironic name)")
	adopt.Flags().StringVar(&ttl, "ttl", "", "lease of the new allocation (default: the server's default TTL)")
	adopt.Flags().StringVar(&lease, "lease", "", "none: the adoption never expires (a production workload stays until released)")
	return []*cobra.Command{
		nodeVerb("register", "Enroll a pool node into Ironic (driver from the BMC URL, one port per MAC) and make it available there", "register"),
		nodeVerb("unregister", "Delete a node from Ironic (refused while allocated or deployed); it stays in the pool", "unregister"),
		manageable, adopt,
	}
}

// deployCmds are `deploy` and `undeploy`.
func (a *app) deployCmds() []*cobra.Command {
	var image, checksum, configDrive, timeout string
	var wait bool
	deploy := &cobra.Command{
		Use:   "deploy ALLOCATION --image URL --checksum SHA256 [--config-drive FILE] [--wait] [--timeout D]",
		Short: "Deploy an image to every node of an allocation through Ironic",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if image == "" {
				return usagef("--image is required")
			}
			body := map[string]string{"image": image, "checksum": checksum, "timeout": timeout}
			if configDrive != "" {
				b, err := os.ReadFile(configDrive)
				if err != nil {
					return ironpool.FieldErrorf("config-drive", "cannot read: %v", err)
				}
				body["config_drive"] = string(b)
			}
			return a.driveAllocation(cmd.Context(), args[0], "deploy", body, wait, timeout)
		},
	}
	f := deploy.Flags()
	f.StringVar(&image, "image", "", "image URL (http(s)://, file://)")
	f.StringVar(&checksum, "checksum", "", "image checksum: SHA-256 hex, or ALGO:HEX")
	f.StringVar(&configDrive, "config-drive", "", "file with a config drive (JSON meta_data/user_data/network_data, or a base64 gzipped ISO)")
	f.BoolVar(&wait, "wait", false, "wait until every node is deployed or failed, showing progress")
	f.StringVar(&timeout, "timeout", "30m", "how long one node may take (and --wait waits)")
	var uwait bool
	var utimeout string
	undeploy := &cobra.Command{
		Use:   "undeploy ALLOCATION [--wait] [--timeout D]",
		Short: "Undeploy every node of an allocation (Ironic tears down and cleans); they stay allocated",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.driveAllocation(cmd.Context(), args[0], "undeploy", nil, uwait, utimeout)
		},
	}
	undeploy.Flags().BoolVar(&uwait, "wait", true, "wait until every node is undeployed or failed, showing progress")
	undeploy.Flags().StringVar(&utimeout, "timeout", "30m", "how long --wait waits")
	return []*cobra.Command{deploy, undeploy}
}

// driveAllocation starts a deploy or undeploy and, with wait, polls the
// allocation until every node has settled. On a terminal it redraws one
// progress line; otherwise it prints one line per node state change, which
// is what logs and CI want. A failed node makes the command fail with
// Ironic's last_error for each.
func (a *app) driveAllocation(ctx context.Context, id, verb string, body any, wait bool, timeout string) error {
	to, err := ironpool.ParseDuration("timeout", timeout)
	if err != nil {
		return err
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	var al ironpool.Allocation
	if _, err := cl.Do(ctx, "POST", "/v1/allocations/"+url.PathEscape(id)+"/"+verb, body, &al); err != nil {
		return err
	}
	if !wait {
		return a.printAllocation(&al)
	}
	target := ironpool.NodeDeployed
	if verb == "undeploy" {
		target = ironpool.NodeAllocated
	}
	tty := false
	if f, ok := a.env.Stdout.(*os.File); ok && a.output == "table" {
		tty = isatty.IsTerminal(f.Fd())
	}
	seen := map[string]string{}
	deadline := time.Now().Add(to)
	for {
		ok, failed := 0, 0
		for _, n := range al.Nodes {
			line := string(n.State)
			switch {
			case n.State == target && n.LastError == "":
				ok++
			case n.LastError != "":
				failed++
				line = "failed: " + n.LastError
			}
			if seen[n.Name] != line && !tty && a.output == "table" {
				fmt.Fprintf(a.env.Stdout, "%s %s: %s\n", time.Now().Format("15:04:05"), n.Name, line)
			}
			seen[n.Name] = line
		}
		if tty {
			fmt.Fprintf(a.env.Stdout, "\r%s %s: %s %d/%d, failed %d ", verb, id, progressBar(ok+failed, len(al.Nodes)), ok, len(al.Nodes), failed)
		}
		if ok+failed == len(al.Nodes) {
			if tty {
				fmt.Fprintln(a.env.Stdout)
			}
			if a.output != "table" {
				if err := a.print(&al, nil); err != nil {
					return err
				}
			}
			if failed > 0 {
				var msgs []string
				for _, n := range al.Nodes {
					if n.LastError != "" {
						msgs = append(msgs, n.Name+": "+n.LastError)
					}
				}
				return ironpool.Errorf(ironpool.ECONFLICT, "%s failed on %d of %d nodes: %s", verb, failed, len(al.Nodes), strings.Join(msgs, "; "))
			}
			if a.output == "table" {
				fmt.Fprintf(a.env.Stdout, "%sed %d nodes of allocation %s\n", verb, ok, id)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return ironpool.Errorf(ironpool.ETIMEOUT, "%s of allocation %s: %d of %d nodes done after %s", verb, id, ok+failed, len(al.Nodes), to)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := cl.Do(ctx, "GET", "/v1/allocations/"+url.PathEscape(id), nil, &al); err != nil {
			return err
		}
	}
}

func progressBar(done, total int) string {
	const width = 30
	if total == 0 {
		return "[" + strings.Repeat("=", width) + "]"
	}
	k := done * width / total
	return "[" + strings.Repeat("=", k) + strings.Repeat(" ", width-k) + "]"
}
