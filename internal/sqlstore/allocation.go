package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/alloc"
)

// candidate is a free node as the matcher sees it.
type candidate struct {
	id                      int64
	name                    string
	cpus                    int
	memoryMB, localGB, last int64
	// fromIndex is set for a pick the free-node index made: the database
	// refusing it means the index was behind (errStaleIndex).
	fromIndex bool
}

func (a candidate) less(b candidate) int {
	return cmp.Or(cmp.Compare(a.cpus, b.cpus), cmp.Compare(a.memoryMB, b.memoryMB),
		cmp.Compare(a.localGB, b.localGB), cmp.Compare(a.last, b.last), cmp.Compare(a.id, b.id))
}

// candidates reads up to limit free nodes that satisfy c, best fit first.
// The ORDER BY follows the nodes_fit index, so the read stops after limit
// matching rows however large the pool is.
func (s *Store) candidates(ctx context.Context, q querier, c *ironpool.Constraints, limit int, lock string, ex ...excluder) ([]candidate, error) {
	query, args := s.candidatesSQL(c, limit, lock, ex...)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("candidates: %w", err)
	}
	defer rows.Close()
	return scanCandidates(rows)
}

// candidatesSQL is candidates' statement and its arguments.
func (s *Store) candidatesSQL(c *ironpool.Constraints, limit int, lock string, ex ...excluder) (string, []any) {
	where, args := constraintSQL(c, 1)
	where, args = s.reachableSQL(where, args, 1)
	for _, e := range ex {
		if cond, a := e.render(1 + len(args)); cond != "" {
			where, args = append(where, cond), append(args, a...)
		}
	}
	cond := "state = $1"
	if len(where) > 0 {
		cond += " AND " + strings.Join(where, " AND ")
	}
	return fmt.Sprintf(`SELECT id, name, cpus, memory_mb, local_gb, last_allocated_at FROM nodes
		WHERE %s ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id LIMIT %d %s`, cond, limit, lock),
		append([]any{string(ironpool.NodeAvailable)}, args...)
}

// scanCandidates reads the rows of candidatesSQL.
func scanCandidates(rows Rows) ([]candidate, error) {
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.name, &c.cpus, &c.memoryMB, &c.localGB, &c.last); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// match picks nodes for every item of a, or reports that the free nodes
// cannot satisfy it. Reading only Need(counts) candidates per item is enough
// for an exact answer (see package alloc).
func (s *Store) match(ctx context.Context, q querier, a *ironpool.Allocation, lock string, ex ...excluder) ([][]candidate, bool, error) {
	if a.Topology != nil {
		picks, res, err := s.matchTopology(ctx, q, a, lock, false, ex...)
		return picks, res.OK, err
	}
	return matchItems(a, func(c *ironpool.Constraints, need int) ([]candidate, error) {
		return s.candidates(ctx, q, c, need, lock, ex...)
	})
}

// matchItems runs the exact matcher over each item's best-fit candidates,
// read by read: Need(counts) of them per item are enough for an exact
// answer (see package alloc). ok is false when the nodes read cannot
// satisfy every item.
func matchItems(a *ironpool.Allocation, read func(c *ironpool.Constraints, need int) ([]candidate, error)) ([][]candidate, bool, error) {
	counts := make([]int, len(a.Items))
	for i, it := range a.Items {
		counts[i] = it.Count
	}
	need := alloc.Need(counts)
	lists := make([][]candidate, len(a.Items))
	for i := range a.Items {
		c, err := read(&a.Items[i].Constraints, need)
		if err != nil {
			return nil, false, err
		}
		if len(c) < counts[i] {
			return nil, false, nil
		}
		lists[i] = c
	}
	picks, ok := pickLists(counts, lists)
	return picks, ok, nil
}

// pickLists runs the exact matcher over each item's best-fit candidates.
func pickLists(counts []int, lists [][]candidate) ([][]candidate, bool) {
	byID := map[int64]candidate{}
	for _, l := range lists {
		for _, n := range l {
			byID[n.id] = n
		}
	}
	picks, ok := matchLists(counts, lists)
	if !ok {
		return nil, false
	}
	out := make([][]candidate, len(picks))
	for i, ids := range picks {
		for _, id := range ids {
			out[i] = append(out[i], byID[id])
		}
	}
	return out, true
}

// matchLocked is match with row locks. Where the dialect skips locked rows
// (PostgreSQL), a miss may only mean that concurrent requests hold the rows
// for now; it is re-checked with waiting locks before it counts as "no
// capacity", so a busy pool never refuses a request it can serve.
//
// Waiting while holding the rows the skipping read locked would deadlock
// two such requests against each other (each waits for rows the other
// skipped into), and every deadlock costs a deadlock_timeout before the
// retry. So the skipping read runs under a savepoint that is rolled back on
// a miss, which releases its row locks, and the waiting read runs under
// Dialect.WaitSerial, so waiters queue for each other instead of holding
// rows another waiter needs. Transactions that only skip never wait for a
// row, so no cycle is left.
func (s *Store) matchLocked(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, ex ...excluder) ([][]candidate, bool, error) {
	if picks, ok, err := s.matchFree(ctx, tx, a, ex...); err != nil || ok {
		return picks, ok, err
	}
	if s.Dialect.LockSkip == "" {
		return s.match(ctx, tx, a, "", ex...)
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT match_skip`); err != nil {
		return nil, false, err
	}
	picks, ok, err := s.match(ctx, tx, a, s.Dialect.LockSkip, ex...)
	if err != nil {
		return nil, false, err
	}
	if ok {
		_, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT match_skip`)
		return picks, ok, err
	}
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT match_skip`); err != nil {
		return nil, false, err
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT match_skip`); err != nil {
		return nil, false, err
	}
	if err := s.waitSerial(ctx, tx); err != nil {
		return nil, false, err
	}
	return s.match(ctx, tx, a, s.Dialect.LockWait, ex...)
}

