package storetest

import (
	"testing"
	"time"

	"ironpool"
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
