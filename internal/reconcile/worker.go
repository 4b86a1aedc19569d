package pool

import (
	"context"
	"errors"
	"strings"
	"time"

	"ironpool"
	"ironpool/internal/ironic"
)

// The reconciler carries out the Ironic side effects that allocation,
// release and registration owe, after their transactions commit. The pool
// database is the source of truth: a node's pending column says what Ironic
// still has to be told, and the reconciler works until it is told, retrying
// with backoff while Ironic is down and recording the last failure on the
// node, so that nothing is lost when Ironic (or ironpool) restarts and an
// operator can see why a node is not back yet.

// Pending side effects.
const (
	pendingCheckout = "checkout" // handoff: maintenance on; lessee: lessee set
	pendingClean    = "clean"    // undo the checkout, manage, provide (Ironic cleans)
	pendingRegister = "register" // enroll the pool node into Ironic
)

// scanEvery limits how often the reconciler reads the pending nodes: the
// loop wakes on every allocation, and a full scan per wake-up would tax a
// busy pool for nothing.
const scanEvery = 200 * time.Millisecond

// reconcile starts work for nodes with a pending side effect (at most
// IronicConfig.Workers at a time, each node once, after its backoff) and
// the periodic sync when it is due. It never waits for Ironic: the loop
// also serves expiries and the queue. It returns how many nodes finished a
// step since the last call, so the loop can wake waiters.
func (s *Service) reconcile(ctx context.Context) int {
	if s.Backend == nil {
		return 0
	}
	cfg := s.Ironic.withDefaults()
	st := &s.ironic
	now := s.Now()
	st.mu.Lock()
	if st.inflight == nil {
		st.inflight, st.retry = map[int64]bool{}, map[int64]retryState{}
		st.sem = make(chan struct{}, cfg.Workers)
	}
	done := st.finished
	st.finished = 0
	startSync := cfg.SyncInterval > 0 && !st.syncing && now.Sub(st.lastSync) >= cfg.SyncInterval
	if startSync {
		st.syncing = true
	}
	scan := now.Sub(st.lastScan) >= scanEvery
	if scan {
		st.lastScan = now
	}
	st.mu.Unlock()
	if startSync {
		go s.periodicSync(ctx)
	}
	if !scan {
		return done
	}
	for _, state := range []ironpool.NodeState{ironpool.NodeAllocated, ironpool.NodeCleaning, ironpool.NodeEnrolling} {
		nodes, err := s.Store.FindNodes(ctx, ironpool.NodeFilter{State: state})
		if err != nil {
			if ctx.Err() == nil {
				s.Log.Warn("reconciler", "err", err)
			}
			return done
		}
		for _, n := range nodes {
			if n.Pending != "" {
				s.dispatch(ctx, n)
			}
		}
	}
	return done
}

// periodicSync runs one sync for the loop. A failure is logged once per
// attempt and the next attempt waits a full interval, so a down Ironic is
// not hammered by list requests.
func (s *Service) periodicSync(ctx context.Context) {
	res, err := s.SyncIronic(ctx)
	st := &s.ironic
	st.mu.Lock()
	st.syncing = false
	if err != nil {
		st.lastSync = s.Now()
	}
	st.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		s.Log.Warn("ironic sync", "err", err)
	case err == nil && (len(res.Imported) > 0 || len(res.Updated) > 0 || len(res.Missing) > 0):
		s.Log.Info("ironic sync", "imported", len(res.Imported), "updated", len(res.Updated), "missing", len(res.Missing))
	}
}

// dispatch starts a worker for n unless one runs already, its backoff has
// not passed, or every worker is busy (the next scan tries again).
func (s *Service) dispatch(ctx context.Context, n *ironpool.Node) {
	st := &s.ironic
	st.mu.Lock()
	if st.inflight[n.ID] || s.Now().Before(st.retry[n.ID].next) {
		st.mu.Unlock()
		return
	}
	select {
	case st.sem <- struct{}{}:
	default:
		st.mu.Unlock()
		return
	}
	st.inflight[n.ID] = true
	st.mu.Unlock()
	go func() {
		err := s.drive(ctx, n)
		st.mu.Lock()
		delete(st.inflight, n.ID)
		<-st.sem
		r := st.retry[n.ID]
		if err != nil && ctx.Err() == nil {
			r.fails++
			r.interrupted = ironpool.ErrorCode(err) == ironpool.EUNAVAILABLE
			d := s.Ironic.withDefaults().RetryBase << min(r.fails-1, 10)
			r.next = s.Now().Add(min(d, s.Ironic.withDefaults().RetryMax))
			st.retry[n.ID] = r
		} else {
			delete(st.retry, n.ID)
		}
		st.finished++
		st.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.Log.Info("ironic side effect failed; will retry", "node", n.Name, "pending", n.Pending, "attempt", r.fails, "err", err)
		}
		if ctx.Err() == nil {
			s.notify()
		}
	}()
}

