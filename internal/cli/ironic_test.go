package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ironic"
	"github.com/ironpool/ironpool/internal/ironictest"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// These tests run the real server (server.Main, as `ironpool serve` does)
// against a real, private Ironic with fake-hardware nodes, and drive it
// through the CLI, checking the outcome in Ironic itself.

// startWithIronic runs the server backed by the Ironic at url. The periodic
// sync is off so each test decides when Ironic is read; the retry backoff
// is short so convergence after an outage is quick to observe.
func startWithIronic(t *testing.T, url string) *env {
	t.Helper()
	m := servertest.Start(t, &server.Main{
		Ironic: server.IronicOptions{URL: url, DriverOverride: ironic.FakeDriver, SyncInterval: -1, RetryMax: time.Second}})
	return &env{t: t, m: m}
}

type fullNode struct {
	Name, State, Owner, Pending string
	IronicUUID                  string `json:"ironic_uuid"`
	LastError                   string `json:"last_error"`
	ProvisionState              string `json:"provision_state"`
	PowerState                  string `json:"power_state"`
	MaintenanceReason           string `json:"maintenance_reason"`
	AllocationID                string `json:"allocation_id"`
	ManagedBy                   string `json:"managed_by"`
	CPUs                        int
	MACs                        []string
	BMC                         struct{ Address string }
	ResourceClass               string `json:"resource_class"`
}

