package reconcile_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/reconcile"
)

// countedLeases counts the lease writes a reconciler makes.
type countedLeases struct {
	ironpool.Store
	tries atomic.Int64
}

func (c *countedLeases) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	c.tries.Add(1)
	return c.Store.TryLease(ctx, name, holder, ttl)
}

// TestFollowerAsksAtItsPace: a replica that is not the leader asks for
// the lease every half loop interval, however often it is woken. Under
// load every change on any replica wakes every loop every few
// milliseconds, and each ask is a write on the one lease row: followers
// asking on every wake-up made 400 lease writes a second with three
// replicas, a third of PostgreSQL's time in the benchmark.
func TestFollowerAsksAtItsPace(t *testing.T) {
	h, ctx := newHarness(t, time.Now, reconcile.Config{LoopInterval: 200 * time.Millisecond, ReplicaID: "follower"})
	if ok, err := h.st.TryLease(ctx, "background", "leader-elsewhere", time.Hour); err != nil || !ok {
		t.Fatalf("the other replica's lease: %v %v", ok, err)
	}
	c := &countedLeases{Store: h.st}
	h.rec.Store = c
	h.rec.Start()
	const wakes, gap = 200, 5 * time.Millisecond
	start := time.Now()
	for range wakes {
		h.rec.Wake()
		time.Sleep(gap)
	}
	took := time.Since(start)
	if h.rec.Leader() {
		t.Fatal("the follower took a lease another replica holds")
	}
	// One ask at start, then one per 100 ms, and one of slack.
	if n, most := c.tries.Load(), int64(took/(100*time.Millisecond))+2; n > most {
		t.Errorf("%d lease asks in %s of %d wake-ups, want at most %d (one per half interval)", n, took.Round(time.Millisecond), wakes, most)
	}
}

// TestCloseHandsTheLoopOver: a leader that stops gives its lease up, so
// another replica runs the background loops at its next ask, not after
// the lease's TTL (5 s at the default interval) has run out.
func TestCloseHandsTheLoopOver(t *testing.T) {
	h, ctx := newHarness(t, time.Now, reconcile.Config{LoopInterval: time.Second, ReplicaID: "first"})
	h.rec.Start()
	waitLeader(t, h.rec, true, 2*time.Second)
	h.rec.Close()
	next := reconcile.New(h.st, reconcile.Config{LoopInterval: time.Second, ReplicaID: "next"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(next.Close)
	next.Start()
	waitLeader(t, next, true, 800*time.Millisecond)
	var holder string
	if err := h.st.DB().QueryRowContext(ctx, `SELECT holder FROM leases WHERE name = 'background'`).Scan(&holder); err != nil || holder != "next" {
		t.Errorf("lease holder = %q, %v; want next", holder, err)
	}
}

func waitLeader(t *testing.T, r *reconcile.Reconciler, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for r.Leader() != want {
		if time.Now().After(deadline) {
			t.Fatalf("leader = %v after %s, want %v", r.Leader(), within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
