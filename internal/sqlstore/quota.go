package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// Quotas are decided inside the transaction that allocates (Allocate,
// DispatchQueue) or renews (ExtendAllocation): the rows of the quotas that
// apply are locked first (FOR UPDATE on PostgreSQL; SQLite has one writer),
// so two replicas allocating for owners under one quota are serialized on
// its row and the second reads the first's usage. Lock order everywhere is
// quota rows (by owner) → the waiters' lock → node rows, so quota locks
// add no deadlock cycle to matchLocked's.

const quotaColumns = `owner, max_nodes, max_flavor, max_lease_ms, max_node_ms, per_ms, created_at, updated_at`

func scanQuotas(rows *sql.Rows) ([]*ironpool.Quota, error) {
	defer rows.Close()
	var out []*ironpool.Quota
	for rows.Next() {
		var q ironpool.Quota
		var flavors string
		var lease, nodeMS, per, created, updated int64
		if err := rows.Scan(&q.Owner, &q.MaxNodes, &flavors, &lease, &nodeMS, &per, &created, &updated); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(flavors), &q.MaxFlavor); err != nil {
			return nil, fmt.Errorf("quota %s max_flavor: %w", q.Owner, err)
		}
		if len(q.MaxFlavor) == 0 {
			q.MaxFlavor = nil
		}
		q.MaxLease, q.Per = time.Duration(lease)*time.Millisecond, time.Duration(per)*time.Millisecond
		q.MaxNodeHours = float64(nodeMS) / float64(time.Hour/time.Millisecond)
		q.CreatedAt, q.UpdatedAt = fromMS(created), fromMS(updated)
		q.SetText()
		out = append(out, &q)
	}
	return out, rows.Err()
}

// quotasFor returns the quotas that apply to owner, sorted by subject,
// with their rows locked when lock is set.
func (s *Store) quotasFor(ctx context.Context, tx querier, owner string, lock bool) ([]*ironpool.Quota, error) {
	if s.noQuotas.Load() {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT owner FROM quotas ORDER BY owner`)
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	var subjects []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		if p == ironpool.AnyOwner || ironpool.MatchOwner(p, owner) {
			subjects = append(subjects, p)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(subjects) == 0 {
		// Only the writer, inside its transaction, learns that there is
		// no quota at all (see noQuotas); a read elsewhere could predate
		// a quota being written.
		if lock && s.rowHooks && s.noQuotasSeen(ctx, tx) {
			s.noQuotas.Store(true)
		}
		return nil, nil
	}
	var ph []string
	args := make([]any, len(subjects))
	for i, p := range subjects {
		args[i] = p
		ph = append(ph, fmt.Sprintf("$%d", i+1))
	}
	suffix := ""
	if lock {
		suffix = s.Dialect.LockWait
	}
	// Read again under the lock: a quota changed since the first read is
	// seen as it is now (PostgreSQL re-reads a row FOR UPDATE waited on).
	rows, err = tx.QueryContext(ctx, `SELECT `+quotaColumns+` FROM quotas WHERE owner IN (`+strings.Join(ph, ", ")+`) ORDER BY owner `+suffix, args...)
	if err != nil {
		return nil, fmt.Errorf("lock quotas: %w", err)
	}
	return scanQuotas(rows)
}

// noQuotasSeen reports whether the quotas table is empty as tx sees it.
func (s *Store) noQuotasSeen(ctx context.Context, tx querier) bool {
	var n int
	return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM quotas`).Scan(&n) == nil && n == 0
}

// lockAllQuotas locks every quota row, in the one order; the queue
// dispatcher takes them before the waiters' lock (see the top of this file)
// and then decides entry by entry. It returns them by subject.
func (s *Store) lockAllQuotas(ctx context.Context, tx *sql.Tx) ([]*ironpool.Quota, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+quotaColumns+` FROM quotas ORDER BY owner `+s.Dialect.LockWait)
	if err != nil {
		return nil, fmt.Errorf("lock quotas: %w", err)
	}
	return scanQuotas(rows)
}

func applicable(all []*ironpool.Quota, owner string) []*ironpool.Quota {
	var out []*ironpool.Quota
	for _, q := range all {
		if q.Owner == ironpool.AnyOwner || ironpool.MatchOwner(q.Owner, owner) {
			out = append(out, q)
		}
	}
	return out
}

