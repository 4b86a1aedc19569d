package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// FreeIndexed is implemented by stores that keep the free nodes in memory
// (internal/freeindex). The suite checks the index against the database
// after random histories, and injects faults into the allocation
// transaction after its nodes were claimed.
type FreeIndexed interface {
	// CheckFreeIndex reads back what the index waits for, then compares
	// the free set, the reservation starts and, for each probe, the
	// best-fit candidates with the database's.
	CheckFreeIndex(ctx context.Context, probes []ironpool.Constraints) error
	// FreeIndexOn reports whether the store keeps the index.
	FreeIndexOn() bool
	// SetFaultAfterClaim installs fn to run at the end of every
	// allocation's claim, inside its transaction; an error fails the
	// allocation (and rolls back its claim).
	SetFaultAfterClaim(fn func(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation) error)
	// GroupCommits reports whether concurrent writes share transactions.
	GroupCommits() bool
}

// Owners that the fault hook of FreeIndexHistory fails: after the claim
// with an error (the write's own rollback: a savepoint in a group), or by
// ending the shared transaction first (as an engine error would), which
// makes every write of the group run again alone.
const (
	faultOwner    = "fault-error"
	rollbackOwner = "fault-rollback"
)

// freeProbes are the constraint sets compared between index and database.
var freeProbes = []ironpool.Constraints{
	{}, {CPUs: 8}, {CPUs: 32}, {Pool: "a"}, {Pool: "b", CPUs: 16}, {Traits: []string{"CUSTOM_GPU"}},
	{Pool: "a", Traits: []string{"CUSTOM_GPU"}}, {MemoryMB: 64 * 1024}, {CPUArch: "aarch64"},
}

// testFreeIndex runs random histories on one store: concurrent writes (so
// that group commit gathers them), faults that roll back a claimed write
// or the whole group, and after each round the index must equal the
// database.
func testFreeIndex(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	if f, ok := s.(FreeIndexed); !ok || !f.FreeIndexOn() {
		t.Skip("skipped: the store keeps no free-node index (off by default on PostgreSQL; TestFreeIndexReplicas turns it on)")
	}
	FreeIndexHistory(t, []ironpool.Store{s}, 1, 12)
}

