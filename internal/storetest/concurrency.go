package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// stressWorkers and stressDuration size the concurrency test: enough
// goroutines to keep every engine's locking busy, long enough for thousands
// of overlapping allocate/release transactions.
const (
	stressWorkers  = 16
	stressDuration = 2 * time.Second
)

// holdings is the test's own record of which node each allocation holds,
// kept beside the store's: a node handed to a second allocation while the
// first still holds it shows up here the moment Allocate returns.
type holdings struct {
	mu   sync.Mutex
	held map[string]string // node name → allocation id
}

func (h *holdings) claim(t *testing.T, a *ironpool.Allocation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range a.Nodes {
		if other, ok := h.held[n.Name]; ok {
			t.Errorf("node %s given to %s while %s still holds it", n.Name, a.ID, other)
		}
		h.held[n.Name] = a.ID
	}
}

// drop forgets a's nodes. It is called before the release, not after: until
// the release commits nobody else can get them, and once it has, another
// worker may claim them at once.
func (h *holdings) drop(a *ironpool.Allocation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range a.Nodes {
		if h.held[n.Name] == a.ID {
			delete(h.held, n.Name)
		}
	}
}

// stressMenu is what the workers ask for: overlapping constraint sets, so
// items of one request compete with each other and with other requests.
var stressMenu = []ironpool.Constraints{
	{},
	{CPUs: 16},
	{CPUs: 32},
	{Traits: []string{"CUSTOM_GPU"}},
	{CPUs: 64},
	{CPUs: 8, MemoryMB: 8 * 4096},
}

