package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/ironpool/ironpool"
)

// Checkout: a node allocated in mode handoff or lessee owes PendingCheckout
// until the backend shows the hand-over: a reservation other consumers of a
// shared Ironic respect (an Ironic allocation for exactly that node), then
// handoff: maintenance on, with a reason naming owner and allocation;
// lessee: the lessee set. Mode none is bookkeeping only and touches
// nothing in the backend.

// Reasons and prefixes written to the backend and to pool nodes. The
// prefixes let release and sync tell ironpool's own marks from an
// operator's.
const (
	handoffPrefix = "ironpool handoff"
	ironicPrefix  = "ironic: "
)

// handoffReason is the maintenance reason a handoff checkout writes: it
// names owner and allocation so that whoever finds the node in the backend
// knows who has it and why.
func handoffReason(owner, allocID string) string {
	return fmt.Sprintf("%s: owner %s, allocation %s", handoffPrefix, owner, allocID)
}

// reservationName names the backend reservation ironpool keeps for a pool
// node while it is handed out. One node is in one allocation at a time, so
// the pool node's UUID is enough, and release can find it after the node
// has left its allocation.
func reservationName(n *ironpool.Node) string { return "ironpool-" + n.UUID }

// checkout hands a freshly allocated node over in the backend as the
// allocation's mode says.
func (r *Reconciler) checkout(ctx context.Context, n *ironpool.Node) error {
	b := r.backendFor(n)
	if b == nil {
		return nil
	}
	allocID, owner := n.AllocationID, n.Owner
	a, err := r.Store.FindAllocation(ctx, allocID)
	if err != nil {
		return err
	}
	// The reservation comes first: Ironic only allocates a node that is
	// available and not in maintenance, which a handoff is about to change.
	if a.Mode == ironpool.ModeHandoff || a.Mode == ironpool.ModeLessee {
		err = b.Reserve(ctx, n.IronicUUID, reservationName(n), map[string]string{
			"managed_by": ironpool.ManagedBy, "ironpool_allocation": allocID, "ironpool_owner": owner})
	}
	if err == nil {
		switch a.Mode {
		case ironpool.ModeHandoff:
			err = b.SetMaintenance(ctx, n.IronicUUID, handoffReason(owner, allocID))
		case ironpool.ModeLessee:
			err = b.SetLessee(ctx, n.IronicUUID, owner)
		}
	}
	if err != nil {
		r.notePending(ctx, n, ironpool.PendingCheckout, err)
		return err
	}
	_, err = r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		// A release may have overtaken the checkout; then the clean step
		// owns the node and undoes what was just done.
		if cur.Pending != ironpool.PendingCheckout || cur.AllocationID != allocID {
			return errUnchanged
		}
		cur.Pending, cur.LastError = afterCheckout(cur), ""
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}
