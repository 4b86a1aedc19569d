// Package storetest is the contract suite every ironpool.Store must pass.
//
// The SQLite and PostgreSQL stores share one SQL implementation, but they
// run it on engines that lock, order and report errors differently; running
// one body of tests against each is what keeps "all or nothing", "never the
// same node twice" and "an event for every change" true on both. The shape
// follows litestream's RunWithReplicaClient: the caller passes a function
// that opens a fresh, empty, migrated store, and Run drives it through every
// behaviour the ironpool.Store doc comments promise.
//
// Some checks need more than the interface offers — a controllable clock,
// a known sealing key, the raw bytes in the table. Stores provide those
// through the optional interfaces Clock, SealerSetter and RawDB; a subtest
// that needs one the store lacks is skipped with a message saying so.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// Clock is implemented by stores whose notion of "now" tests may set, so
// leases, expiries and lease-election can be tested without sleeping.
type Clock interface {
	SetNow(now func() time.Time)
}

// SealerSetter is implemented by stores whose sealer tests may replace, so
// the suite knows the key secrets are sealed with and can rotate it.
type SealerSetter interface {
	SetSealer(ironpool.Sealer)
}

// RawDB is implemented by SQL stores; the suite reads tables directly
// through it to check what reaches the disk (sealed passwords) and what the
// API does not show (allocation_nodes).
type RawDB interface {
	DB() *sql.DB
}

// Run runs the contract suite. open must return a fresh, empty, migrated
// store for each call and register its cleanup with t.
func Run(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("Nodes", func(t *testing.T) { testNodes(t, open) })
	t.Run("Flavors", func(t *testing.T) { testFlavors(t, open) })
	t.Run("Allocate", func(t *testing.T) { testAllocate(t, open) })
	t.Run("Queue", func(t *testing.T) { testQueue(t, open) })
	t.Run("StaleDispatch", func(t *testing.T) { testStaleDispatch(t, open) })
	t.Run("PausedDispatch", func(t *testing.T) { testPausedDispatch(t, open) })
	t.Run("DeadlineWakes", func(t *testing.T) { testDeadlineWakes(t, open) })
	t.Run("DeadlineBehindHead", func(t *testing.T) { testDeadlineBehindHead(t, open) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open) })
	t.Run("ExtendRacesExpiry", func(t *testing.T) { testExtendRacesExpiry(t, open) })
	t.Run("ExpireMany", func(t *testing.T) { testExpireMany(t, open) })
	t.Run("Traits", func(t *testing.T) { testTraits(t, open) })
	t.Run("IgnoredBackendNodes", func(t *testing.T) { testIgnoredBackendNodes(t, open) })
	t.Run("DeploySpec", func(t *testing.T) { testDeploySpec(t, open) })
	t.Run("ResealRacesPasswordChanges", func(t *testing.T) { testResealRacesPasswordChanges(t, open) })
	t.Run("Release", func(t *testing.T) { testRelease(t, open) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, open) })
	t.Run("TryLease", func(t *testing.T) { testTryLease(t, open) })
	t.Run("Secrets", func(t *testing.T) { testSecrets(t, open) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open) })
	t.Run("Status", func(t *testing.T) { testStatus(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("FreeIndex", func(t *testing.T) { testFreeIndex(t, open) })
	t.Run("AllocateNodes", func(t *testing.T) { testAllocateNodes(t, open) })
	t.Run("Waiters", func(t *testing.T) { testWaiters(t, open) })
	t.Run("QueuePromises", func(t *testing.T) { testQueuePromises(t, open) })
	t.Run("DeleteNodes", func(t *testing.T) { testDeleteNodes(t, open) })
	t.Run("Console", func(t *testing.T) { testConsole(t, open) })
	t.Run("Quotas", func(t *testing.T) { testQuotas(t, open) })
	t.Run("Priorities", func(t *testing.T) { testPriorities(t, open) })
	t.Run("QuotaStress", func(t *testing.T) { testQuotaStress(t, open) })
	t.Run("Topology", func(t *testing.T) { testTopology(t, open) })
	t.Run("TopologyConcurrency", func(t *testing.T) { testTopologyConcurrency(t, open) })
	t.Run("Reservations", func(t *testing.T) { testReservations(t, open) })
}

// testActor is the actor the suite's changes are made as, so events can be
// checked for who made them.
var testActor = &ironpool.Actor{TokenID: "tok-suite", Role: ironpool.RoleAdmin}

// ctxFor returns a context carrying the suite's actor that ends with t.
func ctxFor(t *testing.T) context.Context {
	return ironpool.NewContextWithActor(t.Context(), testActor)
}

// macSeq hands out MAC addresses unique across the whole suite run, so
// fixtures never clash by accident and a clash in a test is always meant.
var macSeq atomic.Uint32

func nextMAC() string {
	n := macSeq.Add(1)
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(n>>16), byte(n>>8), byte(n))
}

// newNode returns a valid node with cpus CPUs, memory and disk growing with
// them (so best fit by cpus is also best fit by size), one fresh MAC and a
// password derived from its name.
func newNode(t testing.TB, name string, cpus int, traits ...string) *ironpool.Node {
	t.Helper()
	n := &ironpool.Node{
		Name: name, CPUs: cpus, MemoryMB: int64(cpus) * 4096, LocalGB: int64(cpus) * 10,
		CPUArch: "x86_64", ResourceClass: "baremetal", Traits: traits,
		MACs:   []string{nextMAC()},
		BMC:    ironpool.BMC{Address: "ipmi://10.0.0.1:623", Username: "root", Password: "pw-" + name},
		Fields: map[string]string{"rack": "r1"},
	}
	if err := n.Validate(""); err != nil {
		t.Fatalf("fixture node %s: %v", name, err)
	}
	return n
}

// mustCreate adds nodes to s or fails the test.
func mustCreate(t testing.TB, s ironpool.Store, nodes ...*ironpool.Node) {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	if err := s.CreateNodes(ctx, nodes); err != nil {
		t.Fatalf("CreateNodes: %v", err)
	}
}

// mustFind returns the node named name or fails the test.
func mustFind(t testing.TB, s ironpool.Store, name string) *ironpool.Node {
	t.Helper()
	n, err := s.FindNode(context.Background(), name)
	if err != nil {
		t.Fatalf("FindNode(%s): %v", name, err)
	}
	return n
}

// wantCode fails the test unless err is an *ironpool.Error with code.
func wantCode(t testing.TB, err error, code string) *ironpool.Error {
	t.Helper()
	var e *ironpool.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want an *ironpool.Error with code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, err, code)
	}
	return e
}

