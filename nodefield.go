package ironpool

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// FieldKind is the shape of a node field's value, which decides how its text
// form is parsed and how typed outputs (the Ansible inventory, the node file)
// carry it.
type FieldKind int

// Field kinds.
const (
	FieldText FieldKind = iota // a string
	FieldInt                   // a whole number, written in decimal
	FieldList                  // a list of strings, written comma-separated
)

// Carrier names the places outside the API a field travels to, so a handoff
// format or the node file gains a field by adding a flag here, not by a list
// kept somewhere else.
type Carrier uint

// Carriers.
const (
	// CarryEnv fields become IRONPOOL_NODE_<i>_<NAME> in `-o env`.
	CarryEnv Carrier = 1 << iota
	// CarryAnsible fields become host variables in `-o ansible`.
	CarryAnsible
	// CarryNodeFile fields are keys of ironpool's own node import file.
	CarryNodeFile
)

// NodeField describes one well-known field of a Node: the name `node get`,
// `node set`, audit events and the API use for it, how to read it as text,
// how to parse and check it, and where it travels. The table NodeFields is
// the one list of node fields; get/set, the audit diff, the Ironic sync
// comparison, the Molten Iron mapping, the handoff formats and the node file
// all go through it, so a new field is added in one place.
type NodeField struct {
	Name string
	// Go is the field's path in the Node struct ("BMC.Address"); the table
	// test uses it to prove that every Node field is listed.
	Go   string
	Kind FieldKind
	// ReadOnly fields change only through the operations that own them
	// (allocate, release, maintenance, the Ironic reconciler).
	ReadOnly bool
	// Secret fields are masked for callers who may not read them.
	Secret bool
	Carry  Carrier
	// MoltenIron is the field's name in Molten Iron's protocol (ipmi_ip for
	// bmc.address), so the listener's errors name what its users sent;
	// empty when it is the same or Molten Iron has none.
	MoltenIron string
	get        func(*Node) string
	// set stores the parsed text; it checks the form (a number is a
	// number), and check below the rules.
	set func(*Node, string)
	// equal compares the field of two nodes, when Get alone does not
	// say everything (nil: compare Get).
	equal func(a, b *Node) bool
	// check validates the field as stored, normalizing it in place; the
	// error names prefix+Name. Node.Validate runs every check in table order.
	check func(n *Node, prefix string) error
}

// Get returns the field of n as text: numbers in decimal, lists joined with
// commas.
func (f *NodeField) Get(n *Node) string { return f.get(n) }

// Value returns the field of n typed by its kind (int64, []string or
// string), for formats that keep types.
func (f *NodeField) Value(n *Node) any {
	switch f.Kind {
	case FieldInt:
		x, _ := strconv.ParseInt(f.get(n), 10, 64)
		return x
	case FieldList:
		return splitList(f.get(n))
	}
	return f.get(n)
}

// Set parses v into the field of n and checks it with the validators
// Node.Validate uses. It returns EINVALID naming the field for a read-only
// field, a malformed value or one the rules refuse.
func (f *NodeField) Set(n *Node, v string) error {
	if f.ReadOnly {
		return (&Error{Code: EINVALID, Field: f.Name, Message: "cannot be set directly"}).
			WithHint("state changes go through allocate, release and maintenance")
	}
	if err := f.Parse(n, v); err != nil {
		return err
	}
	if f.check != nil {
		return f.check(n, "")
	}
	return nil
}

// Parse stores v into the field of n, checking only its form (a whole,
// non-negative number for numbers), for readers such as the node file that
// leave the rules to the server. It also sets uuid, which the node file
// may carry; other read-only fields have no text form to read.
func (f *NodeField) Parse(n *Node, v string) error {
	if f.set == nil {
		return FieldErrorf(f.Name, "cannot be read from text")
	}
	if f.Kind == FieldInt {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return FieldErrorf(f.Name, "%q is not a whole number", truncate(v, 40))
		}
		if x < 0 {
			return FieldErrorf(f.Name, "must not be negative (got %d)", x)
		}
	}
	f.set(n, v)
	return nil
}

