package service

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ironpool/ironpool"
)

// DiscoverRequest walks one Redfish service.
type DiscoverRequest struct {
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
	Pool     string `json:"pool,omitempty"`
	DryRun   bool   `json:"dry_run,omitempty"`
}

// DiscoverItem is what discovery did (or, dry, would do) with one system.
type DiscoverItem struct {
	// System is the system's BMC address.
	System string `json:"system"`
	UUID   string `json:"uuid,omitempty"`
	Name   string `json:"name,omitempty"`
	// Action is imported, updated, unchanged or skipped.
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Node is the node as written (or as it would be), password masked.
	Node *ironpool.Node `json:"node,omitempty"`
}

// DiscoverReport is the outcome of one discovery.
type DiscoverReport struct {
	URL    string         `json:"url"`
	DryRun bool           `json:"dry_run"`
	Items  []DiscoverItem `json:"items"`
}

// Discovery actions.
const (
	DiscoverImported  = "imported"
	DiscoverUpdated   = "updated"
	DiscoverUnchanged = "unchanged"
	DiscoverSkipped   = "skipped"
)

// Discover walks a Redfish service and makes every ComputerSystem a node:
// name from HostName (else Id), specs and MACs from its resources, the BMC
// address pointing at that system with the given credentials. It is keyed
// by the system's UUID (the system's address when it reports none), so a
// second run updates instead of duplicating. Everything is read and
// checked before anything is written: one unreadable system, a name or MAC
// that clashes, or a service with no systems fails the run and writes
// nothing. Systems that cannot become nodes (a second system reporting
// the same UUID, a name ironpool cannot take) are skipped, with the
// reason, without failing the others.
func (s *Service) Discover(ctx context.Context, req DiscoverRequest) (*DiscoverReport, error) {
	if _, err := Authorize(ctx, OpNodeCreate); err != nil {
		return nil, err
	}
	if req.Pool == "" {
		req.Pool = ironpool.DefaultPool
	}
	if err := ironpool.ValidateName("pool", req.Pool); err != nil {
		return nil, err
	}
	if _, err := ironpool.ParseBMCEndpoint("url", req.URL); err != nil {
		return nil, err
	}
	if len(req.Username) > ironpool.MaxNameLen*4 || len(req.Password) > ironpool.MaxValueLen {
		return nil, ironpool.FieldErrorf("username", "credentials are too long")
	}
	svc, err := s.dialer().DialService(ctx, req.URL, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	systems, err := svc.Systems(ctx)
	if err != nil {
		return nil, err
	}
	if len(systems) == 0 {
		return nil, ironpool.Errorf(ironpool.ENOTFOUND, "the Redfish service at %s has no ComputerSystems", req.URL)
	}
	sort.Slice(systems, func(i, j int) bool { return systems[i].Address < systems[j].Address })

	existing, err := s.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, err
	}
	byKey := map[string]*ironpool.Node{}
	byName := map[string]*ironpool.Node{}
	macOwner := map[string]string{}
	for _, n := range existing {
		if u := n.Fields[FieldSystemUUID]; u != "" {
			byKey["uuid:"+u] = n
		}
		byKey["addr:"+n.BMC.Address] = n
		byName[n.Name] = n
		for _, m := range n.MACs {
			macOwner[m] = n.Name
		}
	}

	rep := &DiscoverReport{URL: req.URL, DryRun: req.DryRun, Items: []DiscoverItem{}}
	var creates []*ironpool.Node
	var updates []*ironpool.Node
	seenUUID := map[string]string{}
	takenName := map[string]string{}
	takenMAC := map[string]string{}
	for _, hw := range systems {
		it := DiscoverItem{System: hw.Address, UUID: hw.UUID, Name: hw.Name}
		if hw.UUID != "" {
			if other, dup := seenUUID[hw.UUID]; dup {
				it.Action, it.Reason = DiscoverSkipped, "UUID "+hw.UUID+" is also reported by "+other
				rep.Items = append(rep.Items, it)
				continue
			}
		}
		cur := byKey["addr:"+hw.Address]
		if hw.UUID != "" {
			if n, ok := byKey["uuid:"+hw.UUID]; ok {
				cur = n
			}
		}
		var n *ironpool.Node
		if cur != nil {
			c := *cur
			c.MACs = slices.Clone(cur.MACs)
			c.Fields = maps(cur.Fields)
			n = &c
			it.Name = n.Name
		} else {
			name := hw.Name
			if ironpool.ValidateName("name", name) != nil {
				name = lastPathSegment(hw.Address) // a HostName such as "web 1" cannot be a node name
			}
			n = &ironpool.Node{Name: name, Pool: req.Pool, Fields: map[string]string{}}
		}
		applyHardware(n, hw)
		if hw.UUID != "" {
			n.Fields[FieldSystemUUID] = hw.UUID
		}
		if hw.Composed {
			n.Fields[FieldComposed] = "true"
		}
		n.BMC = ironpool.BMC{Address: hw.Address, Username: req.Username, Password: req.Password}
		if err := n.Validate(""); err != nil {
			it.Action, it.Reason = DiscoverSkipped, "cannot be a node: "+ironpool.ErrorMessage(err)
			rep.Items = append(rep.Items, it)
			continue
		}
		// A HostName is not unique (blades cloned from one image share
		// one): a new system whose HostName is taken falls back to its
		// Redfish Id. Clashes that remain are the operator's to resolve:
		// they fail the whole run.
		if _, clash := takenName[n.Name]; cur == nil && (clash || byName[n.Name] != nil) {
			if id := lastPathSegment(hw.Address); id != n.Name && ironpool.ValidateName("name", id) == nil {
				n.Name = id
			}
		}
		if cur == nil {
			if other, ok := byName[n.Name]; ok {
				return nil, ironpool.Errorf(ironpool.ECONFLICT, "system %s: the name %s is taken by node %s, which is not this system", hw.Address, n.Name, other.Name)
			}
		}
		if other, ok := takenName[n.Name]; ok {
			return nil, ironpool.Errorf(ironpool.ECONFLICT, "systems %s and %s would both be node %s", other, hw.Address, n.Name)
		}
		it.Name = n.Name
		// Composed systems can share a network block, so two systems of
		// one service may report one MAC: the later one is skipped, as a
		// node's MACs must be its own. A MAC of a node outside this
		// service fails the run.
		dupMAC := ""
		for _, m := range n.MACs {
			if owner, ok := macOwner[m]; ok && (cur == nil || owner != cur.Name) {
				return nil, ironpool.Errorf(ironpool.ECONFLICT, "system %s: MAC %s belongs to node %s", hw.Address, m, owner)
			}
			if other, ok := takenMAC[m]; ok && dupMAC == "" {
				dupMAC = "MAC " + m + " is also reported by " + other
			}
		}
		if dupMAC != "" {
			it.Action, it.Reason = DiscoverSkipped, dupMAC
			rep.Items = append(rep.Items, it)
			continue
		}
		takenName[n.Name] = hw.Address
		if hw.UUID != "" {
			seenUUID[hw.UUID] = hw.Address
		}
		for _, m := range n.MACs {
			takenMAC[m] = hw.Address
		}
		if cur != nil && cur.State.Held() && cur.BMC != n.BMC {
			// The owner's handoff names this controller and these
			// credentials: they do not change under an allocation.
			it.Action, it.Reason = DiscoverSkipped, "allocated to "+cur.Owner+"; its BMC address and credentials are not changed while held"
			rep.Items = append(rep.Items, it)
			continue
		}
		switch {
		case cur == nil:
			it.Action = DiscoverImported
			creates = append(creates, n)
		case sameSpecs(cur, n) && cur.BMC == n.BMC && cur.Fields[FieldSystemUUID] == n.Fields[FieldSystemUUID] &&
			cur.Fields[FieldComposed] == n.Fields[FieldComposed]:
			it.Action = DiscoverUnchanged
		default:
			it.Action = DiscoverUpdated
			updates = append(updates, n)
		}
		it.Node = n.Redacted()
		rep.Items = append(rep.Items, it)
	}
	if req.DryRun {
		return rep, nil
	}
	if len(creates) > 0 {
		if err := s.Store.CreateNodes(ctx, creates); err != nil {
			return nil, err
		}
	}
	for _, want := range updates {
		_, err := s.Store.UpdateNode(ctx, want.Name, func(n *ironpool.Node) error {
			applyHardware(n, &ironpool.Hardware{CPUs: want.CPUs, MemoryMB: want.MemoryMB, LocalGB: want.LocalGB, CPUArch: want.CPUArch, MACs: want.MACs})
			n.BMC = want.BMC
			for _, k := range []string{FieldSystemUUID, FieldComposed} {
				if v, ok := want.Fields[k]; ok {
					n.Fields[k] = v
				}
			}
			return n.Validate("")
		})
		if err != nil {
			return nil, fmt.Errorf("discover: update %s: %w", want.Name, err)
		}
	}
	if len(creates)+len(updates) > 0 {
		s.notify()
	}
	return rep, nil
}

