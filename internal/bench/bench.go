// Package bench measures allocation throughput and latency end to end: real
// HTTP requests from concurrent clients against a running server, each
// client allocating a multi-flavor request and releasing it again. Beside
// it run the peers that give its figures a meaning on a loaded machine:
// the floor (a trivial JSON handler, floor.go), Ironic's allocation API
// (peer.go), and lease churn (churn.go). Figures from it go into
// docs/PERFORMANCE.md.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// Options describe one run.
type Options struct {
	Nodes    int           // pool size to seed over HTTP (0: use what is there)
	Clients  int           // concurrent clients
	Duration time.Duration // how long to run
	Pool     string        // pool to seed into and allocate from
	// OnStart, if set, runs after seeding, just before the clients start
	// (e.g. to begin a CPU profile of the measured part only).
	OnStart func()
}

// Result is what a run measured. Latencies are of the allocate call alone;
// each allocation is followed by its release, so allocations/s is also
// allocate+release pairs/s.
type Result struct {
	Nodes       int     `json:"nodes"`
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	Allocations int64   `json:"allocations"`
	Refused     int64   `json:"refused"`
	Errors      int64   `json:"errors"`
	PerSecond   float64 `json:"allocations_per_second"`
	P50         Millis  `json:"p50_ms"`
	P99         Millis  `json:"p99_ms"`
	Max         Millis  `json:"max_ms"`

	load Load // for MergeResults
}

// resultOf is a Load of allocate+release pairs as a Result.
func resultOf(nodes int, l Load) Result {
	return Result{Nodes: nodes, Clients: l.Clients, Seconds: l.Seconds, Allocations: l.Served, Refused: l.Refused,
		Errors: l.Errors, PerSecond: l.PerSecond, P50: l.P50, P99: l.P99, Max: l.Max, load: l}
}

// MergeResults adds runs measured in turns, as Merge does loads.
func MergeResults(rs ...Result) Result {
	ls := make([]Load, len(rs))
	for i, r := range rs {
		ls[i] = r.load
	}
	return resultOf(rs[0].Nodes, Merge(ls...))
}

func (r Result) String() string {
	return fmt.Sprintf("nodes=%d clients=%d allocations=%d refused=%d errors=%d rate=%.0f/s p50=%s p99=%s max=%s",
		r.Nodes, r.Clients, r.Allocations, r.Refused, r.Errors, r.PerSecond, r.P50, r.P99, r.Max)
}

// Shapes are the three node shapes the benchmark seeds, and the flavors
// that select them.
var Shapes = []struct {
	Flavor string
	CPUs   int
	Mem    int64
	Disk   int64
}{{"bench-small", 8, 32768, 200}, {"bench-medium", 32, 131072, 500}, {"bench-large", 64, 524288, 2000}}

// NewNodes returns the benchmark's nodes number from to to-1 of pool,
// cycling the shapes. Names, MACs and UUID-free fields are derived from the
// number, so seeding in chunks yields the same pool as seeding at once.
// Every BMC address is loopback: the server's health checks never reach
// out of the machine, even when a run outlives their interval.
func NewNodes(pool string, from, to int) []*ironpool.Node {
	return newNodes(pool, from, to, len(Shapes))
}

// NewChurnNodes are NewNodes of the bench-small shape only, for ChurnPool:
// every churn lease takes one, and on a pool of one shape the store's
// best-fit scan costs the same for the first lease and the last, so the
// rate at which the leases are made (which plans the churn run, see
// Churn.Create) stays what its start measured. (On mixed shapes, each
// lease after the small nodes are gone scans past every free small node
// of the other pools: the candidate index does not lead with the pool.)
func NewChurnNodes(from, to int) []*ironpool.Node { return newNodes(ChurnPool, from, to, 1) }

