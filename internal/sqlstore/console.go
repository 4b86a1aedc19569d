package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// heldFrom is when an allocation took its nodes: the time of its
// allocation.created event (a queued request is served later than it was
// created), or its created_at where the log has no such event.
const heldFrom = `COALESCE((SELECT MIN(e.time) FROM events e WHERE e.subject = 'allocation/' || a.id
	AND e.action = 'allocation.created'), a.created_at)`

// NodeHistory reads a page of a node's history; see ironpool.Store.
func (s *Store) NodeHistory(ctx context.Context, name string, before int64, limit int) (*ironpool.NodeHistory, error) {
	var id int64
	h := &ironpool.NodeHistory{Events: []*ironpool.Event{}, Tenancies: []ironpool.Tenancy{}}
	err := s.R.QueryRowContext(ctx, `SELECT id, name FROM nodes WHERE name = $1 OR uuid = $1`, name).Scan(&id, &h.Node)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "name", Message: fmt.Sprintf("no node named %q", name)}
	} else if err != nil {
		return nil, fmt.Errorf("node history: %w", err)
	}
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	if before <= 0 {
		before = 1<<62 - 1
	}
	// One page more than asked says whether an older page exists.
	rows, err := s.R.QueryContext(ctx, `SELECT id, time, actor, role, action, subject, summary FROM events
		WHERE id < $1 AND (subject = $2 OR subject IN
			(SELECT 'allocation/' || allocation_id FROM allocation_nodes WHERE node_id = $3))
		ORDER BY id DESC LIMIT `+fmt.Sprint(limit+1), before, "node/"+h.Node, id)
	if err != nil {
		return nil, fmt.Errorf("node history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e ironpool.Event
		var t int64
		var role string
		if err := rows.Scan(&e.ID, &t, &e.Actor, &role, &e.Action, &e.Subject, &e.Summary); err != nil {
			return nil, err
		}
		e.Time, e.Role = fromMS(t), ironpool.Role(role)
		h.Events = append(h.Events, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(h.Events) > limit {
		h.Events = h.Events[:limit]
		h.NextBefore = h.Events[limit-1].ID
	}
	trows, err := s.R.QueryContext(ctx, `SELECT a.id, a.owner, a.state, `+heldFrom+`, a.released_at
		FROM allocation_nodes an JOIN allocations a ON a.id = an.allocation_id
		WHERE an.node_id = $1 ORDER BY a.seq DESC LIMIT 1000`, id)
	if err != nil {
		return nil, fmt.Errorf("node tenancies: %w", err)
	}
	defer trows.Close()
	for trows.Next() {
		var t ironpool.Tenancy
		var state string
		var from, to int64
		if err := trows.Scan(&t.AllocationID, &t.Owner, &state, &from, &to); err != nil {
			return nil, err
		}
		t.State, t.From, t.To = ironpool.AllocationState(state), fromMS(from), fromMS(to)
		h.Tenancies = append(h.Tenancies, t)
	}
	return h, trows.Err()
}

// UsageRecords reads what the usage view aggregates; see ironpool.Store.
// Holds come from the allocation rows (allocation_nodes outlives a
// release), maintenance spells from the audit log's node.maintenance
// events, whose summary is "OLD → NEW[: reason]" (written by UpdateNode).
func (s *Store) UsageRecords(ctx context.Context, since, until time.Time) (*ironpool.UsageRecords, error) {
	rec := &ironpool.UsageRecords{}
	pools := map[string]string{}
	rows, err := s.R.QueryContext(ctx, `SELECT name, pool, created_at FROM nodes WHERE created_at < $1 ORDER BY name`, ms(until))
	if err != nil {
		return nil, fmt.Errorf("usage nodes: %w", err)
	}
	for rows.Next() {
		var n ironpool.UsageNode
		var created int64
		if err := rows.Scan(&n.Name, &n.Pool, &created); err != nil {
			rows.Close()
			return nil, err
		}
		n.CreatedAt = fromMS(created)
		pools[n.Name] = n.Pool
		rec.Nodes = append(rec.Nodes, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	rows, err = s.R.QueryContext(ctx, `SELECT n.name, n.pool, a.owner, `+heldFrom+` AS held, a.released_at
		FROM allocations a JOIN allocation_nodes an ON an.allocation_id = a.id JOIN nodes n ON n.id = an.node_id
		WHERE a.state <> $1 AND a.state <> $2 AND a.created_at < $3 AND (a.released_at = 0 OR a.released_at > $4)`,
		string(ironpool.AllocQueued), string(ironpool.AllocFailed), ms(until), ms(since))
	if err != nil {
		return nil, fmt.Errorf("usage holds: %w", err)
	}
	for rows.Next() {
		var iv ironpool.UsageInterval
		var from, to int64
		if err := rows.Scan(&iv.Node, &iv.Pool, &iv.Owner, &from, &to); err != nil {
			rows.Close()
			return nil, err
		}
		iv.From, iv.To = fromMS(from), fromMS(to)
		rec.Holds = append(rec.Holds, iv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// Every maintenance event up to until, so a spell that began before
	// the window is seen; there are few of them compared with allocations.
	rows, err = s.R.QueryContext(ctx, `SELECT subject, time, summary FROM events
		WHERE action = 'node.maintenance' AND time < $1 ORDER BY id`, ms(until))
	if err != nil {
		return nil, fmt.Errorf("usage maintenance: %w", err)
	}
	defer rows.Close()
	open := map[string]time.Time{}
	for rows.Next() {
		var subject, summary string
		var t int64
		if err := rows.Scan(&subject, &t, &summary); err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(subject, "node/")
		pool, ok := pools[name]
		if !ok {
			continue // deleted since
		}
		_, after, _ := strings.Cut(summary, " → ")
		entering := strings.HasPrefix(after, string(ironpool.NodeMaintenance))
		from, inside := open[name]
		switch {
		case entering && !inside:
			open[name] = fromMS(t)
		case !entering && inside:
			delete(open, name)
			if fromMS(t).After(since) {
				rec.Maintenance = append(rec.Maintenance, ironpool.UsageInterval{Node: name, Pool: pool, From: from, To: fromMS(t)})
			}
		}
	}
	for name, from := range open {
		rec.Maintenance = append(rec.Maintenance, ironpool.UsageInterval{Node: name, Pool: pools[name], From: from})
	}
	return rec, rows.Err()
}
