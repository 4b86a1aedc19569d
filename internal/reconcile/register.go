package reconcile

import (
	"context"
	"errors"
	"strings"

	"github.com/ironpool/ironpool"
)

// Registration: the service marks a pool node PendingRegister (state
// enrolling, so it cannot be allocated meanwhile); register enrolls it into
// the backend (driver from its BMC URL, ports from its MACs) and drives it
// to available. The backend id is recorded as soon as it exists, so a
// retry after a failure continues with the same backend node instead of
// creating a second one.
func (r *Reconciler) register(ctx context.Context, n *ironpool.Node) error {
	b := r.backend(n.IronicEndpoint)
	if b == nil {
		return nil // another server's Ironic: its reconciler enrolls it
	}
	id, err := b.Register(ctx, n)
	var info ironpool.BackendNode
	if err == nil {
		info, err = b.GetNode(ctx, id)
	}
	if err != nil && retryable(err) {
		if id != "" {
			_, _ = r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
				cur.IronicUUID, cur.IronicEndpoint, cur.ManagedBy = id, b.Endpoint(), ironpool.ManagedBy
				return nil
			})
		}
		r.notePending(ctx, n, ironpool.PendingRegister, err)
		return err
	}
	_, uerr := r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		if cur.Pending != ironpool.PendingRegister {
			return errUnchanged
		}
		cur.Pending = ironpool.PendingNone
		switch {
		case err == nil:
			refresh(cur, info, b.Endpoint())
			cur.IronicUUID, cur.ManagedBy = id, ironpool.ManagedBy
			cur.State, cur.LastError = ironpool.NodeAvailable, ""
		case id != "":
			cur.IronicUUID, cur.IronicEndpoint, cur.ManagedBy = id, b.Endpoint(), ironpool.ManagedBy
			cur.State, cur.LastError = ironpool.NodeError, "register: "+errText(err)
		default:
			// Nothing was created in the backend: the node stays local.
			cur.State, cur.LastError = ironpool.NodeAvailable, "register: "+errText(err)
		}
		return nil
	})
	if uerr != nil && !errors.Is(uerr, errUnchanged) {
		return uerr
	}
	return nil
}

// Unregister deletes a node from the backend and makes it a local node
// again. The service has checked that the node is free.
func (r *Reconciler) Unregister(ctx context.Context, name string) (*ironpool.Node, error) {
	n, b, err := r.linkedNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := b.Unregister(ctx, n.IronicUUID); err != nil {
		return nil, err
	}
	out, err := r.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		n.IronicUUID, n.IronicEndpoint, n.ProvisionState, n.PowerState = "", "", "", ""
		if n.ManagedBy == ironpool.ManagedBy {
			n.ManagedBy = ""
		}
		if n.State != ironpool.NodeMaintenance || strings.HasPrefix(n.MaintenanceReason, ironicPrefix) {
			n.State, n.MaintenanceReason, n.LastError = ironpool.NodeAvailable, "", ""
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.changed()
	return out, nil
}
