package sqlstore

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
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
// item, then one statement for the releases and one for the allocations,
// and one commit, sent in two round trips (batchPipe). There, the cost of
// an allocation is not its commit's WAL flush
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
	defer func() {
		if p := recover(); p != nil {
			// Re-raised in every caller's goroutine, where the HTTP
			// server's recovery handles it. Nothing was committed:
			// database/sql discards a connection whose Raw panicked,
			// and PostgreSQL rolls back what it held.
			msg := fmt.Sprintf("%v\n\nbatch's stack:\n%s", p, debug.Stack())
			for _, op := range ops {
				op.ok, op.served, op.panicked = false, false, msg
				close(op.done)
			}
		}
	}()
	var commitErr error
	conn, err := s.W.Conn(ctx)
	if err == nil {
		err = conn.Raw(func(dc any) error {
			p := s.Dialect.Pipe(dc)
			var err error
			if commitErr, err = s.batchPipe(ctx, p, ops); err != nil || !anyOK(ops) {
				if rerr := p.Send(ctx, []Piped{{SQL: "ROLLBACK"}}); rerr != nil {
					// The connection's state is unknown: database/sql
					// drops it, and PostgreSQL ends the transaction.
					return errors.Join(err, driver.ErrBadConn)
				}
			}
			return err
		})
		conn.Close()
	}
	if err == nil {
		if commitErr != nil {
			// The calls it served may or may not stand, as after a lone
			// transaction's failed commit: they get the error.
			for _, op := range ops {
				if op.ok {
					op.err = fmt.Errorf("commit: %w", commitErr)
				}
			}
		} else if served := countOK(ops); served > 0 {
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

func anyOK(ops []*batchOp) bool { return countOK(ops) > 0 }

func countOK(ops []*batchOp) int {
	n := 0
	for _, op := range ops {
		if op.ok {
			n++
		}
	}
	return n
}

// batchReads is what a batch's first round trip read.
type batchReads struct {
	// byID holds the allocations to release, locked.
	byID map[string]*ironpool.Allocation
	// linked counts, per allocation to release, the Ironic nodes it holds.
	linked map[string]int
	quotas int
	// reserved holds the queued requests' items.
	reserved exclusion
	// lists are the candidate reads, listOf names each item's, and want
	// holds the allocations they were read for (see candidateReads).
	lists  map[readKey]*batchList
	listOf map[*ironpool.Constraints]readKey
	want   []*batchOp
}

// batchPipe runs a batch in two round trips on p: BEGIN with every read
// (the releases' allocations, locked, and the candidates, locked with the
// skipping lock), then every write with the COMMIT. Whatever the writes
// must find is checked inside their statements (ironpool_check), since
// nothing can stop the COMMIT in between. commitErr is the COMMIT's own
// failure; err any failure before it, after which nothing is written.
func (s *Store) batchPipe(ctx context.Context, p Pipe, ops []*batchOp) (commitErr, err error) {
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
	r := &batchReads{}
	qs := append([]Piped{{SQL: "BEGIN"}, genericPlans}, s.releaseReads(rels, r)...)
	if len(allocs) > 0 {
		qs = append(qs, Piped{SQL: `SELECT COUNT(*) FROM quotas`, Rows: func(rows Rows) error {
			for rows.Next() {
				if err := rows.Scan(&r.quotas); err != nil {
					return err
				}
			}
			return rows.Err()
		}}, Piped{SQL: queuedItemsSQL, Rows: func(rows Rows) (err error) {
			r.reserved, err = scanQueuedItems(rows)
			return err
		}})
		// Read as if nothing were queued, the common case; reread below
		// when something is.
		qs = append(qs, customPlans)
		qs = append(qs, s.candidateReads(allocs, now, nil, r)...)
	}
	if err := p.Send(ctx, qs); err != nil {
		return nil, err
	}
	if len(r.reserved) > 0 && r.quotas == 0 {
		if err := p.Send(ctx, s.candidateReads(allocs, now, r.reserved, r)); err != nil {
			return nil, err
		}
	}
	if s.batchBetween != nil {
		s.batchBetween()
	}
	qs, evs := s.releaseWrites(rels, r, now)
	qs = append([]Piped{genericPlans}, qs...)
	// Quotas are checked, and counted against, one transaction at a time
	// (quota.go): with any quota defined, every allocation runs alone.
	if r.quotas == 0 {
		if claim := s.batchClaim(r, now, evs); claim != nil {
			qs, evs = append(qs, *claim), nil
		}
	}
	if len(evs) > 0 {
		vals, args := eventValues(evs, now, 0)
		qs = append(qs, Piped{SQL: insertEventsSQL + vals, Args: args})
	}
	if !anyOK(ops) {
		return nil, nil
	}
	qs = append(qs, Piped{SQL: "COMMIT"})
	if err := p.Send(ctx, qs); err != nil {
		var pe *PipeError
		if errors.As(err, &pe) && pe.Index == len(qs)-1 {
			return pe.Err, nil
		}
		for _, op := range ops {
			op.ok = false
		}
		return nil, err
	}
	return nil, nil
}

// genericPlans and customPlans switch how PostgreSQL plans the batch's
// prepared statements, for the rest of its transaction. The statements
// that find rows by an array of ids (the release's reads and writes, the
// claim) have one right plan whatever the ids, yet PostgreSQL kept
// planning them afresh at every bind: 0.3–0.4 ms of its time per batch,
// paid again by every replica's batches. The candidate reads stay
// custom: their best plan depends on the constraint values (measured,
// session 7).
var (
	genericPlans = Piped{SQL: `SET LOCAL plan_cache_mode = force_generic_plan`}
	customPlans  = Piped{SQL: `SET LOCAL plan_cache_mode = auto`}
)

// releaseReads locks the allocations of rels, in id order (the order
// every batch locks them in, so two batches never wait on each other in a
// cycle), and counts the Ironic nodes each holds, for its event.
func (s *Store) releaseReads(rels []*batchOp, r *batchReads) []Piped {
	if len(rels) == 0 {
		return nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, op := range rels {
		if !seen[op.releaseID] {
			seen[op.releaseID] = true
			ids = append(ids, op.releaseID)
		}
	}
	r.byID, r.linked = map[string]*ironpool.Allocation{}, map[string]int{}
	return []Piped{{
		SQL:  `SELECT ` + allocColumns + ` FROM allocations WHERE id = ANY($1::text[]) ORDER BY id ` + s.Dialect.LockWait,
		Args: []any{ids},
		Rows: func(rows Rows) error {
			as, err := scanAllocations(rows)
			for _, a := range as {
				r.byID[a.alloc.ID] = a.alloc
			}
			return err
		},
	}, {
		// The rows above are locked by now, so their nodes stay theirs.
		SQL:  `SELECT allocation_id, COUNT(*) FROM nodes WHERE allocation_id = ANY($1::text[]) AND ironic_uuid IS NOT NULL GROUP BY allocation_id`,
		Args: []any{ids},
		Rows: func(rows Rows) error { return scanLinked(rows, r.linked) },
	}}
}

// releaseWrites ends the live allocations among rels that their checks
// allow: one statement per kind of release, and their events.
func (s *Store) releaseWrites(rels []*batchOp, r *batchReads, now time.Time) ([]Piped, []eventRow) {
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
		a := r.byID[op.releaseID]
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
		delete(r.byID, op.releaseID)
		op.released = a
		k := kind{op.final, a.State, op.cleanInline}
		if kinds[k] == nil {
			order = append(order, k)
		}
		kinds[k] = append(kinds[k], op)
	}
	var qs []Piped
	var evs []eventRow
	for _, k := range order {
		group := kinds[k]
		gids := make([]string, len(group))
		ironic := 0
		for i, op := range group {
			gids[i] = op.releaseID
			ironic += r.linked[op.releaseID]
		}
		// One statement (PostgreSQL runs data-modifying WITH clauses to
		// completion whether the main query reads them or not): the
		// allocations, their usage and their nodes. Read under their
		// locks, every allocation is still in its state and holds the
		// Ironic nodes counted: any other count means a bug, and the
		// check fails the batch, whose calls then run alone. The ids go
		// as one array, so the text is the same for any number of them
		// (see arrays).
		qs = append(qs, Piped{
			SQL: `WITH al AS (UPDATE allocations SET state = $3, released_at = $1
					WHERE id = ANY($8::text[]) AND state = $4 RETURNING 1),
				us AS (UPDATE usage_log SET end_ms = $1 WHERE allocation_id = ANY($8::text[]) AND end_ms = 0 RETURNING 1),
				n AS (` + releaseNodesSQL + `allocation_id = ANY($8::text[]) RETURNING ironic_uuid)
				SELECT ironpool_check((SELECT COUNT(*) FROM al) = $5 AND (SELECT COUNT(ironic_uuid) FROM n) = $6, $7)`,
			Args: []any{ms(now), k.cleanInline, string(k.final), string(k.was), len(gids), ironic,
				fmt.Sprintf("release %d allocations: not all were still %s with their %d Ironic nodes", len(gids), k.was, ironic), gids},
		})
		for _, op := range group {
			a := op.released
			a.State, a.ReleasedAt = k.final, now
			evs = append(evs, eventRow{ctx: op.ctx, action: "allocation." + string(k.final), subject: "allocation/" + a.ID,
				summary: releaseSummary(a, k.was, k.cleanInline, r.linked[a.ID])})
			op.ok = true
		}
	}
	return qs, evs
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

// candidateReads plans the candidate reads of the allocations of allocs a
// batch may serve, one per distinct item, each of the best Need(counts)
// nodes of every call that uses it. reserved holds the queued requests'
// items: their nodes stay out, and so do the calls that would queue.
func (s *Store) candidateReads(allocs []*batchOp, now time.Time, reserved exclusion, r *batchReads) []Piped {
	waiting := len(reserved) > 0
	r.lists, r.listOf, r.want = map[readKey]*batchList{}, map[*ironpool.Constraints]readKey{}, nil
	for _, op := range allocs {
		a := op.alloc
		// Anything a queue is waiting for goes to the queue, by
		// Allocate's own rules.
		if op.queue && waiting {
			continue
		}
		r.want = append(r.want, op)
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
			r.listOf[c] = k
			l := r.lists[k]
			if l == nil {
				l = &batchList{c: c, until: until}
				r.lists[k] = l
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
	var qs []Piped
	for _, l := range r.lists {
		q, args := s.candidatesSQL(l.c, l.limit, s.Dialect.LockSkip, reserved, untilExclusion{l.until})
		qs = append(qs, Piped{SQL: q, Args: args, Rows: func(rows Rows) (err error) {
			l.nodes, err = scanCandidates(rows)
			l.full = len(l.nodes) == l.limit
			return err
		}})
	}
	return qs
}

// batchClaim matches the allocations r.want in arrival order, each with
// the exact matcher over the best Need(counts) candidates per item that
// the calls before it left, and returns the one statement that writes the
// ones served: their rows, their nodes' allocation_nodes, usage and event
// rows (with evs, the events of the batch's releases) in WITH clauses,
// around the claim of their nodes. The claim checks each node is still
// available and not reserved, as claim does, and fails the statement
// unless every node was claimed. nil: none was served.
func (s *Store) batchClaim(r *batchReads, now time.Time, evs []eventRow) *Piped {
	taken := map[int64]bool{}
	var served []*batchOp
	for _, op := range r.want {
		a := op.alloc
		short := false
		picks, ok, _ := matchItems(a, func(c *ironpool.Constraints, need int) ([]candidate, error) {
			l := r.lists[r.listOf[c]]
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
		op.ok = true
		served = append(served, op)
	}
	if len(served) == 0 {
		return nil
	}
	var claims, allocs, usage [][]any
	for _, op := range served {
		a := op.alloc
		pending := checkoutPending(a)
		until := ms(a.ExpiresAt.Add(s.ReservationGap))
		counts := make([]int, len(op.picks))
		for i, p := range op.picks {
			counts[i] = len(p)
			for _, n := range p {
				claims = append(claims, []any{n.id, a.ID, a.Owner, pending, until, int64(i)})
			}
		}
		_, u := usageRows(a, counts, now, 0)
		usage = append(usage, chunk(u, 5)...)
		allocs = append(allocs, allocationRow(a, ironpool.AllocActive, a.TTL))
		evs = append(evs, eventRow{ctx: op.ctx, action: "allocation.created", subject: "allocation/" + a.ID,
			summary: fmt.Sprintf("%s took %s", a.Owner, itemsSummary(a.Items))})
	}
	_, e := eventValues(evs, now, 0)
	// Every row goes in an array per column (see arrays), so the text is
	// the same for every batch. Locked by this transaction, the nodes can
	// only stay unclaimed because of a reservation booked since the read:
	// the check then fails the batch, and the lone transactions sort it
	// out. RETURNING gives each allocation its nodes as they now stand,
	// so no call reads them again after the commit (as Allocate's
	// loadNodes).
	args := []any{string(ironpool.NodeAllocated), ms(now), len(claims), fmt.Sprintf("claim nodes: not all %d still free", len(claims))}
	v, args := unnest(args, arrays(claims, 6))
	al, args := unnest(args, arrays(allocs, len(strings.Split(allocationInsertColumns, ", "))))
	ev, args := unnest(args, arrays(chunk(e, 6), 6))
	us, args := unnest(args, arrays(usage, 5))
	q := `WITH v AS (SELECT * FROM ` + v + ` AS v(v_node, v_alloc, v_owner, v_pending, v_until, v_item)),
		al AS (INSERT INTO allocations (` + allocationInsertColumns + `) SELECT * FROM ` + al + ` RETURNING 1),
		an AS (INSERT INTO allocation_nodes (allocation_id, node_id, item) SELECT v_alloc, v_node, v_item FROM v RETURNING 1),
		ev AS (INSERT INTO events (time, actor, role, action, subject, summary) SELECT * FROM ` + ev + ` RETURNING 1),
		us AS (INSERT INTO usage_log (allocation_id, owner, flavor, nodes, start_ms) SELECT * FROM ` + us + ` RETURNING 1),
		cl AS (UPDATE nodes SET state = $1, allocation_id = v_alloc, owner = v_owner,
			last_allocated_at = $2, updated_at = $2,
			pending = CASE WHEN nodes.ironic_uuid IS NULL THEN '' ELSE v_pending END
			FROM v WHERE nodes.id = v_node AND nodes.state = 'available' AND ` + reservedCond("v_until") + `
			RETURNING ` + nodeColumns + `)
		SELECT cl.* FROM (SELECT ironpool_check(COUNT(*) = $3, $4) FROM cl) chk, cl`
	return &Piped{SQL: q, Args: args, Rows: func(rows Rows) error {
		nodes, err := s.scanNodes(rows)
		if err != nil {
			return fmt.Errorf("claim nodes: %w", err)
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
	}}
}

// arrays turns rows of n values into one array per column, for a
// statement that reads them back with unnest: its text is then the same
// whatever the number of rows, so PostgreSQL parses it once per
// connection and may keep its plan, where a VALUES list of placeholders
// made a new statement of nearly every batch (measured: parsing and
// planning them took half of the claim's time). A column's type is its
// first value's; with no rows, every column is an empty text array.
func arrays(rows [][]any, n int) []any {
	cols := make([]any, n)
	for c := range cols {
		var first any = ""
		if len(rows) > 0 {
			first = rows[0][c]
		}
		switch first.(type) {
		case int64, int:
			col := make([]int64, len(rows))
			for i, r := range rows {
				col[i] = toInt64(r[c])
			}
			cols[c] = col
		case bool:
			col := make([]bool, len(rows))
			for i, r := range rows {
				col[i] = r[c].(bool)
			}
			cols[c] = col
		default:
			col := make([]string, len(rows))
			for i, r := range rows {
				col[i] = r[c].(string)
			}
			cols[c] = col
		}
	}
	return cols
}

func toInt64(v any) int64 {
	if i, ok := v.(int); ok {
		return int64(i)
	}
	return v.(int64)
}

// unnest appends cols to args and returns the unnest call that reads
// them, each cast to the array type its Go type names.
func unnest(args, cols []any) (string, []any) {
	var b strings.Builder
	b.WriteString("unnest(")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, c)
		typ := "text[]"
		switch c.(type) {
		case []int64:
			typ = "bigint[]"
		case []bool:
			typ = "boolean[]"
		}
		fmt.Fprintf(&b, "$%d::%s", len(args), typ)
	}
	b.WriteString(")")
	return b.String(), args
}

// chunk cuts flat, a run of rows of n values each, into its rows.
func chunk(flat []any, n int) [][]any {
	rows := make([][]any, 0, len(flat)/n)
	for i := 0; i+n <= len(flat); i += n {
		rows = append(rows, flat[i:i+n])
	}
	return rows
}

// constraintKey identifies equal constraints (the JSON encoding is
// canonical for a struct: fields in order, traits as listed).
func constraintKey(c *ironpool.Constraints) string {
	b, _ := json.Marshal(c)
	return string(b)
}
