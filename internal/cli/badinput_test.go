package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput: every malformed value gets a non-zero exit, a message naming
// the field, and changes nothing.
func TestBadInput(t *testing.T) {
	e := start(t)
	e.seed()
	var a struct{ ID string }
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=1")
	var held []nodeView
	held = e.nodes("--owner", "lab1")
	badFile := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badFile, []byte("nodes:\n- name: ok1\n  bmc: {address: ipmi://1.2.3.4}\n- name: ok2\n  cpu: 4\n  bmc: {address: ipmi://1.2.3.5}\n"), 0o600)
	dupFile := filepath.Join(t.TempDir(), "dup.yaml")
	os.WriteFile(dupFile, []byte("- name: fresh1\n  bmc: {address: ipmi://1.2.3.4}\n  macs: [52:54:00:aa:00:01]\n- name: n00\n  bmc: {address: ipmi://1.2.3.5}\n"), 0o600)

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"UnknownFlavor", []string{"allocate", "--owner", "x", "--flavor", "nosuch=1"}, 2, `items[0].flavor: no flavor named "nosuch"`},
		{"CountZero", []string{"allocate", "--owner", "x", "--flavor", "small=0"}, 2, "items[0].count: must be at least 1"},
		{"CountNegative", []string{"allocate", "--owner", "x", "--flavor", "small=-2"}, 2, "items[0].count: must be at least 1"},
		{"DuplicateName", []string{"node", "add", "n01", "--bmc", "ipmi://9.9.9.9"}, 6, `name: a node named "n01" exists already`},
		{"DuplicateMAC", []string{"node", "add", "fresh", "--bmc", "ipmi://9.9.9.9", "--mac", "52:54:00:00:00:01"}, 6, "macs[0]: MAC 52:54:00:00:00:01 belongs to another node"},
		{"BadMAC", []string{"node", "add", "fresh", "--bmc", "ipmi://9.9.9.9", "--mac", "52:54:zz:00:00:01"}, 2, "macs[0]:"},
		{"BadBMCScheme", []string{"node", "add", "fresh", "--bmc", "telnet://9.9.9.9"}, 2, "bmc.address: scheme \"telnet\""},
		{"BadBMCPort", []string{"node", "add", "fresh", "--bmc", "ipmi://9.9.9.9:99999"}, 2, "bmc.address: port \"99999\" is out of range"},
		{"BMCNoHost", []string{"node", "add", "fresh", "--bmc", "ipmi://"}, 2, "bmc.address:"},
		{"NegativeCPUs", []string{"node", "add", "fresh", "--bmc", "ipmi://9.9.9.9", "--cpus", "-4"}, 2, "cpus: must not be negative"},
		{"NegativeMemory", []string{"node", "add", "fresh", "--bmc", "ipmi://9.9.9.9", "--memory-mb", "-1"}, 2, "memory_mb: must not be negative"},
		{"BadName", []string{"node", "add", "bad name!", "--bmc", "ipmi://9.9.9.9"}, 2, "name:"},
		{"TTLOverMax", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--ttl", "30d"}, 2, "ttl: 720h0m0s is over the maximum lease"},
		{"TTLMalformed", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--ttl", "soon"}, 2, `ttl: "soon" is not a duration`},
		{"ReleaseUnknown", []string{"release", "no-such-allocation"}, 5, `id: no allocation "no-such-allocation"`},
		{"DeleteAllocatedNode", []string{"node", "delete", held[0].Name}, 6, "is allocated to lab1"},
		{"MaintenanceAllocated", []string{"node", "maintenance", held[0].Name, "on", "--reason", "disk"}, 6, "release it first"},
		{"MaintenanceNoReason", []string{"node", "maintenance", "n05", "on"}, 2, "reason: is required"},
		{"UnknownFieldGet", []string{"node", "get", "n01", "colour"}, 2, `field: unknown field "colour"`},
		{"UnknownFieldSet", []string{"node", "set", "n01", "colour=red"}, 2, `field: unknown field "colour"`},
		{"SetNegativeCPUs", []string{"node", "set", "n01", "cpus=-3"}, 2, "cpus: must not be negative"},
		{"SetReadOnlyState", []string{"node", "set", "n01", "state=available"}, 2, "state: cannot be set directly"},
		{"UnknownConstraint", []string{"allocate", "--owner", "x", "--constraint", "gpus>=2"}, 2, `unknown constraint "gpus"`},
		{"UnknownNode", []string{"node", "show", "nosuch"}, 5, `no node named "nosuch"`},
		{"ImportUnknownField", []string{"node", "import", badFile}, 2, `nodes[1]: line 5: unknown field "cpu"`},
		{"ImportDuplicateAllOrNothing", []string{"node", "import", dupFile}, 6, "nodes[1].name"},
		{"FlavorNegative", []string{"flavor", "create", "weird", "--cpus", "-1"}, 2, "cpus: must not be negative"},
		{"FlavorDuplicate", []string{"flavor", "create", "small"}, 6, `a flavor named "small" exists already`},
		{"ExtendUnknown", []string{"allocation", "extend", "nope", "--ttl", "1h"}, 5, "no allocation"},
		{"TokenBadRole", []string{"token", "create", "--role", "root"}, 2, `role: "root" is not a role`},
		{"BMCCipherZero", []string{"node", "add", "fresh", "--bmc", "ipmi://127.0.0.1:623?cipher=0"}, 2, "bmc.address: option cipher=0 is refused"},
		{"BMCPlainLAN", []string{"node", "add", "fresh", "--bmc", "ipmi://127.0.0.1?interface=lan"}, 2, "bmc.address: option interface=\"lan\" is refused"},
		{"BMCUnknownOption", []string{"node", "add", "fresh", "--bmc", "redfish+https://127.0.0.1/redfish/v1/Systems/1?verfy=false"}, 2, `bmc.address: option "verfy" is not known`},
		{"PowerBadAction", []string{"node", "power", "n01", "explode"}, 1, `power action "explode"`},
		{"PowerNamesAndAllocation", []string{"node", "power", "n01", "--allocation", "x", "on"}, 1, "not both"},
		{"PowerUnknownNodes", []string{"node", "power", "n01", "nosuch", "status"}, 5, `nodes[1]: no node "nosuch"`},
		{"BootBadDevice", []string{"node", "boot-device", "n01", "floppy"}, 1, `boot device "floppy"`},
		{"DiscoverBadScheme", []string{"node", "discover", "http://127.0.0.1/redfish/v1"}, 2, `url: scheme "http"`},
		{"ComposeBlockNoZone", []string{"node", "compose", "c1", "--service", "redfish+http://127.0.0.1:1", "--block", "B1"}, 1, "--zone is required"},
		{"ComposeNoService", []string{"node", "compose", "c1", "--cpus", "2"}, 1, "--service URL is required"},
		{"DecomposeNotComposed", []string{"node", "decompose", "n05"}, 6, "was not composed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (%s)", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q lacks %q", stderr, c.want)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("state changed:\n%s\n%s", before, after)
			}
		})
	}
	// The import refused above added neither of its nodes.
	for _, n := range e.nodes() {
		if n.Name == "fresh1" || n.Name == "ok1" {
			t.Fatalf("refused import left node %s", n.Name)
		}
	}
	// Usage mistakes exit 1 and print the usage line.
	_, stderr, code := e.run("allocate", "--flavor", "small=1")
	if code != 1 || !strings.Contains(stderr, "usage:") {
		t.Fatalf("usage error: exit %d %s", code, stderr)
	}
}
