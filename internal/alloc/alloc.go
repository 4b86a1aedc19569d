// Package alloc chooses nodes for allocation requests.
//
// A request has several items; item i needs counts[i] distinct nodes, each
// taken from its own candidate list. Lists overlap (a node that fits a strict
// flavor usually fits a loose one too), but a node can fill at most one slot.
// Match never refuses a request that has an assignment, and among assignments
// it returns one of least total Rank, so that small nodes are used first and
// big ones stay free for the requests that need them.
//
// # Algorithm
//
// The problem is min-cost flow: source → item i (capacity counts[i]) → node
// (capacity 1, cost Rank) → sink (capacity 1). Because a node has the same
// Rank in every list, every edge into a node costs the same, so a residual
// path that moves node u from item b to item a costs Rank(u) − Rank(u) = 0
// and an augmenting path costs exactly the Rank of the one new node it brings
// in. Successive shortest paths therefore reduce to: visit the nodes in
// ascending Rank and add each one if some chain of reassignments makes room
// for it (a breadth-first search over items, at most len(counts)² steps).
// This is the greedy algorithm on the transversal matroid of the nodes,
// which is optimal, and it needs neither Dijkstra nor potentials.
//
// Two fast paths cover the usual requests without building anything: a
// request with a single item takes its best counts[0] candidates, and when
// every item's best counts[i] candidates are pairwise distinct (in particular
// when the lists are disjoint) those picks are returned as they are, since no
// assignment can beat every item's individual optimum.
//
// # Fetching only the top K candidates
//
// Fetching only the top K = sum(counts) candidates per item (in rank order,
// see Need) is enough: if an assignment exists over the full candidate sets,
// one exists over the truncated lists, and the cheapest assignment over the
// truncated lists is the cheapest overall. Exchange argument: take a
// cheapest assignment over the full lists, and a slot of item i whose node v
// is outside item i's top-K list. The other K−1 slots use at most K−1 of the
// K nodes in that list, so some node u in it is unused; u comes before v in
// rank order, so Rank(u) ≤ Rank(v), and moving the slot from v to u keeps the
// assignment valid and no dearer while reducing the number of slots outside
// their lists by one. Repeating this yields an assignment, just as cheap,
// inside the truncated lists. The argument needs the K entries to be K
// distinct nodes, which holds for lists fetched from a table keyed by node.
// Match applies the same truncation internally, which bounds its work by K
// per item whatever the callers pass.
package alloc

import (
	"cmp"
	"fmt"
	"slices"
)

// Candidate is a node an item may take. Rank orders preference: lower is a
// better fit (the caller ranks by cpus, then memory, then disk, then least
// recently allocated). The same node has the same Rank in every list.
type Candidate struct {
	ID   int64
	Rank int64
}

