package service_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/service"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// countingStore is the real SQLite store, counting the reads a waiting
// long-poll could make.
type countingStore struct {
	ironpool.Store
	reads atomic.Int64
}

func (c *countingStore) FindAllocation(ctx context.Context, id string) (*ironpool.Allocation, error) {
	c.reads.Add(1)
	return c.Store.FindAllocation(ctx, id)
}

func (c *countingStore) FindAllocations(ctx context.Context, f ironpool.AllocationFilter) ([]*ironpool.Allocation, error) {
	c.reads.Add(1)
	return c.Store.FindAllocations(ctx, f)
}

// TestLongPollsIdle: 100 long-polls on queued requests read the store
// about once a second in all while nothing changes (each used to poll
// every 250 ms: 800 reads in 2 s), and the one whose request is served
// still returns at once.
func TestLongPollsIdle(t *testing.T) {
	st, ctx := opener.MustOpenSQLiteAdmin(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := reconcile.New(st, reconcile.Config{LoopInterval: 200 * time.Millisecond}, log)
	counted := &countingStore{Store: st}
	svc := service.New(counted, service.Config{CleanInline: true}, log)
	svc.Work = rec
	rec.Changed = svc.Signal
	rec.Start()
	t.Cleanup(rec.Close)

	if err := svc.CreateNodes(ctx, []*ironpool.Node{{Name: "only", CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://127.0.0.1:6230"}}}); err != nil {
		t.Fatal(err)
	}
	req := func() *ironpool.AllocationRequest {
		return &ironpool.AllocationRequest{Owner: "ci", TTL: time.Hour, Wait: time.Hour,
			Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: 1}}}
	}
	holder, err := svc.Allocate(ctx, req())
	if err != nil || holder.State != ironpool.AllocActive {
		t.Fatalf("first allocation: %v %v", holder, err)
	}
	const waiters = 100
	ids := make([]string, waiters)
	for i := range ids {
		a, err := svc.Allocate(ctx, req())
		if err != nil || a.State != ironpool.AllocQueued {
			t.Fatalf("queued request %d: %v %v", i, a, err)
		}
		ids[i] = a.ID
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan *ironpool.Allocation, waiters)
	var started sync.WaitGroup
	for i, id := range ids {
		results[i] = make(chan *ironpool.Allocation, 1)
		started.Add(1)
		go func() {
			started.Done()
			a, err := svc.WaitAllocation(wctx, id, time.Minute)
			if err != nil {
				t.Errorf("wait %s: %v", id, err)
			}
			results[i] <- a
		}()
	}
	started.Wait()
	time.Sleep(300 * time.Millisecond) // every waiter has read once and registered
	before := counted.reads.Load()
	time.Sleep(2 * time.Second)
	idle := counted.reads.Load() - before
	t.Logf("%d waiters made %d store reads in 2 s of no change", waiters, idle)
	if idle > 10 {
		t.Errorf("%d long-polls made %d reads in 2 s while nothing changed; want a handful (one hub, about 1/s)", waiters, idle)
	}

	// Freeing the node serves the head of the queue: its waiter returns
	// at once, active; the others keep waiting.
	start := time.Now()
	if _, err := svc.ReleaseAllocation(ctx, holder.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-results[0]:
		if a.State != ironpool.AllocActive {
			t.Errorf("head waiter returned %s, want active", a.State)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("head waiter returned %s after the release; want well under a second", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the head waiter did not return after its request was served")
	}
	for i := 1; i < waiters; i++ {
		select {
		case a := <-results[i]:
			t.Fatalf("waiter %d returned (%s) while its request is still queued", i, a.State)
		default:
		}
	}
	cancel()
	for i := 1; i < waiters; i++ {
		if a := <-results[i]; a == nil || a.State != ironpool.AllocQueued {
			t.Errorf("waiter %d after cancel: %v", i, a)
		}
	}
}
