package reconcile

import (
	"context"
	"sync"
	"time"

	"ironpool"
)

// Deploy (the Compass flow) writes an image to every node of an active
// allocation and moves them to active in the backend, at most
// DeployParallel at a time. It returns once the nodes are in state
// deploying; each becomes deployed, or goes back to allocated with the
// backend's last_error. The service has checked owner, state and mode.
func (r *Reconciler) Deploy(ctx context.Context, a *ironpool.Allocation, spec ironpool.DeploySpec) error {
	return r.driveAllocation(ctx, a, "deploy", func(ctx context.Context, b ironpool.Backend, n *ironpool.Node) error {
		return b.Deploy(ctx, n.IronicUUID, spec)
	})
}

// Undeploy tears down what Deploy put on an allocation's nodes (the
// backend undeploys and cleans them); the nodes stay in the allocation,
// back in state allocated.
func (r *Reconciler) Undeploy(ctx context.Context, a *ironpool.Allocation) error {
	return r.driveAllocation(ctx, a, "undeploy", func(ctx context.Context, b ironpool.Backend, n *ironpool.Node) error {
		return b.Undeploy(ctx, n.IronicUUID)
	})
}

// driveAllocation runs op on every node of a in workers owned by the
// reconciler, with bounded parallelism, recording each node's progress in
// its state (deploying → deployed, or deployed → allocated) and failures in
// last_error, which is what `deploy --wait` shows as it polls.
func (r *Reconciler) driveAllocation(ctx context.Context, a *ironpool.Allocation, verb string, op func(context.Context, ironpool.Backend, *ironpool.Node) error) error {
	if !r.HasBackend() {
		return errNoBackend
	}
	for _, n := range a.Nodes {
		if r.backendFor(n) == nil {
			return ironpool.Errorf(ironpool.ECONFLICT, "node %s of allocation %s is not in this server's Ironic", n.Name, a.ID)
		}
	}
	id := a.ID
	during, to := ironpool.NodeDeploying, ironpool.NodeDeployed
	if verb == "undeploy" {
		during, to = ironpool.NodeDeployed, ironpool.NodeAllocated
	}
	for _, n := range a.Nodes {
		_, err := r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
			if cur.AllocationID != id || !cur.State.Held() {
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s left allocation %s", cur.Name, id)
			}
			if verb == "deploy" && cur.State == ironpool.NodeDeploying {
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s is being deployed already", cur.Name)
			}
			cur.State, cur.LastError = during, ""
			return nil
		})
		if err != nil {
			return err
		}
	}
	r.changed()
	nodes := a.Nodes
	// Ironic deletes a node's allocation when it tears the node down; a
	// node that stays in a reserving allocation gets its reservation back.
	reserve := verb == "undeploy" && (a.Mode == ironpool.ModeLessee || a.Mode == ironpool.ModeHandoff)
	if reserve {
		inner := op
		op = func(ctx context.Context, b ironpool.Backend, n *ironpool.Node) error {
			if err := inner(ctx, b, n); err != nil {
				return err
			}
			return b.Reserve(ctx, n.IronicUUID, reservationName(n), map[string]string{
				"managed_by": ironpool.ManagedBy, "ironpool_allocation": id, "ironpool_owner": a.Owner})
		}
	}
	started := r.goWork(func(ctx context.Context) {
		sem := make(chan struct{}, r.Config.Backend.DeployParallel)
		var wg sync.WaitGroup
		for _, n := range nodes {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				r.deployOne(ctx, n, id, verb, during, to, op)
			})
		}
		wg.Wait()
	})
	if !started {
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "the server is shutting down")
	}
	return nil
}

// deployOne runs op on one node of allocation id and records the outcome.
func (r *Reconciler) deployOne(ctx context.Context, n *ironpool.Node, id, verb string, during, to ironpool.NodeState, op func(context.Context, ironpool.Backend, *ironpool.Node) error) {
	r.awaitSettled(ctx, n)
	if ctx.Err() != nil {
		return
	}
	b := r.backendFor(n)
	if b == nil {
		return // checked when the deploy started; the link changed since
	}
	err := op(ctx, b, n)
	// Read the node either way: after a failure the pool state follows
	// what the backend did (a failed re-deploy can leave it active).
	info, _ := b.GetNode(ctx, n.IronicUUID)
	if ctx.Err() != nil {
		return // shutting down: the node's state says where it stands
	}
	_, uerr := r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		if cur.AllocationID != id || cur.State != during {
			return errUnchanged // released meanwhile: cleaning owns it
		}
		if err != nil {
			cur.LastError = verb + ": " + errText(err)
			switch {
			case info.ProvisionState == "active":
				cur.State = ironpool.NodeDeployed
			case verb == "deploy":
				cur.State = ironpool.NodeAllocated
			}
			if info.ID != "" {
				cur.ProvisionState, cur.PowerState = info.ProvisionState, info.PowerState
			}
			return nil
		}
		cur.State, cur.LastError = to, ""
		if info.ID != "" {
			cur.ProvisionState, cur.PowerState = info.ProvisionState, info.PowerState
		}
		return nil
	})
	if uerr != nil && uerr != errUnchanged {
		r.Log.Warn(verb, "node", n.Name, "err", uerr)
	}
	if err != nil {
		r.Log.Warn(verb+" failed", "node", n.Name, "allocation", id, "err", err)
	}
	r.changed()
	if r.Broadcast != nil {
		r.Broadcast()
	}
}

// awaitSettled waits (bounded) until the reconciler has finished n's
// checkout, so a deploy does not race the lessee being set.
func (r *Reconciler) awaitSettled(ctx context.Context, n *ironpool.Node) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		cur, err := r.Store.FindNode(ctx, n.UUID)
		if err != nil || cur.Pending == ironpool.PendingNone && !r.inflight(cur.ID) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
