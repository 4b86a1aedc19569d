package soak

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// Evidence is what the checker judges: the client history, the audit log
// and the allocations as the servers report them after the run, with the
// inventory and flavors the campaign seeded.
type Evidence struct {
	Ops         []*Op
	Events      []*ironpool.Event
	Allocations map[string]*AllocView // by id, read back after the run
	Nodes       []*ironpool.Node
	Flavors     []ironpool.Flavor
	// Settle is how long after a nemesis healed a missed queue deadline or
	// a late expiry is excused: the time a new leader needs to take over.
	Settle time.Duration
}

// Report is the checker's verdict.
type Report struct {
	Ops      int             `json:"ops"`
	Outcomes map[Outcome]int `json:"outcomes"`
	ByKind   map[Kind]int    `json:"by_kind"`
	Nemeses  []string        `json:"nemeses"`
	Events   int             `json:"events"`

	Allocations     int `json:"allocations"` // created (active at some point)
	Queued          int `json:"queued"`      // went through the queue
	Extended        int `json:"extended"`    // acknowledged renewals
	ExpiredByReaper int `json:"expired_by_reaper"`

	// Violations counts each broken promise; Examples keeps the first few
	// of each, in words.
	Violations map[string]int      `json:"violations"`
	Examples   map[string][]string `json:"examples"`
	// Excused counts deadline and reaper delays inside a nemesis window.
	Excused map[string]int `json:"excused"`

	// Stalls counts the moments the campaign's own process got no CPU for
	// over 200 ms; MaxStall is the longest.
	Stalls   int           `json:"stalls"`
	MaxStall time.Duration `json:"max_stall"`

	MaxDeadlineLate time.Duration `json:"max_deadline_late"`
	MaxReaperLate   time.Duration `json:"max_reaper_late"`
	// MaxLeaseShort is the most a dispatched lease was shorter than asked.
	MaxLeaseShort time.Duration `json:"max_lease_short"`
	// MaxSkew is the largest clock jump of the run; Skewed counts the
	// comparisons that overlapped a jump and were allowed its size.
	MaxSkew time.Duration `json:"max_skew"`
	Skewed  int           `json:"skewed"`
	// skew is the allowance for a comparison of server and client time
	// (see Check); the linearizability check uses it too.
	skew func(from, to time.Time) time.Duration

	Linearizable  string `json:"linearizable"` // Ok, Illegal or Unknown (timed out)
	LinPartitions int    `json:"lin_partitions"`
	LinOps        int    `json:"lin_ops"`
	LinExample    string `json:"lin_example,omitempty"`
}

// OK reports whether no promise was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 && r.Linearizable != "Illegal" }

func (r *Report) violate(kind, format string, args ...any) {
	r.Violations[kind]++
	if len(r.Examples[kind]) < 5 {
		r.Examples[kind] = append(r.Examples[kind], fmt.Sprintf(format, args...))
	}
}

// Summary is the report in a few lines.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ops=%d ok=%d fail=%d unknown=%d events=%d allocations=%d queued=%d extended=%d expired=%d\n",
		r.Ops, r.Outcomes[OK], r.Outcomes[Fail], r.Outcomes[Unknown], r.Events, r.Allocations, r.Queued, r.Extended, r.ExpiredByReaper)
	fmt.Fprintf(&b, "nemeses=%d linearizable=%s (partitions=%d ops=%d) max_deadline_late=%s max_reaper_late=%s max_lease_short=%s\n",
		len(r.Nemeses), r.Linearizable, r.LinPartitions, r.LinOps, r.MaxDeadlineLate, r.MaxReaperLate, r.MaxLeaseShort)
	fmt.Fprintf(&b, "machine stalls=%d (longest %s) excused=%v clock jumps up to %s (%d comparisons allowed it)\n", r.Stalls, r.MaxStall.Round(time.Millisecond), r.Excused, r.MaxSkew, r.Skewed)
	if len(r.Violations) == 0 {
		b.WriteString("violations: none\n")
	}
	kinds := make([]string, 0, len(r.Violations))
	for k := range r.Violations {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "VIOLATION %s ×%d\n", k, r.Violations[k])
		for _, e := range r.Examples[k] {
			fmt.Fprintf(&b, "  - %s\n", e)
		}
	}
	if r.LinExample != "" {
		fmt.Fprintf(&b, "linearizability: %s\n", r.LinExample)
	}
	return b.String()
}

