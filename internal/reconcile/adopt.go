package reconcile

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/ironpool/ironpool"
)

// Manageable lists the backend nodes ironpool could adopt: active, with no
// instance, with a resource class, and not in the pool already.
func (r *Reconciler) Manageable(ctx context.Context) ([]*ironpool.Node, error) {
	if !r.HasBackend() {
		return nil, errNoBackend
	}
	inPool, err := r.backendIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := []*ironpool.Node{}
	for _, b := range r.Backends {
		infos, err := b.ManageableNodes(ctx)
		if err != nil {
			return nil, err
		}
		for _, info := range infos {
			if inPool[strings.ToLower(info.ID)] {
				continue
			}
			n := poolNode(info, b.Endpoint())
			n.State, n.MaintenanceReason = ironpool.NodeDeployed, info.MaintenanceReason
			out = append(out, n)
		}
	}
	return out, nil
}

// backendIDs is the set of backend ids the pool's nodes are linked to.
func (r *Reconciler) backendIDs(ctx context.Context) (map[string]bool, error) {
	nodes, err := r.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n.IronicUUID != "" {
			m[strings.ToLower(n.IronicUUID)] = true
		}
	}
	return m, nil
}

// Adopt (the Mogan flow) adds a backend node that already runs a workload
// to the pool, held by the owner inside a new allocation, with no selection
// step. An active node without an instance is taken as it is; a manageable
// node deployed outside the backend goes through the backend's own adopt
// verb first. The node, its allocation and the node.adopted event are
// written in one transaction. When the allocation ends the node is
// undeployed and cleaned like any other. The service has validated req.
func (r *Reconciler) Adopt(ctx context.Context, req ironpool.AdoptRequest) (*ironpool.Allocation, error) {
	if !r.HasBackend() {
		return nil, errNoBackend
	}
	inPool, err := r.backendIDs(ctx)
	if err != nil {
		return nil, err
	}
	if inPool[strings.ToLower(req.IronicUUID)] {
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s is in the pool already", req.IronicUUID)
	}
	b, info, err := r.findBackendNode(ctx, req.IronicUUID)
	if err != nil {
		return nil, err
	}
	if info.ProvisionState == "manageable" && info.TargetProvisionState == "" {
		if err := b.Adopt(ctx, info.ID); err != nil {
			return nil, err
		}
		if info, err = b.GetNode(ctx, info.ID); err != nil {
			return nil, err
		}
	}
	switch {
	case info.ProvisionState != "active":
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s is %q; only active or manageable nodes can be adopted", info.ID, info.ProvisionState)
	case info.InstanceUUID != "":
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s has instance %s: it belongs to someone", info.ID, info.InstanceUUID)
	case info.ResourceClass == "":
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s has no resource class", info.ID)
	}
	n := poolNode(info, b.Endpoint())
	if req.Name != "" {
		n.Name = req.Name
	}
	n.State, n.MaintenanceReason, n.LastError = ironpool.NodeEnrolling, "", ""
	if err := n.Validate(""); err != nil {
		return nil, err
	}
	now := r.Now().UTC()
	a := &ironpool.Allocation{Owner: req.Owner, Mode: ironpool.ModeNone,
		Metadata:  map[string]string{"adopted_ironic_uuid": info.ID},
		Items:     []ironpool.AllocationItem{{Constraints: ironpool.Constraints{ResourceClass: info.ResourceClass}}},
		CreatedAt: now, ExpiresAt: now.Add(req.TTL), TTL: req.TTL}
	a.ID = uuid.NewString()
	summary := fmt.Sprintf("adopted Ironic node %s for %s in allocation %s", info.ID, req.Owner, a.ID)
	if err := r.Store.AdoptNode(ctx, n, a, ironpool.NodeDeployed, summary); err != nil {
		return nil, err
	}
	r.changed()
	return a, nil
}

// findBackendNode looks a node up in every connected backend, in order.
func (r *Reconciler) findBackendNode(ctx context.Context, id string) (ironpool.Backend, ironpool.BackendNode, error) {
	var last error
	for _, b := range r.Backends {
		info, err := b.GetNode(ctx, id)
		if err == nil {
			return b, info, nil
		}
		last = err
		if ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
			return nil, info, err
		}
	}
	return nil, ironpool.BackendNode{}, last
}