// drive performs n's pending side effect once. It returns an error only
// when the step should be retried; failures that are final are recorded on
// the node instead.
func (s *Service) drive(ctx context.Context, snapshot *ironpool.Node) error {
	n, err := s.Store.FindNode(ctx, snapshot.UUID)
	if err != nil {
		return nil // deleted meanwhile: nothing is owed
	}
	switch n.Pending {
	case pendingCheckout:
		return s.driveCheckout(ctx, n)
	case pendingClean:
		return s.driveClean(ctx, n)
	case pendingRegister:
		return s.driveRegister(ctx, n)
	}
	return nil
}

// notePending records why a pending step failed, if the node still owes it.
func (s *Service) notePending(ctx context.Context, n *ironpool.Node, pending string, err error) {
	msg := errText(err)
	_, uerr := s.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		if cur.Pending != pending || cur.LastError == msg {
			return errUnchanged
		}
		cur.LastError = msg
		return nil
	})
	if uerr != nil && !errors.Is(uerr, errUnchanged) && ctx.Err() == nil {
		s.Log.Warn("reconciler: record error", "node", n.Name, "err", uerr)
	}
}

// driveCheckout hands a freshly allocated node over in Ironic as the
// allocation's mode says.
func (s *Service) driveCheckout(ctx context.Context, n *ironpool.Node) error {
	b := s.backendFor(n)
	if b == nil {
		return nil
	}
	allocID, owner := n.AllocationID, n.Owner
	a, err := s.Store.FindAllocation(ctx, allocID)
	if err != nil {
		return err
	}
	switch a.Mode {
	case ironpool.ModeHandoff:
		err = b.SetMaintenance(ctx, n.IronicUUID, handoffReason(owner, allocID))
	case ironpool.ModeLessee:
		err = b.SetLessee(ctx, n.IronicUUID, owner)
	}
	if err != nil {
		s.notePending(ctx, n, pendingCheckout, err)
		return err
	}
	_, err = s.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		// A release may have overtaken the checkout; then the clean step
		// owns the node and undoes what was just done.
		if cur.Pending != pendingCheckout || cur.AllocationID != allocID {
			return errUnchanged
		}
		cur.Pending, cur.LastError = "", ""
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// driveClean returns a released node to Ironic's pool: it clears the
// maintenance and lessee a checkout set, undeploys a node the owner
// deployed, then manage → provide, so Ironic runs its cleaning; the pool
// node is available only when Ironic reports it available. A failed clean
// leaves the node in error with Ironic's last_error.
func (s *Service) driveClean(ctx context.Context, n *ironpool.Node) error {
	b := s.backendFor(n)
	if b == nil {
		return nil
	}
	fail := func(err error) error {
		if retryable(err) {
			s.notePending(ctx, n, pendingClean, err)
			return err
		}
		var se *ironic.StateError
		if errors.As(err, &se) && s.wasInterrupted(n.ID) {
			// Ironic failed the step because it was stopped under it;
			// try the whole step again rather than blame the node.
			s.notePending(ctx, n, pendingClean, err)
			return err
		}
		return s.finishClean(ctx, b, n, errText(err))
	}
	info, err := b.GetNode(ctx, n.IronicUUID)
	if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
		return s.finishClean(ctx, b, n, "ironic: node "+n.IronicUUID+" is no longer in Ironic")
	} else if err != nil {
		return fail(err)
	}
	if info.Maintenance {
		if info.MaintenanceReason != "" && !strings.HasPrefix(info.MaintenanceReason, handoffPrefix) {
			// Someone else put it in maintenance (the lab, an operator):
			// that is not ours to undo.
			return s.finishClean(ctx, b, n, "ironic: in maintenance: "+info.MaintenanceReason)
		}
		if err := b.ClearMaintenance(ctx, n.IronicUUID); err != nil {
			return fail(err)
		}
	}
	if info.Lessee != "" {
		if err := b.SetLessee(ctx, n.IronicUUID, ""); err != nil {
			return fail(err)
		}
	}
	if t := info.TargetProvisionState; t != "" {
		// A step is under way (ours, interrupted, or Ironic's own): let it
		// finish before asking for the next one.
		if info, err = b.WaitForProvisionState(ctx, n.IronicUUID, t, 0); err != nil && retryable(err) {
			return fail(err)
		}
		if info, err = b.GetNode(ctx, n.IronicUUID); err != nil {
			return fail(err)
		}
	}
	switch info.ProvisionState {
	case "active", "deploy failed":
		err = b.Undeploy(ctx, n.IronicUUID)
	case "available":
		if err = b.Manage(ctx, n.IronicUUID); err == nil {
			err = b.Provide(ctx, n.IronicUUID)
		}
	case "clean failed":
		if !s.wasInterrupted(n.ID) {
			// Failed without an interruption of ours: Ironic's verdict.
			return s.finishClean(ctx, b, n, ironicPrefix+info.LastError)
		}
		fallthrough
	case "enroll", "manageable", "inspect failed":
		if err = b.Manage(ctx, n.IronicUUID); err == nil {
			err = b.Provide(ctx, n.IronicUUID)
		}
	default:
		err = &ironic.StateError{Node: n.IronicUUID, State: info.ProvisionState, Want: "available", LastError: info.LastError}
	}
	if err != nil {
		return fail(err)
	}
	return s.finishClean(ctx, b, n, "")
}

