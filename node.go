package ironpool

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NodeState is ironpool's own view of a node's lifecycle. The backend's state
// (Ironic's provision_state) is shown beside it, never instead of it.
type NodeState string

// Node states. available → allocated → cleaning → available is the loop every
// allocation drives; the Ironic backend adds enrolling/deploying/deployed.
const (
	NodeAvailable   NodeState = "available"
	NodeAllocated   NodeState = "allocated"
	NodeCleaning    NodeState = "cleaning"
	NodeMaintenance NodeState = "maintenance"
	NodeError       NodeState = "error"
	NodeEnrolling   NodeState = "enrolling"
	NodeDeploying   NodeState = "deploying"
	NodeDeployed    NodeState = "deployed"
)

// NodeStates lists every state, for validation and for status tables.
var NodeStates = []NodeState{NodeAvailable, NodeAllocated, NodeCleaning, NodeMaintenance,
	NodeError, NodeEnrolling, NodeDeploying, NodeDeployed}

// Held reports whether a node in this state belongs to an allocation.
func (s NodeState) Held() bool {
	return s == NodeAllocated || s == NodeDeploying || s == NodeDeployed
}

// DefaultPool is the pool a node joins when none is given.
const DefaultPool = "default"

// MaskedSecret is what a secret looks like to callers not allowed to read it.
const MaskedSecret = "******"

// Node is one physical server.
type Node struct {
	ID            int64             `json:"id"`
	UUID          string            `json:"uuid"`
	Name          string            `json:"name"`
	Pool          string            `json:"pool"`
	State         NodeState         `json:"state"`
	CPUs          int               `json:"cpus"`
	MemoryMB      int64             `json:"memory_mb"`
	LocalGB       int64             `json:"local_gb"`
	CPUArch       string            `json:"cpu_arch"`
	ResourceClass string            `json:"resource_class"`
	Traits        []string          `json:"traits"`
	MACs          []string          `json:"macs"`
	BMC           BMC               `json:"bmc"`
	Fields        map[string]string `json:"fields"`

	MaintenanceReason string `json:"maintenance_reason,omitempty"`
	LastError         string `json:"last_error,omitempty"`
	AllocationID      string `json:"allocation_id,omitempty"`
	Owner             string `json:"owner,omitempty"`

	// Ironic link; empty for nodes ironpool alone manages.
	IronicUUID     string `json:"ironic_uuid,omitempty"`
	IronicEndpoint string `json:"ironic_endpoint,omitempty"`
	ManagedBy      string `json:"managed_by,omitempty"`
	ProvisionState string `json:"provision_state,omitempty"`
	PowerState     string `json:"power_state,omitempty"`
	// Pending names the backend side effect the reconciler still owes this
	// node; empty when in sync.
	Pending Pending `json:"pending,omitempty"`

	LastAllocatedAt time.Time `json:"last_allocated_at,omitzero"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// BMC is how a node's management controller is reached. The scheme of Address
// names the driver: ipmi://host:623, redfish+https://host/redfish/v1/Systems/1.
type BMC struct {
	Address  string `json:"address"`
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
	// PasswordError says why a stored password could not be opened (sealed
	// under a key this server does not hold, or damaged). Such a node stays
	// readable, allocatable and deletable, with an empty Password, so the
	// operator can set the password again; see docs/SECURITY.md.
	PasswordError string `json:"password_error,omitempty"`
}

// Limits on strings, so hostile input cannot bloat the database or logs.
const (
	MaxNameLen     = 63
	MaxFieldKeyLen = 63
	MaxValueLen    = 1024
	MaxReasonLen   = 255
	MaxTraits      = 64
	MaxMACs        = 64
	MaxFields      = 128
)

var (
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	traitPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	archPattern  = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// ValidateName checks a node, flavor, pool or owner name: 1–63 characters of
// letters, digits, '.', '_', ':' and '-', starting with a letter or digit.
func ValidateName(field, name string) error {
	switch {
	case name == "":
		return FieldErrorf(field, "is required")
	case len(name) > MaxNameLen:
		return FieldErrorf(field, "is %d characters long; the limit is %d", len(name), MaxNameLen)
	case !namePattern.MatchString(name):
		return FieldErrorf(field, "%q must be letters, digits, '.', '_', ':' or '-', starting with a letter or digit", name)
	}
	return nil
}

// NormalizeMAC returns mac in lower-case colon form, or an error naming field.
func NormalizeMAC(field, mac string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(mac))
	if err != nil || len(hw) != 6 {
		return "", FieldErrorf(field, "%q is not a MAC address (want six hex pairs, e.g. 52:54:00:12:34:56)", truncate(mac, 40))
	}
	return hw.String(), nil
}

// BMCSchemes are the accepted BMC URL schemes and the driver each names.
var BMCSchemes = map[string]string{
	"ipmi":          "ipmi",
	"redfish":       "redfish",
	"redfish+http":  "redfish",
	"redfish+https": "redfish",
}

// ParseBMCAddress checks a BMC address URL and returns it parsed. The scheme
// must name a known driver, the host must be present, and a port, if given,
// must be 1–65535.
func ParseBMCAddress(field, addr string) (*url.URL, error) {
	if addr == "" {
		return nil, FieldErrorf(field, "is required (e.g. ipmi://10.0.0.5:623)")
	}
	if len(addr) > MaxValueLen {
		return nil, FieldErrorf(field, "is %d characters long; the limit is %d", len(addr), MaxValueLen)
	}
	u, err := url.Parse(addr)
	if err != nil {
		return nil, FieldErrorf(field, "%q is not a URL", truncate(addr, 60))
	}
	if _, ok := BMCSchemes[u.Scheme]; !ok {
		return nil, FieldErrorf(field, "scheme %q is not a BMC driver (want ipmi, redfish, redfish+http or redfish+https)", truncate(u.Scheme, 20))
	}
	if u.User != nil {
		return nil, FieldErrorf(field, "must not carry credentials; use the username and password fields")
	}
	host := u.Hostname()
	if host == "" {
		return nil, FieldErrorf(field, "%q has no host", truncate(addr, 60))
	}
	// Only printable ASCII: a control byte or invalid UTF-8 in the host
	// (found by FuzzParseBMCAddress) makes an address whose string form
	// no longer parses, and could forge lines in logs that print it.
	if strings.IndexFunc(host, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return nil, FieldErrorf(field, "host %q is not valid", truncate(host, 60))
	}
	if strings.Contains(addr, "#") {
		return nil, FieldErrorf(field, "must not have a #fragment; a BMC does not use one")
	}
	// The limit holds for the escaped form too: the parser turns a space in
	// the path into %20, and an address that grows past the limit when
	// printed would be refused when read back (found by the fuzzer).
	if n := len(u.String()); n > MaxValueLen {
		return nil, FieldErrorf(field, "is %d characters long once escaped; the limit is %d", n, MaxValueLen)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, FieldErrorf(field, "port %q is out of range 1-65535", truncate(p, 10))
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, FieldErrorf(field, "has an empty port")
	}
	return u, nil
}

var fieldKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]*$`)

