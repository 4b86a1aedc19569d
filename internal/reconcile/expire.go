package reconcile

import "context"

// expire ends every lease past its expiry and reports whether any ended.
// The store decides on the rows inside the transaction that releases them,
// so a renewal that committed first is honoured.
func (r *Reconciler) expire(ctx context.Context) bool {
	expired, err := r.Store.ExpireAllocations(ctx, r.Config.CleanInline())
	if err != nil && ctx.Err() == nil {
		r.Log.Warn("reaper", "err", err)
	}
	r.Metrics.LeaseExpired(len(expired))
	for _, a := range expired {
		r.Log.Info("lease expired", "allocation", a.ID)
	}
	return len(expired) > 0
}
