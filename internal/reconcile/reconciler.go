// Package reconcile is ironpool's background work: it makes leases expire,
// serves the queue, cleans released nodes and carries out every side effect
// a backend owes, one file per workflow (expire, queue, clean, checkout,
// register, deploy, inspect, power, adopt, sync), the way Ironic's
// conductor keeps one module per workflow. The request path
// (internal/service) only records what is owed, in the store; the
// reconciler reads it from there and works until it is done, so a crash or
// a backend outage delays side effects but loses none.
//
// One replica at a time runs the loop (a lease in the store); every
// goroutine the reconciler starts is owned by it and awaited by Close.
package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/clock"
	"github.com/ironpool/ironpool/internal/metrics"
)

// Config tunes the background work.
type Config struct {
	// ReplicaID names this server in leader leases; random by default.
	ReplicaID string
	// LoopInterval is the longest the loop sleeps (default 1s, so an expiry
	// or a release on another replica is seen within about a second).
	LoopInterval time.Duration
	// CleanCommand, when set, runs for every released local node; the node
	// is available again only when it exits 0.
	CleanCommand []string
	// CleanTimeout bounds one run of CleanCommand (default 30m).
	CleanTimeout time.Duration
	// CleanWorkers bounds how many clean commands run at once (default 8).
	CleanWorkers int
	// Backend tunes the backend workflows.
	Backend BackendConfig
	// ReleasePowerOff names the pools ("*": all) whose released local
	// nodes are powered off through their BMCs as the first cleaning step,
	// and with ReleasePXE also set to boot from the network next.
	ReleasePowerOff []string
	ReleasePXE      bool
	// PerAllocationBMC names the pools ("*": all) whose allocations get a
	// BMC account of their own, made at checkout and deleted as the first
	// cleaning step (accounts.go).
	PerAllocationBMC []string
	// Health tunes the BMC health checks (health.go).
	Health HealthConfig
	// WaiterGrace is how long a queued request may go without a client
	// waiting on it before it is cancelled (default 30s; negative: never).
	// See waiters.go.
	WaiterGrace time.Duration
}

// BackendConfig tunes the backend reconciler and the periodic sync.
type BackendConfig struct {
	// SyncInterval is how often the leader imports and refreshes the
	// backend's nodes (default 30s; negative disables the periodic sync,
	// leaving `ironpool ironic sync`).
	SyncInterval time.Duration
	// Workers bounds how many nodes the reconciler drives at once (default
	// 32): cleaning a node can take many minutes, and an unbounded fan-out
	// would only queue inside Ironic's conductor.
	Workers int
	// RetryBase and RetryMax bound the backoff between attempts on a node
	// whose side effect failed (defaults 1s and 15s), so a backend that
	// comes back is noticed within RetryMax.
	RetryBase, RetryMax time.Duration
}

func (c *Config) setDefaults() {
	if c.WaiterGrace == 0 {
		c.WaiterGrace = 30 * time.Second
	}
	if c.ReplicaID == "" {
		b := make([]byte, 6)
		rand.Read(b)
		c.ReplicaID = hex.EncodeToString(b)
	}
	if c.LoopInterval == 0 {
		c.LoopInterval = time.Second
	}
	if c.CleanTimeout == 0 {
		c.CleanTimeout = 30 * time.Minute
	}
	if c.CleanWorkers <= 0 {
		c.CleanWorkers = 8
	}
	c.Health.defaults()
	b := &c.Backend
	if b.SyncInterval == 0 {
		b.SyncInterval = 30 * time.Second
	}
	if b.Workers <= 0 {
		b.Workers = 32
	}
	if b.RetryBase <= 0 {
		b.RetryBase = time.Second
	}
	if b.RetryMax <= 0 {
		b.RetryMax = 15 * time.Second
	}
}

// Reconciler runs the background work over a store and, when the pool has
// one, a backend.
type Reconciler struct {
	Store ironpool.Store
	// Backends are the provisioning services behind the pool (several
	// Ironics may back one pool; each node's link names its endpoint). The
	// first is where `node register` enrolls. Empty for a local pool. Set
	// them before Start.
	Backends []ironpool.Backend
	// BMC opens nodes' BMCs for health checks, the release power-off and
	// per-allocation accounts; nil means none can be driven.
	BMC ironpool.BMCDialer
	// Secrets seals the per-allocation BMC passwords.
	Secrets ironpool.Sealer
	Config  Config
	Log     *slog.Logger
	// Now returns the time; tests replace it together with the store's.
	Now func() time.Time
	// Changed is called after background work changed something (waiters
	// and webhooks look again); Broadcast after a worker finished, to tell
	// other replicas. Both must not block; either may be nil.
	Changed, Broadcast func()
	// Metrics records expiries, retries, cleanings and queue waits; nil
	// records nothing.
	Metrics *metrics.Metrics

	wake    chan struct{}
	work    workers
	health  healthState
	waiters waiterState

	mu     sync.Mutex
	leader bool
	// lastPass is when this replica's loop last finished a pass as
	// leader, for ironpool_reconciler_lag_seconds.
	lastPass time.Time
	ctx      context.Context // the loop's context, for workers started by requests
	cancel   context.CancelFunc
	wg       sync.WaitGroup // every goroutine started here
	closed   bool
}

// New returns a reconciler over store; set Backend and hooks, then Start.
func New(store ironpool.Store, cfg Config, log *slog.Logger) *Reconciler {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	r := &Reconciler{Store: store, Config: cfg, Log: log, Now: clock.Now, wake: make(chan struct{}, 1)}
	r.ctx, r.cancel = context.WithCancel(ironpool.NewContextWithActor(context.Background(), ironpool.System))
	return r
}

