package cli

import (
	"strings"
	"testing"

	"ironpool"
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
