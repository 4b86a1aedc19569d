package pool

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"ironpool"
	"ironpool/internal/ironic"
)

// waitNode re-reads a node until done says so, the timeout passes or ctx
// ends, waking on every change the service makes and polling besides (the
// change may come from another replica).
func (s *Service) waitNode(ctx context.Context, name string, timeout time.Duration, done func(*ironpool.Node) bool) (*ironpool.Node, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := s.Changed()
		n, err := s.Store.FindNode(ctx, name)
		if err != nil || done(n) {
			return n, err
		}
		poll := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			poll.Stop()
			return n, nil
		case <-deadline.C:
			poll.Stop()
			return n, nil
		case <-changed:
		case <-poll.C:
		}
		poll.Stop()
	}
}

// RegisterNode enrolls a pool node into Ironic (the Valence flow): it marks
// the node pending "register" (state enrolling, so it cannot be allocated
// meanwhile) and lets the reconciler do the work, waiting up to wait for the
// outcome. Registering a node that is registered already is a no-op. When
// Ironic cannot be reached the registration stays pending and is retried;
// the call then returns EUNAVAILABLE with the reason, and the node shows it.
func (s *Service) RegisterNode(ctx context.Context, name string, wait time.Duration) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeRegister); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	n, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		switch {
		case n.IronicUUID != "" && n.Pending == "" && n.State != ironpool.NodeError:
			return errUnchanged
		case n.Pending == pendingRegister:
			return errUnchanged // under way: wait for it below
		case n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != "":
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
				Message: fmt.Sprintf("node %s is %s; register it when it is free", n.Name, n.State)}
		}
		n.State, n.Pending, n.LastError, n.MaintenanceReason = ironpool.NodeEnrolling, pendingRegister, "", ""
		return nil
	})
	if err != nil && err != errUnchanged {
		return nil, err
	}
	if err == nil {
		s.notify()
	}
	n, err = s.waitNode(ctx, name, wait, func(n *ironpool.Node) bool {
		return n.Pending != pendingRegister || n.LastError != ""
	})
	if err != nil {
		return nil, err
	}
	switch {
	case n.Pending == pendingRegister && n.LastError != "":
		return n.Redacted(), (&ironpool.Error{Code: ironpool.EUNAVAILABLE,
			Message: fmt.Sprintf("registration of %s is pending: %s", n.Name, n.LastError)}).
			WithHint("ironpool retries by itself; watch `ironpool node show " + n.Name + "`")
	case n.Pending == pendingRegister:
		return n.Redacted(), ironpool.Errorf(ironpool.ETIMEOUT, "registration of %s still under way after %s", n.Name, wait)
	case n.IronicUUID == "" || n.State == ironpool.NodeError:
		return n.Redacted(), ironpool.Errorf(ironpool.ECONFLICT, "node %s: %s", n.Name, n.LastError)
	}
	return n.Redacted(), nil
}

// UnregisterNode deletes a node from Ironic and makes it a local node
// again. It is refused while the node is allocated, busy or deployed in
// Ironic, and is a no-op for a node not in Ironic.
func (s *Service) UnregisterNode(ctx context.Context, name string) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeRegister); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if n.IronicUUID == "" {
		return n.Redacted(), nil
	}
	n, b, err := s.linkedNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if n.AllocationID != "" || n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != "" {
		return nil, (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
			Message: fmt.Sprintf("node %s is %s (pending %q); it can be unregistered when free", n.Name, n.State, n.Pending)}).
			WithHint("release its allocation first")
	}
	if err := b.Unregister(ctx, n.IronicUUID); err != nil {
		return nil, err
	}
	out, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		n.IronicUUID, n.IronicEndpoint, n.ProvisionState, n.PowerState = "", "", "", ""
		if n.ManagedBy == ironic.ManagedBy {
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
	s.notify()
	return out.Redacted(), nil
}

// InspectNode runs Ironic's inspection on a free node and copies what it
// found (CPUs, memory, disk, architecture, MACs) into the pool node. The
// node is kept out of allocation (enrolling) while Ironic inspects it.
func (s *Service) InspectNode(ctx context.Context, name string) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeInspect); err != nil {
		return nil, err
	}
	_, b, err := s.linkedNode(ctx, name)
	if err != nil {
		return nil, err
	}
	var prev ironpool.NodeState
	n, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeAvailable && n.State != ironpool.NodeMaintenance && n.State != ironpool.NodeError || n.Pending != "" {
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
	s.notify()
	info, ierr := b.Inspect(ctx, n.IronicUUID)
	out, err := s.Store.UpdateNode(context.WithoutCancel(ctx), name, func(n *ironpool.Node) error {
		n.State = prev
		if ierr != nil {
			if !retryable(ierr) {
				n.State = ironpool.NodeError
			}
			n.LastError = "inspect: " + errText(ierr)
			return nil
		}
		refresh(n, info, b.Endpoint())
		return n.Validate("")
	})
	s.notify()
	if ierr != nil {
		return nil, ierr
	}
	if err != nil {
		return nil, err
	}
	return out.Redacted(), nil
}

