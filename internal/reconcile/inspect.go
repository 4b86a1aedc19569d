package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/ironpool/ironpool"
)

// Inspect runs the backend's inspection on a free node and copies what it
// found (CPUs, memory, disk, architecture, MACs) into the pool node. The
// node is kept out of allocation (enrolling) while the backend inspects it,
// and returns to the state it had.
func (r *Reconciler) Inspect(ctx context.Context, name string) (*ironpool.Node, error) {
	_, b, err := r.linkedNode(ctx, name)
	if err != nil {
		return nil, err
	}
	var prev ironpool.NodeState
	n, err := r.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeAvailable && n.State != ironpool.NodeMaintenance && n.State != ironpool.NodeError || n.Pending != ironpool.PendingNone {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
				Message: fmt.Sprintf("node %s is %s; only free nodes can be inspected", n.Name, n.State)}
		}
		prev = n.State
		n.State, n.LastError = ironpool.NodeEnrolling, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.changed()
	info, ierr := b.Inspect(ctx, n.IronicUUID)
	out, err := r.Store.UpdateNode(context.WithoutCancel(ctx), name, func(n *ironpool.Node) error {
		n.State = prev
		if ierr != nil {
			// Only a node the backend failed while inspecting is in
			// error; a refusal (a driver that cannot inspect) or an
			// outage leaves it as it was, with the reason.
			var se *ironpool.BackendStateError
			if errors.As(ierr, &se) {
				n.State = ironpool.NodeError
			}
			n.LastError = "inspect: " + errText(ierr)
			return nil
		}
		refresh(n, info, b.Endpoint())
		return n.Validate("")
	})
	r.changed()
	if ierr != nil {
		return nil, ierr
	}
	return out, err
}
