package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestSeedStore checks the bulk seeding on both engines: exactly N nodes in
// the pool, the shapes cycled, one port per node, passwords sealed so they
// open again, a node usable by an allocation, and a second seeding of the
// same nodes refused as a whole with nothing changed. N is not a multiple
// of the statement or transaction size, so the partial batches run too.
func TestSeedStore(t *testing.T) {
	const n = bench.SeedChunk + 1234
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var st *sqlstore.Store
			if engine == "sqlite" {
				st, _ = opener.MustOpenSQLite(t)
			} else {
				st, _ = opener.MustOpenPostgres(t)
			}
			ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
			if err := bench.SeedStore(ctx, st, n, "bulk"); err != nil {
				t.Fatal(err)
			}
			nodes, err := st.FindNodes(ctx, ironpool.NodeFilter{Pool: "bulk"})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(nodes); got != n {
				t.Fatalf("%d nodes in the pool, want %d", got, n)
			}
			perShape := map[int]int{}
			for _, nd := range nodes {
				perShape[nd.CPUs]++
				if nd.State != ironpool.NodeAvailable || len(nd.MACs) != 1 {
					t.Fatalf("node %s: state %s, MACs %v", nd.Name, nd.State, nd.MACs)
				}
			}
			for i, s := range bench.Shapes {
				want := n / 3
				if i < n%3 {
					want++
				}
				if perShape[s.CPUs] != want {
					t.Errorf("%d nodes of %d cpus, want %d", perShape[s.CPUs], s.CPUs, want)
				}
			}
			var ports int
			if err := st.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM ports`).Scan(&ports); err != nil || ports != n {
				t.Errorf("%d ports (%v), want %d", ports, err, n)
			}
			one, err := st.FindNode(ctx, nodes[n-1].Name)
			if err != nil || one.BMC.Password != "bench-secret" {
				t.Errorf("node %s: password %q (%v), want it unsealed", nodes[n-1].Name, one.BMC.Password, err)
			}
			a := &ironpool.Allocation{Owner: "o", Mode: ironpool.ModeNone, TTL: time.Hour,
				Items: []ironpool.AllocationItem{{Constraints: ironpool.Constraints{CPUs: 64}, Count: 2}}}
			if err := st.Allocate(ctx, a, false); err != nil {
				t.Fatalf("allocate on bulk-seeded nodes: %v", err)
			}
			// The same nodes again: the names are taken, so nothing of the
			// second call may stay, not even its first full batch.
			again := bench.NewNodes("bulk", 0, 1000)
			again = append(again, bench.NewNodes("other", 0, 10)...)
			err = st.BulkCreateNodes(ctx, append(bench.NewNodes("other2", 0, 500), again...))
			if ironpool.ErrorCode(err) != ironpool.ECONFLICT {
				t.Fatalf("seeding taken names: %v, want ECONFLICT", err)
			}
			for _, p := range []string{"other", "other2"} {
				if got, _ := st.FindNodes(ctx, ironpool.NodeFilter{Pool: p}); len(got) != 0 {
					t.Errorf("pool %s has %d nodes after a refused bulk insert", p, len(got))
				}
			}
		})
	}
}
