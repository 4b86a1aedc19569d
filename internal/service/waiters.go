package service

import (
	"context"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
)

// A queued request needs a live waiter. CI runners kill jobs (SIGKILL after
// a cancel's grace, a lost runner, an OOM), and a request queued by a job
// that is gone would otherwise be served later with a full lease to
// nobody. So every wait on a queued request — the long-poll the CLI keeps
// open, or a plain read of it — records "a client waits" in the store
// (here), and the reconciler cancels a queued request nobody has waited on
// for its WaiterGrace (internal/reconcile/waiters.go). The record is in the
// database, so a waiter that reconnects to another replica keeps its
// request alive.

// waiterState is the request path's part: shutting long-polls down.
type waiterState struct {
	mu sync.Mutex
	// stopping is closed by StopWaits.
	stopping chan struct{}
}

// stopCh returns the channel StopWaits closes.
func (w *waiterState) stopCh() chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping == nil {
		w.stopping = make(chan struct{})
	}
	return w.stopping
}

// StopWaits ends every long-poll now with a retryable answer, so that a
// server being stopped can finish its in-flight requests within seconds
// instead of waiting out long-polls (which made SIGTERM take 5-7 s, fail
// with "context deadline exceeded" and exit 10).
func (s *Service) StopWaits() {
	ch := s.waiters.stopCh()
	s.waiters.mu.Lock()
	defer s.waiters.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// WatchAllocation is what a client reading allocation id gets: the
// allocation, after waiting up to wait while it is queued, with the waiter
// recorded before, during and after the wait. When the server shuts down
// during the wait the answer is EUNAVAILABLE, which clients retry.
func (s *Service) WatchAllocation(ctx context.Context, id string, wait time.Duration) (*ironpool.Allocation, error) {
	a, err := s.FindAllocation(ctx, id)
	if err != nil || a.State != ironpool.AllocQueued {
		return a, err
	}
	s.touchWaiter(ctx, id)
	if wait <= 0 {
		return s.WithQueueInfo(ctx, a), nil
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	if g := s.Config.WaiterGrace; g > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(max(g/3, 100*time.Millisecond))
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					s.touchWaiter(ctx, id)
				}
			}
		}()
	}
	stopping := s.waiters.stopCh()
	waitCtx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-stopping:
			cancel()
		case <-done:
		}
	}()
	a, err = s.WaitAllocation(waitCtx, id, wait)
	interrupted := waitCtx.Err() != nil
	cancel()
	close(done)
	wg.Wait()
	if err != nil {
		return a, err
	}
	if a.State == ironpool.AllocQueued {
		s.touchWaiter(context.WithoutCancel(ctx), id)
	}
	if interrupted && a.State == ironpool.AllocQueued && ctx.Err() == nil {
		return nil, (&ironpool.Error{Code: ironpool.EUNAVAILABLE, Message: "the server is shutting down; allocation " + id + " stays queued"}).
			WithHint("retry the request; a waiter reconnecting within the grace period keeps its place")
	}
	return s.WithQueueInfo(ctx, a), nil
}

// WithQueueInfo attaches, to a queued allocation, where it stands in the
// queue, why it waits and when it will likely be served. A failure to
// compute it is logged, not returned: the allocation itself was read.
func (s *Service) WithQueueInfo(ctx context.Context, a *ironpool.Allocation) *ironpool.Allocation {
	if a == nil || a.State != ironpool.AllocQueued {
		return a
	}
	info, err := s.Store.QueueInfo(ctx, a.ID)
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Warn("queue info", "allocation", a.ID, "err", err)
		}
		return a
	}
	a.Queue = info
	return a
}

func (s *Service) touchWaiter(ctx context.Context, id string) {
	if s.Config.WaiterGrace <= 0 {
		return
	}
	if err := s.Store.TouchWaiter(ctx, id, s.Now()); err != nil && ctx.Err() == nil {
		s.Log.Warn("queue: record waiter", "allocation", id, "err", err)
	}
}
