package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/ironpool/ironpool"
)

// SetNow replaces the store's clock. The contract suite (internal/storetest)
// needs it to test leases and expiry without sleeping; it must be called
// before the store is shared between goroutines.
func (s *Store) SetNow(now func() time.Time) { s.Now = now }

// SetSealer replaces the store's sealer. The contract suite uses it to know
// the key a fresh store seals with, so that it can rotate that key and check
// Reseal; like SetNow it must be called before the store is shared.
func (s *Store) SetSealer(sealer ironpool.Sealer) { s.Sealer = sealer }

// SetReachable says which backend endpoints this server drives (see
// Store.Reachable); the server calls it once, before serving.
func (s *Store) SetReachable(endpoints []string) { s.Reachable = append([]string{}, endpoints...) }

// DB returns the write pool, so that tests can read the stored bytes
// directly (a sealed password must not be readable in the table).
func (s *Store) DB() *sql.DB { return s.W }

// SetQueueAging sets how long a queued request waits for its priority to
// rise by one (storetest.QueueAger), so tests can pick the step.
func (s *Store) SetQueueAging(d time.Duration) { s.QueueAging = d }

// SetFaultAfterClaim installs a fault for tests (storetest.FreeIndexed):
// fn runs at the end of every allocation's claim, in its transaction, and
// an error it returns fails the allocation. Like SetNow it must be called
// before the store is shared.
func (s *Store) SetFaultAfterClaim(fn func(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation) error) {
	s.faultAfterClaim = fn
}

// SetBatchBetween installs a hook for tests: fn runs in every batch
// between its reads and its writes, so a test can change what the writes
// will find. Like SetNow it must be called before the store is shared.
func (s *Store) SetBatchBetween(fn func()) { s.batchBetween = fn }

// GroupCommits reports whether concurrent writes share transactions.
func (s *Store) GroupCommits() bool { return s.group != nil }
