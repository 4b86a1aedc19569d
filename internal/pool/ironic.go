package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"ironpool"
	"ironpool/internal/ironic"
)

// Backend is what the service needs from an Ironic. It is declared here, by
// its consumer, so the reconciler and the verbs can be tested against a fake
// that fails on demand, and so the service states exactly which of Ironic's
// operations it relies on. *ironic.Client implements it.
type Backend interface {
	// Endpoint names the Ironic; nodes record it in IronicEndpoint.
	Endpoint() string
	ListNodes(ctx context.Context) ([]ironic.NodeInfo, error)
	GetNode(ctx context.Context, ident string) (ironic.NodeInfo, error)
	ManageableNodes(ctx context.Context) ([]ironic.NodeInfo, error)
	SetMaintenance(ctx context.Context, uuid, reason string) error
	ClearMaintenance(ctx context.Context, uuid string) error
	SetLessee(ctx context.Context, uuid, lessee string) error
	Manage(ctx context.Context, uuid string) error
	Provide(ctx context.Context, uuid string) error
	WaitForProvisionState(ctx context.Context, uuid, want string, timeout time.Duration) (ironic.NodeInfo, error)
	Register(ctx context.Context, n *ironpool.Node) (string, error)
	Unregister(ctx context.Context, uuid string) error
	Deploy(ctx context.Context, uuid string, spec ironic.DeploySpec) error
	Undeploy(ctx context.Context, uuid string) error
	Inspect(ctx context.Context, uuid string) (ironic.NodeInfo, error)
	Adopt(ctx context.Context, uuid string) error
	SetPower(ctx context.Context, uuid, action string) error
	PowerState(ctx context.Context, uuid string) (string, error)
}

var _ Backend = (*ironic.Client)(nil)

// IronicConfig tunes the Ironic reconciler and the periodic sync.
type IronicConfig struct {
	// SyncInterval is how often the leader imports and refreshes Ironic's
	// nodes (default 30s; negative disables the periodic sync, leaving
	// `ironpool ironic sync`).
	SyncInterval time.Duration
	// Workers bounds how many nodes the reconciler drives at once (default
	// 32): cleaning a node can take many minutes, and an unbounded fan-out
	// would only queue inside Ironic's conductor.
	Workers int
	// RetryBase and RetryMax bound the backoff between attempts on a node
	// whose side effect failed (defaults 1s and 15s), so an Ironic that comes
	// back is noticed within RetryMax.
	RetryBase, RetryMax time.Duration
	// DeployParallel bounds the nodes deployed at once per request (default 8).
	DeployParallel int
}