// waitSerial takes the dialect's lock that admits one row-waiting
// transaction at a time (held until the transaction ends).
func (s *Store) waitSerial(ctx context.Context, tx *sql.Tx) error {
	if s.Dialect.WaitSerial == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.Dialect.WaitSerial); err != nil {
		return fmt.Errorf("wait lock: %w", err)
	}
	return nil
}

// reachableSQL adds the condition that a node's backend is one this server
// drives (Store.Reachable), numbering its arguments after n+len(args).
func (s *Store) reachableSQL(where []string, args []any, n int) ([]string, []any) {
	if s.Reachable == nil {
		return where, args
	}
	var ph []string
	for _, e := range s.Reachable {
		args = append(args, e)
		ph = append(ph, fmt.Sprintf("$%d", n+len(args)))
	}
	cond := "ironic_uuid IS NULL"
	if len(ph) > 0 {
		cond = "(ironic_uuid IS NULL OR ironic_endpoint IN (" + strings.Join(ph, ", ") + "))"
	}
	return append(where, cond), args
}

// shortfall counts, per item, the nodes that match at all and that are free.
func (s *Store) shortfall(ctx context.Context, q querier, a *ironpool.Allocation) ([]ironpool.Shortfall, error) {
	out := make([]ironpool.Shortfall, len(a.Items))
	for i, it := range a.Items {
		where, args := constraintSQL(&it.Constraints, 1)
		where, args = s.reachableSQL(where, args, 1)
		cond := "1 = 1"
		if len(where) > 0 {
			cond = strings.Join(where, " AND ")
		}
		var total, free int
		err := q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = $1 THEN 1 ELSE 0 END), 0)
			FROM nodes WHERE `+cond, append([]any{string(ironpool.NodeAvailable)}, args...)...).Scan(&total, &free)
		if err != nil {
			return nil, err
		}
		out[i] = ironpool.Shortfall{Item: i, Flavor: it.Flavor, Requested: it.Count, Matching: total, Free: free}
	}
	return out, nil
}

func capacityError(sf []ironpool.Shortfall) *ironpool.Error {
	var parts []string
	for _, f := range sf {
		name := f.Flavor
		if name == "" {
			name = fmt.Sprintf("item %d", f.Item)
		}
		p := fmt.Sprintf("%s: asked %d, %d match, %d free", name, f.Requested, f.Matching, f.Free)
		if f.Reserved > 0 {
			p += fmt.Sprintf(", %d reserved for queued requests", f.Reserved)
		}
		parts = append(parts, p)
	}
	return &ironpool.Error{Code: ironpool.ECAPACITY, Field: "items",
		Message:   "not enough free nodes (" + strings.Join(parts, "; ") + ")",
		Hint:      "retry later, add --wait DURATION to queue the request, or see `ironpool capacity`",
		Shortfall: sf}
}

// Allocate claims nodes for a, all or none; see ironpool.Store.
func (s *Store) Allocate(ctx context.Context, a *ironpool.Allocation, queue bool) error {
	if s.batching() && a.Topology == nil {
		op, err := s.batch.run(ctx, &batchOp{alloc: a, queue: queue})
		if err != nil {
			return s.unavailable(err)
		}
		if op.served {
			return nil
		}
	}
	ttl := a.TTL
	var claimed [][]candidate
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		claimed = nil
		now := s.Now().UTC()
		stamp(a, now, ttl)
		if a.Topology != nil {
			if err := s.checkTopologyKey(ctx, tx, a.Topology); err != nil {
				return err
			}
		}
		// Quotas first: their rows are the first locks this transaction
		// takes (see quota.go). A refusal that waiting could lift queues
		// the request when it may wait; one that the request alone earns
		// (more nodes than the quota, a lease over it) never does.
		quotas, err := s.quotasFor(ctx, tx, a.Owner, true)
		if err != nil {
			return err
		}
		if len(quotas) > 0 {
			if a.DefaultTTL {
				ttl = clampLease(quotas, a.TTL)
				a.ExpiresAt = now.Add(ttl)
			}
			refusal, permanent, err := s.quotaCheck(ctx, tx, quotas, a, ttl, now)
			if err != nil {
				return err
			}
			if refusal != nil {
				if queue && !permanent {
					return s.enqueue(ctx, tx, a, ttl)
				}
				return refusal
			}
		}
		if queue {
			var waiting int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM allocations WHERE state = 'queued' LIMIT 1) q`).Scan(&waiting); err != nil {
				return err
			}
			if waiting > 0 {
				return s.enqueue(ctx, tx, a, ttl)
			}
		}
		// Freed nodes go to the queue first: a request that does not
		// queue leaves alone every node a queued request could use.
		reserved, err := s.queueReservation(ctx, tx)
		if err != nil {
			return err
		}
		picks, ok, err := s.matchLocked(ctx, tx, a, reserved, s.reservedUntil(a.ExpiresAt))
		if err != nil {
			return err
		}
		if !ok {
			if queue {
				return s.enqueue(ctx, tx, a, ttl)
			}
			if a.Topology != nil {
				return s.topologyError(ctx, tx, a, reserved)
			}
			sf, err := s.reservedShortfall(ctx, tx, a, reserved)
			if err != nil {
				return err
			}
			return capacityError(sf)
		}
		setPicks(a, picks)
		if err := s.insertAllocation(ctx, tx, a, ironpool.AllocActive, ttl); err != nil {
			return err
		}
		claimed = picks
		return s.claim(ctx, tx, a, picks, now)
	})
	if err != nil {
		s.recordRefusal(ctx, err)
		return err
	}
	if claimed == nil {
		return nil
	}
	// Committed: a failure to read the nodes back is "try again" (503), as
	// the allocation stands and the client can read it by owner.
	return s.unavailable(s.loadNodes(ctx, a, claimed))
}

