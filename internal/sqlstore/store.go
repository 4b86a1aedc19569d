// Package sqlstore implements ironpool.Store over database/sql. One body of
// SQL serves SQLite and PostgreSQL: the engines agree on everything the store
// needs ($N parameters, RETURNING, ON CONFLICT, partial indexes) and differ
// only in what Dialect captures — how candidate rows are locked and how
// constraint violations are reported. Keeping one implementation means the
// allocation transaction, the part that must never hand a node out twice, is
// written and reviewed once.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/clock"
	"github.com/ironpool/ironpool/internal/freeindex"
)

// Dialect is what differs between the SQL engines.
type Dialect struct {
	Name string
	// LockSkip is appended to candidate queries to lock the rows read while
	// skipping rows other transactions hold (PostgreSQL: FOR UPDATE SKIP
	// LOCKED). Empty for SQLite, where the write transaction excludes every
	// other writer already.
	LockSkip string
	// LockWait locks the rows read, waiting for holders; used to re-check
	// when a skipping read found too few rows.
	LockWait string
	// WaitSerial, when set, is run before a LockWait read so that only one
	// transaction at a time waits for candidate rows (PostgreSQL: a
	// transaction-scoped advisory lock); see matchLocked for why.
	WaitSerial string
	// Unique reports whether err violates a unique constraint and, if so, a
	// name for the column at fault ("name", "mac", "uuid", ...).
	Unique func(err error) (column string, ok bool)
	// Retryable reports transient conflicts (deadlock, serialization) after
	// which the whole transaction may simply be run again.
	Retryable func(err error) bool
	// GroupCommit runs concurrent writes together in one transaction (see
	// groupCommit); for engines with a single writer.
	GroupCommit bool
	// GroupWriters is how many groups may run at once (0 means 1). An
	// engine with one writer gains nothing from more; PostgreSQL, where
	// each group is one commit (one WAL flush) on its own connection, runs
	// several so that flushes overlap.
	GroupWriters int
	// BatchLoops, when positive, serves concurrent allocations and
	// releases in batches (see batcher), this many batches at a time;
	// for engines with row locks, where each statement costs a round
	// trip and the server's work, and writers run side by side.
	BatchLoops int
	// Pipe wraps a driver connection (from database/sql's Conn.Raw) in a
	// Pipe. Batches need one: BatchLoops is ignored without it.
	Pipe func(driverConn any) Pipe
	// DataVersion, when set, is the statement that reads a counter the
	// engine changes when another connection has committed (SQLite:
	// PRAGMA data_version); the free-node index rebuilds on a change.
	DataVersion string
	// Unavailable names, in words safe to show, an error meaning the
	// database cannot serve now (disk full, connection lost); "" otherwise.
	Unavailable func(err error) string
}

// Store is the SQL store. Writes go through W; reads through R, which may
// be the same pool (PostgreSQL) or a separate read-only pool (SQLite, where
// the write pool has one connection that begins IMMEDIATE transactions).
type Store struct {
	W, R    *sql.DB
	Dialect Dialect
	Sealer  ironpool.Sealer
	// Now returns the current time; tests replace it to control leases.
	Now func() time.Time
	// OnClose runs after the pools are closed (e.g. to stop a listener).
	OnClose func() error
	// Reachable, when not nil, lists the backend endpoints this server
	// drives: nodes linked to any other are never picked, since nobody here
	// could check them out or clean them. Set by SetReachable.
	Reachable []string
	// QueueAging is how long a queued request waits for its priority to
	// rise by one (ironpool.EffectivePriority); zero means
	// ironpool.DefaultQueueAging, negative turns aging off.
	QueueAging time.Duration
	// ReservationGap is the cleaning gap kept between consecutive holds
	// of a node (leases and reservations); see reservation.go.
	ReservationGap time.Duration

	group  *groupCommit
	batch  *batcher
	tokens tokenCache
	// flavors caches flavors by name, as every allocation reads its
	// items' flavors (flavor.go).
	flavors boundCache[*ironpool.Flavor]
	// free is the in-memory free-node index (free.go); nil when off.
	free *freeindex.Index
	// attrs and traitSets share, between the index's nodes, what many of
	// them have equal (pool, traits, ...); guarded by attrsMu.
	attrsMu   sync.Mutex
	attrs     freeindex.Interner
	traitSets map[string][]string
	// dataVersion is the last Dialect.DataVersion read (also attrsMu).
	dataVersion int64
	// rowHooks is set when the engine reports every row the writer
	// changes (RowChanged: SQLite's one write connection). Then noQuotas
	// caches "the quotas table is empty", the common case, which every
	// allocation asks twice: the writer sets it when its transaction
	// sees no quota, and a change to the table (the hook) or any rollback
	// (groupCommit.rolledBack) clears it.
	rowHooks bool
	noQuotas atomic.Bool
	// batchBetween is a test's hook (SetBatchBetween).
	batchBetween func()
	// faultAfterClaim is a test's fault (SetFaultAfterClaim).
	faultAfterClaim func(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation) error
}

