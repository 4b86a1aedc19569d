package storetest

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

func testLeases(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("Extend", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		a := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		c := withClock(t, s)
		until := c.Now().Add(5 * time.Hour)
		got, err := s.ExtendAllocation(ctx, a.ID, 5*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !got.ExpiresAt.Equal(until) || got.State != ironpool.AllocActive {
			t.Errorf("ExtendAllocation = %s %v, want active until %v", got.State, got.ExpiresAt, until)
		}
		if stored, _ := s.FindAllocation(ctx, a.ID); !stored.ExpiresAt.Equal(until) {
			t.Errorf("stored expiry = %v, want %v", stored.ExpiresAt, until)
		}
		if n := countEvents(t, s, "allocation.extended"); n != 1 {
			t.Errorf("allocation.extended events = %d, want 1", n)
		}
	})

	t.Run("ErrExtendNotActive", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		a := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		q := queued("lab2", time.Hour, item("", 1, anyNode()))
		if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
			t.Fatalf("queue: %v %s", err, q.State)
		}
		mustRelease(t, s, a.ID, true)
		before := takeSnapshot(t, s)
		for _, id := range []string{a.ID, q.ID} {
			_, err := s.ExtendAllocation(ctx, id, time.Hour)
			wantCode(t, err, ironpool.ECONFLICT)
		}
		_, err := s.ExtendAllocation(ctx, "no-such-allocation", time.Hour)
		wantCode(t, err, ironpool.ENOTFOUND)
		sameSnapshot(t, s, before, "refused extends")
	})

	t.Run("Expiry", func(t *testing.T) {
		s := open(t)
		c := withClock(t, s)
		ctx := ctxFor(t)
		t0 := c.Now()
		if exp, err := s.NextExpiry(ctx); err != nil || !exp.IsZero() {
			t.Fatalf("NextExpiry on an empty store = %v, %v; want zero", exp, err)
		}
		mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8), newNode(t, "n3", 8))
		lease := func(ttl time.Duration) *ironpool.Allocation {
			a := request("lab1", item("", 1, anyNode()))
			a.TTL = ttl
			return mustAllocate(t, s, a)
		}
		long, short := lease(2*time.Hour), lease(time.Hour)
		if !short.ExpiresAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("expires_at = %v, want %v (store clock + ttl)", short.ExpiresAt, t0.Add(time.Hour))
		}
		third := lease(3 * time.Hour)
		mustRelease(t, s, third.ID, true) // released leases never expire

		for _, tc := range []struct {
			at   time.Duration
			want []string
		}{
			{30 * time.Minute, nil},
			{time.Hour - time.Millisecond, nil},
			{time.Hour, []string{short.ID}}, // at or before now
		} {
			c.Set(t0.Add(tc.at))
			if ids := mustExpire(t, s, c.Now()); !slices.Equal(ids, tc.want) {
				t.Errorf("ExpireAllocations(t0+%s) = %v, want %v", tc.at, ids, tc.want)
			}
		}
		if got, _ := s.FindAllocation(ctx, short.ID); got.State != ironpool.AllocExpired || len(got.Nodes) != 0 {
			t.Errorf("expired lease: state %s with %d nodes, want expired with none", got.State, len(got.Nodes))
		}
		if n := countEvents(t, s, "allocation.expired"); n != 1 {
			t.Errorf("allocation.expired events = %d, want 1", n)
		}
		if exp, err := s.NextExpiry(ctx); err != nil || !exp.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("NextExpiry after expiring the first = %v, %v; want %v", exp, err, t0.Add(2*time.Hour))
		}
		if _, err := s.ExtendAllocation(ctx, long.ID, 10*time.Hour); err != nil {
			t.Fatal(err)
		}
		c.Set(t0.Add(5 * time.Hour))
		if out, _ := s.ExpireAllocations(ctx, true); len(out) != 0 {
			t.Errorf("extended lease expired anyway: %v", out)
		}
		if exp, err := s.NextExpiry(ctx); err != nil || !exp.Equal(t0.Add(11*time.Hour)) {
			t.Errorf("NextExpiry after the extend = %v, %v; want %v", exp, err, t0.Add(11*time.Hour))
		}
		ev := events(t, s, "allocation.created")
		if len(ev) == 0 || !ev[0].Time.Equal(t0) {
			t.Errorf("event time = %v, want the store clock %v", ev, t0)
		}
	})
}