// stamp sets a's times for a request made at now with lease ttl, and
// gives it an id if it has none: UUIDv7, time-ordered, so the indexes on
// allocation ids grow at their right edge.
func stamp(a *ironpool.Allocation, now time.Time, ttl time.Duration) {
	a.CreatedAt, a.ExpiresAt = now, now.Add(ttl)
	if a.ID == "" {
		a.ID = uuid.Must(uuid.NewV7()).String()
	}
}

// checkoutPending is the pending step a's Ironic-linked nodes get when
// claimed: a checkout unless the allocation only holds them (mode none).
func checkoutPending(a *ironpool.Allocation) string {
	if a.Mode != ironpool.ModeNone && a.Mode != "" {
		return string(ironpool.PendingCheckout)
	}
	return ""
}

func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, ttl time.Duration) error {
	if err := s.admit(ctx, tx, a); err != nil {
		return err
	}
	a.ExpiresAt = time.Time{}
	if err := s.insertAllocation(ctx, tx, a, ironpool.AllocQueued, ttl); err != nil {
		return err
	}
	if err := s.recordRequester(ctx, tx, a.ID); err != nil {
		return err
	}
	return s.insertEvent(ctx, tx, "allocation.queued", "allocation/"+a.ID,
		fmt.Sprintf("queued for %s until %s: %s", a.Owner, a.WaitUntil.Format(time.RFC3339), itemsSummary(a.Items)))
}

func (s *Store) insertAllocation(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, state ironpool.AllocationState, ttl time.Duration) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO allocations (`+allocationInsertColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		allocationRow(a, state, ttl)...)
	if err != nil {
		if _, ok := s.Dialect.Unique(err); ok {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "id", Message: "an allocation with this id exists already"}
		}
		return fmt.Errorf("insert allocation: %w", err)
	}
	return nil
}

// allocationInsertColumns are the columns allocationRow fills.
const allocationInsertColumns = `id, owner, state, mode, items, metadata, ttl_ms, created_at, expires_at, wait_until, priority, topology`

// allocationRow sets a's state and returns its row's values, in the order
// of allocationInsertColumns.
func allocationRow(a *ironpool.Allocation, state ironpool.AllocationState, ttl time.Duration) []any {
	a.State = state
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	items, _ := json.Marshal(a.Items)
	meta, _ := json.Marshal(a.Metadata)
	topo := ""
	if a.Topology != nil {
		b, _ := json.Marshal(a.Topology)
		topo = string(b)
	}
	return []any{a.ID, a.Owner, string(state), string(a.Mode), string(items), string(meta), ttl.Milliseconds(),
		ms(a.CreatedAt), ms(a.ExpiresAt), ms(a.WaitUntil), a.Priority, topo}
}

// claim marks the picked nodes as held by a (already inserted with its
// items) and records them. The nodes themselves are loaded after commit by
// loadNodes, outside the single writer's critical section.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, picks [][]candidate, now time.Time) error {
	pending := checkoutPending(a)
	var vals []string
	var args []any
	until := ms(a.ExpiresAt.Add(s.ReservationGap))
	counts := make([]int, len(picks))
	var ids []any
	var names []string
	stale := false
	for i, p := range picks {
		counts[i] = len(p)
		for _, n := range p {
			args = append(args, a.ID, n.id, i)
			vals = append(vals, fmt.Sprintf("($%d, $%d, $%d)", len(args)-2, len(args)-1, len(args)))
			ids = append(ids, n.id)
			names = append(names, n.name)
			stale = stale || n.fromIndex
		}
	}
	// One UPDATE for every node, found by primary key. "state || ''"
	// keeps SQLite from choosing the state index for the id list (it would
	// walk every free node); PostgreSQL reads the list by key either way.
	res, err := tx.ExecContext(ctx, `UPDATE nodes SET state = $1, allocation_id = $2, owner = $3,
		last_allocated_at = $4, updated_at = $4,
		pending = CASE WHEN ironic_uuid IS NULL THEN '' ELSE $5 END
		WHERE id IN (`+placeholdersFrom(7, len(ids))+`) AND state || '' = 'available' AND `+reservedCond("$6"),
		append([]any{string(ironpool.NodeAllocated), a.ID, a.Owner, ms(now), pending, until}, ids...)...)
	if err != nil {
		return fmt.Errorf("claim node: %w", err)
	}
	// The candidates were read in this transaction under the write lock
	// (or row locks), so every row must still be free; anything else
	// must abort (the caller's rollback undoes the rows that were
	// claimed) rather than hand a node out twice.
	if k, _ := res.RowsAffected(); k != int64(len(ids)) {
		if stale {
			for _, id := range ids {
				s.free.Touch(id.(int64))
			}
			return errStaleIndex
		}
		// On PostgreSQL a reservation may have been booked on a node
		// between the candidate read and this statement (which sees every
		// committed booking): refuse rather than break it.
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "items",
			Message: fmt.Sprintf("a node of %s was taken or reserved while this request was being served; retry", strings.Join(names, ", "))}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO allocation_nodes (allocation_id, node_id, item) VALUES `+
		strings.Join(vals, ", "), args...); err != nil {
		return fmt.Errorf("record allocation nodes: %w", err)
	}
	if err := insertUsage(ctx, tx, a, counts, now); err != nil {
		return err
	}
	if s.faultAfterClaim != nil {
		if err := s.faultAfterClaim(ctx, tx, a); err != nil {
			return err
		}
	}
	return s.insertEventAt(ctx, tx, now, "allocation.created", "allocation/"+a.ID,
		fmt.Sprintf("%s took %s", a.Owner, itemsSummary(a.Items)))
}

