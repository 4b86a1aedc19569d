package cli

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// quotaCmd is `ironpool quota set|list|show|delete` (docs/SCHEDULING.md).
func (a *app) quotaCmd() *cobra.Command {
	c := &cobra.Command{Use: "quota", Short: "Per-owner (or owner pattern) quotas: set, list, show, delete"}
	var maxNodes int
	var maxFlavor []string
	var maxLease, per string
	var maxNodeHours float64
	set := &cobra.Command{
		Use:   "set OWNER_OR_PATTERN [--max-nodes N] [--max-flavor NAME=N]... [--max-lease D] [--max-node-hours H --per D]",
		Short: "Create or replace a quota (every limit not given is removed)",
		Example: "  ironpool quota set 'ci-*' --max-nodes 20 --max-flavor gpu=2 --max-lease 8h\n" +
			"  ironpool quota set lab1 --max-node-hours 500 --per 7d",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every flag is checked here, with the server's own rules,
			// before anything is sent.
			body := client.QuotaBody{MaxNodes: maxNodes, MaxLease: maxLease, MaxNodeHours: maxNodeHours, Per: per}
			if maxNodes < 0 {
				return ironpool.FieldErrorf("max-nodes", "must not be negative (got %d)", maxNodes)
			}
			for _, kvs := range maxFlavor {
				name, n, ok := strings.Cut(kvs, "=")
				v, err := strconv.Atoi(n)
				if !ok || err != nil {
					return ironpool.FieldErrorf("max-flavor", "%q is not NAME=COUNT", kvs)
				}
				if body.MaxFlavor == nil {
					body.MaxFlavor = map[string]int{}
				}
				if _, dup := body.MaxFlavor[name]; dup {
					return ironpool.FieldErrorf("max-flavor", "flavor %s is given twice", name)
				}
				body.MaxFlavor[name] = v
			}
			lease, err := ironpool.ParseDuration("max-lease", maxLease)
			if err != nil {
				return err
			}
			window, err := ironpool.ParseDuration("per", per)
			if err != nil {
				return err
			}
			q := &ironpool.Quota{Owner: args[0], MaxNodes: maxNodes, MaxFlavor: body.MaxFlavor, MaxLease: lease,
				MaxNodeHours: maxNodeHours, Per: window}
			if err := q.Validate(); err != nil {
				return flagName(err)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			st, err := cl.SetQuota(cmd.Context(), args[0], body)
			if err != nil {
				return err
			}
			if st.Warning != "" {
				fmt.Fprintln(a.env.Stderr, "warning: "+st.Warning)
			}
			return a.render(a.env.Stdout, st, quotaTable([]*ironpool.QuotaStatus{st}))
		},
	}
	f := set.Flags()
	f.IntVar(&maxNodes, "max-nodes", 0, "nodes held at once by the owners it applies to")
	f.StringArrayVar(&maxFlavor, "max-flavor", nil, "NAME=N: nodes of flavor NAME held at once (repeatable)")
	f.StringVar(&maxLease, "max-lease", "", "longest lease, renewals included (e.g. 8h, 2d)")
	f.Float64Var(&maxNodeHours, "max-node-hours", 0, "node-hours per rolling window (with --per)")
	f.StringVar(&per, "per", "", "the rolling window of --max-node-hours (e.g. 24h, 7d)")

	list := &cobra.Command{
		Use:     "list",
		Example: "  ironpool quota list\n  ironpool quota list -o json",
		Short:   "List quotas with their usage",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			qs, err := cl.Quotas(cmd.Context())
			if err != nil {
				return err
			}
			return a.render(a.env.Stdout, map[string]any{"quotas": qs}, quotaTable(qs))
		},
	}
	show := &cobra.Command{
		Use:     "show OWNER_OR_PATTERN",
		Example: "  ironpool quota show 'ci-*'\n  ironpool quota show team-a -o yaml",
		Short:   "Show a quota with its usage",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := ironpool.ValidateOwnerPattern("owner", args[0]); err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			st, err := cl.Quota(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.render(a.env.Stdout, st, quotaTable([]*ironpool.QuotaStatus{st}))
		},
	}
	del := &cobra.Command{
		Use:     "delete OWNER_OR_PATTERN...",
		Example: "  ironpool quota delete 'ci-*'\n  ironpool quota delete team-a team-b",
		Short:   "Delete quotas",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for i, o := range args {
				if err := ironpool.ValidateOwnerPattern(fmt.Sprintf("owner[%d]", i), o); err != nil {
					return err
				}
			}
			return a.deleteEach(cmd.Context(), "/v1/quotas/", "deleted quota", args)
		},
	}
	c.AddCommand(withColumns(set, quotaColumns), withColumns(list, quotaColumns), withColumns(show, quotaColumns), del)
	return c
}

