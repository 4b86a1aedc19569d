// Package postgres opens ironpool's store on PostgreSQL, for several
// ironpool servers sharing one pool behind a load balancer.
//
// The SQL itself lives in internal/sqlstore and is shared with SQLite; this
// package supplies what differs: the driver (pgx through database/sql), row
// locks that let concurrent allocations skip each other's candidates instead
// of queueing behind them, the mapping of constraint violations to fields,
// which errors are worth retrying, migrations guarded by an advisory lock so
// replicas starting together do not race, and LISTEN/NOTIFY so a change made
// on one replica wakes the others at once instead of at their next poll.
//
// The schema is chosen with the standard search_path parameter in the DSN
// (postgres://host/db?search_path=ironpool); it must exist. Everything,
// including goose's version table, lives in the first schema of the path,
// which is how tests isolate themselves in one database.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/migrations"
)

// Dialect describes PostgreSQL to the shared store. Candidate rows are
// locked with SKIP LOCKED so concurrent requests take different nodes
// instead of serialising on the same best-fit rows; a miss is re-checked
// with waiting locks (see sqlstore's matchLocked). Open adds WaitSerial,
// which depends on the schema.
var Dialect = sqlstore.Dialect{
	Name:        "postgres",
	LockSkip:    "FOR UPDATE SKIP LOCKED",
	LockWait:    "FOR UPDATE",
	Unique:      uniqueColumn,
	Retryable:   retryable,
	Unavailable: unavailable,
	// Concurrent allocations and releases share set-based statements
	// and one commit (sqlstore's batcher), one batch at a time: calls
	// that arrive while a batch runs form the next one, so batches grow
	// with the load and with a slower commit. docs/PERFORMANCE.md
	// measures it against a transaction per call, and two or more
	// batches at a time, which were faster on one replica and slower on
	// three (smaller batches).
	BatchLoops: 1,
	Pipe:       newPipe,
	// No group commit by default: measured on the 2-core development VM
	// (docs/PERFORMANCE.md, session 4), running a group's statements one
	// after another on one connection cost more in round trips than the
	// shared WAL flush saved. OpenWith's GroupWriters turns it on.
}

// constraintColumns names the column behind each unique constraint of the
// schema, as PostgreSQL reports constraints by name only. The store turns
// the column into the field of an ECONFLICT error.
var constraintColumns = map[string]string{
	"nodes_pkey":            "id",
	"nodes_name_key":        "name",
	"nodes_uuid_key":        "uuid",
	"nodes_ironic":          "ironic_uuid",
	"ports_pkey":            "mac",
	"flavors_pkey":          "name",
	"allocations_pkey":      "seq",
	"allocations_id_key":    "id",
	"allocation_nodes_pkey": "node_id",
	"events_pkey":           "id",
	"tokens_pkey":           "id",
	"tokens_hash_key":       "hash",
	"leases_pkey":           "name",
}

// uniqueColumn reports a unique violation (SQLSTATE 23505) and the column at
// fault. A constraint missing from the table (added by a later migration
// and forgotten here) still counts as a conflict, named after the
// constraint with its table prefix and key suffix trimmed.
func uniqueColumn(err error) (string, bool) {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) || pe.Code != "23505" {
		return "", false
	}
	if col, ok := constraintColumns[pe.ConstraintName]; ok {
		return col, true
	}
	col := strings.TrimPrefix(pe.ConstraintName, pe.TableName+"_")
	col = strings.TrimSuffix(strings.TrimSuffix(col, "_pkey"), "_key")
	return col, true
}

// retryable reports serialization failures (40001) and deadlocks (40P01):
// PostgreSQL aborted the transaction to break a conflict, and running it
// again is the documented remedy.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Open connects to PostgreSQL at dsn (a URL or keyword/value string, as
// libpq takes; search_path selects the schema), applies the embedded
// migrations and returns the store. One pool serves reads and writes: unlike
// SQLite, PostgreSQL lets writers run side by side.
func Open(ctx context.Context, dsn string, sealer ironpool.Sealer) (*sqlstore.Store, error) {
	return OpenWith(ctx, dsn, sealer, Options{})
}