// New returns a store over the given pools.
func New(w, r *sql.DB, d Dialect, sealer ironpool.Sealer) *Store {
	s := &Store{W: w, R: r, Dialect: d, Sealer: sealer, Now: clock.Now}
	if d.GroupCommit {
		s.group = newGroupCommit(w, d.GroupWriters)
		s.group.after = s.afterWrite
		s.group.rolledBack = func() { s.noQuotas.Store(false) }
		if d.DataVersion != "" {
			s.group.begin = func(ctx context.Context, tx *sql.Tx) { s.checkForeignWrites(ctx, tx) }
		}
	}
	if d.BatchLoops > 0 && d.Pipe != nil && !d.GroupCommit {
		s.batch = newBatcher(s, d.BatchLoops)
	}
	return s
}

// WriteStats reports how many write transactions callers ran, how many
// commits they took (with group commit the second is smaller) and how
// long the writer was busy with them.
func (s *Store) WriteStats() (writes, commits int64, busy time.Duration) {
	if s.group == nil {
		return 0, 0, 0
	}
	return s.group.writes.Load(), s.group.commits.Load(), time.Duration(s.group.busy.Load())
}

// Close closes both pools, after the write in progress.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if s.batch != nil {
		s.batch.close()
	}
	err := s.W.Close()
	if s.R != s.W {
		err = errors.Join(err, s.R.Close())
	}
	if s.OnClose != nil {
		err = errors.Join(err, s.OnClose())
	}
	return err
}

// querier is what helpers need from either a *sql.Tx or a *sql.DB.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction and commits it, retrying a few times
// when the engine reports a transient conflict (PostgreSQL deadlock or
// serialization failure). fn must be safe to run again, and must use the
// context it is given, not its caller's (see groupCommit).
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return s.unavailable(s.writeRetry(ctx, fn))
}