// PowerResult is a node with the power state Ironic reports for it.
type PowerResult struct {
	Node       *ironpool.Node `json:"node"`
	PowerState string         `json:"power_state"`
}

// PowerNode powers a node on or off, reboots it ("on", "off", "reboot"), or
// reads its power state ("status"), through Ironic.
func (s *Service) PowerNode(ctx context.Context, name, action string) (*PowerResult, error) {
	if _, err := Authorize(ctx, OpNodePower); err != nil {
		return nil, err
	}
	switch action {
	case "on", "off", "reboot", "status":
	default:
		return nil, ironpool.FieldErrorf("action", "%q is not a power action (want on, off, reboot or status)", action)
	}
	_, b, err := s.linkedNode(ctx, name)
	if err != nil {
		return nil, err
	}
	n, _ := s.Store.FindNode(ctx, name)
	if action != "status" {
		if err := b.SetPower(ctx, n.IronicUUID, action); err != nil {
			return nil, err
		}
	}
	ps, err := b.PowerState(ctx, n.IronicUUID)
	if err != nil {
		return nil, err
	}
	out, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.PowerState == ps {
			return errUnchanged
		}
		n.PowerState = ps
		return nil
	})
	if err == errUnchanged {
		out, err = n, nil
	}
	if err != nil {
		return nil, err
	}
	return &PowerResult{Node: out.Redacted(), PowerState: ps}, nil
}

// ManageableNodes lists the Ironic nodes ironpool could adopt: active, with
// no instance, with a resource class, and not in the pool already.
func (s *Service) ManageableNodes(ctx context.Context) ([]*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpIronicSync); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	infos, err := s.Backend.ManageableNodes(ctx)
	if err != nil {
		return nil, err
	}
	inPool, err := s.ironicUUIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := []*ironpool.Node{}
	for _, info := range infos {
		if inPool[info.UUID] {
			continue
		}
		n := ironic.ToPoolNode(info)
		n.IronicEndpoint = s.Backend.Endpoint()
		out = append(out, n)
	}
	return out, nil
}

func (s *Service) ironicUUIDs(ctx context.Context) (map[string]bool, error) {
	nodes, err := s.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if n.IronicUUID != "" {
			m[n.IronicUUID] = true
		}
	}
	return m, nil
}

