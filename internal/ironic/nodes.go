package ironic

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/driverinfo"
)

// NodeInfo is what ironpool needs to know about one Ironic node. Secrets in
// DriverInfo come back from Ironic masked as "******".
type NodeInfo struct {
	UUID          string
	Name          string
	ResourceClass string
	CPUs          int
	MemoryMB      int64
	LocalGB       int64
	CPUArch       string
	// Properties is Ironic's raw properties map; CPUs..CPUArch are parsed
	// from it (Ironic stores numbers or numeric strings alike).
	Properties           map[string]any
	Traits               []string
	Driver               string
	DriverInfo           map[string]any
	ProvisionState       string
	TargetProvisionState string
	PowerState           string
	TargetPowerState     string
	Maintenance          bool
	MaintenanceReason    string
	InstanceUUID         string
	Owner                string
	Lessee               string
	LastError            string
	Extra                map[string]any
	// MACs are the node's port addresses, lower-case, sorted.
	MACs []string
}

// ManagedBy returns extra.managed_by ("ironpool" for nodes Register made).
func (n NodeInfo) ManagedBy() string {
	s, _ := n.Extra["managed_by"].(string)
	return s
}

// listFields limits node lists to what NodeInfo holds, which keeps a
// thousand-node sync cheap. allocation_uuid is deliberately absent: Ironic
// 21.4 answers fields=allocation_uuid with HTTP 500.
var listFields = []string{
	"uuid", "name", "resource_class", "properties", "traits", "driver", "driver_info",
	"provision_state", "target_provision_state", "power_state", "target_power_state",
	"maintenance", "maintenance_reason", "instance_uuid", "owner", "lessee",
	"last_error", "extra",
}

// nodeQuery builds node list query strings. It exists because gophercloud's
// nodes.ListOpts drops false booleans (maintenance=false, associated=false)
// and has no lessee filter.
type nodeQuery url.Values

// ToNodeListQuery implements nodes.ListOptsBuilder.
func (q nodeQuery) ToNodeListQuery() (string, error) {
	return "?" + url.Values(q).Encode(), nil
}

// ToNodeListDetailQuery implements nodes.ListOptsBuilder.
func (q nodeQuery) ToNodeListDetailQuery() (string, error) { return q.ToNodeListQuery() }

// ListNodes returns every node Ironic has, with the MACs of their ports
// (two paginated listings in all, not one request per node). Returns
// EUNAVAILABLE when Ironic cannot be reached.
func (c *Client) ListNodes(ctx context.Context) ([]NodeInfo, error) {
	q := nodeQuery{}
	for k, v := range c.filter {
		q[k] = v
	}
	return c.listNodes(ctx, q)
}

// filterKeys are the node list filters Ironic's API takes that a sync may
// be limited by (serve --ironic-filter).
var filterKeys = []string{"conductor_group", "owner", "lessee", "resource_class", "driver", "fault", "provision_state"}

// ParseFilter reads "key=value,key=value" into node list filters, refusing
// keys Ironic's node list does not take, so a typo does not silently sync
// everything.
func ParseFilter(s string) (url.Values, error) {
	out := url.Values{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || v == "" || !slices.Contains(filterKeys, k) {
			return nil, ironpool.FieldErrorf("ironic-filter", "%q is not KEY=VALUE with KEY one of %s", kv, strings.Join(filterKeys, ", "))
		}
		out.Add(k, v)
	}
	return out, nil
}

