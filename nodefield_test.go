package ironpool

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// nodeFieldPaths lists every exported field of Node, with BMC's fields as
// BMC.Address and so on.
func nodeFieldPaths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for f := range t.Fields() {
			if !f.IsExported() {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				walk(f.Type, prefix+f.Name+".")
				continue
			}
			out = append(out, prefix+f.Name)
		}
	}
	walk(reflect.TypeFor[Node](), "")
	return out
}

// TestNodeFieldTableComplete fails when a Node field is neither in
// NodeFields nor listed in InternalNodeFields, so a new field cannot be
// forgotten by get/set, the diff, the sync comparison or the node file.
func TestNodeFieldTableComplete(t *testing.T) {
	inTable := map[string]string{}
	names := map[string]bool{}
	for _, f := range NodeFields {
		if names[f.Name] {
			t.Errorf("field name %q is in the table twice", f.Name)
		}
		names[f.Name] = true
		if other, dup := inTable[f.Go]; dup {
			t.Errorf("Node.%s is in the table as %q and %q", f.Go, other, f.Name)
		}
		inTable[f.Go] = f.Name
		if f.get == nil {
			t.Errorf("%s has no getter", f.Name)
		}
		if !f.ReadOnly && f.set == nil {
			t.Errorf("%s is settable but has no setter", f.Name)
		}
	}
	paths := nodeFieldPaths()
	for _, p := range paths {
		_, listed := inTable[p]
		if internal := slices.Contains(InternalNodeFields, p); listed == internal {
			t.Errorf("Node.%s: in the table %v, internal %v; want exactly one", p, listed, internal)
		}
	}
	for p := range inTable {
		if !slices.Contains(paths, p) {
			t.Errorf("table names Node.%s, which does not exist", p)
		}
	}
	for _, p := range InternalNodeFields {
		if !slices.Contains(paths, p) {
			t.Errorf("InternalNodeFields names Node.%s, which does not exist", p)
		}
	}
}

func fieldByPath(v reflect.Value, path string) reflect.Value {
	for p := range strings.SplitSeq(path, ".") {
		v = v.FieldByName(p)
	}
	return v
}

func sampleNode() *Node {
	return &Node{Name: "n1", UUID: "u-1", Pool: "lab", State: NodeAvailable, CPUs: 8, MemoryMB: 1024,
		LocalGB: 10, CPUArch: "x86_64", ResourceClass: "rc", Traits: []string{"CUSTOM_A"},
		MACs: []string{"52:54:00:00:00:01"}, BMC: BMC{Address: "ipmi://127.0.0.1", Username: "u", Password: "p"},
		Fields: map[string]string{"rack": "r1"}, ManagedBy: "ironpool"}
}

// TestNodeFieldGetAndDiff changes each table field through reflection and
// checks that Get sees it and DiffNodes names exactly that field — the
// check that the getter reads the field its Go path names.
func TestNodeFieldGetAndDiff(t *testing.T) {
	for _, f := range NodeFields {
		a, b := sampleNode(), sampleNode()
		v := fieldByPath(reflect.ValueOf(b).Elem(), f.Go)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.ValueOf("X")))
		default:
			t.Fatalf("%s: no test value for kind %s", f.Name, v.Kind())
		}
		if f.Get(a) == f.Get(b) {
			t.Errorf("%s: Get does not see a change of Node.%s", f.Name, f.Go)
		}
		if got := DiffNodes(a, b); !slices.Equal(got, []string{f.Name}) {
			t.Errorf("changing Node.%s: DiffNodes = %v, want [%s]", f.Go, got, f.Name)
		}
	}
	a, b := sampleNode(), sampleNode()
	b.Fields["rack"], b.Fields["row"] = "r2", "7"
	delete(a.Fields, "rack")
	a.Fields["gone"] = "1"
	if got, want := DiffNodes(a, b), []string{"fields.gone", "fields.rack", "fields.row"}; !slices.Equal(got, want) {
		t.Errorf("DiffNodes on fields = %v, want %v", got, want)
	}
	// A password that stopped opening is a change of bmc.password, and
	// setting one (even "") clears the error.
	a, b = sampleNode(), sampleNode()
	b.BMC.Password, b.BMC.PasswordError = "", "sealed under another key"
	a.BMC.Password = ""
	if got := DiffNodes(a, b); !slices.Equal(got, []string{"bmc.password"}) {
		t.Errorf("PasswordError changed: DiffNodes = %v, want [bmc.password]", got)
	}
	if err := SetNodeField(b, "bmc.password", ""); err != nil || b.BMC.PasswordError != "" {
		t.Errorf("set bmc.password= = %v, PasswordError %q; want it cleared", err, b.BMC.PasswordError)
	}
	if got := DiffNodes(sampleNode(), sampleNode()); len(got) != 0 {
		t.Errorf("DiffNodes of equal nodes = %v", got)
	}
}