// Options tune OpenWith; the zero value is Open's defaults.
type Options struct {
	// GroupWriters, when positive, turns on group commit (see sqlstore's
	// groupCommit) with this many groups running at once, each on its own
	// connection, every write under its own savepoint. Zero or negative:
	// every write is its own transaction, the default. Benchmarks set it to
	// compare both in one run.
	GroupWriters int
	// FreeIndex keeps the free nodes in memory (internal/freeindex), kept
	// in step with every replica by migration 00010's triggers, which it
	// switches on for the whole database. Off by default: on PostgreSQL
	// the notifications cost more than the candidate reads they save
	// (docs/PERFORMANCE.md, "The free-node index").
	FreeIndex bool
	// NoBatch runs every allocation and release in a transaction of its
	// own instead of sqlstore's batches (for tests and comparisons).
	NoBatch bool
	// Analyzed, if set, is told each table the statistics upkeep
	// analyzes (analyze.go), for tests.
	Analyzed func(table string)
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, sealer ironpool.Sealer, opt Options) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included: keep it out.
		return nil, ironpool.FieldErrorf("db", "is not a PostgreSQL connection string (want postgres://user@host:5432/db?sslmode=disable)")
	}
	db := stdlib.OpenDB(*cfg)
	// Bounded so that several replicas stay under max_connections (100 by
	// default); allocations are short transactions, so a queue in Go is
	// cheaper than more server processes.
	// All of them stay open when idle: a new connection parses every
	// statement again and compiles the trigger functions again, and with
	// half of them closed between bursts that cost more than the load.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	schema, err := currentSchema(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db, schema); err != nil {
		db.Close()
		return nil, err
	}
	d := dialectFor(schema)
	if opt.GroupWriters > 0 {
		d.GroupCommit, d.GroupWriters = true, opt.GroupWriters
	}
	if opt.NoBatch {
		d.BatchLoops = 0
	}
	st := sqlstore.New(db, db, d, sealer)
	stop, err := startAnalyzer(db, schema, opt.Analyzed)
	if err != nil {
		st.Close()
		return nil, err
	}
	st.OnClose = func() error { stop(); return nil }
	if opt.FreeIndex {
		if err := startFreeIndex(ctx, st, dsn, schema); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// NodesChannel is where the triggers of migration 00010 announce changed
// nodes, as "schema:payload" (see sqlstore.Store.FreeNotified).
const NodesChannel = "ironpool_nodes"

// startFreeIndex builds the store's free-node index and keeps it in step
// with every replica's writes: a listener hands the node ids the triggers
// announce to the store, and a worker reads them back. Both stop when the
// store is closed. Listen reports each (re)connect with an empty payload,
// which rebuilds the index, since notifications sent while it was away
// are lost.
func startFreeIndex(ctx context.Context, st *sqlstore.Store, dsn, schema string) error {
	// Every replica's writes announce node changes from now on, whether
	// or not it keeps an index itself; the setting is never turned off,
	// since another replica may rely on it.
	if _, err := st.W.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('node_notify', 'on')
		ON CONFLICT (name) DO UPDATE SET value = 'on'`); err != nil {
		return fmt.Errorf("free index: %w", err)
	}
	if err := st.EnableFreeIndex(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	kick := NewKicker()
	done := make(chan struct{}, 2)
	prefix := schema + ":"
	go func() {
		defer func() { done <- struct{}{} }()
		ListenPayload(lctx, dsn, NodesChannel, func(p string) {
			if p != "" {
				var ok bool
				if p, ok = strings.CutPrefix(p, prefix); !ok {
					return // another schema's nodes
				}
			}
			st.FreeNotified(p)
			kick.Kick()
		})
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		// A failed read leaves the nodes out of the index until it works.
		kick.Run(lctx, 100*time.Millisecond, st.RefreshFreeIndex)
	}()
	prev := st.OnClose
	st.OnClose = func() error {
		cancel()
		<-done
		<-done
		if prev != nil {
			return prev()
		}
		return nil
	}
	return nil
}

// dialectFor returns Dialect with the lock that lets one allocation at a
// time wait for candidate rows (see sqlstore's matchLocked). The lock is per
// schema: deployments sharing a database do not queue behind each other.
func dialectFor(schema string) sqlstore.Dialect {
	d := Dialect
	d.WaitSerial = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", lockID("ironpool/wait/"+schema))
	return d
}

// lockID turns a name into an advisory lock key.
func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() >> 1)
}

// currentSchema returns the schema tables are created in, and fails clearly
// when search_path names none that exists (PostgreSQL would otherwise fail
// the first CREATE TABLE with "no schema has been selected").
func currentSchema(ctx context.Context, db *sql.DB) (string, error) {
	var schema sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if !schema.Valid {
		var path string
		_ = db.QueryRowContext(ctx, `SHOW search_path`).Scan(&path)
		return "", ironpool.Errorf(ironpool.EINVALID, "no schema of search_path %q exists in the database", path).
			WithHint("create it first (CREATE SCHEMA …) or fix search_path in the connection string")
	}
	return schema.String, nil
}

// migrate applies the embedded migrations under a session advisory lock,
// so that replicas started together apply each migration once. The lock id
// is derived from the schema: servers of one deployment exclude each other,
// while deployments (or tests) in other schemas of the same database do not
// wait for them.
func migrate(ctx context.Context, db *sql.DB, schema string) error {
	fsys := migrations.Postgres()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID("ironpool/migrate/"+schema)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	return nil
}