// anyNode is the constraint set that matches every node.
func anyNode() ironpool.Constraints { return ironpool.Constraints{} }

// numberedNodes returns n nodes of newNode with cpus CPUs, named by
// format (one %d verb) from 0.
func numberedNodes(t testing.TB, format string, n, cpus int) []*ironpool.Node {
	t.Helper()
	nodes := make([]*ironpool.Node, n)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf(format, i), cpus)
	}
	return nodes
}

// item is one allocation item for count nodes matching c.
func item(flavor string, count int, c ironpool.Constraints) ironpool.AllocationItem {
	return ironpool.AllocationItem{Flavor: flavor, Count: count, Constraints: c}
}

// request returns an allocation request for owner with the given items and
// a one-hour lease, as the service would hand it to the store.
func request(owner string, items ...ironpool.AllocationItem) *ironpool.Allocation {
	now := time.Now().UTC()
	return &ironpool.Allocation{Owner: owner, Mode: ironpool.ModeNone, Items: items,
		Metadata: map[string]string{"job": "https://ci.example/1"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), TTL: time.Hour}
}

// queued returns a request that may wait in the queue for wait.
func queued(owner string, wait time.Duration, items ...ironpool.AllocationItem) *ironpool.Allocation {
	a := request(owner, items...)
	a.WaitUntil = a.CreatedAt.Add(wait)
	return a
}

// mustAllocate allocates a (without queueing) or fails the test.
func mustAllocate(t testing.TB, s ironpool.Store, a *ironpool.Allocation) *ironpool.Allocation {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	if err := s.Allocate(ctx, a, false); err != nil {
		t.Fatalf("Allocate(%s): %v", a.Owner, err)
	}
	return a
}

