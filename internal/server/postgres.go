package server

import (
	"context"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// announceGap is the least time between two announcements of a replica's
// changes: what it adds to how long a request queued on another replica
// waits for nodes released here.
const announceGap = 10 * time.Millisecond

// openPostgres opens the shared PostgreSQL store.
func openPostgres(ctx context.Context, m *Main, ring *secret.Keyring) (ironpool.Store, error) {
	return postgres.Open(ctx, m.DB, ring)
}

// startReplicaNotify connects this replica to the others through the
// database: each change made here is announced with NOTIFY (coalesced, so a
// burst of allocations costs one message), and every NOTIFY heard wakes the
// local waiters and background loops, so a release on one replica serves a
// request queued on another within a moment.
func (m *Main) startReplicaNotify() {
	st, ok := m.Store.(*sqlstore.Store)
	if !ok || !IsPostgres(m.DB) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	kick := postgres.NewKicker()
	m.Service.Broadcast = kick.Kick
	go func() {
		defer func() { done <- struct{}{} }()
		kick.Run(ctx, 0, func(ctx context.Context) error {
			nctx, ncancel := context.WithTimeout(ctx, 2*time.Second)
			defer ncancel()
			if err := postgres.Notify(nctx, st.W, postgres.DefaultChannel); err != nil && ctx.Err() == nil {
				m.Log.Warn("notify replicas", "err", err)
			}
			// Changes made meanwhile share the next announcement: one
			// NOTIFY per release cost every replica a wake-up each and
			// serialized commits (docs/PERFORMANCE.md, session 6).
			select {
			case <-ctx.Done():
			case <-time.After(announceGap):
			}
			return nil
		})
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		postgres.Listen(ctx, m.DB, postgres.DefaultChannel, func() {
			m.Service.Signal()
			m.Reconciler.Wake()
		})
	}()
	// A revocation or a flavor deletion on any replica empties every
	// replica's token and flavor caches.
	// Listen also calls back on each (re)connect, when notifications may
	// have been lost; sqlstore.TokenCacheBound covers the time it is away.
	go func() {
		defer func() { done <- struct{}{} }()
		postgres.Listen(ctx, m.DB, sqlstore.TokenChannel, st.InvalidateCaches)
	}()
	m.closers = append(m.closers, func() error {
		cancel()
		<-done
		<-done
		<-done
		return nil
	})
}