// setPicks writes the picked node names into a's items.
func setPicks(a *ironpool.Allocation, picks [][]candidate) {
	for i, p := range picks {
		a.Items[i].Nodes = make([]string, 0, len(p))
		for _, n := range p {
			a.Items[i].Nodes = append(a.Items[i].Nodes, n.name)
		}
	}
}

// loadNodes reads the nodes an allocation was given, by id, after commit.
func (s *Store) loadNodes(ctx context.Context, a *ironpool.Allocation, picks [][]candidate) error {
	var ph []string
	var args []any
	for _, p := range picks {
		for _, n := range p {
			args = append(args, n.id)
			ph = append(ph, fmt.Sprintf("$%d", len(args)))
		}
	}
	nodes, err := s.queryNodes(ctx, s.R, `SELECT `+nodeColumns+` FROM nodes WHERE id IN (`+strings.Join(ph, ",")+`) ORDER BY name`, args...)
	a.Nodes = nodes
	return err
}

func itemsSummary(items []ironpool.AllocationItem) string {
	var parts []string
	for _, it := range items {
		name := it.Flavor
		if name == "" {
			name = it.Constraints.String()
		}
		p := fmt.Sprintf("%s×%d", name, it.Count)
		if len(it.Nodes) > 0 {
			p += " [" + strings.Join(it.Nodes, " ") + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// Plan is a dry run of Allocate.
func (s *Store) Plan(ctx context.Context, a *ironpool.Allocation) (*ironpool.Plan, error) {
	p := &ironpool.Plan{Picks: []ironpool.Pick{}}
	err := s.read(ctx, func(tx *sql.Tx) error {
		if a.Topology != nil {
			if err := s.checkTopologyKey(ctx, tx, a.Topology); err != nil {
				return err
			}
		}
		picks, ok, err := s.match(ctx, tx, a, "", s.reservedUntil(a.ExpiresAt))
		if err != nil {
			return err
		}
		p.Satisfiable = ok
		if !ok && a.Topology != nil {
			_, res, err := s.matchTopology(ctx, tx, a, "", false)
			if err != nil {
				return err
			}
			p.Refusal = topologyShort(a, res, "free")
		}
		for i, l := range picks {
			for _, n := range l {
				p.Picks = append(p.Picks, ironpool.Pick{Item: i, Node: n.name})
			}
		}
		sf, err := s.shortfall(ctx, tx, a)
		if err != nil {
			return err
		}
		for i, f := range sf {
			p.Capacity = append(p.Capacity, ironpool.ItemCapacity{Item: i, Flavor: f.Flavor,
				Constraints: a.Items[i].Constraints, Requested: f.Requested, Matching: f.Matching, Free: f.Free})
		}
		return nil
	})
	return p, err
}

// maxDispatchAge bounds how old the time a queue dispatch decided on may be
// when it commits: a lease given is at most this much shorter than asked,
// a request is served at most this much after its deadline.
const maxDispatchAge = time.Second

// DispatchQueue serves queued requests in arrival order; see ironpool.Store.
func (s *Store) DispatchQueue(ctx context.Context, now time.Time) ([]*ironpool.Allocation, error) {
	// The loop calls this after every change; a read answers the common
	// "nothing queued" case without taking the write lock.
	var waiting int
	// The state is written in the statement, not passed: PostgreSQL plans
	// a prepared statement's parameters generically after five runs, and
	// its generic plan for "state = $1 LIMIT 1" scanned every allocation
	// looking for a queued one (2 ms a call with a few thousand rows,
	// measured). The same holds for every read by state below.
	if err := s.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM allocations WHERE state = 'queued' LIMIT 1) q`).Scan(&waiting); err != nil {
		return nil, err
	}
	if waiting == 0 {
		return nil, nil
	}
	var changed []*ironpool.Allocation
	var claimed map[string][][]candidate
	asked := now
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		changed, claimed = changed[:0], map[string][][]candidate{}
		// The time is read here, inside the transaction, not only taken
		// from the caller: a leader paused (SIGSTOP, a long GC, a VM
		// migration) between reading the clock and dispatching would
		// otherwise serve requests past their deadline and give leases
		// that end before they begin. A later caller time (tests) wins.
		if now = s.Now().UTC(); asked.After(now) {
			now = asked
		}
		// Quota rows come first in the lock order (quota.go), then the
		// waiters' lock: the dispatcher claims nodes for one entry and may
		// then wait for rows for the next, so it takes that lock before
		// it holds claimed rows, never queueing behind another waiter.
		quotas, err := s.lockAllQuotas(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.waitSerial(ctx, tx); err != nil {
			return err
		}
		expired, err := s.failExpiredQueued(ctx, tx, now)
		if err != nil {
			return err
		}
		changed = append(changed, expired...)
		queued, err := s.queueHead(ctx, tx, now, 100)
		if err != nil {
			return err
		}
		blocked := false // the head cannot be served: the rest only fail by deadline
		for _, q := range queued {
			a := q.alloc
			if !a.WaitUntil.After(now) {
				why, err := s.waitFailure(ctx, tx, a)
				if err != nil {
					return err
				}
				a.State, a.LastError = ironpool.AllocFailed, why
				if err := updateQueued(ctx, tx, a.ID, `state = $1, last_error = $2, released_at = $3`,
					string(a.State), a.LastError, ms(now)); err != nil {
					return err
				}
				if err := s.insertEvent(ctx, tx, "allocation.failed", "allocation/"+a.ID, a.LastError); err != nil {
					return err
				}
				changed = append(changed, a)
				continue
			}
			if blocked {
				continue
			}
			// A request its owner's quota does not allow yet waits for
			// quota without blocking the queue: the quota is the owner's
			// limit, not the pool's, and holding everyone else up behind
			// it would let one owner's backlog stop the rest.
			if qs := applicable(quotas, a.Owner); len(qs) > 0 {
				refusal, _, err := s.quotaCheck(ctx, tx, qs, a, q.ttl, now)
				if err != nil {
					return err
				}
				if refusal != nil {
					continue
				}
			}
			picks, ok, err := s.matchLocked(ctx, tx, a, s.reservedUntil(now.Add(q.ttl)))
			if err != nil {
				return err
			}
			if !ok {
				// First come, first served: nobody overtakes the head. The
				// entries behind it are still failed when their own
				// deadline passes, not when the head's does.
				blocked = true
				continue
			}
			a.State, a.ExpiresAt = ironpool.AllocActive, now.Add(q.ttl)
			setPicks(a, picks)
			items, _ := json.Marshal(a.Items)
			if err := updateQueued(ctx, tx, a.ID, `state = $1, expires_at = $2, items = $3`,
				string(a.State), ms(a.ExpiresAt), string(items)); err != nil {
				return err
			}
			rctx, err := s.requesterContext(ctx, tx, a.ID)
			if err != nil {
				return err
			}
			if err := s.claim(rctx, tx, a, picks, now); err != nil {
				return err
			}
			claimed[a.ID] = picks
			changed = append(changed, a)
		}
		// Fencing against a pause inside the transaction: if it ran far
		// longer than any dispatch should, the time it decided on is old
		// (leases would end early, a deadline could have passed), so give
		// the decisions up; the next pass takes them again.
		if late := s.Now().Sub(now); late > maxDispatchAge {
			return fmt.Errorf("queue dispatch took %s; its decisions were rolled back and will be taken again", late.Round(time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Like Allocate, a dispatched allocation comes back with its nodes, so
	// the caller can hand them over without another read.
	for _, a := range changed {
		if picks, ok := claimed[a.ID]; ok {
			if err := s.loadNodes(ctx, a, picks); err != nil {
				return changed, err
			}
		}
	}
	return changed, nil
}

// updateQueued sets the columns of a queued allocation (set numbers its
// arguments from $1). The state condition keeps the decision on the row as
// it is now: one that a release ended meanwhile is never revived.
func updateQueued(ctx context.Context, tx *sql.Tx, id, set string, args ...any) error {
	n := len(args)
	res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE allocations SET %s WHERE id = $%d AND state = $%d`, set, n+1, n+2),
		append(args, id, string(ironpool.AllocQueued))...)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("queued allocation %s: it is no longer queued", id)
	}
	return nil
}