func (s *Store) writeRetry(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	var err error
	ctx, holds := s.withHolds(ctx)
	for attempt := 0; attempt < 8; attempt++ {
		// In a group, a transient conflict rolled back only this caller's
		// savepoint; it is run again like a transaction of its own would be.
		if s.group != nil {
			err = s.group.do(ctx, fn)
			s.endHolds(holds)
		} else {
			err = inTx(ctx, s.W, fn)
			if err != nil {
				s.noQuotas.Store(false)
			}
			s.endHolds(holds)
			s.afterWrite(ctx)
		}
		// A pick the free index made and the database refused: the
		// node has been read back (after the group, or just above), so
		// the write runs again at once.
		if errors.Is(err, errStaleIndex) {
			continue
		}
		if err == nil || s.Dialect.Retryable == nil || !s.Dialect.Retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

// inTx runs fn in one transaction on db and commits it unless fn fails.
func inTx(ctx context.Context, db *sql.DB, fn func(ctx context.Context, tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	return tx.Commit()
}

// read runs fn in a read-only transaction, so multi-query reads see one
// snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.R.BeginTx(ctx, &sql.TxOptions{ReadOnly: s.R != s.W})
	if err != nil {
		return s.unavailable(fmt.Errorf("begin: %w", err))
	}
	defer tx.Rollback()
	return s.unavailable(fn(tx))
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// insertEvent records an audit event for the actor in ctx, inside tx.
func (s *Store) insertEvent(ctx context.Context, q querier, action, subject, summary string) error {
	return s.insertEventAt(ctx, q, s.Now(), action, subject, summary)
}

// insertEventAt is insertEvent at the time the transaction decided on, so
// that the log's holds start and end exactly when the usage record's do
// (node-hours computed from either agree).
func (s *Store) insertEventAt(ctx context.Context, q querier, at time.Time, action, subject, summary string) error {
	return s.insertEvents(ctx, q, at, []eventRow{{ctx: ctx, action: action, subject: subject, summary: summary}})
}

// eventRow is one event of insertEvents; its actor comes from ctx.
type eventRow struct {
	ctx                      context.Context
	action, subject, summary string
}

// insertEvents records evs at one time in one statement.
func (s *Store) insertEvents(ctx context.Context, q querier, at time.Time, evs []eventRow) error {
	if len(evs) == 0 {
		return nil
	}
	vals, args := eventValues(evs, at, 0)
	if _, err := q.ExecContext(ctx, insertEventsSQL+vals, args...); err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

// insertEventsSQL is followed by the rows of eventValues.
const insertEventsSQL = `INSERT INTO events (time, actor, role, action, subject, summary) VALUES `

// eventValues renders evs as rows of values at time at, their
// placeholders numbered after base arguments; each actor comes from its
// event's context.
func eventValues(evs []eventRow, at time.Time, base int) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 6*len(evs))
	for i, e := range evs {
		a := ironpool.ActorFromContext(e.ctx)
		if a == nil {
			a = ironpool.System
		}
		if i > 0 {
			b.WriteString(", ")
		}
		k := base + len(args)
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6)
		args = append(args, ms(at), a.TokenID, string(a.Role), e.action, e.subject, e.summary)
	}
	return b.String(), args
}

// AddEvent records an event that no other store change carries.
func (s *Store) AddEvent(ctx context.Context, e *ironpool.Event) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.insertEvent(ctx, tx, e.Action, e.Subject, e.Summary)
	})
}

// FindEvents lists events oldest first.
func (s *Store) FindEvents(ctx context.Context, f ironpool.EventFilter) ([]*ironpool.Event, error) {
	q := `SELECT id, time, actor, role, action, subject, summary FROM events WHERE id > $1 AND time >= $2`
	args := []any{f.AfterID, ms(f.Since)}
	if f.Subject != "" {
		args = append(args, f.Subject)
		q += fmt.Sprintf(" AND subject = $%d", len(args))
	}
	if f.Action != "" {
		args = append(args, f.Action)
		q += fmt.Sprintf(" AND action = $%d", len(args))
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	if f.Tail > 0 {
		q = fmt.Sprintf("SELECT * FROM (%s ORDER BY id DESC LIMIT %d) tail ORDER BY id", q, min(f.Tail, limit))
	} else {
		q += fmt.Sprintf(" ORDER BY id LIMIT %d", limit)
	}
	rows, err := s.R.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("find events: %w", err))
	}
	defer rows.Close()
	var out []*ironpool.Event
	for rows.Next() {
		var e ironpool.Event
		var t int64
		var role string
		if err := rows.Scan(&e.ID, &t, &e.Actor, &role, &e.Action, &e.Subject, &e.Summary); err != nil {
			return nil, err
		}
		e.Time, e.Role = fromMS(t), ironpool.Role(role)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// TryLease takes or renews a lease row; see ironpool.Store.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.Now()
	var got string
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at < $4`,
			name, holder, ms(now.Add(ttl)), ms(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT holder FROM leases WHERE name = $1`, name).Scan(&got)
	})
	if err != nil {
		return false, fmt.Errorf("lease %s: %w", name, err)
	}
	return got == holder, nil
}

// ReleaseLease gives up a lease holder has; see ironpool.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
