package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"ironpool"
	"ironpool/internal/client"
	"ironpool/internal/handoff"
)

// parseItems turns --flavor NAME=COUNT and --constraint EXPR[,count=N]
// into request items.
func parseItems(flavors, constraints []string) ([]ironpool.ItemRequest, error) {
	var items []ironpool.ItemRequest
	for _, f := range flavors {
		name, cnt, ok := strings.Cut(f, "=")
		count := 1
		if ok {
			n, err := strconv.Atoi(cnt)
			if err != nil {
				return nil, ironpool.FieldErrorf("flavor", "%q: count %q is not a whole number", f, cnt)
			}
			count = n
		}
		items = append(items, ironpool.ItemRequest{Flavor: name, Count: count})
	}
	for _, expr := range constraints {
		count := 1
		var parts []string
		for _, p := range strings.Split(expr, ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "count="); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, ironpool.FieldErrorf("constraint", "count %q is not a whole number", v)
				}
				count = n
				continue
			}
			parts = append(parts, p)
		}
		c, err := ironpool.ParseConstraints("constraint", strings.Join(parts, ","))
		if err != nil {
			return nil, err
		}
		items = append(items, ironpool.ItemRequest{Constraints: &c, Count: count})
	}
	if len(items) == 0 {
		return nil, usagef("give at least one --flavor NAME=COUNT or --constraint EXPR")
	}
	return items, nil
}

