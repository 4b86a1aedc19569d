// Package pool is ironpool's service layer: what the HTTP API, the CLI (via
// the API) and the Molten Iron listener all call. It validates input,
// authorizes the actor in the context, resolves flavors, and runs the
// background loops that make leases expire, queued requests move and nodes
// come back from cleaning. Persistence and atomicity belong to the Store.
package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"ironpool"
)

// Config holds the service's tunables.
type Config struct {
	// DefaultTTL is the lease of an allocation that names none.
	DefaultTTL time.Duration
	// MaxTTL bounds --ttl and extend.
	MaxTTL time.Duration
	// MaxWait bounds --wait.
	MaxWait time.Duration
	// DefaultMode is the checkout mode when a request names none.
	DefaultMode ironpool.Mode
	// CleanCommand, when set, runs for every released local node; the node
	// is available again only when it exits 0.
	CleanCommand []string
	// CleanTimeout bounds one run of CleanCommand.
	CleanTimeout time.Duration
	// ReplicaID names this server in leader leases; random by default.
	ReplicaID string
	// LoopInterval is the longest a background loop sleeps (default 1s, so an
	// expiry or a release on another replica is seen within about a second).
	LoopInterval time.Duration
	// WaiterGrace is how long a queued request may go without a client
	// waiting on it before it is cancelled (default 30s; negative: never).
	// See waiters.go.
	WaiterGrace time.Duration
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
	if c.CleanTimeout == 0 {
		c.CleanTimeout = 30 * time.Minute
	}
	if c.ReplicaID == "" {
		b := make([]byte, 6)
		rand.Read(b)
		c.ReplicaID = hex.EncodeToString(b)
	}
	if c.LoopInterval == 0 {
		c.LoopInterval = time.Second
	}
	if c.WaiterGrace == 0 {
		c.WaiterGrace = 30 * time.Second
	}
}

// Service is the pool service.
type Service struct {
	Store  ironpool.Store
	Config Config
	Log    *slog.Logger
	// Now returns the time; tests replace it together with the store's.
	Now func() time.Time
	// Hooks run after changes commit (the webhook sender, the Ironic
	// reconciler); they must not block.
	OnEvent func()
	// Broadcast tells other replicas that something changed (PostgreSQL
	// NOTIFY); nil for a single server. It must not block.
	Broadcast func()
	// Backend is the Ironic behind the pool; nil for a local pool.
	Backend Backend
	// Ironic tunes the Ironic reconciler and sync (see ironic.go).
	Ironic IronicConfig
	ironic ironicState

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever allocations change
	wake    chan struct{} // pokes the background loops
	leader  bool
	waiters waiterState
	cancel  context.CancelFunc
	done    chan struct{}
}

// New returns a service over store. Call Start to run the background loops.
func New(store ironpool.Store, cfg Config, log *slog.Logger) *Service {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Service{Store: store, Config: cfg, Log: log, Now: time.Now,
		changed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// notify wakes waiters and the background loops after a change made here,
// and tells the other replicas.
func (s *Service) notify() {
	s.Wake()
	if s.OnEvent != nil {
		s.OnEvent()
	}
	if s.Broadcast != nil {
		s.Broadcast()
	}
}

// Changed returns a channel closed at the next change; waiters select on it.
func (s *Service) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Wake wakes local waiters and asks the background loops to run now, e.g.
// on a NOTIFY from another replica. Unlike notify it broadcasts nothing, so
// replicas do not echo each other's wake-ups.
func (s *Service) Wake() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Leader reports whether this replica runs the background loops now.
func (s *Service) Leader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// Start runs the background loops until Close.
func (s *Service) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.loop(ctx)
	}()
}

// Close stops the background loops.
func (s *Service) Close() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

const leaseName = "background"

// loop is the one background loop: on every wake-up or tick, if this replica
// holds the lease, it expires leases, serves the queue and cleans nodes. One
// loop rather than three keeps their order fixed: releases first, so the
// queue sees the nodes they free.
func (s *Service) loop(ctx context.Context) {
	ctx = ironpool.NewContextWithActor(ctx, ironpool.System)
	leaseTTL := 5 * s.Config.LoopInterval
	if leaseTTL < 3*time.Second {
		leaseTTL = 3 * time.Second
	}
	var renewed time.Time
	for {
		now := s.Now()
		if now.Sub(renewed) >= s.Config.LoopInterval/2 || !s.Leader() {
			ok, err := s.Store.TryLease(ctx, leaseName, s.Config.ReplicaID, leaseTTL)
			if err != nil && ctx.Err() == nil {
				s.Log.Warn("lease", "err", err)
			}
			s.mu.Lock()
			if ok != s.leader {
				s.Log.Info("background loops", "leader", ok, "replica", s.Config.ReplicaID)
			}
			s.leader = ok
			s.mu.Unlock()
			renewed = now
		}
		sleep := s.Config.LoopInterval
		if s.Leader() {
			if d := s.tick(ctx); d < sleep {
				sleep = d
			}
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			// Coalesce bursts: under load every request wakes the loop,
			// and one pass per few milliseconds serves them all.
			time.Sleep(5 * time.Millisecond)
		case <-t.C:
		}
		t.Stop()
	}
}

// tick runs the background work once and returns how long it may sleep.
func (s *Service) tick(ctx context.Context) time.Duration {
	now := s.Now()
	changed := false
	ids, err := s.Store.ExpiredAllocations(ctx, now)
	if err != nil {
		s.Log.Warn("reaper", "err", err)
	}
	for _, id := range ids {
		if _, err := s.Store.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: id}, ironpool.AllocExpired, s.cleanInline()); err != nil {
			s.Log.Warn("reaper: release", "allocation", id, "err", err)
			continue
		}
		s.Log.Info("lease expired", "allocation", id)
		changed = true
	}
	if n := s.cleanNodes(ctx); n > 0 {
		changed = true
	}
	if s.reconcile(ctx) > 0 {
		changed = true
	}
	if s.cancelAbandoned(ctx, now) > 0 {
		changed = true
	}
	moved, err := s.Store.DispatchQueue(ctx, now)
	if err != nil {
		s.Log.Warn("queue", "err", err)
	}
	if len(moved) > 0 {
		changed = true
	}
	if changed {
		s.mu.Lock()
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if s.OnEvent != nil {
			s.OnEvent()
		}
	}
	sleep := s.Config.LoopInterval
	if next, err := s.Store.NextExpiry(ctx); err == nil && !next.IsZero() {
		if d := next.Sub(s.Now()) + time.Millisecond; d < sleep {
			sleep = max(d, time.Millisecond)
		}
	}
	return sleep
}

// cleanInline reports whether released local nodes skip the cleaning step
// because there is nothing to run.
func (s *Service) cleanInline() bool { return len(s.Config.CleanCommand) == 0 }
