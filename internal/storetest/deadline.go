package storetest

import (
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// testDeadlineWakes: NextExpiry, which the background loop sleeps until,
// includes a queued request's deadline, so the deadline is failed on time
// and not at the loop's next periodic pass (the campaign measured 1.0–1.3 s
// late under load).
func testDeadlineWakes(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "n1", 8))
	mustAllocate(t, s, request("x", item("", 1, anyNode()))) // expires in an hour
	q := queued("q", 10*time.Minute, item("", 1, anyNode()))
	if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
		t.Fatalf("Allocate(q, queue) = %v, state %s", err, q.State)
	}
	next, err := s.NextExpiry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := q.WaitUntil.Truncate(time.Millisecond); !next.Equal(want) {
		t.Fatalf("NextExpiry = %v; want the queued request's deadline %v (before the lease's expiry in an hour)", next, want)
	}
}

// testDeadlineBehindHead: a queued request behind a head that cannot be
// served is failed at its own deadline, not held until the head's (the
// campaign saw four requests failed together 1.1–1.3 s late, at the moment
// the request in front of them failed).
func testDeadlineBehindHead(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "n1", 8))
	mustAllocate(t, s, request("x", item("", 1, anyNode())))
	head := queued("head", time.Hour, item("", 1, anyNode()))
	behind := queued("behind", 50*time.Millisecond, item("", 1, anyNode()))
	for _, q := range []*ironpool.Allocation{head, behind} {
		if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
			t.Fatalf("Allocate(%s, queue) = %v, state %s", q.Owner, err, q.State)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := s.DispatchQueue(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAllocation(ctx, behind.ID); got.State != ironpool.AllocFailed {
		t.Errorf("the request behind the head, past its deadline, is %s; want failed", got.State)
	}
	if got, _ := s.FindAllocation(ctx, head.ID); got.State != ironpool.AllocQueued {
		t.Errorf("the head is %s; want still queued", got.State)
	}
}
