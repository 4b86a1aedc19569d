package reconcile_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/service"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// clock is a controlled time source shared by the store and the service.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// harness is a request service and a reconciler over one real SQLite
// store, wired as the server wires them.
type harness struct {
	st  *sqlstore.Store
	svc *service.Service
	rec *reconcile.Reconciler
}

func newHarness(t *testing.T, now func() time.Time, cfg reconcile.Config) (*harness, context.Context) {
	t.Helper()
	st, ctx := opener.MustOpenSQLiteAdmin(t)
	st.Now = now
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.LoopInterval == 0 {
		cfg.LoopInterval = 200 * time.Millisecond
	}
	rec := reconcile.New(st, cfg, log)
	rec.Now = now
	svc := service.New(st, service.Config{CleanInline: rec.Config.CleanInline()}, log)
	svc.Now = now
	svc.Work = rec
	rec.Changed = svc.Signal
	t.Cleanup(rec.Close)
	return &harness{st, svc, rec}, ctx
}

func open(t *testing.T, now func() time.Time) (*harness, *service.Service, context.Context) {
	t.Helper()
	h, ctx := newHarness(t, now, reconcile.Config{})
	if err := h.svc.CreateNodes(ctx, []*ironpool.Node{
		{Name: "a", CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://10.0.0.1"}},
		{Name: "b", CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://10.0.0.2"}},
	}); err != nil {
		t.Fatal(err)
	}
	return h, h.svc, ctx
}

func waitState(t *testing.T, svc *service.Service, ctx context.Context, id string, want ironpool.AllocationState, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		a, err := svc.FindAllocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.State == want {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("allocation %s not %s within %s", id, want, within)
	return 0
}

// TestReaperControlledClock: a 1 s lease is left alone until the clock
// passes its expiry, then released (state expired, nodes free) at once.
func TestReaperControlledClock(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h, svc, ctx := open(t, clk.Now)
	h.rec.Start()
	a, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "ci", TTL: time.Second,
		Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{CPUs: 1}, Count: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(900 * time.Millisecond)
	h.rec.Wake()
	time.Sleep(400 * time.Millisecond) // two loop intervals of real time
	if got, _ := svc.FindAllocation(ctx, a.ID); got.State != ironpool.AllocActive {
		t.Fatalf("released before expiry: %s", got.State)
	}
	clk.Add(101 * time.Millisecond) // now exactly one tick past expiry
	took := waitState(t, svc, ctx, a.ID, ironpool.AllocExpired, 2*time.Second)
	if took > time.Second {
		t.Fatalf("expired lease released %s after the clock passed expiry; want within about a second", took)
	}
	nodes, _ := svc.FindNodes(ctx, ironpool.NodeFilter{State: ironpool.NodeAvailable})
	if len(nodes) != 2 {
		t.Fatalf("%d nodes available after expiry, want 2", len(nodes))
	}
	ev, _ := svc.FindEvents(ctx, ironpool.EventFilter{Action: "allocation.expired"})
	if len(ev) != 1 || ev[0].Actor != "system" {
		t.Fatalf("expiry events %+v", ev)
	}
}

// TestReaperRealClock: with real time, a 1 s lease is released within about
// a second of its expiry (the loop sleeps until the next expiry).
func TestReaperRealClock(t *testing.T) {
	h, svc, ctx := open(t, time.Now)
	h.rec.Config.LoopInterval = time.Second
	h.rec.Start()
	a, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "ci", TTL: time.Second,
		Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, svc, ctx, a.ID, ironpool.AllocExpired, 3*time.Second)
	got, _ := svc.FindAllocation(ctx, a.ID)
	if late := got.ReleasedAt.Sub(got.ExpiresAt); late < 0 || late > 1100*time.Millisecond {
		t.Fatalf("released %s after expiry (expires %s, released %s)", late, got.ExpiresAt, got.ReleasedAt)
	}
}

// TestQueueFIFO: a queued request is served when nodes free up, and a later
// smaller request does not overtake it.
func TestQueueFIFO(t *testing.T) {
	h, svc, ctx := open(t, time.Now)
	h.rec.Start()
	one := []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: 1}}
	first, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "a", Items: one})
	if err != nil {
		t.Fatal(err)
	}
	second, _ := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "b", Items: one})
	big, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "big", Wait: time.Minute,
		Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: 2}}})
	if err != nil || big.State != ironpool.AllocQueued {
		t.Fatalf("big: %v %v", big, err)
	}
	small, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "small", Wait: time.Minute, Items: one})
	if err != nil || small.State != ironpool.AllocQueued {
		t.Fatalf("small: %v %v", small, err)
	}
	if _, err := svc.ReleaseAllocation(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if a, _ := svc.FindAllocation(ctx, small.ID); a.State != ironpool.AllocQueued {
		t.Fatalf("small request overtook the head of the queue: %s", a.State)
	}
	svc.ReleaseAllocation(ctx, second.ID)
	waitState(t, svc, ctx, big.ID, ironpool.AllocActive, 2*time.Second)
	if a, _ := svc.FindAllocation(ctx, small.ID); a.State != ironpool.AllocQueued {
		t.Fatalf("small: %s", a.State)
	}
}