func splitList(v string) []string {
	if v == "" {
		return []string{}
	}
	return strings.Split(v, ",")
}

func atoi(v string) int64 { x, _ := strconv.ParseInt(v, 10, 64); return x }

// NodeFields is the table of well-known node fields, in the order Validate
// checks them and audit events list them.
var NodeFields = []*NodeField{
	{Name: "name", Go: "Name", Carry: CarryEnv | CarryNodeFile,
		get:   func(n *Node) string { return n.Name },
		set:   func(n *Node, v string) { n.Name = v },
		check: func(n *Node, p string) error { return ValidateName(p+"name", n.Name) }},
	{Name: "uuid", Go: "UUID", ReadOnly: true, Carry: CarryEnv | CarryAnsible | CarryNodeFile,
		get: func(n *Node) string { return n.UUID },
		set: func(n *Node, v string) { n.UUID = v }},
	{Name: "pool", Go: "Pool", Carry: CarryNodeFile, MoltenIron: "node_pool",
		get: func(n *Node) string { return n.Pool },
		set: func(n *Node, v string) { n.Pool = v },
		check: func(n *Node, p string) error {
			if n.Pool == "" {
				n.Pool = DefaultPool
			}
			return ValidateName(p+"pool", n.Pool)
		}},
	{Name: "state", Go: "State", ReadOnly: true,
		get: func(n *Node) string { return string(n.State) }},
	{Name: "cpus", Go: "CPUs", Kind: FieldInt, Carry: CarryEnv | CarryAnsible | CarryNodeFile,
		get: func(n *Node) string { return strconv.Itoa(n.CPUs) },
		set: func(n *Node, v string) { n.CPUs = int(min(atoi(v), 1<<40)) },
		check: func(n *Node, p string) error {
			if n.CPUs < 0 {
				return FieldErrorf(p+"cpus", "must not be negative (got %d)", n.CPUs)
			}
			if n.CPUs > MaxCPUs {
				return FieldErrorf(p+"cpus", "is implausibly large (%d); the limit is %d", n.CPUs, MaxCPUs)
			}
			return nil
		}},
	{Name: "memory_mb", Go: "MemoryMB", Kind: FieldInt, Carry: CarryEnv | CarryAnsible | CarryNodeFile, MoltenIron: "ram_mb",
		get:   func(n *Node) string { return strconv.FormatInt(n.MemoryMB, 10) },
		set:   func(n *Node, v string) { n.MemoryMB = atoi(v) },
		check: func(n *Node, p string) error { return checkSize(p+"memory_mb", n.MemoryMB) }},
	{Name: "local_gb", Go: "LocalGB", Kind: FieldInt, Carry: CarryEnv | CarryAnsible | CarryNodeFile, MoltenIron: "disk_gb",
		get:   func(n *Node) string { return strconv.FormatInt(n.LocalGB, 10) },
		set:   func(n *Node, v string) { n.LocalGB = atoi(v) },
		check: func(n *Node, p string) error { return checkSize(p+"local_gb", n.LocalGB) }},
	{Name: "cpu_arch", Go: "CPUArch", Carry: CarryEnv | CarryAnsible | CarryNodeFile,
		get: func(n *Node) string { return n.CPUArch },
		set: func(n *Node, v string) { n.CPUArch = v },
		check: func(n *Node, p string) error {
			if n.CPUArch != "" && (len(n.CPUArch) > 32 || !archPattern.MatchString(n.CPUArch)) {
				return FieldErrorf(p+"cpu_arch", "%q must be lower-case letters, digits or '_' (e.g. x86_64, aarch64)", truncate(n.CPUArch, 40))
			}
			return nil
		}},
	{Name: "resource_class", Go: "ResourceClass", Carry: CarryNodeFile,
		get: func(n *Node) string { return n.ResourceClass },
		set: func(n *Node, v string) { n.ResourceClass = v },
		check: func(n *Node, p string) error {
			if n.ResourceClass == "" {
				return nil
			}
			return ValidateName(p+"resource_class", n.ResourceClass)
		}},
	{Name: "traits", Go: "Traits", Kind: FieldList, Carry: CarryNodeFile,
		get: func(n *Node) string { return strings.Join(n.Traits, ",") },
		set: func(n *Node, v string) { n.Traits = splitList(v) },
		check: func(n *Node, p string) error {
			traits, err := NormalizeTraits(p+"traits", n.Traits)
			if err == nil {
				n.Traits = traits
			}
			return err
		}},
	{Name: "macs", Go: "MACs", Kind: FieldList, Carry: CarryEnv | CarryAnsible | CarryNodeFile, MoltenIron: "port_hwaddr",
		get:   func(n *Node) string { return strings.Join(n.MACs, ",") },
		set:   func(n *Node, v string) { n.MACs = splitList(v) },
		check: checkMACs},
	{Name: "bmc.address", Go: "BMC.Address", Carry: CarryEnv | CarryAnsible | CarryNodeFile, MoltenIron: "ipmi_ip",
		get: func(n *Node) string { return n.BMC.Address },
		set: func(n *Node, v string) { n.BMC.Address = v },
		check: func(n *Node, p string) error {
			// A node in front of Ironic needs no BMC address of ironpool's
			// own: Ironic drives it (fake-hardware, or a vendor driver
			// ironpool has no URL form for). A local node does: ironpool
			// hands it out by its BMC.
			if n.BMC.Address == "" && n.IronicUUID != "" {
				return nil
			}
			_, err := ParseBMCEndpoint(p+"bmc.address", n.BMC.Address)
			return err
		}},
	{Name: "bmc.username", Go: "BMC.Username", Carry: CarryEnv | CarryAnsible | CarryNodeFile, MoltenIron: "ipmi_user",
		get: func(n *Node) string { return n.BMC.Username },
		set: func(n *Node, v string) { n.BMC.Username = v },
		check: func(n *Node, p string) error {
			if len(n.BMC.Username) > MaxNameLen*4 {
				return FieldErrorf(p+"bmc.username", "is too long (limit %d)", MaxNameLen*4)
			}
			return ValidateText(p+"bmc.username", n.BMC.Username)
		}},
	{Name: "bmc.password", Go: "BMC.Password", Secret: true, Carry: CarryEnv | CarryAnsible | CarryNodeFile, MoltenIron: "ipmi_password",
		get: func(n *Node) string { return n.BMC.Password },
		// Setting the password replaces one that did not open, even with
		// "": that is how an operator repairs a node whose key is gone.
		set: func(n *Node, v string) { n.BMC.Password, n.BMC.PasswordError = v, "" },
		// A password that stops (or starts) opening is a change too.
		equal: func(a, b *Node) bool {
			return a.BMC.Password == b.BMC.Password && a.BMC.PasswordError == b.BMC.PasswordError
		},
		check: func(n *Node, p string) error {
			if len(n.BMC.Password) > MaxValueLen {
				return FieldErrorf(p+"bmc.password", "is too long (limit %d)", MaxValueLen)
			}
			if n.BMC.Password == MaskedSecret {
				return FieldErrorf(p+"bmc.password", "is the mask %q, not a password", MaskedSecret)
			}
			return nil
		}},
	{Name: "maintenance_reason", Go: "MaintenanceReason", ReadOnly: true,
		get: func(n *Node) string { return n.MaintenanceReason }},
	{Name: "last_error", Go: "LastError", ReadOnly: true,
		get: func(n *Node) string { return n.LastError }},
	{Name: "owner", Go: "Owner", ReadOnly: true, MoltenIron: "owner_name",
		get: func(n *Node) string { return n.Owner }},
	{Name: "allocation_id", Go: "AllocationID", ReadOnly: true,
		get: func(n *Node) string { return n.AllocationID }},
	{Name: "ironic_uuid", Go: "IronicUUID", ReadOnly: true,
		get: func(n *Node) string { return n.IronicUUID }},
	{Name: "ironic_endpoint", Go: "IronicEndpoint", ReadOnly: true,
		get: func(n *Node) string { return n.IronicEndpoint }},
	{Name: "managed_by", Go: "ManagedBy",
		get: func(n *Node) string { return n.ManagedBy },
		set: func(n *Node, v string) { n.ManagedBy = v }},
	{Name: "provision_state", Go: "ProvisionState", ReadOnly: true,
		get: func(n *Node) string { return n.ProvisionState }},
	{Name: "power_state", Go: "PowerState", ReadOnly: true,
		get: func(n *Node) string { return n.PowerState }},
	{Name: "pending", Go: "Pending", ReadOnly: true,
		get: func(n *Node) string { return string(n.Pending) }},
}

