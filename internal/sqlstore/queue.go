package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/alloc"
)

// This file keeps the queue's promises (see queue.go in package ironpool):
// admission, deadlines whatever the position, freed nodes to the queue
// first, attribution to the requester, and where a request stands.

// exclusion is the constraints of queued requests' items: a request that
// comes later may not take a free node matching any of them.
type exclusion []ironpool.Constraints

// render returns the condition "the node matches none of ex", its
// arguments numbered after n existing ones, or "" for an empty ex.
func (ex exclusion) render(n int) (string, []any) {
	var ors []string
	var args []any
	for i := range ex {
		where, a := constraintSQL(&ex[i], n+len(args))
		args = append(args, a...)
		if len(where) == 0 {
			ors = append(ors, "1 = 1")
		} else {
			ors = append(ors, "("+strings.Join(where, " AND ")+")")
		}
	}
	if len(ors) == 0 {
		return "", nil
	}
	return "NOT (" + strings.Join(ors, " OR ") + ")", args
}

// queuedItems returns the items of queued requests, in queue order, with
// seq strictly below before (0: all of them).
func (s *Store) queuedItems(ctx context.Context, q querier, before int64) (exclusion, error) {
	query := queuedItemsSQL
	var args []any
	if before > 0 {
		query = `SELECT items FROM allocations WHERE state = 'queued' AND seq < $1 ORDER BY seq`
		args = append(args, before)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("queued items: %w", err)
	}
	defer rows.Close()
	return scanQueuedItems(rows)
}

// queuedItemsSQL reads the items of every queued request, in queue order.
const queuedItemsSQL = `SELECT items FROM allocations WHERE state = 'queued' ORDER BY seq`

// scanQueuedItems reads the rows of queuedItemsSQL.
func scanQueuedItems(rows Rows) (exclusion, error) {
	var ex exclusion
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var err error
		if ex, err = ex.addItems(raw); err != nil {
			return nil, err
		}
	}
	return ex, rows.Err()
}

// addItems appends the constraints of an allocation's items column.
func (ex exclusion) addItems(raw string) (exclusion, error) {
	var items []ironpool.AllocationItem
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return ex, err
	}
	for _, it := range items {
		ex = append(ex, it.Constraints)
	}
	return ex, nil
}

// queueEntry is a queued request as the queue's order sees it.
type queueEntry struct {
	seq      int64
	id       string
	priority int
	created  time.Time
}

func (s *Store) queueAging() time.Duration {
	if s.QueueAging == 0 {
		return ironpool.DefaultQueueAging
	}
	return s.QueueAging
}

// queueOrder returns the queued requests in the order they are served:
// highest effective priority (priority plus one per aging step waited)
// first, then arrival. Sorting here rather than in SQL keeps the aging
// rule in one place (ironpool.EffectivePriority) for both engines.
func (s *Store) queueOrder(ctx context.Context, q querier, now time.Time) ([]queueEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, id, priority, created_at FROM allocations WHERE state = 'queued'`)
	if err != nil {
		return nil, fmt.Errorf("queue order: %w", err)
	}
	defer rows.Close()
	var out []queueEntry
	for rows.Next() {
		var e queueEntry
		var created int64
		if err := rows.Scan(&e.seq, &e.id, &e.priority, &created); err != nil {
			return nil, err
		}
		e.created = fromMS(created)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	step := s.queueAging()
	eff := func(e queueEntry) int { return ironpool.EffectivePriority(e.priority, now.Sub(e.created), step) }
	slices.SortStableFunc(out, func(a, b queueEntry) int {
		if pa, pb := eff(a), eff(b); pa != pb {
			return pb - pa
		}
		return int(a.seq - b.seq)
	})
	return out, nil
}

// queueHead locks and returns the first n queued requests in serving order.
func (s *Store) queueHead(ctx context.Context, tx *sql.Tx, now time.Time, n int) ([]allocRow, error) {
	order, err := s.queueOrder(ctx, tx, now)
	if err != nil || len(order) == 0 {
		return nil, err
	}
	order = order[:min(n, len(order))]
	var ph []string
	var args []any
	pos := map[string]int{}
	for i, e := range order {
		args = append(args, e.id)
		ph = append(ph, fmt.Sprintf("$%d", len(args)+1))
		pos[e.id] = i
	}
	rows, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations WHERE state = $1 AND id IN (`+
		strings.Join(ph, ", ")+`) ORDER BY seq `+s.Dialect.LockWait, append([]any{string(ironpool.AllocQueued)}, args...)...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b allocRow) int { return pos[a.alloc.ID] - pos[b.alloc.ID] })
	return rows, nil
}