const allocColumns = `id, owner, state, mode, items, metadata, last_error, ttl_ms, created_at, expires_at, wait_until, released_at, priority, topology`

type allocRow struct {
	alloc *ironpool.Allocation
	ttl   time.Duration
}

func (s *Store) queryAllocations(ctx context.Context, q querier, query string, args ...any) ([]allocRow, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query allocations: %w", err)
	}
	defer rows.Close()
	return scanAllocations(rows)
}

// scanAllocations reads rows of allocColumns.
func scanAllocations(rows Rows) ([]allocRow, error) {
	var out []allocRow
	for rows.Next() {
		var a ironpool.Allocation
		var state, mode, items, meta, topo string
		var ttl, created, expires, wait, released int64
		if err := rows.Scan(&a.ID, &a.Owner, &state, &mode, &items, &meta, &a.LastError, &ttl,
			&created, &expires, &wait, &released, &a.Priority, &topo); err != nil {
			return nil, err
		}
		if topo != "" {
			if err := json.Unmarshal([]byte(topo), &a.Topology); err != nil {
				return nil, fmt.Errorf("allocation %s topology: %w", a.ID, err)
			}
		}
		a.State, a.Mode = ironpool.AllocationState(state), ironpool.Mode(mode)
		if err := json.Unmarshal([]byte(items), &a.Items); err != nil {
			return nil, fmt.Errorf("allocation %s items: %w", a.ID, err)
		}
		if err := json.Unmarshal([]byte(meta), &a.Metadata); err != nil {
			return nil, fmt.Errorf("allocation %s metadata: %w", a.ID, err)
		}
		a.CreatedAt, a.ExpiresAt, a.WaitUntil, a.ReleasedAt = fromMS(created), fromMS(expires), fromMS(wait), fromMS(released)
		out = append(out, allocRow{&a, time.Duration(ttl) * time.Millisecond})
	}
	return out, rows.Err()
}