// FreeIndexHistory drives a random history (seeded) over stores — one
// store, or replicas of one database — in rounds of concurrent writes, and
// after each round requires every store's index to equal the database.
// Replicas hear of each other's writes asynchronously (notifications), so
// their check is retried for a few seconds before it fails.
func FreeIndexHistory(t *testing.T, stores []ironpool.Store, seed uint64, rounds int) {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := &freeHistory{stores: stores, prefix: fmt.Sprintf("fi%d-", seed)}
	for _, s := range stores {
		s.(FreeIndexed).SetFaultAfterClaim(h.fault)
	}
	var mu sync.Mutex
	h.create(t, ctx, rng, 60)
	var faults, rollbacks, allocated int
	for round := range rounds {
		var wg sync.WaitGroup
		seeds := make([]uint64, 8)
		for i := range seeds {
			seeds[i] = rng.Uint64()
		}
		for w := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seeds[w], uint64(round)))
				for range 6 {
					st := stores[r.IntN(len(stores))]
					kind, err := h.step(ctx, r, st)
					if err != nil {
						t.Errorf("round %d %s: %v", round, kind, err)
						return
					}
					mu.Lock()
					switch kind {
					case "fault":
						faults++
					case "rollback":
						rollbacks++
					case "allocate":
						allocated++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, s := range stores {
			deadline := time.Now().Add(5 * time.Second)
			for {
				err := s.(FreeIndexed).CheckFreeIndex(ctx, freeProbes)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d, store %d: %v", round, i, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	if allocated == 0 || faults == 0 {
		t.Fatalf("the history made %d allocations and %d faulted claims; it tests nothing", allocated, faults)
	}
	t.Logf("%d rounds: %d allocations, %d faulted claims, %d broken groups", rounds, allocated, faults, rollbacks)
}

type freeHistory struct {
	stores []ironpool.Store
	prefix string // of node names, so histories can follow each other
	mu     sync.Mutex
	seq    int
	live   []string // allocation ids
	names  []string // node names
	resv   []string // reservation ids
}

// fault is the claim hook: it fails the allocations of the fault owners.
func (h *freeHistory) fault(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation) error {
	switch a.Owner {
	case faultOwner:
		return errors.New("injected fault after the claim")
	case rollbackOwner:
		if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
			return err
		}
		return errors.New("injected rollback of the shared transaction")
	}
	return nil
}

// create adds n nodes of random shapes over pools a and b.
func (h *freeHistory) create(t *testing.T, ctx context.Context, rng *rand.Rand, n int) {
	t.Helper()
	var nodes []*ironpool.Node
	h.mu.Lock()
	for range n {
		h.seq++
		name := fmt.Sprintf("%s%d", h.prefix, h.seq)
		cpus := []int{4, 8, 16, 32, 64}[rng.IntN(5)]
		var traits []string
		if rng.IntN(4) == 0 {
			traits = []string{"CUSTOM_GPU"}
		}
		nd := newNode(t, name, cpus, traits...)
		nd.Pool = []string{"a", "b"}[rng.IntN(2)]
		if rng.IntN(5) == 0 {
			nd.CPUArch = "aarch64"
		}
		nodes = append(nodes, nd)
		h.names = append(h.names, name)
	}
	h.mu.Unlock()
	mustCreate(t, h.stores[0], nodes...)
}

// step runs one random operation; expected refusals are not errors.
func (h *freeHistory) step(ctx context.Context, r *rand.Rand, s ironpool.Store) (string, error) {
	expected := func(err error) error {
		var e *ironpool.Error
		if err == nil || errors.As(err, &e) {
			return nil
		}
		return err
	}
	switch op := r.IntN(20); {
	case op < 8:
		owner := "lab"
		kind := "allocate"
		switch r.IntN(6) {
		case 0:
			owner, kind = faultOwner, "fault"
		case 1:
			if s.(FreeIndexed).GroupCommits() {
				owner, kind = rollbackOwner, "rollback"
			}
		}
		var items []ironpool.AllocationItem
		for range 1 + r.IntN(2) {
			items = append(items, item("", 1+r.IntN(3), freeProbes[r.IntN(len(freeProbes))]))
		}
		a := request(owner, items...)
		err := s.Allocate(ctx, a, false)
		if kind != "allocate" {
			if err == nil {
				return kind, fmt.Errorf("a faulted claim (%s) succeeded", owner)
			}
			return kind, nil
		}
		if err == nil {
			h.mu.Lock()
			h.live = append(h.live, a.ID)
			h.mu.Unlock()
		}
		return kind, expected(err)
	case op < 13:
		h.mu.Lock()
		if len(h.live) == 0 {
			h.mu.Unlock()
			return "release", nil
		}
		i := r.IntN(len(h.live))
		id := h.live[i]
		h.live = append(h.live[:i], h.live[i+1:]...)
		h.mu.Unlock()
		_, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: id}, ironpool.AllocReleased, r.IntN(3) > 0)
		return "release", expected(err)
	case op < 15:
		name := h.pick(r)
		_, err := s.UpdateNode(ctx, name, func(n *ironpool.Node) error {
			switch n.State {
			case ironpool.NodeAvailable:
				n.State, n.MaintenanceReason = ironpool.NodeMaintenance, "history"
			case ironpool.NodeMaintenance, ironpool.NodeCleaning:
				n.State, n.MaintenanceReason = ironpool.NodeAvailable, ""
			}
			return nil
		})
		return "maintenance", expected(err)
	case op < 16:
		h.mu.Lock()
		h.seq++
		name := fmt.Sprintf("%s%d", h.prefix, h.seq)
		h.names = append(h.names, name)
		h.mu.Unlock()
		n := newNode(testingTB{}, name, 8*(1+r.IntN(4)))
		n.Pool = "a"
		return "create", expected(s.CreateNodes(ctx, []*ironpool.Node{n}))
	case op < 17:
		return "delete", expected(s.DeleteNode(ctx, h.pick(r)))
	case op < 19:
		start := time.Now().Add(time.Duration(30+r.IntN(120)) * time.Minute)
		res := booking("lab", start, start.Add(time.Hour), item("", 1+r.IntN(2), freeProbes[r.IntN(len(freeProbes))]))
		err := s.Reserve(ctx, res)
		if err == nil {
			h.mu.Lock()
			h.resv = append(h.resv, res.ID)
			h.mu.Unlock()
		}
		return "reserve", expected(err)
	default:
		h.mu.Lock()
		if len(h.resv) == 0 {
			h.mu.Unlock()
			return "cancel", nil
		}
		id := h.resv[r.IntN(len(h.resv))]
		h.mu.Unlock()
		_, err := s.CancelReservation(ctx, id)
		return "cancel", expected(err)
	}
}

func (h *freeHistory) pick(r *rand.Rand) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names[r.IntN(len(h.names))]
}

// testingTB lets newNode build a node off the test goroutine; its fixtures
// are valid, so Fatalf is never reached.
type testingTB struct{ testing.TB }

func (testingTB) Helper()                   {}
func (testingTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
