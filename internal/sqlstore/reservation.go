package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironpool/ironpool"
)

// This file keeps the reservations' promises (see ironpool.ReservationStore).
// A reservation names its nodes at booking. A node serves a window [S, E)
// when no hold of it comes within the cleaning gap G of the window: its
// live lease, if any, expires at or before S-G, and no other pending
// reservation of it starts before E+G and ends after S-G. Allocations, for
// their part, leave alone every node whose next pending reservation starts
// before the lease's expiry plus G (reservedUntil), the claim re-checks it
// in the statement that writes, and an extend is refused when it would run
// into a reservation. Together these keep every two holds of a node at
// least G apart.

// SetReservationGap sets the cleaning gap kept between consecutive holds of
// a node (the server's --reservation-gap).
func (s *Store) SetReservationGap(d time.Duration) { s.ReservationGap = d }

// excluder is a condition on candidate nodes, rendered with its arguments
// numbered after n existing ones ("" for none).
type excluder interface {
	render(n int) (string, []any)
}

// reservedCond is the condition "no pending reservation of the node starts
// before the time in placeholder ph".
func reservedCond(ph string) string {
	return `NOT EXISTS (SELECT 1 FROM reservation_nodes rn JOIN reservations r ON r.id = rn.reservation_id
		WHERE rn.node_id = nodes.id AND r.state = 'pending' AND r.start_at < ` + ph + `)`
}

// untilExclusion keeps a lease ending at until (gap not yet added) off the
// nodes reserved before until+gap.
type untilExclusion struct{ until int64 }

func (e untilExclusion) render(n int) (string, []any) {
	return reservedCond(fmt.Sprintf("$%d", n+1)), []any{e.until}
}

// reservedUntil is the exclusion for a lease that expires at expires.
func (s *Store) reservedUntil(expires time.Time) excluder {
	return untilExclusion{ms(expires.Add(s.ReservationGap))}
}

// windowExclusion keeps only the nodes free over a window stretched by the
// gap, [from, to) = [S-G, E+G): no active lease expiring after from and
// no pending reservation other than self overlapping it.
type windowExclusion struct {
	from, to int64
	self     string
}

func (e windowExclusion) render(n int) (string, []any) {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM allocations al WHERE al.id = nodes.allocation_id AND al.state = 'active' AND al.expires_at > $%d)
		AND NOT EXISTS (SELECT 1 FROM reservation_nodes rn JOIN reservations r ON r.id = rn.reservation_id
		WHERE rn.node_id = nodes.id AND r.state = 'pending' AND r.start_at < $%d AND r.end_at > $%d AND r.id <> $%d)`,
		n+1, n+2, n+3, n+4), []any{e.from, e.to, e.from, e.self}
}

// idExclusion keeps the listed nodes out (those a reservation uses already).
type idExclusion []int64

func (e idExclusion) render(n int) (string, []any) {
	if len(e) == 0 {
		return "", nil
	}
	var ph []string
	var args []any
	for _, id := range e {
		args = append(args, id)
		ph = append(ph, fmt.Sprintf("$%d", n+len(args)))
	}
	return "id NOT IN (" + strings.Join(ph, ", ") + ")", args
}

// bookableStates are the node states a future window may be booked on:
// free, or held or cleaning now and expected back. Maintenance, error and
// enrolling nodes have no known return, so they are not promised.
var bookableStates = []ironpool.NodeState{ironpool.NodeAvailable, ironpool.NodeAllocated, ironpool.NodeCleaning,
	ironpool.NodeDeploying, ironpool.NodeDeployed}

// rowVersion is what a booking read of a node row: the row lock update
// finds the row only if none of it changed since. State and allocation
// cover a claim or a release, updated_at an extend (which bumps it), even
// within one millisecond of the read.
type rowVersion struct {
	updated    int64
	state      string
	allocation string
}

// windowCandidates reads up to limit nodes in one of states that satisfy c
// and ex, best fit first, with the version each was read at.
func (s *Store) windowCandidates(ctx context.Context, q querier, c *ironpool.Constraints, limit int, states []ironpool.NodeState, ex ...excluder) ([]candidate, map[int64]rowVersion, error) {
	where, args := constraintSQL(c, 0)
	where, args = s.reachableSQL(where, args, 0)
	var ph []string
	for _, st := range states {
		args = append(args, string(st))
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	where = append(where, "state IN ("+strings.Join(ph, ", ")+")")
	for _, e := range ex {
		if cond, a := e.render(len(args)); cond != "" {
			where, args = append(where, cond), append(args, a...)
		}
	}
	rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT id, name, cpus, memory_mb, local_gb, last_allocated_at, updated_at, state, COALESCE(allocation_id, '') FROM nodes
		WHERE %s ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id LIMIT %d`, strings.Join(where, " AND "), limit), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("window candidates: %w", err)
	}
	defer rows.Close()
	var out []candidate
	seen := map[int64]rowVersion{}
	for rows.Next() {
		var c candidate
		var v rowVersion
		if err := rows.Scan(&c.id, &c.name, &c.cpus, &c.memoryMB, &c.localGB, &c.last, &v.updated, &v.state, &v.allocation); err != nil {
			return nil, nil, err
		}
		out = append(out, c)
		seen[c.id] = v
	}
	return out, seen, rows.Err()
}

