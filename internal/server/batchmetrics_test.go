package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/bench"
)

// TestBatchCountersOnMetrics: on PostgreSQL /metrics counts the batches
// and the calls they served (read the way `bench` reads them), and the
// SQLite writer's counters are absent.
func TestBatchCountersOnMetrics(t *testing.T) {
	_, cs := replicas(t, 1)
	ctx := context.Background()
	if err := bench.Seed(ctx, cs[0], 20, "b"); err != nil {
		t.Fatal(err)
	}
	before, err := bench.SampleWriter(ctx, cs[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := bench.Run(ctx, cs[0], bench.Options{Clients: 4, Duration: 500 * time.Millisecond, Pool: "b"})
	if err != nil {
		t.Fatal(err)
	}
	after, err := bench.SampleWriter(ctx, cs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !after.BatchOK || after.OK {
		t.Fatalf("counters after the run: %+v, want the batches' and no writer's", after)
	}
	calls := after.BatchedCalls - before.BatchedCalls
	batches := after.Batches - before.Batches
	// Every call of this run was an allocation or a release by id, and a
	// batch serves all of those it can: most of them, on a quiet pool.
	if total := float64(2*r.Allocations + r.Refused); r.Allocations == 0 || calls < total/2 || calls > total || batches < 1 || batches > calls {
		t.Errorf("%d allocate+release pairs (%d refused): %.0f calls served in %.0f batches", r.Allocations, r.Refused, calls, batches)
	}
}