func (e *env) fullNodes(args ...string) map[string]fullNode {
	var out struct{ Nodes []fullNode }
	e.jsonOf(&out, append([]string{"node", "list"}, args...)...)
	m := map[string]fullNode{}
	for _, n := range out.Nodes {
		m[n.Name] = n
	}
	return m
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after %s: %s", what, d, detail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// allocNodes waits until every node of allocation id satisfies cond.
func (e *env) allocNodes(id string, d time.Duration, what string, cond func(fullNode) bool) map[string]fullNode {
	e.t.Helper()
	var got map[string]fullNode
	eventually(e.t, d, what, func() (bool, string) {
		got = e.fullNodes("--allocation", id)
		for _, n := range got {
			if !cond(n) {
				return false, fmt.Sprintf("%+v", n)
			}
		}
		return len(got) > 0, "no nodes"
	})
	return got
}

func makeFleet(t *testing.T, c *ironic.Client, prefix string, small, large int, extra ...ironictest.Spec) []string {
	var specs []ironictest.Spec
	for i := range small + large {
		rc, cpus := "rc-small", 8
		if i >= small {
			rc, cpus = "rc-large", 32
		}
		specs = append(specs, ironictest.Spec{Name: fmt.Sprintf("%s-%02d", prefix, i), ResourceClass: rc, CPUs: cpus,
			MACs: []string{fmt.Sprintf("52:54:%02x:00:00:%02x", len(prefix), i)}})
	}
	return ironictest.MakeNodes(t, c, append(specs, extra...))
}

func TestIronicBackend(t *testing.T) {
	t.Parallel()
	in := ironictest.Start(t)
	c := in.Connect(t)
	ctx := context.Background()
	uuids := makeFleet(t, c, "ir", 11, 11,
		ironictest.Spec{Name: "ext-active", ResourceClass: "rc-ext", CPUs: 4, MACs: []string{"52:54:01:00:00:01"}, State: "adopted"},
		ironictest.Spec{Name: "ext-manageable", ResourceClass: "rc-ext", CPUs: 4, MACs: []string{"52:54:01:00:00:02"}, State: "manageable"},
		ironictest.Spec{Name: "ext-norc", CPUs: 4, State: "adopted"},
	)
	fleet, extActive, extManageable := uuids[:22], uuids[22], uuids[23]
	top := startWithIronic(t, in.URL)
	e := top

	t.Run("Sync", func(t *testing.T) {
		e := &env{t: t, m: top.m}
		var r ironpool.SyncResult
		e.jsonOf(&r, "ironic", "sync")
		// 22 available + the manageable one (kept out as maintenance);
		// the two active ones are someone else's.
		if len(r.Imported) != 23 || r.Foreign != 2 || len(r.Skipped) != 0 {
			t.Fatalf("sync = %+v", r)
		}
		nodes := e.fullNodes()
		for i, u := range fleet {
			n := nodes[fmt.Sprintf("ir-%02d", i)]
			if n.IronicUUID != u || n.State != "available" || n.ProvisionState != "available" || len(n.MACs) != 1 ||
				!strings.HasPrefix(n.BMC.Address, "ipmi://10.9.") || n.ResourceClass == "" {
				t.Errorf("node ir-%02d = %+v", i, n)
			}
		}
		if n := nodes["ext-manageable"]; n.State != "maintenance" || !strings.HasPrefix(n.MaintenanceReason, "ironic: ") {
			t.Errorf("manageable node imported as %+v, want not allocatable", n)
		}
		if _, ok := nodes["ext-active"]; ok {
			t.Errorf("active foreign node imported")
		}
		e.jsonOf(&r, "ironic", "sync")
		if len(r.Imported) != 0 || len(r.Updated) != 0 || r.Unchanged != 23 {
			t.Errorf("second sync = %+v, want nothing to do", r)
		}
	})
	e.ok("flavor", "create", "small", "--resource-class", "rc-small", "--cpus", "8")
	e.ok("flavor", "create", "large", "--resource-class", "rc-large", "--cpus", "32")

	t.Run("HandoffAndRelease", func(t *testing.T) {
		e := &env{t: t, m: top.m}
		var a ironpool.Allocation
		e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=2", "--flavor", "large=3", "--mode", "handoff")
		held := e.allocNodes(a.ID, 20*time.Second, "checkout", func(n fullNode) bool { return n.Pending == "" })
		if len(held) != 5 {
			t.Fatalf("allocation holds %d nodes", len(held))
		}
		all, err := c.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inMaint := 0
		for _, n := range all {
			_, mine := held[n.Name]
			if mine != n.Maintenance {
				t.Errorf("Ironic node %s: maintenance %v, held %v", n.Name, n.Maintenance, mine)
			}
			if mine {
				inMaint++
				if want := "owner lab1, allocation " + a.ID; !strings.Contains(n.MaintenanceReason, want) {
					t.Errorf("reason %q does not name %q", n.MaintenanceReason, want)
				}
			}
		}
		if inMaint != 5 {
			t.Errorf("%d nodes in maintenance, want 5", inMaint)
		}
		e.ok("release", a.ID)
		before := time.Now()
		back := map[string]bool{}
		for name := range held {
			back[name] = true
		}
		eventually(t, 30*time.Second, "release", func() (bool, string) {
			nodes := e.fullNodes()
			for name := range back {
				if n := nodes[name]; n.State != "available" || n.Pending != "" {
					return false, fmt.Sprintf("%+v", n)
				}
			}
			return true, ""
		})
		t.Logf("5 nodes back to available %s after release", time.Since(before).Round(time.Millisecond))
		for name := range held {
			n, err := c.GetNode(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if n.Maintenance || n.ProvisionState != "available" {
				t.Errorf("Ironic node %s after release: maintenance %v state %q", name, n.Maintenance, n.ProvisionState)
			}
		}
		var ev struct{ Events []ironpool.Event }
		e.jsonOf(&ev, "events")
		cleaned := 0
		for _, x := range ev.Events {
			if x.Action == "node.cleaned" {
				cleaned++
			}
		}
		if cleaned < 5 {
			t.Errorf("%d node.cleaned events, want 5", cleaned)
		}
	})

	t.Run("RegisterUnregister", func(t *testing.T) {
		e := &env{t: t, m: top.m}
		e.ok("node", "add", "reg1", "--bmc", "ipmi://10.7.0.1:623", "--bmc-user", "root", "--mac", "52:54:0a:00:00:01",
			"--mac", "52:54:0a:00:00:02", "--cpus", "16", "--memory-mb", "65536", "--local-gb", "100", "--resource-class", "rc-reg")
		for range 2 { // idempotent
			e.ok("node", "register", "reg1")
		}
		n := e.fullNodes()["reg1"]
		if n.IronicUUID == "" || n.State != "available" || n.ManagedBy != "ironpool" || n.ProvisionState != "available" {
			t.Fatalf("after register: %+v", n)
		}
		in, err := c.GetNode(ctx, "reg1")
		if err != nil {
			t.Fatal(err)
		}
		if in.UUID != n.IronicUUID || !slices.Equal(in.MACs, []string{"52:54:0a:00:00:01", "52:54:0a:00:00:02"}) ||
			in.DriverInfo["ipmi_address"] != "10.7.0.1" || in.ResourceClass != "rc-reg" || in.CPUs != 16 || in.ManagedBy() != "ironpool" {
			t.Errorf("Ironic node = %+v", in)
		}
		for range 2 {
			e.ok("node", "unregister", "reg1")
		}
		if _, err := c.GetNode(ctx, n.IronicUUID); ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
			t.Errorf("after unregister GetNode = %v, want not found", err)
		}
		all, _ := c.ListNodes(ctx)
		for _, x := range all {
			if slices.Contains(x.MACs, "52:54:0a:00:00:01") {
				t.Errorf("port of reg1 still on %s", x.Name)
			}
		}
		if n := e.fullNodes()["reg1"]; n.IronicUUID != "" || n.State != "available" {
			t.Errorf("after unregister: %+v", n)
		}
		// Refused while allocated.
		e.ok("node", "register", "reg1")
		var a ironpool.Allocation
		e.jsonOf(&a, "allocate", "--owner", "lab9", "--constraint", "resource_class=rc-reg,count=1")
		if _, _, code := e.run("node", "unregister", "reg1"); code != 6 {
			t.Errorf("unregister of an allocated node: exit %d, want 6 (conflict)", code)
		}
		e.ok("release", a.ID)
	})

	t.Run("DeployUndeploy", func(t *testing.T) {
		e := &env{t: t, m: top.m}
		var a ironpool.Allocation
		e.jsonOf(&a, "allocate", "--owner", "ci7", "--flavor", "small=2", "--mode", "lessee")
		held := e.allocNodes(a.ID, 20*time.Second, "lessee checkout", func(n fullNode) bool { return n.Pending == "" })
		for name := range held {
			if n, _ := c.GetNode(ctx, name); n.Lessee != "ci7" {
				t.Errorf("Ironic lessee of %s = %q, want ci7", name, n.Lessee)
			}
		}
		out := e.ok("deploy", a.ID, "--image", "http://images.example/ubuntu.qcow2", "--checksum", strings.Repeat("ab", 32), "--wait", "--timeout", "2m")
		if !strings.Contains(out, ": deployed") || !strings.Contains(out, "deployed 2 nodes") {
			t.Errorf("deploy output:\n%s", out)
		}
		for name, n := range e.fullNodes("--allocation", a.ID) {
			in, _ := c.GetNode(ctx, name)
			if n.State != "deployed" || in.ProvisionState != "active" {
				t.Errorf("%s after deploy: pool %s, Ironic %s", name, n.State, in.ProvisionState)
			}
		}
		if _, errs, code := e.run("deploy", a.ID, "--image", "http://images.example/other.qcow2", "--wait"); code == 0 || !strings.Contains(errs, "another image") {
			t.Errorf("redeploy with another image: exit %d %s", code, errs)
		}
		e.ok("undeploy", a.ID)
		for name, n := range e.fullNodes("--allocation", a.ID) {
			in, _ := c.GetNode(ctx, name)
			// Still in a lessee allocation: still reserved in Ironic
			// (instance_uuid is ironpool's allocation, not the deploy's).
			if n.State != "allocated" || in.ProvisionState != "available" || in.InstanceUUID == "" {
				t.Errorf("%s after undeploy: pool %s, Ironic %s, instance_uuid %q (want ironpool's reservation)", name, n.State, in.ProvisionState, in.InstanceUUID)
			}
		}
		// Handoff nodes are the owner's to drive: refused.
		var h ironpool.Allocation
		e.jsonOf(&h, "allocate", "--owner", "lab3", "--flavor", "small=1", "--mode", "handoff")
		if _, _, code := e.run("deploy", h.ID, "--image", "http://x/y"); code != 6 {
			t.Errorf("deploy of a handoff allocation: exit %d, want 6", code)
		}
		e.ok("release", a.ID)
		e.ok("release", h.ID)
	})

	t.Run("InspectAndPower", func(t *testing.T) {
		e := &env{t: t, m: top.m}
		var name string
		eventually(t, 30*time.Second, "a free node", func() (bool, string) {
			for _, n := range e.fullNodes("--state", "available") {
				if strings.HasPrefix(n.Name, "ir-") {
					name = n.Name
					return true, ""
				}
			}
			return false, "none"
		})
		var n fullNode
		e.jsonOf(&n, "node", "inspect", name)
		if n.State != "available" || n.CPUs == 0 || len(n.MACs) != 1 {
			t.Errorf("after inspect: %+v", n)
		}
		for _, step := range []struct{ action, want string }{{"on", "power on"}, {"status", "power on"}, {"off", "power off"}} {
			out := e.ok("node", "power", name, step.action)
			if !strings.Contains(out, step.want) {
				t.Errorf("power %s: %q, want %q", step.action, out, step.want)
			}
			if ps, _ := c.PowerState(ctx, e.fullNodes()[name].IronicUUID); ps != step.want {
				t.Errorf("Ironic power after %s = %q", step.action, ps)
			}
		}
	})

	t.Run("ManageableAndAdopt", func(t *testing.T) {
		e := &env{t: t, m: top.m}
		var out struct{ Nodes []fullNode }
		e.jsonOf(&out, "node", "manageable")
		if len(out.Nodes) != 1 || out.Nodes[0].IronicUUID != extActive {
			t.Fatalf("manageable = %+v, want only ext-active", out.Nodes)
		}
		var a ironpool.Allocation
		e.jsonOf(&a, "node", "adopt", extActive, "--owner", "lab2", "--name", "adopted-1")
		if a.Owner != "lab2" || len(a.Nodes) != 1 || a.Nodes[0].Name != "adopted-1" || a.Nodes[0].State != ironpool.NodeDeployed {
			t.Fatalf("adopt = %+v", a)
		}
		e.jsonOf(&out, "node", "manageable")
		if len(out.Nodes) != 0 {
			t.Errorf("manageable after adopt = %+v", out.Nodes)
		}
		if _, _, code := e.run("node", "adopt", extActive, "--owner", "lab2"); code != 6 {
			t.Errorf("second adopt: exit %d, want 6", code)
		}
		var ev struct{ Events []ironpool.Event }
		e.jsonOf(&ev, "events")
		if !slices.ContainsFunc(ev.Events, func(x ironpool.Event) bool { return x.Action == "node.adopted" }) {
			t.Errorf("no node.adopted event")
		}
		// A manageable node goes through Ironic's adopt verb. It was
		// imported by sync as not allocatable: drop it from the pool first.
		e.ok("node", "delete", "ext-manageable")
		// A production adoption does not expire: --lease none. A bad
		// lease word is refused before anything is sent.
		if _, errs, code := e.run("node", "adopt", extManageable, "--owner", "lab2", "--lease", "forever"); code != 2 || !strings.Contains(errs, "lease") {
			t.Errorf("adopt --lease forever: exit %d %s, want 2 naming lease", code, errs)
		}
		e.jsonOf(&a, "node", "adopt", extManageable, "--owner", "lab2", "--lease", "none")
		if n, _ := c.GetNode(ctx, extManageable); n.ProvisionState != "active" {
			t.Errorf("Ironic state after adopt = %q", n.ProvisionState)
		}
		if until := time.Until(a.ExpiresAt); until < 100*365*24*time.Hour {
			t.Errorf("adopt --lease none expires in %s, want never (beyond a century)", until)
		}
	})
}

// TestIronicKilledDuringRelease kills Ironic (SIGKILL) right after a
// release of a 20-node handoff allocation, restarts it a little later, and
// expects every node back to available in ironpool and in Ironic with no
// operator action.
func TestIronicKilledDuringRelease(t *testing.T) {
	t.Parallel()
	in := ironictest.Start(t)
	c := in.Connect(t)
	ctx := context.Background()
	makeFleet(t, c, "kl", 10, 10)
	e := startWithIronic(t, in.URL)
	e.ok("ironic", "sync")
	e.ok("flavor", "create", "small", "--resource-class", "rc-small")
	e.ok("flavor", "create", "large", "--resource-class", "rc-large")
	var a ironpool.Allocation
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=10", "--flavor", "large=10", "--mode", "handoff")
	e.allocNodes(a.ID, 30*time.Second, "checkout", func(n fullNode) bool { return n.Pending == "" })

	e.ok("release", a.ID)
	in.Kill(t)
	eventually(t, 20*time.Second, "outage visible on nodes", func() (bool, string) {
		for _, n := range e.fullNodes() {
			if n.State == "cleaning" && n.Pending == "clean" && n.LastError != "" {
				return true, ""
			}
		}
		return false, "no node records the outage"
	})
	var al ironpool.Allocation
	e.jsonOf(&al, "allocation", "show", a.ID)
	if al.State != ironpool.AllocReleased {
		t.Errorf("allocation state during the outage = %s", al.State)
	}
	time.Sleep(2 * time.Second)
	in.Restart(t)
	start := time.Now()
	eventually(t, 60*time.Second, "convergence after restart", func() (bool, string) {
		nodes := e.fullNodes()
		for _, n := range nodes {
			if n.State != "available" || n.Pending != "" {
				return false, fmt.Sprintf("%+v", n)
			}
		}
		return len(nodes) == 20, fmt.Sprintf("%d nodes", len(nodes))
	})
	t.Logf("20 nodes available %s after Ironic restarted", time.Since(start).Round(time.Millisecond))
	all, err := c.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if n.Maintenance || n.ProvisionState != "available" {
			t.Errorf("Ironic node %s: maintenance %v state %q", n.Name, n.Maintenance, n.ProvisionState)
		}
	}
}