func (c IronicConfig) withDefaults() IronicConfig {
	if c.SyncInterval == 0 {
		c.SyncInterval = 30 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.RetryBase <= 0 {
		c.RetryBase = time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 15 * time.Second
	}
	if c.DeployParallel <= 0 {
		c.DeployParallel = 8
	}
	return c
}

// ironicState is the reconciler's memory. It is deliberately in-memory
// only: what must survive a restart (which nodes owe which side effect) is
// the node's pending column, and the retry schedule may start over.
type ironicState struct {
	mu       sync.Mutex
	inflight map[int64]bool
	retry    map[int64]retryState
	sem      chan struct{}
	finished int
	syncing  bool
	lastSync time.Time
	lastScan time.Time
}

type retryState struct {
	fails int
	next  time.Time
	// interrupted is set when an attempt ended because Ironic went away;
	// a failure state found afterwards is then Ironic's reaction to the
	// interruption (a conductor restart fails in-flight cleaning), not a
	// verdict on the hardware, and is retried.
	interrupted bool
}

// Reasons and prefixes written to Ironic and to pool nodes. The prefixes let
// release and sync tell ironpool's own marks from an operator's.
const (
	handoffPrefix = "ironpool handoff"
	ironicPrefix  = "ironic: "
)

// handoffReason is the maintenance reason a handoff checkout writes: it
// names owner and allocation so that whoever finds the node in Ironic knows
// who has it and why.
func handoffReason(owner, allocID string) string {
	return fmt.Sprintf("%s: owner %s, allocation %s", handoffPrefix, owner, allocID)
}

// backendFor returns the backend that holds n, or nil when n is not linked
// to Ironic or is linked to an Ironic this server is not connected to. The
// endpoint is a property of the node link so that several Ironics can back
// one pool later without reinterpreting existing rows.
func (s *Service) backendFor(n *ironpool.Node) Backend {
	if s.Backend == nil || n.IronicUUID == "" {
		return nil
	}
	if n.IronicEndpoint != "" && n.IronicEndpoint != s.Backend.Endpoint() {
		return nil
	}
	return s.Backend
}

// requireBackend returns EINVALID when the server runs without Ironic, with
// a hint, so that Ironic verbs on a local pool explain themselves.
func (s *Service) requireBackend() error {
	if s.Backend == nil {
		return (&ironpool.Error{Code: ironpool.EINVALID, Message: "this ironpool server is not connected to an Ironic"}).
			WithHint("start the server with --ironic-url URL or --ironic-cloud NAME")
	}
	return nil
}

// linkedNode loads a node and its backend for a verb that needs Ironic.
func (s *Service) linkedNode(ctx context.Context, name string) (*ironpool.Node, Backend, error) {
	if err := s.requireBackend(); err != nil {
		return nil, nil, err
	}
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	b := s.backendFor(n)
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

// retryable reports whether a backend error may go away by itself (Ironic
// down, slow, or failing internally) rather than being a verdict.
func retryable(err error) bool {
	var se *ironic.StateError
	if errors.As(err, &se) {
		return false
	}
	switch ironpool.ErrorCode(err) {
	case ironpool.EUNAVAILABLE, ironpool.ETIMEOUT, ironpool.EINTERNAL:
		return true
	}
	return false
}

// errText is what a node's last_error shows for a backend error: Ironic's
// own last_error when it gave one, the coded message otherwise.
func errText(err error) string {
	var se *ironic.StateError
	if errors.As(err, &se) && se.LastError != "" {
		return se.LastError
	}
	return ironpool.ErrorMessage(err)
}

// SyncResult is what one sync did.
type SyncResult struct {
	Endpoint  string   `json:"endpoint"`
	Seen      int      `json:"seen"`
	Imported  []string `json:"imported"`
	Updated   []string `json:"updated"`
	Unchanged int      `json:"unchanged"`
	// Foreign counts active nodes that belong to no allocation of the pool:
	// someone else's, listed by `node manageable`, never imported.
	Foreign int `json:"foreign"`
	// Missing are pool nodes whose Ironic node is gone.
	Missing []string `json:"missing"`
	// Skipped are Ironic nodes that could not be imported, with the reason.
	Skipped []string `json:"skipped"`
}

// SyncIronic imports Ironic's nodes into the pool and refreshes the ones it
// has: properties, traits, MACs, BMC address and username (a password stays
// as it is, since Ironic only shows it masked), provision and power state.
// Nodes Ironic reports in maintenance, failed or not available are kept out
// of allocation (pool state maintenance with an "ironic: " reason, or
// error); active nodes of no pool allocation are left out. Nodes the pool
// is working on (held, cleaning, or with a pending side effect) keep their
// pool state: the reconciler owns them.
func (s *Service) SyncIronic(ctx context.Context) (*SyncResult, error) {
	if _, err := Authorize(ctx, OpIronicSync); err != nil {
		return nil, err
	}
	if err := s.requireBackend(); err != nil {
		return nil, err
	}
	b := s.Backend
	infos, err := b.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := s.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, err
	}
	byIronic := map[string]*ironpool.Node{}
	names := map[string]bool{}
	for _, n := range pool {
		names[n.Name] = true
		if n.IronicUUID != "" {
			byIronic[n.IronicUUID] = n
		}
	}
	res := &SyncResult{Endpoint: b.Endpoint(), Seen: len(infos), Imported: []string{}, Updated: []string{},
		Missing: []string{}, Skipped: []string{}}
	seen := map[string]bool{}
	changed := false
	for _, info := range infos {
		seen[info.UUID] = true
		cur, ok := byIronic[info.UUID]
		if !ok {
			if info.ProvisionState == "active" || info.TargetProvisionState == "active" {
				res.Foreign++
				continue
			}
			n := ironic.ToPoolNode(info)
			n.IronicEndpoint = b.Endpoint()
			n.State, n.MaintenanceReason, n.LastError = syncState(info)
			if names[n.Name] {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): a pool node of that name exists and is not linked to it", n.Name, info.UUID))
				continue
			}
			if err := n.Validate(""); err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): %s", n.Name, info.UUID, ironpool.ErrorMessage(err)))
				continue
			}
			if err := s.Store.CreateNodes(ctx, []*ironpool.Node{n}); err != nil {
				if ironpool.ErrorCode(err) != ironpool.ECONFLICT && ironpool.ErrorCode(err) != ironpool.EINVALID {
					return res, err
				}
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): %s", n.Name, info.UUID, ironpool.ErrorMessage(err)))
				continue
			}
			names[n.Name] = true
			res.Imported = append(res.Imported, n.Name)
			changed = true
			continue
		}
		var upd bool
		_, err := s.Store.UpdateNode(ctx, cur.UUID, func(n *ironpool.Node) error {
			before := *n.Clone()
			refresh(n, info, b.Endpoint())
			busy := n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != ""
			operatorMaint := n.State == ironpool.NodeMaintenance && !strings.HasPrefix(n.MaintenanceReason, ironicPrefix)
			if !busy && !operatorMaint {
				n.State, n.MaintenanceReason, n.LastError = syncState(info)
			}
			if err := n.Validate(""); err != nil {
				// Keep the row as it was rather than store what Ironic
				// sent if it does not fit ironpool's rules.
				*n = before
			}
			upd = len(ironpool.DiffNodes(&before, n)) > 0
			if !upd {
				return errUnchanged
			}
			return nil
		})
		switch {
		case errors.Is(err, errUnchanged):
			res.Unchanged++
		case err != nil:
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): %s", cur.Name, info.UUID, ironpool.ErrorMessage(err)))
		default:
			res.Updated = append(res.Updated, cur.Name)
			changed = true
		}
	}
	for u, n := range byIronic {
		if seen[u] || s.backendFor(n) == nil || n.Pending == "register" {
			continue
		}
		res.Missing = append(res.Missing, n.Name)
		if n.State.Held() || n.State == ironpool.NodeMaintenance {
			continue
		}
		if _, err := s.Store.UpdateNode(ctx, n.UUID, func(n *ironpool.Node) error {
			n.State, n.MaintenanceReason, n.Pending = ironpool.NodeMaintenance, ironicPrefix+"node "+u+" is no longer in Ironic", ""
			return nil
		}); err == nil {
			changed = true
		}
	}
	slices.Sort(res.Missing)
	s.ironic.mu.Lock()
	s.ironic.lastSync = s.Now()
	s.ironic.mu.Unlock()
	if changed {
		s.notify()
	}
	return res, nil
}