// windowMatch picks nodes for counts[i] of every item among the nodes in
// states that satisfy ex, with package alloc's exact matcher over the best
// Need(counts) candidates per item, and locks the picks. The lock is an
// update of each picked row conditioned on the version it was read at:
// on PostgreSQL a concurrent claim, extend or booking of the node changes
// or holds the row, the update then finds nothing, and the match is taken
// again on what has committed since (SQLite's single writer never gets
// there). Every allocation claim and extend touches the node rows it
// decides on, so a booking never rests on a lease read before it changed.
func (s *Store) windowMatch(ctx context.Context, tx *sql.Tx, items []ironpool.AllocationItem, counts []int, states []ironpool.NodeState, ex ...excluder) ([][]candidate, bool, error) {
	need := 0
	for _, c := range counts {
		need += c
	}
	for attempt := 0; ; attempt++ {
		lists := make([][]candidate, len(items))
		byID := map[int64]candidate{}
		seen := map[int64]rowVersion{}
		for i := range items {
			if counts[i] == 0 {
				continue
			}
			c, upd, err := s.windowCandidates(ctx, tx, &items[i].Constraints, need, states, ex...)
			if err != nil {
				return nil, false, err
			}
			if len(c) < counts[i] {
				return nil, false, nil
			}
			lists[i] = c
			for _, n := range c {
				byID[n.id] = n
				seen[n.id] = upd[n.id]
			}
		}
		picks, ok := matchLists(counts, lists)
		if !ok {
			return nil, false, nil
		}
		out := make([][]candidate, len(picks))
		locked := true
		for i, ids := range picks {
			for _, id := range ids {
				out[i] = append(out[i], byID[id])
				v := seen[id]
				res, err := tx.ExecContext(ctx, `UPDATE nodes SET updated_at = CASE WHEN updated_at < $1 THEN $1 ELSE updated_at + 1 END
					WHERE id = $2 AND updated_at = $3 AND state = $4 AND COALESCE(allocation_id, '') = $5`, ms(s.Now()), id, v.updated, v.state, v.allocation)
				if err != nil {
					return nil, false, fmt.Errorf("lock node: %w", err)
				}
				if k, _ := res.RowsAffected(); k != 1 {
					locked = false
				}
			}
		}
		if locked {
			return out, true, nil
		}
		if attempt >= 4 {
			return nil, false, &ironpool.Error{Code: ironpool.EUNAVAILABLE, Message: "the nodes changed under the booking five times in a row; retry"}
		}
	}
}

