package storetest

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

func testNodes(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		n := newNode(t, "n1", 16, "CUSTOM_GPU", "CUSTOM_NVME")
		n.Pool = "ci"
		n.MACs = append(n.MACs, nextMAC())
		n.Fields["owner_team"] = "qa"
		if err := s.CreateNodes(ctx, []*ironpool.Node{n}); err != nil {
			t.Fatal(err)
		}
		if n.ID == 0 || n.UUID == "" {
			t.Fatalf("CreateNodes did not fill ID/UUID: id=%d uuid=%q", n.ID, n.UUID)
		}
		if n.State != ironpool.NodeAvailable {
			t.Errorf("new node state = %s, want available", n.State)
		}
		for _, key := range []string{n.Name, n.UUID} {
			got, err := s.FindNode(ctx, key)
			if err != nil {
				t.Fatalf("FindNode(%s): %v", key, err)
			}
			if got.ID != n.ID || got.UUID != n.UUID || got.Name != "n1" || got.Pool != "ci" ||
				got.State != ironpool.NodeAvailable || got.CPUs != 16 || got.MemoryMB != n.MemoryMB ||
				got.LocalGB != n.LocalGB || got.CPUArch != "x86_64" || got.ResourceClass != "baremetal" {
				t.Errorf("FindNode(%s) = %+v, want %+v", key, got, n)
			}
			if !slices.Equal(got.Traits, []string{"CUSTOM_GPU", "CUSTOM_NVME"}) {
				t.Errorf("traits = %v", got.Traits)
			}
			if !slices.Equal(got.MACs, n.MACs) {
				t.Errorf("macs = %v, want %v", got.MACs, n.MACs)
			}
			if got.BMC != n.BMC {
				t.Errorf("bmc = %+v, want %+v", got.BMC, n.BMC)
			}
			if !maps.Equal(got.Fields, n.Fields) {
				t.Errorf("fields = %v, want %v", got.Fields, n.Fields)
			}
			if got.CreatedAt.IsZero() || got.UpdatedAt.IsZero() {
				t.Errorf("timestamps not set: %v %v", got.CreatedAt, got.UpdatedAt)
			}
		}
		ev := events(t, s, "node.created")
		if len(ev) != 1 || ev[0].Subject != "node/n1" || ev[0].Actor != testActor.TokenID || ev[0].Role != testActor.Role {
			t.Errorf("node.created events = %+v, want one for node/n1 by %s", ev, testActor.TokenID)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		_, err := s.FindNode(ctx, "nope")
		wantCode(t, err, ironpool.ENOTFOUND)
		_, err = s.UpdateNode(ctx, "nope", func(*ironpool.Node) error { return nil })
		wantCode(t, err, ironpool.ENOTFOUND)
		wantCode(t, s.DeleteNode(ctx, "nope"), ironpool.ENOTFOUND)
		if n := countEvents(t, s, ""); n != 0 {
			t.Errorf("%d events after failed calls, want 0", n)
		}
	})

	t.Run("ErrDuplicateName", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		before := takeSnapshot(t, s)
		err := s.CreateNodes(ctxFor(t), []*ironpool.Node{newNode(t, "n1", 8)})
		if e := wantCode(t, err, ironpool.ECONFLICT); e.Field != "name" {
			t.Errorf("field = %q, want name", e.Field)
		}
		sameSnapshot(t, s, before, "duplicate name")
	})

	t.Run("ErrDuplicateUUID", func(t *testing.T) {
		s := open(t)
		a := newNode(t, "n1", 8)
		mustCreate(t, s, a)
		b := newNode(t, "n2", 8)
		b.UUID = a.UUID
		err := s.CreateNodes(ctxFor(t), []*ironpool.Node{b})
		if e := wantCode(t, err, ironpool.ECONFLICT); e.Field != "uuid" {
			t.Errorf("field = %q, want uuid", e.Field)
		}
	})

	t.Run("ErrDuplicateIronicUUID", func(t *testing.T) {
		s := open(t)
		a, b, c := newNode(t, "n1", 8), newNode(t, "n2", 8), newNode(t, "n3", 8)
		a.IronicUUID, b.IronicUUID = "0b6f8c1e-4a6e-4d4a-9d3c-1f6e2f3a4b5c", "0b6f8c1e-4a6e-4d4a-9d3c-1f6e2f3a4b5c"
		mustCreate(t, s, a, c) // c has no Ironic link: empty links never clash
		err := s.CreateNodes(ctxFor(t), []*ironpool.Node{b})
		if e := wantCode(t, err, ironpool.ECONFLICT); e.Field != "ironic_uuid" {
			t.Errorf("field = %q, want ironic_uuid", e.Field)
		}
		if got := mustFind(t, s, "n1").IronicUUID; got != a.IronicUUID {
			t.Errorf("ironic_uuid = %q, want %q", got, a.IronicUUID)
		}
	})

	t.Run("ErrDuplicateMAC", func(t *testing.T) {
		s := open(t)
		a := newNode(t, "n1", 8)
		mustCreate(t, s, a)
		before := takeSnapshot(t, s)
		b := newNode(t, "n2", 8)
		b.MACs = []string{nextMAC(), a.MACs[0]}
		err := s.CreateNodes(ctxFor(t), []*ironpool.Node{b})
		if e := wantCode(t, err, ironpool.ECONFLICT); !strings.HasPrefix(e.Field, "macs") {
			t.Errorf("field = %q, want the macs field", e.Field)
		} else if !strings.Contains(e.Message, a.MACs[0]) && e.Field != "macs[1]" {
			t.Errorf("error %q / field %q does not point at MAC %s", e.Message, e.Field, a.MACs[0])
		}
		sameSnapshot(t, s, before, "duplicate MAC")
		// The refused node's other MAC was not kept either.
		c := newNode(t, "n3", 8)
		c.MACs = []string{b.MACs[0]}
		mustCreate(t, s, c)
	})

	t.Run("CreateAllOrNone", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "existing", 8))
		before := takeSnapshot(t, s)
		batch := []*ironpool.Node{newNode(t, "b1", 8), newNode(t, "b2", 8), newNode(t, "existing", 8), newNode(t, "b4", 8)}
		err := s.CreateNodes(ctxFor(t), batch)
		if e := wantCode(t, err, ironpool.ECONFLICT); e.Field != "nodes[2].name" {
			t.Errorf("field = %q, want nodes[2].name", e.Field)
		}
		sameSnapshot(t, s, before, "refused batch")
		for _, name := range []string{"b1", "b2", "b4"} {
			if _, err := s.FindNode(ctxFor(t), name); ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
				t.Errorf("FindNode(%s) after refused batch: err = %v, want ENOTFOUND", name, err)
			}
		}

		// A MAC clash inside the batch itself is refused the same way.
		batch = []*ironpool.Node{newNode(t, "c1", 8), newNode(t, "c2", 8), newNode(t, "c3", 8)}
		batch[2].MACs = []string{batch[0].MACs[0]}
		err = s.CreateNodes(ctxFor(t), batch)
		if e := wantCode(t, err, ironpool.ECONFLICT); !strings.HasPrefix(e.Field, "nodes[2].macs") {
			t.Errorf("field = %q, want nodes[2].macs…", e.Field)
		}
		sameSnapshot(t, s, before, "batch with a MAC clash")

		// The same batch without the clash goes in whole, one event each.
		batch = []*ironpool.Node{newNode(t, "d1", 8), newNode(t, "d2", 8), newNode(t, "d3", 8)}
		mustCreate(t, s, batch...)
		if got, want := countEvents(t, s, "node.created"), before.Events+3; got != want {
			t.Errorf("node.created events = %d, want %d", got, want)
		}
	})

	t.Run("FindNodes", func(t *testing.T) { testFindNodes(t, open) })

	t.Run("Update", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		n := newNode(t, "n1", 8)
		mustCreate(t, s, n)
		newMAC := nextMAC()
		got, err := s.UpdateNode(ctx, "n1", func(n *ironpool.Node) error {
			n.CPUs = 12
			n.Fields["rack"] = "r7"
			n.Traits = []string{"CUSTOM_X"}
			n.MACs = []string{newMAC}
			n.BMC.Password = "new-secret"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.CPUs != 12 || got.Fields["rack"] != "r7" || got.ID != n.ID || got.UUID != n.UUID {
			t.Errorf("UpdateNode returned %+v", got)
		}
		re := mustFind(t, s, n.UUID)
		if re.CPUs != 12 || re.Fields["rack"] != "r7" || !slices.Equal(re.Traits, []string{"CUSTOM_X"}) ||
			!slices.Equal(re.MACs, []string{newMAC}) || re.BMC.Password != "new-secret" {
			t.Errorf("stored node = %+v", re)
		}
		ev := events(t, s, "node.updated")
		if len(ev) != 1 || ev[0].Subject != "node/n1" {
			t.Fatalf("node.updated events = %+v, want 1", ev)
		}
		if strings.Contains(ev[0].Summary, "new-secret") || strings.Contains(ev[0].Summary, "pw-n1") {
			t.Errorf("event summary leaks a password: %q", ev[0].Summary)
		}
		// The old MAC is free again, the new one is taken.
		other := newNode(t, "n2", 8)
		other.MACs = []string{n.MACs[0]}
		mustCreate(t, s, other)
		clash := newNode(t, "n3", 8)
		clash.MACs = []string{newMAC}
		wantCode(t, s.CreateNodes(ctx, []*ironpool.Node{clash}), ironpool.ECONFLICT)

		// A no-op update changes nothing and records nothing.
		before := countEvents(t, s, "")
		if _, err := s.UpdateNode(ctx, "n1", func(*ironpool.Node) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if after := countEvents(t, s, ""); after != before {
			t.Errorf("no-op update wrote %d events", after-before)
		}
	})

	// Every field the Ironic sync compares is audited: the store's diff
	// once ignored ironic_endpoint, so a sync that moved a node to another
	// Ironic reported it updated but left no event.
	t.Run("UpdateAuditsIronicEndpoint", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		before := countEvents(t, s, "node.updated")
		if _, err := s.UpdateNode(ctxFor(t), "n1", func(n *ironpool.Node) error {
			n.IronicEndpoint = "http://127.0.0.1:6385/v1"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		ev := events(t, s, "node.updated")
		if len(ev) != before+1 || ev[len(ev)-1].Summary != "changed ironic_endpoint" {
			t.Errorf("node.updated events = %+v, want one more saying \"changed ironic_endpoint\"", ev)
		}
		if got := mustFind(t, s, "n1").IronicEndpoint; got != "http://127.0.0.1:6385/v1" {
			t.Errorf("stored ironic_endpoint = %q", got)
		}
	})

	t.Run("UpdateMaintenance", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		_, err := s.UpdateNode(ctxFor(t), "n1", func(n *ironpool.Node) error {
			n.State, n.MaintenanceReason = ironpool.NodeMaintenance, "fan broken"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ev := events(t, s, "node.maintenance")
		if len(ev) != 1 || !strings.Contains(ev[0].Summary, "fan broken") {
			t.Errorf("node.maintenance events = %+v", ev)
		}
		if got := mustFind(t, s, "n1"); got.State != ironpool.NodeMaintenance || got.MaintenanceReason != "fan broken" {
			t.Errorf("node = %s %q", got.State, got.MaintenanceReason)
		}
	})

	t.Run("ErrUpdateMACTaken", func(t *testing.T) {
		s := open(t)
		a, b := newNode(t, "n1", 8), newNode(t, "n2", 8)
		mustCreate(t, s, a, b)
		before := takeSnapshot(t, s)
		_, err := s.UpdateNode(ctxFor(t), "n2", func(n *ironpool.Node) error {
			n.MACs = []string{nextMAC(), a.MACs[0]}
			n.CPUs = 99
			return nil
		})
		if e := wantCode(t, err, ironpool.ECONFLICT); !strings.HasPrefix(e.Field, "macs") {
			t.Errorf("field = %q, want macs…", e.Field)
		}
		sameSnapshot(t, s, before, "refused MAC change")
		if got := mustFind(t, s, "n2"); got.CPUs != 8 || !slices.Equal(got.MACs, b.MACs) {
			t.Errorf("refused update was written: cpus=%d macs=%v", got.CPUs, got.MACs)
		}
		// n2 keeps its own MAC: a node with it is still refused.
		c := newNode(t, "n3", 8)
		c.MACs = b.MACs
		wantCode(t, s.CreateNodes(ctxFor(t), []*ironpool.Node{c}), ironpool.ECONFLICT)
	})

	t.Run("ErrUpdateNameTaken", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8))
		before := takeSnapshot(t, s)
		_, err := s.UpdateNode(ctxFor(t), "n2", func(n *ironpool.Node) error { n.Name = "n1"; return nil })
		if e := wantCode(t, err, ironpool.ECONFLICT); e.Field != "name" {
			t.Errorf("field = %q, want name", e.Field)
		}
		sameSnapshot(t, s, before, "refused rename")
	})

	t.Run("UpdateFnError", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		before := takeSnapshot(t, s)
		boom := errors.New("boom")
		_, err := s.UpdateNode(ctxFor(t), "n1", func(n *ironpool.Node) error {
			n.CPUs, n.State = 64, ironpool.NodeMaintenance
			n.Fields["x"] = "y"
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want fn's error", err)
		}
		sameSnapshot(t, s, before, "aborted update")
		if got := mustFind(t, s, "n1"); got.CPUs != 8 || got.Fields["x"] != "" {
			t.Errorf("aborted update was written: %+v", got)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		n := newNode(t, "n1", 8)
		mustCreate(t, s, n, newNode(t, "n2", 8))
		a := mustAllocate(t, s, request("lab1", item("", 2, anyNode())))
		before := takeSnapshot(t, s)
		err := s.DeleteNode(ctx, "n1")
		wantCode(t, err, ironpool.ECONFLICT)
		sameSnapshot(t, s, before, "refused delete")
		mustRelease(t, s, a.ID, true)
		if err := s.DeleteNode(ctx, "n1"); err != nil {
			t.Fatalf("DeleteNode after release: %v", err)
		}
		wantCode(t, func() error { _, err := s.FindNode(ctx, "n1"); return err }(), ironpool.ENOTFOUND)
		if got := countEvents(t, s, "node.deleted"); got != 1 {
			t.Errorf("node.deleted events = %d, want 1", got)
		}
		// Its name and MAC are free again.
		again := newNode(t, "n1", 8)
		again.MACs = n.MACs
		mustCreate(t, s, again)
	})
}

func testFindNodes(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	small, mid, big := newNode(t, "c-small", 8), newNode(t, "b-mid", 16, "CUSTOM_GPU"), newNode(t, "a-big", 64, "CUSTOM_GPU", "CUSTOM_NVME")
	arm := newNode(t, "d-arm", 32)
	arm.CPUArch, arm.ResourceClass, arm.Pool = "aarch64", "arm", "lab"
	mnt := newNode(t, "e-mnt", 8)
	mnt.State, mnt.MaintenanceReason = ironpool.NodeMaintenance, "bad disk"
	mustCreate(t, s, small, mid, big, arm, mnt)
	a := mustAllocate(t, s, request("lab1", item("", 1, ironpool.Constraints{CPUs: 60})))

	cases := []struct {
		name string
		f    ironpool.NodeFilter
		want []string
	}{
		{"All", ironpool.NodeFilter{}, []string{"a-big", "b-mid", "c-small", "d-arm", "e-mnt"}},
		{"Limit", ironpool.NodeFilter{Limit: 2}, []string{"a-big", "b-mid"}},
		{"Pool", ironpool.NodeFilter{Pool: "lab"}, []string{"d-arm"}},
		{"PoolDefault", ironpool.NodeFilter{Pool: ironpool.DefaultPool}, []string{"a-big", "b-mid", "c-small", "e-mnt"}},
		{"State", ironpool.NodeFilter{State: ironpool.NodeMaintenance}, []string{"e-mnt"}},
		{"StateAllocated", ironpool.NodeFilter{State: ironpool.NodeAllocated}, []string{"a-big"}},
		{"Owner", ironpool.NodeFilter{Owner: "lab1"}, []string{"a-big"}},
		{"OwnerNone", ironpool.NodeFilter{Owner: "lab2"}, []string{}},
		{"Allocation", ironpool.NodeFilter{Allocation: a.ID}, []string{"a-big"}},
		{"FlavorCPUs", ironpool.NodeFilter{Flavor: &ironpool.Constraints{CPUs: 16}}, []string{"a-big", "b-mid", "d-arm"}},
		{"FlavorMemory", ironpool.NodeFilter{Flavor: &ironpool.Constraints{MemoryMB: 32 * 4096}}, []string{"a-big", "d-arm"}},
		{"FlavorDisk", ironpool.NodeFilter{Flavor: &ironpool.Constraints{LocalGB: 640}}, []string{"a-big"}},
		{"FlavorArch", ironpool.NodeFilter{Flavor: &ironpool.Constraints{CPUArch: "aarch64"}}, []string{"d-arm"}},
		{"FlavorResourceClass", ironpool.NodeFilter{Flavor: &ironpool.Constraints{ResourceClass: "arm"}}, []string{"d-arm"}},
		{"FlavorTrait", ironpool.NodeFilter{Flavor: &ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}}}, []string{"a-big", "b-mid"}},
		{"FlavorTraits", ironpool.NodeFilter{Flavor: &ironpool.Constraints{Traits: []string{"CUSTOM_GPU", "CUSTOM_NVME"}}}, []string{"a-big"}},
		// A trait that is a prefix of another must not match it.
		{"FlavorTraitPrefix", ironpool.NodeFilter{Flavor: &ironpool.Constraints{Traits: []string{"CUSTOM_GP"}}}, []string{}},
		{"FlavorPool", ironpool.NodeFilter{Flavor: &ironpool.Constraints{Pool: "lab"}}, []string{"d-arm"}},
		{"FlavorAndState", ironpool.NodeFilter{State: ironpool.NodeAvailable, Flavor: &ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}}}, []string{"b-mid"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.FindNodes(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var gotNames []string
			for _, n := range got {
				gotNames = append(gotNames, n.Name) // in the store's order: by name
			}
			if !slices.Equal(gotNames, tc.want) && !(len(gotNames) == 0 && len(tc.want) == 0) {
				t.Errorf("FindNodes(%+v) = %v, want %v", tc.f, gotNames, tc.want)
			}
			if got == nil {
				t.Errorf("FindNodes returned nil, want an empty list")
			}
		})
	}
}
