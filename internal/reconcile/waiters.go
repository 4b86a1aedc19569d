package reconcile

import (
	"context"
	"sync"
	"time"
)

// A queued request needs a live waiter: the request path records every
// wait on it (internal/service/waiters.go), and the leader fails a queued
// request nobody has waited on for Config.WaiterGrace, so a CI job killed
// while queued does not get nodes served, later, to nobody.

// waiterState is the leader's bookkeeping for cancelAbandoned.
type waiterState struct {
	mu sync.Mutex
	// since is when this replica began enforcing: right after a restart no
	// waiter could renew while the server was down, so the grace counts
	// from here rather than from their last renewal.
	since   time.Time
	lastRun time.Time
}

// cancelAbandoned fails the queued requests whose waiter is gone longer
// than the grace period, and reports whether it failed any.
func (r *Reconciler) cancelAbandoned(ctx context.Context) bool {
	now := r.Now()
	g := r.Config.WaiterGrace
	if g <= 0 {
		return false
	}
	w := &r.waiters
	w.mu.Lock()
	if w.since.IsZero() {
		w.since = now
	}
	due := now.Sub(w.since) >= g && now.Sub(w.lastRun) >= min(g/4, time.Second)
	if due {
		w.lastRun = now
	}
	w.mu.Unlock()
	if !due {
		return false
	}
	out, err := r.Store.CancelAbandoned(ctx, now.Add(-g), now)
	if err != nil {
		if ctx.Err() == nil {
			r.Log.Warn("queue: cancel abandoned requests", "err", err)
		}
		return false
	}
	for _, a := range out {
		r.Log.Info("queued request cancelled: no waiter", "allocation", a.ID, "owner", a.Owner, "grace", g)
	}
	return len(out) > 0
}
