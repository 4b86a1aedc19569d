package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/freeindex"
)

// The free-node index (internal/freeindex) answers an allocation's
// candidate reads from memory. How it stays true to the database:
//
//   - Every write that changes a node touches it: on SQLite through the
//     write connection's pre-update hook (RowChanged), on PostgreSQL
//     through a statement trigger that NOTIFYs the changed ids to every
//     replica (FreeNotified). A node picked from the index is touched at
//     once, so that the next write of the same group, or a concurrent
//     transaction, does not pick it too.
//   - After each transaction (on SQLite, after each group commit) the
//     touched nodes are read back from the database (refreshFree).
//   - The claim statement re-checks every picked node (state available,
//     no reservation in the way). A pick the database refuses is a stale
//     index, never a refused request: the write is rolled back and run
//     again (errStaleIndex) once the node has been read back.
//   - A request the index cannot satisfy is asked of the database, so a
//     touched node that has not been read back yet never turns a request
//     down.

// errStaleIndex reports that a node picked from the free index was not free
// in the database; the write is run again.
var errStaleIndex = errors.New("free-node index was behind the database")

// refreshBatch is how many touched nodes one read asks for by id: about
// what one group commit touches.
const refreshBatch = 128

// placeholdersFrom returns "$from,...,$(from+n-1)", for a short list among
// other numbered parameters (the claim's nodes); a statement of only a
// long list uses Store.placeholders.
func placeholdersFrom(from, n int) string {
	ph := make([]string, n)
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(ph, ",")
}

// EnableFreeIndex builds the free-node index and makes allocations use it.
// The engine must report node changes (RowChanged or FreeNotified).
func (s *Store) EnableFreeIndex(ctx context.Context) error {
	s.free = freeindex.New()
	return s.refreshFree(ctx, true)
}

// FreeIndexOn reports whether the store keeps the free-node index.
func (s *Store) FreeIndexOn() bool { return s.free != nil }

// RowChanged is the SQLite write connection's pre-update hook: a row of
// table is about to change. EnableRowHooks must have been called.
func (s *Store) RowChanged(table string, rowid int64) {
	if table == "quotas" {
		s.noQuotas.Store(false)
		return
	}
	if s.free == nil {
		return
	}
	switch table {
	case "nodes":
		s.free.Touch(rowid)
	case "reservations", "reservation_nodes":
		s.free.TouchReservations()
	}
}

// EnableRowHooks says that RowChanged is called for every row the write
// connection changes; the store may then cache what those rows decide.
// Call it once, before the store is shared, after installing the hook.
func (s *Store) EnableRowHooks() { s.rowHooks = true }

// FreeNotified handles a PostgreSQL notification of changed nodes: a
// comma-separated list of ids, "r" for reservations, "*" for more nodes
// than a notification lists, or "" when notifications may have been lost
// (the listener reconnected).
func (s *Store) FreeNotified(payload string) {
	if s.free == nil {
		return
	}
	switch payload {
	case "", "*":
		s.free.TouchAll()
		return
	case "r":
		s.free.TouchReservations()
		return
	}
	for f := range strings.SplitSeq(payload, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			s.free.TouchAll()
			return
		}
		s.free.Touch(id)
	}
}

// RefreshFreeIndex reads back what the index is waiting for (the engine's
// change listener calls it).
func (s *Store) RefreshFreeIndex(ctx context.Context) error { return s.refreshFree(ctx, true) }

// refreshFree reads back what the index is waiting for. Unless rebuild is
// set it leaves a whole rebuild to the engine's listener, so that a
// request never waits for one.
func (s *Store) refreshFree(ctx context.Context, rebuild bool) error {
	if s.free == nil {
		return nil
	}
	w := s.free.Pending()
	if w.Empty() || w.All && !rebuild {
		return nil
	}
	r, err := s.readFree(ctx, w)
	if err != nil {
		s.free.Abandon(w)
		return err
	}
	s.free.Apply(w, r)
	return nil
}

