package service

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/fanout"
)

// bmcConcurrency bounds how many BMCs one request talks to at once.
const bmcConcurrency = 16

// dialer is the BMC dialer the server gave, or one that says there is
// none.
func (s *Service) dialer() ironpool.BMCDialer {
	if s.BMC == nil {
		return noBMC{}
	}
	return s.BMC
}

type noBMC struct{}

func (noBMC) DialBMC(context.Context, ironpool.BMC) (ironpool.BMCClient, error) {
	return nil, ironpool.Errorf(ironpool.EUNAVAILABLE, "this server drives no BMCs")
}

func (noBMC) DialService(context.Context, string, string, string) (ironpool.BMCService, error) {
	return nil, ironpool.Errorf(ironpool.EUNAVAILABLE, "this server drives no BMCs")
}

// NodeHealth returns the BMC health check's view of one node, or of every
// probed node when name is empty. Results live on the replica that probes
// (the leader); another replica answers with what it has probed itself.
func (s *Service) NodeHealth(ctx context.Context, name string) ([]ironpool.NodeHealth, error) {
	if _, err := Authorize(ctx, OpNodeShow); err != nil {
		return nil, err
	}
	if name != "" {
		n, err := s.Store.FindNode(ctx, name)
		if err != nil {
			return nil, err
		}
		name = n.Name
	}
	if s.Work == nil {
		return []ironpool.NodeHealth{}, nil
	}
	return s.Work.NodeHealth(name), nil
}

// HealthCounts returns the health check's counters, for /metrics.
func (s *Service) HealthCounts() ironpool.HealthCounts {
	if s.Work == nil {
		return ironpool.HealthCounts{}
	}
	return s.Work.HealthCounts()
}

// mayDrive checks that the actor may power (or set the boot device of)
// n: staff may drive any node, a user only nodes its owners hold.
func mayDrive(actor *ironpool.Actor, n *ironpool.Node, field string) error {
	if actor.Role != ironpool.RoleUser {
		return nil
	}
	if !n.State.Held() || n.Owner == "" || !actor.CanActFor(n.Owner) {
		return &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: field,
			Message: fmt.Sprintf("this token may drive only nodes its owners hold; %s is not one", n.Name)}
	}
	return nil
}

// withBMC opens n's BMC, runs fn and closes it.
func (s *Service) withBMC(ctx context.Context, n *ironpool.Node, fn func(ironpool.BMCClient) error) error {
	return ironpool.UseBMC(ctx, s.BMC, n, fn)
}

// PowerRequest names the nodes to power: by name, or every node of an
// allocation.
type PowerRequest struct {
	Nodes      []string             `json:"nodes,omitempty"`
	Allocation string               `json:"allocation,omitempty"`
	Action     ironpool.PowerAction `json:"action"`
	// Direct goes to the BMC even for a node linked to Ironic.
	Direct bool `json:"direct,omitempty"`
}