// ManageableNodes returns the nodes ironpool could adopt: active, without an
// instance_uuid, with a resource_class. The caller drops those already in
// the pool.
func (c *Client) ManageableNodes(ctx context.Context) ([]NodeInfo, error) {
	all, err := c.listNodes(ctx, nodeQuery{"provision_state": {"active"}, "associated": {"False"}})
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, n := range all {
		// Re-check: the filters are Ironic's, the rule is ironpool's.
		if n.ProvisionState == "active" && n.InstanceUUID == "" && n.ResourceClass != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

func (c *Client) listNodes(ctx context.Context, q nodeQuery) ([]NodeInfo, error) {
	q["fields"] = []string{strings.Join(listFields, ",")}
	var out []NodeInfo
	err := c.paginate(ctx, "nodes", url.Values(q), "list nodes", func(raw json.RawMessage) error {
		var page []nodes.Node
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		for _, n := range page {
			out = append(out, nodeInfo(n))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	macs, err := c.portMACs(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].MACs = macs[out[i].UUID]
	}
	return out, nil
}

// portMACs lists ports (of one node, or all when nodeUUID is empty) and
// groups their addresses by node UUID.
func (c *Client) portMACs(ctx context.Context, nodeUUID string) (map[string][]string, error) {
	q := url.Values{"fields": {"address,node_uuid"}}
	if nodeUUID != "" {
		q.Set("node_uuid", nodeUUID)
	}
	byNode := map[string][]string{}
	err := c.paginate(ctx, "ports", q, "list ports", func(raw json.RawMessage) error {
		var page []struct {
			Address  string `json:"address"`
			NodeUUID string `json:"node_uuid"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return err
		}
		for _, p := range page {
			byNode[p.NodeUUID] = append(byNode[p.NodeUUID], strings.ToLower(p.Address))
		}
		return nil
	})
	for _, m := range byNode {
		slices.Sort(m)
	}
	return byNode, err
}

// paginate GETs /v1/<collection> page by page, handing each page's items to
// fn. It pages by marker with its own query, because Ironic's "next" link
// drops filters and gophercloud's pagers look for a "<collection>_links"
// key Ironic does not send. The marker is taken from the "next" link, which
// works even when fields= leaves out the uuid.
func (c *Client) paginate(ctx context.Context, collection string, q url.Values, op string, fn func(json.RawMessage) error) error {
	q.Set("limit", strconv.Itoa(c.pageSize))
	seen := map[string]bool{}
	for {
		var body map[string]json.RawMessage
		u := c.sc.ServiceURL(collection) + "?" + q.Encode()
		if _, err := c.sc.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
			return mapError(ctx, err, op)
		}
		if err := fn(body[collection]); err != nil {
			return ironpool.Errorf(ironpool.EINTERNAL, "ironic: %s: unreadable reply: %v", op, err)
		}
		var next string
		_ = json.Unmarshal(body["next"], &next)
		if next == "" {
			return nil
		}
		nu, err := url.Parse(next)
		marker := ""
		if err == nil {
			marker = nu.Query().Get("marker")
		}
		if marker == "" || seen[marker] {
			return nil // defensive: never loop forever on a bad link
		}
		seen[marker] = true
		q.Set("marker", marker)
	}
}

// GetNode returns one node (by UUID or name) with its MACs, or ENOTFOUND.
func (c *Client) GetNode(ctx context.Context, ident string) (NodeInfo, error) {
	n, err := c.getNode(ctx, ident)
	if err != nil {
		return NodeInfo{}, err
	}
	macs, err := c.portMACs(ctx, n.UUID)
	if err != nil {
		return NodeInfo{}, err
	}
	n.MACs = macs[n.UUID]
	return n, nil
}

// getNode reads a node without its ports, for polling.
func (c *Client) getNode(ctx context.Context, ident string) (NodeInfo, error) {
	if ident == "" {
		return NodeInfo{}, ironpool.FieldErrorf("ironic_uuid", "is required")
	}
	n, err := nodes.Get(ctx, c.sc, ident).Extract()
	if err != nil {
		return NodeInfo{}, mapError(ctx, err, "get node "+ident)
	}
	return nodeInfo(*n), nil
}

func nodeInfo(n nodes.Node) NodeInfo {
	info := NodeInfo{
		UUID:                 n.UUID,
		Name:                 n.Name,
		ResourceClass:        n.ResourceClass,
		Properties:           n.Properties,
		Traits:               n.Traits,
		Driver:               n.Driver,
		DriverInfo:           n.DriverInfo,
		ProvisionState:       n.ProvisionState,
		TargetProvisionState: n.TargetProvisionState,
		PowerState:           n.PowerState,
		TargetPowerState:     n.TargetPowerState,
		Maintenance:          n.Maintenance,
		MaintenanceReason:    n.MaintenanceReason,
		InstanceUUID:         n.InstanceUUID,
		Owner:                n.Owner,
		Lessee:               n.Lessee,
		LastError:            n.LastError,
		Extra:                n.Extra,
	}
	info.CPUs = int(number(n.Properties["cpus"]))
	info.MemoryMB = number(n.Properties["memory_mb"])
	info.LocalGB = number(n.Properties["local_gb"])
	info.CPUArch, _ = n.Properties["cpu_arch"].(string)
	if info.Traits == nil {
		info.Traits = []string{}
	}
	slices.Sort(info.Traits)
	return info
}

// number reads an Ironic property that may be a JSON number or a numeric
// string ("8192"); anything else is 0.
func number(v any) int64 {
	switch x := v.(type) {
	case float64:
		if x > 0 && x < math.MaxInt64 {
			return int64(x)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil && f > 0 && f < math.MaxInt64 {
			return int64(f)
		}
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return i
		}
	}
	return 0
}

// ToPoolNode maps an Ironic node to an ironpool Node for import. Name falls
// back to the Ironic UUID for unnamed nodes; the BMC password is left empty
// because Ironic only ever shows it masked. State is a first guess from the
// provision state, which the importer may override.
func ToPoolNode(n NodeInfo) *ironpool.Node {
	name := n.Name
	if name == "" {
		name = n.UUID
	}
	bmc, _ := driverinfo.ToBMC(n.Driver, n.DriverInfo) // an unusable BMC stays empty
	macs := slices.Clone(n.MACs)
	if macs == nil {
		macs = []string{}
	}
	traits := slices.Clone(n.Traits)
	if traits == nil {
		traits = []string{}
	}
	return &ironpool.Node{
		Name:              name,
		Pool:              ironpool.DefaultPool,
		State:             poolState(n),
		CPUs:              n.CPUs,
		MemoryMB:          n.MemoryMB,
		LocalGB:           n.LocalGB,
		CPUArch:           n.CPUArch,
		ResourceClass:     n.ResourceClass,
		Traits:            traits,
		MACs:              macs,
		BMC:               ironpool.BMC{Address: bmc.Address, Username: bmc.Username},
		Fields:            map[string]string{},
		MaintenanceReason: n.MaintenanceReason,
		LastError:         n.LastError,
		IronicUUID:        n.UUID,
		ManagedBy:         n.ManagedBy(),
		ProvisionState:    n.ProvisionState,
		PowerState:        n.PowerState,
	}
}

// poolState guesses ironpool's state from Ironic's.
func poolState(n NodeInfo) ironpool.NodeState {
	switch {
	case n.Maintenance:
		return ironpool.NodeMaintenance
	case failureStates[n.ProvisionState]:
		return ironpool.NodeError
	}
	switch n.ProvisionState {
	case "available":
		return ironpool.NodeAvailable
	case "cleaning", "clean wait", "clean hold":
		return ironpool.NodeCleaning
	case "deploying", "wait call-back", "deploy hold":
		return ironpool.NodeDeploying
	case "active", "rescue", "rescuing", "rescue wait", "unrescuing", "adopting":
		return ironpool.NodeDeployed
	default: // enroll, verifying, manageable, inspecting, inspect wait, deleting
		return ironpool.NodeEnrolling
	}
}
