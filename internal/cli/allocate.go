package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/handoff"
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

// allocateFlags are the allocate command's flags, checked whole before any
// request is sent.
type allocateFlags struct {
	body client.AllocateBody
	requestFlags
	envFile          string
	spread, together string
	dryRun           bool
}

// requestFlags are the flags allocate and reserve share: who the nodes are
// for, what is asked for, from which pool, and how it is checked out.
type requestFlags struct {
	owner, pool, mode          string
	flavors, constraints, meta []string
}

// register adds the shared flags; held says what the metadata is kept with
// and at says when the checkout mode applies, for the help text.
func (f *requestFlags) register(fl *pflag.FlagSet, held, at string) {
	fl.StringVar(&f.owner, "owner", "", "who the nodes are for (lab, CI job, project)")
	fl.StringArrayVar(&f.flavors, "flavor", nil, "NAME=COUNT (repeatable)")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "inline constraints, e.g. 'cpus>=16,arch=x86_64,count=2' (repeatable; quote it)")
	fl.StringVar(&f.pool, "pool", "", "take nodes from this pool only")
	fl.StringVar(&f.mode, "mode", "", "checkout mode"+at+": none, handoff, lessee (default from the server)")
	fl.StringArrayVar(&f.meta, "metadata", nil, "KEY=VALUE kept with the "+held+" (repeatable)")
}

// parse checks the shared flags and returns the items and metadata.
func (f *requestFlags) parse() (items []ironpool.ItemRequest, meta map[string]string, err error) {
	if f.owner == "" {
		return nil, nil, usagef("--owner is required")
	}
	if items, err = parseItems(f.flavors, f.constraints); err != nil {
		return nil, nil, err
	}
	if len(f.meta) > 0 {
		if meta, err = kv("metadata", f.meta); err != nil {
			return nil, nil, err
		}
	}
	return items, meta, nil
}

// parseTopology turns --spread KEY[:K] and --together KEY into the
// request's topology (nil for neither), refusing both at once, a K that is
// not a whole number of at least 1, and malformed keys.
func parseTopology(spread, together string) (*ironpool.Topology, error) {
	switch {
	case spread != "" && together != "":
		return nil, ironpool.FieldErrorf("topology", "give --spread or --together, not both")
	case spread != "":
		key, k, hasK := strings.Cut(spread, ":")
		t := &ironpool.Topology{Spread: key}
		if hasK {
			n, err := strconv.Atoi(k)
			if err != nil || n < 1 {
				return nil, ironpool.FieldErrorf("spread", "%q: the most per value (after ':') must be a whole number of at least 1", spread)
			}
			t.MaxPerValue = n
		}
		if err := ironpool.ValidateFieldKey("spread", key); err != nil {
			return nil, err
		}
		return t, t.Validate()
	case together != "":
		if err := ironpool.ValidateFieldKey("together", together); err != nil {
			return nil, err
		}
		t := &ironpool.Topology{Together: together}
		return t, t.Validate()
	}
	return nil, nil
}

// request checks every flag the way the server would, so that a mistake is
// refused before anything is sent, and returns the wire body.
func (f *allocateFlags) request(output string) (*client.AllocateBody, error) {
	b := f.body
	b.Owner, b.Pool, b.Mode = f.owner, f.pool, ironpool.Mode(f.mode)
	var err error
	if b.Items, b.Metadata, err = f.parse(); err != nil {
		return nil, err
	}
	if b.Topology, err = parseTopology(f.spread, f.together); err != nil {
		return nil, err
	}
	req := &ironpool.AllocationRequest{Owner: b.Owner, Items: b.Items, Pool: b.Pool, Mode: b.Mode, Metadata: b.Metadata,
		Topology: b.Topology}
	if req.TTL, err = parsePositive("ttl", b.TTL); err != nil {
		return nil, err
	}
	if req.Wait, err = parsePositive("wait", b.Wait); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if f.dryRun {
		if f.envFile != "" {
			return nil, usagef("--env-file has nothing to write with --dry-run")
		}
		if err := checkFormat("output", output, dataFormats); err != nil {
			return nil, err
		}
	}
	return &b, nil
}

