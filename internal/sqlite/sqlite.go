// Package sqlite opens ironpool's embedded store: a SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode, served by internal/sqlstore.
//
// Two pools: writes go through one connection whose transactions begin
// IMMEDIATE, so writers queue in Go instead of spinning on SQLITE_BUSY and a
// read never has to be upgraded to a write lock mid-transaction; reads use a
// separate pool that WAL lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"ironpool"
	"ironpool/internal/sqlstore"
	"ironpool/migrations"
)

// Dialect describes SQLite to the shared store.
var Dialect = sqlstore.Dialect{
	Name:        "sqlite",
	Unique:      uniqueColumn,
	GroupCommit: true,
	Unavailable: unavailable,
}

// uniqueColumn recognises "UNIQUE constraint failed: nodes.name".
func uniqueColumn(err error) (string, bool) {
	var se *sqlite3.Error
	if err == nil || !errors.As(err, &se) {
		return "", false
	}
	if se.Code() != sqlite3lib.SQLITE_CONSTRAINT_UNIQUE && se.Code() != sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY {
		return "", false
	}
	msg := se.Error()
	i := strings.LastIndex(msg, ".")
	if i < 0 {
		return "", true
	}
	col := msg[i+1:]
	if j := strings.IndexAny(col, " ,)"); j >= 0 {
		col = col[:j]
	}
	return col, true
}

func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "cache_size(-32000)")
	// Savepoint journals (group commit runs each write under one) are
	// temporary files unless this says memory; as files they cost a
	// pwrite per page.
	q.Add("_pragma", "temp_store(MEMORY)")
	if write {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(ON)")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the SQLite database at path, applies the
// embedded migrations and returns the store.
func Open(ctx context.Context, path string, sealer ironpool.Sealer) (*sqlstore.Store, error) {
	if path == "" {
		return nil, ironpool.FieldErrorf("db", "a SQLite file path is required")
	}
	w := sql.OpenDB(cachingConnector{dsn(path, true)})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r := sql.OpenDB(cachingConnector{dsn(path, false)})
	r.SetMaxOpenConns(max(4, runtime.NumCPU()*2))
	r.SetMaxIdleConns(max(4, runtime.NumCPU()*2))
	return sqlstore.New(w, r, Dialect, sealer), nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys := migrations.SQLite()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
