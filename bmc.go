package ironpool

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PowerAction is what `node power` asks of a node's BMC.
type PowerAction string

// Power actions. Status only reads.
const (
	PowerOn     PowerAction = "on"
	PowerOff    PowerAction = "off"
	PowerReboot PowerAction = "reboot"
	PowerStatus PowerAction = "status"
)

// PowerActions lists every power action: validation and the OpenAPI enum
// read it.
var PowerActions = []PowerAction{PowerOn, PowerOff, PowerReboot, PowerStatus}

// Validate returns EINVALID (field "action") unless a is a known action.
func (a PowerAction) Validate() error {
	if slices.Contains(PowerActions, a) {
		return nil
	}
	return FieldErrorf("action", "%q is not a power action (want on, off, reboot or status)", truncate(string(a), 20))
}

// PowerState is a node's power as its BMC reports it. The words are
// Ironic's ("power on", "power off"), so a node's power_state reads the same
// whether Ironic or ironpool itself asked the BMC.
type PowerState string

// Power states.
const (
	PowerStateOn      PowerState = "power on"
	PowerStateOff     PowerState = "power off"
	PowerStateUnknown PowerState = "unknown"
)

// BootDevice is where a node boots next: the network, its disk or its
// firmware setup.
type BootDevice string

// Boot devices.
const (
	BootPXE  BootDevice = "pxe"
	BootDisk BootDevice = "disk"
	BootBIOS BootDevice = "bios"
)

// BootDevices lists every boot device: validation and the OpenAPI enum
// read it.
var BootDevices = []BootDevice{BootPXE, BootDisk, BootBIOS}

// Validate returns EINVALID (field "device") unless d is a known device.
func (d BootDevice) Validate() error {
	if slices.Contains(BootDevices, d) {
		return nil
	}
	return FieldErrorf("device", "%q is not a boot device (want pxe, disk or bios)", truncate(string(d), 20))
}

// IPMI cipher suites ironpool speaks. Suite 17 (HMAC-SHA256, AES-CBC-128)
// is the default; 3 (HMAC-SHA1, AES-CBC-128) is for BMCs without 17. Suite
// 0 (no authentication, no integrity, no confidentiality) and every other
// suite are refused, as is IPMI 1.5's plain LAN.
const (
	IPMICipherDefault = 17
	IPMICipherSHA1    = 3
)

// BMCEndpoint is a BMC address taken apart: the driver, where to reach it
// and the per-node options its query string carries.
type BMCEndpoint struct {
	// Driver is "ipmi" or "redfish".
	Driver string
	// Host and Port reach an IPMI BMC (port 623 unless given).
	Host string
	Port int
	// Cipher is the IPMI cipher suite (17 or 3).
	Cipher int
	// Root is a Redfish service's base URL, scheme://host[:port]
	// (https for a bare "redfish" scheme).
	Root string
	// System is the path of one ComputerSystem on a Redfish service
	// (/redfish/v1/Systems/1); empty means "the only one".
	System string
	// Verify is false only when the address says ?verify=false: TLS
	// certificates are checked unless a node opts out.
	Verify bool
	// Timeout bounds one BMC operation (?timeout=10s; default 20s), so one
	// slow BMC cannot hold a caller for long.
	Timeout time.Duration
}

// DefaultBMCTimeout bounds one BMC operation when the address names none.
const DefaultBMCTimeout = 20 * time.Second