// parsePositive parses a duration flag that, when given, must be above zero:
// `--ttl 0` used to mean "the default" silently, which is not what anyone
// typing it means.
func parsePositive(field, s string) (time.Duration, error) {
	d, err := ironpool.ParseDuration(field, s)
	if err == nil && s != "" && d <= 0 {
		err = ironpool.FieldErrorf(field, "must be positive (got %q); leave --%s out for the server's default", s, field)
	}
	return d, err
}

func (a *app) allocateCmd() *cobra.Command {
	f := &allocateFlags{}
	c := &cobra.Command{
		Use:   "allocate --owner OWNER --flavor NAME=COUNT... [flags]",
		Short: "Allocate nodes for an owner: every item or nothing",
		Long: `Allocate nodes for an owner. The request succeeds whole or changes nothing.

  --flavor NAME=COUNT          nodes of a flavor (repeatable)
  --constraint 'EXPR'          inline constraints, e.g. 'cpus>=16,memory_mb>=65536,arch=x86_64,trait=CUSTOM_GPU,count=2'
                               (quote it: an unquoted > is a shell redirection)
  --spread KEY[:K]             no two nodes of the request (at most K) share a value of node field KEY, e.g. rack
  --together KEY               all nodes of the request share one value of node field KEY
                               (across all items; nodes without the field are not used; see docs/SCHEDULING.md)

Output (-o): table (passwords masked unless --show-secrets), json, yaml,
env (export lines for eval), dotenv (KEY=VALUE lines for $GITHUB_ENV or a
GitLab dotenv report), base64, ansible, ironic, dnsmasq.
--env-file FILE writes the variables (the env form; the dotenv form with
-o dotenv) to FILE atomically with mode 0600, while stdout gets the masked
table (with -o env or -o dotenv too: the secrets go to the file only).

Every flag is checked before anything is sent. If the handoff cannot be
written after the server granted the nodes, or a signal (SIGINT, SIGTERM,
SIGHUP) arrives while waiting, the allocation is released before exiting.

Exit codes: 0 allocated, 2 invalid request, 3 not enough free nodes now (or a
dry run that does not fit), 4 not allowed, 7 --wait ran out, 130/143/129
interrupted by SIGINT/SIGTERM/SIGHUP (nothing left held or queued).`,
		Example: `  # in a CI hook that stops on failure (set -e):
  out=$(ironpool allocate --owner "job-$CI_JOB_ID" --flavor standard=2 -o env) || exit
  eval "$out"
  # or: write the variables to a file, keep secrets out of the log
  ironpool allocate --owner job-42 --constraint 'cpus>=16,count=2' --env-file ironpool.env
  . ./ironpool.env
  # queue for up to 30 minutes if the pool is busy
  ironpool allocate --owner lab1 --flavor large=1 --wait 30m --ttl 8h
  # three nodes in three racks; or two per switch at most; or one rack for all
  ironpool allocate --owner lab1 --flavor standard=3 --spread rack
  ironpool allocate --owner lab1 --flavor standard=4 --spread switch:2
  ironpool allocate --owner lab1 --flavor standard=2 --flavor storage=1 --together rack`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.request(a.output)
			if err != nil {
				return err
			}
			var envFile *atomicFile
			if f.envFile != "" {
				if envFile, err = createAtomic(f.envFile); err != nil {
					return err
				}
				defer envFile.Abort()
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.dryRun {
				p, err := cl.Plan(ctx, b)
				if err != nil {
					return err
				}
				if err := a.printPlan(p); err != nil {
					return err
				}
				if !p.Satisfiable {
					return planRefusal(p, b)
				}
				return nil
			}
			return a.allocate(ctx, cl, b, envFile, f.output(a.output))
		},
	}
	fl := c.Flags()
	f.register(fl, "allocation, e.g. job_url=…", "")
	fl.StringVar(&f.body.TTL, "ttl", "", "lease length, e.g. 4h, 7d (default from the server)")
	fl.StringVar(&f.body.Wait, "wait", "", "queue up to this long if the pool cannot serve the request now")
	fl.StringVar(&f.spread, "spread", "", "KEY[:K]: at most K (default 1) nodes of the request share a value of node field KEY, e.g. rack")
	fl.StringVar(&f.together, "together", "", "KEY: all nodes of the request share one value of node field KEY, e.g. rack")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show what would be picked and the capacity per item; change nothing (exit 3 if it does not fit)")
	fl.StringVar(&f.envFile, "env-file", "", "write the IRONPOOL_* variables to this file (atomically, mode 0600)")
	fl.BoolVar(&a.showSecrets, "show-secrets", false, "show BMC passwords in table output")
	return withFormats(c, allocationFormats...)
}

