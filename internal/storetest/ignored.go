package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// testIgnoredBackendNodes: deleting a backend-linked node marks it ignored
// in the same transaction (sync must not bring a deleted node back), a
// local node leaves no mark, and creating a node with that link again
// lifts the mark.
func testIgnoredBackendNodes(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	linked, local := newNode(t, "linked", 4), newNode(t, "local", 4)
	linked.IronicUUID, linked.IronicEndpoint = "7a0e1c2d-0000-4000-8000-00000000a001", "http://127.0.0.1:6385"
	mustCreate(t, s, linked, local)
	for _, name := range []string{"linked", "local"} {
		if err := s.DeleteNode(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.IgnoredBackendNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[linked.IronicUUID] {
		t.Fatalf("ignored after deleting a linked and a local node = %v, want only %s", got, linked.IronicUUID)
	}
	again := newNode(t, "linked-again", 4)
	again.IronicUUID = linked.IronicUUID
	mustCreate(t, s, again)
	if got, _ := s.IgnoredBackendNodes(ctx); len(got) != 0 {
		t.Errorf("ignored after the node was created again = %v, want none", got)
	}
}

// testDeploySpec: an active allocation keeps the deploy spec its nodes'
// pending deploy refers to; an ended one takes none.
func testDeploySpec(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8))
	a := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
	if _, err := s.DeploySpec(ctx, a.ID); ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
		t.Fatalf("DeploySpec before any deploy: %v, want ENOTFOUND", err)
	}
	want := ironpool.DeploySpec{ImageSource: "http://images/x.qcow2", ImageChecksum: "sha256:" + strings.Repeat("ab", 32), Timeout: time.Minute}
	if err := s.SetDeploySpec(ctx, a.ID, want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeploySpec(ctx, a.ID); err != nil || got != want {
		t.Fatalf("DeploySpec = %+v, %v; want %+v", got, err, want)
	}
	mustRelease(t, s, a.ID, true)
	wantCode(t, s.SetDeploySpec(ctx, a.ID, want), ironpool.ECONFLICT)
}