// life is one allocation's story as the audit log tells it.
type life struct {
	id                  string
	queuedAt, createdAt time.Time
	createdEvent        int64
	end                 *ironpool.Event
}

// Check judges the evidence. Every promise of docs/RELIABILITY.md
// ("Campaign") is one block below.
func Check(ev *Evidence) *Report {
	r := &Report{Outcomes: map[Outcome]int{}, ByKind: map[Kind]int{}, Violations: map[string]int{},
		Examples: map[string][]string{}, Excused: map[string]int{}, Events: len(ev.Events)}
	if ev.Settle == 0 {
		ev.Settle = 8 * time.Second
	}
	nodes := map[string]*ironpool.Node{}
	for _, n := range ev.Nodes {
		nodes[n.Name] = n
	}
	flavors := map[string]ironpool.Constraints{}
	for _, f := range ev.Flavors {
		flavors[f.Name] = f.Constraints
	}
	var windows [][2]time.Time // nemesis windows, extended by Settle
	var jumps []clockJump      // clock-jump windows
	var stalls [][2]time.Time  // machine stalls, extended by a second
	for _, op := range ev.Ops {
		if op.Kind == OpStall {
			r.Stalls++
			if d := op.Healed.Sub(op.Call); d > r.MaxStall {
				r.MaxStall = d
			}
			stalls = append(stalls, [2]time.Time{op.Call, op.Healed.Add(time.Second)})
			continue
		}
		if op.Kind == OpNemesis {
			r.Nemeses = append(r.Nemeses, op.Nemesis)
			end := op.Healed
			if end.IsZero() {
				end = op.Call.Add(time.Hour)
			}
			windows = append(windows, [2]time.Time{op.Call, end.Add(ev.Settle)})
			if op.Skew > 0 {
				jumps = append(jumps, clockJump{op.Call, end, op.Skew})
				if op.Skew > r.MaxSkew {
					r.MaxSkew = op.Skew
				}
			}
			continue
		}
		r.Ops++
		r.Outcomes[op.Outcome]++
		r.ByKind[op.Kind]++
	}
	// excused says why a delay from..to is not held against the servers:
	// a nemesis was running (or a new leader taking over), or the whole
	// machine stalled.
	excused := func(kind string, from, to time.Time) bool {
		for _, w := range windows {
			if from.Before(w[1]) && to.After(w[0]) {
				r.Excused[kind]++
				return true
			}
		}
		for _, w := range stalls {
			if from.Before(w[1]) && to.After(w[0]) {
				r.Excused[kind+" (machine stall)"]++
				return true
			}
		}
		return false
	}

	// skew is what a comparison of a server's time with the client's may
	// be off by when it concerns from..to: the jump of a clock-jump window
	// that overlaps it (widened by the jump, since a server's timestamps
	// are off by that much), else nothing. Two server timestamps may be
	// off by twice that: one written while a clock ran D ahead, the other
	// while it ran D behind. These are the bounds docs/RELIABILITY.md
	// promises under clock jumps, and no more.
	skew := func(from, to time.Time) time.Duration {
		var d time.Duration
		for _, j := range jumps {
			if from.Before(j.to.Add(j.d)) && to.After(j.from.Add(-j.d)) && j.d > d {
				d = j.d
			}
		}
		if d > 0 {
			r.Skewed++
		}
		return d
	}
	r.skew = skew

	// The audit log, per allocation.
	lives := map[string]*life{}
	get := func(id string) *life {
		l := lives[id]
		if l == nil {
			l = &life{id: id}
			lives[id] = l
		}
		return l
	}
	events := slices.Clone(ev.Events)
	slices.SortFunc(events, func(a, b *ironpool.Event) int { return int(a.ID - b.ID) })
	for _, e := range events {
		id, ok := strings.CutPrefix(e.Subject, "allocation/")
		if !ok {
			continue
		}
		l := get(id)
		switch e.Action {
		case "allocation.queued":
			l.queuedAt = e.Time
		case "allocation.created":
			l.createdAt, l.createdEvent = e.Time, e.ID
		case "allocation.released", "allocation.expired", "allocation.failed":
			if l.end != nil {
				r.violate("ended-twice", "allocation %s ended twice: %s at %s, then %s at %s", id, l.end.Action, l.end.Time, e.Action, e.Time)
				continue
			}
			l.end = e
		case "allocation.extended":
			r.Extended++
		}
	}

	// 1. No node in two live allocations at any instant, from the audit
	// log: walking it in commit order, a node is taken by allocation.created
	// and given back by the allocation's end.
	holder := map[string]string{}
	for _, e := range events {
		id, ok := strings.CutPrefix(e.Subject, "allocation/")
		if !ok {
			continue
		}
		a := ev.Allocations[id]
		switch e.Action {
		case "allocation.created":
			r.Allocations++
			if a == nil {
				r.violate("unknown-allocation", "the audit log creates allocation %s, which the API does not list", id)
				continue
			}
			for _, n := range a.NodeNames() {
				if h := holder[n]; h != "" {
					r.violate("double-allocation", "node %s given to %s at %s (event %d) while %s still held it", n, id, e.Time.Format(time.StampMilli), e.ID, h)
				}
				holder[n] = id
			}
		case "allocation.released", "allocation.expired", "allocation.failed":
			if a == nil {
				continue
			}
			for _, n := range a.NodeNames() {
				if holder[n] == id {
					delete(holder, n)
				}
			}
		}
	}

	// What the clients were told, per allocation.
	type told struct {
		op     *Op       // the request that created it (nil: not known)
		ackExp time.Time // the expiry last acknowledged
		ackAt  time.Time // when that acknowledgement came back
		// wFrom..wTo is the request (create or extend) that wrote the
		// expiry last acknowledged: a replica's clock wrote it then.
		wFrom, wTo time.Time
		held       time.Time // when the client first knew it held the nodes
		view       *AllocView
		ttl        time.Duration
		waited     bool
		extends    int
	}
	tolds := map[string]*told{}
	byTag := map[string]*Op{}
	releases := map[string][]*Op{} // by allocation id and by "owner:"+owner
	for _, op := range ev.Ops {
		switch op.Kind {
		case OpAllocate:
			byTag[op.Tag] = op
		case OpRelease:
			releases[op.ID] = append(releases[op.ID], op)
		case OpReleaseOwner:
			releases["owner:"+op.Owner] = append(releases["owner:"+op.Owner], op)
		}
	}
	acked := func(id string, t time.Time, v *AllocView) *told {
		x := tolds[id]
		if x == nil {
			x = &told{}
			tolds[id] = x
		}
		if v != nil && v.State == ironpool.AllocActive {
			if x.held.IsZero() || t.Before(x.held) {
				x.held, x.view = t, v
			}
			// Extend sets the expiry to now+ttl, which may be sooner than
			// before: the promise is the latest acknowledgement's. One
			// client drives each allocation, one request at a time.
			if !t.Before(x.ackAt) {
				x.ackExp, x.ackAt = v.ExpiresAt, t
			}
		}
		return x
	}
	for _, op := range ev.Ops {
		if op.Outcome != OK || op.Alloc == nil {
			continue
		}
		switch op.Kind {
		case OpAllocate:
			x := acked(op.Alloc.ID, op.Return, op.Alloc)
			x.op, x.ttl, x.waited = op, op.TTL, op.Wait > 0
			if x.ackAt.Equal(op.Return) {
				x.wFrom, x.wTo = op.Call, op.Return
			}
			if op.Alloc.State == ironpool.AllocActive {
				checkShape(r, op, op.Alloc, nodes, flavors)
				if short := op.TTL - op.Alloc.ExpiresAt.Sub(op.Call); short > 2*time.Millisecond+skew(op.Call, op.Return) {
					r.violate("short-lease", "allocation %s asked ttl %s at %s and was given expiry %s", op.Alloc.ID, op.TTL, op.Call.Format(time.StampMilli), op.Alloc.ExpiresAt.Format(time.StampMilli))
				}
			}
		case OpGet:
			if op.Alloc.State == ironpool.AllocActive {
				acked(op.Alloc.ID, op.Return, op.Alloc)
			}
		case OpExtend:
			x := acked(op.Alloc.ID, op.Return, op.Alloc)
			x.extends++
			if x.ackAt.Equal(op.Return) {
				x.wFrom, x.wTo = op.Call, op.Return
			}
			if short := op.TTL - op.Alloc.ExpiresAt.Sub(op.Call); short > 2*time.Millisecond+skew(op.Call, op.Return) {
				r.violate("short-lease", "extend of %s by %s at %s acknowledged expiry %s", op.Alloc.ID, op.TTL, op.Call.Format(time.StampMilli), op.Alloc.ExpiresAt.Format(time.StampMilli))
			}
		}
	}
	// A request the server refused (4xx) changed nothing: no allocation
	// carries its tag. And an allocation created by a request whose reply
	// was lost is still tied to it.
	for _, a := range ev.Allocations {
		op := byTag[a.Tag]
		if op == nil {
			continue
		}
		if op.Outcome == Fail {
			r.violate("refused-but-made", "allocate %s was refused (%d %s) yet allocation %s exists (%s)", a.Tag, op.Status, op.Code, a.ID, a.State)
		}
		x := tolds[a.ID]
		if x == nil {
			x = &told{}
			tolds[a.ID] = x
		}
		x.op, x.ttl, x.waited = op, op.TTL, op.Wait > 0
	}

	for id, x := range tolds {
		final := ev.Allocations[id]
		l := lives[id]
		if final == nil {
			if !x.held.IsZero() {
				r.violate("lost-allocation", "allocation %s was acknowledged at %s but the server no longer knows it", id, x.held.Format(time.StampMilli))
			}
			continue
		}
		// A queued request that was served: the shape of what it got, and
		// a lease as long as asked, counted from when it was served.
		if x.waited && l != nil && !l.queuedAt.IsZero() {
			r.Queued++
			if !l.createdAt.IsZero() && x.op != nil {
				if x.view != nil {
					checkShape(r, x.op, x.view, nodes, flavors)
				}
				short := x.ttl - final.ExpiresAt.Sub(l.createdAt)
				if final.State != ironpool.AllocActive && x.ackExp.After(final.ExpiresAt) {
					short = x.ttl - x.ackExp.Sub(l.createdAt)
				}
				if x.extends == 0 && short > r.MaxLeaseShort {
					r.MaxLeaseShort = short
				}
				if x.extends == 0 && short > time.Second+2*skew(l.createdAt, final.ExpiresAt) {
					r.violate("short-lease", "queued allocation %s was served at %s with expiry %s: %s shorter than its ttl %s", id,
						l.createdAt.Format(time.StampMilli), final.ExpiresAt.Format(time.StampMilli), short.Round(time.Millisecond), x.ttl)
				}
			}
		}
		if x.held.IsZero() {
			continue
		}
		// 2. Every acknowledged allocation and renewal is honoured until
		// its acknowledged expiry.
		if l == nil || l.createdAt.IsZero() {
			r.violate("lost-allocation", "allocation %s was acknowledged but the audit log never created it", id)
			continue
		}
		ack := x.ackExp.Truncate(time.Millisecond)
		switch {
		case l.end == nil:
			if !final.State.Live() {
				r.violate("silent-end", "allocation %s is %s with no audit event", id, final.State)
			}
		case l.end.Action == "allocation.expired":
			r.ExpiredByReaper++
			if l.end.Time.Before(ack.Add(-2 * skew(l.end.Time, ack))) {
				r.violate("lost-renewal", "allocation %s expired at %s, before its acknowledged expiry %s", id, l.end.Time.Format(time.StampMilli), x.ackExp.Format(time.StampMilli))
			}
			late := l.end.Time.Sub(final.ExpiresAt)
			if late > time.Second+100*time.Millisecond {
				if !excused("reaper-late", final.ExpiresAt, l.end.Time) {
					r.violate("reaper-late", "allocation %s expiring at %s was reaped %s late", id, final.ExpiresAt.Format(time.StampMilli), late)
				}
			} else if late > r.MaxReaperLate {
				r.MaxReaperLate = late
			}
		case l.end.Action == "allocation.released":
			asked := false
			for _, op := range append(releases[id], releases["owner:"+final.Owner]...) {
				if !op.Call.After(l.end.Time.Add(time.Millisecond + skew(l.end.Time, l.end.Time))) {
					asked = true
					break
				}
			}
			if !asked {
				r.violate("released-unasked", "allocation %s was released at %s though no client had asked", id, l.end.Time.Format(time.StampMilli))
			}
		default:
			r.violate("acked-then-failed", "allocation %s was acknowledged active and then %s", id, l.end.Action)
		}
		if final.State == ironpool.AllocActive && final.ExpiresAt.Before(ack) {
			r.violate("lost-renewal", "allocation %s was acknowledged until %s but the server has it expiring %s", id, x.ackExp.Format(time.StampMilli), final.ExpiresAt.Format(time.StampMilli))
		}
	}

	// 1b. No double allocation as the clients saw it: a node is certainly
	// held from the reply that gave it until the first release asked or the
	// acknowledged expiry; two such spans of one node must not overlap.
	type span struct {
		from, to time.Time
		id       string
	}
	spans := map[string][]span{}
	for id, x := range tolds {
		if x.held.IsZero() || x.view == nil {
			continue
		}
		owner := x.view.Owner
		start := x.held // the earliest the allocation can have been made
		if x.op != nil {
			start = x.op.Call
		}
		// The acknowledged expiry is on the servers' clocks: a clock that
		// was off when it was written, or when the leader enforced it
		// (about the expiry), may end the lease that much earlier in the
		// client's time. A jump in between changes nothing. An expiry
		// written by the queue (no request wrote it) gets the whole span.
		allow := skew(x.ackExp, x.ackExp)
		if x.wFrom.IsZero() {
			allow = max(allow, skew(start, x.ackExp))
		} else {
			allow = max(allow, skew(x.wFrom, x.wTo))
		}
		to := x.ackExp.Add(-allow)
		for _, op := range append(releases[id], releases["owner:"+owner]...) {
			if op.Outcome == Fail {
				continue
			}
			if (op.Outcome == Unknown || op.Return.After(start)) && op.Call.Before(to) {
				to = op.Call
			}
		}
		for _, n := range x.view.NodeNames() {
			spans[n] = append(spans[n], span{x.held, to, id})
		}
	}
	for n, ss := range spans {
		slices.SortFunc(ss, func(a, b span) int { return a.from.Compare(b.from) })
		var cur span
		for _, s := range ss {
			if s.to.Before(s.from) {
				continue
			}
			if !cur.to.IsZero() && s.from.Before(cur.to) {
				r.violate("double-allocation", "node %s held by %s until %s and acknowledged to %s at %s", n, cur.id, cur.to.Format(time.StampMilli), s.id, s.from.Format(time.StampMilli))
			}
			if s.to.After(cur.to) {
				cur = s
			}
		}
	}

	// 3. Capacity sums, from every read: the node counts are the inventory,
	// each flavor's total is the nodes that match it exactly, free ≤ total;
	// a node list names only holders that hold the node.
	want := map[string]int{}
	for name, c := range flavors {
		for _, n := range ev.Nodes {
			if matches(&c, n) {
				want[name]++
			}
		}
	}
	for _, op := range ev.Ops {
		if op.Outcome != OK {
			continue
		}
		switch op.Kind {
		case OpStatus, OpNodes:
			if op.NodeCount != len(ev.Nodes) {
				r.violate("capacity-sum", "%s read at %s counted %d nodes; the pool has %d", op.Kind, op.Call.Format(time.StampMilli), op.NodeCount, len(ev.Nodes))
			}
			for n, id := range op.Holders {
				if id == "" {
					continue
				}
				if a := ev.Allocations[id]; a == nil || !slices.Contains(a.NodeNames(), n) {
					r.violate("capacity-sum", "node list at %s shows %s held by %s, which does not hold it", op.Call.Format(time.StampMilli), n, id)
				}
			}
		case OpCapacity:
			for _, row := range op.Capacity {
				w, ok := want[row.Flavor]
				if !ok || row.Pool != PoolName {
					continue
				}
				if row.Total != w || row.Free < 0 || row.Free > row.Total {
					r.violate("capacity-sum", "capacity at %s: flavor %s free %d of %d; %d nodes match it", op.Call.Format(time.StampMilli), row.Flavor, row.Free, row.Total, w)
				}
			}
		}
	}

	// 4. Queue deadlines: a queued request is served before its deadline or
	// failed within a second after it.
	for id, l := range lives {
		if l.queuedAt.IsZero() {
			continue
		}
		a := ev.Allocations[id]
		if a == nil || a.WaitUntil.IsZero() {
			continue
		}
		w := a.WaitUntil
		switch {
		case !l.createdAt.IsZero():
			// Within the second the promise allows: the dispatch decides
			// on its transaction's time and commits a moment later.
			if l.createdAt.After(w.Add(time.Second + 2*skew(w, l.createdAt))) {
				r.violate("served-after-deadline", "queued allocation %s with deadline %s was served at %s", id, w.Format(time.StampMilli), l.createdAt.Format(time.StampMilli))
			}
		case l.end != nil && l.end.Action == "allocation.failed":
			late := l.end.Time.Sub(w)
			if late < -time.Millisecond-2*skew(l.end.Time, w) {
				r.violate("failed-before-deadline", "queued allocation %s with deadline %s failed at %s", id, w.Format(time.StampMilli), l.end.Time.Format(time.StampMilli))
			} else if late > time.Second {
				if !excused("deadline-late", w, l.end.Time) {
					r.violate("deadline-late", "queued allocation %s with deadline %s failed %s late", id, w.Format(time.StampMilli), late)
				}
			} else if late > r.MaxDeadlineLate {
				r.MaxDeadlineLate = late
			}
		case l.end == nil && a.State == ironpool.AllocQueued:
			r.violate("deadline-never", "queued allocation %s with deadline %s is still queued", id, w.Format(time.StampMilli))
		}
	}

	// 5. Linearizability of each allocation's register.
	checkLinear(r, ev, lives)
	return r
}

