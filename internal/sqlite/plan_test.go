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
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
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
	q := strings.NewReplacer("$1", "?", "$2", "?").Replace(sqlstore.EndUsageSQL)
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, 2, "a-7")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(plan, "; ")
	if !strings.Contains(got, "usage_allocation (allocation_id=? AND end_ms=?)") {
		t.Errorf("closing usage rows: plan %q, want a search on usage_allocation by allocation_id and end_ms", got)
	}
}