func newNodes(pool string, from, to, shapes int) []*ironpool.Node {
	nodes := make([]*ironpool.Node, 0, max(0, to-from))
	for i := from; i < to; i++ {
		s := Shapes[i%shapes]
		nodes = append(nodes, &ironpool.Node{Name: fmt.Sprintf("%s-n%07d", pool, i), Pool: pool, CPUs: s.CPUs,
			MemoryMB: s.Mem, LocalGB: s.Disk, CPUArch: "x86_64",
			MACs: []string{fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", len(pool)%256, (i>>24)&255, (i>>16)&255, (i>>8)&255, i&255)},
			BMC:  ironpool.BMC{Address: "ipmi://127.0.0.1:623", Username: "admin", Password: "bench-secret"}})
	}
	return nodes
}

// SeedFlavors creates the flavors of Shapes (existing ones are kept).
func SeedFlavors(ctx context.Context, c *client.Client) error {
	for _, s := range Shapes {
		f := ironpool.Flavor{Name: s.Flavor, Constraints: ironpool.Constraints{CPUs: s.CPUs, MemoryMB: s.Mem, LocalGB: s.Disk}}
		if _, err := c.Do(ctx, "POST", "/v1/flavors", f, nil); err != nil && ironpool.ErrorCode(err) != ironpool.ECONFLICT {
			return err
		}
	}
	return nil
}

// Seed adds n nodes in the pool (cycling the shapes) and the flavors,
// through the API: what a client of any server can do, but at a few
// thousand nodes a second. SeedStore is the fast way for a server bench
// starts itself.
func Seed(ctx context.Context, c *client.Client, n int, pool string) error {
	if err := SeedFlavors(ctx, c); err != nil {
		return err
	}
	return seedAPI(ctx, c, n, func(from, to int) []*ironpool.Node { return NewNodes(pool, from, to) })
}

// SeedChurn adds n NewChurnNodes through the API.
func SeedChurn(ctx context.Context, c *client.Client, n int) error {
	return seedAPI(ctx, c, n, NewChurnNodes)
}

func seedAPI(ctx context.Context, c *client.Client, n int, nodes func(from, to int) []*ironpool.Node) error {
	const batch = 5000
	for start := 0; start < n; start += batch {
		if _, err := c.ImportNodes(ctx, nodes(start, min(n, start+batch))); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// SeedChunk is how many nodes SeedStore writes per transaction: large
// enough that commits cost nothing against rows, small enough that the
// seeding process holds a few MB of nodes at a time.
const SeedChunk = 20000

// SeedStore adds n nodes of NewNodes to the pool directly in the store with
// its bulk insert, SeedChunk per transaction. It must run before the
// server that will measure them starts (or that server must be
// restarted), since a server may keep in memory what it read at start.
func SeedStore(ctx context.Context, st *sqlstore.Store, n int, pool string) error {
	return seedStore(ctx, st, n, func(from, to int) []*ironpool.Node { return NewNodes(pool, from, to) })
}

// SeedChurnStore adds n NewChurnNodes with the bulk insert.
func SeedChurnStore(ctx context.Context, st *sqlstore.Store, n int) error {
	return seedStore(ctx, st, n, NewChurnNodes)
}

func seedStore(ctx context.Context, st *sqlstore.Store, n int, nodes func(from, to int) []*ironpool.Node) error {
	for start := 0; start < n; start += SeedChunk {
		if err := st.BulkCreateNodes(ctx, nodes(start, min(n, start+SeedChunk))); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

// Run drives the clients for the duration and returns the figures.
func Run(ctx context.Context, c *client.Client, o Options) (Result, error) {
	return RunMany(ctx, []*client.Client{c}, o)
}

// RunMany is Run with the clients spread round-robin over several servers
// (replicas sharing one database).
func RunMany(ctx context.Context, cs []*client.Client, o Options) (Result, error) {
	c := cs[0]
	if o.Clients <= 0 {
		o.Clients = 16
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Nodes > 0 {
		if err := Seed(ctx, c, o.Nodes, o.Pool); err != nil {
			return Result{}, err
		}
	}
	if o.OnStart != nil {
		o.OnStart()
	}
	rngs := make([]*rand.Rand, o.Clients)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 7))
	}
	l := Drive(ctx, o.Clients, o.Duration, allocateRelease(cs, o.Pool, rngs))
	r := resultOf(o.Nodes, l)
	if l.Served == 0 && l.FirstErr != nil {
		return r, l.FirstErr
	}
	return r, nil
}

// allocateRelease is the benchmark's request mix: 1–2 bench-small plus one
// bench-medium or bench-large, released at once. It times the allocate
// call alone.
func allocateRelease(cs []*client.Client, pool string, rngs []*rand.Rand) Op {
	return func(ctx context.Context, w int) (time.Duration, error) {
		c, rng := cs[w%len(cs)], rngs[w]
		body := &client.AllocateBody{Owner: fmt.Sprintf("bench-%d", w), Pool: pool, TTL: "1h", Items: []ironpool.ItemRequest{
			{Flavor: Shapes[0].Flavor, Count: 1 + rng.IntN(2)},
			{Flavor: Shapes[1+rng.IntN(2)].Flavor, Count: 1},
		}}
		t0 := time.Now()
		a, err := c.Allocate(ctx, body)
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		if _, err := c.Release(ctx, a.ID); err != nil {
			return 0, fmt.Errorf("release: %w", err)
		}
		return d, nil
	}
}
