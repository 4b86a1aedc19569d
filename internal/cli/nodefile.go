package cli

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"ironpool"
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

// fileNode is one entry in ironpool's own import format; its keys are the
// API's JSON names. `node export` writes the same type, so what it writes
// `node import` reads back.
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

// NodeLine returns the line of entry i of a node file, for error messages
// about entries the server rejected.
func NodeLine(data []byte, i int) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	list := doc.Content[0]
	if list.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(list.Content); j += 2 {
			if list.Content[j].Value == "nodes" {
				list = list.Content[j+1]
			}
		}
	}
	if list.Kind != yaml.SequenceNode || i < 0 || i >= len(list.Content) {
		return 0
	}
	return list.Content[i].Line
}

func hasKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return true
		}
	}
	return false
}

// ownKeys are the keys ironpool's own node format accepts.
var ownKeys = map[string]bool{"name": true, "uuid": true, "pool": true, "cpus": true, "memory_mb": true,
	"local_gb": true, "cpu_arch": true, "resource_class": true, "traits": true, "macs": true, "bmc": true, "fields": true}

var bmcKeys = map[string]bool{"address": true, "username": true, "password": true}

// unknownKey reports the first key of mapping m not in allowed, with its line.
func unknownKey(m *yaml.Node, allowed map[string]bool, prefix string) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if !allowed[k.Value] {
			return fmt.Errorf("line %d: unknown field %q", k.Line, prefix+k.Value)
		}
		if k.Value == "bmc" && m.Content[i+1].Kind == yaml.MappingNode {
			if err := unknownKey(m.Content[i+1], bmcKeys, "bmc."); err != nil {
				return err
			}
		}
	}
	return nil
}

func parseOwnEntry(entry *yaml.Node) (*ironpool.Node, error) {
	if err := unknownKey(entry, ownKeys, ""); err != nil {
		return nil, err
	}
	var f fileNode
	if err := entry.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return &ironpool.Node{Name: f.Name, UUID: f.UUID, Pool: f.Pool, CPUs: f.CPUs, MemoryMB: f.MemoryMB,
		LocalGB: f.LocalGB, CPUArch: f.CPUArch, ResourceClass: f.ResourceClass, Traits: f.Traits,
		MACs: f.MACs, BMC: ironpool.BMC{Address: f.BMC.Address, Username: f.BMC.Username, Password: f.BMC.Password}, Fields: f.Fields}, nil
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
	switch {
	case strings.HasPrefix(e.Driver, "redfish") || str(e.DriverInfo, "redfish_address") != "":
		addr := str(e.DriverInfo, "redfish_address")
		if addr == "" {
			return nil, fmt.Errorf("driver_info.redfish_address is required")
		}
		scheme, rest, ok := strings.Cut(addr, "://")
		if !ok {
			scheme, rest = "https", addr
		}
		n.BMC.Address = "redfish+" + scheme + "://" + strings.TrimRight(rest, "/") + str(e.DriverInfo, "redfish_system_id")
		n.BMC.Username, n.BMC.Password = str(e.DriverInfo, "redfish_username"), str(e.DriverInfo, "redfish_password")
	default:
		host := str(e.DriverInfo, "ipmi_address")
		if host == "" {
			return nil, fmt.Errorf("driver_info.ipmi_address is required for driver %q", e.Driver)
		}
		if p := str(e.DriverInfo, "ipmi_port"); p != "" {
			host = net.JoinHostPort(host, p)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		n.BMC.Address = "ipmi://" + host
		n.BMC.Username, n.BMC.Password = str(e.DriverInfo, "ipmi_username"), str(e.DriverInfo, "ipmi_password")
	}
	for _, p := range e.Ports {
		n.MACs = append(n.MACs, p.Address)
	}
	for k, v := range e.Extra {
		n.Fields[k] = fmt.Sprint(v)
	}
	return n, nil
}
