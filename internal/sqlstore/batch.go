package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/alloc"
)

// maxBatch bounds how many calls one batch serves, so one commit never
// waits on an unbounded line and its statements stay far below the
// engine's parameter limit.
const maxBatch = 32

// batchTimeout bounds one batch, statements and commit; a healthy batch
// takes milliseconds.
const batchTimeout = 30 * time.Second

// batcher serves concurrent allocations and releases by id on an engine
// with row locks (PostgreSQL) a batch at a time, each batch in one
// transaction of set-based statements: one candidate read per distinct
// item, then one INSERT or UPDATE per table for the whole batch, and one
// commit. There, the cost of an allocation is not its commit's WAL flush
// (measured: synchronous_commit off changes nothing) but the server's
// work per statement, about twenty-five statements per allocate+release
// pair when each call runs alone, and a batch shares them.
//
// A batch only ever serves a call the way the call's own transaction
// would have; whatever it is not sure of, it leaves to that transaction.
// A call is left unserved (and runs the ordinary way, after the batch)
// when a quota exists, when it would queue, when its item's candidates
// ran out in the batch's read, when its allocation is not found or not
// live, and when anything in the batch's transaction fails before the
// commit, which rolls the batch back whole. So refusals, error messages
// and the queue stay where they are written once (Allocate, release).
//
// Picks come from rows the batch locked with the dialect's skipping lock,
// and the claim checks every row is still available, as Allocate's does:
// a node is never handed out twice however batches and lone transactions
// interleave. A failed commit is reported to the calls it served, as a
// lone transaction's would be (the allocation may or may not stand).
type batcher struct {
	ops  chan *batchOp
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// batches run, and calls they served (tests, and PERFORMANCE.md's
	// figures of calls per batch).
	batches, served atomic.Int64
}

// batchOp is one call waiting for a batch: an allocation (alloc set) or a
// release by id (releaseID set).
type batchOp struct {
	ctx context.Context

	alloc *ironpool.Allocation
	queue bool
	picks [][]candidate

	releaseID   string
	check       func(owner string, state ironpool.AllocationState) error
	final       ironpool.AllocationState
	cleanInline bool
	released    *ironpool.Allocation

	ok       bool // served inside the transaction in progress
	served   bool // served, and the batch committed
	err      error
	panicked any
	done     chan struct{}
}

// newBatcher starts loops batches; each runs on a connection of its own,
// so one batch's commit overlaps the next one's statements.
func newBatcher(s *Store, loops int) *batcher {
	b := &batcher{ops: make(chan *batchOp), stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for range max(loops, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.loop(s)
		}()
	}
	go func() {
		wg.Wait()
		close(b.done)
	}()
	return b
}

// BatchStats reports how many batches ran and how many calls they
// served; on is false when batching is off.
func (s *Store) BatchStats() (batches, served int64, on bool) {
	if s.batch == nil {
		return 0, 0, false
	}
	return s.batch.batches.Load(), s.batch.served.Load(), true
}

// batching reports whether a call may go to the batcher: the free-node
// index and a test's claim fault each need the lone transaction.
func (s *Store) batching() bool {
	return s.batch != nil && s.free == nil && s.faultAfterClaim == nil
}