// flagName renames a quota field error to the flag that sets it
// (max_nodes → max-nodes), so the message names what the user typed.
func flagName(err error) error {
	if e, ok := err.(*ironpool.Error); ok && e.Field != "" && e.Field != "owner" {
		e.Field = strings.ReplaceAll(strings.SplitN(e.Field, ".", 2)[0], "_", "-")
	}
	return err
}

var quotaColumns = []string{"owner", "max_nodes", "nodes", "max_flavor", "max_lease", "max_node_hours", "node_hours", "warning"}

func quotaTable(qs []*ironpool.QuotaStatus) Table {
	t := Table{Columns: quotaColumns}
	for _, st := range qs {
		q := st.Quota
		var fl []string
		for _, name := range slices.Sorted(maps.Keys(q.MaxFlavor)) {
			fl = append(fl, fmt.Sprintf("%s=%d (%d held)", name, q.MaxFlavor[name], st.Used.Flavors[name]))
		}
		limit := func(n int) string {
			if n == 0 {
				return "-"
			}
			return strconv.Itoa(n)
		}
		nh, used := "-", "-"
		if q.MaxNodeHours > 0 {
			nh, used = fmt.Sprintf("%g per %s", q.MaxNodeHours, q.PerText), fmt.Sprintf("%g", st.Used.NodeHours)
		}
		lease := q.MaxLeaseText
		if lease == "" {
			lease = "-"
		}
		t.Rows = append(t.Rows, []string{q.Owner, limit(q.MaxNodes), strconv.Itoa(st.Used.Nodes), strings.Join(fl, " "),
			lease, nh, used, st.Warning})
	}
	return t
}

// usageCmd is `ironpool usage [--owner O] [--since T]`.
func (a *app) usageCmd() *cobra.Command {
	var owner, since string
	c := &cobra.Command{
		Use:   "usage [--owner O] [--since T]",
		Short: "Node-hours per owner and flavor (live allocations count up to now)",
		Example: "  ironpool usage --since 7d\n" +
			"  ironpool usage --owner lab1 --since 2026-11-01T00:00:00Z -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if owner != "" {
				if err := ironpool.ValidateName("owner", owner); err != nil {
					return err
				}
			}
			if since != "" {
				if _, err := time.Parse(time.RFC3339, since); err != nil {
					if d, err := ironpool.ParseDuration("since", since); err != nil || d == 0 {
						return ironpool.FieldErrorf("since", "%q is neither an RFC 3339 time nor a positive duration (e.g. 24h, 7d)", since)
					}
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			rep, err := cl.Usage(cmd.Context(), owner, since)
			if err != nil {
				return err
			}
			t := Table{Columns: usageColumns}
			for _, r := range rep.Rows {
				fl := r.Flavor
				if fl == "" {
					fl = "(inline)"
				}
				t.Rows = append(t.Rows, []string{r.Owner, fl, fmt.Sprintf("%g", r.NodeHours), strconv.Itoa(r.Nodes)})
			}
			return a.render(a.env.Stdout, rep, t)
		},
	}
	c.Flags().StringVar(&owner, "owner", "", "only this owner")
	c.Flags().StringVar(&since, "since", "", "RFC 3339 time or a duration back from now (default 24h)")
	return withColumns(c, usageColumns)
}

var usageColumns = []string{"owner", "flavor", "node_hours", "nodes_now"}
