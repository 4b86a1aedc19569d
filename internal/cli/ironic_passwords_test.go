package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ironic"
	"github.com/ironpool/ironpool/internal/ironictest"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// TestIronicPasswordsByPolicy: an Ironic whose show_password policy lets
// ironpool read driver_info passwords hands the real BMC password to sync,
// which stores it sealed and gives it to the owner; under Ironic's default
// policy (passwords masked) the pool says the password is unknown instead
// of printing an empty one.
func TestIronicPasswordsByPolicy(t *testing.T) {
	dir := t.TempDir()
	policy, conf := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "extra.conf")
	if err := os.WriteFile(policy, []byte(`"show_password": "@"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("[oslo_policy]\npolicy_file = "+policy+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := ironictest.Start(t, "IRONIC_EXTRA_CONF="+conf)
	c := in.Connect(t)
	makeFleet(t, c, "pw", 1, 0)
	other := otherConsumer{t, in.URL}
	if code, out := other.do("PATCH", "/v1/nodes/pw-00", []map[string]any{{"op": "add", "path": "/driver_info/ipmi_password", "value": "Bmc-Walrus-9"}}); code != 200 {
		t.Fatalf("set the Ironic password: %d %v", code, out)
	}
	m := servertest.Start(t, &server.Main{Ironic: server.IronicOptions{URL: in.URL, DriverOverride: ironic.FakeDriver, SyncInterval: -1, RetryMax: time.Second}})
	e := &env{t: t, m: m}
	e.ok("ironic", "sync")
	var n ironpool.Node
	e.jsonOf(&n, "node", "show", "pw-00", "--reveal")
	if n.BMC.Password != "Bmc-Walrus-9" {
		t.Errorf("password under a permissive show_password policy = %q, want Ironic's", n.BMC.Password)
	}
	// Sealed at rest: the plain password is not in the database file.
	if raw, err := os.ReadFile(m.DB); err == nil && strings.Contains(string(raw), "Bmc-Walrus-9") {
		t.Error("the imported password is stored in the clear")
	}
}
