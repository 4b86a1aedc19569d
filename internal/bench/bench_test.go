package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/sqlite"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// BenchmarkStoreAllocate measures one allocate+release pair (a 2-item
// request) on the SQLite store, for pools of 1,000 and 100,000 nodes: the
// best-fit read follows an index and stops after the rows it needs, so the
// cost must not grow with the pool.
//
//	go test -run XXX -bench StoreAllocate -benchtime 3000x ./internal/bench/
func BenchmarkStoreAllocate(b *testing.B) {
	for _, size := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			ctx, st := seededStore(b, size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				allocateRelease(b, ctx, st)
			}
		})
	}
}

// BenchmarkStoreAllocateParallel is BenchmarkStoreAllocate with 16
// concurrent callers on 10,000 nodes, the shape of a busy server: group
// commit runs the writes that queue meanwhile in one transaction. ns/op is
// per pair, so set against the serial figure it gives the gain.
func BenchmarkStoreAllocateParallel(b *testing.B) {
	ctx, st := seededStore(b, 10000)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			allocateRelease(b, ctx, st)
		}
	})
	b.StopTimer()
	if w, c, _ := st.WriteStats(); c > 0 {
		b.ReportMetric(float64(w)/float64(c), "writes/commit")
	}
}

// BenchmarkStoreSynchronous is the cost of synchronous=FULL (the
// default: every commit synced) against NORMAL (synced at checkpoints), for
// one caller and for 16, where group commit shares each sync among the
// writes of a group. Both settings run in one invocation, so the figures
// compare:
//
//	go test -run XXX -bench StoreSynchronous -benchtime 2000x ./internal/bench/
func BenchmarkStoreSynchronous(b *testing.B) {
	for _, sync := range []string{"full", "normal"} {
		b.Run("sync="+sync+"/serial", func(b *testing.B) {
			ctx, st := seededStoreWith(b, 1000, sync)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				allocateRelease(b, ctx, st)
			}
		})
		b.Run("sync="+sync+"/parallel", func(b *testing.B) {
			ctx, st := seededStoreWith(b, 1000, sync)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					allocateRelease(b, ctx, st)
				}
			})
		})
	}
}

// seededStore opens a SQLite store in a temp dir holding size nodes of
// three shapes.
func seededStore(b *testing.B, size int) (context.Context, *sqlstore.Store) {
	return seededStoreWith(b, size, "")
}

// seededStoreWith is seededStore with a synchronous setting.
func seededStoreWith(b *testing.B, size int, sync string) (context.Context, *sqlstore.Store) {
	ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	st, err := sqlite.OpenWith(ctx, b.TempDir()+"/bench.db", opener.MustSealer(b), sqlite.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	seed(b, ctx, st, size)
	return ctx, st
}

// seed adds size nodes of three shapes to st.
func seed(b *testing.B, ctx context.Context, st *sqlstore.Store, size int) {
	var nodes []*ironpool.Node
	for i := 0; i < size; i++ {
		s := benchShapes[i%3]
		nodes = append(nodes, &ironpool.Node{Name: fmt.Sprintf("n%06d", i), Pool: "p", CPUs: s, MemoryMB: int64(s) * 4096,
			LocalGB: 500, State: ironpool.NodeAvailable, BMC: ironpool.BMC{Address: "ipmi://10.0.0.1", Password: "pw"},
			MACs: []string{fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, (i>>8)&255, i&255)}, Fields: map[string]string{}})
	}
	if err := st.CreateNodes(ctx, nodes); err != nil {
		b.Fatal(err)
	}
}

func allocateRelease(b *testing.B, ctx context.Context, st *sqlstore.Store) {
	a := &ironpool.Allocation{Owner: "bench", Mode: ironpool.ModeNone, TTL: time.Hour,
		Items: []ironpool.AllocationItem{{Constraints: ironpool.Constraints{CPUs: 8}, Count: 2}, {Constraints: ironpool.Constraints{CPUs: 32}, Count: 1}}}
	if err := st.Allocate(ctx, a, false); err != nil {
		b.Error(err)
		return
	}
	if _, err := st.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
		b.Error(err)
	}
}