// run hands op to the next batch and waits for it. served false with a
// nil error means the caller must run its own transaction.
func (b *batcher) run(ctx context.Context, op *batchOp) (*batchOp, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	op.ctx, op.done = ctx, make(chan struct{})
	select {
	case b.ops <- op:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stop:
		return nil, errClosed
	}
	// Once taken, the batch may be writing op, so wait for it.
	<-op.done
	if op.panicked != nil {
		panic(op.panicked)
	}
	return op, op.err
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

func (b *batcher) loop(s *Store) {
	ops := make([]*batchOp, 0, maxBatch)
	for {
		var ok bool
		if ops, ok = gather(b.ops, b.stop, ops, maxBatch); !ok {
			return
		}
		s.runBatch(ops)
		clear(ops)
	}
}

// runBatch serves what it can of ops in one transaction and wakes every
// caller.
func (s *Store) runBatch(ops []*batchOp) {
	// No caller's cancellation reaches a batch (one client leaving must
	// not fail its neighbours), so a database that stops answering is
	// bounded here: the batch fails, and each call then runs alone under
	// its own context.
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var tx *sql.Tx
	defer func() {
		if p := recover(); p != nil {
			// Re-raised in every caller's goroutine, where the HTTP
			// server's recovery handles it; nothing was committed.
			if tx != nil {
				tx.Rollback()
			}
			msg := fmt.Sprintf("%v\n\nbatch's stack:\n%s", p, debug.Stack())
			for _, op := range ops {
				op.ok, op.served, op.panicked = false, false, msg
				close(op.done)
			}
		}
	}()
	tx, err := s.W.BeginTx(ctx, nil)
	if err == nil {
		if err = s.batchTx(ctx, tx, ops); err != nil {
			tx.Rollback()
		}
	}
	served := 0
	if err == nil {
		for _, op := range ops {
			if op.ok {
				served++
			}
		}
		if served == 0 {
			tx.Rollback()
		} else if cerr := tx.Commit(); cerr != nil {
			// The calls it served may or may not stand, as after a lone
			// transaction's failed commit: they get the error.
			for _, op := range ops {
				if op.ok {
					op.err = fmt.Errorf("commit: %w", cerr)
				}
			}
		} else {
			// Counted before any caller wakes, so a caller that reads
			// the stats after its call returns sees its batch.
			s.batch.batches.Add(1)
			s.batch.served.Add(int64(served))
		}
	}
	for _, op := range ops {
		// A batch that failed before its commit wrote nothing: every
		// call runs alone, and the error reaches a caller from there.
		op.served = err == nil && op.ok && op.err == nil
		close(op.done)
	}
}

func (s *Store) batchTx(ctx context.Context, tx *sql.Tx, ops []*batchOp) error {
	now := s.Now().UTC()
	var rels, allocs []*batchOp
	for _, op := range ops {
		op.ok = false
		if op.alloc != nil {
			allocs = append(allocs, op)
		} else {
			rels = append(rels, op)
		}
	}
	// Releases first: an allocation in the same batch may then take the
	// nodes they free, as it would in the transaction after.
	evs, err := s.batchRelease(ctx, tx, rels, now)
	if err != nil {
		return err
	}
	written, err := s.batchAllocate(ctx, tx, allocs, now, evs)
	if err != nil || written {
		return err
	}
	return s.insertEvents(ctx, tx, now, evs)
}

// batchRelease ends the live allocations among rels, in id order (the
// order every batch locks them in, so two batches never wait on each
// other in a cycle).
func (s *Store) batchRelease(ctx context.Context, tx *sql.Tx, rels []*batchOp, now time.Time) ([]eventRow, error) {
	if len(rels) == 0 {
		return nil, nil
	}
	var ids []any
	seen := map[string]bool{}
	for _, op := range rels {
		if !seen[op.releaseID] {
			seen[op.releaseID] = true
			ids = append(ids, op.releaseID)
		}
	}
	rows, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations WHERE id IN (`+
		placeholdersFrom(1, len(ids))+`) ORDER BY id `+s.Dialect.LockWait, ids...)
	if err != nil {
		return nil, err
	}
	byID := map[string]*ironpool.Allocation{}
	for _, r := range rows {
		byID[r.alloc.ID] = r.alloc
	}
	// One statement per kind of release; every caller of a server passes
	// the same final state and cleaning, so there is one kind.
	type kind struct {
		final       ironpool.AllocationState
		was         ironpool.AllocationState
		cleanInline bool
	}
	kinds := map[kind][]*batchOp{}
	var order []kind
	for _, op := range rels {
		a := byID[op.releaseID]
		// Not found, already ended, or the second call for one id: the
		// lone transaction answers those (not found, idempotent).
		if a == nil || !a.State.Live() {
			continue
		}
		// A refusal is the lone transaction's to return, with nothing
		// of it written.
		if op.check != nil && op.check(a.Owner, a.State) != nil {
			continue
		}
		delete(byID, op.releaseID)
		op.released = a
		k := kind{op.final, a.State, op.cleanInline}
		if kinds[k] == nil {
			order = append(order, k)
		}
		kinds[k] = append(kinds[k], op)
	}
	linked := map[string]int{}
	for _, k := range order {
		group := kinds[k]
		gids := make([]any, len(group))
		for i, op := range group {
			gids[i] = op.releaseID
		}
		// One statement (PostgreSQL runs data-modifying WITH clauses to
		// completion whether the main query reads them or not): the
		// allocations, their usage and their nodes. It returns a row per
		// node released (one row with no node, when none was held), each
		// carrying how many allocations changed state.
		ph := placeholdersFrom(5, len(gids))
		rows, err := tx.QueryContext(ctx, `WITH al AS (UPDATE allocations SET state = $3, released_at = $1
				WHERE id IN (`+ph+`) AND state = $4 RETURNING 1),
			us AS (UPDATE usage_log SET end_ms = $1 WHERE allocation_id IN (`+ph+`) AND end_ms = 0 RETURNING 1),
			n AS (UPDATE nodes SET allocation_id = NULL, owner = '', updated_at = $1,
				state = CASE WHEN ironic_uuid IS NULL AND $2 THEN 'available' ELSE 'cleaning' END,
				pending = CASE WHEN ironic_uuid IS NULL AND $2 THEN '' ELSE 'clean' END
				WHERE allocation_id IN (`+ph+`) RETURNING id, ironic_uuid)
			SELECT (SELECT COUNT(*) FROM al), n.id, n.ironic_uuid FROM (SELECT 1) one LEFT JOIN n ON true`,
			append([]any{ms(now), k.cleanInline, string(k.final), string(k.was)}, gids...)...)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		var ironicNodes []any
		ended := int64(-1)
		for rows.Next() {
			var id sql.NullInt64
			var u sql.NullString
			if err := rows.Scan(&ended, &id, &u); err != nil {
				rows.Close()
				return nil, fmt.Errorf("release: %w", err)
			}
			if u.Valid {
				ironicNodes = append(ironicNodes, id.Int64)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		// Read under their locks: any other count means a bug, and the
		// lone transactions must answer instead.
		if ended != int64(len(gids)) {
			return nil, fmt.Errorf("release %d allocations: %d were still %s", len(gids), ended, k.was)
		}
		// RETURNING shows allocation_id already cleared: which allocation
		// an Ironic node was released from (for the event) is read back
		// from allocation_nodes, only when there are any.
		if len(ironicNodes) > 0 {
			if err := countLinked(ctx, tx, linked, gids, ironicNodes); err != nil {
				return nil, err
			}
		}
	}
	var evs []eventRow
	for _, k := range order {
		for _, op := range kinds[k] {
			a := op.released
			a.State, a.ReleasedAt = k.final, now
			evs = append(evs, eventRow{ctx: op.ctx, action: "allocation." + string(k.final), subject: "allocation/" + a.ID,
				summary: releaseSummary(a, k.was, k.cleanInline, linked[a.ID])})
			op.ok = true
		}
	}
	return evs, nil
}

// readKey names one candidate read of a batch: an item's constraints and
// the time until which its lease keeps the node from reservations.
type readKey struct {
	constraints string
	until       int64
}

// batchList is one read's candidates in best-fit order; full is set when
// the read returned as many rows as it asked for, so nodes past its end
// may exist.
type batchList struct {
	c     *ironpool.Constraints
	until int64
	limit int
	nodes []candidate
	full  bool
}

// batchAllocate serves the allocations of allocs that the nodes it reads
// satisfy, in arrival order, each with the exact matcher over the best
// Need(counts) candidates per item that the calls before it left.
func (s *Store) batchAllocate(ctx context.Context, tx *sql.Tx, allocs []*batchOp, now time.Time, evs []eventRow) (written bool, err error) {
	if len(allocs) == 0 {
		return false, nil
	}
	// Quotas are checked, and counted against, one transaction at a time
	// (quota.go): with any quota defined, every call runs alone.
	var quotas int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM quotas`).Scan(&quotas); err != nil {
		return false, err
	}
	if quotas > 0 {
		return false, nil
	}
	reserved, err := s.queuedItems(ctx, tx, 0)
	if err != nil {
		return false, err
	}
	waiting := len(reserved) > 0
	reads := map[readKey]*batchList{}
	// listOf names the read of each item (by its constraints' address,
	// which is what the matcher hands back).
	listOf := map[*ironpool.Constraints]readKey{}
	var want []*batchOp
	for _, op := range allocs {
		a := op.alloc
		// Anything a queue is waiting for goes to the queue, by
		// Allocate's own rules.
		if op.queue && waiting {
			continue
		}
		want = append(want, op)
		stamp(a, now, a.TTL)
		counts := make([]int, len(a.Items))
		for i, it := range a.Items {
			counts[i] = it.Count
		}
		need := alloc.Need(counts)
		until := ms(a.ExpiresAt.Add(s.ReservationGap))
		mine := map[readKey]bool{}
		for i := range a.Items {
			c := &a.Items[i].Constraints
			k := readKey{constraintKey(c), until}
			listOf[c] = k
			l := reads[k]
			if l == nil {
				l = &batchList{c: c, until: until}
				reads[k] = l
			}
			// Each call that reads a list may take need nodes off it.
			// When the constraints of two lists overlap, calls of the
			// other list may take some too: the call that then finds
			// too few left is not served (short, below), so the read
			// is sized for the common case of disjoint items.
			if !mine[k] {
				mine[k] = true
				l.limit += need
			}
		}
	}
	if len(want) == 0 {
		return false, nil
	}
	for _, l := range reads {
		l.nodes, err = s.candidates(ctx, tx, l.c, l.limit, s.Dialect.LockSkip, reserved, untilExclusion{l.until})
		if err != nil {
			return false, err
		}
		l.full = len(l.nodes) == l.limit
	}
	taken := map[int64]bool{}
	var served []*batchOp
	for _, op := range want {
		a := op.alloc
		short := false
		picks, ok, _ := matchItems(a, func(c *ironpool.Constraints, need int) ([]candidate, error) {
			l := reads[listOf[c]]
			out := make([]candidate, 0, need)
			for _, n := range l.nodes {
				if len(out) == need {
					break
				}
				if !taken[n.id] {
					out = append(out, n)
				}
			}
			// Fewer left than the matcher needs, and more may exist past
			// the read: only the lone transaction can answer exactly.
			short = short || (len(out) < need && l.full)
			return out, nil
		})
		if !ok || short {
			continue
		}
		for _, p := range picks {
			for _, n := range p {
				taken[n.id] = true
			}
		}
		setPicks(a, picks)
		op.picks = picks
		served = append(served, op)
	}
	if len(served) == 0 {
		return false, nil
	}
	if err := s.batchClaim(ctx, tx, served, now, evs); err != nil {
		return false, err
	}
	for _, op := range served {
		op.ok = true
	}
	return true, nil
}

