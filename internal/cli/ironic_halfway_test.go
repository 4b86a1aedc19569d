package cli_test

import (
	"context"
	"fmt"
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

// TestIronicNoHalfWay drives the half-way cases against a real Ironic
// whose fake steps take seconds: someone else's maintenance during an
// allocation, inspect on a driver that cannot inspect, a release in the
// middle of a deploy, and ironpool itself restarted while nodes clean. In
// every case pool and Ironic end agreeing and no node is left unusable.
func TestIronicNoHalfWay(t *testing.T) {
	in := ironictest.Start(t, "IRONIC_FAKE_DELAY=2")
	c := in.Connect(t)
	ctx := context.Background()
	makeFleet(t, c, "hw", 4, 0)
	other := otherConsumer{t, in.URL}
	db := filepath.Join(t.TempDir(), "halfway.db")
	opts := server.IronicOptions{URL: in.URL, DriverOverride: ironic.FakeDriver, SyncInterval: -1, RetryMax: time.Second}
	first := servertest.Start(t, &server.Main{DB: db, Ironic: opts})
	e := &env{t: t, m: first}
	e.ok("ironic", "sync")
	e.ok("flavor", "create", "small", "--resource-class", "rc-small")
	available := func(e *env, name string) func() (bool, string) {
		return func() (bool, string) {
			n := e.fullNodes()[name]
			return n.State == "available" && n.Pending == "", fmt.Sprintf("%+v", n)
		}
	}

	// Someone else's maintenance during the allocation: the node is not
	// handed back uncleaned; once it is lifted, it is cleaned and returns.
	var a ironpool.Allocation
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=1", "--mode", "lessee")
	e.allocNodes(a.ID, time.Minute, "checkout", func(n fullNode) bool { return n.Pending == "" })
	name := a.Items[0].Nodes[0]
	if code, out := other.do("PUT", "/v1/nodes/"+name+"/maintenance", map[string]any{"reason": "DC ticket 88"}); code != 202 {
		t.Fatalf("operator maintenance in Ironic: %d %v", code, out)
	}
	e.ok("release", a.ID)
	eventually(t, time.Minute, "the released node waits for the maintenance", func() (bool, string) {
		n := e.fullNodes()[name]
		return n.State == "cleaning" && strings.Contains(n.LastError, "DC ticket 88"), fmt.Sprintf("%+v", n)
	})
	time.Sleep(2 * time.Second)
	if n := e.fullNodes()[name]; n.State != "cleaning" {
		t.Fatalf("a node in someone else's maintenance left cleaning: %+v", n)
	}
	if code, out := other.do("DELETE", "/v1/nodes/"+name+"/maintenance", nil); code != 202 {
		t.Fatalf("lift the maintenance: %d %v", code, out)
	}
	eventually(t, 2*time.Minute, "cleaned once the maintenance is lifted", available(e, name))

	// Inspect on a driver that cannot inspect: refused, and the Ironic
	// node is put back where it was, the pool node as it was.
	if code, out := other.do("PATCH", "/v1/nodes/"+name, []map[string]any{{"op": "replace", "path": "/inspect_interface", "value": "no-inspect"}}); code != 200 {
		t.Fatalf("set no-inspect: %d %v", code, out)
	}
	if _, _, code := e.run("node", "inspect", name); code == 0 {
		t.Fatal("inspect with no-inspect succeeded")
	}
	eventually(t, 2*time.Minute, "Ironic node back to available after the refused inspect", func() (bool, string) {
		n, err := c.GetNode(ctx, name)
		return err == nil && n.ProvisionState == "available" && n.TargetProvisionState == "", fmt.Sprintf("%+v %v", n.ProvisionState, err)
	})
	if n := e.fullNodes()[name]; n.State != "available" {
		t.Errorf("pool node after a refused inspect: %+v, want available", n)
	}

	// A release in the middle of a deploy leaves no instance on the node.
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=2", "--mode", "lessee")
	e.allocNodes(a.ID, time.Minute, "checkout", func(n fullNode) bool { return n.Pending == "" })
	e.ok("deploy", a.ID, "--image", "http://images.example/x.qcow2", "--checksum", strings.Repeat("ef", 32))
	time.Sleep(time.Second)
	e.ok("release", a.ID)

	// And ironpool stops while those nodes clean; another server on the
	// same database finishes the job.
	time.Sleep(time.Second)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := servertest.Start(t, &server.Main{DB: db, SecretKeyFile: filepath.Join(first.DataDir, "secret.key"), Ironic: opts})
	e2 := &env{t: t, m: second}
	e2.m.AdminToken = first.AdminToken
	for _, n := range a.Items[0].Nodes {
		eventually(t, 3*time.Minute, "converged after release mid-deploy and a restart", available(e2, n))
		in, err := c.GetNode(ctx, n)
		if err != nil || in.InstanceUUID != "" || in.ProvisionState != "available" || in.Lessee != "" {
			t.Errorf("Ironic node %s after all: %s instance_uuid %q lessee %q (%v)", n, in.ProvisionState, in.InstanceUUID, in.Lessee, err)
		}
	}

	// A failed deploy, then release: nothing of the deploy stays on the
	// node. The direct deploy interface without deploy images fails in
	// Ironic's validation, after ironpool has written instance_info.
	var f ironpool.Allocation
	e2.jsonOf(&f, "allocate", "--owner", "lab1", "--flavor", "small=1", "--mode", "lessee")
	e2.allocNodes(f.ID, time.Minute, "checkout", func(n fullNode) bool { return n.Pending == "" })
	fname := f.Items[0].Nodes[0]
	if code, out := other.do("PATCH", "/v1/nodes/"+fname, []map[string]any{{"op": "replace", "path": "/deploy_interface", "value": "direct"}}); code != 200 {
		t.Fatalf("set the direct deploy interface: %d %v", code, out)
	}
	e2.ok("deploy", f.ID, "--image", "http://images.example/x.qcow2", "--checksum", strings.Repeat("ab", 32))
	e2.allocNodes(f.ID, 2*time.Minute, "deploy failed", func(n fullNode) bool {
		return n.Pending == "" && n.State == "allocated" && strings.Contains(n.LastError, "deploy")
	})
	// Back to the fake deploy interface, or Ironic's own cleaning would
	// need the agent too (that is the failed-clean case, not this one).
	// (Ironic changes interfaces of a failed node only in maintenance.)
	if code, out := other.do("PUT", "/v1/nodes/"+fname+"/maintenance", map[string]any{"reason": "swap interface"}); code != 202 {
		t.Fatalf("maintenance for the interface change: %d %v", code, out)
	}
	if code, out := other.do("PATCH", "/v1/nodes/"+fname, []map[string]any{{"op": "replace", "path": "/deploy_interface", "value": "fake"}}); code != 200 {
		t.Fatalf("restore the fake deploy interface: %d %v", code, out)
	}
	if code, out := other.do("DELETE", "/v1/nodes/"+fname+"/maintenance", nil); code != 202 {
		t.Fatalf("end the maintenance: %d %v", code, out)
	}
	if code, node := other.do("GET", "/v1/nodes/"+fname, nil); code != 200 || len(asMap(node["instance_info"])) == 0 {
		t.Fatalf("the failed deploy left no instance_info to clear (%v): the test would prove nothing", node["instance_info"])
	}
	e2.ok("release", f.ID)
	eventually(t, 2*time.Minute, "released after the failed deploy", available(e2, fname))
	if code, node := other.do("GET", "/v1/nodes/"+fname, nil); code != 200 || node["instance_uuid"] != nil || len(asMap(node["instance_info"])) != 0 {
		t.Errorf("after a failed deploy and release, Ironic node %s keeps instance_uuid %v instance_info %v", fname, node["instance_uuid"], node["instance_info"])
	}
}

// asMap is v as a JSON object (nil when it is not one).
func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