var errUnchanged = errors.New("unchanged")

// syncState is the pool state of an Ironic node that the pool is not
// working on: available only when Ironic would let it be used.
func syncState(info ironic.NodeInfo) (ironpool.NodeState, string, string) {
	switch {
	case info.Maintenance:
		r := info.MaintenanceReason
		if r == "" {
			r = "in maintenance"
		}
		return ironpool.NodeMaintenance, ironicPrefix + r, ""
	case strings.HasSuffix(info.ProvisionState, "failed") || info.ProvisionState == "error":
		le := info.LastError
		if le == "" {
			le = "provision state " + info.ProvisionState
		}
		return ironpool.NodeError, "", ironicPrefix + le
	case info.ProvisionState == "available" && info.TargetProvisionState == "":
		return ironpool.NodeAvailable, "", ""
	case info.ProvisionState == "active":
		return ironpool.NodeMaintenance, ironicPrefix + "active outside ironpool", ""
	}
	return ironpool.NodeMaintenance, ironicPrefix + "provision state " + info.ProvisionState, ""
}

// refresh copies Ironic's facts onto a pool node, keeping what only the
// pool knows (name, pool, password, fields) and keeping values Ironic does
// not have rather than blanking them.
func refresh(n *ironpool.Node, info ironic.NodeInfo, endpoint string) {
	p := ironic.ToPoolNode(info)
	if info.CPUs > 0 {
		n.CPUs = p.CPUs
	}
	if info.MemoryMB > 0 {
		n.MemoryMB = p.MemoryMB
	}
	if info.LocalGB > 0 {
		n.LocalGB = p.LocalGB
	}
	if p.CPUArch != "" {
		n.CPUArch = p.CPUArch
	}
	n.ResourceClass = p.ResourceClass
	n.Traits = p.Traits
	if len(p.MACs) > 0 {
		n.MACs = p.MACs
	}
	if p.BMC.Address != "" {
		n.BMC.Address, n.BMC.Username = p.BMC.Address, p.BMC.Username
	}
	n.IronicEndpoint = endpoint
	if p.ManagedBy != "" {
		n.ManagedBy = p.ManagedBy
	}
	n.ProvisionState, n.PowerState = info.ProvisionState, info.PowerState
}
