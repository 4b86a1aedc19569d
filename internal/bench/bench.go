// Package bench measures allocation throughput and latency end to end: real
// HTTP requests from concurrent clients against a running server, each
// client allocating a multi-flavor request and releasing it again. Figures
// from it go into docs/PERFORMANCE.md.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// Options describe one run.
type Options struct {
	Nodes    int           // pool size to seed (0: use what is there)
	Clients  int           // concurrent clients
	Duration time.Duration // how long to run
	Pool     string        // pool to seed into and allocate from
	// OnStart, if set, runs after seeding, just before the clients start
	// (e.g. to begin a CPU profile of the measured part only).
	OnStart func()
}

// Result is what a run measured. Latencies are of the allocate call alone.
type Result struct {
	Nodes       int           `json:"nodes"`
	Clients     int           `json:"clients"`
	Seconds     float64       `json:"seconds"`
	Allocations int64         `json:"allocations"`
	Refused     int64         `json:"refused"`
	Errors      int64         `json:"errors"`
	PerSecond   float64       `json:"allocations_per_second"`
	P50         time.Duration `json:"p50"`
	P99         time.Duration `json:"p99"`
	Max         time.Duration `json:"max"`
}

func (r Result) String() string {
	return fmt.Sprintf("nodes=%d clients=%d allocations=%d refused=%d errors=%d rate=%.0f/s p50=%s p99=%s max=%s",
		r.Nodes, r.Clients, r.Allocations, r.Refused, r.Errors, r.PerSecond, r.P50.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

// Shapes are the three node shapes the benchmark seeds, and the flavors
// that select them.
var Shapes = []struct {
	Flavor string
	CPUs   int
	Mem    int64
	Disk   int64
}{{"bench-small", 8, 32768, 200}, {"bench-medium", 32, 131072, 500}, {"bench-large", 64, 524288, 2000}}

// Seed adds n nodes in the pool (cycling the shapes) and the flavors.
func Seed(ctx context.Context, c *client.Client, n int, pool string) error {
	for _, s := range Shapes {
		f := ironpool.Flavor{Name: s.Flavor, Constraints: ironpool.Constraints{CPUs: s.CPUs, MemoryMB: s.Mem, LocalGB: s.Disk}}
		if _, err := c.Do(ctx, "POST", "/v1/flavors", f, nil); err != nil && ironpool.ErrorCode(err) != ironpool.ECONFLICT {
			return err
		}
	}
	const batch = 5000
	for start := 0; start < n; start += batch {
		var nodes []*ironpool.Node
		for i := start; i < min(n, start+batch); i++ {
			s := Shapes[i%len(Shapes)]
			nodes = append(nodes, &ironpool.Node{Name: fmt.Sprintf("%s-n%06d", pool, i), Pool: pool, CPUs: s.CPUs,
				MemoryMB: s.Mem, LocalGB: s.Disk, CPUArch: "x86_64",
				MACs: []string{fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", len(pool)%256, (i>>24)&255, (i>>16)&255, (i>>8)&255, i&255)},
				BMC:  ironpool.BMC{Address: fmt.Sprintf("ipmi://10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255), Username: "admin", Password: "bench-secret"}})
		}
		if _, err := c.ImportNodes(ctx, nodes); err != nil {
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
	var allocs, refused, errs atomic.Int64
	lat := make([][]time.Duration, o.Clients)
	deadline := time.Now().Add(o.Duration)
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < o.Clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := cs[w%len(cs)]
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			owner := fmt.Sprintf("bench-%d", w)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				body := &client.AllocateBody{Owner: owner, Pool: o.Pool, TTL: "1h", Items: []ironpool.ItemRequest{
					{Flavor: Shapes[0].Flavor, Count: 1 + rng.IntN(2)},
					{Flavor: Shapes[1+rng.IntN(2)].Flavor, Count: 1},
				}}
				t0 := time.Now()
				a, err := c.Allocate(ctx, body)
				d := time.Since(t0)
				if err != nil {
					if ironpool.ErrorCode(err) == ironpool.ECAPACITY {
						refused.Add(1)
					} else {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
					continue
				}
				lat[w] = append(lat[w], d)
				allocs.Add(1)
				if _, err := c.Release(ctx, a.ID); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := Result{Nodes: o.Nodes, Clients: o.Clients, Seconds: elapsed.Seconds(), Allocations: allocs.Load(),
		Refused: refused.Load(), Errors: errs.Load(), PerSecond: float64(allocs.Load()) / elapsed.Seconds()}
	if len(all) > 0 {
		r.P50, r.P99, r.Max = all[len(all)/2], all[len(all)*99/100], all[len(all)-1]
	}
	if e, ok := firstErr.Load().(error); ok && r.Allocations == 0 {
		return r, e
	}
	return r, nil
}