// lastPathSegment is a system address's Redfish Id.
func lastPathSegment(addr string) string {
	if i := strings.IndexByte(addr, '?'); i >= 0 {
		addr = addr[:i]
	}
	addr = strings.TrimSuffix(addr, "/")
	return addr[strings.LastIndexByte(addr, '/')+1:]
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// FieldComposed marks a node a CompositionService made; FieldComposedBy
// names that service.
const (
	FieldComposed   = "composed"
	FieldComposedBy = "composed_by"
)

// ManagedByComposition is the managed_by of a composed node.
const ManagedByComposition = "redfish-composition"

// ServiceRequest names a Redfish service and its credentials.
type ServiceRequest struct {
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Composition lists what a Redfish CompositionService offers.
func (s *Service) Composition(ctx context.Context, req ServiceRequest) (*ironpool.Composition, error) {
	if _, err := Authorize(ctx, OpNodeCreate); err != nil {
		return nil, err
	}
	if _, err := ironpool.ParseBMCEndpoint("url", req.URL); err != nil {
		return nil, err
	}
	svc, err := s.dialer().DialService(ctx, req.URL, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	return svc.Composition(ctx)
}

// ComposeNodeRequest composes one system and enrolls it as node Name:
// either from named Blocks in Zone, or from the smallest unused compute
// block (in Zone, if given) with at least CPUs and MemoryMB.
type ComposeNodeRequest struct {
	ServiceRequest
	Name     string   `json:"name"`
	Pool     string   `json:"pool,omitempty"`
	Zone     string   `json:"zone,omitempty"`
	Blocks   []string `json:"blocks,omitempty"`
	CPUs     int      `json:"cpus,omitempty"`
	MemoryMB int64    `json:"memory_mb,omitempty"`
}

func isCompute(b ironpool.ResourceBlock) bool {
	return slices.Contains(b.Types, "Compute") || slices.Contains(b.Types, "ComputerSystem")
}

// ComposeNode asks the CompositionService for a new system (POST to
// Systems with Links.ResourceBlocks) and enrolls it as a pool node marked
// composed. The request is checked against the service's zones and blocks
// first; if the pool refuses the node afterwards, the system is
// decomposed again, so nothing is left half-done.
func (s *Service) ComposeNode(ctx context.Context, req ComposeNodeRequest) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeCreate); err != nil {
		return nil, err
	}
	if err := ironpool.ValidateName("name", req.Name); err != nil {
		return nil, err
	}
	if req.Pool == "" {
		req.Pool = ironpool.DefaultPool
	}
	if err := ironpool.ValidateName("pool", req.Pool); err != nil {
		return nil, err
	}
	if _, err := ironpool.ParseBMCEndpoint("url", req.URL); err != nil {
		return nil, err
	}
	switch {
	case len(req.Blocks) > 0 && (req.CPUs > 0 || req.MemoryMB > 0):
		return nil, ironpool.FieldErrorf("blocks", "give blocks, or cpus/memory_mb, not both")
	case len(req.Blocks) > 0 && req.Zone == "":
		return nil, ironpool.FieldErrorf("zone", "is required with blocks")
	case len(req.Blocks) == 0 && req.CPUs <= 0 && req.MemoryMB <= 0:
		return nil, ironpool.FieldErrorf("blocks", "name blocks (with a zone), or give cpus and/or memory_mb")
	case req.CPUs < 0 || req.MemoryMB < 0:
		return nil, ironpool.FieldErrorf("cpus", "must not be negative")
	case len(req.Blocks) > 64:
		return nil, ironpool.FieldErrorf("blocks", "has %d entries; the limit is 64", len(req.Blocks))
	}
	if _, err := s.Store.FindNode(ctx, req.Name); err == nil {
		return nil, &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name", Message: fmt.Sprintf("node %s exists", req.Name)}
	} else if ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
		return nil, err
	}
	svc, err := s.dialer().DialService(ctx, req.URL, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	comp, err := svc.Composition(ctx)
	if err != nil {
		return nil, err
	}
	blocks, err := pickBlocks(comp, req)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(blocks))
	var sum ironpool.Hardware
	for i, b := range blocks {
		ids[i] = b.ID
		sum.CPUs += b.CPUs
		sum.MemoryMB += b.MemoryMB
		sum.LocalGB = max(sum.LocalGB, b.LocalGB)
	}
	hw, err := svc.Compose(ctx, ironpool.ComposeRequest{Name: req.Name, Zone: req.Zone, Blocks: ids})
	if err != nil {
		return nil, err
	}
	// A freshly composed system may not report its specs yet; what its
	// blocks provide stands in.
	if hw.CPUs == 0 {
		hw.CPUs = sum.CPUs
	}
	if hw.MemoryMB == 0 {
		hw.MemoryMB = sum.MemoryMB
	}
	if hw.LocalGB == 0 {
		hw.LocalGB = sum.LocalGB
	}
	n := &ironpool.Node{Name: req.Name, Pool: req.Pool, ManagedBy: ManagedByComposition,
		BMC:    ironpool.BMC{Address: hw.Address, Username: req.Username, Password: req.Password},
		Fields: map[string]string{FieldComposed: "true", FieldComposedBy: serviceRoot(req.URL), "composed_blocks": strings.Join(ids, ",")}}
	applyHardware(n, hw)
	if hw.UUID != "" {
		n.Fields[FieldSystemUUID] = hw.UUID
	}
	if n.CPUArch == "" {
		n.CPUArch = "x86_64"
	}
	err = n.Validate("")
	if err == nil {
		err = s.Store.CreateNodes(ctx, []*ironpool.Node{n})
	}
	if err != nil {
		// The pool will not take it: give the system back.
		if derr := svc.Decompose(context.WithoutCancel(ctx), hw.Address); derr != nil {
			s.Log.Warn("compose: rollback failed", "system", hw.Address, "err", derr)
		}
		return nil, err
	}
	s.notify()
	out, err := s.Store.FindNode(ctx, n.Name)
	if err != nil {
		return nil, err
	}
	return out.Redacted(), nil
}

