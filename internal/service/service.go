// Package service is ironpool's request path: what the HTTP API, the CLI
// (via the API) and the Molten Iron listener call. It validates input,
// authorizes the actor in the context, resolves flavors and calls the
// store, whose transactions make each change atomic. It starts no
// background work of its own: what a change owes later (an expiry, a
// clean, a backend side effect) is recorded in the store and carried out
// by the reconciler (internal/reconcile), which the service reaches only
// through the Workflows interface it declares.
package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/clock"
	"github.com/ironpool/ironpool/internal/metrics"
)

// Config holds the request path's tunables.
type Config struct {
	// DefaultTTL is the lease of an allocation that names none.
	DefaultTTL time.Duration
	// MaxTTL bounds --ttl and extend.
	MaxTTL time.Duration
	// MaxWait bounds --wait.
	MaxWait time.Duration
	// DefaultMode is the checkout mode when a request names none.
	DefaultMode ironpool.Mode
	// PerAllocationBMC names the pools ("*": all) whose allocations hand
	// out a BMC account of their own (accounts.go).
	PerAllocationBMC []string
	// CleanInline says released local nodes need no cleaning step (no
	// clean command is configured), so they are available again at once.
	CleanInline bool
	// WaiterGrace is how long a queued request may go without a waiter
	// before the reconciler cancels it; long-polls renew their request
	// three times within it (waiters.go). Default 30s; negative: never.
	WaiterGrace time.Duration
	// ReservationGap is the cleaning gap kept between consecutive holds
	// of a node (a lease and a reservation, or two reservations); the
	// server hands it to the store, which enforces it.
	ReservationGap time.Duration
}

func (c *Config) setDefaults() {
	if c.DefaultTTL == 0 {
		c.DefaultTTL = 4 * time.Hour
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = 7 * 24 * time.Hour
	}
	if c.MaxWait == 0 {
		c.MaxWait = 24 * time.Hour
	}
	if c.DefaultMode == "" {
		c.DefaultMode = ironpool.ModeNone
	}
	if c.WaiterGrace == 0 {
		c.WaiterGrace = 30 * time.Second
	}
}

// Workflows is the background work a request may start or wait on: the
// reconciler implements it. The service declares it, so that it depends on
// no backend and no loop, only on what it asks of them.
type Workflows interface {
	// Wake asks the background loop to look at the store now.
	Wake()
	// HasBackend reports whether a backend (Ironic) is connected.
	HasBackend() bool
	// Leader reports whether this replica runs the background loop.
	Leader() bool
	// Sync imports and refreshes the backends' nodes; includeIgnored also
	// imports nodes deleted from the pool before.
	Sync(ctx context.Context, includeIgnored bool) (*ironpool.SyncResult, error)
	Unregister(ctx context.Context, name string) (*ironpool.Node, error)
	Inspect(ctx context.Context, name string) (*ironpool.Node, error)
	Power(ctx context.Context, name, action string) (*ironpool.PowerResult, error)
	Manageable(ctx context.Context) ([]*ironpool.Node, error)
	Adopt(ctx context.Context, req ironpool.AdoptRequest) (*ironpool.Allocation, error)
	Deploy(ctx context.Context, a *ironpool.Allocation, spec ironpool.DeploySpec) error
	Undeploy(ctx context.Context, a *ironpool.Allocation) error
	// CheckoutAccounts makes the per-allocation BMC accounts of a freshly
	// active allocation; an error means the allocation must be refused.
	CheckoutAccounts(ctx context.Context, a *ironpool.Allocation) error
	// RefuseCheckout ends an allocation whose accounts could not be made.
	RefuseCheckout(ctx context.Context, a *ironpool.Allocation)
	// NodeHealth is the BMC health check's view of one node (or, for "",
	// of all); HealthCounts its counters.
	NodeHealth(name string) []ironpool.NodeHealth
	HealthCounts() ironpool.HealthCounts
}

