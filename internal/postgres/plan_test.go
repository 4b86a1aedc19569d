package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// TestStatisticsKept: nodes written to a fresh schema get planner
// statistics within seconds, whether or not autovacuum is on (it is off on
// the CI machine, and looks once a minute where it is on). Without them
// PostgreSQL planned the batch's claim as a scan of every available node.
func TestStatisticsKept(t *testing.T) {
	var mu sync.Mutex
	analyzed := map[string]int{}
	st := openStore(t, postgres.Options{
		Analyzed: func(table string) {
			mu.Lock()
			analyzed[table]++
			mu.Unlock()
		},
	})
	ctx := t.Context()
	if err := st.BulkCreateNodes(ctx, bench.NewNodes("stats", 0, 300)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var states int
		if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stats
			WHERE schemaname = current_schema() AND tablename = 'nodes' AND attname = 'state'`).Scan(&states); err != nil {
			t.Fatal(err)
		}
		if states == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nodes has no statistics of its state column 15s after 300 nodes were written")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	n := analyzed["nodes"]
	mu.Unlock()
	if n != 1 {
		t.Errorf("the upkeep analyzed nodes %d times, want once (statistics from elsewhere prove nothing here)", n)
	}
	// Once analyzed, the table waits for autovacuum's threshold and pace.
	time.Sleep(2500 * time.Millisecond)
	mu.Lock()
	n = analyzed["nodes"]
	mu.Unlock()
	if n != 1 {
		t.Errorf("nodes analyzed %d times within seconds, want once per minute at most", n)
	}
}

// TestStateReadsUseTheIndex: the reads a server runs on every pass of its
// loops (anything queued? anything expired? when is the next deadline?)
// stay on allocations_state however many ended allocations the table
// holds. With the state passed as a parameter, PostgreSQL switched to its
// generic plan after five calls and scanned the whole table on each.
func TestStateReadsUseTheIndex(t *testing.T) {
	st := openStore(t, postgres.Options{})
	ctx := t.Context()
	const ended = 5000
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO allocations (id, owner, state, mode, items, ttl_ms, created_at, expires_at, released_at)
		SELECT 'a' || g, 'ci', 'released', 'none', '[]', 60000, g, g + 60000, g + 1000 FROM generate_series(1, $1) g`, ended); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `ANALYZE allocations`); err != nil {
		t.Fatal(err)
	}
	read := seqRead(t, st, "allocations", ended, func() {
		for range 20 {
			if _, err := st.DispatchQueue(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ExpireAllocations(ctx, true); err != nil {
				t.Fatal(err)
			}
			if _, err := st.NextExpiry(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	if read >= ended {
		t.Errorf("60 state reads scanned %d allocation rows sequentially, want them on the index (fewer than the %d rows of one scan)", read, ended)
	}
}

// TestBatchPlansUseTheIndexes: the batch's statements that find rows by
// arrays of ids run on generic plans (batch.go, genericPlans), and those
// plans stay on the indexes: releasing and claiming through batches reads
// neither allocations nor nodes nor usage rows sequentially, however many
// the tables hold.
func TestBatchPlansUseTheIndexes(t *testing.T) {
	st := openStore(t, postgres.Options{})
	ctx := t.Context()
	const rows = 4000
	if err := st.BulkCreateNodes(ctx, bench.NewNodes("plans", 0, rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO allocations (id, owner, state, mode, items, ttl_ms, created_at, expires_at, released_at)
		SELECT 'a' || g, 'ci', 'released', 'none', '[]', 60000, g, g + 60000, g + 1000 FROM generate_series(1, $1) g`, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO usage_log (allocation_id, owner, flavor, nodes, start_ms, end_ms)
		SELECT 'a' || g, 'ci', 'small', 1, g, g + 1000 FROM generate_series(1, $1) g`, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	pairs := func() {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for range 5 {
					a := &ironpool.Allocation{Owner: fmt.Sprintf("ci-%d", w), Mode: ironpool.ModeNone, TTL: time.Hour,
						Items: []ironpool.AllocationItem{{Count: 2, Constraints: ironpool.Constraints{CPUs: bench.Shapes[0].CPUs}}}}
					if err := st.Allocate(ctx, a, false); err != nil {
						t.Error(err)
						return
					}
					if _, err := st.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	pairs() // past the first executions, which PostgreSQL always plans afresh
	// Most calls go through batches; a call a batch leaves (its
	// candidates taken by a neighbour) runs alone, which is fine here.
	if batches, served, _ := st.BatchStats(); batches == 0 || served < 40 {
		t.Fatalf("%d of 80 calls served by %d batches: the batch path hardly ran", served, batches)
	}
	for _, table := range []string{"allocations", "nodes", "usage_log"} {
		if read := seqRead(t, st, table, rows, pairs); read >= rows {
			t.Errorf("40 batched allocate+release pairs read %d %s rows sequentially, want them on the indexes (fewer than the %d of one scan)", read, table, rows)
		}
	}
}

// seqRead is how many rows of table the statements of run read
// sequentially. One deliberate scan of the table's want rows, made after
// run, shows the counts have arrived (each pool connection reports when it
// goes idle, within about a second) and is taken off; without it a late
// report would pass for "no scan".
func seqRead(t *testing.T, st *sqlstore.Store, table string, want int64, run func()) int64 {
	t.Helper()
	ctx := t.Context()
	scanned := func() int64 {
		time.Sleep(1500 * time.Millisecond)
		var n int64
		if err := st.DB().QueryRowContext(ctx, `SELECT COALESCE(seq_tup_read, 0) FROM pg_stat_user_tables
			WHERE schemaname = current_schema() AND relname = $1`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := scanned()
	run()
	if _, err := st.DB().ExecContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE ctid IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	read := scanned() - before
	for deadline := time.Now().Add(10 * time.Second); read < want && time.Now().Before(deadline); {
		read = scanned() - before
	}
	if read < want {
		t.Fatalf("a scan of all %d rows of %s was not counted (%d rows): the statistics did not arrive, so this test proves nothing", want, table, read)
	}
	return read - want
}