// mustRelease releases allocation id or fails the test.
func mustRelease(t testing.TB, s ironpool.Store, id string, cleanInline bool) *ironpool.Allocation {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), testActor)
	out, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: id}, ironpool.AllocReleased, cleanInline)
	if err != nil {
		t.Fatalf("ReleaseAllocations(%s): %v", id, err)
	}
	if len(out) != 1 {
		t.Fatalf("ReleaseAllocations(%s) returned %d allocations, want 1", id, len(out))
	}
	return out[0]
}

// events returns every event, optionally only those with action.
func events(t testing.TB, s ironpool.Store, action string) []*ironpool.Event {
	t.Helper()
	ev, err := s.FindEvents(context.Background(), ironpool.EventFilter{Action: action})
	if err != nil {
		t.Fatalf("FindEvents: %v", err)
	}
	return ev
}

// countEvents counts the events with action ("" for all).
func countEvents(t testing.TB, s ironpool.Store, action string) int {
	t.Helper()
	return len(events(t, s, action))
}

// nodeState is what an allocation changes on a node.
type nodeState struct {
	State        ironpool.NodeState
	AllocationID string
	Owner        string
	Pending      ironpool.Pending
	LastAlloc    time.Time
}

// snapshot is every node's allocation state plus the event and allocation
// counts: two equal snapshots mean a refused call changed nothing.
type snapshot struct {
	Nodes       map[string]nodeState
	Events      int
	Allocations int
}

func takeSnapshot(t testing.TB, s ironpool.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	nodes, err := s.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		t.Fatalf("FindNodes: %v", err)
	}
	snap := snapshot{Nodes: map[string]nodeState{}, Events: countEvents(t, s, "")}
	for _, n := range nodes {
		snap.Nodes[n.Name] = nodeState{n.State, n.AllocationID, n.Owner, n.Pending, n.LastAllocatedAt}
	}
	allocs, err := s.FindAllocations(ctx, ironpool.AllocationFilter{})
	if err != nil {
		t.Fatalf("FindAllocations: %v", err)
	}
	snap.Allocations = len(allocs)
	return snap
}

// sameSnapshot fails the test if anything changed between before and now.
func sameSnapshot(t testing.TB, s ironpool.Store, before snapshot, what string) {
	t.Helper()
	after := takeSnapshot(t, s)
	if after.Events != before.Events {
		t.Errorf("%s: events %d → %d, want unchanged", what, before.Events, after.Events)
	}
	if after.Allocations != before.Allocations {
		t.Errorf("%s: allocations %d → %d, want unchanged", what, before.Allocations, after.Allocations)
	}
	if len(after.Nodes) != len(before.Nodes) {
		t.Errorf("%s: %d nodes → %d, want unchanged", what, len(before.Nodes), len(after.Nodes))
	}
	for name, b := range before.Nodes {
		if a := after.Nodes[name]; a != b {
			t.Errorf("%s: node %s changed from %+v to %+v", what, name, b, a)
		}
	}
}

// names returns the names of nodes, sorted.
func names(nodes []*ironpool.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// findNodes runs FindNodes or fails the test.
func findNodes(t testing.TB, s ironpool.Store, f ironpool.NodeFilter) []*ironpool.Node {
	t.Helper()
	nodes, err := s.FindNodes(context.Background(), f)
	if err != nil {
		t.Fatalf("FindNodes(%+v): %v", f, err)
	}
	return nodes
}

// clock is a settable time source for stores implementing Clock.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time      { return time.UnixMilli(c.now.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.now.Store(t.UnixMilli()) }
func (c *clock) Add(d time.Duration) { c.now.Add(d.Milliseconds()) }

// withClock installs a controllable clock on s, starting at a fixed time,
// or skips the test when the store has no settable clock.
func withClock(t *testing.T, s ironpool.Store) *clock {
	t.Helper()
	cs, ok := s.(Clock)
	if !ok {
		t.Skipf("skipped: %T does not implement storetest.Clock, so time cannot be controlled", s)
	}
	c := &clock{}
	c.Set(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	cs.SetNow(c.Now)
	return c
}

// rawDB returns the store's database, or skips the test.
func rawDB(t *testing.T, s ironpool.Store) *sql.DB {
	t.Helper()
	r, ok := s.(RawDB)
	if !ok {
		t.Skipf("skipped: %T does not implement storetest.RawDB, so stored bytes cannot be read", s)
	}
	return r.DB()
}
