package ironic

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

// writeClouds writes a clouds.yaml into a temporary directory.
func writeClouds(t *testing.T, doc string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCloudsYAMLNoauth reaches a real standalone Ironic through clouds.yaml
// entries that name no Keystone, in both forms openstacksdk accepts.
func TestCloudsYAMLNoauth(t *testing.T) {
	url := requireIronic(t)
	f := writeClouds(t, fmt.Sprintf(`clouds:
  standalone:
    auth_type: none
    baremetal_endpoint_override: %s
  endpoint-form:
    auth_type: none
    auth:
      endpoint: %s
`, url, url))
	for _, name := range []string{"standalone", "endpoint-form"} {
		c, err := Connect(t.Context(), Config{Cloud: name, CloudsFile: f})
		if err != nil {
			t.Fatalf("cloud %s: %v", name, err)
		}
		if _, err := c.ListNodes(t.Context()); err != nil {
			t.Errorf("cloud %s: list nodes: %v", name, err)
		}
	}
}

// TestCloudsYAMLRefusals: an entry that cannot work is a clear EINVALID
// naming the problem — never a panic (gophercloud's parser dereferences a
// nil auth section for auth_type none) and never a silent fallback.
func TestCloudsYAMLRefusals(t *testing.T) {
	f := writeClouds(t, `clouds:
  no-endpoint:
    auth_type: none
  basic-no-password:
    auth_type: http_basic
    auth: {username: op}
    baremetal_endpoint_override: http://127.0.0.1:1
  keystone-no-url:
    auth_type: password
    auth: {username: admin, password: pw}
  bad-cacert:
    auth_type: none
    baremetal_endpoint_override: https://127.0.0.1:1
    cacert: /nonexistent/ca.pem
`)
	for _, tc := range []struct{ cloud, want string }{
		{"no-endpoint", "baremetal_endpoint_override"},
		{"basic-no-password", "auth.password"},
		{"keystone-no-url", "auth_url"},
		{"bad-cacert", "cacert"},
		{"absent", `no cloud named "absent"`},
	} {
		_, err := Connect(t.Context(), Config{Cloud: tc.cloud, CloudsFile: f})
		if ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cloud %s: %v, want EINVALID mentioning %q", tc.cloud, err, tc.want)
		}
	}
	if _, err := Connect(t.Context(), Config{Cloud: "x", CloudsFile: filepath.Join(t.TempDir(), "none.yaml")}); ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Errorf("missing clouds.yaml: %v, want EINVALID", err)
	}
}

// FuzzParseCloud: no clouds.yaml, however malformed, panics the loader.
func FuzzParseCloud(f *testing.F) {
	f.Add([]byte("clouds:\n  a:\n    auth_type: none\n    baremetal_endpoint_override: http://127.0.0.1:6385\n"), "a")
	f.Add([]byte("clouds:\n  a:\n    auth_type: http_basic\n    auth: {username: u, password: p}\n"), "a")
	f.Add([]byte("clouds: [1, 2]"), "a")
	f.Add([]byte("clouds:\n  a: ~\n"), "a")
	f.Add([]byte("clouds:\n  a:\n    verify: maybe\n"), "a")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		c, err := parseCloud(data, name)
		if err != nil {
			return
		}
		_, _, _ = c.keystoneFree()
		_, _ = c.tlsConfig()
	})
}

// TestSyncFilter: --ironic-filter keys are checked (a typo would sync the
// whole shared Ironic), and a filtered client lists only what matches.
func TestSyncFilter(t *testing.T) {
	for _, bad := range []string{"conductor=lab", "owner", "owner=", "owner=a,,"} {
		if _, err := ParseFilter(bad); ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), "ironic-filter") {
			t.Errorf("ParseFilter(%q) = %v, want EINVALID on ironic-filter", bad, err)
		}
	}
	c := newClient(t)
	rc := "rc-filter-" + runID
	ids := makeNodes(t, c, []nodeSpec{{Name: nodeName("flt", 0), ResourceClass: rc, CPUs: 1}})
	makeNodes(t, c, []nodeSpec{{Name: nodeName("flt", 1), ResourceClass: rc + "-other", CPUs: 1}})
	f, err := ParseFilter("resource_class=" + rc)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := Connect(t.Context(), Config{URL: c.Endpoint(), Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fc.ListNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UUID != ids[0] {
		t.Fatalf("filtered list = %d nodes, want only %s", len(got), ids[0])
	}
}

// TestRegisterSettings: the ironic.* fields of a pool node and the options
// of its BMC address reach Ironic on `node register`; an unknown setting is
// refused by name before anything is created.
func TestRegisterSettings(t *testing.T) {
	c := newClient(t)
	pn := &ironpool.Node{UUID: "pool-set-" + runID, Name: nodeName("regset", 0), CPUs: 2, ResourceClass: "rc-regset",
		BMC: ironpool.BMC{Address: "ipmi://10.9.1.7:623?cipher=3", Username: "root", Password: "pw"},
		Fields: map[string]string{"ironic.deploy_kernel": "http://images.example/ipa.kernel", "ironic.deploy_ramdisk": "http://images.example/ipa.initramfs",
			"ironic.automated_clean": "false", "rack": "r1"}}
	u, err := c.Register(t.Context(), pn)
	t.Cleanup(func() { forceDelete(c, u) })
	if err != nil {
		t.Fatal(err)
	}
	n := mustGet(t, c, u)
	if n.DriverInfo["deploy_kernel"] != "http://images.example/ipa.kernel" || n.DriverInfo["deploy_ramdisk"] != "http://images.example/ipa.initramfs" ||
		fmt.Sprint(n.DriverInfo["ipmi_cipher_suite"]) != "3" {
		t.Errorf("registered node: driver_info %v owner %q", n.DriverInfo, n.Owner)
	}
	bad := &ironpool.Node{Name: nodeName("regset", 1), BMC: ironpool.BMC{Address: "ipmi://10.9.1.8"}, Fields: map[string]string{"ironic.deploy_kernal": "x"}}
	if _, err := c.Register(t.Context(), bad); ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), "ironic.deploy_kernal") {
		t.Fatalf("register with a misspelt setting: %v, want EINVALID naming it", err)
	}
	if _, err := c.GetNode(t.Context(), bad.Name); ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
		t.Errorf("a refused registration created the node anyway: %v", err)
	}
}