// itemsOf returns the items' constraints of the queued requests ids.
func (s *Store) itemsOf(ctx context.Context, q querier, ids []string) (exclusion, error) {
	var ex exclusion
	for _, id := range ids {
		var raw string
		if err := q.QueryRowContext(ctx, `SELECT items FROM allocations WHERE id = $1`, id).Scan(&raw); err != nil {
			return nil, err
		}
		var err error
		if ex, err = ex.addItems(raw); err != nil {
			return nil, err
		}
	}
	return ex, nil
}

// queueReservation is what a request that does not queue must leave alone:
// every node a queued request could use.
//
// A queued request its owner's quota does not allow now reserves nothing:
// it could not take the nodes if they were left to it, and reserving them
// would let an owner over its quota block everyone else's immediate
// requests by queueing.
func (s *Store) queueReservation(ctx context.Context, q querier) (exclusion, error) {
	var quotas int
	if !s.noQuotas.Load() {
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM quotas`).Scan(&quotas); err != nil {
			return nil, err
		}
	}
	if quotas == 0 {
		return s.queuedItems(ctx, q, 0)
	}
	rows, err := s.queryAllocations(ctx, q, `SELECT `+allocColumns+` FROM allocations WHERE state = 'queued' ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	var ex exclusion
	for _, r := range rows {
		qs, err := s.quotasFor(ctx, q, r.alloc.Owner, false)
		if err != nil {
			return nil, err
		}
		if len(qs) > 0 {
			refusal, _, err := s.quotaCheck(ctx, q, qs, r.alloc, r.ttl, now)
			if err != nil {
				return nil, err
			}
			if refusal != nil {
				continue
			}
		}
		for _, it := range r.alloc.Items {
			ex = append(ex, it.Constraints)
		}
	}
	return ex, nil
}

// reservedShortfall is the shortfall of a refused request when nodes are
// reserved for the queue: Free counts only the nodes it may take, Reserved
// the free matching ones kept for requests queued earlier.
func (s *Store) reservedShortfall(ctx context.Context, q querier, a *ironpool.Allocation, ex exclusion) ([]ironpool.Shortfall, error) {
	sf, err := s.shortfall(ctx, q, a)
	if err != nil || len(ex) == 0 {
		return sf, err
	}
	for i := range a.Items {
		free, err := s.countFree(ctx, q, &a.Items[i].Constraints, ex)
		if err != nil {
			return nil, err
		}
		sf[i].Reserved, sf[i].Free = sf[i].Free-free, free
	}
	return sf, nil
}

// countFree counts the available nodes matching c and not ex.
func (s *Store) countFree(ctx context.Context, q querier, c *ironpool.Constraints, ex exclusion) (int, error) {
	where, args := constraintSQL(c, 1)
	if cond, a := ex.render(1 + len(args)); cond != "" {
		where, args = append(where, cond), append(args, a...)
	}
	cond := "state = $1"
	if len(where) > 0 {
		cond += " AND " + strings.Join(where, " AND ")
	}
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM nodes WHERE `+cond, append([]any{string(ironpool.NodeAvailable)}, args...)...).Scan(&n)
	return n, err
}

// admit refuses a request that no state of the pool could satisfy: it
// would wait for nodes that do not exist and block every request behind
// it. Nodes count in any state, since allocated, cleaning, maintenance and
// error nodes may all come back.
func (s *Store) admit(ctx context.Context, q querier, a *ironpool.Allocation) error {
	if a.Topology != nil {
		return s.admitTopology(ctx, q, a)
	}
	counts := make([]int, len(a.Items))
	for i, it := range a.Items {
		counts[i] = it.Count
	}
	need := alloc.Need(counts)
	lists := make([][]candidate, len(a.Items))
	fits := true
	for i := range a.Items {
		where, args := constraintSQL(&a.Items[i].Constraints, 0)
		cond := "1 = 1"
		if len(where) > 0 {
			cond = strings.Join(where, " AND ")
		}
		rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT id, name, cpus, memory_mb, local_gb, last_allocated_at FROM nodes
			WHERE %s ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id LIMIT %d`, cond, need), args...)
		if err != nil {
			return fmt.Errorf("admission: %w", err)
		}
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.id, &c.name, &c.cpus, &c.memoryMB, &c.localGB, &c.last); err != nil {
				rows.Close()
				return err
			}
			lists[i] = append(lists[i], c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(lists[i]) < counts[i] {
			fits = false
		}
	}
	if fits {
		if _, ok := matchLists(counts, lists); ok {
			return nil
		}
	}
	sf, err := s.shortfall(ctx, q, a)
	if err != nil {
		return err
	}
	var parts []string
	for _, f := range sf {
		name := f.Flavor
		if name == "" {
			name = fmt.Sprintf("item %d", f.Item)
		}
		parts = append(parts, fmt.Sprintf("%s: asked %d, %d match in all", name, f.Requested, f.Matching))
	}
	msg := "no state of the pool could satisfy this request (" + strings.Join(parts, "; ") + ")"
	if fits {
		msg += "; the items compete for the same nodes"
	}
	return &ironpool.Error{Code: ironpool.ECAPACITY, Field: "items", Message: msg, Shortfall: sf,
		Hint: "it was not queued: it would wait forever; ask for fewer nodes or add matching nodes"}
}

