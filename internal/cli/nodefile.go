package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/driverinfo"
)

// maxFileSize bounds an import file read from stdin.
const maxFileSize = 64 << 20

func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return b, err
}

// fileNode is one entry of ironpool's own node file as `node export`
// writes it: the keys parseOwnEntry reads, so what export writes import
// takes back (TestNodeExportRoundTrip checks the two agree).
type fileNode struct {
	Name          string            `yaml:"name" json:"name"`
	UUID          string            `yaml:"uuid,omitempty" json:"uuid,omitempty"`
	Pool          string            `yaml:"pool,omitempty" json:"pool,omitempty"`
	CPUs          int               `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	MemoryMB      int64             `yaml:"memory_mb,omitempty" json:"memory_mb,omitempty"`
	LocalGB       int64             `yaml:"local_gb,omitempty" json:"local_gb,omitempty"`
	CPUArch       string            `yaml:"cpu_arch,omitempty" json:"cpu_arch,omitempty"`
	ResourceClass string            `yaml:"resource_class,omitempty" json:"resource_class,omitempty"`
	Traits        []string          `yaml:"traits,omitempty" json:"traits,omitempty"`
	MACs          []string          `yaml:"macs,omitempty" json:"macs,omitempty"`
	BMC           fileBMC           `yaml:"bmc" json:"bmc"`
	Fields        map[string]string `yaml:"fields,omitempty" json:"fields,omitempty"`
}

// fileBMC is a node file's bmc mapping.
type fileBMC struct {
	Address  string `yaml:"address" json:"address"`
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
}

// DefaultCPUArch is the architecture a node gets when neither `node add
// --arch` nor its entry in an import file names one. Both paths apply it
// through nodeDefaults, so a node means the same whichever way it came in.
const DefaultCPUArch = "x86_64"

func nodeDefaults(n *ironpool.Node) {
	if n.CPUArch == "" {
		n.CPUArch = DefaultCPUArch
	}
}

// toFileNode is the export form of a node.
func toFileNode(n *ironpool.Node) fileNode {
	return fileNode{Name: n.Name, UUID: n.UUID, Pool: n.Pool, CPUs: n.CPUs, MemoryMB: n.MemoryMB, LocalGB: n.LocalGB,
		CPUArch: n.CPUArch, ResourceClass: n.ResourceClass, Traits: n.Traits, MACs: n.MACs,
		BMC: fileBMC{Address: n.BMC.Address, Username: n.BMC.Username, Password: n.BMC.Password}, Fields: n.Fields}
}

// ParseNodeFile reads nodes from YAML or JSON: a list, or a map with a
// `nodes` list. Entries are ironpool's format, or the format of
// `openstack baremetal create` (recognised by `driver`/`driver_info`). An
// error names the entry and its line. Values are checked by the server.
func ParseNodeFile(data []byte) ([]*ironpool.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, ironpool.FieldErrorf("file", "is not YAML or JSON: %v", err)
	}
	if len(doc.Content) == 0 {
		return nil, ironpool.FieldErrorf("file", "is empty")
	}
	list := doc.Content[0]
	if list.Kind == yaml.MappingNode {
		var found *yaml.Node
		for i := 0; i+1 < len(list.Content); i += 2 {
			switch list.Content[i].Value {
			case "nodes":
				found = list.Content[i+1]
			default:
				return nil, ironpool.FieldErrorf("file", "line %d: unknown top-level key %q (want nodes)", list.Content[i].Line, list.Content[i].Value)
			}
		}
		if found == nil {
			return nil, ironpool.FieldErrorf("file", "has no `nodes` list")
		}
		list = found
	}
	if list.Kind != yaml.SequenceNode {
		return nil, ironpool.FieldErrorf("file", "line %d: want a list of nodes", list.Line)
	}
	var out []*ironpool.Node
	for i, entry := range list.Content {
		field := fmt.Sprintf("nodes[%d]", i)
		if entry.Kind != yaml.MappingNode {
			return nil, ironpool.FieldErrorf(field, "line %d: want a mapping", entry.Line)
		}
		var n *ironpool.Node
		var err error
		if hasKey(entry, "driver") || hasKey(entry, "driver_info") {
			n, err = parseIronicEntry(entry)
		} else {
			n, err = parseOwnEntry(entry)
		}
		if err != nil {
			return nil, ironpool.FieldErrorf(field, "%v", err)
		}
		nodeDefaults(n)
		out = append(out, n)
	}
	return out, nil
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// parseOwnEntry reads one entry of ironpool's own format: the keys are the
// node fields the table marks CarryNodeFile, with bmc.* as a nested `bmc`
// mapping and free-form fields as a `fields` mapping.
func parseOwnEntry(entry *yaml.Node) (*ironpool.Node, error) {
	n := &ironpool.Node{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(entry.Content); i += 2 {
		k, v := entry.Content[i], entry.Content[i+1]
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: field %q is given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		switch {
		case k.Value == "fields":
			if err := v.Decode(&n.Fields); err != nil {
				return nil, decodeError(err)
			}
		case k.Value == "bmc" && v.Kind == yaml.MappingNode:
			for j := 0; j+1 < len(v.Content); j += 2 {
				if err := parseOwnKey(n, "bmc."+v.Content[j].Value, v.Content[j], v.Content[j+1]); err != nil {
					return nil, err
				}
			}
		case k.Value == "bmc":
			return nil, fmt.Errorf("line %d: bmc: want a mapping of address, username and password", v.Line)
		default:
			if err := parseOwnKey(n, k.Value, k, v); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// parseOwnKey decodes one value by the kind the field table gives it.
func parseOwnKey(n *ironpool.Node, name string, k, v *yaml.Node) error {
	f, ok := ironpool.LookupNodeField(name)
	if !ok || f.Carry&ironpool.CarryNodeFile == 0 {
		return fmt.Errorf("line %d: unknown field %q", k.Line, name)
	}
	var text string
	switch f.Kind {
	case ironpool.FieldInt:
		var x int64
		if err := v.Decode(&x); err != nil {
			return decodeError(err)
		}
		text = strconv.FormatInt(x, 10)
	case ironpool.FieldList:
		var xs []string
		if err := v.Decode(&xs); err != nil {
			return decodeError(err)
		}
		for i, x := range xs {
			if strings.Contains(x, ",") {
				return fmt.Errorf("line %d: %s[%d]: %q must not contain a comma", v.Line, name, i, x)
			}
		}
		text = strings.Join(xs, ",")
	default:
		if err := v.Decode(&text); err != nil {
			return decodeError(err)
		}
	}
	if err := f.Parse(n, text); err != nil {
		return fmt.Errorf("line %d: %s", v.Line, ironpool.ErrorMessage(err))
	}
	return nil
}

// decodeError drops yaml's "unmarshal errors" preamble, keeping the line.
func decodeError(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
}

// ironicEntry is the subset of Ironic's node file ironpool reads.
type ironicEntry struct {
	Name          string         `yaml:"name"`
	UUID          string         `yaml:"uuid"`
	Driver        string         `yaml:"driver"`
	DriverInfo    map[string]any `yaml:"driver_info"`
	Properties    map[string]any `yaml:"properties"`
	ResourceClass string         `yaml:"resource_class"`
	Traits        []string       `yaml:"traits"`
	Ports         []struct {
		Address string `yaml:"address"`
	} `yaml:"ports"`
	Extra map[string]any `yaml:"extra"`
}

func parseIronicEntry(entry *yaml.Node) (*ironpool.Node, error) {
	var e ironicEntry
	if err := entry.Decode(&e); err != nil {
		return nil, err
	}
	n := &ironpool.Node{Name: e.Name, UUID: e.UUID, ResourceClass: e.ResourceClass, Traits: e.Traits, Fields: map[string]string{}}
	str := func(m map[string]any, k string) string {
		if v, ok := m[k]; ok && v != nil {
			return fmt.Sprint(v)
		}
		return ""
	}
	num := func(k string) (int64, error) {
		s := str(e.Properties, k)
		if s == "" {
			return 0, nil
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("properties.%s: %q is not a whole number", k, s)
		}
		return v, nil
	}
	cpus, err := num("cpus")
	if err != nil {
		return nil, err
	}
	n.CPUs = int(cpus)
	if n.MemoryMB, err = num("memory_mb"); err != nil {
		return nil, err
	}
	if n.LocalGB, err = num("local_gb"); err != nil {
		return nil, err
	}
	n.CPUArch = str(e.Properties, "cpu_arch")
	if n.BMC, err = driverinfo.ToBMC(e.Driver, e.DriverInfo); err != nil {
		return nil, err
	}
	for _, p := range e.Ports {
		n.MACs = append(n.MACs, p.Address)
	}
	for k, v := range e.Extra {
		n.Fields[k] = fmt.Sprint(v)
	}
	return n, nil
}
