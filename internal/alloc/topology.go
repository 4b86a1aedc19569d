package alloc

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
)

// Topology constrains where the nodes of one request sit relative to each
// other. Every node has a group (its value of a topology key, say the rack
// it is in); the constraint is on the whole request, across all its items.
//
// With MaxPerGroup > 0 the request is spread: at most MaxPerGroup of its
// nodes share a group (1: every node in a group of its own). With Together
// all of its nodes share one group. A node without a group can be in
// neither kind of request: it is not known to be apart from, or together
// with, any other node.
type Topology struct {
	MaxPerGroup int
	Together    bool
}

// Result is the answer of MatchTopology.
type Result struct {
	// Picks lists, per item, the chosen node IDs in ascending Rank order
	// (nil when OK is false).
	Picks [][]int64
	OK    bool
	// Group is, for a Together request that fits, the group chosen.
	Group string
	// Placed is, for a request that does not fit, the largest number of
	// its slots that some assignment fills while keeping the constraint:
	// the shortfall a refusal names. BestGroup is, for Together, a group
	// that fills Placed slots ("" when none fills any).
	Placed    int
	BestGroup string
}

// GroupNeed returns how many candidates per item and group, in rank order,
// the caller has to fetch for MatchTopology to stay exact, with k =
// Need(counts):
//
//   - spread, at most K per group: min(K, k). Exchange argument as in the
//     package comment, within one group: a slot of item i on node v of group
//     g, v outside item i's top min(K, k) of g. The other nodes of g in the
//     assignment number at most min(K, k) − 1, so some node u of that top
//     list is unused; moving the slot from v to u keeps every group's count,
//     so the spread holds, and costs no more.
//   - together: k, since inside the one group chosen the request is a plain
//     Match, for which k per item is enough.
//
// A spread by racks with K = 1 thus needs one candidate per item and rack,
// however many nodes a rack holds.
func GroupNeed(counts []int, t Topology) int {
	k := Need(counts)
	if !t.Together && t.MaxPerGroup > 0 {
		return min(t.MaxPerGroup, k)
	}
	return k
}

// MatchTopology is Match under a topology constraint: it assigns counts[i]
// distinct nodes from cands[i] to every item i such that the whole
// assignment keeps t, or reports that none exists. group gives each node's
// group; nodes missing from it (or with an empty group) are not used. Among
// the assignments that keep t it returns one of least total Rank; for a
// Together request that is the group whose best assignment is cheapest,
// ties broken by the group's name, so the same pool always gives the same
// answer. MatchTopology never mutates its arguments and panics on the
// caller bugs Match panics on, and when t asks for neither spread nor
// together.
//
// Spread is min-cost flow on source → item (capacity counts[i]) → node
// (capacity 1, cost Rank) → group (capacity MaxPerGroup) → sink, solved by
// successive shortest paths (Dijkstra with potentials), one unit per path;
// Match's matroid greedy does not apply, because the sets of nodes that
// keep both the items' and the groups' capacities are the intersection of
// two matroids. When Match's unconstrained answer already keeps the spread
// it is returned as is: it is optimal without the constraint, so with it.
// Together tries Match in every group.
func MatchTopology(counts []int, cands [][]Candidate, group map[int64]string, t Topology) Result {
	if len(counts) != len(cands) {
		panic(fmt.Sprintf("alloc.MatchTopology: %d counts but %d candidate lists", len(counts), len(cands)))
	}
	if !t.Together && t.MaxPerGroup <= 0 {
		panic(fmt.Sprintf("alloc.MatchTopology: topology %+v asks for neither spread nor together", t))
	}
	k := 0
	for i, c := range counts {
		if c < 0 {
			panic(fmt.Sprintf("alloc.MatchTopology: counts[%d] = %d is negative", i, c))
		}
		k += c
	}
	if k == 0 {
		picks := make([][]int64, len(counts))
		for i := range picks {
			picks[i] = []int64{}
		}
		return Result{Picks: picks, OK: true}
	}
	lists, rank := groupLists(counts, cands, group, GroupNeed(counts, t))
	if t.Together {
		return together(counts, lists, rank, group)
	}
	if picks, ok := Match(counts, lists); ok && keepsSpread(picks, group, t.MaxPerGroup) {
		return Result{Picks: picks, OK: true}
	}
	f := newFlow(counts, lists, rank, group, t.MaxPerGroup)
	if f.run() < k {
		return Result{Placed: f.flow}
	}
	return Result{Picks: f.picks(), OK: true}
}