// InternalNodeFields are the Node struct fields deliberately absent from
// NodeFields: the row's bookkeeping, which no caller sets or compares;
// Fields, which is addressed key by key as fields.KEY; and
// BMC.PasswordError, which the store derives when a password does not open
// and which bmc.password's comparison and setter cover.
var InternalNodeFields = []string{"ID", "LastAllocatedAt", "CreatedAt", "UpdatedAt", "Fields", "BMC.PasswordError"}

// FieldsPrefix starts the name of a free-form field: fields.KEY.
const FieldsPrefix = "fields."

var nodeFieldByName = func() map[string]*NodeField {
	m := make(map[string]*NodeField, len(NodeFields))
	for _, f := range NodeFields {
		m[f.Name] = f
	}
	return m
}()

// LookupNodeField returns the well-known field called name.
func LookupNodeField(name string) (*NodeField, bool) {
	f, ok := nodeFieldByName[name]
	return f, ok
}

// NodeFieldNames lists the well-known field names in table order.
func NodeFieldNames() []string {
	names := make([]string, len(NodeFields))
	for i, f := range NodeFields {
		names[i] = f.Name
	}
	return names
}

// GetNodeField reads one field of n by name: a well-known field, fields.KEY,
// or a bare free-form key that names no well-known field. Returns ENOTFOUND
// for a missing fields.KEY and EINVALID for an unknown name.
func GetNodeField(n *Node, name string) (string, error) {
	if f, ok := LookupNodeField(name); ok {
		return f.Get(n), nil
	}
	if k, ok := strings.CutPrefix(name, FieldsPrefix); ok {
		v, ok := n.Fields[k]
		if !ok {
			return "", &Error{Code: ENOTFOUND, Field: "field", Message: fmt.Sprintf("node %s has no field %q", n.Name, k)}
		}
		return v, nil
	}
	if v, ok := n.Fields[name]; ok {
		return v, nil
	}
	return "", unknownNodeField(name)
}