func (a *app) allocateCmd() *cobra.Command {
	b := &client.AllocateBody{}
	var flavors, constraints, meta []string
	var dryRun bool
	var mode string
	c := &cobra.Command{
		Use:   "allocate --owner OWNER --flavor NAME=COUNT... [flags]",
		Short: "Allocate nodes for an owner: every item or nothing",
		Long: `Allocate nodes for an owner. The request succeeds whole or changes nothing.

  --flavor NAME=COUNT          nodes of a flavor (repeatable)
  --constraint EXPR            inline constraints, e.g. cpus>=16,memory_mb>=65536,arch=x86_64,trait=CUSTOM_GPU,count=2

Output (-o): table, json, yaml, env (for eval in a CI hook), base64, ansible, ironic, dnsmasq.
Exit codes: 0 allocated, 3 not enough free nodes now, 2 invalid request, 4 not allowed, 7 --wait ran out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if b.Owner == "" {
				return usagef("--owner is required")
			}
			var err error
			if b.Items, err = parseItems(flavors, constraints); err != nil {
				return err
			}
			if len(meta) > 0 {
				if b.Metadata, err = kv("metadata", meta); err != nil {
					return err
				}
			}
			b.Mode = ironpool.Mode(mode)
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if dryRun {
				p, err := cl.Plan(ctx, b)
				if err != nil {
					return err
				}
				return a.printPlan(p)
			}
			al, err := cl.Allocate(ctx, b)
			if err != nil {
				return err
			}
			if al.State == ironpool.AllocQueued {
				wait, _ := ironpool.ParseDuration("wait", b.Wait)
				fmt.Fprintf(a.env.Stderr, "queued as %s; waiting up to %s\n", al.ID, wait)
				deadline := time.Now().Add(wait + 5*time.Second)
				for al.State == ironpool.AllocQueued && time.Now().Before(deadline) {
					if al, err = cl.GetAllocation(ctx, al.ID, 30*time.Second); err != nil {
						return err
					}
				}
				switch al.State {
				case ironpool.AllocActive:
				case ironpool.AllocQueued:
					return &ironpool.Error{Code: ironpool.ETIMEOUT, Message: "still queued after --wait " + b.Wait + " (allocation " + al.ID + ")"}
				default:
					return &ironpool.Error{Code: ironpool.ECAPACITY, Message: fmt.Sprintf("allocation %s %s: %s", al.ID, al.State, al.LastError)}
				}
			}
			return a.printAllocation(al)
		},
	}
	f := c.Flags()
	f.StringVar(&b.Owner, "owner", "", "who the nodes are for (lab, CI job, project)")
	f.StringArrayVar(&flavors, "flavor", nil, "NAME=COUNT (repeatable)")
	f.StringArrayVar(&constraints, "constraint", nil, "inline constraints, e.g. cpus>=16,arch=x86_64,count=2 (repeatable)")
	f.StringVar(&b.Pool, "pool", "", "take nodes from this pool only")
	f.StringVar(&b.TTL, "ttl", "", "lease length, e.g. 4h, 7d (default from the server)")
	f.StringVar(&b.Wait, "wait", "", "queue up to this long if the pool cannot serve the request now")
	f.StringVar(&mode, "mode", "", "checkout mode: none, handoff, lessee (default from the server)")
	f.StringArrayVar(&meta, "metadata", nil, "KEY=VALUE kept with the allocation, e.g. job_url=… (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "show what would be picked and the capacity per item; change nothing")
	return c
}

func (a *app) printPlan(p *ironpool.Plan) error {
	return a.print(p, func(w *tabwriter.Writer) {
		if p.Satisfiable {
			fmt.Fprintln(w, "satisfiable: yes")
		} else {
			fmt.Fprintln(w, "satisfiable: NO")
		}
		fmt.Fprintln(w, "ITEM\tFLAVOR\tCONSTRAINTS\tREQUESTED\tMATCHING\tFREE\tWOULD TAKE")
		for _, c := range p.Capacity {
			var picks []string
			for _, pk := range p.Picks {
				if pk.Item == c.Item {
					picks = append(picks, pk.Node)
				}
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%d\t%s\n", c.Item, c.Flavor, c.Constraints.String(), c.Requested, c.Matching, c.Free, strings.Join(picks, " "))
		}
	})
}

// printAllocation writes an allocation in any handoff format or as a table.
func (a *app) printAllocation(al *ironpool.Allocation) error {
	switch a.output {
	case "table", "":
		tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "allocation\t%s\nowner\t%s\nstate\t%s\nmode\t%s\n", al.ID, al.Owner, al.State, al.Mode)
		if !al.ExpiresAt.IsZero() {
			fmt.Fprintf(tw, "expires\t%s (in %s)\n", al.ExpiresAt.Local().Format(time.RFC3339), time.Until(al.ExpiresAt).Round(time.Second))
		}
		if al.LastError != "" {
			fmt.Fprintf(tw, "last_error\t%s\n", al.LastError)
		}
		tw.Flush()
		if len(al.Nodes) > 0 {
			fmt.Fprintln(a.env.Stdout)
			tw = tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tCPUS\tMEMORY_MB\tLOCAL_GB\tBMC\tUSER\tPASSWORD\tMACS")
			for _, n := range al.Nodes {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", n.Name, n.CPUs, n.MemoryMB, n.LocalGB, n.BMC.Address, n.BMC.Username, n.BMC.Password, strings.Join(n.MACs, ","))
			}
			tw.Flush()
		} else {
			for i, it := range al.Items {
				fmt.Fprintf(a.env.Stdout, "item %d: %s ×%d %s\n", i, it.Flavor, it.Count, strings.Join(it.Nodes, " "))
			}
		}
		return nil
	}
	return handoff.Write(a.env.Stdout, a.output, al)
}

func (a *app) releaseCmd() *cobra.Command {
	var owner string
	c := &cobra.Command{
		Use:   "release ALLOCATION_ID... | --owner OWNER",
		Short: "Release allocations (idempotent); nodes are cleaned before they are free again",
		RunE: func(cmd *cobra.Command, args []string) error {
			if (owner == "") == (len(args) == 0) {
				return usagef("give allocation ids or --owner, not both")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var out []*ironpool.Allocation
			if owner != "" {
				if out, err = cl.ReleaseOwner(cmd.Context(), owner); err != nil {
					return err
				}
			}
			for _, id := range args {
				al, err := cl.Release(cmd.Context(), id)
				if err != nil {
					return err
				}
				out = append(out, al)
			}
			return a.print(map[string]any{"allocations": out}, func(w *tabwriter.Writer) {
				if len(out) == 0 {
					fmt.Fprintf(w, "%s holds no allocations\n", owner)
				}
				for _, al := range out {
					fmt.Fprintf(w, "%s\t%s\t%s\n", al.ID, al.Owner, al.State)
				}
			})
		},
	}
	c.Flags().StringVar(&owner, "owner", "", "release every allocation of this owner")
	return c
}

func (a *app) allocationCmd() *cobra.Command {
	c := &cobra.Command{Use: "allocation", Short: "List, show, extend and export allocations"}
	var owner, state string
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List allocations (live ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if owner != "" {
				q.Set("owner", owner)
			}
			if state != "" {
				q.Set("state", state)
			} else if !all {
				q.Set("live", "true")
			}
			var out struct {
				Allocations []*ironpool.Allocation `json:"allocations"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/allocations?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ID\tOWNER\tSTATE\tNODES\tEXPIRES")
				for _, al := range out.Allocations {
					n := 0
					for _, it := range al.Items {
						n += len(it.Nodes)
					}
					exp := ""
					if !al.ExpiresAt.IsZero() {
						exp = al.ExpiresAt.Local().Format(time.RFC3339)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\n", al.ID, al.Owner, al.State, n, exp)
				}
			})
		},
	}
	list.Flags().StringVar(&owner, "owner", "", "only this owner's")
	list.Flags().StringVar(&state, "state", "", "only in this state")
	list.Flags().BoolVar(&all, "all", false, "include ended allocations")
	show := &cobra.Command{
		Use:     "show ID",
		Aliases: []string{"export"},
		Short:   "Show an allocation; -o env|base64|ansible|ironic|dnsmasq exports it (alias: export)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			al, err := cl.GetAllocation(cmd.Context(), args[0], 0)
			if err != nil {
				return err
			}
			return a.printAllocation(al)
		},
	}
	var ttl string
	extend := &cobra.Command{
		Use:   "extend ID --ttl DURATION",
		Short: "Renew a lease to now + ttl",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl == "" {
				return usagef("--ttl is required")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			al, err := cl.Extend(cmd.Context(), args[0], ttl)
			if err != nil {
				return err
			}
			return a.printAllocation(al)
		},
	}
	extend.Flags().StringVar(&ttl, "ttl", "", "new lease length from now, e.g. 2h")
	c.AddCommand(list, show, extend)
	return c
}
