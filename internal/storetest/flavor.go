package storetest

import (
	"slices"
	"testing"

	"github.com/ironpool/ironpool"
)

func testFlavors(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		f := &ironpool.Flavor{Name: "gpu", Description: "GPU boxes", Constraints: ironpool.Constraints{
			CPUs: 16, MemoryMB: 65536, LocalGB: 500, CPUArch: "x86_64", ResourceClass: "baremetal",
			Traits: []string{"CUSTOM_GPU", "CUSTOM_NVME"}, Pool: "ci"}}
		if err := s.CreateFlavor(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "any"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindFlavor(ctx, "gpu")
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != f.Name || got.Description != f.Description || got.CPUs != 16 || got.MemoryMB != 65536 ||
			got.LocalGB != 500 || got.CPUArch != "x86_64" || got.ResourceClass != "baremetal" || got.Pool != "ci" ||
			!slices.Equal(got.Traits, f.Traits) || got.CreatedAt.IsZero() {
			t.Errorf("FindFlavor = %+v, want %+v", got, f)
		}
		empty, err := s.FindFlavor(ctx, "any")
		if err != nil {
			t.Fatal(err)
		}
		if empty.Traits != nil {
			t.Errorf("flavor without traits has traits %#v, want nil", empty.Traits)
		}
		list, err := s.FindFlavors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Name != "any" || list[1].Name != "gpu" {
			t.Errorf("FindFlavors = %v, want [any gpu]", list)
		}
		if got := countEvents(t, s, "flavor.created"); got != 2 {
			t.Errorf("flavor.created events = %d, want 2", got)
		}
	})

	t.Run("ErrDuplicate", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "small", Constraints: ironpool.Constraints{CPUs: 4}}); err != nil {
			t.Fatal(err)
		}
		before := countEvents(t, s, "")
		err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "small", Constraints: ironpool.Constraints{CPUs: 8}})
		if e := wantCode(t, err, ironpool.ECONFLICT); e.Field != "name" {
			t.Errorf("field = %q, want name", e.Field)
		}
		if got, _ := s.FindFlavor(ctx, "small"); got == nil || got.CPUs != 4 {
			t.Errorf("duplicate overwrote the flavor: %+v", got)
		}
		if after := countEvents(t, s, ""); after != before {
			t.Errorf("refused create wrote %d events", after-before)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		_, err := s.FindFlavor(ctx, "nope")
		wantCode(t, err, ironpool.ENOTFOUND)
		wantCode(t, s.DeleteFlavor(ctx, "nope"), ironpool.ENOTFOUND)
		if n := countEvents(t, s, ""); n != 0 {
			t.Errorf("%d events after failed calls, want 0", n)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "small"}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteFlavor(ctx, "small"); err != nil {
			t.Fatal(err)
		}
		_, err := s.FindFlavor(ctx, "small")
		wantCode(t, err, ironpool.ENOTFOUND)
		if got := countEvents(t, s, "flavor.deleted"); got != 1 {
			t.Errorf("flavor.deleted events = %d, want 1", got)
		}
		// The name can be used again.
		if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "small"}); err != nil {
			t.Fatal(err)
		}
	})
}
