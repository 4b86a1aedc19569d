package storetest

import (
	"testing"

	"github.com/ironpool/ironpool"
)

// testKeys checks what the store does with keys that do not fit its data:
// a key check that refuses a wrong key, and rows sealed under a key that is
// gone, which must stay readable, repairable, deletable and allocatable.
func testKeys(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("CheckKey", func(t *testing.T) {
		s := open(t)
		setter, ok := s.(SealerSetter)
		if !ok {
			t.Skipf("skipped: %T does not implement storetest.SealerSetter", s)
		}
		ctx := ctxFor(t)
		right, wrong := mustKey(t), mustKey(t)
		setter.SetSealer(mustRing(t, right))
		if err := s.CheckKey(ctx, false); err != nil {
			t.Fatalf("CheckKey on an empty store: %v", err)
		}
		// Nothing recorded yet and nothing sealed: any key would pass.
		setter.SetSealer(mustRing(t, wrong))
		if err := s.CheckKey(ctx, false); err != nil {
			t.Fatalf("CheckKey(record=false) on an empty store with another key: %v", err)
		}
		setter.SetSealer(mustRing(t, right))
		if err := s.CheckKey(ctx, true); err != nil {
			t.Fatalf("CheckKey(record=true): %v", err)
		}
		setter.SetSealer(mustRing(t, wrong))
		for _, record := range []bool{false, true} {
			err := s.CheckKey(ctx, record)
			if ironpool.ErrorCode(err) != ironpool.EINVALID {
				t.Fatalf("CheckKey(record=%v) with a wrong key = %v, want EINVALID", record, err)
			}
			if e := err.(*ironpool.Error); e.Field != "secret-key-file" {
				t.Errorf("field = %q, want secret-key-file", e.Field)
			}
		}
		// During a rotation the data's key is an old key of the ring.
		setter.SetSealer(mustRing(t, wrong, right))
		if err := s.CheckKey(ctx, true); err != nil {
			t.Errorf("CheckKey with the data's key as old key: %v", err)
		}
		// Reseal moves the check to the new key, so the old can go.
		if _, err := s.Reseal(ctx); err != nil {
			t.Fatal(err)
		}
		setter.SetSealer(mustRing(t, wrong))
		if err := s.CheckKey(ctx, false); err != nil {
			t.Errorf("CheckKey after reseal with the new key alone: %v", err)
		}
		setter.SetSealer(mustRing(t, right))
		if err := s.CheckKey(ctx, false); err == nil {
			t.Error("CheckKey after reseal accepted the retired key")
		}
	})

	t.Run("CheckKeyWithoutRecord", func(t *testing.T) {
		// A database from before key checks: the stored passwords decide.
		s := open(t)
		setter, ok := s.(SealerSetter)
		if !ok {
			t.Skipf("skipped: %T does not implement storetest.SealerSetter", s)
		}
		ctx := ctxFor(t)
		right, wrong := mustKey(t), mustKey(t)
		setter.SetSealer(mustRing(t, right))
		mustCreate(t, s, newNode(t, "n1", 8))
		setter.SetSealer(mustRing(t, wrong))
		if err := s.CheckKey(ctx, true); ironpool.ErrorCode(err) != ironpool.EINVALID {
			t.Fatalf("CheckKey with a key that opens no stored password = %v, want EINVALID", err)
		}
		setter.SetSealer(mustRing(t, right))
		if err := s.CheckKey(ctx, true); err != nil {
			t.Fatalf("CheckKey with the passwords' key: %v", err)
		}
	})

	t.Run("LostKeyRow", func(t *testing.T) {
		s := open(t)
		setter, ok := s.(SealerSetter)
		if !ok {
			t.Skipf("skipped: %T does not implement storetest.SealerSetter", s)
		}
		ctx := ctxFor(t)
		lost, current := mustKey(t), mustKey(t)
		setter.SetSealer(mustRing(t, lost))
		mustCreate(t, s, newNode(t, "gone1", 8), newNode(t, "gone2", 8), newNode(t, "gone3", 8))
		setter.SetSealer(mustRing(t, current))
		mustCreate(t, s, newNode(t, "fine", 8))

		nodes, err := s.FindNodes(ctx, ironpool.NodeFilter{})
		if err != nil || len(nodes) != 4 {
			t.Fatalf("FindNodes with rows under a lost key = %d nodes, %v; want all 4", len(nodes), err)
		}
		n := mustFind(t, s, "gone1")
		if n.BMC.Password != "" || n.BMC.PasswordError == "" {
			t.Errorf("gone1: password %q, password_error %q; want empty and reported", n.BMC.Password, n.BMC.PasswordError)
		}
		if n := mustFind(t, s, "fine"); n.BMC.Password != "pw-fine" || n.BMC.PasswordError != "" {
			t.Errorf("fine: password %q, error %q", n.BMC.Password, n.BMC.PasswordError)
		}

		// Another field changes without destroying the sealed value: with
		// the key back, the password opens again.
		if _, err := s.UpdateNode(ctx, "gone2", func(n *ironpool.Node) error { n.Pool = "p2"; return nil }); err != nil {
			t.Fatalf("UpdateNode(pool) on a row under a lost key: %v", err)
		}
		// Setting the password (here to nothing) repairs the row.
		if _, err := s.UpdateNode(ctx, "gone1", func(n *ironpool.Node) error {
			n.BMC.Password, n.BMC.PasswordError = "", ""
			return nil
		}); err != nil {
			t.Fatalf("UpdateNode(bmc.password=) on a row under a lost key: %v", err)
		}
		if n := mustFind(t, s, "gone1"); n.BMC.PasswordError != "" {
			t.Errorf("gone1 after setting the password: password_error %q, want none", n.BMC.PasswordError)
		}

		res, err := s.Reseal(ctx)
		if err != nil {
			t.Fatalf("Reseal with a row under a lost key: %v", err)
		}
		if len(res.Skipped) != 2 || res.Skipped[0] != "gone2" || res.Skipped[1] != "gone3" {
			t.Errorf("Reseal skipped %v, want [gone2 gone3]", res.Skipped)
		}

		setter.SetSealer(mustRing(t, current, lost))
		if n := mustFind(t, s, "gone2"); n.BMC.Password != "pw-gone2" || n.Pool != "p2" {
			t.Errorf("gone2 with its key back: password %q pool %q; want the sealed value kept", n.BMC.Password, n.Pool)
		}
		setter.SetSealer(mustRing(t, current))

		// Allocating such a node succeeds and hands it out without a password.
		a := request("lab1", item("", 1, ironpool.Constraints{Pool: "p2"}))
		if err := s.Allocate(ctx, a, false); err != nil {
			t.Fatalf("Allocate of a node under a lost key: %v", err)
		}
		if len(a.Nodes) != 1 || a.Nodes[0].Name != "gone2" || a.Nodes[0].BMC.PasswordError == "" {
			t.Errorf("allocated nodes = %+v, want gone2 with its password reported unavailable", a.Nodes)
		}
		if _, err := s.FindAllocation(ctx, a.ID); err != nil {
			t.Errorf("FindAllocation: %v", err)
		}
		if err := s.DeleteNode(ctx, "gone3"); err != nil {
			t.Errorf("DeleteNode on a row under a lost key: %v", err)
		}
	})
}
