package storetest

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// testStaleDispatch: DispatchQueue called with a time read long before
// (the leader was paused between reading the clock and dispatching — the
// campaign's SIGSTOP nemesis found it) still decides on the time of its own
// transaction: a lease is as long as asked from when it is served, and a
// request whose deadline has passed is failed, not served.
func testStaleDispatch(t *testing.T, open func(t *testing.T) ironpool.Store) {
	stale := func() time.Time { return time.Now().Add(-10 * time.Minute) }
	t.Run("LeaseFromServing", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		x := mustAllocate(t, s, request("x", item("", 1, anyNode())))
		q := queued("q", time.Hour, item("", 1, anyNode()))
		if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
			t.Fatalf("Allocate(q, queue) = %v, state %s", err, q.State)
		}
		mustRelease(t, s, x.ID, true)
		changed, err := s.DispatchQueue(ctx, stale())
		if err != nil || len(changed) != 1 || changed[0].State != ironpool.AllocActive {
			t.Fatalf("DispatchQueue = %+v, %v; want q active", changed, err)
		}
		got, _ := s.FindAllocation(ctx, q.ID)
		if d := time.Until(got.ExpiresAt); d < time.Hour-time.Minute {
			t.Errorf("q was served now with a one-hour lease that ends in %s", d.Round(time.Second))
		}
	})
	t.Run("DeadlinePassed", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		x := mustAllocate(t, s, request("x", item("", 1, anyNode())))
		q := queued("q", 50*time.Millisecond, item("", 1, anyNode()))
		if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
			t.Fatalf("Allocate(q, queue) = %v, state %s", err, q.State)
		}
		time.Sleep(100 * time.Millisecond)
		mustRelease(t, s, x.ID, true)
		if _, err := s.DispatchQueue(ctx, stale()); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FindAllocation(ctx, q.ID); got.State != ironpool.AllocFailed {
			t.Errorf("q, whose deadline passed before the dispatch, is %s; want failed", got.State)
		}
	})
}

// testPausedDispatch: a dispatch whose transaction is paused between
// reading the clock and committing (here the store's clock jumps 10 s
// inside it) must not commit decisions taken on the old time.
func testPausedDispatch(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	clock, ok := s.(Clock)
	if !ok {
		t.Skip("skipped: the store has no settable clock (storetest.Clock)")
	}
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "n1", 8))
	x := mustAllocate(t, s, request("x", item("", 1, anyNode())))
	q := queued("q", time.Hour, item("", 1, anyNode()))
	if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
		t.Fatalf("Allocate(q, queue) = %v, state %s", err, q.State)
	}
	mustRelease(t, s, x.ID, true)
	base := time.Now()
	var calls atomic.Int64
	var last atomic.Int64
	clock.SetNow(func() time.Time {
		now := base
		if calls.Add(1) > 1 {
			now = base.Add(10 * time.Second)
		}
		last.Store(now.UnixNano())
		return now
	})
	_, err := s.DispatchQueue(ctx, base)
	clock.SetNow(time.Now)
	got, _ := s.FindAllocation(ctx, q.ID)
	if got.State == ironpool.AllocActive {
		end := time.Unix(0, last.Load())
		if short := time.Hour - got.ExpiresAt.Sub(end); short > time.Second {
			t.Fatalf("a dispatch paused 10 s inside its transaction committed a lease %s shorter than asked (err %v)", short.Round(time.Millisecond), err)
		}
	} else if err == nil {
		t.Fatalf("q is %s after a dispatch that reported no error", got.State)
	}
	// The next pass, not paused, serves it in full.
	if _, err := s.DispatchQueue(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindAllocation(ctx, q.ID); got.State != ironpool.AllocActive || time.Until(got.ExpiresAt) < time.Hour-time.Minute {
		t.Fatalf("after an unpaused dispatch q is %s expiring in %s; want active for about an hour", got.State, time.Until(got.ExpiresAt))
	}
}
