package reconcile

import "context"

// serveQueue hands freed nodes to queued requests, first come first
// served, fails those whose deadline passed, and reports whether any moved.
func (r *Reconciler) serveQueue(ctx context.Context) bool {
	moved, err := r.Store.DispatchQueue(ctx, r.Now())
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("queue", "err", err)
	}
	return len(moved) > 0
}
