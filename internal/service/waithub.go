package service

import (
	"context"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
)

// Long-polls (`GET /v1/allocations/{id}?wait=`) wait here. Each waiter used
// to re-read its allocation on every change anywhere in the pool and every
// 250 ms besides, so 300 waiters cost 1,200 reads a second while nothing
// happened and 300 reads per change. Now one hub watches for all of them:
// after a change (or, as a safety net for a missed cross-replica wake-up,
// every hubSafetyPoll) it runs one query for the queued allocations and
// wakes only the waiters whose allocation left the queue. A waiter costs
// no CPU while its allocation stays queued.
const (
	// hubSafetyPoll bounds how late a waiter learns of a change no wake-up
	// announced (a lost NOTIFY between replicas).
	hubSafetyPoll = time.Second
	// hubDebounce gathers a burst of changes into one query.
	hubDebounce = 20 * time.Millisecond
)

// waitHub maps allocation ids to the waiters to wake when they leave the
// queue. Its goroutine runs only while someone waits.
type waitHub struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
	running bool
	poke    chan struct{}
}

// await registers a waiter for id and returns the channel closed when the
// allocation is no longer queued, and the function to call when the
// waiter gives up.
func (s *Service) await(id string) (<-chan struct{}, func()) {
	h := &s.hub
	ch := make(chan struct{})
	h.mu.Lock()
	if h.waiters == nil {
		h.waiters = map[string]map[chan struct{}]struct{}{}
		h.poke = make(chan struct{}, 1)
	}
	if h.waiters[id] == nil {
		h.waiters[id] = map[chan struct{}]struct{}{}
	}
	h.waiters[id][ch] = struct{}{}
	if !h.running {
		h.running = true
		go s.runHub()
	}
	h.mu.Unlock()
	// The allocation may have left the queue between the caller's read
	// and this registration: have the hub look once more soon.
	select {
	case h.poke <- struct{}{}:
	default:
	}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if set, ok := h.waiters[id]; ok {
			delete(set, ch)
			if len(set) == 0 {
				delete(h.waiters, id)
			}
		}
	}
}

// runHub checks the queue after each change, poke or safety poll, and
// returns when nobody waits any more.
func (s *Service) runHub() {
	h := &s.hub
	ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	safety := time.NewTicker(hubSafetyPoll)
	defer safety.Stop()
	changed := s.Changed()
	for {
		select {
		case <-changed:
		case <-h.poke:
		case <-safety.C:
		}
		time.Sleep(hubDebounce)
		// Taken before the query: a change while it runs starts the next
		// round instead of waiting for the safety poll.
		changed = s.Changed()
		queued, err := s.Store.FindAllocations(ctx, ironpool.AllocationFilter{State: ironpool.AllocQueued})
		h.mu.Lock()
		if err == nil {
			still := make(map[string]bool, len(queued))
			for _, a := range queued {
				still[a.ID] = true
			}
			for id, set := range h.waiters {
				if still[id] {
					continue
				}
				for ch := range set {
					close(ch)
				}
				delete(h.waiters, id)
			}
		} else {
			s.Log.Warn("long-poll: cannot read the queue; retrying", "err", err)
		}
		if len(h.waiters) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
	}
}

// WaitAllocation blocks until the allocation leaves the queue, the timeout
// passes or ctx ends, and returns it as it is then. It reads the
// allocation (authorized as the caller) when it starts and when the hub
// says it left the queue; in between it costs nothing.
func (s *Service) WaitAllocation(ctx context.Context, id string, timeout time.Duration) (*ironpool.Allocation, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		a, err := s.FindAllocation(ctx, id)
		if err == nil && s.accountsPending(a) {
			// Served from the queue, its BMC accounts still being made:
			// a handoff without them would hold no credentials.
			select {
			case <-ctx.Done():
				return a, nil
			case <-deadline.C:
				return a, nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil || a.State != ironpool.AllocQueued {
			return a, err
		}
		left, done := s.await(id)
		select {
		case <-ctx.Done():
			done()
			return a, nil
		case <-deadline.C:
			done()
			return a, nil
		case <-left:
		}
	}
}