// readFree reads what w asks for.
func (s *Store) readFree(ctx context.Context, w freeindex.Work) (freeindex.Result, error) {
	var r freeindex.Result
	// Touched nodes are read by id alone, state included: with the state
	// in the WHERE clause SQLite walks the state index over every free
	// node instead of looking the few ids up.
	q := `SELECT id, name, pool, cpus, memory_mb, local_gb, last_allocated_at, cpu_arch, resource_class, traits,
		ironic_uuid IS NOT NULL, ironic_endpoint, state FROM nodes`
	if w.All {
		var n int
		if err := s.freeReader().QueryRowContext(ctx, `SELECT COUNT(*) FROM nodes WHERE state = 'available'`).Scan(&n); err == nil {
			r.Free = make([]freeindex.Node, 0, n+n/16)
		}
		if err := s.scanFree(ctx, &r, q+` WHERE state = 'available'`); err != nil {
			return r, err
		}
	}
	// Touched nodes are read at most refreshBatch ids at a time, in
	// reads of 8, 32 or 128 ids, the last padded with its last id, so that
	// three prepared statements serve every read.
	for start := 0; start < len(w.IDs); {
		ids := w.IDs[start:min(len(w.IDs), start+refreshBatch)]
		size := 8
		for size < len(ids) {
			size *= 4
		}
		args := make([]any, size)
		for i := range args {
			args[i] = ids[min(i, len(ids)-1)]
		}
		var in strings.Builder
		s.placeholders(&in, 0, size)
		if err := s.scanFree(ctx, &r, q+` WHERE id IN `+in.String(), args...); err != nil {
			return r, err
		}
		start += len(ids)
	}
	if w.Reservations {
		res, err := s.reservationStarts(ctx, s.freeReader())
		if err != nil {
			return r, err
		}
		r.Reserved = res
	}
	return r, nil
}

// checkForeignWrites forgets what the hooks taught (the free index, "no
// quotas") when another connection (another process on the same SQLite
// file, or a hand-run sqlite3) committed since the last look: its writes
// reached no hook of ours. SQLite's data_version changes exactly then, on
// the write connection, which is the only connection of this process that
// writes. The writer runs it first in every transaction (q is then the
// transaction, which holds the write lock, so nobody commits after it).
func (s *Store) checkForeignWrites(ctx context.Context, q querier) {
	var v int64
	if err := q.QueryRowContext(ctx, s.Dialect.DataVersion).Scan(&v); err != nil {
		s.noQuotas.Store(false)
		return
	}
	s.attrsMu.Lock()
	seen := s.dataVersion
	s.dataVersion = v
	s.attrsMu.Unlock()
	if seen != 0 && v != seen {
		s.noQuotas.Store(false)
		s.free.TouchAll()
	}
}

// freeReader is the pool the index reads back from. With one writer
// (SQLite) that is the write connection, idle between groups when the
// writer loop reads: its page cache is warm, while a read connection
// drops its whole cache whenever another connection has committed, and
// so would read every page again after each group.
func (s *Store) freeReader() *sql.DB {
	if s.group != nil && s.Dialect.LockSkip == "" {
		return s.W
	}
	return s.R
}

// scanFree appends to r the available nodes among the rows q returns.
func (s *Store) scanFree(ctx context.Context, r *freeindex.Result, q string, args ...any) error {
	rows, err := s.freeReader().QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("free index: %w", err)
	}
	defer rows.Close()
	s.attrsMu.Lock()
	defer s.attrsMu.Unlock()
	if s.attrs == nil {
		s.attrs, s.traitSets = freeindex.Interner{}, map[string][]string{}
	}
	for rows.Next() {
		var n freeindex.Node
		var a freeindex.Attrs
		var traits, state string
		if err := rows.Scan(&n.ID, &n.Name, &a.Pool, &n.CPUs, &n.MemoryMB, &n.LocalGB, &n.Last,
			&a.CPUArch, &a.ResourceClass, &traits, &a.Linked, &a.Endpoint, &state); err != nil {
			return fmt.Errorf("free index: %w", err)
		}
		if state != string(ironpool.NodeAvailable) {
			continue
		}
		ts, ok := s.traitSets[traits]
		if !ok {
			ts = splitTraits(traits)
			s.traitSets[traits] = ts
		}
		a.Traits = ts
		n.Attrs = s.attrs.Intern(a, traits)
		r.Free = append(r.Free, n)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("free index: %w", err)
	}
	return nil
}