// Reserve books a future window; see ironpool.ReservationStore.
func (s *Store) Reserve(ctx context.Context, r *ironpool.Reservation) error {
	gap := s.ReservationGap
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.Now().UTC()
		if !r.Start.After(now) {
			return ironpool.FieldErrorf("start", "%s is not in the future", r.Start.UTC().Format(time.RFC3339))
		}
		if !r.End.After(r.Start) {
			return ironpool.FieldErrorf("end", "is not after start")
		}
		if r.ID == "" {
			r.ID = uuid.NewString()
		}
		r.CreatedAt, r.State, r.Gap, r.AllocationID, r.LastError = now, ironpool.ResPending, gap.String(), "", ""
		if r.Metadata == nil {
			r.Metadata = map[string]string{}
		}
		// Quotas admit a booking as they would the request alone: a window
		// longer than max_lease, or more nodes than a quota allows at all,
		// is refused now. Usage during the window is not predicted, and the
		// start makes the allocation without a second check: the booking
		// was its admission.
		quotas, err := s.quotasFor(ctx, tx, r.Owner, false)
		if err != nil {
			return err
		}
		if len(quotas) > 0 {
			refusal, permanent, err := s.quotaCheck(ctx, tx, quotas, &ironpool.Allocation{Owner: r.Owner, Items: r.Items}, r.End.Sub(r.Start), now)
			if err != nil {
				return err
			}
			if refusal != nil && permanent {
				return refusal
			}
		}
		counts := make([]int, len(r.Items))
		for i, it := range r.Items {
			counts[i] = it.Count
		}
		win := windowExclusion{ms(r.Start.Add(-gap)), ms(r.End.Add(gap)), r.ID}
		picks, ok, err := s.windowMatch(ctx, tx, r.Items, counts, bookableStates, win)
		if err != nil {
			return err
		}
		if !ok {
			sf, err := s.reservationShortfall(ctx, tx, r, gap)
			if err != nil {
				return err
			}
			return ironpool.ReservationCapacityError(sf)
		}
		for i := range r.Items {
			r.Items[i].Nodes = nil
		}
		for i, p := range picks {
			for _, n := range p {
				r.Items[i].Nodes = append(r.Items[i].Nodes, n.name)
			}
		}
		items, _ := json.Marshal(r.Items)
		meta, _ := json.Marshal(r.Metadata)
		if _, err := tx.ExecContext(ctx, `INSERT INTO reservations (id, owner, state, mode, pool, items, metadata,
			start_at, end_at, gap_ms, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
			r.ID, r.Owner, string(r.State), string(r.Mode), r.Pool, string(items), string(meta),
			ms(r.Start), ms(r.End), gap.Milliseconds(), ms(now)); err != nil {
			if _, ok := s.Dialect.Unique(err); ok {
				return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "id", Message: "a reservation with this id exists already"}
			}
			return fmt.Errorf("insert reservation: %w", err)
		}
		if err := insertReservationNodes(ctx, tx, r.ID, picks); err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, "reservation.created", "reservation/"+r.ID,
			fmt.Sprintf("%s booked %s from %s to %s (gap %s)", r.Owner, itemsSummary(r.Items),
				r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), gap))
	})
}

func insertReservationNodes(ctx context.Context, tx *sql.Tx, id string, picks [][]candidate) error {
	for i, p := range picks {
		for _, n := range p {
			if _, err := tx.ExecContext(ctx, `INSERT INTO reservation_nodes (reservation_id, node_id, item) VALUES ($1, $2, $3)`,
				id, n.id, i); err != nil {
				return fmt.Errorf("record reservation nodes: %w", err)
			}
		}
	}
	return nil
}

// reservationShortfall explains a refused booking per item: the nodes that
// match at all, with their holds stretched by the gap on both sides so
// that "busy" means "cannot be promised for a window touching this time".
func (s *Store) reservationShortfall(ctx context.Context, q querier, r *ironpool.Reservation, gap time.Duration) ([]ironpool.Shortfall, error) {
	cal, err := s.calendar(ctx, q, "", r.Start.Add(-gap), r.End.Add(gap), gap)
	if err != nil {
		return nil, err
	}
	out := make([]ironpool.Shortfall, len(r.Items))
	for i, it := range r.Items {
		var nodes []*ironpool.CalendarNode
		for k := range cal.nodes {
			if it.Constraints.Matches(cal.nodes[k]) {
				cn := cal.Nodes[k]
				cn.Holds = slices.Clone(cn.Holds)
				for h := range cn.Holds {
					if cn.Holds[h].Kind != ironpool.HoldUnavailable {
						cn.Holds[h].Start = cn.Holds[h].Start.Add(-gap)
					}
				}
				nodes = append(nodes, &cn)
			}
		}
		out[i] = ironpool.ReservationShortfall(i, it.Flavor, it.Count, nodes, r.Start, r.End)
	}
	return out, nil
}

// calendarData is a calendar with the node records its entries match by.
type calendarData struct {
	*ironpool.Calendar
	nodes []*ironpool.Node
}

// Calendar reads the holds of pool's nodes over [from, to); see
// ironpool.ReservationStore.
func (s *Store) Calendar(ctx context.Context, pool string, from, to time.Time) (*ironpool.Calendar, error) {
	var out *ironpool.Calendar
	err := s.read(ctx, func(tx *sql.Tx) error {
		c, err := s.calendar(ctx, tx, pool, from, to, s.ReservationGap)
		if err != nil {
			return err
		}
		for i := range c.Nodes {
			c.Nodes[i].SetNode(c.nodes[i])
		}
		out = c.Calendar
		return nil
	})
	return out, err
}

func (s *Store) calendar(ctx context.Context, q querier, pool string, from, to time.Time, gap time.Duration) (*calendarData, error) {
	cond, args := "1 = 1", []any{}
	if pool != "" {
		cond, args = "pool = $1", []any{pool}
	}
	rows, err := q.QueryContext(ctx, `SELECT id, name, pool, state, cpus, memory_mb, local_gb, cpu_arch, resource_class, traits,
		ironic_uuid, ironic_endpoint FROM nodes WHERE `+cond+` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("calendar nodes: %w", err)
	}
	c := &calendarData{Calendar: &ironpool.Calendar{From: from, To: to, Gap: gap.String(), Nodes: []ironpool.CalendarNode{}}}
	index := map[int64]int{}
	for rows.Next() {
		var n ironpool.Node
		var state, traits string
		var ironic sql.NullString
		if err := rows.Scan(&n.ID, &n.Name, &n.Pool, &state, &n.CPUs, &n.MemoryMB, &n.LocalGB, &n.CPUArch, &n.ResourceClass,
			&traits, &ironic, &n.IronicEndpoint); err != nil {
			rows.Close()
			return nil, err
		}
		n.State = ironpool.NodeState(state)
		for _, t := range strings.Split(traits, ",") {
			if t != "" {
				n.Traits = append(n.Traits, t)
			}
		}
		slices.Sort(n.Traits)
		if ironic.Valid && s.Reachable != nil && !slices.Contains(s.Reachable, n.IronicEndpoint) {
			continue // never picked here: not part of this server's future
		}
		index[n.ID] = len(c.nodes)
		c.nodes = append(c.nodes, &n)
		cn := ironpool.CalendarNode{Node: n.Name, Pool: n.Pool, State: n.State, Holds: []ironpool.Hold{}}
		if !slices.Contains(bookableStates, n.State) {
			cn.Holds = append(cn.Holds, ironpool.Hold{Kind: ironpool.HoldUnavailable, Start: from, End: to, CleanUntil: to})
		}
		c.Nodes = append(c.Nodes, cn)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	add := func(id int64, h ironpool.Hold) {
		if k, ok := index[id]; ok && h.Start.Before(to) && h.CleanUntil.After(from) {
			c.Nodes[k].Holds = append(c.Nodes[k].Holds, h)
		}
	}
	lr, err := q.QueryContext(ctx, `SELECT n.id, a.id, a.owner, a.created_at, a.expires_at FROM nodes n
		JOIN allocations a ON a.id = n.allocation_id WHERE a.state = 'active'`)
	if err != nil {
		return nil, fmt.Errorf("calendar leases: %w", err)
	}
	for lr.Next() {
		var id, created, expires int64
		var h ironpool.Hold
		if err := lr.Scan(&id, &h.ID, &h.Owner, &created, &expires); err != nil {
			lr.Close()
			return nil, err
		}
		h.Kind, h.Start, h.End = ironpool.HoldLease, fromMS(created), fromMS(expires)
		h.CleanUntil = h.End.Add(gap)
		add(id, h)
	}
	lr.Close()
	if err := lr.Err(); err != nil {
		return nil, err
	}
	rr, err := q.QueryContext(ctx, `SELECT rn.node_id, r.id, r.owner, r.start_at, r.end_at FROM reservation_nodes rn
		JOIN reservations r ON r.id = rn.reservation_id WHERE r.state = 'pending' ORDER BY r.start_at`)
	if err != nil {
		return nil, fmt.Errorf("calendar reservations: %w", err)
	}
	defer rr.Close()
	for rr.Next() {
		var id, start, end int64
		var h ironpool.Hold
		if err := rr.Scan(&id, &h.ID, &h.Owner, &start, &end); err != nil {
			return nil, err
		}
		h.Kind, h.Start, h.End = ironpool.HoldReservation, fromMS(start), fromMS(end)
		h.CleanUntil = h.End.Add(gap)
		add(id, h)
	}
	return c, rr.Err()
}

const reservationColumns = `id, owner, state, mode, pool, items, metadata, start_at, end_at, gap_ms, created_at, allocation_id, last_error`

func (s *Store) queryReservations(ctx context.Context, q querier, query string, args ...any) ([]*ironpool.Reservation, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query reservations: %w", err)
	}
	defer rows.Close()
	out := []*ironpool.Reservation{}
	for rows.Next() {
		var r ironpool.Reservation
		var state, mode, items, meta string
		var start, end, gap, created int64
		if err := rows.Scan(&r.ID, &r.Owner, &state, &mode, &r.Pool, &items, &meta, &start, &end, &gap, &created,
			&r.AllocationID, &r.LastError); err != nil {
			return nil, err
		}
		r.State, r.Mode = ironpool.ReservationState(state), ironpool.Mode(mode)
		if err := json.Unmarshal([]byte(items), &r.Items); err != nil {
			return nil, fmt.Errorf("reservation %s items: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(meta), &r.Metadata); err != nil {
			return nil, fmt.Errorf("reservation %s metadata: %w", r.ID, err)
		}
		r.Start, r.End, r.CreatedAt = fromMS(start), fromMS(end), fromMS(created)
		r.Gap = (time.Duration(gap) * time.Millisecond).String()
		out = append(out, &r)
	}
	return out, rows.Err()
}

// FindReservations lists reservations, soonest start first.
func (s *Store) FindReservations(ctx context.Context, f ironpool.ReservationFilter) ([]*ironpool.Reservation, error) {
	// A user token's owners may be patterns (ci-*), as for allocations.
	l := ownerList{table: "reservations", id: f.ID, owner: f.Owner, owners: f.Owners, state: string(f.State)}
	if f.Live {
		l.live = "'pending', 'active'"
	}
	w, ok, err := s.listFilter(ctx, l)
	if !ok {
		return []*ironpool.Reservation{}, s.unavailable(err)
	}
	q := `SELECT ` + reservationColumns + ` FROM reservations` + w.sql() + fmt.Sprintf(" ORDER BY start_at, seq LIMIT %d", listLimit(f.Limit))
	args := w.args
	out, err := s.queryReservations(ctx, s.R, q, args...)
	return out, s.unavailable(err)
}

// FindReservation returns one reservation.
func (s *Store) FindReservation(ctx context.Context, id string) (*ironpool.Reservation, error) {
	out, err := s.queryReservations(ctx, s.R, `SELECT `+reservationColumns+` FROM reservations WHERE id = $1`, id)
	if err != nil {
		return nil, s.unavailable(err)
	}
	if len(out) == 0 {
		return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("no reservation %q", id)}
	}
	return out[0], nil
}