// ValidateFieldKey checks a free-form field key.
func ValidateFieldKey(field, k string) error {
	if k == "" || len(k) > MaxFieldKeyLen || !fieldKeyPattern.MatchString(k) {
		return FieldErrorf(field, "key %q must be 1-%d letters, digits, '_', '.', ':' or '-', starting with a letter or '_'", truncate(k, 70), MaxFieldKeyLen)
	}
	return nil
}

// ValidateFields checks the free-form fields map.
func ValidateFields(field string, m map[string]string) error {
	if len(m) > MaxFields {
		return FieldErrorf(field, "has %d entries; the limit is %d", len(m), MaxFields)
	}
	for k, v := range m {
		if err := ValidateFieldKey(field+"."+truncate(k, 70), k); err != nil {
			return err
		}
		if len(v) > MaxValueLen {
			return FieldErrorf(field+"."+k, "value is %d bytes; the limit is %d", len(v), MaxValueLen)
		}
	}
	return nil
}

// NormalizeTraits upper-cases, deduplicates and sorts traits, checking each
// against Ironic's trait pattern (CUSTOM_FOO, HW_CPU_X86_AVX2).
func NormalizeTraits(field string, traits []string) ([]string, error) {
	if len(traits) > MaxTraits {
		return nil, FieldErrorf(field, "has %d entries; the limit is %d", len(traits), MaxTraits)
	}
	out := make([]string, 0, len(traits))
	for i, t := range traits {
		t = strings.ToUpper(strings.TrimSpace(t))
		if t == "" || len(t) > 255 || !traitPattern.MatchString(t) {
			return nil, FieldErrorf(fmt.Sprintf("%s[%d]", field, i), "%q is not a trait (upper-case letters, digits and '_', e.g. CUSTOM_GPU)", truncate(traits[i], 40))
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Redacted returns a copy of n with the BMC password masked.
func (n *Node) Redacted() *Node {
	c := n.Clone()
	if c.BMC.Password != "" {
		c.BMC.Password = MaskedSecret
	}
	return c
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NodeFilter selects nodes. Zero fields match everything.
type NodeFilter struct {
	Pool   string
	State  NodeState
	Owner  string
	Flavor *Constraints // only nodes that satisfy these constraints
	// Allocation selects the nodes an allocation currently holds.
	Allocation string
	Limit      int
}

// NodeService is the inventory: what `ironpool node …` does.
type NodeService interface {
	// CreateNodes adds nodes, all or none. Returns EINVALID (field names the
	// entry) for bad input and ECONFLICT for a duplicate name or MAC.
	CreateNodes(ctx context.Context, nodes []*Node) error
	// FindNodes lists nodes matching f, ordered by name.
	FindNodes(ctx context.Context, f NodeFilter) ([]*Node, error)
	// FindNode returns one node by name or UUID, or ENOTFOUND.
	FindNode(ctx context.Context, name string) (*Node, error)
	// UpdateNode reads the node, lets fn change it and writes it back in one
	// transaction. fn's error aborts the change. Returns ENOTFOUND, or
	// ECONFLICT when a new MAC or name is taken.
	UpdateNode(ctx context.Context, name string, fn func(*Node) error) (*Node, error)
	// DeleteNode removes a node. Returns ECONFLICT while it is allocated.
	DeleteNode(ctx context.Context, name string) error
	// DeleteNodes removes several nodes in one transaction, all or none:
	// ENOTFOUND or ECONFLICT for any of them (field names its index) leaves
	// every one in place.
	DeleteNodes(ctx context.Context, names []string) error
}
