package alloc

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// cs builds a candidate list from (ID, Rank) pairs.
func cs(pairs ...int64) []Candidate {
	out := make([]Candidate, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Candidate{ID: pairs[i], Rank: pairs[i+1]})
	}
	return out
}

// fataler is what check needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// check fails t unless picks is a valid assignment for the request, and
// returns its total rank.
func check(t fataler, counts []int, cands [][]Candidate, picks [][]int64) int64 {
	t.Helper()
	if len(picks) != len(counts) {
		t.Fatalf("got %d pick lists for %d items", len(picks), len(counts))
	}
	used := map[int64]int{}
	var total int64
	for i, p := range picks {
		if p == nil {
			t.Fatalf("item %d: nil pick list", i)
		}
		if len(p) != counts[i] {
			t.Fatalf("item %d: got %d nodes %v, want %d", i, len(p), p, counts[i])
		}
		rank := map[int64]int64{}
		for _, c := range cands[i] {
			if r, ok := rank[c.ID]; !ok || c.Rank < r {
				rank[c.ID] = c.Rank
			}
		}
		prev := int64(-1 << 63)
		for _, id := range p {
			r, ok := rank[id]
			if !ok {
				t.Fatalf("item %d: node %d is not a candidate", i, id)
			}
			if j, dup := used[id]; dup {
				t.Fatalf("node %d given to items %d and %d", id, j, i)
			}
			if r < prev {
				t.Fatalf("item %d: picks %v not in rank order", i, p)
			}
			prev = r
			used[id] = i
			total += r
		}
	}
	return total
}

