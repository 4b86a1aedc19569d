package service

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ironpool/ironpool"
)

// CreateNodes validates and adds nodes, all or none. With several nodes the
// error names the entry ("nodes[3].macs[0]").
func (s *Service) CreateNodes(ctx context.Context, nodes []*ironpool.Node) error {
	if _, err := Authorize(ctx, OpNodeCreate); err != nil {
		return err
	}
	if len(nodes) == 0 {
		return ironpool.FieldErrorf("nodes", "no nodes given")
	}
	if len(nodes) > 100000 {
		return ironpool.FieldErrorf("nodes", "has %d entries; the limit is 100000 per import", len(nodes))
	}
	names := make(map[string]int, len(nodes))
	macs := map[string]int{}
	for i, n := range nodes {
		prefix := ""
		if len(nodes) > 1 {
			prefix = fmt.Sprintf("nodes[%d].", i)
		}
		n.ID, n.State, n.AllocationID, n.Owner = 0, ironpool.NodeAvailable, "", ""
		if err := n.Validate(prefix); err != nil {
			return err
		}
		if j, ok := names[n.Name]; ok {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: prefix + "name", Message: fmt.Sprintf("%q is also the name of nodes[%d]", n.Name, j)}
		}
		names[n.Name] = i
		for k, m := range n.MACs {
			if j, ok := macs[m]; ok {
				return &ironpool.Error{Code: ironpool.ECONFLICT, Field: fmt.Sprintf("%smacs[%d]", prefix, k), Message: fmt.Sprintf("%s is also a MAC of nodes[%d]", m, j)}
			}
			macs[m] = i
		}
	}
	if err := s.Store.CreateNodes(ctx, nodes); err != nil {
		return err
	}
	s.notify()
	return nil
}

// FindNodes lists nodes with passwords masked.
func (s *Service) FindNodes(ctx context.Context, f ironpool.NodeFilter) ([]*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeList); err != nil {
		return nil, err
	}
	nodes, err := s.Store.FindNodes(ctx, f)
	if err != nil {
		return nil, err
	}
	for i, n := range nodes {
		nodes[i] = n.Redacted()
	}
	return nodes, nil
}

// FindNode returns one node, its password masked unless reveal is set and
// the actor is an admin.
func (s *Service) FindNode(ctx context.Context, name string, reveal bool) (*ironpool.Node, error) {
	op := OpNodeShow
	if reveal {
		op = OpNodeReveal
	}
	if _, err := Authorize(ctx, op); err != nil {
		return nil, err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil || reveal {
		return n, err
	}
	return n.Redacted(), nil
}

// DeleteNode removes a node that no allocation holds.
func (s *Service) DeleteNode(ctx context.Context, name string) error {
	if _, err := Authorize(ctx, OpNodeDelete); err != nil {
		return err
	}
	return s.Store.DeleteNode(ctx, name)
}

// SetMaintenance takes a node out of service with a reason, or back in.
// A held node cannot enter maintenance: its owner would lose it silently.
// Taking a node out of maintenance (or out of error) puts a local node back
// at once, and an Ironic node through cleaning, so that Ironic's own state
// decides whether it is fit.
func (s *Service) SetMaintenance(ctx context.Context, name string, on bool, reason string) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeMaintenance); err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	if on && reason == "" {
		return nil, ironpool.FieldErrorf("reason", "is required to put a node into maintenance")
	}
	if len(reason) > ironpool.MaxReasonLen {
		return nil, ironpool.FieldErrorf("reason", "is %d characters; the limit is %d", len(reason), ironpool.MaxReasonLen)
	}
	if err := ironpool.ValidateText("reason", reason); err != nil {
		return nil, err
	}
	n, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if on {
			if n.State.Held() {
				return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
					Message: fmt.Sprintf("node %s is allocated (allocation %s); release it first", n.Name, n.AllocationID)}
			}
			n.State, n.MaintenanceReason = ironpool.NodeMaintenance, reason
			return nil
		}
		if n.State != ironpool.NodeMaintenance && n.State != ironpool.NodeError {
			return nil // already in service: idempotent
		}
		if n.IronicUUID != "" {
			// An Ironic node comes back through Ironic's own state: it is
			// cleaned (manage → provide) and is available only when Ironic
			// says so; a node Ironic failed stays out (error again).
			n.State, n.Pending, n.MaintenanceReason, n.LastError = ironpool.NodeCleaning, ironpool.PendingClean, "", ""
			return nil
		}
		n.State, n.MaintenanceReason, n.LastError = ironpool.NodeAvailable, "", ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return n.Redacted(), nil
}

// GetField reads one field of a node. The password is never read here:
// it is handed out with allocations, or by `node show --reveal` to admins.
func (s *Service) GetField(ctx context.Context, name, field string) (string, error) {
	if _, err := Authorize(ctx, OpNodeShow); err != nil {
		return "", err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return "", err
	}
	return ironpool.GetNodeField(n.Redacted(), field)
}

// SetFields changes node fields given as FIELD=VALUE assignments, all in one
// transaction: well-known fields are parsed and validated, fields.KEY sets a
// free-form field (an empty value removes it).
func (s *Service) SetFields(ctx context.Context, name string, assign map[string]string) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeUpdate); err != nil {
		return nil, err
	}
	if len(assign) == 0 {
		return nil, ironpool.FieldErrorf("fields", "nothing to set (give FIELD=VALUE)")
	}
	keys := make([]string, 0, len(assign))
	for k := range assign {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	n, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		held := n.State.Held() || n.AllocationID != ""
		before := n.BMC.Address
		for _, k := range keys {
			if err := ironpool.SetNodeField(n, k, assign[k]); err != nil {
				return err
			}
		}
		// The owner holds this BMC through the handoff: re-pointing it
		// would silently hand them another machine's controller.
		if held && n.BMC.Address != before {
			return (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "bmc.address",
				Message: fmt.Sprintf("node %s is allocated (allocation %s); its BMC address cannot change while it is held", n.Name, n.AllocationID)}).
				WithHint("release the allocation first: ironpool release " + n.AllocationID)
		}
		return n.Validate("")
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return n.Redacted(), nil
}

// CreateFlavor validates and adds a flavor.
func (s *Service) CreateFlavor(ctx context.Context, f *ironpool.Flavor) error {
	if _, err := Authorize(ctx, OpFlavorCreate); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	return s.Store.CreateFlavor(ctx, f)
}

// FindFlavors lists flavors.
func (s *Service) FindFlavors(ctx context.Context) ([]*ironpool.Flavor, error) {
	if _, err := Authorize(ctx, OpFlavorRead); err != nil {
		return nil, err
	}
	return s.Store.FindFlavors(ctx)
}

// FindFlavor returns one flavor.
func (s *Service) FindFlavor(ctx context.Context, name string) (*ironpool.Flavor, error) {
	if _, err := Authorize(ctx, OpFlavorRead); err != nil {
		return nil, err
	}
	return s.Store.FindFlavor(ctx, name)
}

// DeleteFlavor removes a flavor.
func (s *Service) DeleteFlavor(ctx context.Context, name string) error {
	if _, err := Authorize(ctx, OpFlavorDelete); err != nil {
		return err
	}
	return s.Store.DeleteFlavor(ctx, name)
}