// reservationStarts maps each node with a pending reservation to the
// earliest start among them (ms).
func (s *Store) reservationStarts(ctx context.Context, q querier) (map[int64]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT rn.node_id, MIN(r.start_at) FROM reservation_nodes rn
		JOIN reservations r ON r.id = rn.reservation_id WHERE r.state = $1 GROUP BY rn.node_id`, string(ironpool.ResPending))
	if err != nil {
		return nil, fmt.Errorf("free index reservations: %w", err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, start int64
		if err := rows.Scan(&id, &start); err != nil {
			return nil, err
		}
		out[id] = start
	}
	return out, rows.Err()
}

// matchFree is match answered by the index, for a request without topology
// whose exclusions the index can apply. ok is false when the index is not
// ready or cannot satisfy the request: the caller then asks the database,
// which may know of nodes the index has not read back yet. The picked
// nodes are held until the write ends (see writeHolds), so nobody else
// picks them meanwhile.
//
// Where rows are locked (PostgreSQL), the picks are locked here, skipping
// rows others hold, before the claim reads anything else: a reservation
// booked on a node locks it first, so the claim statement that follows
// (a new snapshot) sees every booking committed before the lock. A pick
// that cannot be locked sends the request to the database.
func (s *Store) matchFree(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, ex ...excluder) ([][]candidate, bool, error) {
	if s.free == nil || a.Topology != nil || !s.free.Ready() {
		return nil, false, nil
	}
	var until int64
	var queued exclusion
	for _, e := range ex {
		switch e := e.(type) {
		case untilExclusion:
			until = e.until
		case exclusion:
			queued = e
		default:
			return nil, false, nil
		}
	}
	skip := func(n *freeindex.Node) bool {
		if s.Reachable != nil && n.Linked && !slices.Contains(s.Reachable, n.Endpoint) {
			return true
		}
		for i := range queued {
			if n.Matches(&queued[i]) {
				return true
			}
		}
		return false
	}
	picks, ok, _ := matchItems(a, func(c *ironpool.Constraints, need int) ([]candidate, error) {
		var out []candidate
		for _, n := range s.free.Pick(c, need, until, skip) {
			out = append(out, candidate{id: n.ID, name: n.Name, cpus: n.CPUs, memoryMB: n.MemoryMB,
				localGB: n.LocalGB, last: n.Last, fromIndex: true})
		}
		return out, nil
	})
	if !ok {
		return nil, false, nil
	}
	var ids []int64
	for _, p := range picks {
		for _, n := range p {
			ids = append(ids, n.id)
		}
	}
	s.free.Hold(ids)
	if h, ok := ctx.Value(holdsKey{}).(*[]int64); ok {
		*h = append(*h, ids...)
	} else {
		defer s.free.Unhold(ids) // not inside write: nobody would end the hold
	}
	if s.Dialect.LockSkip != "" {
		ph := make([]string, len(ids))
		args := make([]any, len(ids))
		for i, id := range ids {
			ph[i], args[i] = fmt.Sprintf("$%d", i+1), id
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM nodes WHERE id IN (`+strings.Join(ph, ",")+`) AND state = 'available' `+
			s.Dialect.LockSkip, args...)
		if err != nil {
			return nil, false, fmt.Errorf("lock picks: %w", err)
		}
		locked := 0
		for rows.Next() {
			locked++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, fmt.Errorf("lock picks: %w", err)
		}
		if locked < len(ids) {
			return nil, false, nil
		}
	}
	return picks, true, nil
}