// FindAllocations lists allocations newest first.
func (s *Store) FindAllocations(ctx context.Context, f ironpool.AllocationFilter) ([]*ironpool.Allocation, error) {
	l := ownerList{table: "allocations", id: f.ID, owner: f.Owner, owners: f.Owners, state: string(f.State)}
	if f.Live {
		l.live = "'queued', 'active'"
	}
	w, ok, err := s.listFilter(ctx, l)
	if !ok {
		return []*ironpool.Allocation{}, s.unavailable(err)
	}
	q := `SELECT ` + allocColumns + ` FROM allocations` + w.sql() + fmt.Sprintf(" ORDER BY seq DESC LIMIT %d", listLimit(f.Limit))
	args := w.args
	rows, err := s.queryAllocations(ctx, s.R, q, args...)
	if err != nil {
		return nil, s.unavailable(err)
	}
	out := make([]*ironpool.Allocation, len(rows))
	for i, r := range rows {
		out[i] = r.alloc
	}
	return out, nil
}

// expandOwners turns a list of owner names and patterns into the names
// it covers: patterns are matched (ironpool.MatchOwner, exact and
// case-sensitive, unlike SQL LIKE on SQLite) against the owners that have
// rows in table (allocations or reservations, a constant, never input), so
// the query filters on names only.
func (s *Store) expandOwners(ctx context.Context, table string, list []string) ([]string, error) {
	var names, patterns []string
	for _, o := range list {
		if ironpool.IsOwnerPattern(o) {
			patterns = append(patterns, o)
		} else {
			names = append(names, o)
		}
	}
	if len(patterns) == 0 {
		return names, nil
	}
	rows, err := s.R.QueryContext(ctx, `SELECT DISTINCT owner FROM `+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		if !slices.Contains(names, o) && slices.ContainsFunc(patterns, func(p string) bool { return ironpool.MatchOwner(p, o) }) {
			names = append(names, o)
		}
	}
	return names, rows.Err()
}

// FindAllocation returns one allocation with the nodes it holds.
func (s *Store) FindAllocation(ctx context.Context, id string) (*ironpool.Allocation, error) {
	var a *ironpool.Allocation
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.findAllocation(ctx, tx, id, "")
		return err
	})
	return a, err
}

func (s *Store) findAllocation(ctx context.Context, q querier, id, lock string) (*ironpool.Allocation, error) {
	rows, err := s.queryAllocations(ctx, q, `SELECT `+allocColumns+` FROM allocations WHERE id = $1 `+lock, id)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("no allocation %q", id)}
	}
	a := rows[0].alloc
	a.Nodes, err = s.queryNodes(ctx, q, `SELECT `+nodeColumns+` FROM nodes WHERE allocation_id = $1 ORDER BY name`, id)
	return a, err
}

// ExtendAllocation moves an active allocation's expiry to now+ttl.
func (s *Store) ExtendAllocation(ctx context.Context, id string, ttl time.Duration) (*ironpool.Allocation, error) {
	var a *ironpool.Allocation
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		if a, err = s.findAllocation(ctx, tx, id, s.Dialect.LockWait); err != nil {
			return err
		}
		if a.State != ironpool.AllocActive {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "id",
				Message: fmt.Sprintf("allocation %s is %s; only active allocations can be extended", id, a.State)}
		}
		a.ExpiresAt = s.Now().UTC().Add(ttl)
		if err := s.checkLease(ctx, tx, a, a.ExpiresAt); err != nil {
			return err
		}
		// Touch the nodes first: a booking deciding on them now waits for
		// this transaction, or this one sees the booking it committed.
		if _, err := tx.ExecContext(ctx, `UPDATE nodes SET updated_at = CASE WHEN updated_at < $1 THEN $1 ELSE updated_at + 1 END
			WHERE allocation_id = $2`, ms(s.Now()), id); err != nil {
			return err
		}
		if conflict, err := s.extendConflict(ctx, tx, id, a.ExpiresAt); err != nil || conflict != nil {
			if err != nil {
				return err
			}
			return conflict
		}
		// The state condition repeats the check above in the statement that
		// writes, so the decision never rests on a read alone.
		res, err := tx.ExecContext(ctx, `UPDATE allocations SET expires_at = $1 WHERE id = $2 AND state = $3`,
			ms(a.ExpiresAt), id, string(ironpool.AllocActive))
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "id",
				Message: fmt.Sprintf("allocation %s ended while it was being extended", id)}
		}
		return s.insertEvent(ctx, tx, "allocation.extended", "allocation/"+id, "expires "+a.ExpiresAt.Format(time.RFC3339))
	})
	s.recordRefusal(ctx, err)
	return a, err
}

