package molteniron

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// Node fields the listener keeps so it can answer exactly what Molten Iron
// would have answered. They live in the node's free-form fields under "mi."
// so that `ironpool node show` explains them and the native API never needs
// to know about them.
const (
	// FieldName holds the Molten Iron name when it is not a valid ironpool
	// node name (and was therefore mapped; see MapName).
	FieldName = "mi.name"
	// FieldNodePool holds the Molten Iron node_pool when its spelling differs
	// from the ironpool pool it maps to (see MapPool).
	FieldNodePool = "mi.node_pool"
	// FieldAllocationPool holds the comma-separated allocation_pool IPs, as
	// given, because the allocate reply hands them back.
	FieldAllocationPool = "mi.allocation_pool"
	// FieldBlobKeys lists the blob's keys in order with where each value is
	// stored and how it is typed (see blobKey); absent when the blob is the
	// seven hardware keys of add_baremetal, which is what ironpool's own
	// nodes show.
	FieldBlobKeys = "mi.blob_keys"
	// FieldPortHWAddr keeps port_hwaddr as written when ironpool's
	// normalized MAC spells it differently (upper case, dashes).
	FieldPortHWAddr = "mi.port_hwaddr"
	// MetaOwner is the allocation metadata key with the Molten Iron owner
	// name, shown as "provisioned".
	MetaOwner = "mi.owner"
	// statusReason prefixes the maintenance reason set by set_field status,
	// so the status reads back as it was written.
	statusReason = "molteniron: status="
)

var (
	validName   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
	invalidRuns = regexp.MustCompile(`[^A-Za-z0-9._:-]+`)
	archPattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
)

// mapName turns any Molten Iron string into a valid ironpool name. A valid
// name is kept as it is; anything else (spaces, slashes, empty, too long)
// becomes its characters with every run of invalid ones replaced by '-',
// cut to 54 characters, plus '-' and 8 hex digits of its SHA-256, so two
// different inputs never map to one name and the mapping is the same on
// every replica and every restart.
func mapName(s string) string {
	if len(s) <= ironpool.MaxNameLen && validName.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	base := invalidRuns.ReplaceAllString(s, "-")
	base = strings.TrimLeft(base, "._:-")
	if len(base) > 54 {
		base = base[:54]
	}
	if base == "" {
		base = "mi"
	}
	return base + "-" + hex.EncodeToString(sum[:4])
}

// MapName is the ironpool node name of a Molten Iron node name.
func MapName(name string) string { return mapName(name) }

// MapOwner is the ironpool owner of a Molten Iron owner_name: the same name
// when ironpool accepts it, else the mapped form of mapName. Owner names
// stay case-sensitive, as in ironpool (upstream on MariaDB compared them
// case-insensitively).
func MapOwner(owner string) string { return mapName(owner) }

// MapPool is the ironpool pool of a Molten Iron node_pool: lower-cased
// first, because upstream's MariaDB compared pools case-insensitively (the
// protocol's "Default" and the CLI's "default" are one pool there), then
// mapped like names. "Default" as an allocate argument is handled by the
// caller: it means any pool.
func MapPool(pool string) string { return mapName(strings.ToLower(pool)) }

// bmcAddress turns an ipmi_ip into an ipmi:// BMC address.
func bmcAddress(ip string) string {
	if strings.Contains(ip, ":") && net.ParseIP(ip) != nil {
		return "ipmi://[" + ip + "]"
	}
	return "ipmi://" + ip
}

// ipmiIP is the inverse of bmcAddress; for a non-ipmi address (a Redfish
// node added through the native API) it is the host part.
func ipmiIP(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return strings.TrimPrefix(addr, "ipmi://")
	}
	h := u.Host
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return h
}

// The seven hardware keys of add_baremetal, in the order upstream's server
// builds the blob (so json.dumps prints them in this order).
var hardwareKeys = []string{"ipmi_user", "ipmi_password", "port_hwaddr", "disk_gb", "cpu_arch", "ram_mb", "cpus"}

// blobKey is one entry of FieldBlobKeys: a blob key, whether its value is
// held by a native node attribute (BMC, MAC, specs) or by a free-form field
// of the same name, and whether the stored text is the value itself (a JSON
// string) or JSON text (numbers, lists, objects...).
type blobKey struct {
	Key    string
	Native bool
	JSON   bool
}

func (k blobKey) String() string {
	loc := "f"
	if k.Native {
		loc = "n"
	}
	enc := "s"
	if k.JSON {
		enc = "j"
	}
	return k.Key + "=" + loc + enc
}

// defaultBlobKeys is the layout of an add_baremetal node: what a node
// added through ironpool's own API shows.
var defaultBlobKeys = []blobKey{
	{"ipmi_user", true, false}, {"ipmi_password", true, false}, {"port_hwaddr", true, false},
	{"disk_gb", true, true}, {"cpu_arch", true, false}, {"ram_mb", true, true}, {"cpus", true, true},
}