// clockJump is a window in which one replica's clock was off by up to d.
type clockJump struct {
	from, to time.Time
	d        time.Duration
}

// checkShape checks that an active allocation holds exactly what op asked:
// the items in order, each with its count of distinct nodes that match the
// item's constraints exactly.
func checkShape(r *Report, op *Op, a *AllocView, nodes map[string]*ironpool.Node, flavors map[string]ironpool.Constraints) {
	if len(a.Items) != len(op.Items) {
		r.violate("wrong-shape", "allocation %s has %d items; %d were asked", a.ID, len(a.Items), len(op.Items))
		return
	}
	seen := map[string]bool{}
	for i, it := range a.Items {
		asked := op.Items[i]
		if it.Flavor != asked.Flavor || it.Count != asked.Count || len(it.Nodes) != asked.Count {
			r.violate("wrong-shape", "allocation %s item %d is %q×%d with %d nodes; %q×%d was asked", a.ID, i, it.Flavor, it.Count, len(it.Nodes), asked.Flavor, asked.Count)
			continue
		}
		c := inlineItem
		if asked.Flavor != "" {
			c = flavors[asked.Flavor]
		}
		for _, name := range it.Nodes {
			n := nodes[name]
			switch {
			case n == nil:
				r.violate("wrong-shape", "allocation %s item %d names unknown node %s", a.ID, i, name)
			case seen[name]:
				r.violate("wrong-shape", "allocation %s gives node %s twice", a.ID, name)
			case !matches(&c, n):
				r.violate("wrong-node", "allocation %s item %d (%s) got node %s (cpus %d, traits %v, arch %s) which does not match", a.ID, i, asked.Flavor, name, n.CPUs, n.Traits, n.CPUArch)
			}
			seen[name] = true
		}
	}
}

// matches is the checker's own reading of the constraint semantics
// (README "Concepts"): cpus, memory and disk are minimums; arch, resource
// class, pool and every trait must match exactly.
func matches(c *ironpool.Constraints, n *ironpool.Node) bool {
	if n.CPUs < c.CPUs || n.MemoryMB < c.MemoryMB || n.LocalGB < c.LocalGB {
		return false
	}
	if (c.CPUArch != "" && c.CPUArch != n.CPUArch) || (c.ResourceClass != "" && c.ResourceClass != n.ResourceClass) ||
		(c.Pool != "" && c.Pool != n.Pool) {
		return false
	}
	for _, t := range c.Traits {
		if !slices.Contains(n.Traits, t) {
			return false
		}
	}
	return true
}
