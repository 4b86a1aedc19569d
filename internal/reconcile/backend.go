package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ironpool/ironpool"
)

// backendFor returns the backend that holds n, or nil when n is not linked
// to a backend or is linked to one this server is not connected to. The
// endpoint is a property of the node link so that several backends can
// stand behind one pool without reinterpreting existing rows.
func (r *Reconciler) backendFor(n *ironpool.Node) ironpool.Backend {
	if n.IronicUUID == "" {
		return nil
	}
	return r.backend(n.IronicEndpoint)
}

// linkedNode loads a node and its backend for a workflow that needs one.
func (r *Reconciler) linkedNode(ctx context.Context, name string) (*ironpool.Node, ironpool.Backend, error) {
	n, err := r.Store.FindNode(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	b := r.backendFor(n)
	if b == nil {
		if n.IronicUUID == "" {
			return n, nil, (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
				Message: fmt.Sprintf("node %s is not in Ironic", n.Name)}).WithHint("enroll it with `ironpool node register " + n.Name + "`")
		}
		return n, nil, &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
			Message: fmt.Sprintf("node %s belongs to Ironic %s, which this server is not connected to", n.Name, n.IronicEndpoint)}
	}
	return n, b, nil
}

// retryable reports whether a backend error may go away by itself (the
// backend down, slow, or failing internally) rather than being a verdict.
func retryable(err error) bool {
	var se *ironpool.BackendStateError
	if errors.As(err, &se) {
		return false
	}
	switch ironpool.ErrorCode(err) {
	case ironpool.EUNAVAILABLE, ironpool.ETIMEOUT, ironpool.EINTERNAL:
		return true
	}
	return false
}

// errText is what a node's last_error shows for a backend error: the
// backend's own last_error when it gave one, the coded message otherwise.
func errText(err error) string {
	var se *ironpool.BackendStateError
	if errors.As(err, &se) && se.LastError != "" {
		return se.LastError
	}
	return ironpool.ErrorMessage(err)
}

// poolNode is a new pool node for a backend node, linked to it.
func poolNode(info ironpool.BackendNode, endpoint string) *ironpool.Node {
	name := info.Name
	if name == "" {
		name = info.ID
	}
	n := &ironpool.Node{Name: name, Pool: ironpool.DefaultPool, Traits: []string{}, MACs: []string{},
		Fields: map[string]string{}, IronicUUID: info.ID}
	refresh(n, info, endpoint)
	n.State, n.MaintenanceReason, n.LastError = syncState(info)
	return n
}

// refresh copies a backend's facts onto a pool node, keeping what only the
// pool knows (name, pool, password, fields) and keeping values the backend
// does not have rather than blanking them.
func refresh(n *ironpool.Node, info ironpool.BackendNode, endpoint string) {
	if info.CPUs > 0 {
		n.CPUs = info.CPUs
	}
	if info.MemoryMB > 0 {
		n.MemoryMB = info.MemoryMB
	}
	if info.LocalGB > 0 {
		n.LocalGB = info.LocalGB
	}
	if info.CPUArch != "" {
		n.CPUArch = info.CPUArch
	}
	n.ResourceClass = info.ResourceClass
	n.Traits = slices.Clone(info.Traits)
	if n.Traits == nil {
		n.Traits = []string{}
	}
	if len(info.MACs) > 0 {
		n.MACs = slices.Clone(info.MACs)
	}
	if info.BMC.Address != "" {
		n.BMC.Address, n.BMC.Username = info.BMC.Address, info.BMC.Username
	}
	// A real password comes only from an Ironic whose show_password policy
	// allows it (a masked one reads as empty): then Ironic's is the one
	// that works, and the store seals it. Otherwise the pool keeps its own.
	if info.BMC.Password != "" {
		n.BMC.Password, n.BMC.PasswordError = info.BMC.Password, ""
	}
	n.IronicEndpoint = endpoint
	if info.ManagedBy != "" {
		n.ManagedBy = info.ManagedBy
	}
	n.ProvisionState, n.PowerState = info.ProvisionState, info.PowerState
}