// output returns the env file's form: dotenv when -o dotenv asks for it,
// else the shell's export lines, which `. FILE` reads.
func (f *allocateFlags) output(o string) string {
	if o == "dotenv" {
		return "dotenv"
	}
	return "env"
}

// planRefusal is the exit-3 error of a dry run that does not fit, with the
// same per-item shortfall a real refusal gives.
func planRefusal(p *ironpool.Plan, b *client.AllocateBody) error {
	var parts []string
	var sf []ironpool.Shortfall
	for _, c := range p.Capacity {
		if c.Free >= c.Requested {
			continue
		}
		name := c.Flavor
		if name == "" {
			name = fmt.Sprintf("item %d", c.Item)
		}
		parts = append(parts, fmt.Sprintf("%s: asked %d, %d match, %d free", name, c.Requested, c.Matching, c.Free))
		sf = append(sf, ironpool.Shortfall{Item: c.Item, Flavor: c.Flavor, Requested: c.Requested, Matching: c.Matching, Free: c.Free})
	}
	msg := "the request would not fit now"
	if p.Refusal != "" {
		msg = p.Refusal
		if len(parts) > 0 {
			msg += " (" + strings.Join(parts, "; ") + ")"
		}
	} else if len(parts) > 0 {
		msg = "not enough free nodes (" + strings.Join(parts, "; ") + ")"
	} else {
		msg += " (items compete for the same nodes)"
	}
	field := "items"
	if p.Refusal != "" && b.Topology != nil {
		field = b.Topology.Field()
	}
	return &ironpool.Error{Code: ironpool.ECAPACITY, Field: field, Message: msg, Shortfall: sf,
		Hint: "dry run: nothing was allocated"}
}

