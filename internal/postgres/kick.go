package postgres

import (
	"context"
	"time"
)

// Kicker coalesces requests for work into runs of one function on one
// goroutine: every Kick made while a run is under way asks for exactly one
// more run. Both the replica announcements (one NOTIFY for a burst of
// changes) and the free-node index's read-backs work this way.
type Kicker chan struct{}

// NewKicker returns a Kicker with no run pending.
func NewKicker() Kicker { return make(Kicker, 1) }

// Kick asks for a run; it never blocks.
func (k Kicker) Kick() {
	select {
	case k <- struct{}{}:
	default:
	}
}

// Run calls fn once per pending kick until ctx ends. A run that fails is
// tried again after retry (0: not again until the next kick).
func (k Kicker) Run(ctx context.Context, retry time.Duration, fn func(context.Context) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-k:
			if err := fn(ctx); err != nil && ctx.Err() == nil && retry > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(retry):
				}
				k.Kick()
			}
		}
	}
}