// ParseBMCEndpoint checks a BMC address and its options and returns them
// taken apart. Options are query parameters: for ipmi, cipher=17|3 (suite 0
// and the others are refused) and interface=lanplus (lan, IPMI 1.5, is
// refused); for redfish, verify=true|false; for both, timeout=DURATION
// (1s-5m). Unknown options are refused, so a typo cannot silently fall back
// to a default. Errors are EINVALID naming field.
func ParseBMCEndpoint(field, addr string) (*BMCEndpoint, error) {
	u, err := ParseBMCAddress(field, addr)
	if err != nil {
		return nil, err
	}
	e := &BMCEndpoint{Driver: BMCSchemes[u.Scheme], Host: u.Hostname(), Verify: true, Timeout: DefaultBMCTimeout}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, FieldErrorf(field, "has a malformed query string")
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, FieldErrorf(field, "option %q is given %d times", truncate(k, 20), len(vs))
		}
		v := vs[0]
		switch {
		case k == "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > 5*time.Minute {
				return nil, FieldErrorf(field, "option timeout=%q must be a duration from 1s to 5m", truncate(v, 20))
			}
			e.Timeout = d
		case k == "cipher" && e.Driver == "ipmi":
			n, err := strconv.Atoi(v)
			switch {
			case err != nil:
				return nil, FieldErrorf(field, "option cipher=%q is not a number (want 17 or 3)", truncate(v, 20))
			case n == 0:
				return nil, FieldErrorf(field, "option cipher=0 is refused: IPMI cipher suite 0 has no authentication").
					WithHint("use cipher=17 (the default) or cipher=3")
			case n != IPMICipherDefault && n != IPMICipherSHA1:
				return nil, FieldErrorf(field, "option cipher=%d is not supported (want 17 or 3)", n)
			}
			e.Cipher = n
		case k == "interface" && e.Driver == "ipmi":
			if v != "lanplus" {
				return nil, FieldErrorf(field, "option interface=%q is refused: only IPMI 2.0 lanplus is spoken (plain lan sends credentials weakly protected)", truncate(v, 20))
			}
		case k == "verify" && e.Driver == "redfish":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, FieldErrorf(field, "option verify=%q must be true or false", truncate(v, 20))
			}
			e.Verify = b
		default:
			return nil, FieldErrorf(field, "option %q is not known for %s addresses", truncate(k, 20), e.Driver)
		}
	}
	switch e.Driver {
	case "ipmi":
		e.Port = 623
		if p := u.Port(); p != "" {
			e.Port, _ = strconv.Atoi(p) // ParseBMCAddress checked the range
		}
		if e.Cipher == 0 {
			e.Cipher = IPMICipherDefault
		}
		if u.Path != "" && u.Path != "/" {
			return nil, FieldErrorf(field, "an ipmi address has no path (got %q)", truncate(u.Path, 40))
		}
	case "redfish":
		scheme := "https"
		if s, ok := strings.CutPrefix(u.Scheme, "redfish+"); ok {
			scheme = s
		}
		e.Root = scheme + "://" + u.Host
		e.System = strings.TrimSuffix(u.Path, "/")
		if e.System == "/redfish/v1" || e.System == "/redfish/v1/Systems" {
			e.System = ""
		}
		if e.System != "" && !strings.HasPrefix(e.System, "/redfish/v1/") {
			return nil, FieldErrorf(field, "path %q is not under /redfish/v1/", truncate(e.System, 60))
		}
	}
	return e, nil
}

// Hardware is what a BMC tells about the machine behind it; inspection
// and discovery copy it into a node.
type Hardware struct {
	// UUID is the system's own UUID (Redfish UUID, IPMI system GUID); it
	// keys discovery, so re-running it updates rather than duplicates.
	UUID     string   `json:"uuid,omitempty"`
	Name     string   `json:"name,omitempty"`
	CPUs     int      `json:"cpus"`
	MemoryMB int64    `json:"memory_mb"`
	LocalGB  int64    `json:"local_gb"`
	CPUArch  string   `json:"cpu_arch,omitempty"`
	MACs     []string `json:"macs"`
	// Address is the BMC address of this one system.
	Address string `json:"address,omitempty"`
	// Composed is true for a system a CompositionService made.
	Composed bool `json:"composed,omitempty"`
	// Fields are facts without a node column (IPMI's manufacturer and
	// product ids, firmware revision), copied into the node's fields.
	Fields map[string]string `json:"fields,omitempty"`
}

