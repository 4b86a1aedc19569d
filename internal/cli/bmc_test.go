package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/bmctest"
	"github.com/ironpool/ironpool/internal/redfishsim"
)

func pwFile(t *testing.T, pw string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

type bmcNode struct {
	Name       string            `json:"name"`
	State      string            `json:"state"`
	CPUs       int               `json:"cpus"`
	MemoryMB   int64             `json:"memory_mb"`
	LocalGB    int64             `json:"local_gb"`
	CPUArch    string            `json:"cpu_arch"`
	MACs       []string          `json:"macs"`
	PowerState string            `json:"power_state"`
	ManagedBy  string            `json:"managed_by"`
	Owner      string            `json:"owner"`
	Reason     string            `json:"maintenance_reason"`
	Fields     map[string]string `json:"fields"`
	BMC        struct {
		Address  string `json:"address"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"bmc"`
}

func (e *env) fullBMCNode(name string) bmcNode {
	e.t.Helper()
	var n bmcNode
	e.jsonOf(&n, "node", "show", name)
	return n
}

func (e *env) bmcNodes() map[string]bmcNode {
	e.t.Helper()
	var out struct{ Nodes []bmcNode }
	e.jsonOf(&out, "node", "list")
	m := map[string]bmcNode{}
	for _, n := range out.Nodes {
		m[n.Name] = n
	}
	return m
}

// TestDirectPowerIPMI: `node power` and `node boot-device` on a node not in
// Ironic go to its BMC, here OpenIPMI's ipmi_sim, whose state files show
// each change.
func TestDirectPowerIPMI(t *testing.T) {
	sim := bmctest.StartIPMISim(t)
	e := start(t)
	e.ok("node", "add", "n1", "--bmc", sim.Address(), "--bmc-user", sim.User, "--bmc-password-file", pwFile(t, sim.Password), "--cpus", "4")
	for _, s := range []struct{ action, want, file string }{
		{"on", "power on", "1"}, {"status", "power on", "1"}, {"off", "power off", "0"}, {"reboot", "power on", "1"},
	} {
		out := e.ok("node", "power", "n1", s.action)
		if !strings.Contains(out, s.want) {
			t.Errorf("power %s printed %q, want %q", s.action, out, s.want)
		}
		if got := sim.State(t, "power"); got != s.file {
			t.Errorf("after power %s the sim's power.state = %q, want %q", s.action, got, s.file)
		}
	}
	if n := e.bmcNodes()["n1"]; n.PowerState != "power on" {
		t.Errorf("node power_state = %q", n.PowerState)
	}
	e.ok("node", "boot-device", "n1", "pxe", "--once")
	if got := sim.State(t, "boot"); got != "pxe" {
		t.Errorf("boot.state = %q, want pxe", got)
	}
	e.ok("node", "boot-device", "n1", "bios")
	if got := sim.State(t, "boot"); got != "bios" {
		t.Errorf("boot.state = %q, want bios", got)
	}
	var ev struct {
		Events []struct{ Action, Summary string }
	}
	e.jsonOf(&ev, "events", "--subject", "node/n1")
	var actions []string
	for _, x := range ev.Events {
		actions = append(actions, x.Action)
		if strings.Contains(x.Summary, sim.Password) {
			t.Errorf("event carries the password: %s", x.Summary)
		}
	}
	if !slices.Contains(actions, "node.power") || !slices.Contains(actions, "node.boot_device") {
		t.Errorf("events %v lack node.power / node.boot_device", actions)
	}

	// Inspection over IPMI reads Get Device ID: the manufacturer (0x1291)
	// and product (0xf02) ids the sim's emu file gives its BMC.
	e.ok("node", "inspect", "n1")
	if n := e.fullBMCNode("n1"); n.Fields["ipmi_manufacturer_id"] != "4753" || n.Fields["ipmi_product_id"] != "3842" || n.CPUs != 4 {
		t.Errorf("after IPMI inspect: %+v", n)
	}

	// The suite can be chosen by a node field instead: ipmi_sim has no
	// suite 17, the default, so this node works only through the field.
	plain := strings.Replace(sim.Address(), "?cipher=3", "", 1)
	e.ok("node", "add", "n4", "--bmc", plain, "--bmc-user", sim.User, "--bmc-password-file", pwFile(t, sim.Password), "--field", "ipmi_cipher_suite=3")
	if out := e.ok("node", "power", "n4", "status"); !strings.Contains(out, "power on") {
		t.Errorf("power status through fields.ipmi_cipher_suite: %q", out)
	}
	e.ok("node", "set", "n4", "fields.ipmi_cipher_suite=")
	if _, errs, code := e.run("node", "power", "n4", "status"); code == 0 {
		t.Errorf("suite 17 against ipmi_sim succeeded: %s", errs)
	}
	e.ok("node", "delete", "n4")

	// A wrong password names the node and the user, never the password.
	e.ok("node", "add", "n2", "--bmc", sim.Address(), "--bmc-user", sim.User, "--bmc-password-file", pwFile(t, "not-the-pw-42"))
	_, errs, code := e.run("node", "power", "n2", "on")
	if code != 2 || !strings.Contains(errs, "node n2") || !strings.Contains(errs, "admin") || strings.Contains(errs, "not-the-pw-42") {
		t.Errorf("wrong password: exit %d: %s", code, errs)
	}
	// cipher=0 is refused at the door: the node is never stored.
	before := e.snapshot()
	_, errs, code = e.run("node", "add", "n3", "--bmc", strings.Replace(sim.Address(), "cipher=3", "cipher=0", 1))
	if code != 2 || !strings.Contains(errs, "cipher=0 is refused") || e.snapshot() != before {
		t.Errorf("cipher=0: exit %d: %s", code, errs)
	}
}

// TestDirectPowerRedfishAllocation powers an allocation's nodes in
// parallel through the project's Redfish simulator; one slow BMC fails
// alone, within its own timeout, and does not hold the others.
func TestDirectPowerRedfishAllocation(t *testing.T) {
	e := start(t)
	pw := pwFile(t, "s3cret-pw")
	var sims []*redfishsim.Sim
	for i := range 3 {
		sim := redfishsim.New("admin", "s3cret-pw", redfishsim.System{ID: "1", UUID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i),
			CPUs: 8, MemoryGiB: 16, Arch: "x86", DiskBytes: 100 << 30, MACs: []string{fmt.Sprintf("52:54:00:bb:00:0%d", i)}})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		sims = append(sims, sim)
		e.ok("node", "add", fmt.Sprintf("r%d", i), "--bmc", "redfish+"+srv.URL+"/redfish/v1/Systems/1?timeout=2s",
			"--bmc-user", "admin", "--bmc-password-file", pw, "--cpus", "8")
	}
	var al struct{ ID string }
	e.jsonOf(&al, "allocate", "--owner", "lab1", "--constraint", "cpus>=1,count=3")
	e.ok("node", "power", "--allocation", al.ID, "on")
	for i, s := range sims {
		if st := s.System("1"); st.PowerState != "On" {
			t.Errorf("r%d after power on: %s", i, st.PowerState)
		}
	}
	sims[1].SetDelay(10 * time.Second)
	begin := time.Now()
	out, errs, code := e.run("node", "power", "--allocation", al.ID, "off")
	took := time.Since(begin)
	sims[1].SetDelay(0)
	if code != 8 || !strings.Contains(errs, "1 of 3 nodes failed") || !strings.Contains(out, "r1") || !strings.Contains(out, "FAILED") {
		t.Errorf("one slow BMC: exit %d\n%s\n%s", code, out, errs)
	}
	if took > 5*time.Second {
		t.Errorf("the slow BMC held the request %s (its bound is 2s)", took)
	}
	if sims[0].System("1").PowerState != "Off" || sims[2].System("1").PowerState != "Off" {
		t.Errorf("the healthy nodes were not powered off")
	}
	e.ok("node", "boot-device", "--allocation", al.ID, "pxe", "--once")
	for i, s := range sims {
		if st := s.System("1"); st.BootTarget != "Pxe" || st.BootEnabled != "Once" {
			t.Errorf("r%d boot: %s/%s", i, st.BootTarget, st.BootEnabled)
		}
	}
	// Inspection without Ironic reads the Redfish inventory.
	e.ok("node", "set", "r0", "cpus=1", "memory_mb=1")
	e.ok("node", "inspect", "r0")
	n := e.bmcNodes()["r0"]
	if n.CPUs != 8 || n.MemoryMB != 16384 || n.LocalGB != 100 || n.CPUArch != "x86_64" || !slices.Equal(n.MACs, []string{"52:54:00:bb:00:00"}) ||
		n.Fields["system_uuid"] != "00000000-0000-4000-8000-000000000000" {
		t.Errorf("after inspect: %+v", n)
	}
}

type discoverReport struct {
	DryRun bool `json:"dry_run"`
	Items  []struct {
		System, UUID, Name, Action, Reason string
		Node                               *bmcNode
	}
}

func (r discoverReport) actions() map[string]string {
	m := map[string]string{}
	for _, it := range r.Items {
		m[it.Name] = it.Action
	}
	return m
}

// TestDiscoverMockups runs discovery against DMTF's own mockups: the
// nodes carry the MACs and specs the mockups state, a second run changes
// nothing, and a dry run writes nothing.
func TestDiscoverMockups(t *testing.T) {
	e := start(t)
	pw := pwFile(t, "mock-pw")

	bladed := bmctest.StartMockup(t, "public-bladed")
	url := "redfish+http://" + bladed.Host
	before := e.snapshot()
	var dry discoverReport
	e.jsonOf(&dry, "node", "discover", url, "--bmc-user", "root", "--bmc-password-file", pw, "--pool", "blades", "--dry-run")
	if !dry.DryRun || len(dry.Items) != 4 || e.snapshot() != before {
		t.Fatalf("dry run: %+v; wrote something: %v", dry, e.snapshot() != before)
	}
	var rep discoverReport
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", url, "--bmc-user", "root", "--bmc-password-file", pw, "--pool", "blades")
	nodes := e.bmcNodes()
	// What public-bladed states for each of its four blades: one
	// x86-64 processor, 64 GiB, SimpleStorage devices without a
	// capacity, no EthernetInterfaces on the systems, no UUID.
	for _, id := range []string{"529QB9450R6", "529QB9451R6", "529QB9452R6", "529QB9453R6"} {
		n, ok := nodes[id]
		if !ok {
			t.Errorf("no node %s; report %+v", id, rep)
			continue
		}
		if n.CPUs != 1 || n.MemoryMB != 65536 || n.LocalGB != 0 || n.CPUArch != "x86_64" || len(n.MACs) != 0 ||
			n.BMC.Address != url+"/redfish/v1/Systems/"+id || n.BMC.Username != "root" || n.BMC.Password != "******" {
			t.Errorf("node %s: %+v", id, n)
		}
		if rep.actions()[id] != "imported" {
			t.Errorf("%s: %s", id, rep.actions()[id])
		}
	}
	if len(nodes) != 4 {
		t.Errorf("%d nodes after discovery of 4 systems", len(nodes))
	}
	before = e.snapshot()
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", url, "--bmc-user", "root", "--bmc-password-file", pw, "--pool", "blades")
	for name, act := range rep.actions() {
		if act != "unchanged" {
			t.Errorf("second run: %s %s", name, act)
		}
	}
	if e.snapshot() != before {
		t.Errorf("a second discovery changed the pool")
	}

	rack := bmctest.StartMockup(t, "public-rackmount1")
	rurl := "redfish+http://" + rack.Host
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", rurl, "--bmc-user", "root", "--bmc-password-file", pw)
	n := e.bmcNodes()["web483"]
	// public-rackmount1's 437XR1138R2: HostName web483, 2 processors,
	// 96 GiB, drives of 8 and 4 TB (local_gb is the largest, as Ironic
	// reports it), and its EthernetInterfaces' MACs (VLAN1 repeats one).
	wantMACs := []string{"12:44:6a:3b:04:11", "aa:bb:cc:dd:ee:00", "aa:bb:cc:dd:ee:fe"}
	if n.CPUs != 2 || n.MemoryMB != 98304 || n.LocalGB != 8000000000000/(1<<30) || n.CPUArch != "x86_64" ||
		!slices.Equal(sorted(n.MACs), wantMACs) || n.Fields["system_uuid"] != "38947555-7742-3448-3784-823347823834" {
		t.Errorf("web483: %+v (report %+v)", n, rep)
	}
	// Idempotent by UUID: a renamed node is found again, not duplicated.
	e.ok("node", "set", "web483", "name=rack-a-1")
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", rurl, "--bmc-user", "root", "--bmc-password-file", pw)
	if a := rep.actions(); a["rack-a-1"] != "unchanged" || len(e.bmcNodes()) != 5 {
		t.Errorf("after rename: %v, %d nodes", a, len(e.bmcNodes()))
	}
	// A held node's BMC credentials do not change under its allocation.
	var held struct{ ID string }
	e.jsonOf(&held, "allocate", "--owner", "lab1", "--constraint", "cpus>=2,count=1")
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", rurl, "--bmc-user", "admin2", "--bmc-password-file", pw)
	if a := rep.actions(); a["rack-a-1"] != "skipped" || e.bmcNodes()["rack-a-1"].BMC.Username != "root" {
		t.Errorf("held node: %+v", rep)
	}
	e.ok("release", held.ID)
	// Changed credentials are an update.
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", rurl, "--bmc-user", "admin2", "--bmc-password-file", pw)
	if a := rep.actions(); a["rack-a-1"] != "updated" || e.bmcNodes()["rack-a-1"].BMC.Username != "admin2" {
		t.Errorf("credential change: %v", a)
	}

	// public-composability reuses a MAC of public-rackmount1: the whole
	// run is refused, naming the clash, and writes nothing.
	comp := bmctest.StartMockup(t, "public-composability")
	curl := "redfish+http://" + comp.Host
	before = e.snapshot()
	_, errs, code := e.run("node", "discover", curl, "--bmc-user", "root", "--bmc-password-file", pw, "--pool", "comp")
	if code != 6 || !strings.Contains(errs, "MAC aa:bb:cc:dd:ee:fe belongs to node rack-a-1") || e.snapshot() != before {
		t.Errorf("MAC clash: exit %d: %s", code, errs)
	}
	e = start(t) // a pool without the rack-mount node
	rep = discoverReport{}
	rep = discoverReport{}
	e.jsonOf(&rep, "node", "discover", curl, "--bmc-user", "root", "--bmc-password-file", pw, "--pool", "comp")
	// Its three physical systems report one UUID and, like
	// ComposedSystem, the MAC aa:bb:cc:dd:ee:fd: ComposedSystem is taken
	// and those three are skipped with the reason. The two composed
	// systems share the HostName composed-system: the second becomes its Id.
	got := rep.actions()
	if got["composed-system"] != "imported" || got["ComposedSystem2"] != "imported" {
		t.Errorf("composability: %+v", rep)
	}
	skipped := 0
	for _, it := range rep.Items {
		if it.Action == "skipped" {
			skipped++
			if !strings.Contains(it.Reason, "is also reported by") {
				t.Errorf("skip reason: %q", it.Reason)
			}
		}
	}
	if skipped != 3 || len(e.bmcNodes()) != 2 {
		t.Errorf("skipped %d, want 3: %+v", skipped, rep)
	}
	if n := e.bmcNodes()["composed-system"]; n.Fields["composed"] != "true" {
		t.Errorf("composed system not marked composed: %+v", n)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestDiscoverBadInput: each refusal is clear and writes nothing.
func TestDiscoverBadInput(t *testing.T) {
	e := start(t)
	pw := pwFile(t, "pw")
	sim := redfishsim.New("admin", "right-pw-1")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	before := e.snapshot()
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"node", "discover", "ftp://127.0.0.1/"}, 2, "url: scheme"},
		{[]string{"node", "discover", "ipmi://127.0.0.1"}, 2, "must be a Redfish service"},
		{[]string{"node", "discover", "redfish+http://127.0.0.1:1?timeout=1s", "--bmc-user", "u", "--bmc-password-file", pw}, 8, "cannot be reached"},
		{[]string{"node", "discover", "redfish+" + srv.URL, "--bmc-user", "admin", "--bmc-password-file", pw}, 2, `refused the credentials of user "admin"`},
		{[]string{"node", "discover", "redfish+" + srv.URL, "--bmc-user", "admin", "--bmc-password-file", pwFile(t, "right-pw-1")}, 5, "has no ComputerSystems"},
		{[]string{"node", "discover", "redfish+" + srv.URL, "--pool", "bad pool"}, 2, "pool"},
		{[]string{"compose", "list", "redfish+" + srv.URL, "--bmc-user", "admin", "--bmc-password-file", pwFile(t, "right-pw-1")}, 5, "has no CompositionService"},
		{[]string{"node", "compose", "c9", "--service", "redfish+" + srv.URL, "--bmc-user", "admin", "--bmc-password-file", pwFile(t, "right-pw-1"), "--cpus", "1"}, 5, "has no CompositionService"},
		{[]string{"node", "discover", "redfish+" + srv.URL, "--bmc-password-file", "/nonexistent"}, 2, "bmc-password-file"},
	} {
		_, errs, code := e.run(c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) || strings.Contains(errs, "right-pw-1") {
			t.Errorf("%v: exit %d: %s (want %d, %q)", c.args, code, errs, c.code, c.msg)
		}
	}
	if e.snapshot() != before {
		t.Errorf("a refused discovery changed the pool")
	}
}

