package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
)

func (a *app) flavorCmd() *cobra.Command {
	c := &cobra.Command{Use: "flavor", Short: "Named sets of constraints: create, list, show, delete"}
	f := &ironpool.Flavor{}
	create := &cobra.Command{
		Use:   "create NAME [--cpus N] [--memory-mb N] [--local-gb N] [--arch A] [--resource-class RC] [--trait T] [--pool P]",
		Short: "Create a flavor (sizes are minimums; the rest must match exactly)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Name = args[0]
			var out ironpool.Flavor
			if err := a.call(cmd.Context(), "POST", "/v1/flavors", f, &out); err != nil {
				return err
			}
			return a.printFlavors([]*ironpool.Flavor{&out})
		},
	}
	cf := create.Flags()
	cf.IntVar(&f.CPUs, "cpus", 0, "minimum CPUs")
	cf.Int64Var(&f.MemoryMB, "memory-mb", 0, "minimum memory in MiB")
	cf.Int64Var(&f.LocalGB, "local-gb", 0, "minimum disk in GiB")
	cf.StringVar(&f.CPUArch, "arch", "", "exact CPU architecture")
	cf.StringVar(&f.ResourceClass, "resource-class", "", "exact resource class")
	cf.StringSliceVar(&f.Traits, "trait", nil, "required trait (repeatable)")
	cf.StringVar(&f.Pool, "pool", "", "only nodes of this pool")
	cf.StringVar(&f.Description, "description", "", "what it is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List flavors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Flavors []*ironpool.Flavor `json:"flavors"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/flavors", nil, &out); err != nil {
				return err
			}
			return a.renderFlavors(out, out.Flavors)
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a flavor",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out ironpool.Flavor
			if err := a.call(cmd.Context(), "GET", "/v1/flavors/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			return a.printFlavors([]*ironpool.Flavor{&out})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete flavors (allocations keep the constraints they were made with)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.deleteEach(cmd.Context(), "/v1/flavors/", "deleted", args)
		},
	}
	c.AddCommand(withColumns(create, flavorColumns), withColumns(list, flavorColumns), withColumns(show, flavorColumns), del)
	return c
}

// flavorColumns are the columns of the flavor commands.
var flavorColumns = []string{"name", "constraints", "description"}

func (a *app) printFlavors(fs []*ironpool.Flavor) error {
	v := any(fs)
	if len(fs) == 1 {
		v = fs[0]
	}
	return a.renderFlavors(v, fs)
}

func (a *app) renderFlavors(data any, fs []*ironpool.Flavor) error {
	t := Table{Columns: flavorColumns}
	for _, f := range fs {
		t.Rows = append(t.Rows, []string{f.Name, f.Constraints.String(), f.Description})
	}
	return a.render(a.env.Stdout, data, t)
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Nodes per pool and state, capacity per flavor, allocations per owner, leases expiring within the hour",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			st, err := cl.Status(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(st, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "POOL\tSTATE\tNODES")
				for _, c := range st.Nodes {
					fmt.Fprintf(w, "%s\t%s\t%d\n", c.Pool, c.State, c.Count)
				}
				fmt.Fprintln(w, "\nFLAVOR\tPOOL\tFREE\tTOTAL")
				for _, c := range st.Capacity {
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", c.Flavor, c.Pool, c.Free, c.Total)
				}
				fmt.Fprintln(w, "\nOWNER\tALLOCATIONS\tNODES")
				for _, o := range st.Owners {
					fmt.Fprintf(w, "%s\t%d\t%d\n", o.Owner, o.Allocations, o.Nodes)
				}
				fmt.Fprintf(w, "\nqueued requests\t%d\n", st.Queued)
				if len(st.Expiring) > 0 {
					fmt.Fprintln(w, "\nEXPIRING WITHIN 1H\tOWNER\tEXPIRES")
					for _, al := range st.Expiring {
						fmt.Fprintf(w, "%s\t%s\t%s\n", al.ID, al.Owner, al.ExpiresAt.Local().Format(time.RFC3339))
					}
				}
			})
		},
	}
}

