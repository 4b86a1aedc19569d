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
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/migrations"
)

// Dialect describes SQLite to the shared store.
var Dialect = sqlstore.Dialect{
	Name:        "sqlite",
	Unique:      uniqueColumn,
	GroupCommit: true,
	DataVersion: "PRAGMA data_version",
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

// Options tune the embedded store. The zero value is the safe default.
type Options struct {
	// Synchronous is SQLite's synchronous setting: "full" (the default)
	// syncs the WAL at every commit, so a commit acknowledged to a client
	// survives a power loss; "normal" syncs only at checkpoints and may
	// lose the last commits on power loss (never on a process crash).
	// Group commit keeps the cost of "full" to one sync per group.
	Synchronous string
}

// Validate checks the options before anything is opened or created.
func (o Options) Validate() error {
	_, err := o.synchronous()
	return err
}

// synchronous checks o.Synchronous and returns the pragma value.
func (o Options) synchronous() (string, error) {
	switch strings.ToLower(o.Synchronous) {
	case "", "full":
		return "FULL", nil
	case "normal":
		return "NORMAL", nil
	}
	return "", ironpool.FieldErrorf("sqlite-synchronous", "%q is not a setting (want full or normal)", o.Synchronous)
}

func dsn(path string, write bool, sync string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
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

// Open opens (creating if needed) the SQLite database at path with the
// default Options, applies the embedded migrations and returns the store.
func Open(ctx context.Context, path string, sealer ironpool.Sealer) (*sqlstore.Store, error) {
	return OpenWith(ctx, path, sealer, Options{})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, sealer ironpool.Sealer, opt Options) (*sqlstore.Store, error) {
	if path == "" {
		return nil, ironpool.FieldErrorf("db", "a SQLite file path is required")
	}
	sync, err := opt.synchronous()
	if err != nil {
		return nil, err
	}
	if err := ownerOnly(path); err != nil {
		return nil, err
	}
	changed := new(atomic.Pointer[func(string, int64)])
	w := sql.OpenDB(cachingConnector{dsn: dsn(path, true, sync), changed: changed})
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r := sql.OpenDB(cachingConnector{dsn: dsn(path, false, sync)})
	r.SetMaxOpenConns(max(4, runtime.NumCPU()*2))
	r.SetMaxIdleConns(max(4, runtime.NumCPU()*2))
	st := sqlstore.New(w, r, Dialect, sealer)
	// Every row the write connection changes reaches the free-node
	// index, which reads the nodes back after each group commit.
	fn := st.RowChanged
	changed.Store(&fn)
	st.EnableRowHooks()
	if err := st.EnableFreeIndex(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// ownerOnly creates the database file readable by its owner only, before
// SQLite opens it: SQLite gives the -wal and -shm files the database
// file's mode, and all three hold the pool (sealed passwords included). A
// file an older version left 0644 is tightened.
func ownerOnly(path string) error {
	if strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil // a URI names options SQLite handles; leave it be
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("chmod %s: %w", p, err)
			}
		}
	}
	return nil
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
