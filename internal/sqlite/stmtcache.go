package sqlite

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// stmtCacheSize bounds the prepared statements each connection keeps. The
// store uses a few dozen distinct statements; queries with variable IN lists
// come and go through the least-recently-used end.
const stmtCacheSize = 128

// cachingConnector opens modernc connections that keep their prepared
// statements. The driver prepares (parses and plans) every statement passed
// to Exec or Query and finalizes it afterwards; profiling the allocation path
// showed SQLite's parser taking a quarter of the server's CPU. Reusing a
// prepared statement per connection removes that cost without changing a line
// of the store's SQL.
type cachingConnector struct {
	dsn string
	// changed, when set, receives every row change made on the
	// connections (the write pool's): the table and the rowid. It is
	// loaded at each change, so the store can be installed after the
	// first connection (opened for the migrations) exists.
	changed *atomic.Pointer[func(table string, rowid int64)]
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := (&sqlite3.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	if c.changed != nil {
		h, ok := conn.(sqlite3.HookRegisterer)
		if !ok {
			conn.Close()
			return nil, errors.New("sqlite driver has no pre-update hook")
		}
		h.RegisterPreUpdateHook(func(d sqlite3.SQLitePreUpdateData) {
			if fn := c.changed.Load(); fn != nil {
				id := d.NewRowID
				if d.Op == sqlite3lib.SQLITE_DELETE {
					id = d.OldRowID
				}
				(*fn)(d.TableName, id)
			}
		})
	}
	return &cachingConn{inner: conn.(innerConn), stmts: map[string]*list.Element{}, lru: list.New()}, nil
}

func (c cachingConnector) Driver() driver.Driver { return &sqlite3.Driver{} }

// innerConn is what the modernc connection offers that database/sql uses.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	// busy is set while rows read from stmt are open: SQLite cannot run a
	// statement again before its previous run is reset, so a second use
	// meanwhile (a nested query inside a transaction) goes uncached.
	busy bool
}

// cachingConn is a modernc connection with a per-connection LRU of prepared
// statements. database/sql uses a connection from one goroutine at a time,
// so the cache needs no lock.
type cachingConn struct {
	inner innerConn
	stmts map[string]*list.Element
	lru   *list.List
}

// lookup returns a prepared statement for query that is not in use, preparing
// and caching it when absent; nil means "run it uncached".
func (c *cachingConn) lookup(ctx context.Context, query string) (*cachedStmt, error) {
	if e, ok := c.stmts[query]; ok {
		cs := e.Value.(*cachedStmt)
		if cs.busy {
			return nil, nil
		}
		c.lru.MoveToFront(e)
		return cs, nil
	}
	st, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: st}
	c.stmts[query] = c.lru.PushFront(cs)
	for e := c.lru.Back(); c.lru.Len() > stmtCacheSize && e != nil; {
		prev := e.Prev()
		if old := e.Value.(*cachedStmt); !old.busy {
			c.lru.Remove(e)
			delete(c.stmts, old.query)
			old.stmt.Close()
		}
		e = prev
	}
	return cs, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.lookup(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.ExecContext(ctx, query, args)
	}
	return cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.lookup(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.busy = true
	return &cachedRows{Rows: rows, cs: cs}, nil
}

// cachedRows frees its statement for the next use when closed.
type cachedRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.cs.busy = false
	return err
}

// Close finalizes every cached statement, then closes the connection.
func (c *cachingConn) Close() error {
	var errs []error
	for e := c.lru.Front(); e != nil; e = e.Next() {
		errs = append(errs, e.Value.(*cachedStmt).stmt.Close())
	}
	c.stmts, c.lru = nil, nil
	return errors.Join(append(errs, c.inner.Close())...)
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.PrepareContext(ctx, query)
}
func (c *cachingConn) Begin() (driver.Tx, error) { return c.inner.Begin() } //nolint:staticcheck // required by driver.Conn
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.BeginTx(ctx, opts)
}
func (c *cachingConn) Ping(ctx context.Context) error         { return c.inner.Ping(ctx) }
func (c *cachingConn) ResetSession(ctx context.Context) error { return c.inner.ResetSession(ctx) }
func (c *cachingConn) IsValid() bool                          { return c.inner.IsValid() }
