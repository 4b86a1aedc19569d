package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ironpool/ironpool"
)

// GapSetter is implemented by stores whose cleaning gap between holds
// tests may set (the server's --reservation-gap).
type GapSetter interface {
	SetReservationGap(time.Duration)
}

const testGap = 10 * time.Minute

// withGap sets the suite's cleaning gap on s, or skips the test.
func withGap(t *testing.T, s ironpool.Store) {
	t.Helper()
	g, ok := s.(GapSetter)
	if !ok {
		t.Skipf("skipped: %T does not implement storetest.GapSetter", s)
	}
	g.SetReservationGap(testGap)
}

// booking returns a reservation of owner's items over [start, end).
func booking(owner string, start, end time.Time, items ...ironpool.AllocationItem) *ironpool.Reservation {
	return &ironpool.Reservation{Owner: owner, Mode: ironpool.ModeNone, Items: items, Start: start, End: end}
}

// leaseAt is a request for a lease of ttl starting at the clock's now.
func leaseAt(c *clock, owner string, ttl time.Duration, items ...ironpool.AllocationItem) *ironpool.Allocation {
	a := request(owner, items...)
	a.CreatedAt, a.ExpiresAt, a.TTL = c.Now(), c.Now().Add(ttl), ttl
	return a
}

func testReservations(t *testing.T, open func(t *testing.T) ironpool.Store) {
	setup := func(t *testing.T, n int) (ironpool.Store, *clock, context.Context) {
		s := open(t)
		c := withClock(t, s)
		withGap(t, s)
		for i := range n {
			mustCreate(t, s, newNode(t, fmt.Sprintf("n%d", i+1), 4+i))
		}
		return s, c, ctxFor(t)
	}

	t.Run("OK", func(t *testing.T) {
		s, c, ctx := setup(t, 3)
		r := booking("lab1", c.Now().Add(2*time.Hour), c.Now().Add(4*time.Hour), item("", 2, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.ID == "" || r.State != ironpool.ResPending || len(r.Items[0].Nodes) != 2 {
			t.Fatalf("Reserve = %+v, want pending with 2 named nodes", r)
		}
		if got := r.Items[0].Nodes; !slices.Equal(got, []string{"n1", "n2"}) {
			t.Errorf("nodes = %v, want the best fits n1 n2", got)
		}
		got, err := s.FindReservation(ctx, r.ID)
		if err != nil || got.State != ironpool.ResPending || !got.Start.Equal(r.Start) || got.Gap != testGap.String() {
			t.Fatalf("FindReservation = %+v, %v", got, err)
		}
		if n := countEvents(t, s, "reservation.created"); n != 1 {
			t.Errorf("reservation.created events = %d, want 1", n)
		}
		list, err := s.FindReservations(ctx, ironpool.ReservationFilter{Owner: "lab1", Live: true})
		if err != nil || len(list) != 1 {
			t.Errorf("FindReservations = %d, %v; want 1", len(list), err)
		}
	})

	t.Run("ErrPastWindow", func(t *testing.T) {
		s, c, ctx := setup(t, 1)
		before := takeSnapshot(t, s)
		e := wantCode(t, s.Reserve(ctx, booking("lab1", c.Now().Add(-time.Minute), c.Now().Add(time.Hour), item("", 1, anyNode()))), ironpool.EINVALID)
		if e.Field != "start" {
			t.Errorf("field = %q, want start", e.Field)
		}
		e = wantCode(t, s.Reserve(ctx, booking("lab1", c.Now().Add(time.Hour), c.Now().Add(time.Hour), item("", 1, anyNode()))), ironpool.EINVALID)
		if e.Field != "end" {
			t.Errorf("field = %q, want end", e.Field)
		}
		sameSnapshot(t, s, before, "refused reservations")
		if list, _ := s.FindReservations(ctx, ironpool.ReservationFilter{}); len(list) != 0 {
			t.Errorf("%d reservations stored, want none", len(list))
		}
	})

	t.Run("LeaseAndGap", func(t *testing.T) {
		s, c, ctx := setup(t, 2)
		a := mustAllocate(t, s, leaseAt(c, "lab1", 3*time.Hour, item("", 2, anyNode())))
		// A window starting before the leases end plus the gap is short.
		before := takeSnapshot(t, s)
		err := s.Reserve(ctx, booking("lab2", a.ExpiresAt.Add(testGap-time.Minute), a.ExpiresAt.Add(2*time.Hour), item("", 1, anyNode())))
		e := wantCode(t, err, ironpool.ECAPACITY)
		if e.Field != "items[0]" || len(e.Shortfall) != 1 || e.Shortfall[0].Free != 0 || e.Shortfall[0].Matching != 2 {
			t.Fatalf("refusal = %+v (%v), want items[0] with 2 matching, 0 free", e, e)
		}
		if sf := e.Shortfall[0]; sf.From.IsZero() || !sf.To.After(sf.From) {
			t.Errorf("shortfall interval = %v..%v, want a non-empty interval", sf.From, sf.To)
		}
		sameSnapshot(t, s, before, "refused reservation")
		// Exactly at expiry + gap it fits.
		r := booking("lab2", a.ExpiresAt.Add(testGap), a.ExpiresAt.Add(2*time.Hour), item("", 2, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatalf("reserve at expiry+gap: %v", err)
		}
		// The next window on the same nodes must keep the gap after it.
		err = s.Reserve(ctx, booking("lab3", r.End.Add(testGap-time.Millisecond), r.End.Add(time.Hour), item("", 1, anyNode())))
		wantCode(t, err, ironpool.ECAPACITY)
		if err := s.Reserve(ctx, booking("lab3", r.End.Add(testGap), r.End.Add(time.Hour), item("", 1, anyNode()))); err != nil {
			t.Fatalf("reserve after the gap: %v", err)
		}
	})

	t.Run("AllocationsKeepOff", func(t *testing.T) {
		s, c, ctx := setup(t, 2)
		r := booking("lab1", c.Now().Add(2*time.Hour), c.Now().Add(3*time.Hour), item("", 1, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		reserved := r.Items[0].Nodes[0]
		// A lease that would end within the gap of the window takes the
		// other node, then nothing.
		a := mustAllocate(t, s, leaseAt(c, "lab2", 2*time.Hour-testGap+time.Minute, item("", 1, anyNode())))
		if a.Items[0].Nodes[0] == reserved {
			t.Fatalf("allocation took reserved node %s", reserved)
		}
		before := takeSnapshot(t, s)
		wantCode(t, s.Allocate(ctx, leaseAt(c, "lab2", 2*time.Hour-testGap+time.Minute, item("", 1, anyNode())), false), ironpool.ECAPACITY)
		sameSnapshot(t, s, before, "refused allocation")
		// A short lease that ends before the window and its gap may use it.
		b := mustAllocate(t, s, leaseAt(c, "lab2", 2*time.Hour-testGap, item("", 1, anyNode())))
		if b.Items[0].Nodes[0] != reserved {
			t.Fatalf("short lease took %s, want %s", b.Items[0].Nodes[0], reserved)
		}
		// It cannot be extended into the window.
		before = takeSnapshot(t, s)
		_, err := s.ExtendAllocation(ctx, b.ID, 2*time.Hour)
		e := wantCode(t, err, ironpool.ECONFLICT)
		if e.Field != "ttl" || !containsAll(e.Message, r.ID, reserved) {
			t.Errorf("extend refusal = %q (field %s), want it to name the reservation and node", e.Message, e.Field)
		}
		sameSnapshot(t, s, before, "refused extend")
		if got, _ := s.FindAllocation(ctx, b.ID); !got.ExpiresAt.Equal(b.ExpiresAt) {
			t.Errorf("expiry moved to %v", got.ExpiresAt)
		}
		// Cancelled, the node is free for the long lease again.
		if _, err := s.CancelReservation(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ExtendAllocation(ctx, b.ID, 5*time.Hour); err != nil {
			t.Errorf("extend after cancel: %v", err)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		s, c, ctx := setup(t, 1)
		r := booking("lab1", c.Now().Add(time.Hour), c.Now().Add(2*time.Hour), item("", 1, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		for range 2 { // idempotent
			got, err := s.CancelReservation(ctx, r.ID)
			if err != nil || got.State != ironpool.ResCancelled {
				t.Fatalf("cancel = %+v, %v", got, err)
			}
		}
		if n := countEvents(t, s, "reservation.cancelled"); n != 1 {
			t.Errorf("reservation.cancelled events = %d, want 1", n)
		}
		_, err := s.CancelReservation(ctx, "no-such")
		wantCode(t, err, ironpool.ENOTFOUND)
		if err := s.Reserve(ctx, booking("lab2", r.Start, r.End, item("", 1, anyNode()))); err != nil {
			t.Errorf("rebooking the cancelled window: %v", err)
		}
	})

	t.Run("Start", func(t *testing.T) {
		s, c, ctx := setup(t, 2)
		r := booking("lab1", c.Now().Add(time.Hour), c.Now().Add(3*time.Hour), item("", 2, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		if next, _ := s.NextExpiry(ctx); !next.Equal(r.Start) {
			t.Errorf("NextExpiry = %v, want the start %v", next, r.Start)
		}
		if ch, st, err := s.StartReservations(ctx); err != nil || len(ch)+len(st) != 0 {
			t.Fatalf("before the start: %d changed, %d started, %v", len(ch), len(st), err)
		}
		c.Add(time.Hour)
		ch, st, err := s.StartReservations(ctx)
		if err != nil || len(ch) != 1 || len(st) != 1 {
			t.Fatalf("at the start: %d changed, %d started, %v", len(ch), len(st), err)
		}
		a := st[0]
		if a.State != ironpool.AllocActive || a.Owner != "lab1" || !a.ExpiresAt.Equal(r.End) || len(a.Nodes) != 2 {
			t.Fatalf("allocation = %+v, want lab1's, active until %v with 2 nodes", a, r.End)
		}
		got, _ := s.FindReservation(ctx, r.ID)
		if got.State != ironpool.ResActive || got.AllocationID != a.ID {
			t.Errorf("reservation = %s %q, want active as %s", got.State, got.AllocationID, a.ID)
		}
		for _, n := range r.Items[0].Nodes {
			if nd := mustFind(t, s, n); nd.State != ironpool.NodeAllocated || nd.AllocationID != a.ID {
				t.Errorf("node %s = %s in %q, want allocated to %s", n, nd.State, nd.AllocationID, a.ID)
			}
		}
		_, err = s.CancelReservation(ctx, r.ID)
		wantCode(t, err, ironpool.ECONFLICT)
		// The lease machinery is the allocation's: it expires at the end.
		c.Set(r.End)
		if ex, err := s.ExpireAllocations(ctx, true); err != nil || len(ex) != 1 || ex[0].ID != a.ID {
			t.Errorf("expire at the end = %v, %v", ex, err)
		}
	})

	t.Run("Repair", func(t *testing.T) {
		s, c, ctx := setup(t, 3)
		r := booking("lab1", c.Now().Add(time.Hour), c.Now().Add(2*time.Hour), item("", 1, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		broken := r.Items[0].Nodes[0]
		maintain(t, s, broken)
		if _, _, err := s.StartReservations(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := s.FindReservation(ctx, r.ID)
		if got.State != ironpool.ResPending || len(got.Items[0].Nodes) != 1 || got.Items[0].Nodes[0] == broken {
			t.Fatalf("after %s broke: %+v, want pending on another node", broken, got.Items)
		}
		if n := countEvents(t, s, "reservation.repaired"); n != 1 {
			t.Errorf("reservation.repaired events = %d, want 1", n)
		}
		// With every other node broken too, it is at risk (told once),
		// then fails at the start.
		for _, n := range []string{"n1", "n2", "n3"} {
			if n != broken {
				maintain(t, s, n)
			}
		}
		for range 2 {
			if _, _, err := s.StartReservations(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := countEvents(t, s, "reservation.at_risk"); n != 1 {
			t.Errorf("reservation.at_risk events = %d, want 1", n)
		}
		if got, _ := s.FindReservation(ctx, r.ID); got.LastError == "" {
			t.Errorf("at-risk reservation has no last_error")
		}
		c.Add(time.Hour)
		if _, st, err := s.StartReservations(ctx); err != nil || len(st) != 0 {
			t.Fatalf("start with no node: %d started, %v", len(st), err)
		}
		got, _ = s.FindReservation(ctx, r.ID)
		if got.State != ironpool.ResFailed || got.LastError == "" {
			t.Errorf("reservation = %s (%q), want failed with a reason", got.State, got.LastError)
		}
		if n := countEvents(t, s, "reservation.failed"); n != 1 {
			t.Errorf("reservation.failed events = %d, want 1", n)
		}
	})

	t.Run("ReplaceAtStart", func(t *testing.T) {
		s, c, ctx := setup(t, 2)
		r := booking("lab1", c.Now().Add(time.Hour), c.Now().Add(2*time.Hour), item("", 1, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		// A node still cleaning at the start is bookable before, but not
		// available then: a free node takes its place.
		pinned := r.Items[0].Nodes[0]
		if _, err := s.UpdateNode(ctx, pinned, func(n *ironpool.Node) error { n.State = ironpool.NodeCleaning; return nil }); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Hour)
		_, st, err := s.StartReservations(ctx)
		if err != nil || len(st) != 1 || len(st[0].Nodes) != 1 || st[0].Nodes[0].Name == pinned {
			t.Fatalf("start = %v, %v; want one allocation on the other node", st, err)
		}
	})

	t.Run("Calendar", func(t *testing.T) {
		s, c, ctx := setup(t, 2)
		a := mustAllocate(t, s, leaseAt(c, "lab1", time.Hour, item("", 1, anyNode())))
		r := booking("lab2", c.Now().Add(2*time.Hour), c.Now().Add(3*time.Hour), item("", 1, anyNode()))
		if err := s.Reserve(ctx, r); err != nil {
			t.Fatal(err)
		}
		cal, err := s.Calendar(ctx, "", c.Now(), c.Now().Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string][]ironpool.HoldKind{}
		for _, n := range cal.Nodes {
			for _, h := range n.Holds {
				kinds[n.Node] = append(kinds[n.Node], h.Kind)
				if !h.CleanUntil.Equal(h.End.Add(testGap)) {
					t.Errorf("%s hold %s: clean_until %v, want end+gap", n.Node, h.ID, h.CleanUntil)
				}
			}
		}
		if got := kinds[a.Items[0].Nodes[0]]; !slices.Contains(got, ironpool.HoldLease) {
			t.Errorf("leased node holds = %v", got)
		}
		if got := kinds[r.Items[0].Nodes[0]]; !slices.Contains(got, ironpool.HoldReservation) {
			t.Errorf("reserved node holds = %v", got)
		}
	})

	t.Run("Quota", func(t *testing.T) {
		s, c, ctx := setup(t, 2)
		if _, err := s.SetQuota(ctx, &ironpool.Quota{Owner: "lab*", MaxLease: time.Hour, MaxNodes: 1}); err != nil {
			t.Fatal(err)
		}
		before := takeSnapshot(t, s)
		start := c.Now().Add(time.Hour)
		wantCode(t, s.Reserve(ctx, booking("lab1", start, start.Add(2*time.Hour), item("", 1, anyNode()))), ironpool.EQUOTA)
		wantCode(t, s.Reserve(ctx, booking("lab1", start, start.Add(time.Hour), item("", 2, anyNode()))), ironpool.EQUOTA)
		sameSnapshot(t, s, before, "bookings over quota")
		if err := s.Reserve(ctx, booking("lab1", start, start.Add(time.Hour), item("", 1, anyNode()))); err != nil {
			t.Errorf("booking within the quota: %v", err)
		}
	})

	t.Run("ItemsCompete", func(t *testing.T) {
		s, c, ctx := setup(t, 1)
		err := s.Reserve(ctx, booking("lab1", c.Now().Add(time.Hour), c.Now().Add(2*time.Hour),
			item("", 1, anyNode()), item("", 1, anyNode())))
		e := wantCode(t, err, ironpool.ECAPACITY)
		if e.Field != "items" || !strings.Contains(e.Message, "compete") {
			t.Errorf("refusal = %q (field %q), want the items named as competing", e.Message, e.Field)
		}
	})

	// Bookings and allocations racing for the same nodes never leave two
	// holds of one node closer than the gap: on PostgreSQL they run in
	// parallel transactions, and the booking's row locks and the claim's
	// re-check in its own statement are what keep them apart.
	t.Run("ConcurrentHolds", func(t *testing.T) {
		s, c, ctx := setup(t, 4)
		start := c.Now().Add(time.Hour)
		errs := make(chan error, 16)
		for i := range 16 {
			go func() {
				var err error
				if i%2 == 0 {
					err = s.Reserve(ctx, booking(fmt.Sprintf("lab%d", i), start, start.Add(time.Hour), item("", 1, anyNode())))
				} else {
					err = s.Allocate(ctx, leaseAt(c, fmt.Sprintf("ci%d", i), 2*time.Hour, item("", 1, anyNode())), false)
				}
				switch ironpool.ErrorCode(err) {
				case "", ironpool.ECAPACITY, ironpool.ECONFLICT:
					errs <- nil
				default:
					errs <- err
				}
			}()
		}
		for range 16 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		cal, err := s.Calendar(ctx, "", c.Now(), c.Now().Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, n := range cal.Nodes {
			held += len(n.Holds)
			for i, a := range n.Holds {
				for _, b := range n.Holds[i+1:] {
					if a.End.Add(testGap).After(b.Start) && b.End.Add(testGap).After(a.Start) {
						t.Errorf("node %s: %s %s and %s %s overlap within the gap", n.Node, a.Kind, a.ID, b.Kind, b.ID)
					}
				}
			}
		}
		if held != 4 {
			t.Errorf("%d holds on 4 nodes, want every node held once", held)
		}
	})

	t.Run("Property", func(t *testing.T) { testReservationProperty(t, open) })
}

func maintain(t *testing.T, s ironpool.Store, name string) {
	t.Helper()
	if _, err := s.UpdateNode(ctxFor(t), name, func(n *ironpool.Node) error {
		n.State, n.MaintenanceReason = ironpool.NodeMaintenance, "fan"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// span is one hold of a node in the property test's model.
type span struct {
	start, end time.Time
	res        string // reservation id, or "" for a lease
	lease      string // allocation id of a lease
}

// fits reports whether [s, e) keeps the gap to every hold of hs.
func fits(hs []span, s, e time.Time) bool {
	for _, h := range hs {
		if h.end.Add(testGap).After(s) && e.Add(testGap).After(h.start) {
			return false
		}
	}
	return true
}

// assignable is the brute force: can distinct nodes be given to every slot
// (item i needs counts[i]) with ok(item, node)?
func assignable(counts []int, nodes int, ok func(item, node int) bool) bool {
	var slots []int
	for i, c := range counts {
		for range c {
			slots = append(slots, i)
		}
	}
	used := make([]bool, nodes)
	var try func(k int) bool
	try = func(k int) bool {
		if k == len(slots) {
			return true
		}
		for n := range nodes {
			if !used[n] && ok(slots[k], n) {
				used[n] = true
				if try(k + 1) {
					return true
				}
				used[n] = false
			}
		}
		return false
	}
	return try(0)
}

// testReservationProperty books random windows and leases on small pools
// and checks every answer against brute force: a reservation is granted
// exactly when some assignment of free nodes serves the window, an
// allocation exactly when free nodes not reserved within its lease plus
// the gap serve it, an extend exactly when it runs into no reservation;
// and after every step the store's own calendar shows no two holds of a
// node closer than the gap.
func testReservationProperty(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	c := withClock(t, s)
	withGap(t, s)
	ctx := ctxFor(t)
	base := c.Now()
	var round atomic.Int64
	sizes := []int{2, 4, 8}
	rapid.Check(t, func(rt *rapid.T) {
		c.Set(base)
		pool := fmt.Sprintf("rp%d", round.Add(1))
		count := rapid.IntRange(1, 4).Draw(rt, "nodes")
		var nodes []*ironpool.Node
		for i := range count {
			n := newNode(t, fmt.Sprintf("%s-n%d", pool, i), rapid.SampledFrom(sizes).Draw(rt, fmt.Sprintf("cpus%d", i)))
			n.Pool = pool
			nodes = append(nodes, n)
		}
		mustCreate(t, s, nodes...)
		index := map[string]int{}
		for i, n := range nodes {
			index[n.Name] = i
		}
		holds := make([][]span, count)
		var resIDs, leaseIDs []string
		min := func(k int) time.Duration { return time.Duration(k) * 10 * time.Minute }
		drawItems := func(label string) []ironpool.AllocationItem {
			var items []ironpool.AllocationItem
			for i := range rapid.IntRange(1, 2).Draw(rt, label+"items") {
				cons := ironpool.Constraints{Pool: pool, CPUs: rapid.SampledFrom([]int{0, 4, 8}).Draw(rt, fmt.Sprintf("%scpus%d", label, i))}
				items = append(items, item("", rapid.IntRange(1, 2).Draw(rt, fmt.Sprintf("%scount%d", label, i)), cons))
			}
			return items
		}
		matches := func(it ironpool.AllocationItem, n int) bool { return nodes[n].CPUs >= it.Constraints.CPUs }
		steps := rapid.IntRange(1, 8).Draw(rt, "steps")
		for step := range steps {
			now := c.Now()
			switch op := rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("op%d", step)); op {
			case 0, 1: // reserve
				items := drawItems(fmt.Sprintf("r%d", step))
				start := now.Add(min(rapid.IntRange(1, 30).Draw(rt, fmt.Sprintf("start%d", step))))
				end := start.Add(min(rapid.IntRange(1, 12).Draw(rt, fmt.Sprintf("len%d", step))))
				counts := make([]int, len(items))
				for i, it := range items {
					counts[i] = it.Count
				}
				want := assignable(counts, count, func(i, n int) bool { return matches(items[i], n) && fits(holds[n], start, end) })
				r := booking("lab", start, end, items...)
				err := s.Reserve(ctx, r)
				if want != (err == nil) {
					rt.Fatalf("reserve %v %v..%v: err %v, brute force says servable=%v (holds %v)", counts, start, end, err, want, holds)
				}
				if err != nil {
					if code := ironpool.ErrorCode(err); code != ironpool.ECAPACITY {
						rt.Fatalf("reserve refused with %s: %v", code, err)
					}
					continue
				}
				for i, it := range r.Items {
					if len(it.Nodes) != it.Count {
						rt.Fatalf("item %d named %v, want %d nodes", i, it.Nodes, it.Count)
					}
					for _, name := range it.Nodes {
						n := index[name]
						if !matches(it, n) || !fits(holds[n], start, end) {
							rt.Fatalf("reservation pinned %s, which does not serve item %d over the window", name, i)
						}
						holds[n] = append(holds[n], span{start: start, end: end, res: r.ID})
					}
				}
				resIDs = append(resIDs, r.ID)
			case 2: // allocate now
				it := drawItems(fmt.Sprintf("a%d", step))[:1]
				ttl := min(rapid.IntRange(1, 24).Draw(rt, fmt.Sprintf("ttl%d", step)))
				want := assignable([]int{it[0].Count}, count, func(_, n int) bool {
					if !matches(it[0], n) {
						return false
					}
					for _, h := range holds[n] {
						if h.res == "" || h.start.Before(now.Add(ttl+testGap)) {
							return false // leased now, or reserved within the lease
						}
					}
					return true
				})
				a := leaseAt(c, "lab", ttl, it...)
				err := s.Allocate(ctx, a, false)
				if want != (err == nil) {
					rt.Fatalf("allocate %d×cpus>=%d for %s: err %v, brute force says %v (holds %v)", it[0].Count, it[0].Constraints.CPUs, ttl, err, want, holds)
				}
				if err == nil {
					for _, name := range a.Items[0].Nodes {
						holds[index[name]] = append(holds[index[name]], span{start: now, end: a.ExpiresAt, lease: a.ID})
					}
					leaseIDs = append(leaseIDs, a.ID)
				}
			case 3: // extend a lease, or cancel a reservation
				if len(leaseIDs) > 0 && rapid.Bool().Draw(rt, fmt.Sprintf("ext%d", step)) {
					id := rapid.SampledFrom(leaseIDs).Draw(rt, fmt.Sprintf("lease%d", step))
					ttl := min(rapid.IntRange(1, 36).Draw(rt, fmt.Sprintf("extttl%d", step)))
					want := true
					for _, hs := range holds {
						if !slices.ContainsFunc(hs, func(h span) bool { return h.lease == id }) {
							continue
						}
						for _, h := range hs {
							if h.res != "" && h.start.Before(now.Add(ttl+testGap)) {
								want = false
							}
						}
					}
					_, err := s.ExtendAllocation(ctx, id, ttl)
					if want != (err == nil) {
						rt.Fatalf("extend %s to %s: err %v, brute force says %v (holds %v)", id, ttl, err, want, holds)
					}
					if err == nil {
						for n := range holds {
							for k := range holds[n] {
								if holds[n][k].lease == id {
									holds[n][k].end = now.Add(ttl)
								}
							}
						}
					}
				} else if len(resIDs) > 0 {
					id := rapid.SampledFrom(resIDs).Draw(rt, fmt.Sprintf("cancel%d", step))
					if _, err := s.CancelReservation(ctx, id); err != nil {
						rt.Fatal(err)
					}
					for n := range holds {
						holds[n] = slices.DeleteFunc(holds[n], func(h span) bool { return h.res == id })
					}
				}
			}
			checkCalendarGaps(rt, s, pool, now)
		}
	})
}

// checkCalendarGaps reads pool's calendar and fails unless every two holds
// of a node are at least the gap apart.
func checkCalendarGaps(rt *rapid.T, s ironpool.Store, pool string, now time.Time) {
	cal, err := s.Calendar(context.Background(), pool, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	if err != nil {
		rt.Fatal(err)
	}
	for _, n := range cal.Nodes {
		for i, a := range n.Holds {
			for _, b := range n.Holds[i+1:] {
				if a.End.Add(testGap).After(b.Start) && b.End.Add(testGap).After(a.Start) {
					rt.Fatalf("node %s: holds %s %s..%s and %s %s..%s are closer than the gap %s", n.Node,
						a.Kind, a.Start, a.End, b.Kind, b.Start, b.End, testGap)
				}
			}
		}
	}
}