// Need returns sum(counts): how many candidates per item, in rank order, the
// caller has to fetch for Match to find an assignment whenever one exists
// and a cheapest one (see the package comment for why that is enough).
func Need(counts []int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// Match assigns counts[i] distinct nodes from cands[i] to every item i, or
// reports ok=false when no assignment exists. Among assignments it returns one
// of least total Rank (best fit). picks[i] lists the chosen node IDs of item i
// in ascending Rank order. It never mutates its arguments.
//
// Ties in Rank are broken by ID so that the result is deterministic. A node
// listed twice in one list counts once. If a caller breaks the contract and
// gives one node different ranks in different lists, the result is still a
// valid assignment, but best fit is judged by the node's lowest rank. Match
// panics if len(counts) != len(cands) or a count is negative: both are bugs
// in the caller, not requests that cannot be met.
func Match(counts []int, cands [][]Candidate) (picks [][]int64, ok bool) {
	if len(counts) != len(cands) {
		panic(fmt.Sprintf("alloc.Match: %d counts but %d candidate lists", len(counts), len(cands)))
	}
	k, active, last := 0, 0, -1
	for i, c := range counts {
		if c < 0 {
			panic(fmt.Sprintf("alloc.Match: counts[%d] = %d is negative", i, c))
		}
		if c > 0 {
			if len(cands[i]) < c {
				return nil, false // even without duplicates the list is too short
			}
			k += c
			active++
			last = i
		}
	}
	picks = make([][]int64, len(counts))
	for i := range picks {
		picks[i] = []int64{}
	}
	switch active {
	case 0:
		return picks, true
	case 1:
		ids, ok := firstDistinct(cands[last], counts[last])
		if !ok {
			return nil, false
		}
		picks[last] = ids
		return picks, true
	}
	var s solver
	if !s.solve(counts, cands, k) {
		return nil, false
	}
	s.fill(picks)
	return picks, true
}

// byRank orders candidates by Rank, then ID, which makes results
// deterministic when ranks tie.
func byRank(a, b Candidate) int {
	if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// sorted returns list in byRank order, copying it only when the caller did
// not already sort it (a query with ORDER BY usually has), so the argument is
// never mutated and the common case allocates nothing.
func sorted(list []Candidate) []Candidate {
	if slices.IsSortedFunc(list, byRank) {
		return list
	}
	list = slices.Clone(list)
	slices.SortFunc(list, byRank)
	return list
}

// firstDistinct returns the IDs of the k best distinct nodes of list in rank
// order, or false if it has fewer than k distinct nodes.
func firstDistinct(list []Candidate, k int) ([]int64, bool) {
	out := make([]int64, 0, k)
	var seen map[int64]struct{} // only for large k, where a linear scan would be quadratic
	if k > 16 {
		seen = make(map[int64]struct{}, k)
	}
	for _, c := range sorted(list) {
		if len(out) == k {
			break
		}
		if seen != nil {
			if _, dup := seen[c.ID]; dup {
				continue
			}
			seen[c.ID] = struct{}{}
		} else if slices.Contains(out, c.ID) {
			continue
		}
		out = append(out, c.ID)
	}
	return out, len(out) == k
}

// solver holds the state of one multi-item Match. Items are renumbered
// 0..n-1 over those with a positive count, nodes 0..m-1 in order of first
// appearance; int32 keeps the working set small.
type solver struct {
	n      int       // items with a positive count
	item   []int     // solver item → index in counts
	need   []int     // solver item → count
	ids    []int64   // node → ID
	ranks  []int64   // node → lowest Rank seen
	lists  [][]int32 // solver item → its best ≤ k distinct nodes in its rank order
	itemsO []int32   // CSR: itemsO[start[u]:start[u+1]] are the items listing node u
	start  []int32
	owner  []int32   // node → item holding it, or -1
	held   [][]int32 // item → nodes it holds
	spare  []int     // item → slots still empty
	cnt    []int32   // cnt[a*n+b] = nodes held by a that b could take
	parent []int32   // BFS tree over items
	queue  []int32
}

// solve finds a cheapest assignment, or returns false if there is none.
func (s *solver) solve(counts []int, cands [][]Candidate, k int) bool {
	index := make(map[int64]int32)
	var stamp []int32 // stamp[u] = 1 + last solver item that listed u, to drop duplicates
	for i, c := range counts {
		if c == 0 {
			continue
		}
		a := int32(s.n)
		s.n++
		s.item = append(s.item, i)
		s.need = append(s.need, c)
		// By the exchange argument in the package comment the k best
		// distinct nodes of each list suffice.
		l := make([]int32, 0, min(k, len(cands[i])))
		for _, cand := range sorted(cands[i]) {
			if len(l) == k {
				break
			}
			u, seen := index[cand.ID]
			if !seen {
				u = int32(len(s.ids))
				index[cand.ID] = u
				s.ids = append(s.ids, cand.ID)
				s.ranks = append(s.ranks, cand.Rank)
				stamp = append(stamp, 0)
			} else if cand.Rank < s.ranks[u] {
				s.ranks[u] = cand.Rank
			}
			if stamp[u] == a+1 {
				continue
			}
			stamp[u] = a + 1
			l = append(l, u)
		}
		if len(l) < c {
			return false
		}
		s.lists = append(s.lists, l)
	}
	m := len(s.ids)
	if m < k {
		return false // fewer distinct nodes than slots
	}
	s.owner = stamp // reuse: same length, no longer needed
	s.held = make([][]int32, s.n)
	s.spare = make([]int, s.n)
	if s.bestEach() {
		return true
	}

	// Full search. Index which items list each node (CSR, three allocations
	// instead of one per node).
	s.start = make([]int32, m+1)
	for _, l := range s.lists {
		for _, u := range l {
			s.start[u+1]++
		}
	}
	for u := range m {
		s.start[u+1] += s.start[u]
	}
	s.itemsO = make([]int32, s.start[m])
	next := slices.Clone(s.start[:m])
	for a, l := range s.lists {
		for _, u := range l {
			s.itemsO[next[u]] = int32(a)
			next[u]++
		}
	}
	order := make([]int32, m)
	for u := range order {
		order[u] = int32(u)
	}
	slices.SortFunc(order, func(u, v int32) int {
		return byRank(Candidate{s.ids[u], s.ranks[u]}, Candidate{s.ids[v], s.ranks[v]})
	})
	for u := range s.owner {
		s.owner[u] = -1
	}
	for a := range s.n {
		s.held[a] = s.held[a][:0]
		s.spare[a] = s.need[a]
	}
	s.cnt = make([]int32, s.n*s.n)
	s.parent = make([]int32, s.n)
	s.queue = make([]int32, 0, s.n)
	placed := 0
	for _, u := range order {
		if s.place(u) {
			placed++
			if placed == k {
				return true
			}
		}
	}
	return false
}

// bestEach gives every item its own best need[a] nodes and reports whether
// no node was given twice. If so the result is optimal: each item's cost is
// at its individual minimum, a lower bound for any assignment.
func (s *solver) bestEach() bool {
	for u := range s.owner {
		s.owner[u] = -1
	}
	for a, l := range s.lists {
		for _, u := range l[:s.need[a]] {
			if s.owner[u] != -1 {
				return false
			}
			s.owner[u] = int32(a)
		}
		s.held[a] = append(s.held[a], l[:s.need[a]]...)
	}
	return true
}

// itemsOf returns the items whose lists contain node u.
func (s *solver) itemsOf(u int32) []int32 {
	return s.itemsO[s.start[u]:s.start[u+1]]
}

// place adds node u to the assignment if some chain of reassignments makes
// room for it, and reports whether it did. Nodes arrive in rank order, so
// by the matroid greedy argument a node that cannot be added now never
// belongs to a cheapest assignment.
func (s *solver) place(u int32) bool {
	for _, a := range s.itemsOf(u) {
		if s.spare[a] > 0 {
			s.give(u, a)
			return true
		}
	}
	// Breadth-first search over items: a → b when a holds a node that b
	// could take instead, so that a can take u (or the previous node).
	for b := range s.parent {
		s.parent[b] = -2 // unvisited
	}
	s.queue = s.queue[:0]
	for _, a := range s.itemsOf(u) {
		s.parent[a] = -1
		s.queue = append(s.queue, a)
	}
	for h := 0; h < len(s.queue); h++ {
		a := s.queue[h]
		for b, c := range s.cnt[int(a)*s.n : int(a+1)*s.n] {
			if c == 0 || s.parent[b] != -2 {
				continue
			}
			s.parent[b] = a
			if s.spare[b] > 0 {
				s.shift(u, int32(b))
				return true
			}
			s.queue = append(s.queue, int32(b))
		}
	}
	return false
}

// shift walks the BFS path back from item b, which has a free slot: each
// item on the path hands one node to the next, and the first item takes u.
// Items on the path are distinct, so the nodes moved are too.
func (s *solver) shift(u, b int32) {
	for s.parent[b] != -1 {
		a := s.parent[b]
		i := slices.IndexFunc(s.held[a], func(v int32) bool {
			return slices.Contains(s.itemsOf(v), b)
		})
		v := s.held[a][i]
		s.take(v, a, i)
		s.give(v, b)
		b = a
	}
	s.give(u, b)
}

// give assigns node u to item a.
func (s *solver) give(u, a int32) {
	s.owner[u] = a
	s.held[a] = append(s.held[a], u)
	s.spare[a]--
	row := s.cnt[int(a)*s.n:]
	for _, b := range s.itemsOf(u) {
		row[b]++
	}
}

// take removes node u, held by item a at position i, from a.
func (s *solver) take(u, a int32, i int) {
	h := s.held[a]
	h[i] = h[len(h)-1]
	s.held[a] = h[:len(h)-1]
	s.owner[u] = -1
	s.spare[a]++
	row := s.cnt[int(a)*s.n:]
	for _, b := range s.itemsOf(u) {
		row[b]--
	}
}

// fill writes the assignment into picks, each item's nodes in rank order.
func (s *solver) fill(picks [][]int64) {
	all := make([]int64, 0, Need(s.need))
	for a, h := range s.held {
		slices.SortFunc(h, func(u, v int32) int {
			return byRank(Candidate{s.ids[u], s.ranks[u]}, Candidate{s.ids[v], s.ranks[v]})
		})
		lo := len(all)
		for _, u := range h {
			all = append(all, s.ids[u])
		}
		picks[s.item[a]] = all[lo:len(all):len(all)]
	}
}