func (a *app) printPlan(p *ironpool.Plan) error {
	return a.print(p, func(w *tabwriter.Writer) {
		if p.Satisfiable {
			fmt.Fprintln(w, "satisfiable: yes")
		} else {
			fmt.Fprintln(w, "satisfiable: NO")
		}
		if p.Refusal != "" {
			fmt.Fprintln(w, "why: "+p.Refusal)
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

// printAllocation writes an allocation to stdout in -o's format.
func (a *app) printAllocation(al *ironpool.Allocation) error {
	return a.renderAllocation(a.env.Stdout, al)
}

// renderAllocation writes an allocation in any handoff format, or as a
// table for people. The table masks BMC passwords unless --show-secrets:
// it is what lands in CI job logs. Machine formats keep them for the owner,
// whose tools need them.
func (a *app) renderAllocation(w io.Writer, al *ironpool.Allocation) error {
	return a.renderAs(w, a.output, al)
}

// renderAs is renderAllocation in the given format.
func (a *app) renderAs(w io.Writer, format string, al *ironpool.Allocation) error {
	if format == "value" || format == "csv" || (format == "table" && len(a.columns) > 0) {
		return a.render(w, al, allocationRecord(al))
	}
	switch format {
	case "table", "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "allocation\t%s\nowner\t%s\nstate\t%s\nmode\t%s\n", al.ID, al.Owner, al.State, al.Mode)
		if !al.ExpiresAt.IsZero() {
			fmt.Fprintf(tw, "expires\t%s (in %s)\n", al.ExpiresAt.Local().Format(time.RFC3339), time.Until(al.ExpiresAt).Round(time.Second))
		}
		if al.Topology != nil {
			fmt.Fprintf(tw, "topology\t%s\n", al.Topology)
		}
		if al.LastError != "" {
			fmt.Fprintf(tw, "last_error\t%s\n", al.LastError)
		}
		if q := al.Queue; q != nil {
			fmt.Fprintf(tw, "queue_position\t%d of %d\nwaiting_because\t%s\n", q.Position, q.Length, q.Reason)
			if !q.EstimatedAt.IsZero() {
				fmt.Fprintf(tw, "estimate\t%s (when the leases holding matching nodes end)\n", q.EstimatedAt.Local().Format(time.RFC3339))
			}
			if !al.WaitUntil.IsZero() {
				fmt.Fprintf(tw, "wait_until\t%s\n", al.WaitUntil.Local().Format(time.RFC3339))
			}
		}
		tw.Flush()
		if len(al.Nodes) > 0 {
			fmt.Fprintln(w)
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tCPUS\tMEMORY_MB\tLOCAL_GB\tBMC\tUSER\tPASSWORD\tMACS")
			for _, n := range al.Nodes {
				if !a.showSecrets {
					n = n.Redacted()
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", n.Name, n.CPUs, n.MemoryMB, n.LocalGB, n.BMC.Address, n.BMC.Username, n.BMC.Password, strings.Join(n.MACs, ","))
			}
			return tw.Flush()
		}
		for i, it := range al.Items {
			fmt.Fprintf(w, "item %d: %s ×%d %s\n", i, it.Flavor, it.Count, strings.Join(it.Nodes, " "))
		}
		return nil
	}
	return handoff.Write(w, format, al)
}

func (a *app) releaseCmd() *cobra.Command {
	var owners []string
	var retryFor time.Duration
	c := &cobra.Command{
		Use:   "release ALLOCATION_ID... | --owner OWNER...",
		Short: "Release allocations (idempotent); nodes are cleaned before they are free again",
		Long: `Release allocations by id, or every live allocation of one or more owners.
Releasing is idempotent: an allocation already released is not an error. A
queued request is cancelled. Connection errors are retried for --retry-for
(default 30s), so a post-hook survives a server restart.`,
		Example: `  ironpool release "$IRONPOOL_ALLOCATION_ID"
  ironpool release --owner job-42 --owner job-43`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(owners) == 0 && len(args) == 0:
				return usagef("give allocation ids or --owner OWNER")
			case len(owners) > 0 && len(args) > 0:
				return usagef("give allocation ids or --owner OWNER, not both")
			}
			for i, o := range owners {
				if err := ironpool.ValidateName(fmt.Sprintf("owner[%d]", i), o); err != nil {
					return err
				}
			}
			if retryFor < 0 {
				return ironpool.FieldErrorf("retry-for", "must not be negative")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), max(retryFor, time.Millisecond))
			defer cancel()
			var out []*ironpool.Allocation
			for _, o := range owners {
				als, err := releaseOwnerRetry(ctx, cl, o)
				if err != nil {
					return err
				}
				out = append(out, als...)
			}
			for _, id := range args {
				al, err := releaseRetry(ctx, cl, id)
				if err != nil {
					return err
				}
				out = append(out, al)
			}
			if len(out) == 0 && a.output == "table" {
				fmt.Fprintf(a.env.Stderr, "%s holds no allocations\n", strings.Join(owners, ", "))
			}
			t := Table{Columns: releaseColumns}
			for _, al := range out {
				t.Rows = append(t.Rows, []string{al.ID, al.Owner, string(al.State)})
			}
			return a.render(a.env.Stdout, map[string]any{"allocations": out}, t)
		},
	}
	c.Flags().StringArrayVar(&owners, "owner", nil, "release every allocation of this owner (repeatable)")
	c.Flags().DurationVar(&retryFor, "retry-for", releaseBound, "keep retrying connection errors this long")
	return withColumns(c, releaseColumns)
}

var (
	releaseColumns   = []string{"id", "owner", "state"}
	allocListColumns = []string{"id", "owner", "state", "nodes", "expires"}
	allocColumns     = []string{"id", "owner", "state", "mode", "expires", "nodes", "last_error", "queue_position", "waiting_because", "estimate"}
)

// releaseOwnerRetry is releaseRetry for every allocation of an owner.
func releaseOwnerRetry(ctx context.Context, cl *client.Client, owner string) ([]*ironpool.Allocation, error) {
	backoff := 250 * time.Millisecond
	for {
		als, err := cl.ReleaseOwner(ctx, owner)
		if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE {
			return als, err
		}
		select {
		case <-ctx.Done():
			return als, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 4*time.Second)
	}
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
			if err := ironpool.AllocationState(state).Check("state"); state != "" && err != nil {
				return err
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
			t := Table{Columns: allocListColumns}
			for _, al := range out.Allocations {
				n := 0
				for _, it := range al.Items {
					n += len(it.Nodes)
				}
				exp := ""
				if !al.ExpiresAt.IsZero() {
					exp = al.ExpiresAt.Local().Format(time.RFC3339)
				}
				t.Rows = append(t.Rows, []string{al.ID, al.Owner, string(al.State), itoa(n), exp})
			}
			return a.render(a.env.Stdout, out, t)
		},
	}
	list.Flags().StringVar(&owner, "owner", "", "only this owner's")
	list.Flags().StringVar(&state, "state", "", "only in this state")
	list.Flags().BoolVar(&all, "all", false, "include ended allocations")
	withColumns(list, allocListColumns)
	show := withFormats(&cobra.Command{
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
	}, allocationFormats...)
	show.Flags().BoolVar(&a.showSecrets, "show-secrets", false, "show BMC passwords in table output")
	withColumns(show, allocColumns)
	var ttl string
	extend := withFormats(&cobra.Command{
		Use:   "extend ID --ttl DURATION",
		Short: "Renew a lease to now + ttl",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl == "" {
				return usagef("--ttl is required")
			}
			if _, err := parsePositive("ttl", ttl); err != nil {
				return err
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
	}, allocationFormats...)
	extend.Flags().StringVar(&ttl, "ttl", "", "new lease length from now, e.g. 2h")
	c.AddCommand(list, show, extend)
	return c
}

// allocationRecord is an allocation as one record of allocColumns, for
// -c, -o value and -o csv.
func allocationRecord(al *ironpool.Allocation) Table {
	var nodes []string
	for _, n := range al.Nodes {
		nodes = append(nodes, n.Name)
	}
	if len(nodes) == 0 {
		for _, it := range al.Items {
			nodes = append(nodes, it.Nodes...)
		}
	}
	exp, pos, why, est := "", "", "", ""
	if !al.ExpiresAt.IsZero() {
		exp = al.ExpiresAt.Local().Format(time.RFC3339)
	}
	if q := al.Queue; q != nil {
		pos, why = fmt.Sprintf("%d of %d", q.Position, q.Length), q.Reason
		if !q.EstimatedAt.IsZero() {
			est = q.EstimatedAt.Local().Format(time.RFC3339)
		}
	}
	return Table{Record: true, Columns: allocColumns,
		Rows: [][]string{{al.ID, al.Owner, string(al.State), string(al.Mode), exp, strings.Join(nodes, " "), al.LastError, pos, why, est}}}
}