// TestNodeFieldSet checks that settable fields take text and give it back,
// that read-only fields refuse, and that bad values are refused with an
// error naming the field and leave the rules of Validate in force.
func TestNodeFieldSet(t *testing.T) {
	good := map[string]string{"name": "n2", "pool": "p2", "cpus": "16", "memory_mb": "2048", "local_gb": "20",
		"cpu_arch": "aarch64", "resource_class": "rc2", "traits": "CUSTOM_B,CUSTOM_C",
		"macs": "52:54:00:00:00:02,52:54:00:00:00:03", "bmc.address": "redfish+https://127.0.0.1/redfish/v1/Systems/1",
		"bmc.username": "admin", "bmc.password": "s3cret", "managed_by": "someone"}
	for _, f := range NodeFields {
		n := sampleNode()
		if f.ReadOnly {
			err := f.Set(n, "x")
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || e.Field != f.Name {
				t.Errorf("Set(%s) on a read-only field = %v, want EINVALID naming it", f.Name, err)
			}
			continue
		}
		v, ok := good[f.Name]
		if !ok {
			t.Errorf("%s: settable, but the test has no value for it", f.Name)
			continue
		}
		if err := f.Set(n, v); err != nil {
			t.Errorf("Set(%s, %q) = %v", f.Name, v, err)
		}
		if got := f.Get(n); got != v {
			t.Errorf("Get(%s) after Set(%q) = %q", f.Name, v, got)
		}
		if err := n.Validate(""); err != nil {
			t.Errorf("Validate after Set(%s) = %v", f.Name, err)
		}
	}
	for _, tc := range []struct{ field, value, want string }{
		{"cpus", "many", `cpus: "many" is not a whole number`},
		{"memory_mb", "-1", "memory_mb: must not be negative (got -1)"},
		{"local_gb", "2000000000000", "local_gb: is implausibly large; the limit is 1099511627776"},
		{"cpus", "2000000", "cpus: is implausibly large (2000000); the limit is 1048576"},
		{"bmc.username", "a\x00b", "bmc.username: contains a NUL byte"},
		{"name", "bad name", `name: "bad name" must be letters, digits, '.', '_', ':' or '-', starting with a letter or digit`},
		{"traits", "gpu!", `traits[0]: "gpu!" is not a trait (upper-case letters, digits and '_', e.g. CUSTOM_GPU)`},
		{"macs", "nope", `macs[0]: "nope" is not a MAC address (want six hex pairs, e.g. 52:54:00:12:34:56)`},
		{"bmc.address", "ftp://127.0.0.1", `bmc.address: scheme "ftp" is not a BMC driver (want ipmi, redfish, redfish+http or redfish+https)`},
		{"bmc.password", MaskedSecret, `bmc.password: is the mask "******", not a password`},
		{"fields.bad key", "v", `fields.bad key: key "bad key" must be 1-63 letters, digits, '_', '.', ':' or '-', starting with a letter or '_'`},
		{"colour", "red", `field: unknown field "colour"`},
	} {
		err := SetNodeField(sampleNode(), tc.field, tc.value)
		if ErrorCode(err) != EINVALID || err.Error() != tc.want {
			t.Errorf("SetNodeField(%s, %q) = %v, want EINVALID %q", tc.field, tc.value, err, tc.want)
		}
	}
}