// TestComposeMockup composes and decomposes against DMTF's
// public-composability: the system appears in the service and the pool,
// and decompose removes both.
func TestComposeMockup(t *testing.T) {
	e := start(t)
	pw := pwFile(t, "mock-pw")
	comp := bmctest.StartMockup(t, "public-composability")
	url := "redfish+http://" + comp.Host
	var list struct {
		Zones []struct {
			ID     string
			Blocks []string
		}
		Blocks []struct {
			ID, State string
			Types     []string
			CPUs      int   `json:"cpus"`
			MemoryMB  int64 `json:"memory_mb"`
		}
	}
	e.jsonOf(&list, "compose", "list", url, "--bmc-user", "root", "--bmc-password-file", pw)
	if len(list.Zones) != 3 || len(list.Blocks) == 0 {
		t.Fatalf("compose list: %+v", list)
	}
	out := e.ok("compose", "list", url, "--bmc-user", "root", "--bmc-password-file", pw)
	if !strings.Contains(out, "ComputeBlock1") || !strings.Contains(out, "ZONE") {
		t.Errorf("compose list table:\n%s", out)
	}
	// Zone 1 holds ComputeBlock1 and drives; compose a system of
	// ComputeBlock1 and DriveBlock5.
	systemsBefore := systemsIn(t, comp)
	var n bmcNode
	e.jsonOf(&n, "node", "compose", "c1", "--service", url, "--bmc-user", "root", "--bmc-password-file", pw,
		"--zone", "1", "--block", "ComputeBlock1", "--block", "DriveBlock5", "--pool", "composed")
	if n.Name != "c1" || n.Fields["composed"] != "true" || n.ManagedBy != "redfish-composition" || !strings.HasPrefix(n.BMC.Address, url+"/redfish/v1/Systems/") {
		t.Fatalf("composed node: %+v", n)
	}
	systemsAfter := systemsIn(t, comp)
	if len(systemsAfter) != len(systemsBefore)+1 {
		t.Fatalf("the service has %d systems after compose, had %d", len(systemsAfter), len(systemsBefore))
	}
	sysPath := strings.TrimPrefix(n.BMC.Address, url)
	if !slices.Contains(systemsAfter, sysPath) {
		t.Errorf("the node's system %s is not in the service's %v", sysPath, systemsAfter)
	}

	// Refused while allocated.
	var al struct{ ID string }
	e.jsonOf(&al, "allocate", "--owner", "lab1", "--constraint", "count=1", "--pool", "composed")
	_, errs, code := e.run("node", "decompose", "c1")
	if code != 6 || !strings.Contains(errs, "release it") {
		t.Errorf("decompose while allocated: exit %d: %s", code, errs)
	}
	if len(systemsIn(t, comp)) != len(systemsAfter) {
		t.Errorf("a refused decompose changed the service")
	}
	e.ok("release", al.ID)
	e.ok("node", "decompose", "c1")
	if _, ok := e.bmcNodes()["c1"]; ok {
		t.Errorf("c1 still in the pool after decompose")
	}
	if s := systemsIn(t, comp); slices.Contains(s, sysPath) || len(s) != len(systemsBefore) {
		t.Errorf("the service still has %s: %v", sysPath, s)
	}

	// Bad requests change nothing.
	before := e.snapshot()
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--zone", "9", "--block", "ComputeBlock1"}, 2, `zone: "9" is not a resource zone`},
		{[]string{"--zone", "1", "--block", "NoSuchBlock"}, 2, "blocks[0]"},
		{[]string{"--zone", "1", "--block", "ComputeBlock2"}, 2, "not in zone 1"},
		{[]string{"--block", "ComputeBlock1"}, 1, "--zone is required"},
		{[]string{"--cpus", "9999"}, 3, "no unused compute block"},
	} {
		args := append([]string{"node", "compose", "c2", "--service", url, "--bmc-user", "root", "--bmc-password-file", pw}, c.args...)
		_, errs, code := e.run(args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d: %s (want %d, %q)", c.args, code, errs, c.code, c.msg)
		}
	}
	if e.snapshot() != before || len(systemsIn(t, comp)) != len(systemsBefore) {
		t.Errorf("a refused compose changed something")
	}
	_, errs, code = e.run("node", "decompose", "nope")
	if code != 5 {
		t.Errorf("decompose of an unknown node: exit %d: %s", code, errs)
	}
}

// systemsIn lists the mockup server's Systems collection, read over
// HTTP with a plain client (the server keeps POSTed members in memory).
func systemsIn(t *testing.T, m *bmctest.Mockup) []string {
	t.Helper()
	resp, err := http.Get(m.URL + "/Systems")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var coll struct {
		Members []struct {
			ID string `json:"@odata.id"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&coll); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range coll.Members {
		out = append(out, m.ID)
	}
	return out
}