// wasInterrupted reports whether the node's previous attempt ended because
// Ironic could not be reached.
func (s *Service) wasInterrupted(id int64) bool {
	s.ironic.mu.Lock()
	defer s.ironic.mu.Unlock()
	return s.ironic.retry[id].interrupted
}

// finishClean records Ironic's view of the node and ends its cleaning:
// available when msg is empty, error with msg otherwise.
func (s *Service) finishClean(ctx context.Context, b Backend, n *ironpool.Node, msg string) error {
	if info, err := b.GetNode(ctx, n.IronicUUID); err == nil {
		_, _ = s.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
			if cur.Pending != pendingClean {
				return errUnchanged
			}
			cur.ProvisionState, cur.PowerState = info.ProvisionState, info.PowerState
			return nil
		})
	}
	if err := s.Store.FinishCleaning(ctx, n.ID, msg); err != nil {
		return err
	}
	if msg != "" {
		s.Log.Warn("ironic cleaning failed", "node", n.Name, "err", msg)
	}
	return nil
}

// driveRegister enrolls a pool node into Ironic (driver from its BMC URL,
// ports from its MACs) and drives it to available. The Ironic UUID is
// recorded as soon as it exists, so a retry after a failure continues with
// the same Ironic node instead of creating a second one.
func (s *Service) driveRegister(ctx context.Context, n *ironpool.Node) error {
	b := s.Backend
	if n.IronicEndpoint != "" && n.IronicEndpoint != b.Endpoint() {
		return nil
	}
	uuid, err := b.Register(ctx, n)
	var info ironic.NodeInfo
	if err == nil {
		info, err = b.GetNode(ctx, uuid)
	}
	if err != nil && retryable(err) {
		if uuid != "" {
			_, _ = s.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
				cur.IronicUUID, cur.IronicEndpoint, cur.ManagedBy = uuid, b.Endpoint(), ironic.ManagedBy
				return nil
			})
		}
		s.notePending(ctx, n, pendingRegister, err)
		return err
	}
	_, uerr := s.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		if cur.Pending != pendingRegister {
			return errUnchanged
		}
		cur.Pending = ""
		switch {
		case err == nil:
			refresh(cur, info, b.Endpoint())
			cur.IronicUUID, cur.ManagedBy = uuid, ironic.ManagedBy
			cur.State, cur.LastError = ironpool.NodeAvailable, ""
		case uuid != "":
			cur.IronicUUID, cur.IronicEndpoint, cur.ManagedBy = uuid, b.Endpoint(), ironic.ManagedBy
			cur.State, cur.LastError = ironpool.NodeError, "register: "+errText(err)
		default:
			// Nothing was created in Ironic: the node stays a local one.
			cur.State, cur.LastError = ironpool.NodeAvailable, "register: "+errText(err)
		}
		return nil
	})
	if uerr != nil && !errors.Is(uerr, errUnchanged) {
		return uerr
	}
	return nil
}