// quotaUsage is what the owners q applies to hold now and, with a
// node-hours limit, have used over its window up to now.
func (s *Store) quotaUsage(ctx context.Context, qr querier, q *ironpool.Quota, now time.Time) (ironpool.QuotaUsage, error) {
	u := ironpool.QuotaUsage{Flavors: map[string]int{}}
	query, args := `SELECT owner, flavor, SUM(nodes) FROM usage_log WHERE end_ms = 0 GROUP BY owner, flavor`, []any(nil)
	if !ironpool.IsOwnerPattern(q.Owner) {
		query, args = `SELECT owner, flavor, SUM(nodes) FROM usage_log WHERE end_ms = 0 AND owner = $1 GROUP BY owner, flavor`, []any{q.Owner}
	}
	rows, err := qr.QueryContext(ctx, query, args...)
	if err != nil {
		return u, fmt.Errorf("quota usage: %w", err)
	}
	for rows.Next() {
		var owner, flavor string
		var n int
		if err := rows.Scan(&owner, &flavor, &n); err != nil {
			rows.Close()
			return u, err
		}
		if q.Owner == ironpool.AnyOwner || ironpool.MatchOwner(q.Owner, owner) {
			u.Nodes += n
			u.Flavors[flavor] += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return u, err
	}
	if q.MaxNodeHours > 0 {
		h, err := s.nodeHours(ctx, qr, q.Owner, now.Add(-q.Per), now)
		if err != nil {
			return u, err
		}
		u.NodeHours = h
	}
	return u, nil
}

// overlapSQL is the node-milliseconds a usage row spent in [$1, $2): its
// hold clipped to the window, a live hold counting up to $2.
const overlapSQL = `nodes * ((CASE WHEN end_ms = 0 OR end_ms > $2 THEN $2 ELSE end_ms END) -
	(CASE WHEN start_ms < $1 THEN $1 ELSE start_ms END))`

// nodeHours sums the node-hours the owners matching p used in [since, until).
func (s *Store) nodeHours(ctx context.Context, qr querier, p string, since, until time.Time) (float64, error) {
	// A quota on one name reads that owner's rows only (usage_owner); a
	// pattern reads the window's rows of every owner and matches here.
	query, args := `SELECT owner, SUM(`+overlapSQL+`) FROM usage_log
		WHERE start_ms < $2 AND (end_ms = 0 OR end_ms > $1) GROUP BY owner`, []any{ms(since), ms(until)}
	if p != ironpool.AnyOwner && !ironpool.IsOwnerPattern(p) {
		query, args = `SELECT owner, SUM(`+overlapSQL+`) FROM usage_log
		WHERE owner = $3 AND start_ms < $2 AND (end_ms = 0 OR end_ms > $1) GROUP BY owner`, append(args, p)
	}
	rows, err := qr.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("node-hours: %w", err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var owner string
		var v int64
		if err := rows.Scan(&owner, &v); err != nil {
			return 0, err
		}
		if p == ironpool.AnyOwner || ironpool.MatchOwner(p, owner) {
			total += v
		}
	}
	return float64(total) / float64(time.Hour/time.Millisecond), rows.Err()
}

// quotaCheck decides a against the quotas that apply. It returns the
// refusal of the first quota (by subject) and limit that does not allow
// it, and whether that refusal is permanent: the request alone is over the
// limit, so waiting for usage to fall would never serve it.
func (s *Store) quotaCheck(ctx context.Context, tx querier, quotas []*ironpool.Quota, a *ironpool.Allocation, ttl time.Duration, now time.Time) (*ironpool.Error, bool, error) {
	asked, perFlavor := 0, map[string]int{}
	for _, it := range a.Items {
		asked += it.Count
		if it.Flavor != "" {
			perFlavor[it.Flavor] += it.Count
		}
	}
	for _, q := range quotas {
		refuse := func(limit string, allowed, used, requested float64) (*ironpool.Error, bool, error) {
			return ironpool.QuotaError(a.Owner, ironpool.QuotaRefusal{Quota: q.Owner, Limit: limit,
				Allowed: allowed, Used: used, Requested: requested}), requested > allowed, nil
		}
		if q.MaxLease > 0 && ttl > q.MaxLease {
			return refuse("max_lease", q.MaxLease.Seconds(), 0, ttl.Seconds())
		}
		if q.MaxNodes == 0 && len(q.MaxFlavor) == 0 && q.MaxNodeHours == 0 {
			continue
		}
		u, err := s.quotaUsage(ctx, tx, q, now)
		if err != nil {
			return nil, false, err
		}
		if q.MaxNodes > 0 && u.Nodes+asked > q.MaxNodes {
			return refuse("max_nodes", float64(q.MaxNodes), float64(u.Nodes), float64(asked))
		}
		for _, f := range slices.Sorted(mapKeys(perFlavor)) {
			if lim, ok := q.MaxFlavor[f]; ok && u.Flavors[f]+perFlavor[f] > lim {
				return refuse("max_flavor."+f, float64(lim), float64(u.Flavors[f]), float64(perFlavor[f]))
			}
		}
		if q.MaxNodeHours > 0 {
			// A lease may use at most count × min(ttl, window) node-hours of
			// one window: that much must be left in the budget.
			need := float64(asked) * min(ttl, q.Per).Hours()
			if u.NodeHours+need > q.MaxNodeHours+1e-9 {
				return refuse("max_node_hours", q.MaxNodeHours, round4(u.NodeHours), round4(need))
			}
		}
	}
	return nil, false, nil
}

// clampLease shortens a default lease to the shortest max_lease of the
// quotas that apply: a request that named no ttl gets what it may have.
func clampLease(quotas []*ironpool.Quota, ttl time.Duration) time.Duration {
	for _, q := range quotas {
		if q.MaxLease > 0 && ttl > q.MaxLease {
			ttl = q.MaxLease
		}
	}
	return ttl
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// recordRefusal writes the quota.refused event of a request the quota
// turned down, in its own transaction: the refused one changed nothing.
func (s *Store) recordRefusal(ctx context.Context, err error) {
	var e *ironpool.Error
	if !errors.As(err, &e) || e.Code != ironpool.EQUOTA || e.Quota == nil {
		return
	}
	// Best effort: the refusal stands whether or not its record does.
	_ = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.insertEvent(ctx, tx, "quota.refused", "quota/"+e.Quota.Quota, e.Message)
	})
}