// Service is the request service.
type Service struct {
	Store  ironpool.Store
	Config Config
	Log    *slog.Logger
	// Now returns the time; tests replace it together with the store's.
	Now func() time.Time
	// Work is the reconciler; nil only in tests that run no background work.
	Work Workflows
	// BMC opens nodes' BMCs for direct power, boot, inspection, discovery
	// and composition; nil means none can be driven.
	BMC ironpool.BMCDialer
	// Secrets opens the sealed per-allocation BMC passwords for handoffs.
	Secrets ironpool.Sealer
	// OnEvent runs after changes commit (the webhook sender); it must not
	// block.
	OnEvent func()
	// Metrics records allocation outcomes and releases; nil records
	// nothing.
	Metrics *metrics.Metrics
	// Broadcast tells other replicas that something changed (PostgreSQL
	// NOTIFY); nil for a single server. It must not block.
	Broadcast func()

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever allocations change
	hub     waitHub       // long-poll waiters (waithub.go)
	waiters waiterState   // shutting long-polls down (waiters.go)
}

// New returns a service over store.
func New(store ironpool.Store, cfg Config, log *slog.Logger) *Service {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Service{Store: store, Config: cfg, Log: log, Now: clock.Now, changed: make(chan struct{})}
}

// notify tells everyone who waits for a change made here: local waiters,
// the background loop, webhooks and the other replicas.
func (s *Service) notify() {
	s.Signal()
	if s.Work != nil {
		s.Work.Wake()
	}
	if s.Broadcast != nil {
		s.Broadcast()
	}
}

// Signal wakes local waiters and webhooks after a change, wherever it was
// made (here, by the reconciler, or on another replica). Unlike notify it
// broadcasts nothing, so replicas do not echo each other's wake-ups.
func (s *Service) Signal() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.OnEvent != nil {
		s.OnEvent()
	}
}

// Changed returns a channel closed at the next change; waiters select on it.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Leader reports whether this replica runs the background loop.
func (s *Service) Leader() bool { return s.Work != nil && s.Work.Leader() }

// Health checks that the store answers; /healthz calls it.
func (s *Service) Health(ctx context.Context) error {
	_, err := s.Store.NextExpiry(ctx)
	return err
}

// Gauges is what /metrics shows of the pool: its status, and the store's
// write batching where the store reports it (SQLite's group commit).
type Gauges struct {
	Status *ironpool.Status
}

// Gauges reads the pool's metrics. It is not authorized per actor: the
// metrics endpoint decides who may read it.
func (s *Service) Gauges(ctx context.Context) (*Gauges, error) {
	st, err := s.Store.Status(ctx, s.Now())
	if err != nil {
		return nil, err
	}
	return &Gauges{Status: st}, nil
}

// WriteStats are the one writer's counters (SQLite's group commit).
type WriteStats struct {
	Writes, Commits int64
	Busy            time.Duration
}

// WriteStats reads the store's writer counters; ok is false for a store
// without one writer (PostgreSQL). They cost no query, so every scrape
// reads them fresh, unlike Gauges.
func (s *Service) WriteStats() (WriteStats, bool) {
	ws, ok := s.Store.(interface {
		WriteStats() (int64, int64, time.Duration)
	})
	if !ok {
		return WriteStats{}, false
	}
	var w WriteStats
	w.Writes, w.Commits, w.Busy = ws.WriteStats()
	return w, w.Commits > 0
}

// BatchStats are the store's batch counters (PostgreSQL's batcher).
type BatchStats struct {
	Batches, Calls int64
}

// BatchStats reads the store's batch counters; ok is false for a store
// that does not batch (SQLite). Like WriteStats they cost no query.
func (s *Service) BatchStats() (BatchStats, bool) {
	bs, ok := s.Store.(interface {
		BatchStats() (int64, int64, bool)
	})
	if !ok {
		return BatchStats{}, false
	}
	var b BatchStats
	b.Batches, b.Calls, ok = bs.BatchStats()
	return b, ok
}

// cleanInline reports whether released local nodes skip the cleaning step.
func (s *Service) cleanInline() bool { return s.Config.CleanInline }