// holdsKey carries, in a write's context, the nodes its attempts picked
// from the index, so that writeRetry ends their hold when the attempt's
// transaction has ended.
type holdsKey struct{}

// withHolds returns ctx carrying an empty hold list, when the index is on.
func (s *Store) withHolds(ctx context.Context) (context.Context, *[]int64) {
	if s.free == nil {
		return ctx, nil
	}
	h := new([]int64)
	return context.WithValue(ctx, holdsKey{}, h), h
}

// endHolds ends the holds of an attempt whose transaction has ended.
func (s *Store) endHolds(h *[]int64) {
	if h == nil || len(*h) == 0 {
		return
	}
	s.free.Unhold(*h)
	*h = (*h)[:0]
}

// CheckFreeIndex compares the index with the database: the free set and
// the reservation starts must be equal, and for each constraint set the
// index must pick what the SQL candidate query reads. It reads back what
// is pending first, so it describes the index at rest; for tests.
func (s *Store) CheckFreeIndex(ctx context.Context, probes []ironpool.Constraints) error {
	if s.free == nil {
		return errors.New("free index is off")
	}
	// A write that changes nothing lets the writer look for other
	// connections' commits first (Dialect.DataVersion, checked at the
	// start of every write transaction).
	if err := s.write(ctx, func(context.Context, *sql.Tx) error { return nil }); err != nil {
		return err
	}
	if err := s.refreshFree(ctx, true); err != nil {
		return err
	}
	if !s.free.Ready() {
		return errors.New("free index is not ready after a refresh")
	}
	got, res := s.free.Snapshot()
	var want []int64
	rows, err := s.R.QueryContext(ctx, `SELECT id FROM nodes WHERE state = $1 ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id`,
		string(ironpool.NodeAvailable))
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		want = append(want, id)
	}
	rows.Close()
	gotIDs := make([]int64, len(got))
	for i, n := range got {
		gotIDs[i] = n.ID
	}
	if !slices.Equal(gotIDs, want) {
		return fmt.Errorf("free set: index has %d nodes %v, database %d %v", len(gotIDs), head(gotIDs), len(want), head(want))
	}
	wantRes, err := s.reservationStarts(ctx, s.R)
	if err != nil {
		return err
	}
	if len(res) != len(wantRes) {
		return fmt.Errorf("reservation starts: index has %d nodes, database %d", len(res), len(wantRes))
	}
	for id, t := range wantRes {
		if res[id] != t {
			return fmt.Errorf("reservation start of node %d: index %d, database %d", id, res[id], t)
		}
	}
	until := ms(s.Now().Add(s.ReservationGap + time.Hour))
	for _, c := range probes {
		sqlPicks, err := s.candidates(ctx, s.R, &c, 8, "", untilExclusion{until})
		if err != nil {
			return err
		}
		memPicks := s.free.Pick(&c, 8, until, nil)
		a, b := make([]int64, len(sqlPicks)), make([]int64, len(memPicks))
		for i, n := range sqlPicks {
			a[i] = n.id
		}
		for i, n := range memPicks {
			b[i] = n.ID
		}
		if !slices.Equal(a, b) {
			return fmt.Errorf("candidates for %s: index %v, database %v", c, b, a)
		}
	}
	return nil
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 12)] }

// afterWrite is the transaction-end step of a write: the nodes the write
// touched are read back. Errors only delay the index (the nodes stay out of
// it and are read on the next round), so they are not the write's.
func (s *Store) afterWrite(ctx context.Context) {
	if s.free == nil {
		return
	}
	// The single writer (SQLite's group loop) may rebuild: nothing else
	// would. Concurrent writers (PostgreSQL) leave that to the listener.
	_ = s.refreshFree(context.WithoutCancel(ctx), s.group != nil && s.Dialect.LockSkip == "")
}
