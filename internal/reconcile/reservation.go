package reconcile

import (
	"context"

	"github.com/ironpool/ironpool"
)

// startReservations turns the reservations whose window has begun into
// active allocations (the same lease machinery: checkout, expiry at the
// window's end, release), repairs pending ones whose nodes broke, and
// reports whether any changed. What to do is decided inside the store's
// transaction, on the rows as they are; the owner learns of a reservation
// at risk or failed from its event, which webhooks carry.
func (r *Reconciler) startReservations(ctx context.Context) bool {
	changed, started, err := r.Store.StartReservations(ctx)
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("reservations", "err", err)
	}
	for _, res := range changed {
		switch res.State {
		case ironpool.ResActive:
			r.Log.Info("reservation started", "reservation", res.ID, "allocation", res.AllocationID)
		case ironpool.ResFailed:
			r.Log.Warn("reservation failed", "reservation", res.ID, "owner", res.Owner, "reason", res.LastError)
		default:
			if res.LastError != "" {
				r.Log.Warn("reservation at risk", "reservation", res.ID, "owner", res.Owner, "reason", res.LastError)
			}
		}
	}
	// As for a served queued request, per-allocation BMC accounts are made
	// in a worker, never in the loop.
	for _, a := range started {
		if len(r.Config.PerAllocationBMC) > 0 {
			r.goWork(func(ctx context.Context) {
				if err := r.CheckoutAccounts(ctx, a); err != nil {
					r.Log.Warn("reservation: per-allocation BMC account", "allocation", a.ID, "err", ironpool.ErrorMessage(err))
					r.RefuseCheckout(ctx, a)
				}
				r.changed()
			})
		}
	}
	return len(changed) > 0
}
