package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ironpool/ironpool"
)

// topoNode is a fixture node with the given cpus and rack ("" for none).
func topoNode(t testing.TB, pool, name string, cpus int, rack string) *ironpool.Node {
	n := newNode(t, name, cpus)
	n.Pool = pool
	n.Fields = map[string]string{}
	if rack != "" {
		n.Fields["rack"] = rack
	}
	return n
}

// topoOracle tries every way of giving the pool's nodes to the items (or
// to none) and returns the least total rank of a full assignment that
// keeps topo, whether one exists, and the most nodes a partial assignment
// keeping topo places. rank is each node's position in best-fit order among
// the nodes that match some item and have the key, as the store ranks them.
func topoOracle(nodes []*ironpool.Node, items []ironpool.AllocationItem, topo *ironpool.Topology) (best int, ok bool, placed int) {
	key := topo.Key()
	var usable []*ironpool.Node
	for _, n := range nodes {
		if n.Fields[key] == "" {
			continue
		}
		for _, it := range items {
			if it.Constraints.Matches(n) {
				usable = append(usable, n)
				break
			}
		}
	}
	slices.SortFunc(usable, func(a, b *ironpool.Node) int { return a.CPUs - b.CPUs }) // cpus are distinct
	full := 0
	for _, it := range items {
		full += it.Count
	}
	taken := make([]int, len(items))
	per := map[string]int{}
	var rec func(j, used, cost int)
	rec = func(j, used, cost int) {
		if topo.Together != "" && len(per) > 1 {
			return
		}
		placed = max(placed, used)
		if j == len(usable) {
			if used == full && (!ok || cost < best) {
				best, ok = cost, true
			}
			return
		}
		rec(j+1, used, cost)
		n := usable[j]
		v := n.Fields[key]
		if topo.Spread != "" && per[v] == topo.MaxPerValue {
			return
		}
		for i, it := range items {
			if taken[i] == it.Count || !it.Constraints.Matches(n) {
				continue
			}
			taken[i]++
			per[v]++
			rec(j+1, used+1, cost+j)
			if per[v]--; per[v] == 0 {
				delete(per, v)
			}
			taken[i]--
		}
	}
	rec(0, 0, 0)
	return best, ok, placed
}