func blobKeys(n *ironpool.Node) []blobKey {
	s, ok := n.Fields[FieldBlobKeys]
	if !ok {
		return defaultBlobKeys
	}
	var out []blobKey
	for _, e := range strings.Split(s, ",") {
		k, loc, ok := strings.Cut(e, "=")
		if !ok || len(loc) != 2 || k == "" {
			continue
		}
		out = append(out, blobKey{Key: k, Native: loc[0] == 'n', JSON: loc[1] == 'j'})
	}
	return out
}

func setBlobKeys(n *ironpool.Node, keys []blobKey) {
	if slices.Equal(keys, defaultBlobKeys) {
		delete(n.Fields, FieldBlobKeys)
		return
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.String()
	}
	n.Fields[FieldBlobKeys] = strings.Join(parts, ",")
}

// nativeText reads the native attribute behind a hardware key.
func nativeText(n *ironpool.Node, key string) string {
	switch key {
	case "ipmi_user":
		return n.BMC.Username
	case "ipmi_password":
		return n.BMC.Password
	case "port_hwaddr":
		if len(n.MACs) == 0 {
			return ""
		}
		if orig := n.Fields[FieldPortHWAddr]; orig != "" {
			if m, err := ironpool.NormalizeMAC("", orig); err == nil && m == n.MACs[0] {
				return orig
			}
		}
		return n.MACs[0]
	case "cpu_arch":
		return n.CPUArch
	case "cpus":
		return strconv.Itoa(n.CPUs)
	case "ram_mb":
		return strconv.FormatInt(n.MemoryMB, 10)
	case "disk_gb":
		return strconv.FormatInt(n.LocalGB, 10)
	}
	return ""
}

// Blob rebuilds the Molten Iron blob of n: the listed keys in order, then
// any free-form field a native client added (sorted), as strings.
func Blob(n *ironpool.Node) Object {
	keys := blobKeys(n)
	blob := make(Object, 0, len(keys))
	listed := map[string]bool{}
	for _, k := range keys {
		listed[k.Key] = true
		var text string
		if k.Native {
			text = nativeText(n, k.Key)
		} else {
			text = n.Fields[k.Key]
		}
		var v any = text
		if k.JSON {
			if d, err := Decode([]byte(text)); err == nil {
				v = d
			}
		}
		blob = append(blob, Member{k.Key, v})
	}
	var extra []string
	for k := range n.Fields {
		if !listed[k] && !strings.HasPrefix(k, "mi.") {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		blob = append(blob, Member{k, n.Fields[k]})
	}
	return blob
}

// intText returns the decimal text of v when v is a whole JSON number.
func intText(v any) (string, bool) {
	num, ok := v.(json.Number)
	if !ok || strings.ContainsAny(string(num), ".eE") {
		return "", false
	}
	x, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return "", false
	}
	return strconv.FormatInt(x, 10), true
}

// putBlob stores blob key k = v on n, on a native attribute when the value
// fits it (so ironpool can match on specs and hand out BMC credentials),
// else in a free-form field. It returns how it stored it. A key moving from
// native to a field clears the native attribute, so a spec is never stale.
func putBlob(n *ironpool.Node, key string, v any) (blobKey, error) {
	bk := blobKey{Key: key}
	str, isStr := v.(string)
	num, isInt := intText(v)
	native := false
	switch key {
	case "ipmi_user":
		if isStr {
			n.BMC.Username, native = str, true
		} else if isInt {
			n.BMC.Username, native, bk.JSON = num, true, true
		}
	case "ipmi_password":
		// A password never goes into a plain field: whatever its type, it
		// is kept sealed in the BMC password.
		native = true
		if isStr {
			n.BMC.Password = str
		} else {
			n.BMC.Password, bk.JSON = string(EncodeJSON(v)), true
		}
	case "port_hwaddr":
		if isStr {
			if m, err := ironpool.NormalizeMAC("port_hwaddr", str); err == nil {
				if len(n.MACs) == 0 {
					n.MACs = []string{m}
				} else {
					n.MACs = append([]string{m}, slices.DeleteFunc(slices.Clone(n.MACs[1:]), func(x string) bool { return x == m })...)
				}
				if m != str {
					n.Fields[FieldPortHWAddr] = str
				} else {
					delete(n.Fields, FieldPortHWAddr)
				}
				native = true
			}
		}
		if !native && len(n.MACs) > 0 {
			n.MACs = slices.Clone(n.MACs[1:])
			delete(n.Fields, FieldPortHWAddr)
		}
	case "cpu_arch":
		if isStr && archPattern.MatchString(str) {
			n.CPUArch, native = str, true
		} else {
			n.CPUArch = ""
		}
	case "cpus", "ram_mb", "disk_gb":
		text, asJSON := num, isInt
		if isStr {
			text = str
		}
		x, err := strconv.ParseInt(text, 10, 64)
		if (isInt || isStr) && err == nil && x >= 0 && x <= 1<<30 && strconv.FormatInt(x, 10) == text {
			native, bk.JSON = true, asJSON
		} else {
			x = 0
		}
		switch key {
		case "cpus":
			n.CPUs = int(x)
		case "ram_mb":
			n.MemoryMB = x
		case "disk_gb":
			n.LocalGB = x
		}
	}
	if native {
		bk.Native = true
		delete(n.Fields, key)
		return bk, nil
	}
	if strings.HasPrefix(key, "mi.") {
		return bk, fmt.Errorf("blob key %q is reserved: keys starting with \"mi.\" hold ironpool's Molten Iron bookkeeping", key)
	}
	if err := ironpool.ValidateFieldKey("blob", key); err != nil {
		return bk, fmt.Errorf("blob key %q cannot be stored: ironpool field keys are 1-%d letters, digits, '_', '.', ':' or '-', starting with a letter or '_'", key, ironpool.MaxFieldKeyLen)
	}
	text := str
	if !isStr {
		text, bk.JSON = string(EncodeJSON(v)), true
	}
	if len(text) > ironpool.MaxValueLen {
		return bk, fmt.Errorf("blob key %s: value is %d bytes; the limit is %d", key, len(text), ironpool.MaxValueLen)
	}
	n.Fields[key] = text
	return bk, nil
}

