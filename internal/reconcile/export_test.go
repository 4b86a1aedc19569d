package reconcile

import "context"

// Tick runs the background work once, as the loop does on the leader.
func Tick(r *Reconciler, ctx context.Context) { r.tick(ctx) }