// testExpireMany: one reaper pass ends every due lease at once, with
// each lease's own nodes, usage and audit event, the Ironic-linked nodes
// counted per lease, and the leases not yet due left alone.
func testExpireMany(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	c := withClock(t, s)
	ctx := ctxFor(t)
	// A pool per lease, so each lease gets the nodes named here.
	inPool := func(name, pool string) *ironpool.Node {
		n := newNode(t, name, 8)
		n.Pool = pool
		return n
	}
	linked := inPool("linked", "a")
	linked.IronicUUID = "0c9e6a7b-1f2d-4e3c-8b5a-6d7e8f9a0b1c"
	mustCreate(t, s, linked, inPool("l1", "a"), inPool("l2", "b"), inPool("l3", "c"), inPool("l4", "d"))
	lease := func(pool string, n int, ttl time.Duration) *ironpool.Allocation {
		a := request("lab1", item("", n, ironpool.Constraints{Pool: pool}))
		a.TTL = ttl
		return mustAllocate(t, s, a)
	}
	withIronic := lease("a", 2, time.Minute)
	plain := lease("b", 1, 2*time.Minute)
	third := lease("c", 1, 3*time.Minute)
	later := lease("d", 1, time.Hour)
	c.Set(c.Now().Add(5 * time.Minute))
	ids := mustExpire(t, s, c.Now())
	if want := []string{withIronic.ID, plain.ID, third.ID}; !slices.Equal(ids, want) {
		t.Fatalf("one pass expired %v, want %v (in expiry order)", ids, want)
	}
	summaries := map[string]string{}
	for _, e := range events(t, s, "allocation.expired") {
		summaries[e.Subject] = e.Summary
	}
	if len(summaries) != 3 {
		t.Errorf("allocation.expired events for %d allocations, want 3: %v", len(summaries), summaries)
	}
	if got := summaries["allocation/"+withIronic.ID]; !strings.Contains(got, "1 Ironic nodes cleaning in Ironic") {
		t.Errorf("event of the lease with an Ironic node: %q, want it to count that node", got)
	}
	for _, a := range []*ironpool.Allocation{plain, third} {
		if got := summaries["allocation/"+a.ID]; !strings.Contains(got, "local pool") {
			t.Errorf("event of %s: %q, want its local nodes cleaned", a.ID, got)
		}
	}
	states := map[string]ironpool.NodeState{}
	for _, n := range findNodes(t, s, ironpool.NodeFilter{}) {
		states[n.Name] = n.State
	}
	want := map[string]ironpool.NodeState{"linked": ironpool.NodeCleaning, "l1": ironpool.NodeAvailable,
		"l2": ironpool.NodeAvailable, "l3": ironpool.NodeAvailable, "l4": ironpool.NodeAllocated}
	if !maps.Equal(states, want) {
		t.Errorf("nodes after the pass = %v, want %v", states, want)
	}
	if got, _ := s.FindAllocation(ctx, later.ID); got.State != ironpool.AllocActive || len(got.Nodes) != 1 {
		t.Errorf("lease not yet due: %s with %d nodes, want active with its node", got.State, len(got.Nodes))
	}
	if r, ok := s.(RawDB); ok {
		var open int
		if err := r.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_log WHERE end_ms = 0`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open != 1 {
			t.Errorf("%d usage rows open after the pass, want the one of the lease not yet due", open)
		}
	}
}

// mustExpire runs one reaper pass at now and returns the ids it ended,
// checking each came back expired at now.
func mustExpire(t *testing.T, s ironpool.Store, now time.Time) []string {
	t.Helper()
	out, err := s.ExpireAllocations(ctxFor(t), true)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range out {
		ids = append(ids, a.ID)
		if a.State != ironpool.AllocExpired || !a.ReleasedAt.Equal(now) {
			t.Errorf("expired %s: state %s released_at %v, want expired at %v", a.ID, a.State, a.ReleasedAt, now)
		}
	}
	return ids
}

// testExtendRacesExpiry runs an extend and the reaper against the same
// lease at its very expiry, many times: exactly one of them wins, and the
// loser says so. An extend that returned a new expiry must leave the
// allocation active with that expiry; an allocation the reaper ended must
// never have been reported extended.
func testExtendRacesExpiry(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	c := withClock(t, s)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "n1", 8))
	const rounds = 60
	extended, expired := 0, 0
	for i := range rounds {
		a := request("lab1", item("", 1, anyNode()))
		a.TTL = 0 // expires now
		mustAllocate(t, s, a)
		var wg sync.WaitGroup
		var ext *ironpool.Allocation
		var extErr, expErr error
		var out []*ironpool.Allocation
		wg.Add(2)
		go func() { defer wg.Done(); ext, extErr = s.ExtendAllocation(ctx, a.ID, time.Hour) }()
		go func() { defer wg.Done(); out, expErr = s.ExpireAllocations(ctx, true) }()
		wg.Wait()
		if expErr != nil {
			t.Fatalf("round %d: ExpireAllocations: %v", i, expErr)
		}
		reaped := slices.ContainsFunc(out, func(x *ironpool.Allocation) bool { return x.ID == a.ID })
		got, err := s.FindAllocation(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case extErr == nil && reaped:
			t.Fatalf("round %d: extend acknowledged (expires %v) and the reaper expired it too: state %s", i, ext.ExpiresAt, got.State)
		case extErr == nil:
			extended++
			if got.State != ironpool.AllocActive || !got.ExpiresAt.Equal(ext.ExpiresAt) {
				t.Fatalf("round %d: acknowledged renewal lost: state %s expires %v, acknowledged %v", i, got.State, got.ExpiresAt, ext.ExpiresAt)
			}
			mustRelease(t, s, a.ID, true)
		case reaped:
			expired++
			wantCode(t, extErr, ironpool.ECONFLICT)
			if got.State != ironpool.AllocExpired {
				t.Fatalf("round %d: reaped allocation is %s", i, got.State)
			}
		default:
			t.Fatalf("round %d: neither the extend (%v) nor the reaper took the lease", i, extErr)
		}
		c.Add(time.Second)
	}
	t.Logf("%d rounds: %d extended first, %d expired first", rounds, extended, expired)
}

func testRelease(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("ByID", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8), newNode(t, "n3", 8))
		a := mustAllocate(t, s, request("lab1", item("", 2, anyNode())))
		b := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		out, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].ID != a.ID || out[0].State != ironpool.AllocReleased || out[0].ReleasedAt.IsZero() {
			t.Fatalf("ReleaseAllocations = %+v", out)
		}
		for _, name := range a.Items[0].Nodes {
			n := mustFind(t, s, name)
			if n.State != ironpool.NodeAvailable || n.AllocationID != "" || n.Owner != "" || n.Pending != "" {
				t.Errorf("released node %s: state=%s allocation=%q owner=%q pending=%q", name, n.State, n.AllocationID, n.Owner, n.Pending)
			}
		}
		if n := mustFind(t, s, b.Items[0].Nodes[0]); n.AllocationID != b.ID {
			t.Errorf("releasing %s freed %s's node", a.ID, b.ID)
		}
		got, err := s.FindAllocation(ctx, a.ID)
		if err != nil || got.State != ironpool.AllocReleased || len(got.Nodes) != 0 || got.ReleasedAt.IsZero() {
			t.Errorf("FindAllocation after release = %+v, %v", got, err)
		}
		if n := countEvents(t, s, "allocation.released"); n != 1 {
			t.Errorf("allocation.released events = %d, want 1", n)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		a := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		first := mustRelease(t, s, a.ID, true)
		// Someone else takes the node: a second release must not touch it.
		b := mustAllocate(t, s, request("lab2", item("", 1, anyNode())))
		before := takeSnapshot(t, s)
		out, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocExpired, true)
		if err != nil {
			t.Fatalf("second release: %v", err)
		}
		if len(out) != 1 || out[0].State != ironpool.AllocReleased || !out[0].ReleasedAt.Equal(first.ReleasedAt.Truncate(time.Millisecond)) {
			t.Errorf("second release = %+v, want it unchanged (released at %v)", out, first.ReleasedAt)
		}
		sameSnapshot(t, s, before, "second release")
		if n := mustFind(t, s, "n1"); n.AllocationID != b.ID {
			t.Errorf("second release of %s freed %s's node", a.ID, b.ID)
		}
	})

	t.Run("ByOwner", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8), newNode(t, "n3", 8, "CUSTOM_Q"))
		a1 := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		a2 := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		b := mustAllocate(t, s, request("lab2", item("", 1, anyNode())))
		// The queued request wants only n3 (b's), so the node a1 frees is
		// not reserved for it and a3 may take it.
		q := queued("lab1", time.Hour, item("", 1, ironpool.Constraints{Traits: []string{"CUSTOM_Q"}}))
		if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
			t.Fatalf("queue: %v %s", err, q.State)
		}
		mustRelease(t, s, a1.ID, true)
		a3 := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))

		out, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{Owner: "lab1"}, ironpool.AllocReleased, true)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range out {
			ids = append(ids, a.ID)
			if a.State != ironpool.AllocReleased {
				t.Errorf("%s = %s, want released", a.ID, a.State)
			}
		}
		slices.Sort(ids)
		want := []string{a2.ID, a3.ID, q.ID}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("released %v, want the live ones %v (not the already released %s)", ids, want, a1.ID)
		}
		if live, _ := s.FindAllocations(ctx, ironpool.AllocationFilter{Owner: "lab1", Live: true}); len(live) != 0 {
			t.Errorf("lab1 still has live allocations: %v", live)
		}
		if got, _ := s.FindAllocation(ctx, b.ID); got.State != ironpool.AllocActive || len(got.Nodes) != 1 {
			t.Errorf("lab2's allocation = %s with %d nodes, want untouched", got.State, len(got.Nodes))
		}
		if n := countEvents(t, s, "allocation.released"); n != 4 {
			t.Errorf("allocation.released events = %d, want 4", n)
		}
		// Nobody left: releasing again is a no-op.
		before := takeSnapshot(t, s)
		out, err = s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{Owner: "lab1"}, ironpool.AllocReleased, true)
		if err != nil || len(out) != 0 {
			t.Errorf("release of an owner with nothing live = %v, %v", out, err)
		}
		sameSnapshot(t, s, before, "empty release by owner")
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.ReleaseAllocations(ctxFor(t), ironpool.ReleaseSelector{ID: "no-such-allocation"}, ironpool.AllocReleased, true)
		wantCode(t, err, ironpool.ENOTFOUND)
		if n := countEvents(t, s, ""); n != 0 {
			t.Errorf("%d events, want 0", n)
		}
	})

	t.Run("Cleaning", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		n1, n2, n3 := newNode(t, "n1", 8), newNode(t, "n2", 8), newNode(t, "n3", 8)
		mustCreate(t, s, n1, n2, n3)
		a := mustAllocate(t, s, request("lab1", item("", 3, anyNode())))
		mustRelease(t, s, a.ID, false)
		for _, n := range findNodes(t, s, ironpool.NodeFilter{}) {
			if n.State != ironpool.NodeCleaning || n.Pending != "clean" || n.AllocationID != "" || n.Owner != "" {
				t.Errorf("node %s after release: state=%s pending=%q allocation=%q owner=%q", n.Name, n.State, n.Pending, n.AllocationID, n.Owner)
			}
		}
		// Cleaning nodes are not free.
		err := s.Allocate(ctx, request("lab2", item("", 1, anyNode())), false)
		wantCode(t, err, ironpool.ECAPACITY)

		if err := s.FinishCleaning(ctx, n1.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishCleaning(ctx, n2.ID, "disk wipe failed"); err != nil {
			t.Fatal(err)
		}
		if n := mustFind(t, s, "n1"); n.State != ironpool.NodeAvailable || n.Pending != "" || n.LastError != "" {
			t.Errorf("n1 = %s pending=%q last_error=%q, want available", n.State, n.Pending, n.LastError)
		}
		if n := mustFind(t, s, "n2"); n.State != ironpool.NodeError || n.LastError != "disk wipe failed" || n.Pending != "" {
			t.Errorf("n2 = %s pending=%q last_error=%q, want error with the message", n.State, n.Pending, n.LastError)
		}
		if n := countEvents(t, s, "node.cleaned"); n != 2 {
			t.Errorf("node.cleaned events = %d, want 2", n)
		}
		// Finishing a node that is not cleaning changes nothing.
		before := takeSnapshot(t, s)
		if err := s.FinishCleaning(ctx, n1.ID, "late report"); err != nil {
			t.Fatal(err)
		}
		sameSnapshot(t, s, before, "FinishCleaning of an available node")
		if n := mustFind(t, s, "n1"); n.LastError != "" {
			t.Errorf("n1 last_error = %q", n.LastError)
		}
		got := mustAllocate(t, s, request("lab2", item("", 1, anyNode())))
		if !slices.Equal(got.Items[0].Nodes, []string{"n1"}) {
			t.Errorf("took %v, want the cleaned n1", got.Items[0].Nodes)
		}
	})

	t.Run("IronicNodesAlwaysClean", func(t *testing.T) {
		// A node linked to Ironic must go through cleaning even when the
		// caller would clean inline: the reconciler owes Ironic the undo.
		s := open(t)
		n := newNode(t, "n1", 8)
		n.IronicUUID = "5d0d4e0a-3c1b-4f55-8d0c-8f1c0b1a2e3f"
		mustCreate(t, s, n)
		a := request("lab1", item("", 1, anyNode()))
		a.Mode = ironpool.ModeHandoff
		mustAllocate(t, s, a)
		if got := mustFind(t, s, "n1"); got.Pending != "checkout" {
			t.Errorf("pending after handoff allocation = %q, want checkout", got.Pending)
		}
		mustRelease(t, s, a.ID, true)
		if got := mustFind(t, s, "n1"); got.State != ironpool.NodeCleaning || got.Pending != "clean" {
			t.Errorf("released Ironic node = %s pending=%q, want cleaning/clean", got.State, got.Pending)
		}
		// The audit log says where the node went, not "local pool".
		ev := events(t, s, "allocation.released")
		if len(ev) != 1 || strings.Contains(ev[0].Summary, "local pool") || !strings.Contains(ev[0].Summary, "1 Ironic nodes cleaning in Ironic") {
			t.Errorf("release event = %+v, want it to say the Ironic node cleans in Ironic", ev)
		}
	})
}