// groupLists returns each item's candidates that have a group, distinct,
// in rank order, cut to the best limit per group, and every node's lowest
// rank.
func groupLists(counts []int, cands [][]Candidate, group map[int64]string, limit int) ([][]Candidate, map[int64]int64) {
	rank := map[int64]int64{}
	for _, l := range cands {
		for _, c := range l {
			if r, ok := rank[c.ID]; !ok || c.Rank < r {
				rank[c.ID] = c.Rank
			}
		}
	}
	lists := make([][]Candidate, len(cands))
	for i, l := range cands {
		if counts[i] == 0 {
			continue
		}
		l = slices.Clone(l)
		for j := range l {
			l[j].Rank = rank[l[j].ID]
		}
		slices.SortFunc(l, byRank)
		l = slices.CompactFunc(l, func(a, b Candidate) bool { return a.ID == b.ID })
		taken := map[string]int{}
		out := l[:0]
		for _, c := range l {
			g := group[c.ID]
			if g == "" || taken[g] == limit {
				continue
			}
			taken[g]++
			out = append(out, c)
		}
		lists[i] = out
	}
	return lists, rank
}

// keepsSpread reports whether no group holds more than max of picks.
func keepsSpread(picks [][]int64, group map[int64]string, max int) bool {
	per := map[string]int{}
	for _, p := range picks {
		for _, id := range p {
			if per[group[id]]++; per[group[id]] > max {
				return false
			}
		}
	}
	return true
}

// together tries the request inside every group and keeps the cheapest.
func together(counts []int, lists [][]Candidate, rank map[int64]int64, group map[int64]string) Result {
	// One pass splits every list by group, keeping rank order.
	by := map[string][][]Candidate{}
	for i, l := range lists {
		for _, c := range l {
			g := group[c.ID]
			if by[g] == nil {
				by[g] = make([][]Candidate, len(lists))
			}
			by[g][i] = append(by[g][i], c)
		}
	}
	names := slices.Sorted(maps.Keys(by))
	best := Result{}
	var bestCost int64
	for _, g := range names {
		picks, ok := Match(counts, by[g])
		if !ok {
			continue
		}
		var cost int64
		for _, p := range picks {
			for _, id := range p {
				cost += rank[id]
			}
		}
		if !best.OK || cost < bestCost { // names ascend: a tie keeps the first
			best, bestCost = Result{Picks: picks, OK: true, Group: g}, cost
		}
	}
	if best.OK {
		return best
	}
	// Refused: find the group that comes closest, for the message. A flow
	// without a group capacity (k) is a maximum matching inside g.
	k := Need(counts)
	for _, g := range names {
		f := newFlow(counts, by[g], rank, group, k)
		if n := f.run(); n > best.Placed {
			best.Placed, best.BestGroup = n, g
		}
	}
	return best
}

// flow is the min-cost flow network of a spread request. Vertices: 0 the
// source, 1 the sink, then items, nodes and groups.
type flow struct {
	edges   []edge
	adj     [][]int32 // vertex → indexes into edges
	items   []int     // flow item → index in counts
	node0   int       // first node vertex
	ids     []int64   // node vertex − node0 → ID
	rank    map[int64]int64
	nCounts int
	need    int
	flow    int
}

type edge struct {
	to   int32
	cap  int32
	cost int64
}