func testTopology(t *testing.T, open func(t *testing.T) ironpool.Store) {
	// Property: on small random pools, a spread or together request is
	// granted exactly when some assignment keeps the constraint, with the
	// brute-force least total rank; a refusal names the constraint and how
	// many nodes could be placed; the dry run agrees.
	t.Run("AgainstBruteForce", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		// A node in a pool of its own has the key, so that a round whose
		// nodes all lack it is a refusal for capacity, not an unknown key
		// (ErrUnknownKey covers that).
		mustCreate(t, s, topoNode(t, "elsewhere", "keyholder", 2, "r9"))
		var round atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			pool := fmt.Sprintf("topo%d", round.Add(1))
			count := rapid.IntRange(1, 7).Draw(rt, "nodes")
			cpus := rapid.Permutation([]int{2, 4, 6, 8, 10, 12, 14}).Draw(rt, "cpus")
			var nodes []*ironpool.Node
			for i := range count {
				rack := rapid.SampledFrom([]string{"", "r1", "r2", "r3"}).Draw(rt, fmt.Sprintf("rack%d", i))
				nodes = append(nodes, topoNode(t, pool, fmt.Sprintf("%s-n%d", pool, i), cpus[i], rack))
			}
			mustCreate(t, s, nodes...)
			var items []ironpool.AllocationItem
			for i := range rapid.IntRange(1, 3).Draw(rt, "items") {
				items = append(items, item("", rapid.IntRange(1, 3).Draw(rt, fmt.Sprintf("count%d", i)),
					ironpool.Constraints{Pool: pool, CPUs: rapid.SampledFrom([]int{0, 6, 10}).Draw(rt, fmt.Sprintf("cpus%d", i))}))
			}
			topo := &ironpool.Topology{Together: "rack"}
			if rapid.Bool().Draw(rt, "spread") {
				topo = &ironpool.Topology{Spread: "rack", MaxPerValue: rapid.IntRange(1, 2).Draw(rt, "max")}
			}
			want, feasible, placed := topoOracle(nodes, items, topo)

			a := request("lab", slices.Clone(items)...)
			a.Topology = topo
			p, err := s.Plan(ctx, a)
			if err != nil {
				rt.Fatal(err)
			}
			if p.Satisfiable != feasible || (!feasible && !strings.Contains(p.Refusal, topo.String())) {
				rt.Fatalf("%s: plan satisfiable=%v refusal %q, brute force feasible=%v", topo, p.Satisfiable, p.Refusal, feasible)
			}
			err = s.Allocate(ctx, a, false)
			if !feasible {
				e := wantCode(t, err, ironpool.ECAPACITY)
				if e.Field != topo.Field() || !strings.Contains(e.Message, topo.String()) ||
					!strings.Contains(e.Message, fmt.Sprintf("%d", placed)) {
					rt.Fatalf("%s: refusal %s: %q, want it to name the constraint and that %d can be placed", topo, e.Field, e.Message, placed)
				}
				return
			}
			if err != nil {
				rt.Fatalf("%s: Allocate: %v (brute force finds cost %d)", topo, err, want)
			}
			byName := map[string]*ironpool.Node{}
			for _, n := range nodes {
				byName[n.Name] = n
			}
			cost, per := 0, map[string]int{}
			for i, it := range a.Items {
				if len(it.Nodes) != it.Count {
					rt.Fatalf("item %d got %v, want %d nodes", i, it.Nodes, it.Count)
				}
				for _, name := range it.Nodes {
					n := byName[name]
					if !items[i].Constraints.Matches(n) {
						rt.Fatalf("item %d got %s, which does not match it", i, name)
					}
					per[n.Fields["rack"]]++
				}
			}
			for v, k := range per {
				if v == "" || (topo.Spread != "" && k > topo.MaxPerValue) || (topo.Together != "" && len(per) != 1) {
					rt.Fatalf("%s: nodes per rack %v break the constraint", topo, per)
				}
			}
			// Cost as the oracle counts it: positions among the usable nodes.
			var usable []*ironpool.Node
			for _, n := range nodes {
				for _, it := range items {
					if n.Fields["rack"] != "" && it.Constraints.Matches(n) {
						usable = append(usable, n)
						break
					}
				}
			}
			slices.SortFunc(usable, func(a, b *ironpool.Node) int { return a.CPUs - b.CPUs })
			for j, n := range usable {
				if slices.ContainsFunc(a.Items, func(it ironpool.AllocationItem) bool { return slices.Contains(it.Nodes, n.Name) }) {
					cost += j
				}
			}
			if cost != want {
				rt.Fatalf("%s: total rank %d, brute-force minimum %d (items %+v)", topo, cost, want, a.Items)
			}
			got, err := s.FindAllocation(ctx, a.ID)
			if err != nil || got.Topology == nil || *got.Topology != *topo.Normalized() {
				rt.Fatalf("stored topology = %+v, %v; want %+v", got.Topology, err, topo)
			}
		})
	})

	t.Run("ErrUnknownKey", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, topoNode(t, "default", "a", 8, "r1"), topoNode(t, "default", "b", 8, "r2"))
		before := takeSnapshot(t, s)
		for _, topo := range []*ironpool.Topology{{Spread: "rak"}, {Together: "switch"}} {
			for _, queue := range []bool{false, true} {
				a := queued("lab", time.Hour, item("", 1, anyNode()))
				a.Topology = topo
				e := wantCode(t, s.Allocate(ctx, a, queue), ironpool.EINVALID)
				if e.Field != topo.Field() || !strings.Contains(e.Message, topo.Key()) {
					t.Errorf("%s queue=%v: %s: %s, want it to name the field and key", topo, queue, e.Field, e.Message)
				}
			}
			a := request("lab", item("", 1, anyNode()))
			a.Topology = topo
			if _, err := s.Plan(ctx, a); ironpool.ErrorCode(err) != ironpool.EINVALID {
				t.Errorf("%s: Plan err = %v, want EINVALID", topo, err)
			}
		}
		sameSnapshot(t, s, before, "unknown topology key")
	})

	t.Run("ErrNeverSatisfiable", func(t *testing.T) {
		// Two racks can never hold three spread nodes: not queued.
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, topoNode(t, "default", "a", 8, "r1"), topoNode(t, "default", "b", 8, "r1"),
			topoNode(t, "default", "c", 8, "r2"))
		before := takeSnapshot(t, s)
		a := queued("lab", time.Hour, item("", 3, anyNode()))
		a.Topology = &ironpool.Topology{Spread: "rack", MaxPerValue: 1}
		e := wantCode(t, s.Allocate(ctx, a, true), ironpool.ECAPACITY)
		if e.Field != "topology.spread" || !strings.Contains(e.Message, "no state of the pool") ||
			!strings.Contains(e.Message, "no 3 nodes in distinct rack values; at most 2 can be placed") {
			t.Errorf("refusal %s: %s", e.Field, e.Message)
		}
		sameSnapshot(t, s, before, "never satisfiable topology request")
	})

	t.Run("QueueKeepsTopology", func(t *testing.T) {
		// r1 holds a and b, r2 holds c. c is taken, so a spread request
		// for two waits (a and b share a rack) although two nodes are free,
		// and is served with c once c comes back.
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, topoNode(t, "default", "a", 8, "r1"), topoNode(t, "default", "b", 9, "r1"),
			topoNode(t, "default", "c", 10, "r2"))
		held := mustAllocate(t, s, request("other", item("", 1, ironpool.Constraints{CPUs: 10})))
		a := queued("lab", time.Hour, item("", 2, anyNode()))
		a.Topology = &ironpool.Topology{Spread: "rack", MaxPerValue: 1}
		if err := s.Allocate(ctx, a, true); err != nil {
			t.Fatal(err)
		}
		if a.State != ironpool.AllocQueued {
			t.Fatalf("state = %s with nodes %v, want queued (a and b share rack r1)", a.State, a.Items[0].Nodes)
		}
		info, err := s.QueueInfo(ctx, a.ID)
		if err != nil || info == nil || !strings.Contains(info.Reason, "spread rack") {
			t.Errorf("queue info = %+v, %v; want the reason to name the spread", info, err)
		}
		mustRelease(t, s, held.ID, true)
		if _, err := s.DispatchQueue(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindAllocation(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != ironpool.AllocActive || !slices.Equal(names(got.Nodes), []string{"a", "c"}) {
			t.Fatalf("served %s with %v, want active with a and c", got.State, names(got.Nodes))
		}
		if got.Topology == nil || got.Topology.Spread != "rack" {
			t.Errorf("served allocation lost its topology: %+v", got.Topology)
		}
	})

	t.Run("DeadlineNamesTopology", func(t *testing.T) {
		// Two nodes are free, but in one rack: the spread request waits
		// until its deadline, and its last_error says it was the spread.
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, topoNode(t, "default", "a", 8, "r1"), topoNode(t, "default", "b", 9, "r1"),
			topoNode(t, "default", "c", 10, "r2"))
		mustAllocate(t, s, request("other", item("", 1, ironpool.Constraints{CPUs: 10})))
		a := queued("lab", time.Minute, item("", 2, anyNode()))
		a.Topology = &ironpool.Topology{Spread: "rack"}
		if err := s.Allocate(ctx, a, true); err != nil || a.State != ironpool.AllocQueued {
			t.Fatalf("Allocate: %v, state %s; want queued", err, a.State)
		}
		if _, err := s.DispatchQueue(ctx, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindAllocation(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := "wait deadline passed: spread rack: no 2 free nodes in distinct rack values; at most 1 can be placed"
		if got.State != ironpool.AllocFailed || !strings.HasPrefix(got.LastError, want) {
			t.Errorf("state %s, last_error %q; want failed and %q", got.State, got.LastError, want)
		}
	})

	t.Run("TogetherRefusal", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, topoNode(t, "default", "a", 8, "r1"), topoNode(t, "default", "b", 8, "r1"),
			topoNode(t, "default", "c", 8, "r2"), topoNode(t, "default", "d", 8, ""))
		before := takeSnapshot(t, s)
		a := request("lab", item("", 3, anyNode()))
		a.Topology = &ironpool.Topology{Together: "rack"}
		e := wantCode(t, s.Allocate(ctx, a, false), ironpool.ECAPACITY)
		if e.Field != "topology.together" || !strings.Contains(e.Message, "no single rack value holds 3 free nodes") ||
			!strings.Contains(e.Message, "the most one holds is 2 (rack=r1)") {
			t.Errorf("refusal %s: %s", e.Field, e.Message)
		}
		sameSnapshot(t, s, before, "refused together request")
	})
}

