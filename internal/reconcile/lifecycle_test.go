package reconcile_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/reconcile"
)

// cleaningPool is a harness whose released local nodes run cmd as their
// clean command, with count nodes of 4 cpus.
func cleaningPool(t *testing.T, count int, cmd ...string) (*harness, context.Context) {
	t.Helper()
	h, ctx := newHarness(t, time.Now, reconcile.Config{CleanCommand: cmd})
	var nodes []*ironpool.Node
	for i := range count {
		nodes = append(nodes, &ironpool.Node{Name: fmt.Sprintf("n%d", i), CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://127.0.0.1"}})
	}
	if err := h.svc.CreateNodes(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	return h, ctx
}

func allocate(t *testing.T, h *harness, ctx context.Context, count int, ttl time.Duration) *ironpool.Allocation {
	t.Helper()
	a, err := h.svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "ci", TTL: ttl,
		Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: count}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCleaningRunsInParallelOffTheLoop: eight released nodes with a 2 s
// clean command are all available again within 4 s (cleaning runs in
// parallel workers, not node after node), and a 1 s lease that expires
// meanwhile is released within about a second of its expiry (the loop
// never waits for a clean).
func TestCleaningRunsInParallelOffTheLoop(t *testing.T) {
	h, ctx := cleaningPool(t, 9, "sleep", "2")
	eight := allocate(t, h, ctx, 8, time.Hour)
	short := allocate(t, h, ctx, 1, time.Second)
	h.rec.Start()
	released := time.Now()
	if _, err := h.svc.ReleaseAllocation(ctx, eight.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, h.svc, ctx, short.ID, ironpool.AllocExpired, 3*time.Second)
	got, _ := h.svc.FindAllocation(ctx, short.ID)
	if late := got.ReleasedAt.Sub(got.ExpiresAt); late < 0 || late > 1200*time.Millisecond {
		t.Errorf("lease released %s after its expiry while nodes were cleaning; want within about a second", late)
	}
	for time.Since(released) < 4*time.Second {
		free := 0
		for _, name := range eight.Items[0].Nodes {
			n, err := h.svc.FindNode(ctx, name, false)
			if err != nil {
				t.Fatal(err)
			}
			if n.State == ironpool.NodeAvailable {
				free++
			}
		}
		if free == 8 {
			t.Logf("8 nodes cleaned in %s", time.Since(released).Round(10*time.Millisecond))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("8 nodes with a 2 s clean command are not all available within 4 s of their release")
}

// watchedStore counts store calls made after the test says the reconciler
// is closed.
type watchedStore struct {
	ironpool.Store
	closed atomic.Bool
	late   atomic.Int64
}

func (w *watchedStore) note() {
	if w.closed.Load() {
		w.late.Add(1)
	}
}

func (w *watchedStore) FindNode(ctx context.Context, name string) (*ironpool.Node, error) {
	w.note()
	return w.Store.FindNode(ctx, name)
}

func (w *watchedStore) FindNodes(ctx context.Context, f ironpool.NodeFilter) ([]*ironpool.Node, error) {
	w.note()
	return w.Store.FindNodes(ctx, f)
}

func (w *watchedStore) FinishCleaning(ctx context.Context, id int64, msg string) error {
	w.note()
	return w.Store.FinishCleaning(ctx, id, msg)
}

func (w *watchedStore) UpdateNode(ctx context.Context, name string, fn func(*ironpool.Node) error) (*ironpool.Node, error) {
	w.note()
	return w.Store.UpdateNode(ctx, name, fn)
}

func (w *watchedStore) ExpireAllocations(ctx context.Context, inline bool) ([]*ironpool.Allocation, error) {
	w.note()
	return w.Store.ExpireAllocations(ctx, inline)
}

func (w *watchedStore) DispatchQueue(ctx context.Context, now time.Time) ([]*ironpool.Allocation, error) {
	w.note()
	return w.Store.DispatchQueue(ctx, now)
}

func (w *watchedStore) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	w.note()
	return w.Store.TryLease(ctx, name, holder, ttl)
}

// TestCloseAwaitsEveryWorker: Close returns only after the loop and every
// cleaning worker stopped, and the store sees no call after it — even
// though clean commands were running when Close began.
func TestCloseAwaitsEveryWorker(t *testing.T) {
	h, ctx := cleaningPool(t, 8, "sleep", "1")
	w := &watchedStore{Store: h.st}
	h.rec.Store = w
	a := allocate(t, h, ctx, 8, time.Hour)
	h.rec.Start()
	if _, err := h.svc.ReleaseAllocation(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the clean commands are running
	var wg sync.WaitGroup
	wg.Go(h.rec.Close)
	wg.Wait()
	w.closed.Store(true)
	time.Sleep(1500 * time.Millisecond) // past the end of every clean command
	if n := w.late.Load(); n > 0 {
		t.Fatalf("%d store calls after Close returned", n)
	}
	// The cleaning was cut off, not lost: the nodes still owe it.
	nodes, err := h.st.FindNodes(ctx, ironpool.NodeFilter{State: ironpool.NodeCleaning})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 8 {
		t.Errorf("%d nodes still owe their cleaning after Close, want 8 (cut off, to run again after a restart)", len(nodes))
	}
}
