package reconcile

import (
	"context"

	"ironpool"
)

// serveQueue hands freed nodes to queued requests, first come first
// served, fails those whose deadline passed, and reports whether any moved.
func (r *Reconciler) serveQueue(ctx context.Context) bool {
	moved, err := r.Store.DispatchQueue(ctx, r.Now())
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("queue", "err", err)
	}
	for _, a := range moved {
		if a.State == ironpool.AllocActive && len(r.Config.PerAllocationBMC) > 0 {
			if err := r.CheckoutAccounts(ctx, a); err != nil {
				r.Log.Warn("queue: per-allocation BMC account", "allocation", a.ID, "err", ironpool.ErrorMessage(err))
				r.RefuseCheckout(ctx, a)
			}
		}
	}
	return len(moved) > 0
}