// ReleaseAllocations ends live allocations; see ironpool.Store.
func (s *Store) ReleaseAllocations(ctx context.Context, sel ironpool.ReleaseSelector, final ironpool.AllocationState, cleanInline bool) ([]*ironpool.Allocation, error) {
	if s.batching() && sel.ID != "" {
		op, err := s.batch.run(ctx, &batchOp{releaseID: sel.ID, check: sel.Check, final: final, cleanInline: cleanInline})
		if err != nil {
			return nil, s.unavailable(err)
		}
		if op.served {
			return []*ironpool.Allocation{op.released}, nil
		}
	}
	var out []*ironpool.Allocation
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		var rows []allocRow
		var err error
		if sel.ID != "" {
			rows, err = s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations WHERE id = $1 `+s.Dialect.LockWait, sel.ID)
			if err == nil && len(rows) == 0 {
				return &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("no allocation %q", sel.ID)}
			}
		} else {
			rows, err = s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations WHERE owner = $1 AND state IN ('queued', 'active') ORDER BY seq `+s.Dialect.LockWait, sel.Owner)
		}
		if err != nil {
			return err
		}
		var live []*ironpool.Allocation
		for _, r := range rows {
			a := r.alloc
			if sel.Check != nil {
				if err := sel.Check(a.Owner, a.State); err != nil {
					return err
				}
			}
			if a.State.Live() {
				live = append(live, a)
			} // else idempotent: already ended, returned as it is
			out = append(out, a)
		}
		return s.releaseMany(ctx, tx, live, final, cleanInline, s.Now().UTC())
	})
	return out, err
}

// releaseMany ends the live allocations as, read under their locks in tx,
// in four statements whatever their number: their nodes, their usage,
// their rows (one per state they were in) and their events. The reaper
// ends every due lease of a pass this way, so a thousand expiries a
// second cost the one writer a few statements per pass, not five per
// lease.
func (s *Store) releaseMany(ctx context.Context, tx *sql.Tx, as []*ironpool.Allocation, final ironpool.AllocationState, cleanInline bool, now time.Time) error {
	if len(as) == 0 {
		return nil
	}
	ids := make([]any, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	// Ironic-linked nodes, for the events' summaries. RETURNING shows the
	// rows as written, with allocation_id already cleared, so several
	// allocations' counts are read first; one allocation's are counted
	// from the update itself.
	linked := map[string]int{}
	if len(as) > 1 {
		if err := s.linkedNodes(ctx, tx, ids, linked); err != nil {
			return err
		}
	}
	rows, err := tx.QueryContext(ctx, releaseNodesSQL+`allocation_id IN (`+placeholdersFrom(3, len(ids))+`) RETURNING ironic_uuid`,
		append([]any{ms(now), cleanInline}, ids...)...)
	if err != nil {
		return fmt.Errorf("release nodes: %w", err)
	}
	n := 0
	for rows.Next() {
		var u sql.NullString
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return fmt.Errorf("release nodes: %w", err)
		}
		if u.Valid {
			n++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("release nodes: %w", err)
	}
	if len(as) == 1 {
		linked[as[0].ID] = n
	}
	if _, err := tx.ExecContext(ctx, EndUsageSQL(len(ids)), append([]any{ms(now)}, ids...)...); err != nil {
		return fmt.Errorf("end usage: %w", err)
	}
	byState := map[ironpool.AllocationState][]any{}
	var states []ironpool.AllocationState
	for _, a := range as {
		if byState[a.State] == nil {
			states = append(states, a.State)
		}
		byState[a.State] = append(byState[a.State], a.ID)
	}
	for _, was := range states {
		group := byState[was]
		res, err := tx.ExecContext(ctx, EndAllocationsSQL(len(group)), append([]any{string(final), ms(now), string(was)}, group...)...)
		if err != nil {
			return err
		}
		// Callers read the rows under a lock in this transaction, so no
		// state can have moved; if one did, abort rather than end it twice.
		if k, _ := res.RowsAffected(); k != int64(len(group)) {
			return fmt.Errorf("release %d allocations: %d were no longer %s", len(group), int64(len(group))-k, was)
		}
	}
	evs := make([]eventRow, len(as))
	for i, a := range as {
		was := a.State
		a.State, a.ReleasedAt = final, now
		evs[i] = eventRow{ctx: ctx, action: "allocation." + string(final), subject: "allocation/" + a.ID,
			summary: releaseSummary(a, was, cleanInline, linked[a.ID])}
	}
	return s.insertEvents(ctx, tx, now, evs)
}

// linkedNodes counts the Ironic-linked nodes of each allocation of ids
// into into.
func (s *Store) linkedNodes(ctx context.Context, tx *sql.Tx, ids []any, into map[string]int) error {
	rows, err := tx.QueryContext(ctx, `SELECT allocation_id, COUNT(*) FROM nodes WHERE allocation_id IN (`+placeholdersFrom(1, len(ids))+`)
		AND ironic_uuid IS NOT NULL GROUP BY allocation_id`, ids...)
	if err != nil {
		return fmt.Errorf("count Ironic nodes: %w", err)
	}
	defer rows.Close()
	if err := scanLinked(rows, into); err != nil {
		return fmt.Errorf("count Ironic nodes: %w", err)
	}
	return nil
}

// scanLinked reads rows of (allocation id, Ironic-linked nodes) into into:
// the lone release's count (linkedNodes) and the batch's (releaseReads).
func scanLinked(rows Rows, into map[string]int) error {
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		into[id] = n
	}
	return rows.Err()
}