// insertUsage records that a holds the picked nodes from now on.
func insertUsage(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, counts []int, now time.Time) error {
	vals, args := usageRows(a, counts, now, 0)
	if len(vals) == 0 {
		return nil
	}
	// One statement for every item: the allocation transaction runs on
	// the single writer, where each statement counts.
	if _, err := tx.ExecContext(ctx, insertUsageSQL+strings.Join(vals, ", "), args...); err != nil {
		return fmt.Errorf("record usage: %w", err)
	}
	return nil
}

// insertUsageSQL is followed by the rows of usageRows.
const insertUsageSQL = `INSERT INTO usage_log (allocation_id, owner, flavor, nodes, start_ms) VALUES `

// usageRows are a's usage rows (one per item that holds nodes) with their
// placeholders numbered after base arguments.
func usageRows(a *ironpool.Allocation, counts []int, now time.Time, base int) (vals []string, args []any) {
	for i, n := range counts {
		if n == 0 {
			continue
		}
		flavor := ""
		if i < len(a.Items) {
			flavor = a.Items[i].Flavor
		}
		k := base + len(args)
		args = append(args, a.ID, a.Owner, flavor, n, ms(now))
		vals = append(vals, fmt.Sprintf("($%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5))
	}
	return vals, args
}

// EndUsageSQL closes the open usage rows of n allocations at $1; the ids
// are $2 on. Exported for the plan test: it must stay on usage_allocation.
func EndUsageSQL(n int) string {
	return `UPDATE usage_log SET end_ms = $1 WHERE allocation_id IN (` + placeholdersFrom(2, n) + `) AND end_ms = 0`
}

// checkLease refuses renewing allocation a to expire at until when a quota
// that applies caps its lease shorter (counted from when it got its nodes).
func (s *Store) checkLease(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, until time.Time) error {
	quotas, err := s.quotasFor(ctx, tx, a.Owner, false)
	if err != nil || len(quotas) == 0 {
		return err
	}
	var start sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(start_ms) FROM usage_log WHERE allocation_id = $1`, a.ID).Scan(&start); err != nil {
		return err
	}
	from := a.CreatedAt
	if start.Valid {
		from = fromMS(start.Int64)
	}
	lease := until.Sub(from)
	for _, q := range quotas {
		if q.MaxLease > 0 && lease > q.MaxLease {
			e := ironpool.QuotaError(a.Owner, ironpool.QuotaRefusal{Quota: q.Owner, Limit: "max_lease",
				Allowed: q.MaxLease.Seconds(), Used: s.Now().Sub(from).Seconds(), Requested: lease.Seconds()})
			e.Field = "ttl"
			e.Hint = fmt.Sprintf("the lease may run until %s at most; release and allocate again for more", from.Add(q.MaxLease).Format(time.RFC3339))
			return e
		}
	}
	return nil
}

// SetQuota creates or replaces the quota of q.Owner; see ironpool.Store.
func (s *Store) SetQuota(ctx context.Context, q *ironpool.Quota) (*ironpool.QuotaStatus, error) {
	var st *ironpool.QuotaStatus
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.Now().UTC()
		flavors, _ := json.Marshal(q.MaxFlavor)
		if q.MaxFlavor == nil {
			flavors = []byte("{}")
		}
		nodeMS := int64(math.Round(q.MaxNodeHours * float64(time.Hour/time.Millisecond)))
		res, err := tx.ExecContext(ctx, `UPDATE quotas SET max_nodes = $1, max_flavor = $2, max_lease_ms = $3, max_node_ms = $4,
			per_ms = $5, updated_at = $6 WHERE owner = $7`,
			q.MaxNodes, string(flavors), q.MaxLease.Milliseconds(), nodeMS, q.Per.Milliseconds(), ms(now), q.Owner)
		if err != nil {
			return err
		}
		verb := "quota.updated"
		if k, _ := res.RowsAffected(); k == 0 {
			verb = "quota.set"
			if _, err := tx.ExecContext(ctx, `INSERT INTO quotas (`+quotaColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
				q.Owner, q.MaxNodes, string(flavors), q.MaxLease.Milliseconds(), nodeMS, q.Per.Milliseconds(), ms(now)); err != nil {
				if _, ok := s.Dialect.Unique(err); ok {
					return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "owner", Message: "the quota was set concurrently; try again"}
				}
				return err
			}
		}
		got, err := s.quotaStatus(ctx, tx, q.Owner, now)
		if err != nil {
			return err
		}
		st = got
		return s.insertEvent(ctx, tx, verb, "quota/"+q.Owner, describeQuota(st.Quota))
	})
	return st, err
}

// describeQuota is a quota's limits in words, for events and tables.
func describeQuota(q *ironpool.Quota) string {
	var parts []string
	if q.MaxNodes > 0 {
		parts = append(parts, fmt.Sprintf("max_nodes=%d", q.MaxNodes))
	}
	for _, f := range slices.Sorted(mapKeys(q.MaxFlavor)) {
		parts = append(parts, fmt.Sprintf("max_flavor.%s=%d", f, q.MaxFlavor[f]))
	}
	if q.MaxLease > 0 {
		parts = append(parts, "max_lease="+q.MaxLease.String())
	}
	if q.MaxNodeHours > 0 {
		parts = append(parts, fmt.Sprintf("max_node_hours=%g per %s", q.MaxNodeHours, q.Per))
	}
	return strings.Join(parts, " ")
}

// quotaStatus reads quota p with its usage and a warning when usage is
// over a limit already.
func (s *Store) quotaStatus(ctx context.Context, qr querier, p string, now time.Time) (*ironpool.QuotaStatus, error) {
	rows, err := qr.QueryContext(ctx, `SELECT `+quotaColumns+` FROM quotas WHERE owner = $1`, p)
	if err != nil {
		return nil, err
	}
	qs, err := scanQuotas(rows)
	if err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "owner", Message: fmt.Sprintf("no quota for %q", p)}
	}
	return s.withUsage(ctx, qr, qs[0], now)
}

func (s *Store) withUsage(ctx context.Context, qr querier, q *ironpool.Quota, now time.Time) (*ironpool.QuotaStatus, error) {
	u, err := s.quotaUsage(ctx, qr, q, now)
	if err != nil {
		return nil, err
	}
	u.NodeHours = round4(u.NodeHours)
	st := &ironpool.QuotaStatus{Quota: q, Used: u}
	var over []string
	if q.MaxNodes > 0 && u.Nodes > q.MaxNodes {
		over = append(over, fmt.Sprintf("%d nodes held, max_nodes %d", u.Nodes, q.MaxNodes))
	}
	for _, f := range slices.Sorted(mapKeys(q.MaxFlavor)) {
		if u.Flavors[f] > q.MaxFlavor[f] {
			over = append(over, fmt.Sprintf("%d %s nodes held, max_flavor.%s %d", u.Flavors[f], f, f, q.MaxFlavor[f]))
		}
	}
	if q.MaxNodeHours > 0 && u.NodeHours > q.MaxNodeHours {
		over = append(over, fmt.Sprintf("%.4g node-hours used in the last %s, max_node_hours %g", u.NodeHours, q.Per, q.MaxNodeHours))
	}
	if len(over) > 0 {
		st.Warning = "usage is over this quota already (" + strings.Join(over, "; ") +
			"): what is held stays, new requests are refused until usage falls below it"
	}
	return st, nil
}

// DeleteQuota removes the quota of owner or pattern p; see ironpool.Store.
func (s *Store) DeleteQuota(ctx context.Context, p string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM quotas WHERE owner = $1`, p)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "owner", Message: fmt.Sprintf("no quota for %q", p)}
		}
		return s.insertEvent(ctx, tx, "quota.deleted", "quota/"+p, "quota of "+p+" deleted")
	})
}