// SetNodeField sets one field of n by name from text, checking it: a
// well-known field through its table entry, fields.KEY as a free-form field
// (an empty value removes it), or a bare key of an existing free-form field.
// Returns EINVALID naming the field.
func SetNodeField(n *Node, name, v string) error {
	if f, ok := LookupNodeField(name); ok {
		return f.Set(n, v)
	}
	if k, ok := strings.CutPrefix(name, FieldsPrefix); ok {
		if err := ValidateFieldKey(FieldsPrefix+k, k); err != nil {
			return err
		}
		if len(v) > MaxValueLen {
			return FieldErrorf(name, "value is %d bytes; the limit is %d", len(v), MaxValueLen)
		}
		if v == "" {
			delete(n.Fields, k)
			return nil
		}
		if n.Fields == nil {
			n.Fields = map[string]string{}
		}
		n.Fields[k] = v
		return nil
	}
	if _, ok := n.Fields[name]; ok {
		n.Fields[name] = v
		return nil
	}
	return unknownNodeField(name)
}

func unknownNodeField(name string) error {
	return (&Error{Code: EINVALID, Field: "field", Message: fmt.Sprintf("unknown field %q", truncate(name, 70))}).
		WithHint("well-known fields: " + strings.Join(NodeFieldNames(), ", ") + "; free-form fields are written fields.KEY")
}

