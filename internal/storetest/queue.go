package storetest

import (
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// testQueuePromises: admission, deadlines behind a blocked head, freed
// nodes to the queue first, attribution to the requester and QueueInfo, on
// every store.
func testQueuePromises(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "q1", 8), newNode(t, "q2", 8), newNode(t, "q3", 32), newNode(t, "q4", 32))
	big := ironpool.Constraints{CPUs: 8}

	// Admission: four nodes of 8+ cpus will never exist.
	before := takeSnapshot(t, s)
	wantCode(t, s.Allocate(ctx, queued("never", time.Hour, item("", 5, big)), true), ironpool.ECAPACITY)
	sameSnapshot(t, s, before, "refused admission")

	h1 := mustAllocate(t, s, request("h1", item("", 1, ironpool.Constraints{CPUs: 32})))
	mustAllocate(t, s, request("h4", item("", 1, ironpool.Constraints{CPUs: 32})))
	h2 := mustAllocate(t, s, request("h2", item("", 2, big)))
	requester := &ironpool.Actor{TokenID: "tok-requester", Role: ironpool.RoleUser}
	head := queued("head", time.Hour, item("", 2, ironpool.Constraints{CPUs: 16}))
	if err := s.Allocate(ironpool.NewContextWithActor(ctx, requester), head, true); err != nil || head.State != ironpool.AllocQueued {
		t.Fatalf("queue head: %v", err)
	}
	behind := queued("behind", time.Millisecond, item("", 1, big))
	if err := s.Allocate(ctx, behind, true); err != nil || behind.State != ironpool.AllocQueued {
		t.Fatalf("queue behind: %v", err)
	}
	info, err := s.QueueInfo(ctx, behind.ID)
	if err != nil || info == nil || info.Position != 2 || info.Length != 2 || info.Reason == "" {
		t.Fatalf("QueueInfo(behind) = %+v, %v", info, err)
	}
	if info, err := s.QueueInfo(ctx, h1.ID); info != nil || err != nil {
		t.Errorf("QueueInfo of an active allocation = %+v, %v", info, err)
	}

	// Deadline behind the blocked head.
	time.Sleep(5 * time.Millisecond)
	if _, err := s.DispatchQueue(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAllocation(ctx, behind.ID); got.State != ironpool.AllocFailed {
		t.Errorf("behind = %s after its deadline, want failed", got.State)
	}

	// One 32-cpu node frees: the head (two of 16+) needs it, so a request
	// without a wait may not take it.
	mustRelease(t, s, h1.ID, true)
	e := wantCode(t, s.Allocate(ctx, request("jumper", item("", 1, big)), false), ironpool.ECAPACITY)
	if e != nil && (len(e.Shortfall) != 1 || e.Shortfall[0].Reserved != 1 || e.Shortfall[0].Free != 0) {
		t.Errorf("shortfall %+v, want 1 reserved, 0 free", e.Shortfall)
	}
	_ = h2
}
