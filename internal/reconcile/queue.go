package reconcile

import (
	"context"

	"github.com/ironpool/ironpool"
)

// serveQueue hands freed nodes to queued requests, first come first
// served, fails those whose deadline passed, and reports whether any moved.
func (r *Reconciler) serveQueue(ctx context.Context) bool {
	moved, err := r.Store.DispatchQueue(ctx, r.Now())
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("queue", "err", err)
	}
	// A request served here may owe per-allocation BMC accounts; they are
	// made in a worker, as BMCs are slow, never in the loop (a waiting
	// client sees the allocation once they are recorded).
	for _, a := range moved {
		if a.State == ironpool.AllocActive {
			r.Metrics.QueueWait(r.Now().Sub(a.CreatedAt))
		}
		if a.State == ironpool.AllocActive && len(r.Config.PerAllocationBMC) > 0 {
			r.goWork(func(ctx context.Context) {
				if err := r.CheckoutAccounts(ctx, a); err != nil {
					r.Log.Warn("queue: per-allocation BMC account", "allocation", a.ID, "err", ironpool.ErrorMessage(err))
					r.RefuseCheckout(ctx, a)
				}
				r.changed()
			})
		}
	}
	return len(moved) > 0
}
