package cli

import (
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

// FuzzParseNodeFile checks that the import file parser never panics and
// never hangs on hostile YAML (aliases that expand exponentially, deep
// nesting, odd types), and that every error it returns is a coded invalid
// error naming the file or entry, which the CLI prints as one line.
func FuzzParseNodeFile(f *testing.F) {
	for _, s := range []string{
		"- name: n1\n  bmc: {address: ipmi://10.0.0.1, username: root, password: pw}\n  macs: [52:54:00:00:00:01]\n",
		"nodes:\n  - name: n1\n    cpus: 4\n    fields: {rack: r1}\n",
		`{"nodes": [{"name": "n1", "memory_mb": 1024}]}`,
		"- name: n1\n  driver: ipmi\n  driver_info: {ipmi_address: 10.0.0.1, ipmi_port: 623, ipmi_password: x}\n  properties: {cpus: 8}\n  ports: [{address: 52:54:00:00:00:02}]\n",
		"- name: n2\n  driver: redfish\n  driver_info: {redfish_address: https://h, redfish_system_id: /redfish/v1/Systems/1}\n",
		"- driver_info: {ipmi_address: '::1'}\n  properties: {cpus: many}\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nnodes: [*c]\n",
		"- &n {name: n1}\n- *n\n",
		"[[[[[[[[[[]]]]]]]]]]", "nodes: 3", "unknown: []", "", "---\n---\n", "- 1\n", "- name: [1, 2]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := ParseNodeFile(data)
		if err != nil {
			if c := ironpool.ErrorCode(err); c != ironpool.EINVALID {
				t.Fatalf("error code %q, want invalid: %v", c, err)
			}
			return
		}
		for i, n := range nodes {
			if n == nil {
				t.Fatalf("entry %d parsed to nil", i)
			}
		}
	})
}

// TestParseNodeFileNoSecretInError checks that an entry the parser refuses
// does not have its BMC password repeated in the error, which the CLI
// prints to a terminal and CI logs.
func TestParseNodeFileNoSecretInError(t *testing.T) {
	const pw = "Zq9-secret-In-File"
	for _, doc := range []string{
		"- name: n1\n  bmc: {address: ipmi://h, password: " + pw + "}\n  bogus: 1\n",
		"- name: n1\n  driver: ipmi\n  driver_info: {ipmi_password: " + pw + "}\n",
		"- name: n1\n  bmc: {password: [" + pw + "]}\n",
	} {
		_, err := ParseNodeFile([]byte(doc))
		if err == nil {
			t.Fatalf("%q: parsed; want an error", doc)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error repeats the password: %v", err)
		}
	}
}

// TestParseNodeFileEntries checks both entry formats against the field
// table and the driver_info mapping: what is read, and that each refusal
// names the entry, its line and the field.
func TestParseNodeFileEntries(t *testing.T) {
	nodes, err := ParseNodeFile([]byte("nodes:\n" +
		"  - name: n1\n    uuid: u-1\n    cpus: 8\n    memory_mb: 1024\n    traits: [CUSTOM_A]\n    macs: [52:54:00:00:00:01]\n" +
		"    bmc: {address: 'ipmi://127.0.0.1:623', username: root, password: pw}\n    fields: {rack: r1}\n" +
		"  - name: n2\n    driver: idrac\n    driver_info: {redfish_address: 127.0.0.1, redfish_system_id: /redfish/v1/Systems/1, redfish_password: pw2}\n" +
		"    properties: {cpus: 4}\n    ports: [{address: '52:54:00:00:00:02'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := nodes[0], nodes[1]
	if n1.Name != "n1" || n1.UUID != "u-1" || n1.CPUs != 8 || n1.MemoryMB != 1024 || n1.Traits[0] != "CUSTOM_A" ||
		n1.MACs[0] != "52:54:00:00:00:01" || n1.BMC != (ironpool.BMC{Address: "ipmi://127.0.0.1:623", Username: "root", Password: "pw"}) ||
		n1.Fields["rack"] != "r1" {
		t.Errorf("own entry = %+v", n1)
	}
	if n2.BMC != (ironpool.BMC{Address: "redfish+https://127.0.0.1/redfish/v1/Systems/1", Password: "pw2"}) || n2.CPUs != 4 || n2.MACs[0] != "52:54:00:00:00:02" {
		t.Errorf("ironic entry = %+v", n2)
	}
	for doc, want := range map[string]string{
		"- name: n1\n  cpus: -1\n":                         "nodes[0]: line 2: cpus: must not be negative (got -1)",
		"- name: n1\n  cpus: many\n":                       "nodes[0]: line 2: cannot unmarshal !!str `many` into int64",
		"- name: n1\n  name: n2\n":                         `nodes[0]: line 2: field "name" is given twice`,
		"- name: n1\n  traits: ['A,B']\n":                  `nodes[0]: line 2: traits[0]: "A,B" must not contain a comma`,
		"- name: n1\n  bmc: ipmi://127.0.0.1\n":            "nodes[0]: line 2: bmc: want a mapping of address, username and password",
		"- name: n1\n  bmc: {url: x}\n":                    `nodes[0]: line 2: unknown field "bmc.url"`,
		"- name: n1\n  state: available\n":                 `nodes[0]: line 2: unknown field "state"`,
		"- name: n1\n  driver: idrac\n  driver_info: {}\n": `nodes[0]: driver_info.redfish_address: is required for driver "idrac"`,
		"- name: n1\n  driver: ipmi\n  driver_info: {ipmi_address: 127.0.0.1, ipmi_port: 0}\n": `nodes[0]: driver_info.ipmi_port: "0" is not a port (1-65535)`,
	} {
		_, err := ParseNodeFile([]byte(doc))
		if ironpool.ErrorCode(err) != ironpool.EINVALID || err.Error() != want {
			t.Errorf("%q: error = %v, want EINVALID %q", doc, err, want)
		}
	}
}
