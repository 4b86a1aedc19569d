package service

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"ironpool"
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

// wellKnown are the node fields `node get/set` address by name; anything
// else is a free-form field written fields.KEY.
var wellKnown = []string{"name", "uuid", "pool", "state", "cpus", "memory_mb", "local_gb", "cpu_arch",
	"resource_class", "traits", "macs", "bmc.address", "bmc.username", "bmc.password",
	"maintenance_reason", "last_error", "owner", "allocation_id", "ironic_uuid", "managed_by"}

// readOnly fields change only through the operations that own them.
var readOnly = []string{"uuid", "state", "owner", "allocation_id", "last_error", "maintenance_reason", "ironic_uuid"}

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
	n = n.Redacted()
	if k, ok := strings.CutPrefix(field, "fields."); ok {
		v, ok := n.Fields[k]
		if !ok {
			return "", &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "field", Message: fmt.Sprintf("node %s has no field %q", n.Name, k)}
		}
		return v, nil
	}
	switch field {
	case "name":
		return n.Name, nil
	case "uuid":
		return n.UUID, nil
	case "pool":
		return n.Pool, nil
	case "state":
		return string(n.State), nil
	case "cpus":
		return strconv.Itoa(n.CPUs), nil
	case "memory_mb":
		return strconv.FormatInt(n.MemoryMB, 10), nil
	case "local_gb":
		return strconv.FormatInt(n.LocalGB, 10), nil
	case "cpu_arch":
		return n.CPUArch, nil
	case "resource_class":
		return n.ResourceClass, nil
	case "traits":
		return strings.Join(n.Traits, ","), nil
	case "macs":
		return strings.Join(n.MACs, ","), nil
	case "bmc.address":
		return n.BMC.Address, nil
	case "bmc.username":
		return n.BMC.Username, nil
	case "bmc.password":
		return n.BMC.Password, nil
	case "maintenance_reason":
		return n.MaintenanceReason, nil
	case "last_error":
		return n.LastError, nil
	case "owner":
		return n.Owner, nil
	case "allocation_id":
		return n.AllocationID, nil
	case "ironic_uuid":
		return n.IronicUUID, nil
	case "managed_by":
		return n.ManagedBy, nil
	}
	if v, ok := n.Fields[field]; ok {
		return v, nil
	}
	return "", unknownField(field)
}

func unknownField(field string) error {
	return (&ironpool.Error{Code: ironpool.EINVALID, Field: "field",
		Message: fmt.Sprintf("unknown field %q", field)}).
		WithHint("well-known fields: " + strings.Join(wellKnown, ", ") + "; free-form fields are written fields.KEY")
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
			if err := setField(n, k, assign[k]); err != nil {
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

func setField(n *ironpool.Node, field, v string) error {
	if k, ok := strings.CutPrefix(field, "fields."); ok {
		if err := ironpool.ValidateFieldKey("fields."+k, k); err != nil {
			return err
		}
		if v == "" {
			delete(n.Fields, k)
		} else {
			n.Fields[k] = v
		}
		return nil
	}
	if slices.Contains(readOnly, field) {
		return (&ironpool.Error{Code: ironpool.EINVALID, Field: field, Message: "cannot be set directly"}).
			WithHint("state changes go through allocate, release and maintenance")
	}
	num := func() (int64, error) {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, ironpool.FieldErrorf(field, "%q is not a whole number", v)
		}
		if x < 0 {
			return 0, ironpool.FieldErrorf(field, "must not be negative (got %d)", x)
		}
		return x, nil
	}
	list := func() []string {
		if v == "" {
			return []string{}
		}
		return strings.Split(v, ",")
	}
	switch field {
	case "name":
		n.Name = v
	case "pool":
		n.Pool = v
	case "cpus":
		x, err := num()
		if err != nil {
			return err
		}
		n.CPUs = int(x)
	case "memory_mb":
		x, err := num()
		if err != nil {
			return err
		}
		n.MemoryMB = x
	case "local_gb":
		x, err := num()
		if err != nil {
			return err
		}
		n.LocalGB = x
	case "cpu_arch":
		n.CPUArch = v
	case "resource_class":
		n.ResourceClass = v
	case "traits":
		n.Traits = list()
	case "macs":
		n.MACs = list()
	case "bmc.address":
		n.BMC.Address = v
	case "bmc.username":
		n.BMC.Username = v
	case "bmc.password":
		// Setting the password replaces one that did not open, even
		// with "": that is how an operator repairs a node whose key is gone.
		n.BMC.Password, n.BMC.PasswordError = v, ""
	case "managed_by":
		n.ManagedBy = v
	default:
		if _, ok := n.Fields[field]; ok {
			n.Fields[field] = v
			return nil
		}
		return unknownField(field)
	}
	return nil
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