func testConcurrency(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	var nodes []*ironpool.Node
	for i := range 8 {
		nodes = append(nodes, newNode(t, fmt.Sprintf("s%02d", i), 8), newNode(t, fmt.Sprintf("m%02d", i), 16))
	}
	for i := range 4 {
		nodes = append(nodes, newNode(t, fmt.Sprintf("g%02d", i), 32, "CUSTOM_GPU"), newNode(t, fmt.Sprintf("b%02d", i), 64))
	}
	mustCreate(t, s, nodes...)
	total := len(nodes)

	h := &holdings{held: map[string]string{}}
	var allocated, released, refused atomic.Int64
	deadline := time.Now().Add(stressDuration)
	if testing.Short() {
		deadline = time.Now().Add(stressDuration / 4)
	}
	var wg sync.WaitGroup
	for w := range stressWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: fmt.Sprintf("worker-%d", w), Role: ironpool.RoleAdmin})
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			owner := fmt.Sprintf("owner-%d", w%5)
			var mine []*ironpool.Allocation
			var cleaning []int64
			for time.Now().Before(deadline) && !t.Failed() {
				if len(cleaning) > 0 && rng.IntN(2) == 0 {
					for _, id := range cleaning {
						if err := s.FinishCleaning(ctx, id, ""); err != nil {
							t.Errorf("FinishCleaning(%d): %v", id, err)
						}
					}
					cleaning = cleaning[:0]
				}
				switch op := rng.IntN(10); {
				case op < 6 && len(mine) < 2:
					a := stressRequest(rng, owner)
					err := s.Allocate(ctx, a, false)
					if ironpool.ErrorCode(err) == ironpool.ECAPACITY {
						refused.Add(1)
						continue
					} else if err != nil {
						t.Errorf("Allocate: %v", err)
						return
					}
					checkHolds(t, a)
					h.claim(t, a)
					allocated.Add(1)
					mine = append(mine, a)
				case op < 9 && len(mine) > 0:
					i := rng.IntN(len(mine))
					a := mine[i]
					mine = append(mine[:i], mine[i+1:]...)
					inline := rng.IntN(3) != 0
					h.drop(a)
					out, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, inline)
					if err != nil || len(out) != 1 || out[0].State != ironpool.AllocReleased {
						t.Errorf("release %s = %+v, %v", a.ID, out, err)
						return
					}
					released.Add(1)
					if !inline {
						for _, n := range a.Nodes {
							cleaning = append(cleaning, n.ID)
						}
					}
				default:
					if _, err := s.Plan(ctx, stressRequest(rng, owner)); err != nil {
						t.Errorf("Plan: %v", err)
					}
					if _, err := s.FindNodes(ctx, ironpool.NodeFilter{State: ironpool.NodeAllocated}); err != nil {
						t.Errorf("FindNodes: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d allocations, %d releases, %d refused for capacity", allocated.Load(), released.Load(), refused.Load())
	if allocated.Load() == 0 || released.Load() == 0 {
		t.Errorf("the workers made %d allocations and %d releases; the test did not exercise the store", allocated.Load(), released.Load())
	}

	ctx := context.Background()
	// Every change was recorded by the transaction that made it.
	if got := int64(countEvents(t, s, "allocation.created")); got != allocated.Load() {
		t.Errorf("allocation.created events = %d, want %d", got, allocated.Load())
	}
	if got := int64(countEvents(t, s, "allocation.released")); got != released.Load() {
		t.Errorf("allocation.released events = %d, want %d", got, released.Load())
	}

	// Every active allocation holds exactly what it asked for, and no node
	// is held twice.
	active, err := s.FindAllocations(ctx, ironpool.AllocationFilter{State: ironpool.AllocActive})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(active)) != allocated.Load()-released.Load() {
		t.Errorf("%d active allocations, want %d allocated − %d released", len(active), allocated.Load(), released.Load())
	}
	holder := map[string]string{}
	wantHeld := 0
	for _, a := range active {
		full, err := s.FindAllocation(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkHolds(t, full)
		for _, n := range full.Nodes {
			if other, ok := holder[n.Name]; ok {
				t.Errorf("node %s held by %s and %s", n.Name, other, a.ID)
			}
			holder[n.Name] = a.ID
			wantHeld++
		}
	}
	h.mu.Lock()
	for name, id := range h.held {
		if holder[name] != id {
			t.Errorf("node %s: the store says %q holds it, the workers gave it to %s", name, holder[name], id)
		}
	}
	if len(h.held) != len(holder) {
		t.Errorf("the workers hold %d nodes, the store %d", len(h.held), len(holder))
	}
	h.mu.Unlock()

	// free + held + cleaning = total, and the node rows agree with the
	// allocations.
	count := map[ironpool.NodeState]int{}
	for _, n := range findNodes(t, s, ironpool.NodeFilter{}) {
		count[n.State]++
		switch n.State {
		case ironpool.NodeAllocated:
			if holder[n.Name] != n.AllocationID {
				t.Errorf("node %s is allocated to %q, which does not list it", n.Name, n.AllocationID)
			}
		default:
			if n.AllocationID != "" || n.Owner != "" {
				t.Errorf("node %s is %s but names allocation %q owner %q", n.Name, n.State, n.AllocationID, n.Owner)
			}
		}
	}
	if got := count[ironpool.NodeAvailable] + count[ironpool.NodeAllocated] + count[ironpool.NodeCleaning]; got != total {
		t.Errorf("available %d + allocated %d + cleaning %d = %d, want %d nodes (%v)", count[ironpool.NodeAvailable],
			count[ironpool.NodeAllocated], count[ironpool.NodeCleaning], got, total, count)
	}
	if count[ironpool.NodeAllocated] != wantHeld {
		t.Errorf("%d nodes allocated, active allocations hold %d", count[ironpool.NodeAllocated], wantHeld)
	}

	// The allocation_nodes record agrees: no node in two active allocations.
	if r, ok := s.(RawDB); ok {
		var dup int
		err := r.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT an.node_id FROM allocation_nodes an
			JOIN allocations a ON a.id = an.allocation_id WHERE a.state = 'active'
			GROUP BY an.node_id HAVING COUNT(*) > 1) d`).Scan(&dup)
		if err != nil {
			t.Fatal(err)
		}
		if dup != 0 {
			t.Errorf("%d nodes appear in two active allocations in allocation_nodes", dup)
		}
	}
}

// stressRequest asks for one to three items of one or two nodes each.
func stressRequest(rng *rand.Rand, owner string) *ironpool.Allocation {
	var items []ironpool.AllocationItem
	for range 1 + rng.IntN(3) {
		c := stressMenu[rng.IntN(len(stressMenu))]
		items = append(items, item("", 1+rng.IntN(2), c))
	}
	return request(owner, items...)
}

// checkHolds checks that an active allocation holds exactly the nodes its
// items name, each one satisfying its item's constraints and marked as
// held by it.
func checkHolds(t *testing.T, a *ironpool.Allocation) {
	t.Helper()
	if a.State != ironpool.AllocActive {
		t.Errorf("allocation %s is %s, want active", a.ID, a.State)
	}
	byName := map[string]*ironpool.Node{}
	for _, n := range a.Nodes {
		byName[n.Name] = n
		if n.AllocationID != a.ID || n.State != ironpool.NodeAllocated || n.Owner != a.Owner {
			t.Errorf("allocation %s: node %s is %s for %q/%q", a.ID, n.Name, n.State, n.AllocationID, n.Owner)
		}
	}
	want := 0
	for i, it := range a.Items {
		want += it.Count
		if len(it.Nodes) != it.Count {
			t.Errorf("allocation %s item %d: %d nodes, asked %d", a.ID, i, len(it.Nodes), it.Count)
		}
		for _, name := range it.Nodes {
			n, ok := byName[name]
			if !ok {
				t.Errorf("allocation %s item %d names %s, which it does not hold", a.ID, i, name)
				continue
			}
			if !it.Constraints.Matches(n) {
				t.Errorf("allocation %s item %d (%s) got %s, which does not match", a.ID, i, it.Constraints, name)
			}
		}
	}
	if len(a.Nodes) != want || len(byName) != want {
		t.Errorf("allocation %s holds %d nodes (%d distinct), asked %d", a.ID, len(a.Nodes), len(byName), want)
	}
}