var benchShapes = []int{8, 32, 64}

// BenchmarkSQLiteWriteTx is the peer for BenchmarkStoreAllocate: the
// smallest write transaction (one INSERT) on the same SQLite setup, the
// ceiling any write path on this store can reach.
func BenchmarkSQLiteWriteTx(b *testing.B) {
	ctx := context.Background()
	st, _ := opener.MustOpenSQLite(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx, err := st.W.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (time, actor, role, action, subject, summary) VALUES (1, 'a', 'b', 'c', 'd', 'e')`); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPostgresAllocateParallel is BenchmarkStoreAllocateParallel on
// PostgreSQL (synchronous_commit as the server has it, on by default), with
// every write its own transaction (writers=off, the code before group
// commit served PostgreSQL) and with group commit at 1, 4 and 8 concurrent
// groups, in one invocation so the ratios compare. Skipped without
// IRONPOOL_TEST_POSTGRES.
//
//	go test -run XXX -bench PostgresAllocateParallel -benchtime 3000x ./internal/bench/
func BenchmarkPostgresAllocateParallel(b *testing.B) {
	for _, w := range []int{-1, 1, 4, 8} {
		name := fmt.Sprintf("writers=%d", w)
		if w < 0 {
			name = "writers=off"
		}
		b.Run(name, func(b *testing.B) {
			ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
			st, err := postgres.OpenWith(ctx, pgtest.Schema(b), opener.MustSealer(b), postgres.Options{GroupWriters: w})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			seed(b, ctx, st, 10000)
			b.SetParallelism(16) // 32 callers on 2 cores, as the HTTP bench's clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					allocateRelease(b, ctx, st)
				}
			})
			b.StopTimer()
			if w, c, _ := st.WriteStats(); c > 0 {
				b.ReportMetric(float64(w)/float64(c), "writes/commit")
			}
		})
	}
}

// BenchmarkStoreAllocateQuota is BenchmarkStoreAllocate on 10,000 nodes
// with no quota (the peer), a max_nodes quota on a pattern matching the
// owner, and a node-hours quota over 7 days (which reads the usage record
// of the window on every request). All three run in one invocation, so the
// ratios compare:
//
//	go test -run XXX -bench StoreAllocateQuota -benchtime 3000x ./internal/bench/
func BenchmarkStoreAllocateQuota(b *testing.B) {
	for _, c := range []struct {
		name  string
		quota *ironpool.Quota
	}{
		{"none", nil},
		{"max_nodes", &ironpool.Quota{Owner: "b*", MaxNodes: 1000}},
		{"node_hours", &ironpool.Quota{Owner: "bench", MaxNodeHours: 1e8, Per: 7 * 24 * time.Hour}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, st := seededStore(b, 10000)
			if c.quota != nil {
				if _, err := st.SetQuota(ctx, c.quota); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				allocateRelease(b, ctx, st)
			}
		})
	}
}

// BenchmarkStoreAllocateReservations is BenchmarkStoreAllocate on 1,000
// nodes with no reservation and with 300 pending reservations of one node
// each, far in the future: every candidate read then probes the
// reservation index per row (the allocation must leave reserved nodes
// alone when its lease would run into the window). Both run in one
// invocation, so the ratio is the cost of keeping off reservations:
//
//	go test -run XXX -bench StoreAllocateReservations -benchtime 3000x ./internal/bench/
func BenchmarkStoreAllocateReservations(b *testing.B) {
	for _, reserved := range []int{0, 300} {
		b.Run(fmt.Sprintf("reservations=%d", reserved), func(b *testing.B) {
			ctx, st := seededStore(b, 1000)
			st.SetReservationGap(10 * time.Minute)
			start := time.Now().Add(30 * 24 * time.Hour)
			for i := 0; i < reserved; i++ {
				r := &ironpool.Reservation{Owner: "lab", Mode: ironpool.ModeNone, Start: start, End: start.Add(time.Hour),
					Items: []ironpool.AllocationItem{{Constraints: ironpool.Constraints{CPUs: 8}, Count: 1}}}
				if err := st.Reserve(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				allocateRelease(b, ctx, st)
			}
		})
	}
}
