package alloc

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// topoRequest draws a request as request does, plus a group for most nodes
// (some have none) and a topology: spread with K in 1..3, or together.
func topoRequest(t *rapid.T) ([]int, [][]Candidate, map[int64]string, Topology) {
	counts, cands := request(t, 8, 3, 3, true)
	groups := map[int64]string{}
	for n := range 8 {
		if g := rapid.IntRange(-1, 3).Draw(t, fmt.Sprintf("group%d", n)); g >= 0 {
			groups[int64(100+n)] = fmt.Sprintf("r%d", g)
		}
	}
	var topo Topology
	if rapid.Bool().Draw(t, "together") {
		topo.Together = true
	} else {
		topo.MaxPerGroup = rapid.IntRange(1, 3).Draw(t, "max")
	}
	return counts, cands, groups, topo
}

// keeps reports whether the chosen nodes keep topo.
func keeps(chosen []int64, groups map[int64]string, topo Topology) bool {
	per := map[string]int{}
	for _, id := range chosen {
		g, ok := groups[id]
		if !ok || g == "" {
			return false
		}
		per[g]++
		if !topo.Together && per[g] > topo.MaxPerGroup {
			return false
		}
	}
	return !topo.Together || len(per) <= 1
}

// bruteTopo tries every partial assignment (each item takes any subset of
// at most counts[i] of its distinct candidates) and returns the least total
// rank of a full one that keeps topo, whether one exists, and the most
// slots any partial one keeping topo fills.
func bruteTopo(counts []int, cands [][]Candidate, groups map[int64]string, topo Topology) (best int64, ok bool, placed int) {
	lists := make([][]Candidate, len(cands))
	for i, l := range cands {
		seen := map[int64]bool{}
		for _, c := range l {
			if !seen[c.ID] {
				seen[c.ID] = true
				lists[i] = append(lists[i], c)
			}
		}
	}
	used := map[int64]bool{}
	var chosen []int64
	full := 0
	for _, c := range counts {
		full += c
	}
	var rec func(i, from, left int, sum int64)
	rec = func(i, from, left int, sum int64) {
		if !keeps(chosen, groups, topo) {
			return // adding nodes never repairs a broken constraint
		}
		placed = max(placed, len(chosen))
		if i == len(counts) {
			if len(chosen) == full && (!ok || sum < best) {
				best, ok = sum, true
			}
			return
		}
		// Stop filling item i here (partial), or take one more.
		if i+1 < len(counts) {
			rec(i+1, 0, counts[i+1], sum)
		} else {
			rec(i+1, 0, 0, sum)
		}
		if left == 0 {
			return
		}
		for j := from; j < len(lists[i]); j++ {
			c := lists[i][j]
			if used[c.ID] {
				continue
			}
			used[c.ID] = true
			chosen = append(chosen, c.ID)
			rec(i, j+1, left-1, sum+c.Rank)
			chosen = chosen[:len(chosen)-1]
			used[c.ID] = false
		}
	}
	if len(counts) == 0 {
		return 0, true, 0
	}
	rec(0, 0, counts[0], 0)
	return best, ok, placed
}

func TestMatchTopologyAgainstBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts, cands, groups, topo := topoRequest(t)
		before := deepCopy(cands)
		res := MatchTopology(counts, cands, groups, topo)
		if !slices.EqualFunc(before, cands, slices.Equal) {
			t.Fatalf("MatchTopology mutated its candidates")
		}
		want, feasible, placed := bruteTopo(counts, cands, groups, topo)
		if res.OK != feasible {
			t.Fatalf("%+v: ok = %v, brute force feasible = %v (picks %v)", topo, res.OK, feasible, res.Picks)
		}
		if !res.OK {
			if res.Placed != placed {
				t.Fatalf("%+v: Placed = %d, brute force places at most %d", topo, res.Placed, placed)
			}
			return
		}
		if got := check(t, counts, cands, res.Picks); got != want {
			t.Fatalf("%+v: total rank = %d, brute-force minimum %d (picks %v)", topo, got, want, res.Picks)
		}
		var all []int64
		for _, p := range res.Picks {
			all = append(all, p...)
		}
		if !keeps(all, groups, topo) {
			t.Fatalf("%+v: picks %v break the constraint (groups %v)", topo, res.Picks, groups)
		}
		if topo.Together && len(all) > 0 && res.Group != groups[all[0]] {
			t.Fatalf("Group = %q, but the picks are in %q", res.Group, groups[all[0]])
		}
	})
}