// testTopologyConcurrency runs spread, together and plain requests at once
// on one pool: no node is ever given twice, and every granted topology
// request keeps its constraint, whatever the engine's locking does (on
// PostgreSQL a topology read locks every candidate row it reads, skipping
// locked ones first and then waiting for them).
func testTopologyConcurrency(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	var nodes []*ironpool.Node
	rackOf := map[string]string{}
	for i := range 16 {
		n := topoNode(t, "default", fmt.Sprintf("c%02d", i), 8, fmt.Sprintf("r%d", i%6))
		rackOf[n.Name] = n.Fields["rack"]
		nodes = append(nodes, n)
	}
	mustCreate(t, s, nodes...)
	topos := []*ironpool.Topology{{Spread: "rack", MaxPerValue: 1}, {Together: "rack"}, nil, {Spread: "rack", MaxPerValue: 2}}
	var mu sync.Mutex
	held := map[string]string{} // node → allocation
	var granted atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: fmt.Sprintf("w%d", w), Role: ironpool.RoleAdmin})
			for i := range 15 {
				a := request(fmt.Sprintf("o%d", w), item("", 2+(w+i)%2, anyNode()))
				a.Topology = topos[(w+i)%len(topos)]
				err := s.Allocate(ctx, a, false)
				if ironpool.ErrorCode(err) == ironpool.ECAPACITY {
					continue
				} else if err != nil {
					t.Errorf("Allocate: %v", err)
					return
				}
				granted.Add(1)
				per := map[string]int{}
				mu.Lock()
				for _, n := range a.Items[0].Nodes {
					if other, ok := held[n]; ok {
						t.Errorf("node %s given to %s and %s", n, other, a.ID)
					}
					held[n] = a.ID
					per[rackOf[n]]++
				}
				mu.Unlock()
				for _, k := range per {
					if tp := a.Topology; tp != nil && (tp.Spread != "" && k > tp.MaxPerValue || tp.Together != "" && len(per) != 1) {
						t.Errorf("%s: granted with racks %v", tp, per)
					}
				}
				// Forgotten before the release, so a node legitimately given
				// again right after it is never taken for a double grant.
				mu.Lock()
				for _, n := range a.Items[0].Nodes {
					delete(held, n)
				}
				mu.Unlock()
				if _, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
					t.Errorf("release: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if granted.Load() == 0 {
		t.Fatal("no request was granted: the test checked nothing")
	}
}