// AdoptRequest asks to take an Ironic node into the pool as held by Owner.
type AdoptRequest struct {
	IronicUUID string        `json:"ironic_uuid"`
	Owner      string        `json:"owner"`
	Name       string        `json:"name,omitempty"`
	TTL        time.Duration `json:"-"`
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// AdoptNode (the Mogan flow) adds an Ironic node that already runs a
// workload to the pool, held by the owner inside a new allocation, with no
// selection step. An active node without an instance is taken as it is; a
// manageable node deployed outside Ironic goes through Ironic's own adopt
// verb first. It emits a node.adopted event. When the allocation ends the
// node is undeployed and cleaned like any other.
func (s *Service) AdoptNode(ctx context.Context, req AdoptRequest) (*ironpool.Allocation, error) {
	if _, err := Authorize(ctx, OpNodeAdopt); err != nil {
		return nil, err
	}
	if !uuidPattern.MatchString(req.IronicUUID) {
		return nil, ironpool.FieldErrorf("ironic_uuid", "%q is not a UUID", req.IronicUUID)
	}
	if err := ironpool.ValidateName("owner", req.Owner); err != nil {
		return nil, err
	}
	if req.Name != "" {
		if err := ironpool.ValidateName("name", req.Name); err != nil {
			return nil, err
		}
	}
	if req.TTL == 0 {
		req.TTL = s.Config.DefaultTTL
	}
	if req.TTL < 0 || req.TTL > s.Config.MaxTTL {
		return nil, ironpool.FieldErrorf("ttl", "must be positive and at most %s", s.Config.MaxTTL)
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	b := s.Backend
	inPool, err := s.ironicUUIDs(ctx)
	if err != nil {
		return nil, err
	}
	if inPool[strings.ToLower(req.IronicUUID)] || inPool[req.IronicUUID] {
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s is in the pool already", req.IronicUUID)
	}
	info, err := b.GetNode(ctx, req.IronicUUID)
	if err != nil {
		return nil, err
	}
	if info.ProvisionState == "manageable" && info.TargetProvisionState == "" {
		if err := b.Adopt(ctx, info.UUID); err != nil {
			return nil, err
		}
		if info, err = b.GetNode(ctx, info.UUID); err != nil {
			return nil, err
		}
	}
	switch {
	case info.ProvisionState != "active":
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s is %q; only active or manageable nodes can be adopted", info.UUID, info.ProvisionState)
	case info.InstanceUUID != "":
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s has instance %s: it belongs to someone", info.UUID, info.InstanceUUID)
	case info.ResourceClass == "":
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "Ironic node %s has no resource class", info.UUID)
	}
	n := ironic.ToPoolNode(info)
	if req.Name != "" {
		n.Name = req.Name
	}
	n.IronicEndpoint = b.Endpoint()
	n.State, n.MaintenanceReason, n.LastError = ironpool.NodeEnrolling, "", ""
	if err := n.Validate(""); err != nil {
		return nil, err
	}
	if err := s.Store.CreateNodes(ctx, []*ironpool.Node{n}); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	a := &ironpool.Allocation{Owner: req.Owner, Mode: ironpool.ModeNone,
		Metadata:  map[string]string{"adopted_ironic_uuid": info.UUID},
		Items:     []ironpool.AllocationItem{{Constraints: ironpool.Constraints{ResourceClass: info.ResourceClass}}},
		CreatedAt: now, ExpiresAt: now.Add(req.TTL)}
	if err := s.Store.AllocateNodes(ctx, a, []int64{n.ID}, ironpool.NodeDeployed); err != nil {
		_ = s.Store.DeleteNode(context.WithoutCancel(ctx), n.Name)
		return nil, err
	}
	if err := s.Store.AddEvent(ctx, &ironpool.Event{Action: "node.adopted", Subject: "node/" + n.Name,
		Summary: fmt.Sprintf("adopted Ironic node %s for %s in allocation %s", info.UUID, req.Owner, a.ID)}); err != nil {
		s.Log.Warn("adopt: event", "err", err)
	}
	s.notify()
	return a, nil
}

// DeployRequest says what to write to an allocation's nodes.
type DeployRequest struct {
	Image       string
	Checksum    string
	ConfigDrive string
	Timeout     time.Duration
}

var hex64 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// DeployAllocation (the Compass flow) writes an image to every node of an
// allocation and moves them to active in Ironic, at most
// IronicConfig.DeployParallel at a time. It returns at once with the nodes
// in state deploying; each becomes deployed, or goes back to allocated with
// Ironic's last_error. Handoff allocations cannot be deployed: their nodes
// are in maintenance and driven by the owner's own Ironic.
func (s *Service) DeployAllocation(ctx context.Context, id string, req DeployRequest) (*ironpool.Allocation, error) {
	// Who may ask comes before what was asked: a caller without a token
	// learns 401, not which fields of a deploy are wrong. driveAllocation
	// checks the owner once the allocation is loaded.
	if _, err := Authorize(ctx, OpAllocDeploy); err != nil {
		return nil, err
	}
	if req.Image == "" {
		return nil, ironpool.FieldErrorf("image", "is required (an http(s):// or file:// URL)")
	}
	if len(req.Image) > ironpool.MaxValueLen || strings.ContainsAny(req.Image, " \t\r\n") {
		return nil, ironpool.FieldErrorf("image", "is not a usable image reference")
	}
	if hex64.MatchString(req.Checksum) {
		req.Checksum = "sha256:" + strings.ToLower(req.Checksum)
	}
	if len(req.ConfigDrive) > 16<<20/2 {
		return nil, ironpool.FieldErrorf("config_drive", "is over 8 MB")
	}
	spec := ironic.DeploySpec{ImageSource: req.Image, ImageChecksum: req.Checksum, ConfigDrive: req.ConfigDrive, Timeout: req.Timeout}
	return s.driveAllocation(ctx, id, "deploy", func(ctx context.Context, b Backend, n *ironpool.Node) error {
		return b.Deploy(ctx, n.IronicUUID, spec)
	})
}

// UndeployAllocation tears down what DeployAllocation put on an
// allocation's nodes (Ironic undeploys and cleans them); the nodes stay in
// the allocation, back in state allocated.
func (s *Service) UndeployAllocation(ctx context.Context, id string) (*ironpool.Allocation, error) {
	return s.driveAllocation(ctx, id, "undeploy", func(ctx context.Context, b Backend, n *ironpool.Node) error {
		return b.Undeploy(ctx, n.IronicUUID)
	})
}

// driveAllocation runs op on every node of an allocation in the background
// with bounded parallelism, recording each node's progress in its state
// (deploying → deployed, or deployed → allocated) and failures in
// last_error, which is what `deploy --wait` shows as it polls.
func (s *Service) driveAllocation(ctx context.Context, id, verb string, op func(context.Context, Backend, *ironpool.Node) error) (*ironpool.Allocation, error) {
	if _, err := Authorize(ctx, OpAllocDeploy); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	a, err := s.Store.FindAllocation(ctx, id)
	if err != nil {
		return nil, err
	}
	actor, err := forOwner(ctx, OpAllocDeploy, a.Owner)
	if err != nil {
		return nil, err
	}
	switch {
	case a.State != ironpool.AllocActive:
		return nil, ironpool.Errorf(ironpool.ECONFLICT, "allocation %s is %s; only active allocations can be %sed", id, a.State, verb)
	case a.Mode == ironpool.ModeHandoff:
		return nil, (&ironpool.Error{Code: ironpool.ECONFLICT, Message: fmt.Sprintf("allocation %s is handed off: its nodes are in maintenance and driven by the owner's Ironic", id)}).
			WithHint("allocate with --mode lessee or --mode none to deploy through ironpool")
	}
	for _, n := range a.Nodes {
		if s.backendFor(n) == nil {
			return nil, ironpool.Errorf(ironpool.ECONFLICT, "node %s of allocation %s is not in this server's Ironic", n.Name, id)
		}
	}
	during, to := ironpool.NodeDeploying, ironpool.NodeDeployed
	if verb == "undeploy" {
		during, to = ironpool.NodeDeployed, ironpool.NodeAllocated
	}
	for _, n := range a.Nodes {
		_, err := s.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
			if cur.AllocationID != id || !cur.State.Held() {
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s left allocation %s", cur.Name, id)
			}
			if verb == "deploy" && cur.State == ironpool.NodeDeploying {
				return ironpool.Errorf(ironpool.ECONFLICT, "node %s is being deployed already", cur.Name)
			}
			cur.State, cur.LastError = during, ""
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	s.notify()
	cfg := s.Ironic.withDefaults()
	bg := context.WithoutCancel(ctx)
	nodes := a.Nodes
	go func() {
		sem := make(chan struct{}, cfg.DeployParallel)
		var wg sync.WaitGroup
		for _, n := range nodes {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				s.awaitSettled(bg, n)
				err := op(bg, s.Backend, n)
				var info ironic.NodeInfo
				if err == nil {
					info, _ = s.Backend.GetNode(bg, n.IronicUUID)
				}
				_, uerr := s.Store.UpdateNode(bg, n.UUID, func(cur *ironpool.Node) error {
					if cur.AllocationID != id || cur.State != during {
						return errUnchanged // released meanwhile: cleaning owns it
					}
					if err != nil {
						cur.LastError = verb + ": " + errText(err)
						if verb == "deploy" {
							cur.State = ironpool.NodeAllocated
						}
						return nil
					}
					cur.State, cur.LastError = to, ""
					if info.UUID != "" {
						cur.ProvisionState, cur.PowerState = info.ProvisionState, info.PowerState
					}
					return nil
				})
				if uerr != nil && uerr != errUnchanged {
					s.Log.Warn(verb, "node", n.Name, "err", uerr)
				}
				if err != nil {
					s.Log.Warn(verb+" failed", "node", n.Name, "allocation", id, "err", err)
				}
				s.notify()
			})
		}
		wg.Wait()
	}()
	out, err := s.Store.FindAllocation(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.present(actor, out), nil
}

// awaitSettled waits (bounded) until the reconciler has finished n's
// checkout, so a deploy does not race the lessee being set.
func (s *Service) awaitSettled(ctx context.Context, n *ironpool.Node) {
	_, _ = s.waitNode(ctx, n.UUID, time.Minute, func(cur *ironpool.Node) bool {
		s.ironic.mu.Lock()
		busy := s.ironic.inflight[cur.ID]
		s.ironic.mu.Unlock()
		return cur.Pending == "" && !busy
	})
}