// TestNodeFieldsFree covers fields.KEY: get, set, remove with an empty
// value, and a bare key of an existing free-form field.
func TestNodeFieldsFree(t *testing.T) {
	n := sampleNode()
	if v, err := GetNodeField(n, "fields.rack"); err != nil || v != "r1" {
		t.Errorf("get fields.rack = %q, %v", v, err)
	}
	if v, err := GetNodeField(n, "rack"); err != nil || v != "r1" {
		t.Errorf("get rack = %q, %v", v, err)
	}
	if _, err := GetNodeField(n, "fields.row"); ErrorCode(err) != ENOTFOUND {
		t.Errorf("get fields.row = %v, want ENOTFOUND", err)
	}
	if err := SetNodeField(n, "rack", "r9"); err != nil || n.Fields["rack"] != "r9" {
		t.Errorf("set rack = %v, fields %v", err, n.Fields)
	}
	if err := SetNodeField(n, "fields.rack", ""); err != nil || len(n.Fields) != 0 {
		t.Errorf("set fields.rack= = %v, fields %v; want it removed", err, n.Fields)
	}
	n.Fields = nil
	if err := SetNodeField(n, "fields.row", "7"); err != nil || n.Fields["row"] != "7" {
		t.Errorf("set fields.row on a node without fields = %v, %v", err, n.Fields)
	}
}

// TestNodeAssignments checks that the assignments NodeAssignments returns
// turn a into b through SetNodeField.
func TestNodeAssignments(t *testing.T) {
	a, b := sampleNode(), sampleNode()
	b.CPUs, b.MACs, b.BMC.Password = 32, []string{"52:54:00:00:00:09"}, "new"
	b.Fields["row"] = "7"
	delete(b.Fields, "rack")
	m := NodeAssignments(a, b)
	if len(m) != 5 || m["cpus"] != "32" || m["fields.rack"] != "" || m["fields.row"] != "7" {
		t.Errorf("NodeAssignments = %v", m)
	}
	for k, v := range m {
		if err := SetNodeField(a, k, v); err != nil {
			t.Fatalf("SetNodeField(%s, %q) = %v", k, v, err)
		}
	}
	if d := DiffNodes(a, b); len(d) != 0 {
		t.Errorf("after applying the assignments DiffNodes = %v", d)
	}
}

// TestNodeClone checks that a clone shares no list or map with its source.
func TestNodeClone(t *testing.T) {
	n := sampleNode()
	c := n.Clone()
	if d := DiffNodes(n, c); len(d) != 0 {
		t.Fatalf("clone differs: %v", d)
	}
	c.Traits[0], c.MACs[0], c.Fields["rack"] = "CUSTOM_Z", "52:54:00:00:00:ff", "changed"
	if n.Traits[0] != "CUSTOM_A" || n.MACs[0] != "52:54:00:00:00:01" || n.Fields["rack"] != "r1" {
		t.Errorf("changing the clone changed the node: %+v", n)
	}
	if e := (&Node{}).Clone(); e.Traits != nil || e.MACs != nil || e.Fields != nil {
		t.Errorf("clone of an empty node = %+v, want nil lists kept nil", e)
	}
}

// TestNodeFieldSecret checks that every field marked secret is masked by
// Redacted, and that the mask hides nothing else.
func TestNodeFieldSecret(t *testing.T) {
	n := sampleNode()
	r := n.Redacted()
	for _, f := range NodeFields {
		switch {
		case f.Secret && f.Get(r) != MaskedSecret:
			t.Errorf("%s is secret but Redacted shows %q", f.Name, f.Get(r))
		case !f.Secret && f.Get(r) != f.Get(n):
			t.Errorf("%s is not secret but Redacted changed it", f.Name)
		}
	}
	if n.BMC.Password != "p" {
		t.Error("Redacted changed the node itself")
	}
}
