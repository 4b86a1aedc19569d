package freeindex

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ironpool/ironpool"
)

func node(id int64, pool string, cpus int, last int64, traits ...string) Node {
	return Node{ID: id, Name: "n", CPUs: cpus, MemoryMB: int64(cpus) * 1024, LocalGB: 10, Last: last,
		Attrs: &Attrs{Pool: pool, Traits: traits}}
}

// build returns an index holding nodes, as a rebuild would install them.
func build(nodes ...Node) *Index {
	x := New()
	w := x.Pending()
	x.Apply(w, Result{Free: nodes})
	return x
}

func ids(nodes []Node) []int64 {
	out := make([]int64, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID
	}
	return out
}

// TestPickIsBruteForce: for random pools and constraints, Pick returns the
// first limit matching nodes of the best-fit order, as a sort and filter of
// every node gives them.
func TestPickIsBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []Node
	for id := range int64(300) {
		var traits []string
		if r.IntN(3) == 0 {
			traits = []string{"CUSTOM_GPU"}
		}
		all = append(all, node(id+1, []string{"a", "b", "c"}[r.IntN(3)], []int{2, 4, 8, 16}[r.IntN(4)], r.Int64N(50), traits...))
	}
	x := build(all...)
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b Node) int {
		if less(&a, &b) {
			return -1
		}
		return 1
	})
	for range 500 {
		c := ironpool.Constraints{CPUs: []int{0, 4, 8, 16}[r.IntN(4)], Pool: []string{"", "a", "b", "zzz"}[r.IntN(4)]}
		if r.IntN(3) == 0 {
			c.Traits = []string{"CUSTOM_GPU"}
		}
		limit, until := 1+r.IntN(20), int64(0)
		var want []int64
		for _, n := range sorted {
			if n.Matches(&c) && len(want) < limit {
				want = append(want, n.ID)
			}
		}
		if got := ids(x.Pick(&c, limit, until, nil)); !slices.Equal(got, want) {
			t.Fatalf("Pick(%s, %d) = %v, want %v", c, limit, got, want)
		}
	}
}

// TestTouchAndApply: a touched node leaves the free set at once and comes
// back only from a read that began after its last touch; a held node no
// read puts back until Unhold.
func TestTouchAndApply(t *testing.T) {
	x := build(node(1, "a", 4, 0), node(2, "a", 4, 1))
	any := ironpool.Constraints{}
	x.Touch(1)
	if got := ids(x.Pick(&any, 10, 0, nil)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("after Touch(1): %v, want [2]", got)
	}
	early := x.Pending()
	x.Touch(1) // touched again while the first read is under way
	x.Apply(early, Result{Free: []Node{node(1, "a", 4, 0)}})
	if got := ids(x.Pick(&any, 10, 0, nil)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("a read older than the last touch put node 1 back: %v", got)
	}
	late := x.Pending()
	x.Apply(late, Result{Free: []Node{node(1, "a", 4, 9)}})
	if got := ids(x.Pick(&any, 10, 0, nil)); !slices.Equal(got, []int64{2, 1}) {
		t.Fatalf("after the newer read: %v, want [2 1] (node 1 now last allocated at 9)", got)
	}
	x.Hold([]int64{2})
	x.Apply(x.Pending(), Result{Free: []Node{node(2, "a", 4, 1)}})
	if got := ids(x.Pick(&any, 10, 0, nil)); !slices.Equal(got, []int64{1}) {
		t.Fatalf("a read put held node 2 back: %v", got)
	}
	x.Unhold([]int64{2})
	w := x.Pending()
	if !slices.Contains(w.IDs, 2) {
		t.Fatalf("Unhold did not ask for node 2 to be read back: %v", w.IDs)
	}
	x.Apply(w, Result{}) // read back: no longer free
	if got := ids(x.Pick(&any, 10, 0, nil)); !slices.Equal(got, []int64{1}) {
		t.Fatalf("after reading node 2 back as taken: %v", got)
	}
}

// TestReservedAndRebuild: reservation starts keep a node from picks that
// would hold it past them, and a rebuild marked during a read stays due.
func TestReservedAndRebuild(t *testing.T) {
	x := build(node(1, "a", 4, 0), node(2, "a", 4, 1))
	x.TouchReservations()
	w := x.Pending()
	x.Apply(w, Result{Reserved: map[int64]int64{1: 1000}})
	any := ironpool.Constraints{}
	if got := ids(x.Pick(&any, 10, 2000, nil)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("until after the reservation: %v, want [2]", got)
	}
	if got := ids(x.Pick(&any, 10, 500, nil)); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("until before the reservation: %v, want [1 2]", got)
	}
	x.TouchAll()
	w = x.Pending()
	if !w.All {
		t.Fatal("TouchAll did not ask for a rebuild")
	}
	x.TouchAll() // a second mark while the rebuild reads
	x.Apply(w, Result{Free: []Node{node(3, "b", 8, 0)}})
	if x.Ready() {
		t.Fatal("a rebuild that began before the last mark made the index ready")
	}
	x.Apply(x.Pending(), Result{Free: []Node{node(3, "b", 8, 0)}, Reserved: map[int64]int64{}})
	if !x.Ready() || x.Len() != 1 {
		t.Fatalf("after the second rebuild: ready %v, %d nodes", x.Ready(), x.Len())
	}
}

// TestOldRebuildAfterNewerRead: a rebuild that read node 1 as free before
// it was taken must not put it back after a newer read of node 1 has been
// applied. (The first index kept a touch count per node and forgot it once
// a read was applied; the older rebuild then looked current. Three
// PostgreSQL replicas found it when a listener reconnected.)
func TestOldRebuildAfterNewerRead(t *testing.T) {
	x := build(node(1, "a", 4, 0))
	x.TouchAll()
	rebuild := x.Pending()
	x.Touch(1) // taken on another replica; its notification arrives
	newer := x.Pending()
	x.Apply(newer, Result{}) // read back: not free
	x.Apply(rebuild, Result{Free: []Node{node(1, "a", 4, 0)}, Reserved: map[int64]int64{}})
	if x.Len() != 0 {
		snap, _ := x.Snapshot()
		t.Fatalf("the older rebuild put node 1 back: %v", ids(snap))
	}
	// Once no read older than the touch is under way, reads apply again.
	x.Touch(1)
	x.Apply(x.Pending(), Result{Free: []Node{node(1, "a", 4, 0)}})
	if x.Len() != 1 {
		t.Fatalf("a current read of node 1 was not applied: %d nodes", x.Len())
	}
}
