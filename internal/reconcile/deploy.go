package reconcile

import (
	"context"
	"errors"

	"github.com/ironpool/ironpool"
)

// Deploy (the Compass flow): the service stores the allocation's deploy
// spec and Deploy marks each node PendingDeploy (state deploying); the
// workers write the image and bring each node to active, within the
// backend worker bound. Undeploy is the reverse (PendingUndeploy; the
// nodes stay in the allocation). Because what is owed is on the nodes and
// the spec with the allocation, a deploy survives a restart or a leader
// change and any replica reports its progress.

// Deploy marks every node of active allocation a to be deployed with the
// spec the service stored. A node whose checkout is still under way is
// marked deploying and gets its pending deploy when the checkout finishes.
func (r *Reconciler) Deploy(ctx context.Context, a *ironpool.Allocation, spec ironpool.DeploySpec) error {
	return r.markAllocation(ctx, a, "deploy")
}

// Undeploy marks every node of a to have its deploy torn down.
func (r *Reconciler) Undeploy(ctx context.Context, a *ironpool.Allocation) error {
	return r.markAllocation(ctx, a, "undeploy")
}

// markAllocation records the pending deploy or undeploy on a's nodes.
func (r *Reconciler) markAllocation(ctx context.Context, a *ironpool.Allocation, verb string) error {
	if !r.HasBackend() {
		return errNoBackend
	}
	for _, n := range a.Nodes {
		if r.backendFor(n) == nil {
			return ironpool.Errorf(ironpool.ECONFLICT, "node %s of allocation %s is not in this server's Ironic", n.Name, a.ID)
		}
	}
	id := a.ID
	during, pending := ironpool.NodeDeploying, ironpool.PendingDeploy
	if verb == "undeploy" {
		during, pending = ironpool.NodeDeployed, ironpool.PendingUndeploy
	}
	for _, n := range a.Nodes {
		_, err := r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
			switch {
			case cur.AllocationID != id || !cur.State.Held():
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s left allocation %s", cur.Name, id)
			case verb == "deploy" && cur.State == ironpool.NodeDeploying:
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s is being deployed already", cur.Name)
			case cur.Pending != ironpool.PendingNone && cur.Pending != ironpool.PendingCheckout:
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s is busy (%s)", cur.Name, cur.Pending)
			}
			cur.State, cur.LastError = during, ""
			if cur.Pending == ironpool.PendingNone {
				cur.Pending = pending
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	r.changed()
	r.Wake()
	return nil
}

// afterCheckout is the pending work a node has once its checkout is done:
// a deploy asked for while the checkout ran.
func afterCheckout(n *ironpool.Node) ironpool.Pending {
	if n.State == ironpool.NodeDeploying {
		return ironpool.PendingDeploy
	}
	return ironpool.PendingNone
}

// deploy carries out a node's pending deploy or undeploy once. A backend
// outage keeps it pending (retried); any other failure is recorded on the
// node, whose state then follows the backend's (a failed re-deploy that
// left the node active is deployed).
func (r *Reconciler) deploy(ctx context.Context, n *ironpool.Node) error {
	b := r.backendFor(n)
	if b == nil {
		return nil
	}
	verb, pending := "deploy", n.Pending
	to := ironpool.NodeDeployed
	var err error
	if pending == ironpool.PendingUndeploy {
		verb, to = "undeploy", ironpool.NodeAllocated
		err = b.Undeploy(ctx, n.IronicUUID)
		if err == nil {
			err = r.reserveAgain(ctx, b, n)
		}
	} else {
		var spec ironpool.DeploySpec
		if spec, err = r.Store.DeploySpec(ctx, n.AllocationID); err == nil {
			err = b.Deploy(ctx, n.IronicUUID, spec)
		}
	}
	if err != nil && retryable(err) {
		r.notePending(ctx, n, pending, err)
		return err
	}
	// Read the node either way: after a failure the pool state follows
	// what the backend did.
	info, _ := b.GetNode(ctx, n.IronicUUID)
	_, uerr := r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		if cur.Pending != pending || cur.AllocationID != n.AllocationID {
			return errUnchanged // released meanwhile: cleaning owns it
		}
		cur.Pending = ironpool.PendingNone
		if info.ID != "" {
			cur.ProvisionState, cur.PowerState = info.ProvisionState, info.PowerState
		}
		if err == nil {
			cur.State, cur.LastError = to, ""
			return nil
		}
		cur.LastError = verb + ": " + errText(err)
		switch {
		case info.ProvisionState == "active":
			cur.State = ironpool.NodeDeployed
		case verb == "deploy":
			cur.State = ironpool.NodeAllocated
		}
		return nil
	})
	if err != nil {
		r.Log.Warn(verb+" failed", "node", n.Name, "allocation", n.AllocationID, "err", err)
	}
	if uerr != nil && !errors.Is(uerr, errUnchanged) {
		return uerr
	}
	return nil
}

// reserveAgain restores the reservation of a node that stays in a
// reserving allocation after an undeploy: Ironic drops a node's allocation
// when it tears the node down.
func (r *Reconciler) reserveAgain(ctx context.Context, b ironpool.Backend, n *ironpool.Node) error {
	a, err := r.Store.FindAllocation(ctx, n.AllocationID)
	if err != nil {
		return err
	}
	if a.Mode != ironpool.ModeLessee && a.Mode != ironpool.ModeHandoff {
		return nil
	}
	return b.Reserve(ctx, n.IronicUUID, reservationName(n), map[string]string{
		"managed_by": ironpool.ManagedBy, "ironpool_allocation": a.ID, "ironpool_owner": a.Owner})
}