// BMCClient is one open connection to one node's BMC. Each method is
// bounded by the endpoint's timeout and by ctx. Errors are *Error values
// whose messages never contain the password: EINVALID with field
// bmc.password when the BMC refuses the credentials, EUNAVAILABLE when it
// cannot be reached or fails, ECONFLICT when it refuses the operation.
type BMCClient interface {
	// Power runs action and returns the power state after it (for status,
	// only reads it).
	Power(ctx context.Context, action PowerAction) (PowerState, error)
	// SetBootDevice sets where the node boots: for the next boot only when
	// once is true, otherwise for every boot.
	SetBootDevice(ctx context.Context, dev BootDevice, once bool) error
	// Inspect reads the machine's hardware.
	Inspect(ctx context.Context) (*Hardware, error)
	// Close ends the session.
	Close() error
}

// BMCDialer opens BMC connections; the service holds one, so tests can
// count or fault dials without a BMC.
type BMCDialer interface {
	// DialBMC opens a connection to the BMC bmc describes. Returns
	// EINVALID (field bmc.address) for an address it cannot use.
	DialBMC(ctx context.Context, bmc BMC) (BMCClient, error)
	// DialService opens a Redfish service (discovery, composition) at
	// addr, a redfish URL whose path is ignored.
	DialService(ctx context.Context, addr, username, password string) (BMCService, error)
}

// ResourceBlock is one unit a Redfish CompositionService can compose a
// system from (compute, memory, storage, network).
type ResourceBlock struct {
	ID    string   `json:"id"`
	Path  string   `json:"path"`
	Types []string `json:"types"`
	// State is the block's CompositionState (Unused, Composed, …).
	State    string   `json:"state"`
	Zones    []string `json:"zones"`
	CPUs     int      `json:"cpus,omitempty"`
	MemoryMB int64    `json:"memory_mb,omitempty"`
	LocalGB  int64    `json:"local_gb,omitempty"`
}

// ResourceZone groups the blocks that can be composed together.
type ResourceZone struct {
	ID     string   `json:"id"`
	Path   string   `json:"path"`
	Blocks []string `json:"blocks"`
}

// Composition is what a CompositionService offers.
type Composition struct {
	Zones  []ResourceZone  `json:"zones"`
	Blocks []ResourceBlock `json:"blocks"`
}

// ComposeRequest names the blocks to compose one system from, all in Zone.
type ComposeRequest struct {
	Name   string
	Zone   string
	Blocks []string // block ids
}

// BMCService is a Redfish service behind which several systems live: what
// discovery walks and composition asks.
type BMCService interface {
	// Systems describes every ComputerSystem. Returns EUNAVAILABLE when
	// the service fails part-way, so discovery never acts on half a list.
	Systems(ctx context.Context) ([]*Hardware, error)
	// Composition lists resource zones and blocks; ENOTFOUND when the
	// service has no CompositionService.
	Composition(ctx context.Context) (*Composition, error)
	// Compose asks for a new system and returns it. ECONFLICT when the
	// service refuses.
	Compose(ctx context.Context, req ComposeRequest) (*Hardware, error)
	// Decompose deletes a composed system given its address.
	Decompose(ctx context.Context, address string) error
	// Close ends the session.
	Close() error
}

// BMCAccounts is what a BMC offers when it can hold extra user accounts:
// ironpool gives each allocation its own, so a lab never receives the
// stored administrator password. A BMCClient that cannot implements it
// not; per-allocation accounts then refuse the node.
type BMCAccounts interface {
	// CreateAccount adds an account with operator rights (power, boot,
	// console; no user management) and returns a reference to delete it
	// by. ECONFLICT when the BMC refuses (no free slot, password policy).
	CreateAccount(ctx context.Context, username, password string) (ref string, err error)
	// DeleteAccount removes the account ref names; an account already
	// gone is not an error.
	DeleteAccount(ctx context.Context, ref string) error
}