// matchLists runs the exact matcher over per-item candidate lists, ranking
// nodes best fit first as match does.
func matchLists(counts []int, lists [][]candidate) ([][]int64, bool) {
	cands, _ := rankLists(lists)
	return alloc.Match(counts, cands)
}

// recordRequester stores who queued allocation id, from ctx's actor.
func (s *Store) recordRequester(ctx context.Context, tx *sql.Tx, id string) error {
	a := ironpool.ActorFromContext(ctx)
	if a == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE allocations SET requested_by = $1, requested_role = $2 WHERE id = $3`,
		a.TokenID, string(a.Role), id)
	return err
}

// requesterContext returns ctx acting as the token that queued allocation
// id, so the events of serving it name the requester, not the system.
func (s *Store) requesterContext(ctx context.Context, tx *sql.Tx, id string) (context.Context, error) {
	var by, role string
	err := tx.QueryRowContext(ctx, `SELECT requested_by, requested_role FROM allocations WHERE id = $1`, id).Scan(&by, &role)
	if err != nil || by == "" {
		return ctx, err
	}
	return ironpool.NewContextWithActor(ctx, &ironpool.Actor{TokenID: by, Role: ironpool.Role(role)}), nil
}

// failExpiredQueued fails every queued request whose wait ran out, wherever
// it stands in the queue: the dispatcher stops at the first request that
// does not fit, so the deadlines behind a blocked head were not enforced.
func (s *Store) failExpiredQueued(ctx context.Context, tx *sql.Tx, now time.Time) ([]*ironpool.Allocation, error) {
	rows, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations
		WHERE state = $1 AND wait_until > 0 AND wait_until <= $2 ORDER BY seq `+s.Dialect.LockWait,
		string(ironpool.AllocQueued), ms(now))
	if err != nil {
		return nil, err
	}
	var out []*ironpool.Allocation
	for _, r := range rows {
		a := r.alloc
		why, err := s.waitFailure(ctx, tx, a)
		if err != nil {
			return nil, err
		}
		a.State, a.LastError, a.ReleasedAt = ironpool.AllocFailed, why, now
		if err := updateQueued(ctx, tx, a.ID, `state = $1, last_error = $2, released_at = $3`,
			string(a.State), a.LastError, ms(now)); err != nil {
			return nil, err
		}
		if err := s.insertEvent(ctx, tx, "allocation.failed", "allocation/"+a.ID, a.LastError); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// QueueInfo says where queued allocation id stands; see ironpool.Store.
func (s *Store) QueueInfo(ctx context.Context, id string) (*ironpool.QueueInfo, error) {
	var info *ironpool.QueueInfo
	err := s.read(ctx, func(tx *sql.Tx) error {
		info = nil
		order, err := s.queueOrder(ctx, tx, s.Now().UTC())
		if err != nil {
			return err
		}
		idx := slices.IndexFunc(order, func(e queueEntry) bool { return e.id == id })
		if idx < 0 {
			return nil
		}
		rows, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations WHERE id = $1`, id)
		if err != nil || len(rows) == 0 {
			return err
		}
		a := rows[0].alloc
		info = &ironpool.QueueInfo{Position: idx + 1, Length: len(order)}
		var aheadIDs []string
		for _, e := range order[:idx] {
			aheadIDs = append(aheadIDs, e.id)
		}
		ahead, err := s.itemsOf(ctx, tx, aheadIDs)
		if err != nil {
			return err
		}
		if info.Items, err = s.reservedShortfall(ctx, tx, a, ahead); err != nil {
			return err
		}
		short := false
		var parts []string
		for _, f := range info.Items {
			if f.Free < f.Requested {
				short = true
				name := f.Flavor
				if name == "" {
					name = fmt.Sprintf("item %d", f.Item)
				}
				p := fmt.Sprintf("%s: asked %d, %d match, %d free", name, f.Requested, f.Matching, f.Free)
				if f.Reserved > 0 {
					p += fmt.Sprintf(", %d reserved for requests ahead", f.Reserved)
				}
				parts = append(parts, p)
			}
		}
		var reason []string
		if n := info.Position - 1; n > 0 {
			reason = append(reason, fmt.Sprintf("%d request(s) ahead in the queue", n))
		}
		switch {
		case short:
			reason = append(reason, "short of nodes ("+strings.Join(parts, "; ")+")")
		default:
			_, ok, err := s.match(ctx, tx, a, "", ahead)
			if err != nil {
				return err
			}
			if ok {
				reason = append(reason, "fits now: about to be served")
			} else if a.Topology != nil {
				_, res, err := s.matchTopology(ctx, tx, a, "", false, ahead)
				if err != nil {
					return err
				}
				reason = append(reason, topologyShort(a, res, "free"))
			} else {
				info.Compete = true
				reason = append(reason, "every item fits alone, but the items compete for the same nodes")
			}
		}
		qs, err := s.quotasFor(ctx, tx, a.Owner, false)
		if err != nil {
			return err
		}
		if len(qs) > 0 {
			refusal, _, err := s.quotaCheck(ctx, tx, qs, a, rows[0].ttl, s.Now().UTC())
			if err != nil {
				return err
			}
			if refusal != nil {
				// Said first: it is why the request waits even where the
				// pool could serve it.
				reason = append([]string{"waiting for quota: " + refusal.Message}, reason...)
				info.Quota = refusal.Quota
			}
		}
		info.Reason = strings.Join(reason, "; ")
		info.EstimatedAt, err = s.estimate(ctx, tx, a, info.Items)
		return err
	})
	return info, err
}

// estimate is when the leases holding nodes that match a's items will have
// freed enough of them, if they run to their expiry.
func (s *Store) estimate(ctx context.Context, q querier, a *ironpool.Allocation, items []ironpool.Shortfall) (time.Time, error) {
	var at time.Time
	for i, f := range items {
		missing := f.Requested - f.Free
		if missing <= 0 {
			continue
		}
		where, args := constraintSQL(&a.Items[i].Constraints, 1)
		cond := "a.state = $1"
		for _, w := range where {
			cond += " AND n." + w
		}
		var exp int64
		err := q.QueryRowContext(ctx, fmt.Sprintf(`SELECT a.expires_at FROM nodes n JOIN allocations a ON a.id = n.allocation_id
			WHERE %s ORDER BY a.expires_at LIMIT 1 OFFSET %d`, cond, missing-1),
			append([]any{string(ironpool.AllocActive)}, args...)...).Scan(&exp)
		if errors.Is(err, sql.ErrNoRows) {
			return time.Time{}, nil // not enough leased nodes: no lease's end would do it
		} else if err != nil {
			return time.Time{}, err
		}
		if t := fromMS(exp); t.After(at) {
			at = t
		}
	}
	return at, nil
}