// setBlob stores a whole blob on a new node.
func setBlob(n *ironpool.Node, blob Object) error {
	keys := make([]blobKey, 0, len(blob))
	for _, m := range blob {
		bk, err := putBlob(n, m.Key, m.Value)
		if err != nil {
			return err
		}
		keys = append(keys, bk)
	}
	setBlobKeys(n, keys)
	if v := n.Fields[FieldBlobKeys]; len(v) > ironpool.MaxValueLen {
		return fmt.Errorf("blob has too many keys (%d): ironpool keeps at most %d bytes of key list", len(blob), ironpool.MaxValueLen)
	}
	return nil
}

// status derives Molten Iron's status from ironpool's state: a free node is
// "ready", a node taken out with set_field status reads back as written,
// and everything else (allocated, cleaning, maintenance, error) is "dirty",
// which upstream's allocate never picks either.
func status(n *ironpool.Node) string {
	switch {
	case n.State == ironpool.NodeAvailable:
		return "ready"
	case n.State == ironpool.NodeMaintenance && strings.HasPrefix(n.MaintenanceReason, statusReason):
		return strings.TrimPrefix(n.MaintenanceReason, statusReason)
	default:
		return "dirty"
	}
}

// isoTime is upstream's datetime.isoformat() of a second-precision UTC
// MySQL TIMESTAMP.
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

// row is one node as Molten Iron shows it.
type row struct {
	node        *ironpool.Node
	ID          int64
	Name        string
	IPMIIP      string
	Blob        Object
	Status      string
	Provisioned any // owner name; "" after a release; nil if never allocated
	allocatedAt time.Time
	NodePool    string
	AllocPool   string
}

// rowOf presents n. owners maps allocation ids to the Molten Iron owner name
// recorded at allocate time.
func rowOf(n *ironpool.Node, owners map[string]string) *row {
	r := &row{node: n, ID: n.ID, Name: n.Name, IPMIIP: ipmiIP(n.BMC.Address), Blob: Blob(n),
		Status: status(n), NodePool: n.Pool, AllocPool: n.Fields[FieldAllocationPool]}
	if v, ok := n.Fields[FieldName]; ok && mapName(v) == n.Name {
		r.Name = v
	}
	if v, ok := n.Fields[FieldNodePool]; ok && MapPool(v) == n.Pool {
		r.NodePool = v
	}
	switch {
	case n.AllocationID != "" || n.State.Held():
		o, ok := owners[n.AllocationID]
		if !ok {
			o = n.Owner
		}
		r.Provisioned, r.allocatedAt = o, n.LastAllocatedAt
	case n.LastAllocatedAt.IsZero():
		r.Provisioned = nil
	default:
		r.Provisioned = ""
	}
	return r
}

// timestamp is the reply's timestamp: the allocation time, or null.
func (r *row) timestamp() any {
	if r.allocatedAt.IsZero() {
		return nil
	}
	return isoTime(r.allocatedAt)
}

// object is the NODE of allocate replies, with exactly upstream's keys.
func (r *row) object() Object {
	return Object{
		{"id", r.ID},
		{"name", r.Name},
		{"ipmi_ip", r.IPMIIP},
		{"blob", string(EncodeJSON(r.Blob))},
		{"status", r.Status},
		{"provisioned", r.Provisioned},
		{"timestamp", r.timestamp()},
		{"node_pool", r.NodePool},
		{"allocation_pool", r.AllocPool},
	}
}

// column returns a Nodes column by name, as get_field reads it.
func (r *row) column(name string) (any, bool) {
	switch name {
	case "id":
		return r.ID, true
	case "name":
		return r.Name, true
	case "ipmi_ip":
		return r.IPMIIP, true
	case "blob":
		return string(EncodeJSON(r.Blob)), true
	case "status":
		return r.Status, true
	case "provisioned":
		return r.Provisioned, true
	case "timestamp":
		return r.timestamp(), true
	case "node_pool":
		return r.NodePool, true
	}
	return nil, false
}
