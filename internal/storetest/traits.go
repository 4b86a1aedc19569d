package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/ironpool/ironpool"
)

// testTraits checks that traits match exactly. Trait names hold `_`, which
// a LIKE pattern reads as "any one character": a store that builds its
// pattern from the name unescaped hands CUSTOMXGPU to a CUSTOM_GPU request,
// and the BAR,FOO node to a BAR_FOO one.
func testTraits(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("Exact", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s,
			newNode(t, "gpu", 8, "CUSTOM_GPU"),
			newNode(t, "xgpu", 8, "CUSTOMXGPU"),
			newNode(t, "bar-and-foo", 8, "BAR", "FOO"),
			newNode(t, "barfoo", 8, "BAR_FOO"),
		)
		for _, tc := range []struct {
			trait string
			want  []string
		}{
			{"CUSTOM_GPU", []string{"gpu"}},
			{"BAR_FOO", []string{"barfoo"}},
			{"CUSTOM__GPU", nil},
			{"BAR", []string{"bar-and-foo"}},
		} {
			c := ironpool.Constraints{Traits: []string{tc.trait}}
			if got := names(findNodes(t, s, ironpool.NodeFilter{Flavor: &c})); !slices.Equal(got, tc.want) && len(got)+len(tc.want) > 0 {
				t.Errorf("node list --flavor trait=%s = %v, want %v", tc.trait, got, tc.want)
			}
			p, err := s.Plan(ctx, request("lab", item("", 1, c)))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Capacity[0].Matching; got != len(tc.want) {
				t.Errorf("plan trait=%s: %d match, want %d", tc.trait, got, len(tc.want))
			}
			if p.Satisfiable != (len(tc.want) > 0) {
				t.Errorf("plan trait=%s satisfiable = %v, want %v", tc.trait, p.Satisfiable, len(tc.want) > 0)
			}
			if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: flavorFor(tc.trait), Constraints: c}); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := s.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Flavor == flavorFor("CUSTOM_GPU") && r.Total != 1 || r.Flavor == flavorFor("BAR_FOO") && r.Total != 1 || r.Flavor == flavorFor("CUSTOM__GPU") && r.Total != 0 {
				t.Errorf("capacity %s: %d total, want exact trait matches only", r.Flavor, r.Total)
			}
		}
		// Two CUSTOM_GPU nodes are asked for and one exists: the request is
		// refused, and the refusal counts the one real match.
		_, err = allocateErr(s, request("lab", item("", 2, ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}})))
		if e := wantCode(t, err, ironpool.ECAPACITY); e.Shortfall[0].Matching != 1 {
			t.Errorf("shortfall = %+v, want 1 matching", e.Shortfall)
		}
		a := mustAllocate(t, s, request("lab", item("", 1, ironpool.Constraints{Traits: []string{"BAR_FOO"}})))
		if !slices.Equal(a.Items[0].Nodes, []string{"barfoo"}) {
			t.Errorf("BAR_FOO allocated %v, want [barfoo]", a.Items[0].Nodes)
		}
	})

	// Property: for generated trait names over an alphabet rich in `_`,
	// what the store matches equals plain set inclusion.
	t.Run("Property", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		var round atomic.Int64
		// Names from A, B, X and `_`: A_B, AXB, A__B and AB collide under a
		// pattern that treats `_` as a wildcard.
		traitName := rapid.StringMatching(`[AB][AXB_]{0,3}`)
		rapid.Check(t, func(rt *rapid.T) {
			pool := fmt.Sprintf("prop%d", round.Add(1))
			universe := rapid.SliceOfNDistinct(traitName, 1, 6, rapid.ID[string]).Draw(rt, "universe")
			sub := rapid.SliceOf(rapid.SampledFrom(universe))
			count := rapid.IntRange(1, 6).Draw(rt, "nodes")
			var nodes []*ironpool.Node
			for i := range count {
				n := newNode(t, fmt.Sprintf("%s-n%d", pool, i), 8, sub.Draw(rt, fmt.Sprintf("traits%d", i))...)
				n.Pool = pool
				nodes = append(nodes, n)
			}
			mustCreate(t, s, nodes...)
			want := ironpool.Constraints{Pool: pool}
			want.Traits, _ = ironpool.NormalizeTraits("traits", sub.Draw(rt, "required"))
			var oracle []string
			for _, n := range nodes {
				if isSubset(want.Traits, n.Traits) {
					oracle = append(oracle, n.Name)
				}
			}
			slices.Sort(oracle)
			got := names(findNodes(t, s, ironpool.NodeFilter{Flavor: &want}))
			if !slices.Equal(got, oracle) && len(got)+len(oracle) > 0 {
				rt.Fatalf("traits %v matched %v, want %v", want.Traits, got, oracle)
			}
			p, err := s.Plan(ctx, request("lab", item("", 1, want)))
			if err != nil {
				rt.Fatal(err)
			}
			if p.Capacity[0].Matching != len(oracle) {
				rt.Fatalf("plan traits %v: %d match, want %d", want.Traits, p.Capacity[0].Matching, len(oracle))
			}
		})
	})
}

// flavorFor names the flavor that requires trait (flavor names hold no `_`).
func flavorFor(trait string) string {
	return "f-" + strings.ToLower(strings.ReplaceAll(trait, "_", "-"))
}

// isSubset reports whether every trait of want is in have.
func isSubset(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// allocateErr runs Allocate (without queueing) and returns its error.
func allocateErr(s ironpool.Store, a *ironpool.Allocation) (*ironpool.Allocation, error) {
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	return a, s.Allocate(ctx, a, false)
}
