package ironpool

import (
	"context"
	"fmt"
	"time"
)

// Backend is what ironpool needs from a provisioning service behind the
// pool (Ironic today). It is declared here, in ironpool's own terms, by its
// consumer — the reconciler — so that the service and reconciler never speak
// an adapter's types, tests can drive them with a fake that fails on demand,
// and further backends implement the same contract. Node identifiers are
// the backend's own (Node.IronicUUID).
//
// Errors are *Error with EUNAVAILABLE or ETIMEOUT when the backend could
// not be reached or did not answer in time (worth retrying), ENOTFOUND for
// a node the backend does not have, and *BackendStateError when a node
// landed in a provision state other than the one asked for.
type Backend interface {
	// Endpoint names the backend; nodes record it in IronicEndpoint.
	Endpoint() string
	ListNodes(ctx context.Context) ([]BackendNode, error)
	GetNode(ctx context.Context, id string) (BackendNode, error)
	// ManageableNodes lists active nodes with no instance: adoptable.
	ManageableNodes(ctx context.Context) ([]BackendNode, error)
	SetMaintenance(ctx context.Context, id, reason string) error
	ClearMaintenance(ctx context.Context, id string) error
	SetLessee(ctx context.Context, id, lessee string) error
	// Reserve records in the backend that the node is taken, in a way the
	// backend's other consumers respect (Ironic: an allocation for exactly
	// that node, which sets its instance_uuid). name identifies the
	// reservation; extra is free-form metadata. Idempotent. ECONFLICT when
	// another consumer holds the node.
	Reserve(ctx context.Context, id, name string, extra map[string]string) error
	// Unreserve removes the reservation named name, and nothing else; one
	// already gone is not an error.
	Unreserve(ctx context.Context, name string) error
	// ClearInstance removes what a deploy left on a node that is not
	// deployed (instance_info, instance_uuid), as after a failed deploy.
	ClearInstance(ctx context.Context, id string) error
	Manage(ctx context.Context, id string) error
	Provide(ctx context.Context, id string) error
	// WaitForProvisionState waits until the node reaches want (timeout 0:
	// the backend's default).
	WaitForProvisionState(ctx context.Context, id, want string, timeout time.Duration) (BackendNode, error)
	// Register enrolls a pool node and drives it to available; it returns
	// the backend's id as soon as one exists, even with an error.
	Register(ctx context.Context, n *Node) (string, error)
	Unregister(ctx context.Context, id string) error
	Deploy(ctx context.Context, id string, spec DeploySpec) error
	Undeploy(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (BackendNode, error)
	Adopt(ctx context.Context, id string) error
	// SetPower is "on", "off" or "reboot".
	SetPower(ctx context.Context, id, action string) error
	PowerState(ctx context.Context, id string) (string, error)
}

// ManagedBy is the managed_by mark of nodes ironpool enrolled into a
// backend itself, so unregistering knows they are its to remove.
const ManagedBy = "ironpool"

// BackendNode is what a backend reports about one of its nodes, already
// translated into pool terms (the BMC as ironpool's URL form).
type BackendNode struct {
	ID            string
	Name          string
	ResourceClass string
	CPUs          int
	MemoryMB      int64
	LocalGB       int64
	CPUArch       string
	Traits        []string
	// MACs are the node's port addresses, lower-case, sorted.
	MACs []string
	BMC  BMC
	// Driver is the backend's driver name (ipmi, redfish, fake-hardware…).
	Driver               string
	ProvisionState       string
	TargetProvisionState string
	PowerState           string
	Maintenance          bool
	MaintenanceReason    string
	InstanceUUID         string
	Owner                string
	Lessee               string
	LastError            string
	ManagedBy            string
}

// DeploySpec says what to write to a node.
type DeploySpec struct {
	// ImageSource is the image URL (http(s)://, file://) or an image id.
	ImageSource string
	// ImageChecksum is plain hex or "sha256:<hex>" / "sha512:<hex>".
	ImageChecksum string
	// ConfigDrive is optional: a base64 gzipped ISO image, or a JSON object
	// with meta_data/user_data/network_data the backend builds a drive from.
	ConfigDrive string
	// Timeout bounds the wait for active; 0 means the backend's default.
	Timeout time.Duration
}

// BackendStateError says a node ended in a provision state other than the
// one asked for: a verdict on the node, not an outage, so it is not retried.
type BackendStateError struct {
	Node      string // the backend's node id
	State     string // provision state the node landed in
	Want      string // the provision state that was waited for
	LastError string // the backend's last_error, may be empty
}

// Error implements error.
func (e *BackendStateError) Error() string {
	msg := fmt.Sprintf("ironic: node %s is %q, not %q", e.Node, e.State, e.Want)
	if e.LastError != "" {
		msg += ": " + e.LastError
	}
	return msg
}

// Unwrap returns the coded error, so errors.As finds an *Error.
func (e *BackendStateError) Unwrap() error {
	return &Error{Code: ECONFLICT, Message: e.Error()}
}

// SyncResult is what one import/refresh of a backend's nodes did.
type SyncResult struct {
	Endpoint  string   `json:"endpoint"`
	Seen      int      `json:"seen"`
	Imported  []string `json:"imported"`
	Updated   []string `json:"updated"`
	Unchanged int      `json:"unchanged"`
	// Foreign counts active nodes that belong to no allocation of the pool:
	// someone else's, listed by `node manageable`, never imported.
	Foreign int `json:"foreign"`
	// Missing are pool nodes whose backend node is gone.
	Missing []string `json:"missing"`
	// Skipped are backend nodes that could not be imported, with the reason.
	Skipped []string `json:"skipped"`
	// Ignored are backend nodes deleted from the pool, left out (sync
	// --include-ignored imports them again).
	Ignored []string `json:"ignored,omitempty"`
	// Error says why this endpoint could not be synced (several-endpoint
	// syncs report it per endpoint and go on with the others).
	Error string `json:"error,omitempty"`
	// Endpoints has one result per backend when several back the pool;
	// the fields above are then their sums.
	Endpoints []SyncResult `json:"endpoints,omitempty"`
}

// PowerResult is a node with the power state its backend reports for it.
type PowerResult struct {
	Node       *Node  `json:"node"`
	PowerState string `json:"power_state"`
}

// AdoptRequest asks to take a backend node into the pool as held by Owner.
type AdoptRequest struct {
	IronicUUID string        `json:"ironic_uuid"`
	Owner      string        `json:"owner"`
	Name       string        `json:"name,omitempty"`
	TTL        time.Duration `json:"-"`
	// NoExpiry adopts for good (a production workload): the allocation
	// lasts until it is released, instead of a lease.
	NoExpiry bool `json:"-"`
}

// NoExpiryTTL is the lease of an allocation that does not expire: two
// centuries, so it never ends by itself yet stays an ordinary lease for the
// store (a time.Duration cannot reach year 9999).
const NoExpiryTTL = 200 * 365 * 24 * time.Hour

// DeployRequest says what to write to an allocation's nodes.
type DeployRequest struct {
	Image       string
	Checksum    string
	ConfigDrive string
	Timeout     time.Duration
}
