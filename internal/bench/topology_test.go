package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlite"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// BenchmarkStoreAllocateTopology is the cost of a topology request in the
// store: one allocate+release pair of the 2-item request of
// BenchmarkStoreAllocate, plain (the peer), spread one per rack and
// together in one rack, on 1,000 and 10,000 nodes in racks of 25. A
// topology request reads every matching free node (docs/SCHEDULING.md,
// Cost), so unlike the plain one it grows with the pool:
//
//	go test -run XXX -bench StoreAllocateTopology -benchtime 200x ./internal/bench/
func BenchmarkStoreAllocateTopology(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		ctx, st := rackedStore(b, size)
		for _, c := range []struct {
			name string
			topo *ironpool.Topology
		}{
			{"plain", nil},
			{"spread_rack", &ironpool.Topology{Spread: "rack", MaxPerValue: 1}},
			{"together_rack", &ironpool.Topology{Together: "rack"}},
		} {
			b.Run(fmt.Sprintf("nodes=%d/%s", size, c.name), func(b *testing.B) {
				for b.Loop() {
					a := &ironpool.Allocation{Owner: "bench", Mode: ironpool.ModeNone, TTL: time.Hour, Topology: c.topo,
						Items: []ironpool.AllocationItem{{Constraints: ironpool.Constraints{CPUs: 8}, Count: 2}, {Constraints: ironpool.Constraints{CPUs: 32}, Count: 1}}}
					if err := st.Allocate(ctx, a, false); err != nil {
						b.Fatal(err)
					}
					if _, err := st.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// rackedStore is seededStore with a rack field on every node, 25 per rack.
func rackedStore(b *testing.B, size int) (context.Context, *sqlstore.Store) {
	ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	st, err := sqlite.OpenWith(ctx, b.TempDir()+"/bench.db", opener.MustSealer(b), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var nodes []*ironpool.Node
	for i := 0; i < size; i++ {
		s := benchShapes[i%3]
		nodes = append(nodes, &ironpool.Node{Name: fmt.Sprintf("n%06d", i), Pool: "p", CPUs: s, MemoryMB: int64(s) * 4096,
			LocalGB: 500, State: ironpool.NodeAvailable, BMC: ironpool.BMC{Address: "ipmi://10.0.0.1", Password: "pw"},
			MACs:   []string{fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, (i>>8)&255, i&255)},
			Fields: map[string]string{"rack": fmt.Sprintf("r%04d", i/25)}})
	}
	if err := st.CreateNodes(ctx, nodes); err != nil {
		b.Fatal(err)
	}
	return ctx, st
}
