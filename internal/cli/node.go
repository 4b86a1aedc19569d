package cli

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
)

func (a *app) nodeCmd() *cobra.Command {
	c := &cobra.Command{Use: "node", Short: "Inventory: add, import, list, show, get/set fields, delete, maintenance"}
	c.AddCommand(withColumns(a.nodeAdd(), nodeColumns), a.nodeImport(), a.nodeExport(), a.nodeList(),
		withColumns(a.nodeShow(), nodeColumns), a.nodeGet(), withColumns(a.nodeSet(), nodeColumns),
		a.nodeDelete(), withColumns(a.nodeMaintenance(), nodeColumns))
	c.AddCommand(a.ironicNodeCmds()...)
	c.AddCommand(a.bmcNodeCmds()...)
	return c
}

func (a *app) nodeAdd() *cobra.Command {
	n := &ironpool.Node{}
	var pwFile string
	var fields []string
	c := &cobra.Command{
		Use:   "add NAME --bmc URL [flags]",
		Short: "Add one node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n.Name = args[0]
			if pwFile != "" {
				b, err := os.ReadFile(pwFile)
				if err != nil {
					return ironpool.FieldErrorf("bmc-password-file", "cannot read: %v", err)
				}
				n.BMC.Password = strings.TrimRight(string(b), "\r\n")
			} else if p := a.env.Getenv("IRONPOOL_BMC_PASSWORD"); p != "" {
				n.BMC.Password = p
			}
			var err error
			if n.Fields, err = kv("field", fields); err != nil {
				return err
			}
			nodeDefaults(n)
			cl, err := a.client()
			if err != nil {
				return err
			}
			out, err := cl.CreateNode(cmd.Context(), n)
			if err != nil {
				return err
			}
			return a.printNode(out)
		},
	}
	f := c.Flags()
	f.StringVar(&n.BMC.Address, "bmc", "", "BMC address URL: ipmi://host[:port], redfish+https://host/redfish/v1/Systems/1")
	f.StringVar(&n.BMC.Username, "bmc-user", "", "BMC username")
	f.StringVar(&pwFile, "bmc-password-file", "", "file holding the BMC password (or env IRONPOOL_BMC_PASSWORD)")
	f.StringSliceVar(&n.MACs, "mac", nil, "MAC address of a NIC (repeatable)")
	f.IntVar(&n.CPUs, "cpus", 0, "CPU count")
	f.Int64Var(&n.MemoryMB, "memory-mb", 0, "memory in MiB")
	f.Int64Var(&n.LocalGB, "local-gb", 0, "local disk in GiB")
	f.StringVar(&n.CPUArch, "arch", "", "CPU architecture (default "+DefaultCPUArch+", the same as node import)")
	f.StringVar(&n.ResourceClass, "resource-class", "", "resource class")
	f.StringSliceVar(&n.Traits, "trait", nil, "trait, e.g. CUSTOM_GPU (repeatable)")
	f.StringVar(&n.Pool, "pool", "", "pool (default \"default\")")
	f.StringArrayVar(&fields, "field", nil, "free-form field KEY=VALUE (repeatable)")
	return c
}

func (a *app) nodeImport() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Add many nodes from YAML or JSON (ironpool's format or `openstack baremetal create`'s), all or none",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = readAllLimited(a.env.Stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return ironpool.FieldErrorf("file", "cannot read: %v", err)
			}
			nodes, err := ParseNodeFile(data)
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			out, err := cl.ImportNodes(cmd.Context(), nodes)
			if err != nil {
				return err
			}
			if a.output != "table" {
				return a.print(map[string]any{"nodes": out}, nil)
			}
			fmt.Fprintf(a.env.Stdout, "imported %d nodes\n", len(out))
			return nil
		},
	}
}

// nodeQuery turns the list filters given as flags into the query of
// GET /v1/nodes, checking the state before anything is sent.
func nodeQuery(q map[string]*string) (url.Values, error) {
	if s := *q["state"]; s != "" {
		if err := ironpool.NodeState(s).Check("state"); err != nil {
			return nil, err
		}
	}
	v := url.Values{}
	for k, p := range q {
		if *p != "" {
			v.Set(k, *p)
		}
	}
	return v, nil
}

func (a *app) nodeList() *cobra.Command {
	q := map[string]*string{"pool": new(string), "state": new(string), "owner": new(string), "flavor": new(string), "allocation": new(string)}
	c := &cobra.Command{
		Use:   "list",
		Short: "List nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := nodeQuery(q)
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			nodes, err := cl.ListNodes(cmd.Context(), v)
			if err != nil {
				return err
			}
			t := Table{Columns: nodeListColumns}
			for _, n := range nodes {
				t.Rows = append(t.Rows, []string{n.Name, n.Pool, string(n.State), itoa(n.CPUs), i64(n.MemoryMB), i64(n.LocalGB), n.CPUArch, n.Owner, n.BMC.Address})
			}
			return a.render(a.env.Stdout, map[string]any{"nodes": nodes}, t)
		},
	}
	for k, p := range q {
		c.Flags().StringVar(p, k, "", "only nodes with this "+k)
	}
	return withColumns(c, nodeListColumns)
}

