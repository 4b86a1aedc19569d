package ironic_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"ironpool"
	"ironpool/internal/ironic"
	"ironpool/internal/ironictest"
)

// The allocation helpers live in internal/ironictest (ironpool does not use
// Ironic's allocator; the peer benchmark does), so their tests are external
// tests of this package: they share its Ironic and its fixtures.

// TestAllocations drives Ironic's allocator through the test helpers on the
// real Ironic: one node per allocation, ECAPACITY when none is left (and the
// failed allocation's name free again), DeleteAllocation idempotent.
func TestAllocations(t *testing.T) {
	t.Parallel()
	c := ironic.NewTestClient(t)
	rc := "rc-alloc-" + ironic.RunID
	ids := ironic.MakeTestNodes(t, c, []ironic.NodeSpec{
		{Name: ironic.NodeName("alloc", 0), ResourceClass: rc, CPUs: 1},
		{Name: ironic.NodeName("alloc", 1), ResourceClass: rc, CPUs: 1},
	})
	held := map[string]string{}
	for i := range 2 {
		name := fmt.Sprintf("it-%s-job-%d", ironic.RunID, i)
		a, node, err := ironictest.CreateAllocation(t.Context(), c, rc, name)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if !slices.Contains(ids, node) || held[node] != "" {
			t.Fatalf("allocation %d got node %s (held: %v)", i, node, held)
		}
		held[node] = a
		if n := ironic.MustGet(t, c, node); n.InstanceUUID != a {
			t.Errorf("node %s instance_uuid = %q, want the allocation %s", node, n.InstanceUUID, a)
		}
	}
	_, _, err := ironictest.CreateAllocation(t.Context(), c, rc, fmt.Sprintf("it-%s-job-x", ironic.RunID))
	ironic.WantCode(t, err, ironpool.ECAPACITY)
	// The failed allocation was deleted, so its name is free again.
	_, _, err = ironictest.CreateAllocation(t.Context(), c, rc, fmt.Sprintf("it-%s-job-x", ironic.RunID))
	ironic.WantCode(t, err, ironpool.ECAPACITY)

	for node, a := range held {
		if err := ironictest.DeleteAllocation(t.Context(), c, a); err != nil {
			t.Fatal(err)
		}
		if n := ironic.MustGet(t, c, node); n.InstanceUUID != "" {
			t.Errorf("node %s keeps instance_uuid %q after DeleteAllocation", node, n.InstanceUUID)
		}
		if err := ironictest.DeleteAllocation(t.Context(), c, a); err != nil {
			t.Errorf("second DeleteAllocation: %v", err)
		}
	}
	_, _, err = ironictest.CreateAllocation(t.Context(), c, "", "")
	ironic.WantCode(t, err, ironpool.EINVALID)
}

// TestAllocation503IsNotRetried checks that a 503 on POST /allocations is
// not retried and that the stray named allocation is deleted.
func TestAllocation503IsNotRetried(t *testing.T) {
	var posts, deletes atomic.Int32
	srv := ironic.FakeIronic(t, "1.82", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			posts.Add(1)
			w.WriteHeader(503)
			fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"lack of free conductor workers\"}"}`)
		case http.MethodDelete:
			deletes.Add(1)
			if r.URL.Path != "/v1/allocations/job-1" {
				t.Errorf("DELETE %s, want the stray allocation by name", r.URL.Path)
			}
			w.WriteHeader(204)
		}
	})
	c, err := ironic.Connect(t.Context(), ironic.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ironictest.CreateAllocation(t.Context(), c, "rc", "job-1")
	if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE {
		t.Fatalf("CreateAllocation on 503 = %v, want EUNAVAILABLE", err)
	}
	if posts.Load() != 1 || deletes.Load() != 1 {
		t.Errorf("posts=%d deletes=%d, want 1 and 1", posts.Load(), deletes.Load())
	}
}