// DiffNodes names the fields that differ between a and b, never their
// values: well-known fields in table order, then fields.KEY sorted. Every
// well-known field counts, so the audit trail and the Ironic sync
// comparison see the same changes (ironic_endpoint included).
func DiffNodes(a, b *Node) []string {
	var d []string
	for _, f := range NodeFields {
		same := f.Get(a) == f.Get(b)
		if f.equal != nil {
			same = f.equal(a, b)
		}
		if !same {
			d = append(d, f.Name)
		}
	}
	var keys []string
	for k, v := range b.Fields {
		if ov, ok := a.Fields[k]; !ok || ov != v {
			keys = append(keys, FieldsPrefix+k)
		}
	}
	for k := range a.Fields {
		if _, ok := b.Fields[k]; !ok {
			keys = append(keys, FieldsPrefix+k)
		}
	}
	slices.Sort(keys)
	return append(d, keys...)
}

// NodeAssignments returns the FIELD=VALUE assignments SetNodeField needs to
// turn a into b, for the fields that differ (a removed fields.KEY maps to
// ""). Read-only differences are included too; setting them fails, which
// is the point.
func NodeAssignments(a, b *Node) map[string]string {
	m := map[string]string{}
	for _, name := range DiffNodes(a, b) {
		v, _ := GetNodeField(b, name)
		m[name] = v
	}
	return m
}

// Clone returns a deep copy of n: changing the copy's lists or fields map
// leaves n alone.
func (n *Node) Clone() *Node {
	c := *n
	if n.Traits != nil {
		c.Traits = slices.Clone(n.Traits)
	}
	if n.MACs != nil {
		c.MACs = slices.Clone(n.MACs)
	}
	if n.Fields != nil {
		c.Fields = maps.Clone(n.Fields)
	}
	return &c
}

// Validate checks every field of n with the table's checks and normalizes
// MACs, traits and defaults in place. The error names the first bad field
// with prefix (e.g. "nodes[3].").
func (n *Node) Validate(prefix string) error {
	for _, f := range NodeFields {
		if f.check != nil {
			if err := f.check(n, prefix); err != nil {
				return err
			}
		}
	}
	if n.MACs == nil {
		n.MACs = []string{}
	}
	if err := ValidateFields(prefix+"fields", n.Fields); err != nil {
		return err
	}
	if n.Fields == nil {
		n.Fields = map[string]string{}
	}
	return nil
}

func checkSize(field string, x int64) error {
	if x < 0 {
		return FieldErrorf(field, "must not be negative (got %d)", x)
	}
	if x > MaxSize {
		return FieldErrorf(field, "is implausibly large; the limit is %d", int64(MaxSize))
	}
	return nil
}

func checkMACs(n *Node, prefix string) error {
	if len(n.MACs) > MaxMACs {
		return FieldErrorf(prefix+"macs", "has %d entries; the limit is %d", len(n.MACs), MaxMACs)
	}
	seen := map[string]bool{}
	for i, m := range n.MACs {
		mac, err := NormalizeMAC(fmt.Sprintf("%smacs[%d]", prefix, i), m)
		if err != nil {
			return err
		}
		if seen[mac] {
			return FieldErrorf(fmt.Sprintf("%smacs[%d]", prefix, i), "%s is listed twice", mac)
		}
		seen[mac] = true
		n.MACs[i] = mac
	}
	return nil
}