// nodeListColumns are the columns of `node list`.
var nodeListColumns = []string{"name", "pool", "state", "cpus", "memory_mb", "local_gb", "arch", "owner", "bmc"}

// nodeColumns are the fields `node show` (and add, set, maintenance) prints.
var nodeColumns = []string{"name", "uuid", "pool", "state", "maintenance_reason", "last_error", "cpus", "memory_mb", "local_gb",
	"cpu_arch", "resource_class", "traits", "macs", "bmc.address", "bmc.username", "bmc.password", "owner", "allocation_id",
	"ironic_uuid", "provision_state", "power_state", "pending", "fields.*"}

func (a *app) printNode(n *ironpool.Node) error {
	t := Table{Record: true, Rows: [][]string{{}}}
	row := func(k string, v any) {
		t.Columns = append(t.Columns, k)
		t.Rows[0] = append(t.Rows[0], fmt.Sprint(v))
	}
	{
		row("name", n.Name)
		row("uuid", n.UUID)
		row("pool", n.Pool)
		row("state", n.State)
		if n.MaintenanceReason != "" {
			row("maintenance_reason", n.MaintenanceReason)
		}
		if n.LastError != "" {
			row("last_error", n.LastError)
		}
		row("cpus", n.CPUs)
		row("memory_mb", n.MemoryMB)
		row("local_gb", n.LocalGB)
		row("cpu_arch", n.CPUArch)
		row("resource_class", n.ResourceClass)
		row("traits", strings.Join(n.Traits, ","))
		row("macs", strings.Join(n.MACs, ","))
		row("bmc.address", n.BMC.Address)
		row("bmc.username", n.BMC.Username)
		switch {
		case n.BMC.PasswordError != "":
			row("bmc.password", "unavailable: "+n.BMC.PasswordError)
		case n.BMC.Password == "" && n.BMC.Address != "":
			// Say so rather than print nothing: an Ironic that masks
			// passwords leaves the pool without one until it is set.
			row("bmc.password", "unknown (set it with `ironpool node set "+n.Name+" bmc.password=…`)")
		default:
			row("bmc.password", n.BMC.Password)
		}
		if n.Owner != "" {
			row("owner", n.Owner)
			row("allocation_id", n.AllocationID)
		}
		if n.IronicUUID != "" {
			row("ironic_uuid", n.IronicUUID)
			row("provision_state", n.ProvisionState)
			row("power_state", n.PowerState)
		}
		if n.Pending != "" {
			row("pending", n.Pending)
		}
		for k, v := range n.Fields {
			row("fields."+k, v)
		}
	}
	return a.render(a.env.Stdout, n, t)
}

func (a *app) nodeShow() *cobra.Command {
	var reveal bool
	c := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one node (password masked; --reveal for admins)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n ironpool.Node
			p := "/v1/nodes/" + url.PathEscape(args[0])
			if reveal {
				p += "?reveal=true"
			}
			if err := a.call(cmd.Context(), "GET", p, nil, &n); err != nil {
				return err
			}
			return a.printNode(&n)
		},
	}
	c.Flags().BoolVar(&reveal, "reveal", false, "show the BMC password (admin only)")
	return c
}

func (a *app) nodeGet() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME FIELD",
		Short: "Print one field of a node (well-known name, or fields.KEY)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Field string `json:"field"`
				Value string `json:"value"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/nodes/"+url.PathEscape(args[0])+"/fields/"+url.PathEscape(args[1]), nil, &out); err != nil {
				return err
			}
			if a.output != "table" {
				return a.print(out, nil)
			}
			fmt.Fprintln(a.env.Stdout, out.Value)
			return nil
		},
	}
}

func (a *app) nodeSet() *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME FIELD=VALUE...",
		Short: "Set node fields in one change (well-known fields are validated; fields.KEY=VALUE is free-form)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := kv("field", args[1:])
			if err != nil {
				return err
			}
			var n ironpool.Node
			if err := a.call(cmd.Context(), "PATCH", "/v1/nodes/"+url.PathEscape(args[0]), map[string]any{"set": set}, &n); err != nil {
				return err
			}
			return a.printNode(&n)
		},
	}
}

func (a *app) nodeDelete() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Short:   "Delete nodes, all or none (refused while any is allocated)",
		Example: `  ironpool node delete n1 n2 n3   # deletes all three, or none if one is allocated or unknown`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.call(cmd.Context(), "POST", "/v1/nodes/delete", map[string]any{"names": args}, nil); err != nil {
				return err
			}
			for _, n := range args {
				fmt.Fprintf(a.env.Stdout, "deleted %s\n", n)
			}
			return nil
		},
	}
}

func (a *app) nodeMaintenance() *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "maintenance NAME on|off [--reason TEXT]",
		Short: "Take a node out of service (with a reason) or put it back",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			p := "/v1/nodes/" + url.PathEscape(args[0]) + "/maintenance"
			var n ironpool.Node
			switch args[1] {
			case "on":
				_, err = cl.Do(cmd.Context(), "PUT", p, map[string]string{"reason": reason}, &n)
			case "off":
				_, err = cl.Do(cmd.Context(), "DELETE", p, nil, &n)
			default:
				return usagef("second argument must be on or off, not %q", args[1])
			}
			if err != nil {
				return err
			}
			return a.printNode(&n)
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (required for on)")
	return c
}