// FindQuota reads one quota with its usage; see ironpool.Store.
func (s *Store) FindQuota(ctx context.Context, p string) (*ironpool.QuotaStatus, error) {
	var st *ironpool.QuotaStatus
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = s.quotaStatus(ctx, tx, p, s.Now().UTC())
		return err
	})
	return st, err
}

// FindQuotas lists every quota with its usage, by subject.
func (s *Store) FindQuotas(ctx context.Context) ([]*ironpool.QuotaStatus, error) {
	out := []*ironpool.QuotaStatus{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT `+quotaColumns+` FROM quotas ORDER BY owner`)
		if err != nil {
			return err
		}
		qs, err := scanQuotas(rows)
		if err != nil {
			return err
		}
		now := s.Now().UTC()
		for _, q := range qs {
			st, err := s.withUsage(ctx, tx, q, now)
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}

// Usage reads node-hours per owner and flavor; see ironpool.Store.
func (s *Store) Usage(ctx context.Context, f ironpool.UsageFilter) (*ironpool.UsageReport, error) {
	until := f.Until
	if until.IsZero() {
		until = s.Now().UTC()
	}
	rep := &ironpool.UsageReport{Since: f.Since.UTC(), Until: until.UTC(), Rows: []ironpool.UsageRow{}}
	query := `SELECT owner, flavor, SUM(` + overlapSQL + `), SUM(CASE WHEN end_ms = 0 THEN nodes ELSE 0 END) FROM usage_log
		WHERE start_ms <= $2 AND (end_ms = 0 OR end_ms > $1)`
	args := []any{ms(f.Since), ms(until)}
	if f.Owner != "" {
		query += ` AND owner = $3`
		args = append(args, f.Owner)
	}
	rows, err := s.R.QueryContext(ctx, query+` GROUP BY owner, flavor ORDER BY owner, flavor`, args...)
	if err != nil {
		return nil, s.unavailable(fmt.Errorf("usage: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var r ironpool.UsageRow
		var v int64
		if err := rows.Scan(&r.Owner, &r.Flavor, &v, &r.Nodes); err != nil {
			return nil, err
		}
		r.NodeHours = round4(float64(v) / float64(time.Hour/time.Millisecond))
		rep.Rows = append(rep.Rows, r)
	}
	return rep, s.unavailable(rows.Err())
}