func (a *app) capacityCmd() *cobra.Command {
	return withColumns(&cobra.Command{
		Use:   "capacity",
		Short: "Free and total nodes per flavor and pool",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Capacity []ironpool.CapacityRow `json:"capacity"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/capacity", nil, &out); err != nil {
				return err
			}
			t := Table{Columns: capacityColumns}
			for _, c := range out.Capacity {
				t.Rows = append(t.Rows, []string{c.Flavor, c.Pool, itoa(c.Free), itoa(c.Total)})
			}
			return a.render(a.env.Stdout, out, t)
		},
	}, capacityColumns)
}

var capacityColumns = []string{"flavor", "pool", "free", "total"}

func (a *app) eventsCmd() *cobra.Command {
	var since, subject, action string
	var after int64
	var limit, tail int
	c := &cobra.Command{
		Use:   "events [--since 1h|RFC3339] [--subject node/NAME] [--action allocation.created] [--tail N]",
		Short: "Read the audit log: who changed what, when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"since": since, "subject": subject, "action": action} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if after > 0 {
				q.Set("after", fmt.Sprint(after))
			}
			if tail > 0 {
				q.Set("tail", fmt.Sprint(tail))
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			var out struct {
				Events []*ironpool.Event `json:"events"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/events?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			t := Table{Columns: eventColumns}
			for _, e := range out.Events {
				t.Rows = append(t.Rows, []string{fmt.Sprint(e.ID), e.Time.Local().Format(time.RFC3339), e.Actor + "(" + string(e.Role) + ")", e.Action, e.Subject, e.Summary})
			}
			return a.render(a.env.Stdout, out, t)
		},
	}
	f := c.Flags()
	f.StringVar(&since, "since", "", "only events since a time (RFC 3339) or a duration ago (1h)")
	f.StringVar(&subject, "subject", "", "only events about this subject, e.g. node/n1 or allocation/ID")
	f.StringVar(&action, "action", "", "only this action, e.g. allocation.created")
	f.Int64Var(&after, "after", 0, "only events after this id (for paging)")
	f.IntVar(&limit, "limit", 0, "at most this many")
	f.IntVar(&tail, "tail", 0, "only the newest N (listed oldest first)")
	return withColumns(c, eventColumns)
}

var eventColumns = []string{"id", "time", "actor", "action", "subject", "summary"}

func (a *app) tokenCmd() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "API tokens: create (shown once), list, revoke"}
	var role, desc string
	var owners []string
	var priority int
	create := &cobra.Command{
		Use:   "create --role admin|operator|user [--owner O|PATTERN]... [--priority N] [--description TEXT]",
		Short: "Create a token; the secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for i, o := range owners {
				if err := ironpool.ValidateOwnerPattern(fmt.Sprintf("owner[%d]", i), o); err != nil {
					return err
				}
			}
			if err := ironpool.ValidatePriority("priority", priority); err != nil {
				return err
			}
			var t ironpool.Token
			if err := a.call(cmd.Context(), "POST", "/v1/tokens", map[string]any{"role": role, "owners": owners, "description": desc, "priority": priority}, &t); err != nil {
				return err
			}
			if a.output != "table" {
				return a.print(t, nil)
			}
			fmt.Fprintf(a.env.Stderr, "token %s (%s, owners %s) — store it now, it is not shown again:\n", t.ID, t.Role, strings.Join(t.Owners, ","))
			fmt.Fprintln(a.env.Stdout, t.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "", "admin, operator or user")
	create.Flags().StringSliceVar(&owners, "owner", nil, "owner a user token may act for (repeatable; a pattern such as 'ci-*' for every owner it matches; * for any)")
	create.Flags().IntVar(&priority, "priority", ironpool.DefaultPriority, "queue priority of the token's requests, 0 (lowest) to 9")
	create.Flags().StringVar(&desc, "description", "", "what the token is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Tokens []*ironpool.Token `json:"tokens"`
			}
			if err := a.call(cmd.Context(), "GET", "/v1/tokens", nil, &out); err != nil {
				return err
			}
			tb := Table{Columns: tokenColumns}
			for _, t := range out.Tokens {
				rev := ""
				if !t.RevokedAt.IsZero() {
					rev = t.RevokedAt.Local().Format(time.RFC3339)
				}
				tb.Rows = append(tb.Rows, []string{t.ID, string(t.Role), strings.Join(t.Owners, ","), strconv.Itoa(t.Priority), t.CreatedAt.Local().Format(time.RFC3339), rev, t.Description})
			}
			return a.render(a.env.Stdout, out, tb)
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID...",
		Short: "Revoke tokens",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.deleteEach(cmd.Context(), "/v1/tokens/", "revoked", args)
		},
	}
	c.AddCommand(create, withColumns(list, tokenColumns), revoke)
	return c
}

var tokenColumns = []string{"id", "role", "owners", "priority", "created", "revoked", "description"}

func (a *app) adminCmd() *cobra.Command {
	c := &cobra.Command{Use: "admin", Short: "Administration: secret re-encryption"}
	c.AddCommand(&cobra.Command{
		Use:   "reseal",
		Short: "Re-encrypt every stored secret under the server's current key (after starting it with a new --secret-key-file and the old one as --old-secret-key-file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Resealed int      `json:"resealed"`
				Skipped  []string `json:"skipped"`
				KeyID    string   `json:"key_id"`
			}
			if err := a.call(cmd.Context(), "POST", "/v1/admin/reseal", nil, &out); err != nil {
				return err
			}
			return a.print(out, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "re-encrypted %d secrets under key %s\n", out.Resealed, out.KeyID)
				if len(out.Skipped) > 0 {
					fmt.Fprintf(w, "skipped %d whose key is unknown (set each again with `ironpool node set NAME bmc.password=…`): %s\n",
						len(out.Skipped), strings.Join(out.Skipped, ", "))
				}
			})
		},
	})
	c.AddCommand(a.rotateKeyCmd())
	return c
}