// batchClaim writes the served allocations in one statement: their rows,
// their nodes' allocation_nodes, usage and event rows (with evs, the
// events of the batch's releases) in WITH clauses, around the claim of
// their nodes, which checks each node is still available and not
// reserved, as claim does, and returns the nodes.
func (s *Store) batchClaim(ctx context.Context, tx *sql.Tx, served []*batchOp, now time.Time, evs []eventRow) error {
	var q strings.Builder
	args := []any{string(ironpool.NodeAllocated), ms(now)}
	var claims, an []string
	var usage []string
	total := 0
	for _, op := range served {
		a := op.alloc
		pending := checkoutPending(a)
		until := ms(a.ExpiresAt.Add(s.ReservationGap))
		counts := make([]int, len(op.picks))
		for i, p := range op.picks {
			counts[i] = len(p)
			for _, n := range p {
				total++
				k := len(args)
				claims = append(claims, fmt.Sprintf("(CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS BIGINT))",
					k+1, k+2, k+3, k+4, k+5))
				an = append(an, fmt.Sprintf("($%d, $%d, $%d)", k+2, k+1, k+6))
				args = append(args, n.id, a.ID, a.Owner, pending, until, i)
			}
		}
		v, u := usageRows(a, counts, now, len(args))
		usage, args = append(usage, v...), append(args, u...)
		evs = append(evs, eventRow{ctx: op.ctx, action: "allocation.created", subject: "allocation/" + a.ID,
			summary: fmt.Sprintf("%s took %s", a.Owner, itemsSummary(a.Items))})
	}
	q.WriteString(`WITH al AS (INSERT INTO allocations (` + allocationInsertColumns + `) VALUES `)
	for i, op := range served {
		if i > 0 {
			q.WriteString(", ")
		}
		row := allocationRow(op.alloc, ironpool.AllocActive, op.alloc.TTL)
		s.placeholders(&q, len(args), len(row))
		args = append(args, row...)
	}
	q.WriteString(` RETURNING 1),
		an AS (INSERT INTO allocation_nodes (allocation_id, node_id, item) VALUES ` + strings.Join(an, ", ") + ` RETURNING 1),
		ev AS (` + insertEventsSQL)
	v, e := eventValues(evs, now, len(args))
	q.WriteString(v + ` RETURNING 1)`)
	args = append(args, e...)
	if len(usage) > 0 {
		q.WriteString(`, us AS (` + insertUsageSQL + strings.Join(usage, ", ") + ` RETURNING 1)`)
	}
	// RETURNING gives each allocation its nodes as they now stand, so no
	// call reads them again after the commit (as Allocate's loadNodes).
	q.WriteString(` UPDATE nodes SET state = $1, allocation_id = v.column2, owner = v.column3,
		last_allocated_at = $2, updated_at = $2,
		pending = CASE WHEN nodes.ironic_uuid IS NULL THEN '' ELSE v.column4 END
		FROM (VALUES ` + strings.Join(claims, ", ") + `) AS v
		WHERE nodes.id = v.column1 AND nodes.state = 'available' AND ` + reservedCond("v.column5") +
		` RETURNING ` + nodeColumns)
	nodes, err := s.queryNodes(ctx, tx, q.String(), args...)
	if err != nil {
		return fmt.Errorf("claim nodes: %w", err)
	}
	if len(nodes) != total {
		// Locked by this transaction, so only a reservation booked since
		// the read can do this: the lone transactions sort it out.
		return fmt.Errorf("claim nodes: %d of %d still free", len(nodes), total)
	}
	byAlloc := map[string][]*ironpool.Node{}
	for _, n := range nodes {
		byAlloc[n.AllocationID] = append(byAlloc[n.AllocationID], n)
	}
	for _, op := range served {
		op.alloc.Nodes = byAlloc[op.alloc.ID]
		slices.SortFunc(op.alloc.Nodes, func(a, b *ironpool.Node) int { return strings.Compare(a.Name, b.Name) })
	}
	return nil
}

// constraintKey identifies equal constraints (the JSON encoding is
// canonical for a struct: fields in order, traits as listed).
func constraintKey(c *ironpool.Constraints) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// countLinked adds to linked, per allocation of ids, how many of nodes
// it held.
func countLinked(ctx context.Context, tx *sql.Tx, linked map[string]int, ids, nodes []any) error {
	rows, err := tx.QueryContext(ctx, `SELECT allocation_id FROM allocation_nodes WHERE allocation_id IN (`+
		placeholdersFrom(1, len(ids))+`) AND node_id IN (`+placeholdersFrom(1+len(ids), len(nodes))+`)`, append(ids, nodes...)...)
	if err != nil {
		return fmt.Errorf("released Ironic nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		linked[id]++
	}
	return rows.Err()
}
