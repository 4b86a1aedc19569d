package cli

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// reserveFlags are the reserve command's flags, checked whole before any
// request is sent.
type reserveFlags struct {
	body client.ReserveBody
	requestFlags
}

// request checks every flag the way the server would (the window against
// this host's clock) and returns the wire body, which keeps +DURATION
// times as given so the server resolves them against its own clock.
func (f *reserveFlags) request(now time.Time) (*client.ReserveBody, error) {
	b := f.body
	b.Owner, b.Pool, b.Mode = f.owner, f.pool, ironpool.Mode(f.mode)
	if b.Owner == "" {
		return nil, usagef("--owner is required")
	}
	if b.Start == "" || b.End == "" {
		return nil, usagef("--start and --end are required (RFC 3339 time or +DURATION from now)")
	}
	var err error
	if b.Items, b.Metadata, err = f.parse(); err != nil {
		return nil, err
	}
	req := &ironpool.ReservationRequest{Owner: b.Owner, Items: b.Items, Pool: b.Pool, Mode: b.Mode, Metadata: b.Metadata}
	if req.Start, err = ironpool.ParseTime("start", b.Start, now); err != nil {
		return nil, err
	}
	if req.End, err = ironpool.ParseTime("end", b.End, now); err != nil {
		return nil, err
	}
	if err := req.Validate(now); err != nil {
		return nil, err
	}
	return &b, nil
}

var (
	reservationColumns     = []string{"id", "owner", "state", "start", "end", "nodes", "allocation_id", "last_error"}
	reservationListColumns = []string{"id", "owner", "state", "start", "end", "nodes"}
)

func reservationNodes(r *ironpool.Reservation) string {
	var nodes []string
	for _, it := range r.Items {
		nodes = append(nodes, it.Nodes...)
	}
	return strings.Join(nodes, " ")
}

func reservationRecord(r *ironpool.Reservation) Table {
	return Table{Record: true, Columns: reservationColumns, Rows: [][]string{{r.ID, r.Owner, string(r.State),
		r.Start.Local().Format(time.RFC3339), r.End.Local().Format(time.RFC3339), reservationNodes(r), r.AllocationID, r.LastError}}}
}