func serviceRoot(addr string) string {
	ep, err := ironpool.ParseBMCEndpoint("url", addr)
	if err != nil {
		return addr
	}
	return ep.Root
}

// pickBlocks checks named blocks against the zone, or picks the smallest
// unused compute block that meets the cpus/memory asked.
func pickBlocks(comp *ironpool.Composition, req ComposeNodeRequest) ([]ironpool.ResourceBlock, error) {
	byID := map[string]ironpool.ResourceBlock{}
	for _, b := range comp.Blocks {
		byID[b.ID] = b
	}
	var zone *ironpool.ResourceZone
	for i := range comp.Zones {
		if comp.Zones[i].ID == req.Zone {
			zone = &comp.Zones[i]
		}
	}
	if req.Zone != "" && zone == nil {
		ids := []string{}
		for _, z := range comp.Zones {
			ids = append(ids, z.ID)
		}
		return nil, ironpool.FieldErrorf("zone", "%q is not a resource zone of this service (it has %s)", req.Zone, strings.Join(ids, ", "))
	}
	if len(req.Blocks) > 0 {
		out := []ironpool.ResourceBlock{}
		for i, id := range req.Blocks {
			b, ok := byID[id]
			field := fmt.Sprintf("blocks[%d]", i)
			switch {
			case !ok:
				return nil, ironpool.FieldErrorf(field, "%q is not a resource block of this service", id)
			case !slices.Contains(zone.Blocks, id):
				return nil, ironpool.FieldErrorf(field, "%s is not in zone %s", id, req.Zone)
			case b.State != "" && b.State != "Unused" && !slices.Contains(b.Types, "Storage") && !slices.Contains(b.Types, "Network"):
				// Shared kinds (drives, NICs) may be composed into several
				// systems where the service allows it; compute may not.
				return nil, &ironpool.Error{Code: ironpool.ECONFLICT, Field: field, Message: fmt.Sprintf("%s is %s", id, b.State)}
			}
			out = append(out, b)
		}
		return out, nil
	}
	var best *ironpool.ResourceBlock
	for i := range comp.Blocks {
		b := comp.Blocks[i]
		if !isCompute(b) || b.State != "Unused" || b.CPUs < req.CPUs || b.MemoryMB < req.MemoryMB {
			continue
		}
		if zone != nil && !slices.Contains(zone.Blocks, b.ID) {
			continue
		}
		if best == nil || b.CPUs < best.CPUs || b.CPUs == best.CPUs && b.MemoryMB < best.MemoryMB {
			best = &b
		}
	}
	if best == nil {
		return nil, ironpool.Errorf(ironpool.ECAPACITY, "no unused compute block has %d cpus and %d MiB", req.CPUs, req.MemoryMB)
	}
	return []ironpool.ResourceBlock{*best}, nil
}

