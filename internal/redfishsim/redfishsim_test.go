package redfishsim_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/bmctest"
	"github.com/ironpool/ironpool/internal/redfishsim"
)

func newSim() *redfishsim.Sim {
	return redfishsim.New("admin", "s3cret-pw", redfishsim.System{ID: "1", UUID: "0e1d6b2c-0000-4000-8000-000000000001",
		HostName: "n1", CPUs: 8, Arch: "x86", MemoryGiB: 32, DiskBytes: 200 << 30, MACs: []string{"52:54:00:aa:00:01"}})
}

// sushyScript uses python3-sushy, the library Ironic's redfish driver is
// built on, the way Ironic does: session login, read the system, power it
// on, set a one-time PXE boot, read both back, create and delete an
// account through sushy's session connector.
const sushyScript = `
import json, sys, sushy
from sushy import auth
s = sushy.Sushy(sys.argv[1], auth=auth.SessionAuth(username="admin", password="s3cret-pw"), verify=False)
system = s.get_system("/redfish/v1/Systems/1")
out = {"before": system.power_state, "uuid": system.uuid, "cpus": system.processors.summary.count,
       "memory_gib": system.memory_summary.size_gib, "macs": [n.mac_address for n in system.ethernet_interfaces.get_members()]}
system.reset_system(sushy.RESET_ON)
system.set_system_boot_source(sushy.BOOT_SOURCE_TARGET_PXE, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE)
system.refresh()
out["after"] = system.power_state
out["boot"] = [system.boot.target, system.boot.enabled]
# sushy 4.3 has no AccountService resource; its authenticated connector
# (the session above) posts and reads the accounts.
conn = s._conn
conn.post("/redfish/v1/AccountService/Accounts", data={"UserName": "lab1-tmp", "Password": "tmp-pass-123", "RoleId": "Operator"})
members = conn.get("/redfish/v1/AccountService/Accounts").json()["Members"]
out["accounts"] = sorted(conn.get(m["@odata.id"]).json()["UserName"] for m in members)
print(json.dumps(out, default=str))
`

// TestSushy validates the simulator with python3-sushy.
func TestSushy(t *testing.T) {
	py := "/usr/bin/python3" // Debian's, where python3-sushy installs
	if err := exec.Command(py, "-c", "import sushy").Run(); err != nil {
		bmctest.Missing(t, true, "python3-sushy is not installed (apt-get install python3-sushy)")
	}
	sim := newSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cmd := exec.Command(py, "-c", sushyScript, srv.URL+"/redfish/v1")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("sushy: %v\n%s", err, msg)
	}
	var got struct {
		Before, After, UUID string
		CPUs                int
		MemoryGiB           float64 `json:"memory_gib"`
		MACs                []string
		Boot                []string
		Accounts            []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// sushy 4 reports enum values (e.g. "on"/"On"); compare loosely.
	if !strings.EqualFold(lastWord(got.Before), "off") || !strings.EqualFold(lastWord(got.After), "on") {
		t.Errorf("sushy saw power %q then %q", got.Before, got.After)
	}
	if got.UUID != "0e1d6b2c-0000-4000-8000-000000000001" || got.CPUs != 8 || got.MemoryGiB != 32 ||
		len(got.MACs) != 1 || !strings.EqualFold(got.MACs[0], "52:54:00:aa:00:01") {
		t.Errorf("sushy read %+v", got)
	}
	if len(got.Boot) != 2 || !strings.EqualFold(lastWord(got.Boot[0]), "pxe") || !strings.EqualFold(lastWord(got.Boot[1]), "once") {
		t.Errorf("sushy read boot %v", got.Boot)
	}
	if st := sim.System("1"); st.PowerState != "On" || st.BootTarget != "Pxe" || st.BootEnabled != "Once" {
		t.Errorf("simulator after sushy: %+v", st)
	}
	if strings.Join(got.Accounts, ",") != "admin,lab1-tmp" {
		t.Errorf("accounts via sushy: %v", got.Accounts)
	}
	if n := sim.Sessions(); n > 1 {
		t.Errorf("%d sessions left open", n)
	}
}

func lastWord(s string) string {
	if i := strings.LastIndexAny(s, ". "); i >= 0 {
		return s[i+1:]
	}
	return s
}

// TestRedfishtool validates the simulator with DMTF's redfishtool: Basic
// auth, the Systems collection, a reset and a PATCH.
func TestRedfishtool(t *testing.T) {
	if _, err := exec.LookPath("redfishtool"); err != nil {
		bmctest.Missing(t, true, "redfishtool is not installed (apt-get install redfishtool)")
	}
	sim := newSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	run := func(args ...string) string {
		t.Helper()
		base := []string{"-r", host, "-S", "Never", "-u", "admin", "-p", "s3cret-pw", "-A", "Basic"}
		cmd := exec.Command("redfishtool", append(base, args...)...)
		cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redfishtool %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("Systems", "-I", "1", "get"); !strings.Contains(out, `"PowerState": "Off"`) || !strings.Contains(out, "0e1d6b2c") {
		t.Errorf("Systems get:\n%s", out)
	}
	run("Systems", "-I", "1", "reset", "On")
	if st := sim.System("1"); st.PowerState != "On" {
		t.Errorf("after redfishtool reset On: %s", st.PowerState)
	}
	run("Systems", "-I", "1", "setBootOverride", "Once", "Pxe")
	if st := sim.System("1"); st.BootTarget != "Pxe" || st.BootEnabled != "Once" {
		t.Errorf("after setBootOverride: %s/%s", st.BootTarget, st.BootEnabled)
	}
	// Wrong credentials are refused.
	cmd := exec.Command("redfishtool", "-r", host, "-S", "Never", "-u", "admin", "-p", "nope", "-A", "Basic", "Systems", "-I", "1", "get")
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("redfishtool with a wrong password succeeded:\n%s", out)
	}
}