// EndAllocationsSQL sets n allocations in state $3, ids $4 on, to state
// $1 at $2. Appending an empty string to the state, as the claim does,
// keeps SQLite on the id index:
// for a list of ids it chose allocations_state and walked every live
// lease. Exported for the plan test.
func EndAllocationsSQL(n int) string {
	return `UPDATE allocations SET state = $1, released_at = $2 WHERE id IN (` + placeholdersFrom(4, n) + `) AND state || '' = $3`
}

// releaseNodesSQL frees the nodes its WHERE clause (to be appended) picks,
// at $1, with $2 saying whether they may skip cleaning. Ironic-linked
// nodes always go through cleaning: the reconciler must undo the checkout
// and let Ironic clean before they are free again.
const releaseNodesSQL = `UPDATE nodes SET allocation_id = NULL, owner = '', updated_at = $1,
	state = CASE WHEN ironic_uuid IS NULL AND $2 THEN 'available' ELSE 'cleaning' END,
	pending = CASE WHEN ironic_uuid IS NULL AND $2 THEN '' ELSE 'clean' END
	WHERE `

// releaseSummary is the event summary of ending a (already in its final
// state), which was in state was; linked counts its Ironic nodes.
func releaseSummary(a *ironpool.Allocation, was ironpool.AllocationState, cleanInline bool, linked int) string {
	summary := fmt.Sprintf("%s %s of %s (%s)", a.State, itemsSummary(a.Items), a.Owner, was)
	switch {
	case cleanInline && linked == 0:
		summary += "; nodes cleaned (local pool: no cleaning step configured)"
	case cleanInline:
		summary += fmt.Sprintf("; %d Ironic nodes cleaning in Ironic", linked)
	default:
		summary += "; nodes cleaning"
	}
	return summary
}

// ExpireAllocations ends the active allocations past their expiry; see
// ironpool.Store. The expired rows are selected and locked by the
// transaction that releases them: on PostgreSQL, FOR UPDATE re-evaluates
// "expires_at <= now" on a row an extend has just committed, and on SQLite
// the single writer orders the two. So a renewal that was acknowledged is
// never undone by a reaper that read the old expiry.
func (s *Store) ExpireAllocations(ctx context.Context, cleanInline bool) ([]*ironpool.Allocation, error) {
	// The loop calls this on every pass, a few hundred times a second
	// under load; a read answers the common "none has expired" without a
	// write transaction (on SQLite, a place in the one writer's queue).
	// The write below decides again on the rows it locks.
	var due int
	if err := s.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM allocations WHERE state = 'active' AND expires_at <= $1 LIMIT 1) q`,
		ms(s.Now().UTC())).Scan(&due); err != nil {
		return nil, s.unavailable(err)
	}
	if due == 0 {
		return nil, nil
	}
	var out []*ironpool.Allocation
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		now := s.Now().UTC()
		rows, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations
			WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT 1000 `+s.Dialect.LockWait,
			ms(now))
		if err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, r.alloc)
		}
		return s.releaseMany(ctx, tx, out, ironpool.AllocExpired, cleanInline, now)
	})
	return out, err
}

// NextExpiry returns the earliest expiry of an active allocation or
// deadline of a queued one.
func (s *Store) NextExpiry(ctx context.Context) (time.Time, error) {
	var v sql.NullInt64
	// States written in, as in DispatchQueue: with parameters PostgreSQL
	// planned this afresh on every call (0.7 ms), since its generic plan
	// would scan.
	err := s.R.QueryRowContext(ctx, `SELECT MIN(t) FROM (
		SELECT MIN(expires_at) AS t FROM allocations WHERE state = 'active'
		UNION ALL SELECT MIN(wait_until) FROM allocations WHERE state = 'queued'
		UNION ALL SELECT MIN(start_at) FROM reservations WHERE state = 'pending') q`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, err
	}
	return fromMS(v.Int64), nil
}

// SetDeploySpec stores an active allocation's deploy spec; see ironpool.Store.
func (s *Store) SetDeploySpec(ctx context.Context, id string, spec ironpool.DeploySpec) error {
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE allocations SET deploy_spec = $1 WHERE id = $2 AND state = $3`,
			string(b), id, string(ironpool.AllocActive))
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "id", Message: fmt.Sprintf("allocation %s is not active", id)}
		}
		return nil
	})
}

// DeploySpec reads an allocation's deploy spec; see ironpool.Store.
func (s *Store) DeploySpec(ctx context.Context, id string) (ironpool.DeploySpec, error) {
	var raw string
	err := s.R.QueryRowContext(ctx, `SELECT deploy_spec FROM allocations WHERE id = $1`, id).Scan(&raw)
	var spec ironpool.DeploySpec
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && raw == "":
		return spec, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("allocation %s has no deploy", id)}
	case err != nil:
		return spec, err
	}
	return spec, json.Unmarshal([]byte(raw), &spec)
}