// Wake asks the loop to run now (after a change here or on another replica).
func (r *Reconciler) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Leader reports whether this replica runs the background loop now.
func (r *Reconciler) Leader() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

// Lag is how long ago this replica's background loop last finished a
// pass; 0 when it is not the leader (another replica's lag is its own to
// report). A lag far over the loop interval means the loop is stuck.
func (r *Reconciler) Lag() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader || r.lastPass.IsZero() {
		return 0
	}
	return r.Now().Sub(r.lastPass)
}

// HasBackend reports whether a backend is connected.
func (r *Reconciler) HasBackend() bool { return len(r.Backends) > 0 }

// Endpoints lists the endpoints of the connected backends.
func (r *Reconciler) Endpoints() []string {
	out := make([]string, len(r.Backends))
	for i, b := range r.Backends {
		out[i] = b.Endpoint()
	}
	return out
}

// backend returns the connected backend with this endpoint; an empty
// endpoint (a link recorded before endpoints were) means the first.
func (r *Reconciler) backend(endpoint string) ironpool.Backend {
	for _, b := range r.Backends {
		if b.Endpoint() == endpoint {
			return b
		}
	}
	if endpoint == "" && len(r.Backends) > 0 {
		return r.Backends[0]
	}
	return nil
}

// Start runs the loop until Close.
func (r *Reconciler) Start() {
	r.goWork(r.loop)
	r.goWork(r.healthLoop)
}

// goWork runs fn in a goroutine owned by the reconciler, with the loop's
// context, unless Close has begun; it reports whether fn was started.
// Close cancels that context and waits for every such goroutine, so
// nothing the reconciler started writes to the store after Close.
func (r *Reconciler) goWork(fn func(ctx context.Context)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn(r.ctx)
	}()
	return true
}

// Close stops the loop and every worker, and returns when all have ended.
func (r *Reconciler) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	// Hand the background loops over now, not after the lease's TTL:
	// a replica restarted or scaled down leaves the others without a
	// leader for seconds otherwise. Only after every worker has stopped,
	// so the next leader never overlaps this one's work.
	if r.Leader() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Store.ReleaseLease(ctx, leaseName, r.Config.ReplicaID); err != nil {
			r.Log.Warn("lease", "err", err)
		}
		r.mu.Lock()
		r.leader = false
		r.mu.Unlock()
	}
}

// changed tells the service's waiters that background work changed
// something.
func (r *Reconciler) changed() {
	if r.Changed != nil {
		r.Changed()
	}
}

const leaseName = "background"

// loop is the one background loop: on every wake-up or tick, if this
// replica holds the lease, it expires leases, serves the queue and starts
// cleaning and backend work. Releases come first, so the queue sees the
// nodes they free. Slow work (clean commands, backend calls) runs in
// workers, never in the loop: an expiry or a queued request never waits
// for a clean.
func (r *Reconciler) loop(ctx context.Context) {
	leaseTTL := 5 * r.Config.LoopInterval
	if leaseTTL < 3*time.Second {
		leaseTTL = 3 * time.Second
	}
	var renewed time.Time
	for {
		now := r.Now()
		// The leader renews, and a follower asks, every half interval:
		// not on every wake-up, which under load comes every few
		// milliseconds (every change on any replica wakes every loop),
		// and each ask is a write on the one lease row.
		if now.Sub(renewed) >= r.Config.LoopInterval/2 {
			ok, err := r.Store.TryLease(ctx, leaseName, r.Config.ReplicaID, leaseTTL)
			if err != nil && ctx.Err() == nil {
				r.Log.Warn("lease", "err", err)
			}
			r.mu.Lock()
			if ok != r.leader {
				r.Log.Info("background loops", "leader", ok, "replica", r.Config.ReplicaID)
			}
			r.leader = ok
			r.mu.Unlock()
			renewed = now
		}
		sleep := r.Config.LoopInterval
		if r.Leader() {
			if d := r.tick(ctx); d < sleep {
				sleep = d
			}
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
			// Coalesce bursts: under load every request wakes the loop,
			// and one pass per few milliseconds serves them all.
			time.Sleep(5 * time.Millisecond)
		case <-t.C:
		}
		t.Stop()
	}
}

// tick runs the background work once and returns how long it may sleep.
func (r *Reconciler) tick(ctx context.Context) time.Duration {
	changed := r.expire(ctx)
	// Reservations start after expiry (the leases that end before a
	// window free its nodes) and before the queue, which must not take
	// nodes a window starting now was promised.
	if r.startReservations(ctx) {
		changed = true
	}
	if r.startWork(ctx) > 0 {
		changed = true
	}
	if r.cancelAbandoned(ctx) {
		changed = true
	}
	if r.serveQueue(ctx) {
		changed = true
	}
	if changed {
		r.changed()
	}
	r.mu.Lock()
	r.lastPass = r.Now()
	r.mu.Unlock()
	sleep := r.Config.LoopInterval
	if next, err := r.Store.NextExpiry(ctx); err == nil && !next.IsZero() {
		if d := next.Sub(r.Now()) + time.Millisecond; d < sleep {
			sleep = max(d, time.Millisecond)
		}
	}
	return sleep
}

// CleanInline reports whether released local nodes skip the cleaning step
// because there is nothing to run (no clean command, no BMC step, no
// per-allocation account to delete); the service passes it to the store on
// release.
func (c Config) CleanInline() bool {
	return len(c.CleanCommand) == 0 && len(c.ReleasePowerOff) == 0 && len(c.PerAllocationBMC) == 0
}
