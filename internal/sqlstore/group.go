package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// maxGroup bounds how many callers' writes share one transaction, so one
// commit never waits on an unbounded line.
const maxGroup = 32

// errClosed is returned to writes that arrive after Close.
var errClosed = errors.New("store closed")

// groupCommit runs the write transactions of concurrent callers together in
// one database transaction when the engine has a single writer (SQLite).
// There, writers queue for the one write connection anyway, and most of a
// small transaction's cost is its commit: every dirty page goes to the WAL,
// and concurrent allocations dirty the same pages (the nodes index, the tail
// of allocations and events). Committing a group writes each page once.
//
// Each caller's function runs inside its own SAVEPOINT, in arrival order,
// and sees the writes of those before it, exactly as if the transactions
// had run one after another. A function that fails is rolled back to its
// savepoint and only its caller gets the error; the others commit. If the
// shared transaction itself fails (the commit, or an engine error that ends
// the transaction), every function of the group runs again alone, so one
// request's fault is never its neighbours'. Functions passed to write are
// already required to be safe to run again.
//
// A caller's context cancels its wait to join a group and is checked before
// its function runs; the function itself then runs to completion with the
// context's values but without its cancellation, because SQLite answers an
// interrupt inside a transaction by rolling the whole transaction back,
// which would fail every caller in the group for one client that left.
type groupCommit struct {
	db   *sql.DB
	reqs chan *groupReq
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// after, when set, runs once a group has ended (committed or not),
	// before the next one gathers: the free-node index reads back the
	// nodes the group touched there.
	after func(context.Context)
	// begin, when set, runs first in every transaction the writer opens.
	begin func(context.Context, *sql.Tx)
	// rolledBack, when set, runs whenever a write's changes were undone
	// (its savepoint, the shared transaction, or its transaction alone),
	// for state cached from inside a transaction.
	rolledBack func()

	// Counters for tests and metrics: transactions run for callers, commits
	// made (groups plus re-runs alone), and callers waiting to join a group.
	writes, commits, waiting atomic.Int64
	// busy is the time (ns) the writer loop spent running groups and
	// their after step: the share of the wall time it is busy is what
	// bounds a store with one writer (bench reports it).
	busy atomic.Int64
}

type groupReq struct {
	ctx      context.Context
	fn       func(context.Context, *sql.Tx) error
	err      error
	panicked any
	done     chan struct{}
}

// newGroupCommit starts writers loops that each gather a group and run it
// in a transaction of its own. One is right for SQLite's single writer; an
// engine with row locks (PostgreSQL) runs several, so that one group's
// commit wait overlaps the next group's statements.
func newGroupCommit(db *sql.DB, writers int) *groupCommit {
	g := &groupCommit{db: db, reqs: make(chan *groupReq), stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for range max(writers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.loop()
		}()
	}
	go func() {
		wg.Wait()
		close(g.done)
	}()
	return g
}

// do runs fn in the next group and returns its result.
func (g *groupCommit) do(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.waiting.Add(1)
	select {
	case g.reqs <- r:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		return ctx.Err()
	case <-g.stop:
		g.waiting.Add(-1)
		return errClosed
	}
	// Once taken, fn may be running and writing the caller's variables, so
	// the caller waits for it even if its context ends meanwhile.
	<-r.done
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// close stops the loop after the group in progress.
func (g *groupCommit) close() {
	g.once.Do(func() { close(g.stop) })
	<-g.done
}

func (g *groupCommit) loop() {
	batch := make([]*groupReq, 0, maxGroup)
	for {
		var ok bool
		if batch, ok = gather(g.reqs, g.stop, batch, maxGroup); !ok {
			return
		}
		t0 := time.Now()
		g.run(batch)
		if g.after != nil {
			g.after(context.Background())
		}
		g.busy.Add(int64(time.Since(t0)))
		clear(batch)
	}
}

// gather waits for one item of ch, then takes every item already waiting,
// up to max in all, into buf: everyone who queued while the previous run
// went on joins this one, and nobody waits for company that has not
// arrived. ok is false when stop closed first.
func gather[T any](ch <-chan T, stop <-chan struct{}, buf []T, max int) (out []T, ok bool) {
	select {
	case v := <-ch:
		buf = append(buf[:0], v)
	case <-stop:
		return buf[:0], false
	}
	for len(buf) < max {
		select {
		case v := <-ch:
			buf = append(buf, v)
		default:
			return buf, true
		}
	}
	return buf, true
}

func (g *groupCommit) run(batch []*groupReq) {
	live := make([]*groupReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) > 1 {
		if err := g.together(live); err != nil {
			g.rollback()
			for _, r := range live {
				r.err, r.panicked = nil, nil
			}
		} else {
			g.commits.Add(1)
			g.writes.Add(int64(len(live)))
			for _, r := range live {
				close(r.done)
			}
			return
		}
	}
	for _, r := range live {
		r.err = inTx(r.ctx, g.db, func(ctx context.Context, tx *sql.Tx) error {
			if g.begin != nil {
				g.begin(ctx, tx)
			}
			return r.call(ctx, tx)
		})
		if r.err != nil {
			g.rollback()
		}
		g.commits.Add(1)
		g.writes.Add(1)
		close(r.done)
	}
}

// together runs the group in one transaction, each function under its own
// savepoint, and records each function's own error. An error return means
// the shared transaction failed and nothing of it was committed.
func (g *groupCommit) together(live []*groupReq) error {
	ctx := context.Background()
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if g.begin != nil {
		g.begin(ctx, tx)
	}
	for _, r := range live {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT grp`); err != nil {
			return err
		}
		if r.err = r.call(context.WithoutCancel(r.ctx), tx); r.err != nil {
			g.rollback()
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO grp`); err != nil {
				return fmt.Errorf("roll back one write of a group: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE grp`); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (g *groupCommit) rollback() {
	if g.rolledBack != nil {
		g.rolledBack()
	}
}

// call runs the function, keeping a panic to re-raise in the caller's
// goroutine (where the HTTP server's recovery handles it) instead of letting
// it end the process from the writer's.
func (r *groupReq) call(ctx context.Context, tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = fmt.Sprintf("%v\n\nwrite function's stack:\n%s", p, debug.Stack())
			err = fmt.Errorf("panic in write: %v", p)
		}
	}()
	return r.fn(ctx, tx)
}