// UseBMC opens n's BMC with d, runs fn and closes it. The per-node field
// ipmi_cipher_suite chooses the IPMI suite when the address names none.
// Errors keep their code and are prefixed with the node's name, so a
// report over many nodes says which one failed.
func UseBMC(ctx context.Context, d BMCDialer, n *Node, fn func(BMCClient) error) error {
	if d == nil {
		return Errorf(EUNAVAILABLE, "node %s: this server drives no BMCs", n.Name)
	}
	bmc := n.BMC
	if c, ok := n.Fields["ipmi_cipher_suite"]; ok && strings.HasPrefix(bmc.Address, "ipmi://") && !strings.Contains(bmc.Address, "cipher=") {
		sep := "?"
		if strings.Contains(bmc.Address, "?") {
			sep = "&"
		}
		bmc.Address += sep + "cipher=" + url.QueryEscape(c)
	}
	c, err := d.DialBMC(ctx, bmc)
	if err != nil {
		return NodeBMCError(n.Name, err)
	}
	defer c.Close()
	if err := fn(c); err != nil {
		return NodeBMCError(n.Name, err)
	}
	return nil
}

// NodeBMCError prefixes err's message with the node's name, keeping its code
// (and its field when that is a BMC field). A foreign error becomes
// EUNAVAILABLE without its text, which could carry anything.
func NodeBMCError(name string, err error) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Message = "node " + name + ": " + e.Message
		if c.Field != "" && !strings.HasPrefix(c.Field, "bmc") {
			c.Field = ""
		}
		return &c
	}
	return Errorf(EUNAVAILABLE, "node %s: BMC operation failed", name)
}

// Node fields that hold an allocation's own BMC account (per-allocation
// BMC credentials). The password is sealed with the server's key, bound
// to the node and the allocation (LeaseAAD).
const (
	FieldLeaseAllocation = "bmc_lease_allocation"
	FieldLeaseUser       = "bmc_lease_user"
	FieldLeaseAccount    = "bmc_lease_account"
	FieldLeasePassword   = "bmc_lease_password"
)

// LeaseFields lists the per-allocation account fields.
var LeaseFields = []string{FieldLeaseAllocation, FieldLeaseUser, FieldLeaseAccount, FieldLeasePassword}

// LeaseAAD binds a sealed per-allocation password to its node and
// allocation, so a ciphertext copied elsewhere does not open.
func LeaseAAD(n *Node, allocID string) string {
	return "bmc_lease:" + n.UUID + ":" + allocID
}

// InPools reports whether pool is listed in pools ("*" lists every pool).
func InPools(pools []string, pool string) bool {
	for _, p := range pools {
		if p == "*" || p == pool {
			return true
		}
	}
	return false
}

// HealthProbe is one BMC health-check result.
type HealthProbe struct {
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	PowerState string    `json:"power_state,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// String describes a probe for tables.
func (p HealthProbe) String() string {
	if p.OK {
		return p.Time.UTC().Format(time.RFC3339) + " ok " + p.PowerState
	}
	return p.Time.UTC().Format(time.RFC3339) + " FAILED " + p.Error
}

// NodeHealth is what the BMC health check knows of one node.
type NodeHealth struct {
	Node string `json:"node"`
	// Failures and Successes count the current run of results.
	Failures  int          `json:"consecutive_failures"`
	Successes int          `json:"consecutive_successes"`
	Last      *HealthProbe `json:"last,omitempty"`
	// Flagged is set for a held node whose BMC fails: it is reported,
	// never taken from its allocation.
	Flagged     bool          `json:"flagged,omitempty"`
	Quarantined bool          `json:"quarantined,omitempty"`
	FailingFrom time.Time     `json:"failing_since,omitzero"`
	History     []HealthProbe `json:"history"`
}

// HealthCounts are the health check's counters, for /metrics.
type HealthCounts struct {
	Probes, Failures, Quarantines, Recoveries uint64
}

// QuarantinePrefix starts the maintenance reason the health check writes;
// only a reason with it is ever cleared by the health check, so an
// operator's own maintenance stays.
const QuarantinePrefix = "bmc unreachable since "