func TestMatchTable(t *testing.T) {
	// Nested flavors, strictest first: item i may take nodes 0..i (rank =
	// ID), so the only assignment is item i → node i. Greedy in item order
	// from the loosest item takes node 0 for it and fails.
	const nested = 30
	var nestCounts []int
	var nestCands [][]Candidate
	var nestWant [][]int64
	for i := nested - 1; i >= 0; i-- {
		nestCounts = append(nestCounts, 1)
		var l []Candidate
		for j := 0; j <= i; j++ {
			l = append(l, Candidate{int64(j), int64(j)})
		}
		nestCands = append(nestCands, l)
		nestWant = append(nestWant, []int64{int64(i)})
	}

	tests := []struct {
		name   string
		counts []int
		cands  [][]Candidate
		ok     bool
		total  int64     // checked when ok
		want   [][]int64 // checked when non-nil (the optimum is unique)
	}{
		{
			name:   "empty request",
			counts: nil, cands: nil,
			ok: true, want: [][]int64{},
		},
		{
			name:   "all counts zero",
			counts: []int{0, 0}, cands: [][]Candidate{nil, cs(1, 1)},
			ok: true, want: [][]int64{{}, {}},
		},
		{
			name:   "zero count item gets empty picks and does not block",
			counts: []int{0, 2, 0},
			cands:  [][]Candidate{cs(1, 1), cs(1, 1, 2, 2), nil},
			ok:     true, total: 3, want: [][]int64{{}, {1, 2}, {}},
		},
		{
			name:   "single item best fit from unsorted list",
			counts: []int{2},
			cands:  [][]Candidate{cs(5, 50, 3, 30, 9, 90, 1, 10, 7, 70)},
			ok:     true, total: 40, want: [][]int64{{1, 3}},
		},
		{
			name:   "single item too few",
			counts: []int{3},
			cands:  [][]Candidate{cs(1, 1, 2, 2)},
		},
		{
			name:   "single item duplicates count once",
			counts: []int{2},
			cands:  [][]Candidate{cs(1, 1, 1, 1, 1, 1)},
		},
		{
			name:   "single item duplicates skipped",
			counts: []int{2},
			cands:  [][]Candidate{cs(1, 1, 1, 1, 2, 5, 2, 5, 3, 9)},
			ok:     true, total: 6, want: [][]int64{{1, 2}},
		},
		{
			name:   "single item many with duplicates",
			counts: []int{20},
			cands: func() [][]Candidate {
				var l []Candidate
				for i := range 40 {
					l = append(l, Candidate{int64(i / 2), int64(i / 2)})
				}
				return [][]Candidate{l}
			}(),
			ok: true, total: 190,
		},
		{
			// The big node (ID 100) is the any-item's best-ranked candidate
			// and the big-item's only one: the any-item must settle for 2.
			name:   "loose item must not take the big node",
			counts: []int{1, 1},
			cands:  [][]Candidate{cs(100, 1, 2, 2), cs(100, 1)},
			ok:     true, total: 3, want: [][]int64{{2}, {100}},
		},
		{
			name:   "loose item with small nodes and big item",
			counts: []int{2, 1},
			cands:  [][]Candidate{cs(1, 1, 2, 2, 100, 10), cs(100, 10)},
			ok:     true, total: 13, want: [][]int64{{1, 2}, {100}},
		},
		{
			// Ranks fall along the chain, so every item's favourite is
			// the node it shares with the next one.
			name:   "overlapping flavors in a chain",
			counts: []int{1, 1, 1, 1},
			cands:  [][]Candidate{cs(1, 4, 2, 3), cs(2, 3, 3, 2), cs(3, 2, 4, 1), cs(4, 1)},
			ok:     true, total: 10, want: [][]int64{{1}, {2}, {3}, {4}},
		},
		{
			name:   "chain needing a two-step reassignment",
			counts: []int{2, 1, 1},
			cands:  [][]Candidate{cs(1, 1, 2, 2, 3, 3), cs(1, 1, 4, 9), cs(2, 2, 3, 3)},
			ok:     true, total: 15, // item 1 must take 4; items 0 and 2 split 2 and 3
		},
		{
			name:   "many items with nested flavors",
			counts: nestCounts, cands: nestCands,
			ok: true, total: nested * (nested - 1) / 2, want: nestWant,
		},
		{
			name:   "not enough distinct nodes though each list is long enough",
			counts: []int{1, 1, 1},
			cands:  [][]Candidate{cs(1, 1, 2, 2), cs(1, 1, 2, 2), cs(2, 2, 1, 1)},
		},
		{
			// Five distinct nodes for four slots, every list long enough,
			// but items 0 and 1 need three nodes between nodes 1 and 2.
			name:   "impossible by Hall's condition",
			counts: []int{2, 1, 1},
			cands:  [][]Candidate{cs(1, 1, 2, 2), cs(1, 1, 2, 2), cs(3, 3, 4, 4, 5, 5)},
		},
		{
			name:   "list shorter than its count",
			counts: []int{1, 2},
			cands:  [][]Candidate{cs(1, 1, 2, 2, 3, 3), cs(3, 3)},
		},
		{
			name:   "duplicates across and within lists",
			counts: []int{1, 2},
			cands:  [][]Candidate{cs(1, 1, 1, 1, 2, 2), cs(1, 1, 2, 2, 2, 2, 1, 1)},
		},
		{
			name:   "duplicates within lists still feasible",
			counts: []int{1, 2},
			cands:  [][]Candidate{cs(1, 1, 1, 1, 3, 3), cs(1, 1, 2, 2, 2, 2, 1, 1)},
			ok:     true, total: 6, want: [][]int64{{3}, {1, 2}},
		},
		{
			name:   "best fit takes the smallest nodes overall",
			counts: []int{2, 2},
			cands: [][]Candidate{
				cs(10, 10, 11, 11, 1, 1, 2, 2, 3, 3),
				cs(3, 3, 4, 4, 5, 5, 1, 1, 12, 12),
			},
			ok: true, total: 1 + 2 + 3 + 4,
		},
		{
			name:   "disjoint lists each take their best",
			counts: []int{1, 2, 1},
			cands:  [][]Candidate{cs(3, 3, 1, 1), cs(6, 6, 5, 5, 4, 4), cs(9, 9, 8, 8)},
			ok:     true, total: 18, want: [][]int64{{1}, {4, 5}, {8}},
		},
		{
			name:   "ties broken by ID",
			counts: []int{1, 2},
			cands:  [][]Candidate{cs(3, 0, 2, 0, 1, 0), cs(2, 0, 1, 0)},
			ok:     true, total: 0, want: [][]int64{{3}, {1, 2}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.cands)
			picks, ok := Match(tc.counts, tc.cands)
			if !slices.EqualFunc(before, tc.cands, slices.Equal) {
				t.Fatalf("Match mutated its candidates")
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (picks %v)", ok, tc.ok, picks)
			}
			if !ok {
				if picks != nil {
					t.Fatalf("picks = %v on failure, want nil", picks)
				}
				return
			}
			total := check(t, tc.counts, tc.cands, picks)
			if tc.want != nil && !slices.EqualFunc(picks, tc.want, slices.Equal) {
				t.Fatalf("picks = %v, want %v", picks, tc.want)
			}
			if tc.want == nil && total != tc.total {
				t.Fatalf("total rank = %d, want %d (picks %v)", total, tc.total, picks)
			}
		})
	}
}

