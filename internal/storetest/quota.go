package storetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// QueueAger is implemented by stores whose queue aging step tests may set.
type QueueAger interface {
	SetQueueAging(d time.Duration)
}

func mustSetQuota(t testing.TB, s ironpool.Store, q *ironpool.Quota) *ironpool.QuotaStatus {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	if err := q.Validate(); err != nil {
		t.Fatalf("quota %+v: %v", q, err)
	}
	st, err := s.SetQuota(ctx, q)
	if err != nil {
		t.Fatalf("SetQuota(%s): %v", q.Owner, err)
	}
	return st
}

func testQuotas(t *testing.T, open func(t *testing.T) ironpool.Store) {
	pool := func(t *testing.T) ironpool.Store {
		s := open(t)
		mustCreate(t, s, numberedNodes(t, "q%d", 6, 8)...)
		return s
	}
	small := func(n int) ironpool.AllocationItem { return item("small", n, anyNode()) }

	t.Run("MaxNodesPatternRefusesAndChangesNothing", func(t *testing.T) {
		s := pool(t)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "ci-*", MaxNodes: 3})
		mustAllocate(t, s, request("ci-1", small(2)))
		before := takeSnapshot(t, s)
		// ci-2 is a different owner under the same pattern: one budget.
		err := s.Allocate(ctxFor(t), request("ci-2", small(2)), false)
		e := wantCode(t, err, ironpool.EQUOTA)
		if e.Quota == nil || e.Quota.Quota != "ci-*" || e.Quota.Limit != "max_nodes" || e.Quota.Used != 2 || e.Quota.Allowed != 3 || e.Quota.Requested != 2 {
			t.Errorf("refusal = %+v, want quota ci-* max_nodes allowed 3 used 2 requested 2", e.Quota)
		}
		if !strings.Contains(e.Message, "ci-*") || !strings.Contains(e.Message, "2 held") {
			t.Errorf("message %q does not name the quota and the usage", e.Message)
		}
		// The refusal's audit record is the only thing written.
		before.Events++
		sameSnapshot(t, s, before, "refused by quota")
		if n := countEvents(t, s, "quota.refused"); n != 1 {
			t.Errorf("quota.refused events = %d, want 1", n)
		}
		// Owners the pattern does not match are not limited by it.
		for _, o := range []string{"ci", "cix", "CI-1"} {
			mustAllocate(t, s, request(o, small(1)))
		}
		// One more node fits for the pattern.
		mustAllocate(t, s, request("ci-3", small(1)))
	})

	t.Run("MostRestrictiveWins", func(t *testing.T) {
		s := pool(t)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "ci-*", MaxNodes: 5})
		mustSetQuota(t, s, &ironpool.Quota{Owner: "ci-nightly", MaxNodes: 1})
		mustAllocate(t, s, request("ci-nightly", small(1)))
		e := wantCode(t, s.Allocate(ctxFor(t), request("ci-nightly", small(1)), false), ironpool.EQUOTA)
		if e.Quota.Quota != "ci-nightly" {
			t.Errorf("refused by %s, want ci-nightly (the tighter quota)", e.Quota.Quota)
		}
		mustAllocate(t, s, request("ci-7", small(4)))
		e = wantCode(t, s.Allocate(ctxFor(t), request("ci-8", small(1)), false), ironpool.EQUOTA)
		if e.Quota.Quota != "ci-*" {
			t.Errorf("refused by %s, want ci-* (5 held)", e.Quota.Quota)
		}
	})

	t.Run("MaxFlavor", func(t *testing.T) {
		s := pool(t)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "lab", MaxFlavor: map[string]int{"big": 1}})
		mustAllocate(t, s, request("lab", item("big", 1, anyNode()), small(2)))
		e := wantCode(t, s.Allocate(ctxFor(t), request("lab", item("big", 1, anyNode())), false), ironpool.EQUOTA)
		if e.Quota.Limit != "max_flavor.big" {
			t.Errorf("limit = %s, want max_flavor.big", e.Quota.Limit)
		}
		mustAllocate(t, s, request("lab", small(1)))
	})

	t.Run("MaxLeaseAndExtend", func(t *testing.T) {
		s := pool(t)
		c := withClock(t, s)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "lab", MaxLease: 2 * time.Hour})
		long := request("lab", small(1))
		long.TTL = 3 * time.Hour
		e := wantCode(t, s.Allocate(ctxFor(t), long, true), ironpool.EQUOTA)
		if e.Quota.Limit != "max_lease" {
			t.Errorf("limit = %s, want max_lease", e.Quota.Limit)
		}
		a := mustAllocate(t, s, request("lab", small(1)))
		c.Add(30 * time.Minute)
		if _, err := s.ExtendAllocation(ctxFor(t), a.ID, time.Hour); err != nil {
			t.Fatalf("extend within the lease quota: %v", err)
		}
		c.Add(30 * time.Minute)
		// 1h held + 1h30 more = 2h30 > 2h.
		before := takeSnapshot(t, s)
		e = wantCode(t, func() error { _, err := s.ExtendAllocation(ctxFor(t), a.ID, 90*time.Minute); return err }(), ironpool.EQUOTA)
		if e.Quota.Limit != "max_lease" || e.Field != "ttl" {
			t.Errorf("refusal = %+v field %s, want max_lease on ttl", e.Quota, e.Field)
		}
		before.Events++
		sameSnapshot(t, s, before, "extend refused by quota")
		got, err := s.FindAllocation(context.Background(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := c.Now().Add(30 * time.Minute); !got.ExpiresAt.Equal(want) {
			t.Errorf("expiry = %s, want %s (unchanged by the refused extend)", got.ExpiresAt, want)
		}
	})

	t.Run("NodeHoursRollingWindow", func(t *testing.T) {
		s := pool(t)
		c := withClock(t, s)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "lab", MaxNodeHours: 10, Per: 24 * time.Hour})
		a := request("lab", small(2))
		a.TTL = 4 * time.Hour
		mustAllocate(t, s, a) // needs up to 8 of 10
		c.Add(3 * time.Hour)  // 6 used
		b := request("lab", small(1))
		b.TTL = 3 * time.Hour // 6 + 3 = 9 ≤ 10
		mustAllocate(t, s, b)
		c.Add(30 * time.Minute) // 7 + 0.5 = 7.5 used
		x := request("lab", small(1))
		x.TTL = 3 * time.Hour // 7.5 + 3 > 10
		e := wantCode(t, s.Allocate(ctxFor(t), x, false), ironpool.EQUOTA)
		if e.Quota.Limit != "max_node_hours" || math.Abs(e.Quota.Used-7.5) > 1e-6 || e.Quota.Requested != 3 {
			t.Errorf("refusal = %+v, want max_node_hours with 7.5 used, 3 asked", e.Quota)
		}
		st, err := s.FindQuota(context.Background(), "lab")
		if err != nil {
			t.Fatal(err)
		}
		if st.Used.NodeHours != 7.5 || st.Used.Nodes != 3 {
			t.Errorf("quota usage = %+v, want 7.5 node-hours and 3 nodes", st.Used)
		}
		mustRelease(t, s, a.ID, true)
		mustRelease(t, s, b.ID, true)
		// A day later the window has rolled past all of it.
		c.Add(24 * time.Hour)
		mustAllocate(t, s, x)
		rep, err := s.Usage(context.Background(), ironpool.UsageFilter{Since: c.Now().Add(-48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// a: 2 nodes × 3.5h = 7, b: 1 × 0.5h = 0.5, x: live, 0 so far.
		if len(rep.Rows) != 1 || rep.Rows[0].NodeHours != 7.5 || rep.Rows[0].Nodes != 1 || rep.Rows[0].Flavor != "small" {
			t.Errorf("usage = %+v, want lab/small 7.5 node-hours, 1 node now", rep.Rows)
		}
	})

	t.Run("BelowUsageWarns", func(t *testing.T) {
		s := pool(t)
		mustAllocate(t, s, request("lab", small(3)))
		st := mustSetQuota(t, s, &ironpool.Quota{Owner: "lab", MaxNodes: 2})
		if !strings.Contains(st.Warning, "3 nodes held") {
			t.Errorf("warning = %q, want it to say 3 nodes are held", st.Warning)
		}
		wantCode(t, s.Allocate(ctxFor(t), request("lab", small(1)), false), ironpool.EQUOTA)
		// Unknown owners and patterns nobody matches are fine.
		if st := mustSetQuota(t, s, &ironpool.Quota{Owner: "never-seen-*", MaxNodes: 1}); st.Warning != "" || st.Used.Nodes != 0 {
			t.Errorf("quota for an unseen pattern = %+v, want no usage and no warning", st)
		}
	})

	t.Run("SetListShowDelete", func(t *testing.T) {
		s := pool(t)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "b", MaxNodes: 2})
		mustSetQuota(t, s, &ironpool.Quota{Owner: "a-*", MaxLease: time.Hour})
		mustSetQuota(t, s, &ironpool.Quota{Owner: "b", MaxNodes: 4}) // replaces
		qs, err := s.FindQuotas(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != 2 || qs[0].Quota.Owner != "a-*" || qs[1].Quota.MaxNodes != 4 || qs[0].Quota.MaxLeaseText != "1h0m0s" {
			t.Fatalf("quotas = %+v %+v, want a-* (1h lease) and b (4 nodes)", qs[0].Quota, qs[1].Quota)
		}
		if got := []int{countEvents(t, s, "quota.set"), countEvents(t, s, "quota.updated")}; !slices.Equal(got, []int{2, 1}) {
			t.Errorf("quota.set/updated events = %v, want [2 1]", got)
		}
		if err := s.DeleteQuota(ctxFor(t), "b"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.DeleteQuota(ctxFor(t), "b"), ironpool.ENOTFOUND)
		_, err = s.FindQuota(context.Background(), "b")
		wantCode(t, err, ironpool.ENOTFOUND)
		if n := countEvents(t, s, "quota.deleted"); n != 1 {
			t.Errorf("quota.deleted events = %d, want 1", n)
		}
	})

	t.Run("QueueWaitsForQuota", func(t *testing.T) {
		s := pool(t)
		c := withClock(t, s)
		mustSetQuota(t, s, &ironpool.Quota{Owner: "lab", MaxNodes: 2})
		held := mustAllocate(t, s, request("lab", small(2)))
		w := queued("lab", time.Hour, small(1))
		w.CreatedAt = c.Now()
		w.WaitUntil = c.Now().Add(time.Hour)
		if err := s.Allocate(ctxFor(t), w, true); err != nil {
			t.Fatalf("queue over quota: %v", err)
		}
		if w.State != ironpool.AllocQueued {
			t.Fatalf("state = %s, want queued (the pool has free nodes; the quota does not)", w.State)
		}
		// Another owner's queued request behind it is not held up by lab's quota.
		o := queued("other", time.Hour, small(1))
		o.WaitUntil = c.Now().Add(time.Hour)
		if err := s.Allocate(ctxFor(t), o, true); err != nil {
			t.Fatal(err)
		}
		changed, err := s.DispatchQueue(context.Background(), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 1 || changed[0].ID != o.ID {
			t.Fatalf("dispatched %v, want only the other owner's request", changed)
		}
		// The quota-blocked request reserves no nodes: an immediate
		// request of another owner takes a node its item matches.
		third := mustAllocate(t, s, request("third", small(1)))
		info, err := s.QueueInfo(context.Background(), w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if info == nil || info.Quota == nil || info.Quota.Quota != "lab" || !strings.HasPrefix(info.Reason, "waiting for quota: quota lab max_nodes") {
			t.Errorf("queue info = %+v, want it to say it waits for quota lab", info)
		}
		mustRelease(t, s, third.ID, true)
		// A request over the quota on its own is refused, never queued.
		wantCode(t, s.Allocate(ctxFor(t), queued("lab", time.Hour, small(3)), true), ironpool.EQUOTA)
		mustRelease(t, s, held.ID, true)
		changed, err = s.DispatchQueue(context.Background(), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 1 || changed[0].ID != w.ID || changed[0].State != ironpool.AllocActive {
			t.Fatalf("dispatched %v, want lab's request now that its quota allows it", changed)
		}
	})
}

// testPriorities checks the queue's order: by effective priority (priority
// plus one per aging step waited), then arrival; and the bound on the wait
// of the lowest class: once it has waited (MaxPriority-MinPriority) steps,
// nothing that arrives later is served before it.
func testPriorities(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ag, ok := s.(QueueAger)
	if !ok {
		t.Skipf("skipped: %T does not implement storetest.QueueAger", s)
	}
	step := time.Minute
	ag.SetQueueAging(step)
	c := withClock(t, s)
	mustCreate(t, s, newNode(t, "p0", 8))
	blocker := mustAllocate(t, s, request("hold", item("", 1, anyNode())))
	enqueue := func(owner string, prio int) *ironpool.Allocation {
		t.Helper()
		a := request(owner, item("", 1, anyNode()))
		a.Priority, a.CreatedAt, a.WaitUntil = prio, c.Now(), c.Now().Add(24*time.Hour)
		if err := s.Allocate(ctxFor(t), a, true); err != nil || a.State != ironpool.AllocQueued {
			t.Fatalf("enqueue %s: %v (%s)", owner, err, a.State)
		}
		return a
	}
	// serveOne frees the one node and returns who the queue gives it to.
	var current = blocker
	serveOne := func() string {
		t.Helper()
		mustRelease(t, s, current.ID, true)
		changed, err := s.DispatchQueue(context.Background(), c.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range changed {
			if a.State == ironpool.AllocActive {
				current = a
				return a.Owner
			}
		}
		t.Fatalf("nothing served: %v", changed)
		return ""
	}

	t.Run("OrderThenArrival", func(t *testing.T) {
		enqueue("low-1", 0)
		enqueue("mid-1", 5)
		enqueue("high-1", 9)
		enqueue("mid-2", 5)
		enqueue("high-2", 9)
		var got []string
		for range 5 {
			got = append(got, serveOne())
		}
		if want := []string{"high-1", "high-2", "mid-1", "mid-2", "low-1"}; !slices.Equal(got, want) {
			t.Errorf("served %v, want %v", got, want)
		}
	})

	t.Run("AgingBoundsTheLowestClass", func(t *testing.T) {
		low := enqueue("low", ironpool.MinPriority)
		// Fresh top-priority requests keep arriving, one per step, and one
		// is served per step: without aging "low" would wait forever.
		bound := time.Duration(ironpool.MaxPriority-ironpool.MinPriority) * step
		var servedAt time.Duration
		for i := 0; ; i++ {
			enqueue(fmt.Sprintf("high-%d", i), ironpool.MaxPriority)
			c.Add(step)
			if serveOne() == "low" {
				servedAt = c.Now().Sub(low.CreatedAt)
				break
			}
			if i > 100 {
				t.Fatal("the lowest class was never served")
			}
		}
		// It has overtaken every later arrival by bound + one step (ties
		// at exactly the bound go to arrival, which it wins).
		if servedAt > bound+step {
			t.Errorf("lowest class served after %s, want within %s", servedAt, bound+step)
		}
		if servedAt < bound-step {
			t.Errorf("lowest class served after %s: aging is faster than documented (%s)", servedAt, bound)
		}
	})
}

// testQuotaStress runs 64 clients of 4 owners, each owner under a quota
// (by name or by pattern), allocating and releasing as fast as they can,
// and then replays the audit log: at no point may an owner's held nodes,
// as the log orders creations and releases, exceed its quota. It also
// checks that the node-hours the usage report computes match those the
// log's timestamps give.
func testQuotaStress(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	var nodes []*ironpool.Node
	for i := range 40 {
		nodes = append(nodes, newNode(t, fmt.Sprintf("s%02d", i), 8+i%3*8))
	}
	mustCreate(t, s, nodes...)
	// A clock that moves 100ms on every reading makes holds last seconds
	// of store time, so node-hours are large against their rounding.
	if cs, ok := s.(Clock); ok {
		var tick sync.Mutex
		fake := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		cs.SetNow(func() time.Time {
			tick.Lock()
			defer tick.Unlock()
			fake = fake.Add(100 * time.Millisecond)
			return fake
		})
		defer cs.SetNow(time.Now)
	}
	limits := map[string]int{"team-a": 3, "ci-1": 8, "ci-2": 5, "lab": 7}
	mustSetQuota(t, s, &ironpool.Quota{Owner: "team-a", MaxNodes: 3})
	mustSetQuota(t, s, &ironpool.Quota{Owner: "ci-*", MaxNodes: 8}) // ci-1 and ci-2 together
	mustSetQuota(t, s, &ironpool.Quota{Owner: "ci-2", MaxNodes: 5})
	mustSetQuota(t, s, &ironpool.Quota{Owner: "lab", MaxNodes: 7, MaxFlavor: map[string]int{"big": 2}})
	owners := []string{"team-a", "ci-1", "ci-2", "lab"}
	start := time.Now()
	var wg sync.WaitGroup
	var grants atomic.Int64
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := owners[w%4]
			ctx := ironpool.NewContextWithActor(context.Background(), testActor)
			// At least stressDuration and 200 grants, so a slow, busy
			// machine still presses on the quotas; at most 30s.
			for i := 0; (time.Since(start) < stressDuration || grants.Load() < 200) && time.Since(start) < 30*time.Second; i++ {
				items := []ironpool.AllocationItem{item("small", 1+(w+i)%3, anyNode())}
				if i%4 == 0 {
					items = append(items, item("big", 1, ironpool.Constraints{CPUs: 16}))
				}
				a := request(owner, items...)
				err := s.Allocate(ctx, a, false)
				switch ironpool.ErrorCode(err) {
				case "":
					grants.Add(1)
					if _, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
						t.Errorf("release: %v", err)
						return
					}
				case ironpool.EQUOTA, ironpool.ECAPACITY:
				default:
					t.Errorf("allocate: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ctx := context.Background()
	allocs, err := s.FindAllocations(ctx, ironpool.AllocationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	type held struct {
		owner string
		nodes int
		big   int
	}
	byID := map[string]held{}
	for _, a := range allocs {
		h := held{owner: a.Owner}
		for _, it := range a.Items {
			h.nodes += it.Count
			if it.Flavor == "big" {
				h.big += it.Count
			}
		}
		byID[a.ID] = h
	}
	// Replay the log in id order (the order of commit on one writer; on
	// PostgreSQL the quota row lock orders the creations of one quota).
	var ev []*ironpool.Event
	for {
		var after int64
		if len(ev) > 0 {
			after = ev[len(ev)-1].ID
		}
		page, err := s.FindEvents(ctx, ironpool.EventFilter{AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		ev = append(ev, page...)
	}
	now := map[string]int{}
	nowBig := map[string]int{}
	peak := map[string]int{}
	nodeMS := map[string]int64{}
	startAt := map[string]time.Time{}
	created := 0
	for _, e := range ev {
		id := strings.TrimPrefix(e.Subject, "allocation/")
		h, ok := byID[id]
		if !ok {
			continue
		}
		switch e.Action {
		case "allocation.created":
			created++
			now[h.owner] += h.nodes
			nowBig[h.owner] += h.big
			startAt[id] = e.Time
		case "allocation.released":
			now[h.owner] -= h.nodes
			nowBig[h.owner] -= h.big
			nodeMS[h.owner] += int64(h.nodes) * e.Time.Sub(startAt[id]).Milliseconds()
		default:
			continue
		}
		peak[h.owner] = max(peak[h.owner], now[h.owner])
		if now[h.owner] > limits[h.owner] {
			t.Fatalf("event %d: %s holds %d nodes, over its quota of %d", e.ID, h.owner, now[h.owner], limits[h.owner])
		}
		if ci := now["ci-1"] + now["ci-2"]; ci > 8 {
			t.Fatalf("event %d: ci-* owners hold %d nodes, over their shared quota of 8", e.ID, ci)
		}
		if nowBig["lab"] > 2 {
			t.Fatalf("event %d: lab holds %d big nodes, over max_flavor.big 2", e.ID, nowBig["lab"])
		}
	}
	if created < 100 {
		t.Fatalf("only %d allocations in the stress run: too few to mean anything", created)
	}
	for _, o := range owners {
		if peak[o] == 0 {
			t.Errorf("owner %s never held a node", o)
		}
	}
	if countEvents(t, s, "quota.refused") == 0 {
		t.Error("no request was refused by a quota: the stress did not reach the limits")
	}
	rep, err := s.Usage(ctx, ironpool.UsageFilter{Since: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range rep.Rows {
		got[r.Owner] += r.NodeHours
	}
	for _, o := range owners {
		want := float64(nodeMS[o]) / 3.6e6
		// Rows are rounded to 1e-4 node-hours each, at most a few per owner.
		if math.Abs(got[o]-want) > 1e-3 {
			t.Errorf("usage of %s = %.5f node-hours, the audit log gives %.5f", o, got[o], want)
		}
	}
	t.Logf("%d allocations; peaks %v; node-hours %v", created, peak, got)
}
