// Package handoff renders an allocation as what its owner feeds to the next
// tool: shell variables for a CI hook, base64 JSON for a lab record, an
// Ansible inventory, an Ironic node file for `openstack baremetal create`,
// and dnsmasq dhcp-host lines.
package handoff

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/driverinfo"
)

// Formats lists the handoff formats by name.
var Formats = []string{"json", "yaml", "env", "dotenv", "base64", "ansible", "ironic", "dnsmasq"}

// Write renders a in format to w.
func Write(w io.Writer, format string, a *ironpool.Allocation) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	case "yaml":
		return yaml.NewEncoder(w).Encode(toPlain(a))
	case "env":
		return Env(w, a)
	case "dotenv":
		return Dotenv(w, a)
	case "base64":
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, base64.StdEncoding.EncodeToString(b))
		return err
	case "ansible":
		return Ansible(w, a)
	case "ironic":
		return Ironic(w, a)
	case "dnsmasq":
		return Dnsmasq(w, a)
	}
	return ironpool.FieldErrorf("output", "%q is not a handoff format (want %s)", format, strings.Join(Formats, ", "))
}

// toPlain round-trips through JSON so YAML uses the JSON field names.
func toPlain(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

// Quote returns s as one shell word in single quotes, safe for eval.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var nonIdent = regexp.MustCompile(`[^A-Z0-9_]`)

// Vars returns the IRONPOOL_… variables of an allocation in a fixed order:
// the allocation, then per node (by index) its name, BMC and specs, a list of
// the names, and the metadata. Env and Dotenv render the same list, so the
// two forms never disagree about a name.
func Vars(a *ironpool.Allocation) [][2]string {
	var out [][2]string
	set := func(k, v string) { out = append(out, [2]string{k, v}) }
	set("IRONPOOL_ALLOCATION_ID", a.ID)
	set("IRONPOOL_OWNER", a.Owner)
	set("IRONPOOL_STATE", string(a.State))
	if !a.ExpiresAt.IsZero() {
		set("IRONPOOL_EXPIRES_AT", a.ExpiresAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	set("IRONPOOL_NODE_COUNT", fmt.Sprint(len(a.Nodes)))
	var names []string
	for i, n := range a.Nodes {
		p := fmt.Sprintf("IRONPOOL_NODE_%d_", i)
		names = append(names, n.Name)
		for _, f := range ironpool.NodeFields {
			if f.Carry&ironpool.CarryEnv != 0 {
				set(p+nonIdent.ReplaceAllString(strings.ToUpper(f.Name), "_"), f.Get(n))
			}
		}
		set(p+"FLAVOR", flavorOf(a, n.Name))
	}
	set("IRONPOOL_NODES", strings.Join(names, " "))
	keys := make([]string, 0, len(a.Metadata))
	for k := range a.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set("IRONPOOL_META_"+nonIdent.ReplaceAllString(strings.ToUpper(k), "_"), a.Metadata[k])
	}
	return out
}

// Env writes `export IRONPOOL_…='…'` lines for a shell to eval or source.
// They are exported so that the commands a CI hook starts see them too, and
// every value is single-quoted, so no value can run code.
func Env(w io.Writer, a *ironpool.Allocation) error {
	var b strings.Builder
	for _, kv := range Vars(a) {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], Quote(kv[1]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Dotenv writes plain KEY=VALUE lines, the form GitHub Actions reads from
// $GITHUB_ENV and GitLab from a dotenv report: no quotes, one line each.
// Those readers take a line break as the end of a value, so a value holding
// one is refused rather than split into a second, forged variable.
func Dotenv(w io.Writer, a *ironpool.Allocation) error {
	var b strings.Builder
	for _, kv := range Vars(a) {
		if strings.ContainsAny(kv[1], "\r\n") {
			return ironpool.FieldErrorf("output", "%s holds a line break, which the dotenv form cannot carry; use -o env or -o json", kv[0])
		}
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func flavorOf(a *ironpool.Allocation, node string) string {
	for _, it := range a.Items {
		for _, n := range it.Nodes {
			if n == node {
				if it.Flavor != "" {
					return it.Flavor
				}
				return it.Constraints.String()
			}
		}
	}
	return ""
}

// Ansible writes a YAML inventory: one group per flavor under `all`, hosts
// carrying their BMC and specs as variables.
func Ansible(w io.Writer, a *ironpool.Allocation) error {
	children := map[string]any{}
	for _, n := range a.Nodes {
		group := nonIdent.ReplaceAllString(strings.ToUpper(flavorOf(a, n.Name)), "_")
		group = strings.ToLower(group)
		if group == "" {
			group = "nodes"
		}
		g, _ := children[group].(map[string]any)
		if g == nil {
			g = map[string]any{"hosts": map[string]any{}}
			children[group] = g
		}
		vars := map[string]any{}
		for _, f := range ironpool.NodeFields {
			if f.Carry&ironpool.CarryAnsible != 0 {
				vars[ansibleVar(f.Name)] = f.Value(n)
			}
		}
		g["hosts"].(map[string]any)[n.Name] = vars
	}
	inv := map[string]any{"all": map[string]any{
		"vars":     map[string]any{"ironpool_allocation": a.ID, "ironpool_owner": a.Owner},
		"children": children,
	}}
	return yaml.NewEncoder(w).Encode(inv)
}

// ansibleVar is the host variable of a node field: bmc.address becomes
// bmc_address, and uuid is ironpool_uuid so it cannot be taken for a UUID
// Ansible or the lab assigned.
func ansibleVar(field string) string {
	if field == "uuid" {
		return "ironpool_uuid"
	}
	return strings.ReplaceAll(field, ".", "_")
}

// IronicNode is one entry of the node file `openstack baremetal create`
// reads.
type IronicNode struct {
	Name          string            `json:"name" yaml:"name"`
	Driver        string            `json:"driver" yaml:"driver"`
	DriverInfo    map[string]any    `json:"driver_info" yaml:"driver_info"`
	Properties    map[string]any    `json:"properties" yaml:"properties"`
	ResourceClass string            `json:"resource_class,omitempty" yaml:"resource_class,omitempty"`
	Ports         []map[string]any  `json:"ports" yaml:"ports"`
	Extra         map[string]string `json:"extra,omitempty" yaml:"extra,omitempty"`
}

// Ironic writes the allocation as an Ironic node file, so the lab can enroll
// the nodes in its own Ironic with `openstack baremetal create FILE`.
func Ironic(w io.Writer, a *ironpool.Allocation) error {
	var nodes []IronicNode
	for _, n := range a.Nodes {
		driver, info, err := driverinfo.FromBMC(n.BMC)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		props := map[string]any{"cpus": n.CPUs, "memory_mb": n.MemoryMB, "local_gb": n.LocalGB}
		if n.CPUArch != "" {
			props["cpu_arch"] = n.CPUArch
		}
		in := IronicNode{Name: n.Name, Driver: driver, DriverInfo: info, Properties: props,
			ResourceClass: n.ResourceClass, Ports: []map[string]any{},
			Extra: map[string]string{"ironpool_allocation": a.ID, "ironpool_uuid": n.UUID}}
		for _, m := range n.MACs {
			in.Ports = append(in.Ports, map[string]any{"address": m})
		}
		nodes = append(nodes, in)
	}
	return yaml.NewEncoder(w).Encode(map[string]any{"nodes": nodes})
}

// Dnsmasq writes one dhcp-host line per MAC, tagged with the node name, for
// an external DHCP server to answer only the allocated machines.
func Dnsmasq(w io.Writer, a *ironpool.Allocation) error {
	for _, n := range a.Nodes {
		for _, m := range n.MACs {
			if _, err := fmt.Fprintf(w, "dhcp-host=%s,set:ironpool,set:%s\n", m, n.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
