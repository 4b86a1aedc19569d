package service

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// The backend verbs: each authorizes and validates here, then records what
// is owed in the store or asks the reconciler (Workflows) to do it.

// errUnchanged aborts an UpdateNode that has nothing to write.
var errUnchanged = errors.New("unchanged")

// requireBackend returns EINVALID when the server runs without a backend,
// with a hint, so that Ironic verbs on a local pool explain themselves.
func (s *Service) requireBackend() error {
	if s.Work == nil || !s.Work.HasBackend() {
		return (&ironpool.Error{Code: ironpool.EINVALID, Message: "this ironpool server is not connected to an Ironic"}).
			WithHint("start the server with --ironic-url URL or --ironic-cloud NAME")
	}
	return nil
}

// waitNode re-reads a node until done says so, the timeout passes or ctx
// ends, waking on every change and polling besides (the change may come
// from another replica).
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

// SyncIronic imports the backend's nodes into the pool and refreshes the
// ones it has (see reconcile.Reconciler.Sync).
func (s *Service) SyncIronic(ctx context.Context, includeIgnored bool) (*ironpool.SyncResult, error) {
	if _, err := Authorize(ctx, OpIronicSync); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	return s.Work.Sync(ctx, includeIgnored)
}

// RegisterNode enrolls a pool node into the backend (the Valence flow): it
// marks the node PendingRegister (state enrolling, so it cannot be
// allocated meanwhile) and lets the reconciler do the work, waiting up to
// wait for the outcome. Registering a node that is registered already is a
// no-op. When the backend cannot be reached the registration stays pending
// and is retried; the call then returns EUNAVAILABLE with the reason, and
// the node shows it.
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
		case n.IronicUUID != "" && n.Pending == ironpool.PendingNone && n.State != ironpool.NodeError:
			return errUnchanged
		case n.Pending == ironpool.PendingRegister:
			return errUnchanged // under way: wait for it below
		case n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != ironpool.PendingNone:
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
				Message: fmt.Sprintf("node %s is %s; register it when it is free", n.Name, n.State)}
		}
		n.State, n.Pending, n.LastError, n.MaintenanceReason = ironpool.NodeEnrolling, ironpool.PendingRegister, "", ""
		return nil
	})
	if err != nil && err != errUnchanged {
		return nil, err
	}
	if err == nil {
		s.notify()
	}
	n, err = s.waitNode(ctx, name, wait, func(n *ironpool.Node) bool {
		return n.Pending != ironpool.PendingRegister || n.LastError != ""
	})
	if err != nil {
		return nil, err
	}
	switch {
	case n.Pending == ironpool.PendingRegister && n.LastError != "":
		return n.Redacted(), (&ironpool.Error{Code: ironpool.EUNAVAILABLE,
			Message: fmt.Sprintf("registration of %s is pending: %s", n.Name, n.LastError)}).
			WithHint("ironpool retries by itself; watch `ironpool node show " + n.Name + "`")
	case n.Pending == ironpool.PendingRegister:
		return n.Redacted(), ironpool.Errorf(ironpool.ETIMEOUT, "registration of %s still under way after %s", n.Name, wait)
	case n.IronicUUID == "" || n.State == ironpool.NodeError:
		return n.Redacted(), ironpool.Errorf(ironpool.ECONFLICT, "node %s: %s", n.Name, n.LastError)
	}
	return n.Redacted(), nil
}

// UnregisterNode deletes a node from the backend and makes it a local node
// again. It is refused while the node is allocated, busy or deployed, and
// is a no-op for a node not in the backend.
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
	if n.AllocationID != "" || n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != ironpool.PendingNone {
		return nil, (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
			Message: fmt.Sprintf("node %s is %s (pending %q); it can be unregistered when free", n.Name, n.State, n.Pending)}).
			WithHint("release its allocation first")
	}
	out, err := s.Work.Unregister(ctx, name)
	if err != nil {
		return nil, err
	}
	s.notify()
	return out.Redacted(), nil
}

// InspectNode runs the backend's inspection on a free node and copies what
// it found into the pool node.
func (s *Service) InspectNode(ctx context.Context, name string) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeInspect); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	n, err := s.Work.Inspect(ctx, name)
	s.notify()
	if err != nil {
		return nil, err
	}
	return n.Redacted(), nil
}

// PowerNode powers a node on or off, reboots it ("on", "off", "reboot"), or
// reads its power state ("status"), through the backend.
func (s *Service) PowerNode(ctx context.Context, name, action string) (*ironpool.PowerResult, error) {
	actor, err := Authorize(ctx, OpNodePower)
	if err != nil {
		return nil, err
	}
	switch action {
	case "on", "off", "reboot", "status":
	default:
		return nil, ironpool.FieldErrorf("action", "%q is not a power action (want on, off, reboot or status)", action)
	}
	if actor.Role == ironpool.RoleUser {
		// A lab may power the machines it holds, and only those.
		n, err := s.Store.FindNode(ctx, name)
		if err != nil {
			return nil, err
		}
		if !n.State.Held() || n.Owner == "" || !actor.CanActFor(n.Owner) {
			return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "name",
				Message: fmt.Sprintf("this token may power only nodes its owners hold; %s is not one", name)}
		}
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	res, err := s.Work.Power(ctx, name, action)
	if err != nil {
		return nil, err
	}
	res.Node = res.Node.Redacted()
	return res, nil
}

