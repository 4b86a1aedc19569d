package reconcile

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// The pool database is the source of truth: a node's Pending says what is
// still owed for it (a clean command to run, a checkout or clean in the
// backend, a registration), and the reconciler works until it is done,
// retrying with backoff while a backend is down and recording the last
// failure on the node, so that nothing is lost when the backend (or
// ironpool) restarts and an operator can see why a node is not back yet.

// scanEvery limits how often the reconciler reads the pending nodes: the
// loop wakes on every allocation, and a full scan per wake-up would tax a
// busy pool for nothing.
const scanEvery = 200 * time.Millisecond

// workers is the reconciler's memory of work in flight. It is deliberately
// in-memory only: what must survive a restart (which nodes owe which side
// effect) is the node's Pending, and the retry schedule may start over.
type workers struct {
	inflight map[int64]bool
	retry    map[int64]retryState
	// backend bounds backend calls in flight, clean bounds clean commands:
	// a slow Ironic never holds up local cleaning, nor the reverse.
	backend, clean chan struct{}
	finished       int
	syncing        bool
	lastSync       time.Time
	lastScan       time.Time
}

type retryState struct {
	fails int
	next  time.Time
	// interrupted is set when an attempt ended because the backend went
	// away; a failure state found afterwards is then the backend's reaction
	// to the interruption (a conductor restart fails in-flight cleaning),
	// not a verdict on the hardware, and is retried.
	interrupted bool
}

// errUnchanged aborts an UpdateNode that has nothing to write.
var errUnchanged = errors.New("unchanged")

// startWork starts workers for nodes with pending work (each node once,
// after its backoff, within the worker bounds) and the periodic sync when
// it is due. It never waits for a worker. It returns how many nodes
// finished a step since the last call, so the loop can wake waiters.
func (r *Reconciler) startWork(ctx context.Context) int {
	now := r.Now()
	r.mu.Lock()
	w := &r.work
	if w.inflight == nil {
		w.inflight, w.retry = map[int64]bool{}, map[int64]retryState{}
		w.backend = make(chan struct{}, r.Config.Backend.Workers)
		w.clean = make(chan struct{}, r.Config.CleanWorkers)
	}
	done := w.finished
	w.finished = 0
	startSync := r.HasBackend() && r.Config.Backend.SyncInterval > 0 && !w.syncing && now.Sub(w.lastSync) >= r.Config.Backend.SyncInterval
	if startSync {
		w.syncing = true
	}
	scan := now.Sub(w.lastScan) >= scanEvery
	if scan {
		w.lastScan = now
	}
	r.mu.Unlock()
	if startSync {
		r.goWork(r.periodicSync)
	}
	if !scan {
		return done
	}
	states := []ironpool.NodeState{ironpool.NodeCleaning}
	if r.HasBackend() {
		states = append(states, ironpool.NodeAllocated, ironpool.NodeEnrolling, ironpool.NodeDeploying, ironpool.NodeDeployed)
	}
	for _, state := range states {
		nodes, err := r.Store.FindNodes(ctx, ironpool.NodeFilter{State: state})
		if err != nil {
			if ctx.Err() == nil {
				r.Log.Warn("reconciler", "err", err)
			}
			return done
		}
		for _, n := range nodes {
			if n.Pending != ironpool.PendingNone {
				r.dispatch(n)
			}
		}
	}
	return done
}

