package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ironictest"
)

// otherConsumer is another client of the same Ironic (Nova, Metal3,
// ESI-Leap), speaking Ironic's allocation API directly.
type otherConsumer struct {
	t   *testing.T
	url string
}

func (o otherConsumer) do(method, path string, body any) (int, map[string]any) {
	o.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, o.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.65")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// allocate asks Ironic for exactly node (by UUID) and returns the
// allocation's final state ("active" or "error") and its uuid.
func (o otherConsumer) allocate(name, node, rc string) (string, string) {
	o.t.Helper()
	code, a := o.do("POST", "/v1/allocations", map[string]any{"name": name, "resource_class": rc, "candidate_nodes": []string{node}})
	if code != 201 {
		o.t.Fatalf("POST /v1/allocations: %d %v", code, a)
	}
	uuid, _ := a["uuid"].(string)
	for range 100 {
		_, a = o.do("GET", "/v1/allocations/"+uuid, nil)
		if s, _ := a["state"].(string); s == "active" || s == "error" {
			return s, uuid
		}
		time.Sleep(100 * time.Millisecond)
	}
	o.t.Fatalf("allocation %s never settled: %v", uuid, a)
	return "", ""
}

// TestIronicSharedWithOtherConsumers: on an Ironic that others use too, a
// node ironpool hands out is reserved in Ironic (another consumer's
// allocation for it fails), a node another consumer holds is not
// allocatable in the pool (and says why), and release removes exactly
// ironpool's reservation, leaving the other consumer's in place.
func TestIronicSharedWithOtherConsumers(t *testing.T) {
	// Not parallel: each real Ironic costs a core while it starts, and
	// the parallel Ironic tests of this package start theirs afterwards.
	in := ironictest.Start(t)
	c := in.Connect(t)
	ctx := context.Background()
	uuids := makeFleet(t, c, "sh", 3, 0)
	other := otherConsumer{t, in.URL}
	// Another consumer takes sh-02 before ironpool ever sees it.
	if st, _ := other.allocate("nova-instance-1", uuids[2], "rc-small"); st != "active" {
		t.Fatalf("set-up: the other consumer's allocation is %s", st)
	}
	// A node with no BMC details ironpool knows (fake-hardware with empty
	// driver_info; vendor drivers look the same to it) is still a pool node.
	code, nb := other.do("POST", "/v1/nodes", map[string]any{"name": "nobmc", "driver": "fake-hardware", "resource_class": "rc-none",
		"properties": map[string]any{"cpus": 2, "memory_mb": 2048, "local_gb": 10, "cpu_arch": "x86_64"}})
	if code != 201 {
		t.Fatalf("create a node without driver_info: %d %v", code, nb)
	}
	nobmc, _ := nb["uuid"].(string)
	// And one described the iDRAC way (WS-Man drac_* keys only).
	code, nb = other.do("POST", "/v1/nodes", map[string]any{"name": "dracish", "driver": "fake-hardware", "resource_class": "rc-none",
		"driver_info": map[string]any{"drac_address": "127.0.0.1", "drac_username": "root"},
		"properties":  map[string]any{"cpus": 2, "memory_mb": 2048, "local_gb": 10, "cpu_arch": "x86_64"}})
	if code != 201 {
		t.Fatalf("create an iDRAC-style node: %d %v", code, nb)
	}
	drac, _ := nb["uuid"].(string)
	for _, u := range []string{nobmc, drac} {
		if err := c.Manage(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := c.Provide(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	e := startWithIronic(t, in.URL)
	e.ok("flavor", "create", "small", "--resource-class", "rc-small")
	var r ironpool.SyncResult
	e.jsonOf(&r, "ironic", "sync")
	nodes := e.fullNodes()
	for _, name := range []string{"nobmc", "dracish"} {
		if n, ok := nodes[name]; !ok || n.State != "available" || n.BMC.Address != "" {
			t.Errorf("node %s (no BMC URL ironpool can use) was not imported as an available node with no address: %+v (skipped: %v)", name, n, r.Skipped)
		}
	}
	if n := nodes["sh-02"]; n.State != "maintenance" || !strings.Contains(n.MaintenanceReason, "taken by another consumer") {
		t.Fatalf("a node another consumer holds was imported as %s (%q), want not allocatable and why", n.State, n.MaintenanceReason)
	}
	// Ironic's default policy masks driver_info passwords: the pool says
	// the password is unknown rather than showing an empty one.
	if out := e.ok("node", "show", "sh-01", "--reveal"); !strings.Contains(out, "unknown (set it with") {
		t.Errorf("node show of a node whose password Ironic masks:\n%s\nwant the password called unknown", out)
	}
	if _, errs, code := e.run("allocate", "--owner", "lab1", "--flavor", "small=3"); code != 3 {
		t.Fatalf("allocate 3 with one taken by another consumer: exit %d %s, want 3", code, errs)
	}

	for _, mode := range []string{"lessee", "handoff"} {
		var a ironpool.Allocation
		e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=1", "--mode", mode)
		e.allocNodes(a.ID, 30*time.Second, mode+" checkout", func(n fullNode) bool { return n.Pending == "" })
		name := a.Items[0].Nodes[0]
		held, err := c.GetNode(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if held.InstanceUUID == "" {
			t.Fatalf("%s checkout left no reservation in Ironic on %s", mode, name)
		}
		if mode == "lessee" {
			// The other consumer asks Ironic for exactly that node: refused.
			if st, _ := other.allocate("metal3-host-"+mode, held.UUID, "rc-small"); st != "error" {
				t.Fatalf("another consumer's allocation of a node ironpool handed out (%s) went %s", mode, st)
			}
		}
		e.ok("release", a.ID)
		eventually(t, 60*time.Second, "release of the "+mode+" node", func() (bool, string) {
			n := e.fullNodes()[name]
			return n.State == "available", fmt.Sprintf("%+v", n)
		})
		after, _ := c.GetNode(ctx, name)
		if after.InstanceUUID != "" || after.Maintenance || after.Lessee != "" {
			t.Errorf("after release %s in Ironic: instance_uuid %q maintenance %v lessee %q; want all cleared", name, after.InstanceUUID, after.Maintenance, after.Lessee)
		}
	}
	// A node deleted from the pool stays deleted: the next sync leaves it
	// out (and says so) until asked to take it back.
	e.ok("node", "delete", "sh-00")
	e.jsonOf(&r, "ironic", "sync")
	if _, back := e.fullNodes()["sh-00"]; back || len(r.Ignored) != 1 {
		t.Errorf("sync after deleting sh-00: re-imported %v, ignored %v; want it left out and reported", back, r.Ignored)
	}
	e.jsonOf(&r, "ironic", "sync", "--include-ignored")
	if _, back := e.fullNodes()["sh-00"]; !back {
		t.Errorf("sync --include-ignored did not import sh-00 again: %+v", r)
	}
	// The other consumer's allocation is untouched.
	if code, a := other.do("GET", "/v1/allocations/nova-instance-1", nil); code != 200 || a["state"] != "active" {
		t.Errorf("the other consumer's allocation after ironpool's releases: %d %v", code, a)
	}
}