// ManageableNodes lists the backend nodes ironpool could adopt: active,
// with no instance, with a resource class, and not in the pool already.
func (s *Service) ManageableNodes(ctx context.Context) ([]*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpIronicSync); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	return s.Work.Manageable(ctx)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// AdoptNode (the Mogan flow) adds a backend node that already runs a
// workload to the pool, held by the owner inside a new allocation, with no
// selection step (admin only).
func (s *Service) AdoptNode(ctx context.Context, req ironpool.AdoptRequest) (*ironpool.Allocation, error) {
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
	switch {
	case req.NoExpiry && req.TTL != 0:
		return nil, ironpool.FieldErrorf("lease", "none cannot be combined with a ttl")
	case req.NoExpiry:
		req.TTL = ironpool.NoExpiryTTL
	case req.TTL == 0:
		req.TTL = s.Config.DefaultTTL
	case req.TTL < 0 || req.TTL > s.Config.MaxTTL:
		return nil, ironpool.FieldErrorf("ttl", "must be positive and at most %s", s.Config.MaxTTL)
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	a, err := s.Work.Adopt(ctx, req)
	if err != nil {
		return nil, err
	}
	s.notify()
	return a, nil
}

// checksumLen is the hex length of each digest Ironic accepts.
var checksumLen = map[string]int{"md5": 32, "sha256": 64, "sha512": 128}

var hexPattern = regexp.MustCompile(`^[0-9a-fA-F]+$`)

// normalizeChecksum accepts an image checksum as ALGO:HEX (md5, sha256,
// sha512) or as plain hex whose length names the algorithm, and returns
// the form Ironic is given ("sha256:…" for a bare 64-digit hex). Empty is
// allowed: Ironic then needs none (a file:// image it can checksum itself,
// or an image service that holds one).
func normalizeChecksum(sum string) (string, error) {
	if sum == "" {
		return "", nil
	}
	algo, hexd, found := strings.Cut(sum, ":")
	if !found {
		algo, hexd = "", sum
	}
	algo = strings.ToLower(algo)
	if !hexPattern.MatchString(hexd) {
		return "", ironpool.FieldErrorf("checksum", "is not hex (want ALGO:HEX or the plain hex digest)")
	}
	if algo == "" {
		for a, n := range checksumLen {
			if len(hexd) == n {
				algo = a
			}
		}
		if algo == "" {
			return "", ironpool.FieldErrorf("checksum", "has %d hex digits; an md5, sha256 or sha512 digest has 32, 64 or 128", len(hexd))
		}
		if algo == "md5" {
			return strings.ToLower(hexd), nil // Ironic's image_checksum
		}
	}
	n, ok := checksumLen[algo]
	if !ok {
		return "", ironpool.FieldErrorf("checksum", "algorithm %q is not one of md5, sha256, sha512", algo)
	}
	if len(hexd) != n {
		return "", ironpool.FieldErrorf("checksum", "a %s digest has %d hex digits, not %d", algo, n, len(hexd))
	}
	return algo + ":" + strings.ToLower(hexd), nil
}

// DeployAllocation (the Compass flow) writes an image to every node of an
// allocation and moves them to active in the backend. It returns at once
// with the nodes in state deploying; each becomes deployed, or goes back to
// allocated with the backend's last_error. Handoff allocations cannot be
// deployed: their nodes are in maintenance and driven by the owner's own
// Ironic.
func (s *Service) DeployAllocation(ctx context.Context, id string, req ironpool.DeployRequest) (*ironpool.Allocation, error) {
	// Who may ask comes before what was asked: a caller without a token
	// learns 401, not which fields of a deploy are wrong. deployable
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
	sum, err := normalizeChecksum(req.Checksum)
	if err != nil {
		return nil, err
	}
	req.Checksum = sum
	if len(req.ConfigDrive) > 16<<20/2 {
		return nil, ironpool.FieldErrorf("config_drive", "is over 8 MB")
	}
	spec := ironpool.DeploySpec{ImageSource: req.Image, ImageChecksum: req.Checksum, ConfigDrive: req.ConfigDrive, Timeout: req.Timeout}
	return s.driveAllocation(ctx, id, "deploy", func(a *ironpool.Allocation) error {
		// The spec goes with the allocation first: the nodes' pending
		// deploy refers to it, on whichever replica carries it out.
		if err := s.Store.SetDeploySpec(ctx, a.ID, spec); err != nil {
			return err
		}
		return s.Work.Deploy(ctx, a, spec)
	})
}

// UndeployAllocation tears down what DeployAllocation put on an
// allocation's nodes; the nodes stay in the allocation, back in state
// allocated.
func (s *Service) UndeployAllocation(ctx context.Context, id string) (*ironpool.Allocation, error) {
	return s.driveAllocation(ctx, id, "undeploy", func(a *ironpool.Allocation) error { return s.Work.Undeploy(ctx, a) })
}

// driveAllocation checks that the caller may deploy allocation id and that
// it can be, then starts op and returns the allocation as it is now.
func (s *Service) driveAllocation(ctx context.Context, id, verb string, op func(*ironpool.Allocation) error) (*ironpool.Allocation, error) {
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
	if err := op(a); err != nil {
		return nil, err
	}
	s.notify()
	out, err := s.Store.FindAllocation(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.present(actor, out), nil
}
