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

// TestIronicSeveralEndpoints: two real Ironics behind one pool. One sync
// imports both (and reports each); one allocation spans both; while one
// Ironic is down its nodes' release waits and the other's completes, and
// after it restarts everything converges with no operator step. A server
// that reaches only one of the two never hands out the other's nodes.
func TestIronicSeveralEndpoints(t *testing.T) {
	inA, inB := ironictest.Start(t), ironictest.Start(t)
	cA, cB := inA.Connect(t), inB.Connect(t)
	ctx := context.Background()
	makeFleet(t, cA, "ea", 2, 0)
	makeFleet(t, cB, "ebb", 2, 0) // a prefix of another length: other MACs
	db := filepath.Join(t.TempDir(), "shared.db")
	both := servertest.Start(t, &server.Main{DB: db, Ironic: server.IronicOptions{URL: inA.URL,
		Endpoints:      []server.IronicEndpoint{{Name: "b", URL: inB.URL}},
		DriverOverride: ironic.FakeDriver, SyncInterval: -1, RetryMax: time.Second}})
	e := &env{t: t, m: both}
	var r ironpool.SyncResult
	e.jsonOf(&r, "ironic", "sync")
	if len(r.Imported) != 4 || len(r.Endpoints) != 2 {
		t.Fatalf("sync of two Ironics = %+v, want 4 imported and one result per endpoint", r)
	}
	e.ok("flavor", "create", "small", "--resource-class", "rc-small")
	var a ironpool.Allocation
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=4", "--mode", "lessee")
	e.allocNodes(a.ID, 30*time.Second, "checkout in both Ironics", func(n fullNode) bool { return n.Pending == "" })
	for _, c := range []*ironic.Client{cA, cB} {
		nodes, err := c.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Lessee != "lab1" || n.InstanceUUID == "" {
				t.Errorf("Ironic %s node %s: lessee %q instance_uuid %q; want checked out and reserved", c.Endpoint(), n.Name, n.Lessee, n.InstanceUUID)
			}
		}
	}

	inB.Kill(t)
	e.ok("release", a.ID)
	eventually(t, 60*time.Second, "A's nodes back while B is down", func() (bool, string) {
		nodes := e.fullNodes()
		for name, n := range nodes {
			if strings.HasPrefix(name, "ea-") && n.State != "available" {
				return false, fmt.Sprintf("%+v", n)
			}
			if strings.HasPrefix(name, "ebb-") && n.State == "available" {
				return false, "a node of the stopped Ironic was returned uncleaned: " + name
			}
		}
		return true, ""
	})
	inB.Restart(t)
	eventually(t, 90*time.Second, "B's nodes back after its restart", func() (bool, string) {
		for _, n := range e.fullNodes() {
			if n.State != "available" || n.Pending != "" {
				return false, fmt.Sprintf("%+v", n)
			}
		}
		return true, ""
	})
	for _, c := range []*ironic.Client{cA, cB} {
		nodes, _ := c.ListNodes(ctx)
		for _, n := range nodes {
			if n.Lessee != "" || n.InstanceUUID != "" || n.ProvisionState != "available" {
				t.Errorf("after release, Ironic %s node %s: lessee %q instance_uuid %q state %s", c.Endpoint(), n.Name, n.Lessee, n.InstanceUUID, n.ProvisionState)
			}
		}
	}

	// A second replica on the same database that reaches only Ironic A:
	// B's nodes are not its to hand out.
	onlyA := servertest.Start(t, &server.Main{DB: db, SecretKeyFile: filepath.Join(both.DataDir, "secret.key"),
		Ironic: server.IronicOptions{URL: inA.URL, DriverOverride: ironic.FakeDriver, SyncInterval: -1}})
	ea := &env{t: t, m: onlyA}
	ea.m.AdminToken = both.AdminToken
	if _, errs, code := ea.run("allocate", "--owner", "lab2", "--flavor", "small=3"); code != 3 {
		t.Fatalf("allocate 3 on a replica reaching 2 of the 4 nodes: exit %d %s, want 3", code, errs)
	}
	var got ironpool.Allocation
	ea.jsonOf(&got, "allocate", "--owner", "lab2", "--flavor", "small=2")
	for _, n := range got.Items[0].Nodes {
		if !strings.HasPrefix(n, "ea-") {
			t.Errorf("a replica that reaches only Ironic A handed out %s", n)
		}
	}
}

// TestIronicDeploySurvivesRestart: a deploy is a pending step stored with
// the nodes and the allocation, not work in one server's memory. The
// server that took the request stops while Ironic is still deploying (fake
// deploys take seconds here); another server on the same database finishes
// the job and reports it.
func TestIronicDeploySurvivesRestart(t *testing.T) {
	in := ironictest.Start(t, "IRONIC_FAKE_DELAY=3")
	c := in.Connect(t)
	makeFleet(t, c, "dr", 2, 0)
	db := filepath.Join(t.TempDir(), "deploy.db")
	opts := server.IronicOptions{URL: in.URL, DriverOverride: ironic.FakeDriver, SyncInterval: -1, RetryMax: time.Second}
	first := servertest.Start(t, &server.Main{DB: db, Ironic: opts})
	e := &env{t: t, m: first}
	e.ok("ironic", "sync")
	e.ok("flavor", "create", "small", "--resource-class", "rc-small")
	var a ironpool.Allocation
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=2", "--mode", "lessee")
	e.ok("deploy", a.ID, "--image", "http://images.example/x.qcow2", "--checksum", strings.Repeat("cd", 32))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := servertest.Start(t, &server.Main{DB: db, SecretKeyFile: filepath.Join(first.DataDir, "secret.key"), Ironic: opts})
	e2 := &env{t: t, m: second}
	e2.m.AdminToken = first.AdminToken
	e2.allocNodes(a.ID, 3*time.Minute, "deploy finished by the second server", func(n fullNode) bool {
		return n.State == "deployed" && n.Pending == ""
	})
	for _, name := range a.Items[0].Nodes {
		if n, _ := c.GetNode(context.Background(), name); n.ProvisionState != "active" {
			t.Errorf("Ironic node %s is %s after the deploy, want active", name, n.ProvisionState)
		}
	}
}