func TestMatchTopologyTable(t *testing.T) {
	g := map[int64]string{1: "r1", 2: "r1", 3: "r2", 4: "r2", 5: "r3", 6: ""}
	for _, tc := range []struct {
		name   string
		counts []int
		cands  [][]Candidate
		topo   Topology
		want   [][]int64
		group  string
		placed int
	}{
		// Best fit alone would take 1 and 2 (same rack).
		{"spread skips a rack's second node", []int{2}, [][]Candidate{cs(1, 0, 2, 1, 3, 2)}, Topology{MaxPerGroup: 1}, [][]int64{{1, 3}}, "", 0},
		{"spread 2 per rack", []int{3}, [][]Candidate{cs(1, 0, 2, 1, 3, 2, 4, 3)}, Topology{MaxPerGroup: 2}, [][]int64{{1, 2, 3}}, "", 0},
		// A node without the key is never used, even when it is the best fit.
		{"no group, no use", []int{2}, [][]Candidate{cs(6, 0, 1, 1, 3, 2)}, Topology{MaxPerGroup: 1}, [][]int64{{1, 3}}, "", 0},
		{"three racks for four nodes", []int{4}, [][]Candidate{cs(1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 6, 5)}, Topology{MaxPerGroup: 1}, nil, "", 3},
		// Across items: item 0 can only use rack r1, so item 1 must leave it.
		{"spread across items", []int{1, 1}, [][]Candidate{cs(1, 0), cs(2, 1, 3, 2)}, Topology{MaxPerGroup: 1}, [][]int64{{1}, {3}}, "", 0},
		// r1 costs 0+1, r2 costs 2+3: together picks r1.
		{"together cheapest rack", []int{2}, [][]Candidate{cs(1, 0, 2, 1, 3, 2, 4, 3)}, Topology{Together: true}, [][]int64{{1, 2}}, "r1", 0},
		// Equal cost in r1 and r2: the first name wins.
		{"together tie by name", []int{2}, [][]Candidate{cs(3, 0, 4, 0, 1, 0, 2, 0)}, Topology{Together: true}, [][]int64{{1, 2}}, "r1", 0},
		{"together too big for any rack", []int{3}, [][]Candidate{cs(1, 0, 2, 1, 3, 2, 5, 3)}, Topology{Together: true}, nil, "r1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := MatchTopology(tc.counts, tc.cands, g, tc.topo)
			if ok := tc.want != nil; res.OK != ok {
				t.Fatalf("ok = %v, want %v (%+v)", res.OK, ok, res)
			}
			if !res.OK {
				if res.Placed != tc.placed || (tc.topo.Together && res.BestGroup != tc.group) {
					t.Fatalf("Placed %d BestGroup %q, want %d %q", res.Placed, res.BestGroup, tc.placed, tc.group)
				}
				return
			}
			if !slices.EqualFunc(res.Picks, tc.want, slices.Equal) || res.Group != tc.group {
				t.Fatalf("picks %v group %q, want %v %q", res.Picks, res.Group, tc.want, tc.group)
			}
		})
	}
}

// TestGroupNeedIsEnough cuts every list to GroupNeed candidates per group
// before matching, as the store's read does, and checks that the answer is
// the one over the full lists.
func TestGroupNeedIsEnough(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts, cands := request(t, 14, 4, 3, false)
		groups := map[int64]string{}
		for n := range 14 {
			groups[int64(100+n)] = fmt.Sprintf("r%d", rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("group%d", n)))
		}
		topo := Topology{MaxPerGroup: rapid.IntRange(0, 3).Draw(t, "max")}
		topo.Together = topo.MaxPerGroup == 0
		limit := GroupNeed(counts, topo)
		cut := make([][]Candidate, len(cands))
		for i, l := range cands {
			l = slices.Clone(l)
			slices.SortFunc(l, byRank)
			per := map[string]int{}
			for _, c := range l {
				if per[groups[c.ID]] < limit {
					per[groups[c.ID]]++
					cut[i] = append(cut[i], c)
				}
			}
		}
		wantCost, wantOK, _ := bruteTopo(counts, cands, groups, topo)
		res := MatchTopology(counts, cut, groups, topo)
		if res.OK != wantOK {
			t.Fatalf("%+v cut to %d per group: ok = %v, full lists feasible = %v", topo, limit, res.OK, wantOK)
		}
		if res.OK {
			if got := total(counts, cut, res.Picks); got != wantCost {
				t.Fatalf("%+v cut to %d per group: cost %d, full-list minimum %d", topo, limit, got, wantCost)
			}
		}
	})
}

func TestMatchTopologyPanicsOnCallerBugs(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a topology that is neither spread nor together")
		}
	}()
	MatchTopology([]int{1}, [][]Candidate{cs(1, 0)}, map[int64]string{1: "a"}, Topology{})
}

func BenchmarkMatchTopology(b *testing.B) {
	// 40 racks of 25 nodes, one item of 20 spread one per rack; the best
	// fits crowd into the first racks, so the flow runs. Match on the same
	// lists (no topology) is the peer to compare with.
	var l []Candidate
	groups := map[int64]string{}
	for i := range 1000 {
		id := int64(i)
		l = append(l, Candidate{ID: id, Rank: id})
		groups[id] = fmt.Sprintf("r%02d", i/25)
	}
	counts := []int{10, 10}
	cands := [][]Candidate{l, l[100:]}
	b.Run("match_no_topology", func(b *testing.B) {
		for b.Loop() {
			Match(counts, cands)
		}
	})
	b.Run("spread_1_per_rack", func(b *testing.B) {
		for b.Loop() {
			if !MatchTopology(counts, cands, groups, Topology{MaxPerGroup: 1}).OK {
				b.Fatal("not satisfiable")
			}
		}
	})
	b.Run("together", func(b *testing.B) {
		for b.Loop() {
			if !MatchTopology([]int{10, 10}, cands, groups, Topology{Together: true}).OK {
				b.Fatal("not satisfiable")
			}
		}
	})
}
