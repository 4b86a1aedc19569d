package storetest

import (
	"context"
	"testing"

	"github.com/ironpool/ironpool"
)

// testAllocateNodes checks the adopt path: an allocation holding exactly
// the named nodes, refused for held nodes, released like any other.
func testAllocateNodes(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	a, b := newNode(t, "adopt-a", 4), newNode(t, "adopt-b", 4)
	a.State = ironpool.NodeEnrolling
	mustCreate(t, s, a, b)
	al := request("lab2")
	if err := s.AllocateNodes(ctx, al, []int64{a.ID}, ironpool.NodeDeployed); err != nil {
		t.Fatal(err)
	}
	if al.State != ironpool.AllocActive || len(al.Nodes) != 1 || al.Nodes[0].Name != "adopt-a" || al.Items[0].Count != 1 {
		t.Fatalf("AllocateNodes = %+v", al)
	}
	if n := mustFind(t, s, "adopt-a"); n.State != ironpool.NodeDeployed || n.AllocationID != al.ID || n.Owner != "lab2" {
		t.Errorf("adopted node = %+v", n)
	}
	if n := mustFind(t, s, "adopt-b"); n.State != ironpool.NodeAvailable {
		t.Errorf("other node = %s", n.State)
	}
	wantCode(t, s.AllocateNodes(ctx, request("lab3"), []int64{a.ID}, ironpool.NodeDeployed), ironpool.ECONFLICT)
	wantCode(t, s.AllocateNodes(ctx, request("lab3"), []int64{1 << 40}, ironpool.NodeDeployed), ironpool.ENOTFOUND)
	mustRelease(t, s, al.ID, true)
	if n := mustFind(t, s, "adopt-a"); n.AllocationID != "" || n.State.Held() {
		t.Errorf("after release = %+v", n)
	}
}
