package storetest

import (
	"testing"

	"ironpool"
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
