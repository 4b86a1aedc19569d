package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// openCached opens a one-connection pool through the caching connector, so
// every statement of a test runs on the same connection and its cache.
func openCached(t *testing.T) (*sql.DB, *cachingConn) {
	t.Helper()
	db := sql.OpenDB(cachingConnector{dsn: dsn(filepath.Join(t.TempDir(), "c.db"), true, "FULL")})
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cc *cachingConn
	if err := conn.Raw(func(dc any) error { cc = dc.(*cachingConn); return nil }); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	return db, cc
}

// TestStatementCacheReuses checks that a statement run twice is prepared
// once: the point of the cache.
func TestStatementCacheReuses(t *testing.T) {
	db, cc := openCached(t)
	ctx := context.Background()
	const q = `SELECT v FROM t WHERE id = $1`
	var v string
	if err := db.QueryRowContext(ctx, q, 2).Scan(&v); err != nil || v != "v2" {
		t.Fatalf("first run: %q, %v", v, err)
	}
	first, ok := cc.stmts[q]
	if !ok {
		t.Fatal("the statement was not cached")
	}
	if err := db.QueryRowContext(ctx, q, 3).Scan(&v); err != nil || v != "v3" {
		t.Fatalf("second run: %q, %v", v, err)
	}
	if cc.stmts[q] != first {
		t.Fatal("the second run prepared the statement again")
	}
}

// TestStatementCacheNestedSameQuery runs a query again while rows of its
// first run are still open, inside one transaction (one connection): the
// second run must not reset the first one's statement under it.
func TestStatementCacheNestedSameQuery(t *testing.T) {
	db, _ := openCached(t)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT id FROM t WHERE id >= $1 ORDER BY id`
	outer, err := tx.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for outer.Next() {
		var id int
		if err := outer.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
		var inner []int
		rows, err := tx.QueryContext(ctx, q, 4)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var j int
			rows.Scan(&j)
			inner = append(inner, j)
		}
		rows.Close()
		if fmt.Sprint(inner) != "[4 5]" {
			t.Fatalf("inner run gave %v, want [4 5]", inner)
		}
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("outer run gave %v, want [1 2 3 4 5]: the nested run disturbed it", got)
	}
}

// TestStatementCacheEvictsAndErrors checks that the cache stays bounded,
// that evicted statements can run again, and that driver errors (a unique
// violation, which the store maps to a conflict) pass through unchanged.
func TestStatementCacheEvictsAndErrors(t *testing.T) {
	db, cc := openCached(t)
	ctx := context.Background()
	for i := 0; i < 3*stmtCacheSize; i++ {
		var n int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) + %d FROM t`, i)).Scan(&n); err != nil || n != 5+i {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	if cc.lru.Len() > stmtCacheSize || len(cc.stmts) != cc.lru.Len() {
		t.Fatalf("cache holds %d statements (map %d), limit %d", cc.lru.Len(), len(cc.stmts), stmtCacheSize)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) + 0 FROM t`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("evicted statement again: %d, %v", n, err)
	}
	for i := 0; i < 2; i++ {
		_, err := db.ExecContext(ctx, `INSERT INTO t (id, v) VALUES ($1, $2)`, 100+i, "v1")
		if col, ok := uniqueColumn(err); !ok || col != "v" {
			t.Fatalf("run %d: duplicate insert gave %v, want a unique violation on v", i, err)
		}
	}
}