func TestMatchPanicsOnCallerBugs(t *testing.T) {
	for name, f := range map[string]func(){
		"length mismatch": func() { Match([]int{1}, nil) },
		"negative count":  func() { Match([]int{-1}, [][]Candidate{nil}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestNeed(t *testing.T) {
	if got := Need([]int{2, 0, 1, 1}); got != 4 {
		t.Fatalf("Need = %d, want 4", got)
	}
	if got := Need(nil); got != 0 {
		t.Fatalf("Need(nil) = %d, want 0", got)
	}
}

func deepCopy(c [][]Candidate) [][]Candidate {
	out := make([][]Candidate, len(c))
	for i := range c {
		out[i] = slices.Clone(c[i])
	}
	return out
}

// request draws a random request over a pool of at most maxNodes nodes with
// consistent per-node ranks (ties allowed). Lists are random subsets in
// random order; with dups, entries may repeat.
func request(t *rapid.T, maxNodes, maxItems, maxCount int, dups bool) ([]int, [][]Candidate) {
	nodes := rapid.IntRange(1, maxNodes).Draw(t, "nodes")
	ranks := rapid.SliceOfN(rapid.Int64Range(0, 10), nodes, nodes).Draw(t, "ranks")
	items := rapid.IntRange(1, maxItems).Draw(t, "items")
	counts := make([]int, items)
	cands := make([][]Candidate, items)
	for i := range items {
		counts[i] = rapid.IntRange(0, maxCount).Draw(t, fmt.Sprintf("count%d", i))
		var l []Candidate
		for n := range nodes {
			if rapid.Bool().Draw(t, fmt.Sprintf("in%d.%d", i, n)) {
				l = append(l, Candidate{ID: int64(100 + n), Rank: ranks[n]})
			}
		}
		if dups && len(l) > 0 {
			extra := rapid.SliceOfN(rapid.IntRange(0, len(l)-1), 0, 3).Draw(t, fmt.Sprintf("dups%d", i))
			for _, j := range extra {
				l = append(l, l[j])
			}
		}
		perm := rapid.Permutation(l).Draw(t, fmt.Sprintf("order%d", i))
		cands[i] = perm
	}
	return counts, cands
}

// bruteForce returns the least total rank over all assignments, or false if
// there is none, by trying every combination for every item.
func bruteForce(counts []int, cands [][]Candidate) (int64, bool) {
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
	best, found := int64(0), false
	// rec fills item i from position from of its list, still needing left.
	var rec func(i, from, left int, sum int64)
	rec = func(i, from, left int, sum int64) {
		if i == len(counts) {
			if !found || sum < best {
				best, found = sum, true
			}
			return
		}
		if left == 0 {
			if i+1 < len(counts) {
				rec(i+1, 0, counts[i+1], sum)
			} else {
				rec(i+1, 0, 0, sum)
			}
			return
		}
		for j := from; j < len(lists[i]); j++ {
			c := lists[i][j]
			if used[c.ID] {
				continue
			}
			used[c.ID] = true
			rec(i, j+1, left-1, sum+c.Rank)
			used[c.ID] = false
		}
	}
	if len(counts) == 0 {
		return 0, true
	}
	rec(0, 0, counts[0], 0)
	return best, found
}

func TestMatchAgainstBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		counts, cands := request(t, 8, 4, 3, true)
		before := deepCopy(cands)
		picks, ok := Match(counts, cands)
		if !slices.EqualFunc(before, cands, slices.Equal) {
			t.Fatalf("Match mutated its candidates")
		}
		want, feasible := bruteForce(counts, cands)
		if ok != feasible {
			t.Fatalf("Match ok = %v, brute force feasible = %v (picks %v)", ok, feasible, picks)
		}
		if !ok {
			return
		}
		if got := check(t, counts, cands, picks); got != want {
			t.Fatalf("total rank = %d, brute-force minimum %d (picks %v)", got, want, picks)
		}
	})
}

// truncate returns each list sorted by rank and cut to its first k entries,
// as the caller's query with ORDER BY rank LIMIT k returns it.
func truncate(cands [][]Candidate, k int) [][]Candidate {
	out := deepCopy(cands)
	for i := range out {
		slices.SortFunc(out[i], byRank)
		out[i] = out[i][:min(k, len(out[i]))]
	}
	return out
}

func total(counts []int, cands [][]Candidate, picks [][]int64) int64 {
	var sum int64
	for i, p := range picks {
		for _, id := range p {
			j := slices.IndexFunc(cands[i], func(c Candidate) bool { return c.ID == id })
			sum += cands[i][j].Rank
		}
	}
	return sum
}

func TestTruncationToNeedIsEnough(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		// Lists come from a table keyed by node, so no duplicates. More
		// nodes and items than above so that truncation often cuts.
		counts, cands := request(t, 14, 5, 3, false)
		k := Need(counts)
		cut := truncate(cands, k)
		fullPicks, fullOK := Match(counts, cands)
		cutPicks, cutOK := Match(counts, cut)
		if fullOK != cutOK {
			t.Fatalf("full lists ok = %v, lists cut to %d ok = %v", fullOK, k, cutOK)
		}
		if !fullOK {
			return
		}
		check(t, counts, cut, cutPicks)
		if f, c := total(counts, cands, fullPicks), total(counts, cut, cutPicks); f != c {
			t.Fatalf("total rank over full lists %d, over lists cut to %d: %d", f, k, c)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	// (a) One item, count 3, from 1000 candidates in rank order.
	b.Run("1x3_of_1000", func(b *testing.B) {
		l := make([]Candidate, 1000)
		for i := range l {
			l[i] = Candidate{ID: int64(5000 - i), Rank: int64(i)}
		}
		bench(b, []int{3}, [][]Candidate{l})
	})
	// (b) Three overlapping items, counts 2/1/1, each list of length Need
	// = 4; the items' favourites collide, so the full search runs.
	b.Run("3_items_2-1-1_overlap", func(b *testing.B) {
		counts := []int{2, 1, 1}
		k := Need(counts)
		var cands [][]Candidate
		for i := range counts {
			var l []Candidate
			for j := range k {
				id := int64(i + j) // item i lists nodes i..i+3
				l = append(l, Candidate{ID: id, Rank: id})
			}
			cands = append(cands, l)
		}
		bench(b, counts, cands)
	})
	// (c) Eight items of count 10, lists of 80 drawn from a pool of 101
	// nodes with strides of 3, so each item's best ten collide with the
	// next item's.
	b.Run("8x10_of_80_overlap", func(b *testing.B) {
		counts := make([]int, 8)
		var cands [][]Candidate
		for i := range counts {
			counts[i] = 10
			var l []Candidate
			for j := range 80 {
				id := int64(3*i + j)
				l = append(l, Candidate{ID: id, Rank: id})
			}
			cands = append(cands, l)
		}
		bench(b, counts, cands)
	})
}

func bench(b *testing.B, counts []int, cands [][]Candidate) {
	if _, ok := Match(counts, cands); !ok {
		b.Fatal("benchmark request is not satisfiable")
	}
	b.ReportAllocs()
	for b.Loop() {
		Match(counts, cands)
	}
}