func newFlow(counts []int, lists [][]Candidate, rank map[int64]int64, group map[int64]string, perGroup int) *flow {
	f := &flow{need: Need(counts), rank: rank, nCounts: len(counts)}
	// Nodes in rank order so that vertex order breaks cost ties the way
	// Match does; costs are ranks shifted to start at 0, so every edge
	// cost is non-negative and the first potentials can be zero.
	var ids []int64
	seen := map[int64]bool{}
	for _, l := range lists {
		for _, c := range l {
			if !seen[c.ID] {
				seen[c.ID] = true
				ids = append(ids, c.ID)
			}
		}
	}
	slices.SortFunc(ids, func(a, b int64) int { return byRank(Candidate{a, rank[a]}, Candidate{b, rank[b]}) })
	lo := int64(0)
	if len(ids) > 0 {
		lo = rank[ids[0]]
	}
	var groups []string
	gv := map[string]int{}
	for _, id := range ids {
		if _, ok := gv[group[id]]; !ok {
			gv[group[id]] = len(groups)
			groups = append(groups, group[id])
		}
	}
	nItems := 0
	for _, c := range counts {
		if c > 0 {
			nItems++
		}
	}
	f.node0 = 2 + nItems
	g0 := f.node0 + len(ids)
	f.adj = make([][]int32, g0+len(groups))
	f.ids = ids
	vertex := make(map[int64]int, len(ids))
	for j, id := range ids {
		vertex[id] = f.node0 + j
		f.add(f.node0+j, g0+gv[group[id]], 1, 0)
	}
	for j := range groups {
		f.add(g0+j, 1, int32(perGroup), 0)
	}
	v := 2
	for i, c := range counts {
		if c == 0 {
			continue
		}
		f.items = append(f.items, i)
		f.add(0, v, int32(c), 0)
		for _, cand := range lists[i] {
			f.add(v, vertex[cand.ID], 1, rank[cand.ID]-lo)
		}
		v++
	}
	return f
}

// add adds edge u → v and its residual twin v → u (index e^1).
func (f *flow) add(u, v int, cap int32, cost int64) {
	f.adj[u] = append(f.adj[u], int32(len(f.edges)))
	f.edges = append(f.edges, edge{to: int32(v), cap: cap, cost: cost})
	f.adj[v] = append(f.adj[v], int32(len(f.edges)))
	f.edges = append(f.edges, edge{to: int32(u), cap: 0, cost: -cost})
}

// run sends up to need units along successive cheapest paths and returns
// the flow sent: need when the request fits, else the maximum flow, which
// is the number of slots any assignment keeping the constraint fills.
func (f *flow) run() int {
	n := len(f.adj)
	pot := make([]int64, n)
	dist := make([]int64, n)
	prev := make([]int32, n) // edge into the vertex on the cheapest path
	const inf = int64(1) << 62
	for f.flow < f.need {
		for v := range dist {
			dist[v], prev[v] = inf, -1
		}
		dist[0] = 0
		h := &vheap{{0, 0}}
		for h.Len() > 0 {
			it := heap.Pop(h).(vitem)
			u := int(it.v)
			if it.d > dist[u] {
				continue
			}
			for _, e := range f.adj[u] {
				ed := &f.edges[e]
				if ed.cap == 0 {
					continue
				}
				v := int(ed.to)
				// Reduced costs are non-negative by the potentials' invariant.
				if d := dist[u] + ed.cost + pot[u] - pot[v]; d < dist[v] {
					dist[v], prev[v] = d, e
					heap.Push(h, vitem{d, int32(v)})
				}
			}
		}
		if dist[1] == inf {
			break
		}
		for v := range pot {
			if dist[v] < inf {
				pot[v] += dist[v]
			}
		}
		for v := 1; v != 0; {
			e := prev[v]
			f.edges[e].cap--
			f.edges[e^1].cap++
			v = int(f.edges[e^1].to)
		}
		f.flow++
	}
	return f.flow
}

// picks reads the assignment off the item → node edges that carry flow,
// each item's nodes in rank order (node vertices are in rank order).
func (f *flow) picks() [][]int64 {
	picks := make([][]int64, f.nCounts)
	for i := range picks {
		picks[i] = []int64{}
	}
	for a, i := range f.items {
		for _, e := range f.adj[2+a] {
			ed := f.edges[e]
			if e%2 == 0 && int(ed.to) >= f.node0 && ed.cap == 0 {
				picks[i] = append(picks[i], f.ids[int(ed.to)-f.node0])
			}
		}
		slices.SortFunc(picks[i], func(x, y int64) int {
			return byRank(Candidate{x, f.rank[x]}, Candidate{y, f.rank[y]})
		})
	}
	return picks
}

type vitem struct {
	d int64
	v int32
}

// vheap is Dijkstra's priority queue, ties broken by vertex for determinism.
type vheap []vitem

func (h vheap) Len() int { return len(h) }
func (h vheap) Less(a, b int) bool {
	if h[a].d != h[b].d {
		return h[a].d < h[b].d
	}
	return h[a].v < h[b].v
}
func (h vheap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *vheap) Push(x any)   { *h = append(*h, x.(vitem)) }
func (h *vheap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