// CancelReservation ends a pending reservation; see ironpool.ReservationStore.
func (s *Store) CancelReservation(ctx context.Context, id string) (*ironpool.Reservation, error) {
	var r *ironpool.Reservation
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rs, err := s.queryReservations(ctx, tx, `SELECT `+reservationColumns+` FROM reservations WHERE id = $1 `+s.Dialect.LockWait, id)
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("no reservation %q", id)}
		}
		r = rs[0]
		switch r.State {
		case ironpool.ResActive:
			return (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "id",
				Message: fmt.Sprintf("reservation %s is active as allocation %s", id, r.AllocationID)}).
				WithHint("release the allocation: ironpool release " + r.AllocationID)
		case ironpool.ResCancelled, ironpool.ResFailed:
			return nil // idempotent
		}
		if err := s.setReservation(ctx, tx, r, ironpool.ResPending, `state = $1`, string(ironpool.ResCancelled)); err != nil {
			return err
		}
		r.State = ironpool.ResCancelled
		return s.insertEvent(ctx, tx, "reservation.cancelled", "reservation/"+id,
			fmt.Sprintf("cancelled %s of %s from %s", itemsSummary(r.Items), r.Owner, r.Start.Format(time.RFC3339)))
	})
	return r, err
}

// setReservation updates a reservation that must still be in state was
// (set numbers its arguments from $1): a decision is taken on the row as
// it is in the transaction that writes.
func (s *Store) setReservation(ctx context.Context, tx *sql.Tx, r *ironpool.Reservation, was ironpool.ReservationState, set string, args ...any) error {
	n := len(args)
	res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE reservations SET %s WHERE id = $%d AND state = $%d`, set, n+1, n+2),
		append(args, r.ID, string(was))...)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("reservation %s: it is no longer %s", r.ID, was)
	}
	return nil
}

// pinnedNode is one node a reservation names, as it is now.
type pinnedNode struct {
	id    int64
	name  string
	item  int
	state ironpool.NodeState // "" when the node was deleted
	alloc bool               // held by an allocation
}

func (s *Store) pinned(ctx context.Context, q querier, id string) ([]pinnedNode, error) {
	rows, err := q.QueryContext(ctx, `SELECT rn.node_id, rn.item, COALESCE(n.name, ''), COALESCE(n.state, ''),
		CASE WHEN n.allocation_id IS NULL THEN 0 ELSE 1 END
		FROM reservation_nodes rn LEFT JOIN nodes n ON n.id = rn.node_id WHERE rn.reservation_id = $1 ORDER BY rn.item, rn.node_id`, id)
	if err != nil {
		return nil, fmt.Errorf("reserved nodes: %w", err)
	}
	defer rows.Close()
	var out []pinnedNode
	for rows.Next() {
		var p pinnedNode
		var st string
		var held int
		if err := rows.Scan(&p.id, &p.item, &p.name, &st, &held); err != nil {
			return nil, err
		}
		p.state, p.alloc = ironpool.NodeState(st), held == 1
		out = append(out, p)
	}
	return out, rows.Err()
}

// StartReservations repairs, starts and fails reservations; see
// ironpool.ReservationStore.
func (s *Store) StartReservations(ctx context.Context) ([]*ironpool.Reservation, []*ironpool.Allocation, error) {
	// The loop calls this on every pass; a read answers "nothing to do".
	var todo int
	if err := s.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM reservations r WHERE r.state = 'pending' AND (r.start_at <= $1
		OR EXISTS (SELECT 1 FROM reservation_nodes rn LEFT JOIN nodes n ON n.id = rn.node_id
			WHERE rn.reservation_id = r.id AND (n.id IS NULL OR n.state NOT IN ('available', 'allocated', 'cleaning', 'deploying', 'deployed'))))
		LIMIT 1) q`, ms(s.Now())).Scan(&todo); err != nil {
		return nil, nil, s.unavailable(err)
	}
	if todo == 0 {
		return nil, nil, nil
	}
	var changed []*ironpool.Reservation
	var started []*ironpool.Allocation
	var claimed map[string][][]candidate
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		changed, started, claimed = nil, nil, map[string][][]candidate{}
		now := s.Now().UTC()
		rs, err := s.queryReservations(ctx, tx, `SELECT `+reservationColumns+` FROM reservations WHERE state = 'pending' ORDER BY start_at, seq LIMIT 1000 `+s.Dialect.LockWait)
		if err != nil {
			return err
		}
		for _, r := range rs {
			pins, err := s.pinned(ctx, tx, r.ID)
			if err != nil {
				return err
			}
			if !r.Start.After(now) {
				a, picks, err := s.startReservation(ctx, tx, r, pins, now)
				if err != nil {
					return err
				}
				changed = append(changed, r)
				if a != nil {
					started = append(started, a)
					claimed[a.ID] = picks
				}
				continue
			}
			ok, err := s.repairReservation(ctx, tx, r, pins)
			if err != nil {
				return err
			}
			if ok {
				changed = append(changed, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for _, a := range started {
		if err := s.loadNodes(ctx, a, claimed[a.ID]); err != nil {
			return changed, started, s.unavailable(err)
		}
	}
	return changed, started, nil
}

// broken reports whether a reserved node can no longer be promised.
func (p pinnedNode) broken() bool {
	return p.state == "" || !slices.Contains(bookableStates, p.state)
}

func (p pinnedNode) why() string {
	if p.state == "" {
		return fmt.Sprintf("node #%d was deleted", p.id)
	}
	return fmt.Sprintf("node %s is in %s", p.name, p.state)
}

// repairReservation replaces the broken nodes of a pending reservation by
// nodes free over its whole window, or marks it at risk (once). It reports
// whether it changed the reservation.
func (s *Store) repairReservation(ctx context.Context, tx *sql.Tx, r *ironpool.Reservation, pins []pinnedNode) (bool, error) {
	counts := make([]int, len(r.Items))
	var keep idExclusion
	var why []string
	var gone []pinnedNode
	for _, p := range pins {
		if p.broken() {
			counts[p.item]++
			why = append(why, p.why())
			gone = append(gone, p)
		} else {
			keep = append(keep, p.id)
		}
	}
	if len(gone) == 0 {
		if r.LastError != "" { // the broken node came back
			r.LastError = ""
			return true, s.setReservation(ctx, tx, r, ironpool.ResPending, `last_error = $1`, "")
		}
		return false, nil
	}
	gap := s.ReservationGap
	win := windowExclusion{ms(r.Start.Add(-gap)), ms(r.End.Add(gap)), r.ID}
	picks, ok, err := s.windowMatch(ctx, tx, r.Items, counts, bookableStates, win, keep)
	if err != nil {
		return false, err
	}
	if !ok {
		msg := strings.Join(why, "; ") + ", and no free node can replace it for the whole window yet"
		if r.LastError == msg {
			return false, nil
		}
		r.LastError = msg
		if err := s.setReservation(ctx, tx, r, ironpool.ResPending, `last_error = $1`, msg); err != nil {
			return false, err
		}
		return true, s.insertEvent(ctx, tx, "reservation.at_risk", "reservation/"+r.ID,
			fmt.Sprintf("reservation of %s from %s is at risk: %s", r.Owner, r.Start.Format(time.RFC3339), msg))
	}
	repl := s.replace(r, pins, gone, picks)
	for _, p := range gone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM reservation_nodes WHERE reservation_id = $1 AND node_id = $2`, r.ID, p.id); err != nil {
			return false, err
		}
	}
	if err := insertReservationNodes(ctx, tx, r.ID, picks); err != nil {
		return false, err
	}
	items, _ := json.Marshal(r.Items)
	r.LastError = ""
	if err := s.setReservation(ctx, tx, r, ironpool.ResPending, `items = $1, last_error = ''`, string(items)); err != nil {
		return false, err
	}
	return true, s.insertEvent(ctx, tx, "reservation.repaired", "reservation/"+r.ID,
		fmt.Sprintf("%s; replaced by %s", strings.Join(why, "; "), repl))
}

// replace sets r's items to the nodes of pins that stay plus picks, and
// names the new ones.
func (s *Store) replace(r *ironpool.Reservation, pins []pinnedNode, gone []pinnedNode, picks [][]candidate) string {
	for i := range r.Items {
		r.Items[i].Nodes = nil
	}
	for _, p := range pins {
		if !slices.ContainsFunc(gone, func(g pinnedNode) bool { return g.id == p.id }) {
			r.Items[p.item].Nodes = append(r.Items[p.item].Nodes, p.name)
		}
	}
	var names []string
	for i, p := range picks {
		for _, n := range p {
			r.Items[i].Nodes = append(r.Items[i].Nodes, n.name)
			names = append(names, n.name)
		}
	}
	return strings.Join(names, " ")
}

// startReservation turns a due reservation into an active allocation
// expiring at its end, replacing the nodes that are not available now from
// the free ones, or fails it. It returns the allocation (nil when failed).
func (s *Store) startReservation(ctx context.Context, tx *sql.Tx, r *ironpool.Reservation, pins []pinnedNode, now time.Time) (*ironpool.Allocation, [][]candidate, error) {
	fail := func(msg string) (*ironpool.Allocation, [][]candidate, error) {
		r.State, r.LastError = ironpool.ResFailed, msg
		if err := s.setReservation(ctx, tx, r, ironpool.ResPending, `state = $1, last_error = $2`, string(r.State), msg); err != nil {
			return nil, nil, err
		}
		return nil, nil, s.insertEvent(ctx, tx, "reservation.failed", "reservation/"+r.ID,
			fmt.Sprintf("reservation of %s from %s failed: %s", r.Owner, r.Start.Format(time.RFC3339), msg))
	}
	if !r.End.After(now) {
		return fail("its window ended before the server could start it")
	}
	// Active first: the claim below then sees only the other reservations.
	if err := s.setReservation(ctx, tx, r, ironpool.ResPending, `state = $1`, string(ironpool.ResActive)); err != nil {
		return nil, nil, err
	}
	counts := make([]int, len(r.Items))
	ok := make([][]candidate, len(r.Items))
	var keep idExclusion
	var gone []pinnedNode
	var why []string
	for _, p := range pins {
		if p.state == ironpool.NodeAvailable && !p.alloc {
			ok[p.item] = append(ok[p.item], candidate{id: p.id, name: p.name})
			keep = append(keep, p.id)
			continue
		}
		counts[p.item]++
		gone = append(gone, p)
		why = append(why, p.why())
	}
	picks := ok
	if len(gone) > 0 {
		gap := s.ReservationGap
		win := windowExclusion{ms(now.Add(-gap)), ms(r.End.Add(gap)), r.ID}
		more, found, err := s.windowMatch(ctx, tx, r.Items, counts, []ironpool.NodeState{ironpool.NodeAvailable}, win, keep,
			excludeHeld{})
		if err != nil {
			return nil, nil, err
		}
		if !found {
			if _, err := tx.ExecContext(ctx, `UPDATE reservations SET state = 'pending' WHERE id = $1`, r.ID); err != nil {
				return nil, nil, err
			}
			return fail(strings.Join(why, "; ") + " at the start, and no free node could replace it")
		}
		s.replace(r, pins, gone, more)
		for _, p := range gone {
			if _, err := tx.ExecContext(ctx, `DELETE FROM reservation_nodes WHERE reservation_id = $1 AND node_id = $2`, r.ID, p.id); err != nil {
				return nil, nil, err
			}
		}
		if err := insertReservationNodes(ctx, tx, r.ID, more); err != nil {
			return nil, nil, err
		}
		for i := range more {
			picks[i] = append(picks[i], more[i]...)
		}
	}
	a := &ironpool.Allocation{ID: uuid.NewString(), Owner: r.Owner, Mode: r.Mode, Metadata: r.Metadata,
		CreatedAt: now, ExpiresAt: r.End, TTL: r.End.Sub(now)}
	for _, it := range r.Items {
		a.Items = append(a.Items, ironpool.AllocationItem{Flavor: it.Flavor, Constraints: it.Constraints, Count: it.Count})
	}
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	a.Metadata["reservation"] = r.ID
	setPicks(a, picks)
	if err := s.insertAllocation(ctx, tx, a, ironpool.AllocActive, a.TTL); err != nil {
		return nil, nil, err
	}
	if err := s.claim(ctx, tx, a, picks, now); err != nil {
		return nil, nil, err
	}
	items, _ := json.Marshal(r.Items)
	r.State, r.AllocationID, r.LastError = ironpool.ResActive, a.ID, ""
	if _, err := tx.ExecContext(ctx, `UPDATE reservations SET allocation_id = $1, items = $2, last_error = '' WHERE id = $3`,
		a.ID, string(items), r.ID); err != nil {
		return nil, nil, err
	}
	summary := fmt.Sprintf("reservation of %s started as allocation %s until %s", r.Owner, a.ID, r.End.Format(time.RFC3339))
	if len(why) > 0 {
		summary += "; " + strings.Join(why, "; ") + ", replaced from free nodes"
	}
	return a, picks, s.insertEvent(ctx, tx, "reservation.started", "reservation/"+r.ID, summary)
}

// excludeHeld keeps out nodes an allocation holds (an available node never
// has one; the condition only makes the replacement read say so).
type excludeHeld struct{}

func (excludeHeld) render(int) (string, []any) { return "allocation_id IS NULL", nil }

// extendConflict returns the first pending reservation of a node of
// allocation id that a lease expiring at expires would run into (gap
// included), or nil.
func (s *Store) extendConflict(ctx context.Context, tx *sql.Tx, id string, expires time.Time) (*ironpool.Error, error) {
	var rid, node string
	var start, end int64
	err := tx.QueryRowContext(ctx, `SELECT r.id, n.name, r.start_at, r.end_at FROM nodes n
		JOIN reservation_nodes rn ON rn.node_id = n.id JOIN reservations r ON r.id = rn.reservation_id
		WHERE n.allocation_id = $1 AND r.state = 'pending' AND r.start_at < $2 ORDER BY r.start_at LIMIT 1`,
		id, ms(expires.Add(s.ReservationGap))).Scan(&rid, &node, &start, &end)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	latest := fromMS(start).Add(-s.ReservationGap)
	return (&ironpool.Error{Code: ironpool.ECONFLICT, Field: "ttl",
		Message: fmt.Sprintf("extending to %s would run into reservation %s of node %s (window %s to %s, cleaning gap %s)",
			expires.Format(time.RFC3339), rid, node, fromMS(start).Format(time.RFC3339), fromMS(end).Format(time.RFC3339), s.ReservationGap)}).
		WithHint("the lease can run until " + latest.Format(time.RFC3339) + " at most"), nil
}