// PowerItem is the outcome for one node.
type PowerItem struct {
	Node       string `json:"node"`
	PowerState string `json:"power_state,omitempty"`
	// Via is "bmc" or "ironic".
	Via   string `json:"via"`
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// PowerReport is the outcome for every node of a power request.
type PowerReport struct {
	Items  []PowerItem `json:"items"`
	Failed int         `json:"failed"`
}

// Power powers one node, through Ironic when it is linked to one and
// direct is false, through its own BMC otherwise.
func (s *Service) Power(ctx context.Context, name string, action ironpool.PowerAction, direct bool) (*ironpool.PowerResult, error) {
	actor, err := Authorize(ctx, OpNodePower)
	if err != nil {
		return nil, err
	}
	if err := action.Validate(); err != nil {
		return nil, err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := mayDrive(actor, n, "name"); err != nil {
		return nil, err
	}
	if n.IronicUUID != "" && !direct {
		return s.PowerNode(ctx, name, string(action))
	}
	ps, err := s.powerDirect(ctx, n, action)
	if err != nil {
		return nil, err
	}
	out, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return nil, err
	}
	return &ironpool.PowerResult{Node: out.Redacted(), PowerState: string(ps)}, nil
}

// powerDirect runs action on n's BMC and records the power state (and,
// for a change, an audit event).
func (s *Service) powerDirect(ctx context.Context, n *ironpool.Node, action ironpool.PowerAction) (ironpool.PowerState, error) {
	var ps ironpool.PowerState
	err := s.withBMC(ctx, n, func(c ironpool.BMCClient) error {
		var err error
		ps, err = c.Power(ctx, action)
		return err
	})
	if err != nil {
		return "", err
	}
	if action != ironpool.PowerStatus {
		s.audit(ctx, "node.power", n.Name, fmt.Sprintf("power %s through the BMC: %s", action, ps))
	}
	if n.PowerState != string(ps) {
		_, err = s.Store.UpdateNode(ctx, n.Name, func(x *ironpool.Node) error {
			if x.PowerState == string(ps) {
				return errUnchanged
			}
			x.PowerState = string(ps)
			return nil
		})
		if err != nil && err != errUnchanged {
			return ps, err
		}
	}
	return ps, nil
}

func (s *Service) audit(ctx context.Context, action, node, summary string) {
	if err := s.Store.AddEvent(ctx, &ironpool.Event{Action: action, Subject: "node/" + node, Summary: summary}); err != nil {
		s.Log.Warn("audit", "action", action, "node", node, "err", err)
	}
}

// resolveNodes reads the nodes a request names (all of them first, so a
// typo changes nothing).
func (s *Service) resolveNodes(ctx context.Context, actor *ironpool.Actor, names []string, allocation string) ([]*ironpool.Node, error) {
	switch {
	case allocation != "" && len(names) > 0:
		return nil, ironpool.FieldErrorf("allocation", "give node names or an allocation, not both")
	case allocation != "":
		a, err := s.Store.FindAllocation(ctx, allocation)
		if err != nil {
			return nil, err
		}
		if actor.Role == ironpool.RoleUser && !actor.CanActFor(a.Owner) {
			return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "allocation", Message: "allocation " + allocation + " belongs to another owner"}
		}
		if len(a.Nodes) == 0 {
			return nil, ironpool.Errorf(ironpool.ECONFLICT, "allocation %s holds no nodes", allocation)
		}
		return a.Nodes, nil
	case len(names) == 0:
		return nil, ironpool.FieldErrorf("nodes", "name at least one node, or an allocation")
	case len(names) > 1000:
		return nil, ironpool.FieldErrorf("nodes", "has %d entries; the limit is 1000", len(names))
	}
	out := make([]*ironpool.Node, 0, len(names))
	for i, name := range names {
		n, err := s.Store.FindNode(ctx, name)
		if err != nil {
			if e, ok := err.(*ironpool.Error); ok && e.Code == ironpool.ENOTFOUND {
				return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: fmt.Sprintf("nodes[%d]", i), Message: fmt.Sprintf("no node %q", name)}
			}
			return nil, err
		}
		if err := mayDrive(actor, n, fmt.Sprintf("nodes[%d]", i)); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// eachNode runs fn over nodes with bounded concurrency, so one slow BMC
// never delays the others beyond its own timeout.
func eachNode(nodes []*ironpool.Node, fn func(i int, n *ironpool.Node)) {
	fanout.Each(nodes, bmcConcurrency, fn)
}

// PowerMany powers several nodes (or an allocation's) in parallel and
// reports per node; a failure on one does not stop the others.
func (s *Service) PowerMany(ctx context.Context, req PowerRequest) (*PowerReport, error) {
	return s.perNode(ctx, req.Action.Validate, req.Nodes, req.Allocation, func(n *ironpool.Node) PowerItem {
		it := PowerItem{Node: n.Name, Via: "bmc"}
		var ps string
		var err error
		if n.IronicUUID != "" && !req.Direct {
			it.Via = "ironic"
			var r *ironpool.PowerResult
			if r, err = s.PowerNode(ctx, n.Name, string(req.Action)); err == nil {
				ps = r.PowerState
			}
		} else {
			var st ironpool.PowerState
			st, err = s.powerDirect(ctx, n, req.Action)
			ps = string(st)
		}
		if err != nil {
			it.Error, it.Code = ironpool.ErrorMessage(err), ironpool.ErrorCode(err)
		}
		it.PowerState = ps
		return it
	})
}

// perNode is the frame of the verbs that act on several nodes' BMCs: it
// authorizes, validates the request, resolves the nodes (or an
// allocation's) the actor may touch, runs fn on each in parallel and
// counts the failures. A failure on one node does not stop the others.
func (s *Service) perNode(ctx context.Context, validate func() error, names []string, allocation string, fn func(n *ironpool.Node) PowerItem) (*PowerReport, error) {
	actor, err := Authorize(ctx, OpNodePower)
	if err != nil {
		return nil, err
	}
	if err := validate(); err != nil {
		return nil, err
	}
	nodes, err := s.resolveNodes(ctx, actor, names, allocation)
	if err != nil {
		return nil, err
	}
	rep := &PowerReport{Items: make([]PowerItem, len(nodes))}
	eachNode(nodes, func(i int, n *ironpool.Node) { rep.Items[i] = fn(n) })
	for _, it := range rep.Items {
		if it.Error != "" {
			rep.Failed++
		}
	}
	return rep, nil
}

// BootRequest sets the boot device of nodes (or an allocation's).
type BootRequest struct {
	Nodes      []string            `json:"nodes,omitempty"`
	Allocation string              `json:"allocation,omitempty"`
	Device     ironpool.BootDevice `json:"device"`
	Once       bool                `json:"once,omitempty"`
}

// SetBootDevice sets the boot device through each node's BMC, in
// parallel, reporting per node.
func (s *Service) SetBootDevice(ctx context.Context, req BootRequest) (*PowerReport, error) {
	return s.perNode(ctx, req.Device.Validate, req.Nodes, req.Allocation, func(n *ironpool.Node) PowerItem {
		it := PowerItem{Node: n.Name, Via: "bmc"}
		err := s.withBMC(ctx, n, func(c ironpool.BMCClient) error { return c.SetBootDevice(ctx, req.Device, req.Once) })
		if err != nil {
			it.Error, it.Code = ironpool.ErrorMessage(err), ironpool.ErrorCode(err)
			return it
		}
		when := "every boot"
		if req.Once {
			when = "the next boot"
		}
		s.audit(ctx, "node.boot_device", n.Name, fmt.Sprintf("boot device %s for %s", req.Device, when))
		return it
	})
}

// Inspect refreshes a node's specs: through Ironic when the node is linked
// to one and direct is false, from its own BMC otherwise (Redfish gives
// cpus, memory, disk, arch and MACs; IPMI only the system GUID, so an IPMI
// node keeps its specs).
func (s *Service) Inspect(ctx context.Context, name string, direct bool) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeInspect); err != nil {
		return nil, err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if n.IronicUUID != "" && !direct {
		return s.InspectNode(ctx, name)
	}
	var hw *ironpool.Hardware
	err = s.withBMC(ctx, n, func(c ironpool.BMCClient) error {
		var err error
		hw, err = c.Inspect(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		before := *n
		before.MACs = slices.Clone(n.MACs)
		before.Fields = maps(n.Fields)
		applyHardware(n, hw)
		if hw.UUID != "" {
			n.Fields[FieldSystemUUID] = hw.UUID
		}
		for k, v := range hw.Fields {
			n.Fields[k] = v
		}
		if sameSpecs(&before, n) && sameFields(before.Fields, n.Fields) {
			return errUnchanged
		}
		return n.Validate("")
	})
	if err == errUnchanged {
		out, err = s.Store.FindNode(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	s.notify()
	return out.Redacted(), nil
}

// FieldSystemUUID is the node field holding the UUID the BMC reports for
// the system; discovery keys on it.
const FieldSystemUUID = "system_uuid"

// applyHardware copies what a BMC reported into n, keeping n's value
// where the BMC said nothing (zero).
func applyHardware(n *ironpool.Node, hw *ironpool.Hardware) {
	if hw.CPUs > 0 {
		n.CPUs = hw.CPUs
	}
	if hw.MemoryMB > 0 {
		n.MemoryMB = hw.MemoryMB
	}
	if hw.LocalGB > 0 {
		n.LocalGB = hw.LocalGB
	}
	if hw.CPUArch != "" {
		n.CPUArch = hw.CPUArch
	}
	if len(hw.MACs) > 0 {
		n.MACs = slices.Clone(hw.MACs)
	}
	if n.Fields == nil {
		n.Fields = map[string]string{}
	}
}

func sameSpecs(a, b *ironpool.Node) bool {
	am, bm := slices.Clone(a.MACs), slices.Clone(b.MACs)
	sort.Strings(am)
	sort.Strings(bm)
	return a.CPUs == b.CPUs && a.MemoryMB == b.MemoryMB && a.LocalGB == b.LocalGB && a.CPUArch == b.CPUArch && slices.Equal(am, bm)
}

func sameFields(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
