package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/migrations"
)

// TestEndUsagePlan: the statement every release and expiry runs to close
// an allocation's usage rows finds them by allocation id, not by walking
// every live hold. With the index on allocation_id alone SQLite chose the
// end_ms index, and 10,000 live leases made each expiry a full scan (the
// reaper fell 8.5 s behind under `bench --churn`).
func TestEndUsagePlan(t *testing.T) {
	ctx := context.Background()
	db := migrated(t)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_log (allocation_id, owner, flavor, nodes, start_ms) VALUES (?, 'ci', 'small', 1, 1)`,
			fmt.Sprintf("a-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// No ANALYZE: the server never runs it, so the planner works from the
	// schema alone, as here.
	// One allocation (a release) and many (a reaper pass).
	for _, ids := range [][]any{{"a-7"}, {"a-7", "a-8", "a-1999"}} {
		if got := plan(t, db, sqlstore.EndUsageSQL(len(ids)), append([]any{2}, ids...)...); !strings.Contains(got, "usage_allocation (allocation_id=? AND end_ms=?)") {
			t.Errorf("closing usage rows of %d allocations: plan %q, want a search on usage_allocation by allocation_id and end_ms", len(ids), got)
		}
	}
}

// TestEndAllocationsPlan: ending a reaper pass's leases finds their rows
// by id. With a plain state condition SQLite chose allocations_state for
// a list of ids, a walk over every live lease.
func TestEndAllocationsPlan(t *testing.T) {
	db := migrated(t)
	for _, ids := range [][]any{{"a"}, {"a", "b", "c"}} {
		got := plan(t, db, sqlstore.EndAllocationsSQL(len(ids)), append([]any{"expired", 1, "active"}, ids...)...)
		if !strings.Contains(got, "sqlite_autoindex_allocations_1 (id=?)") {
			t.Errorf("ending %d allocations: plan %q, want a search by id", len(ids), got)
		}
	}
}

// TestPoolCandidatesPlan: a request for one pool reads that pool's free
// nodes in best-fit order straight from nodes_pool_fit, so free nodes of
// other pools cost it nothing. Through nodes_fit it walked every free node
// of every pool ahead of its own (3x slower with 10,000 free nodes in
// another pool). The statement has the shape Store.candidates builds for
// an item with a pool and a cpus bound.
func TestPoolCandidatesPlan(t *testing.T) {
	db := migrated(t)
	q := `SELECT id, name, cpus, memory_mb, local_gb, last_allocated_at FROM nodes
		WHERE state = ? AND pool = ? AND cpus >= ? ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id LIMIT 4`
	got := plan(t, db, q, "available", "lab", 4)
	if !strings.Contains(got, "nodes_pool_fit (pool=? AND state=?") || strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("candidates of one pool: plan %q, want nodes_pool_fit by pool and state, in index order", got)
	}
}

// migrated is a fresh SQLite database with every migration applied.
func migrated(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// plan is SQLite's EXPLAIN QUERY PLAN of q, its steps joined by "; ".
func plan(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "; ")
}

// TestClaimPlan: the claim updates its nodes by primary key. With a plain
// state condition SQLite chose the state index and walked every free
// node; the claim appends an empty string to the state, which no index
// covers, to keep it on the key.
func TestClaimPlan(t *testing.T) {
	db := migrated(t)
	q := `UPDATE nodes SET state = 'allocated' WHERE id IN (?, ?) AND state || '' = 'available'`
	if got := plan(t, db, q, 1, 2); !strings.Contains(got, "INTEGER PRIMARY KEY (rowid=?)") {
		t.Errorf("claim: plan %q, want a lookup by rowid", got)
	}
	if got := plan(t, db, `UPDATE nodes SET state = 'allocated' WHERE id IN (?, ?) AND state = 'available'`, 1, 2); strings.Contains(got, "INTEGER PRIMARY KEY (rowid=?)") {
		t.Logf("note: SQLite now keeps the plain form on the key too: %q", got)
	}
}
