package storetest

import (
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// testWaiters: a queued request whose waiter was last seen before the
// cutoff is failed with an event; one renewed after it stays queued; active
// allocations are never touched.
func testWaiters(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "w1", 8))
	held := mustAllocate(t, s, request("holder", item("", 1, anyNode())))
	lost := queued("lost", time.Hour, item("", 1, anyNode()))
	kept := queued("kept", time.Hour, item("", 1, anyNode()))
	for _, q := range []*ironpool.Allocation{lost, kept} {
		if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
			t.Fatalf("queue %s: %v %s", q.Owner, err, q.State)
		}
	}
	now := time.Now()
	// Nobody is past a cutoff before their creation.
	before := takeSnapshot(t, s)
	if out, err := s.CancelAbandoned(ctx, now.Add(-time.Minute), now); err != nil || len(out) != 0 {
		t.Fatalf("CancelAbandoned before creation = %v, %v", out, err)
	}
	sameSnapshot(t, s, before, "CancelAbandoned with nothing abandoned")

	if err := s.TouchWaiter(ctx, kept.ID, now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchWaiter(ctx, held.ID, now.Add(10*time.Second)); err != nil {
		t.Fatal(err) // not queued: a no-op, not an error
	}
	out, err := s.CancelAbandoned(ctx, now.Add(5*time.Second), now.Add(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].ID != lost.ID || out[0].State != ironpool.AllocFailed || out[0].LastError == "" {
		t.Fatalf("CancelAbandoned = %+v, want only %s failed", out, lost.ID)
	}
	for id, want := range map[string]ironpool.AllocationState{lost.ID: ironpool.AllocFailed, kept.ID: ironpool.AllocQueued, held.ID: ironpool.AllocActive} {
		got, err := s.FindAllocation(ctx, id)
		if err != nil || got.State != want {
			t.Errorf("allocation %s: %v %v, want %s", id, got.State, err, want)
		}
	}
	if got := countEvents(t, s, "allocation.failed"); got != 1 {
		t.Errorf("allocation.failed events = %d, want 1", got)
	}
	// The cancelled request is not served when the node frees up; the kept one is.
	mustRelease(t, s, held.ID, true)
	if _, err := s.DispatchQueue(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := mustFind(t, s, "w1"); got.AllocationID != kept.ID {
		t.Errorf("w1 went to %q, want the kept request %s", got.AllocationID, kept.ID)
	}
}

// testDeleteNodes: several names go in one transaction, all or none.
func testDeleteNodes(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "d1", 8), newNode(t, "d2", 8), newNode(t, "d3", 8))
	a := mustAllocate(t, s, request("lab", item("", 1, ironpool.Constraints{CPUs: 8})))
	heldName := a.Nodes[0].Name
	var free []string
	for _, n := range []string{"d1", "d2", "d3"} {
		if n != heldName {
			free = append(free, n)
		}
	}
	before := takeSnapshot(t, s)
	e := wantCode(t, s.DeleteNodes(ctx, []string{free[0], heldName, free[1]}), ironpool.ECONFLICT)
	if e != nil && e.Field != "names[1]" {
		t.Errorf("field = %q, want names[1]", e.Field)
	}
	wantCode(t, s.DeleteNodes(ctx, []string{free[0], free[1], "nope"}), ironpool.ENOTFOUND)
	sameSnapshot(t, s, before, "refused DeleteNodes")
	if err := s.DeleteNodes(ctx, free); err != nil {
		t.Fatal(err)
	}
	if got := countEvents(t, s, "node.deleted"); got != 2 {
		t.Errorf("node.deleted events = %d, want 2", got)
	}
}