// DecomposeNode removes a composed node from its CompositionService and
// from the pool. It is refused while the node is allocated, busy, or
// enrolled in Ironic (unregister it first). The node is held out of
// allocation while the service works; if the service refuses, it
// returns to its state and stays in the pool.
func (s *Service) DecomposeNode(ctx context.Context, name string) error {
	if _, err := Authorize(ctx, OpNodeDelete); err != nil {
		return err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return err
	}
	if n.Fields[FieldComposed] != "true" {
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name", Message: fmt.Sprintf("node %s was not composed; use `node delete`", name)}
	}
	var prev ironpool.NodeState
	_, err = s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		switch {
		case n.AllocationID != "" || n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != "":
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
				Message: fmt.Sprintf("node %s is %s; release it before decomposing", n.Name, n.State)}
		case n.IronicUUID != "":
			return (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "name", Message: fmt.Sprintf("node %s is enrolled in Ironic", n.Name)}).
				WithHint("run `ironpool node unregister " + n.Name + "` first")
		case n.State == ironpool.NodeEnrolling:
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name", Message: fmt.Sprintf("node %s is busy (%s)", n.Name, n.State)}
		}
		prev = n.State
		n.State = ironpool.NodeEnrolling
		return nil
	})
	if err != nil {
		return err
	}
	restore := func() {
		_, _ = s.Store.UpdateNode(context.WithoutCancel(ctx), name, func(n *ironpool.Node) error {
			n.State = prev
			return nil
		})
	}
	svcURL := n.Fields[FieldComposedBy]
	scheme := "redfish+https"
	if strings.HasPrefix(svcURL, "http://") {
		scheme = "redfish+http"
	}
	addr := scheme + "://" + strings.TrimPrefix(strings.TrimPrefix(svcURL, "https://"), "http://")
	if i := strings.IndexByte(n.BMC.Address, '?'); i >= 0 {
		addr += n.BMC.Address[i:]
	}
	svc, err := s.dialer().DialService(ctx, addr, n.BMC.Username, n.BMC.Password)
	if err != nil {
		restore()
		return ironpool.NodeBMCError(name, err)
	}
	defer svc.Close()
	if err := svc.Decompose(ctx, n.BMC.Address); err != nil && ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
		restore()
		return ironpool.NodeBMCError(name, err)
	}
	// The node is enrolling (not allocatable); Store.DeleteNode removes it.
	if err := s.Store.DeleteNode(ctx, name); err != nil {
		restore()
		return err
	}
	s.notify()
	return nil
}