// dispatch starts a worker for n unless one runs already, its backoff has
// not passed, the work needs a backend this server does not have, or every
// worker of its kind is busy (the next scan tries again).
func (r *Reconciler) dispatch(n *ironpool.Node) {
	local := n.IronicUUID == "" && n.Pending == ironpool.PendingClean
	if !local && r.backend(n.IronicEndpoint) == nil {
		return // a backend this server does not reach
	}
	r.mu.Lock()
	w := &r.work
	if w.inflight[n.ID] || r.Now().Before(w.retry[n.ID].next) {
		r.mu.Unlock()
		return
	}
	sem := w.backend
	if local {
		sem = w.clean
	}
	select {
	case sem <- struct{}{}:
	default:
		r.mu.Unlock()
		return
	}
	w.inflight[n.ID] = true
	r.mu.Unlock()
	started := r.goWork(func(ctx context.Context) {
		err := r.drive(ctx, n)
		r.finish(ctx, n, sem, err)
	})
	if !started {
		r.mu.Lock()
		delete(w.inflight, n.ID)
		<-sem
		r.mu.Unlock()
	}
}

// finish records the outcome of one attempt on n: the backoff after a
// failure, or a clean slate.
func (r *Reconciler) finish(ctx context.Context, n *ironpool.Node, sem chan struct{}, err error) {
	cfg := r.Config.Backend
	r.mu.Lock()
	w := &r.work
	delete(w.inflight, n.ID)
	<-sem
	rs := w.retry[n.ID]
	if err != nil && ctx.Err() == nil {
		rs.fails++
		rs.interrupted = ironpool.ErrorCode(err) == ironpool.EUNAVAILABLE
		d := cfg.RetryBase << min(rs.fails-1, 10)
		rs.next = r.Now().Add(min(d, cfg.RetryMax))
		w.retry[n.ID] = rs
	} else {
		delete(w.retry, n.ID)
	}
	w.finished++
	r.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		r.Metrics.ReconcilerRetry(n.Pending)
		r.Log.Info("side effect failed; will retry", "node", n.Name, "pending", n.Pending, "attempt", rs.fails, "err", err)
	}
	if ctx.Err() == nil {
		r.changed()
		if r.Broadcast != nil {
			r.Broadcast()
		}
		r.Wake()
	}
}

// drive performs n's pending work once. It returns an error only when the
// step should be retried; failures that are final are recorded on the node
// instead.
func (r *Reconciler) drive(ctx context.Context, snapshot *ironpool.Node) error {
	n, err := r.Store.FindNode(ctx, snapshot.UUID)
	if err != nil {
		return nil // deleted meanwhile: nothing is owed
	}
	switch n.Pending {
	case ironpool.PendingCheckout:
		return r.checkout(ctx, n)
	case ironpool.PendingClean:
		if n.IronicUUID == "" {
			return r.cleanLocal(ctx, n)
		}
		return r.cleanBackend(ctx, n)
	case ironpool.PendingRegister:
		return r.register(ctx, n)
	case ironpool.PendingDeploy, ironpool.PendingUndeploy:
		return r.deploy(ctx, n)
	}
	return nil
}

// retryingPrefix marks a last_error written because the backend could not
// be reached: it persists "the last attempt was interrupted", which a
// restart or a new leader needs to tell Ironic's reaction to the outage
// (a clean failed under a conductor restart) from a verdict on the node.
const retryingPrefix = "retrying: "

// notePending records why a pending step failed, if the node still owes it.
func (r *Reconciler) notePending(ctx context.Context, n *ironpool.Node, pending ironpool.Pending, err error) {
	msg := errText(err)
	if ironpool.ErrorCode(err) == ironpool.EUNAVAILABLE {
		msg = retryingPrefix + msg
	}
	_, uerr := r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		if cur.Pending != pending || cur.LastError == msg {
			return errUnchanged
		}
		cur.LastError = msg
		return nil
	})
	if uerr != nil && !errors.Is(uerr, errUnchanged) && ctx.Err() == nil {
		r.Log.Warn("reconciler: record error", "node", n.Name, "err", uerr)
	}
}

// wasInterrupted reports whether the node's previous attempt ended because
// the backend could not be reached: remembered here, and on the node
// itself (its last_error), so that it survives a restart.
func (r *Reconciler) wasInterrupted(n *ironpool.Node) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.work.retry[n.ID].interrupted || strings.HasPrefix(n.LastError, retryingPrefix)
}