func (a *app) reserveCmd() *cobra.Command {
	f := &reserveFlags{}
	c := &cobra.Command{
		Use:   "reserve --owner OWNER --flavor NAME=COUNT... --start TIME --end TIME [flags]",
		Short: "Book nodes for a future window: every item or nothing",
		Long: `Book nodes for the window [--start, --end). TIME is an RFC 3339 time or
+DURATION from now (+2h, +7d). The booking names the nodes it will use; it is
checked against live leases (their expiry), other reservations and the
server's cleaning gap (--reservation-gap) between consecutive holds. At the
start the reservation becomes an allocation of the owner expiring at --end
(see ` + "`ironpool reservation show ID`" + ` for its allocation id).

Exit codes: 0 booked, 2 invalid request, 3 the window cannot be served (the
message names the item and the interval that is short), 4 not allowed,
9 refused by a quota of the owner.`,
		Example: `  ironpool reserve --owner lab1 --flavor standard=2 --flavor storage=1 --start +1d --end +1d8h -o json
  ironpool reserve --owner lab1 --constraint 'cpus>=16,count=2' --start 2026-03-01T08:00:00Z --end 2026-03-01T18:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.request(time.Now())
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			r, err := cl.Reserve(cmd.Context(), b)
			if err != nil {
				return err
			}
			return a.printReservation(r)
		},
	}
	fl := c.Flags()
	f.register(fl, "reservation and its allocation", " at the start")
	fl.StringVar(&f.body.Start, "start", "", "window start: RFC 3339 time or +DURATION from now")
	fl.StringVar(&f.body.End, "end", "", "window end: RFC 3339 time or +DURATION from now")
	return withColumns(c, reservationColumns)
}

// printReservation shows one reservation in -o's format.
func (a *app) printReservation(r *ironpool.Reservation) error {
	if a.output != "table" || len(a.columns) > 0 {
		return a.render(a.env.Stdout, r, reservationRecord(r))
	}
	return a.print(r, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "reservation\t%s\nowner\t%s\nstate\t%s\nmode\t%s\nstart\t%s\nend\t%s\ngap\t%s\n", r.ID, r.Owner, r.State, r.Mode,
			r.Start.Local().Format(time.RFC3339), r.End.Local().Format(time.RFC3339), r.Gap)
		if r.AllocationID != "" {
			fmt.Fprintf(w, "allocation\t%s\n", r.AllocationID)
		}
		if r.LastError != "" {
			fmt.Fprintf(w, "last_error\t%s\n", r.LastError)
		}
		for i, it := range r.Items {
			name := it.Flavor
			if name == "" {
				name = it.Constraints.String()
			}
			fmt.Fprintf(w, "item %d\t%s ×%d: %s\n", i, name, it.Count, strings.Join(it.Nodes, " "))
		}
	})
}

func (a *app) reservationCmd() *cobra.Command {
	c := &cobra.Command{Use: "reservation", Short: "List, show and cancel reservations"}
	var owner, state string
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List reservations, soonest first (pending and active unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if owner != "" {
				if err := ironpool.ValidateName("owner", owner); err != nil {
					return err
				}
				q.Set("owner", owner)
			}
			if state != "" {
				if err := ironpool.ReservationState(state).Check("state"); err != nil {
					return err
				}
				q.Set("state", state)
			} else if !all {
				q.Set("live", "true")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			rs, err := cl.ListReservations(cmd.Context(), q)
			if err != nil {
				return err
			}
			t := Table{Columns: reservationListColumns}
			for _, r := range rs {
				t.Rows = append(t.Rows, []string{r.ID, r.Owner, string(r.State), r.Start.Local().Format(time.RFC3339),
					r.End.Local().Format(time.RFC3339), reservationNodes(r)})
			}
			return a.render(a.env.Stdout, map[string]any{"reservations": rs}, t)
		},
	}
	list.Flags().StringVar(&owner, "owner", "", "only this owner's")
	list.Flags().StringVar(&state, "state", "", "only in this state: pending, active, cancelled, failed")
	list.Flags().BoolVar(&all, "all", false, "include cancelled and failed reservations")
	withColumns(list, reservationListColumns)
	show := withColumns(&cobra.Command{
		Use:   "show ID",
		Short: "Show a reservation (its nodes, and its allocation once started)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			r, err := cl.GetReservation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printReservation(r)
		},
	}, reservationColumns)
	cancel := withColumns(&cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a pending reservation (idempotent; an active one is released with `ironpool release`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			r, err := cl.CancelReservation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.printReservation(r)
		},
	}, reservationColumns)
	c.AddCommand(list, show, cancel)
	return c
}

var calendarColumns = []string{"node", "pool", "state", "kind", "id", "owner", "start", "end", "clean_until"}
var calendarFlavorColumns = []string{"flavor", "total", "start", "end", "free", "held"}

func (a *app) calendarCmd() *cobra.Command {
	var pool, from, to, by string
	c := &cobra.Command{
		Use:   "calendar [--pool P] [--from TIME --to TIME] [--by node|flavor]",
		Short: "The pool's future: holds per node, or free/held nodes per flavor over time",
		Long: `Show the pool's future between --from (default now) and --to (default
--from + 7 days). TIME is an RFC 3339 time or +DURATION from now. --by node
(default) lists every hold of every node: live leases, pending reservations
and nodes out of service, each with the end of its cleaning gap. --by flavor
lists, per flavor, the intervals over which the same number of its nodes are
free (cleaning gaps count as held).`,
		Example: `  ironpool calendar --pool lab --from +1d --to +2d
  ironpool calendar --by flavor -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			q := url.Values{}
			if pool != "" {
				if err := ironpool.ValidateName("pool", pool); err != nil {
					return err
				}
				q.Set("pool", pool)
			}
			var f, t time.Time
			var err error
			if f, err = ironpool.ParseTime("from", from, now); err != nil {
				return err
			}
			if t, err = ironpool.ParseTime("to", to, now); err != nil {
				return err
			}
			if !f.IsZero() && !t.IsZero() && !t.After(f) {
				return ironpool.FieldErrorf("to", "is not after --from")
			}
			switch by {
			case "node", "flavor":
			default:
				return ironpool.FieldErrorf("by", "%q: want node or flavor", truncateArg(by))
			}
			for k, v := range map[string]string{"from": from, "to": to, "by": by} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if err := checkColumnsFor(a.columns, by); err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			cal, err := cl.Calendar(cmd.Context(), q)
			if err != nil {
				return err
			}
			fmtT := func(t time.Time) string { return t.Local().Format(time.RFC3339) }
			if by == "flavor" {
				tb := Table{Columns: calendarFlavorColumns}
				for _, fl := range cal.Flavors {
					for _, s := range fl.Slots {
						tb.Rows = append(tb.Rows, []string{fl.Flavor, itoa(fl.Total), fmtT(s.Start), fmtT(s.End), itoa(s.Free), itoa(s.Held)})
					}
				}
				return a.render(a.env.Stdout, cal, tb)
			}
			tb := Table{Columns: calendarColumns}
			for _, n := range cal.Nodes {
				if len(n.Holds) == 0 {
					tb.Rows = append(tb.Rows, []string{n.Node, n.Pool, string(n.State), "free", "", "", fmtT(cal.From), fmtT(cal.To), ""})
				}
				for _, h := range n.Holds {
					tb.Rows = append(tb.Rows, []string{n.Node, n.Pool, string(n.State), string(h.Kind), h.ID, h.Owner, fmtT(h.Start), fmtT(h.End), fmtT(h.CleanUntil)})
				}
			}
			return a.render(a.env.Stdout, cal, tb)
		},
	}
	c.Flags().StringVar(&pool, "pool", "", "only this pool's nodes")
	c.Flags().StringVar(&from, "from", "", "start of the range (default now)")
	c.Flags().StringVar(&to, "to", "", "end of the range (default --from + 7d)")
	c.Flags().StringVar(&by, "by", "node", "node: holds per node; flavor: free/held nodes per flavor over time")
	return withColumns(c, append(append([]string{}, calendarColumns...), calendarFlavorColumns...))
}

// checkColumnsFor refuses -c names that the chosen view does not print.
func checkColumnsFor(columns []string, by string) error {
	have := calendarColumns
	if by == "flavor" {
		have = calendarFlavorColumns
	}
	for _, c := range columns {
		found := false
		for _, h := range have {
			if strings.EqualFold(h, c) {
				found = true
			}
		}
		if !found {
			return ironpool.FieldErrorf("column", "%q is not a column of `calendar --by %s` (want %s)", truncateArg(c), by, strings.Join(have, ",")).
				WithHint("nothing was sent to the server")
		}
	}
	return nil
}
