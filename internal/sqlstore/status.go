package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// Status summarizes the pool in one read snapshot.
func (s *Store) Status(ctx context.Context, now time.Time) (*ironpool.Status, error) {
	st := &ironpool.Status{Nodes: []ironpool.StateCount{}, Owners: []ironpool.OwnerCount{}, Expiring: []*ironpool.Allocation{}}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT pool, state, COUNT(*) FROM nodes GROUP BY pool, state ORDER BY pool, state`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c ironpool.StateCount
			var state string
			if err := rows.Scan(&c.Pool, &state, &c.Count); err != nil {
				rows.Close()
				return err
			}
			c.State = ironpool.NodeState(state)
			st.Nodes = append(st.Nodes, c)
		}
		rows.Close()
		rows, err = tx.QueryContext(ctx, `SELECT a.owner, COUNT(DISTINCT a.id), COUNT(n.id) FROM allocations a
			LEFT JOIN nodes n ON n.allocation_id = a.id WHERE a.state = 'active' GROUP BY a.owner ORDER BY a.owner`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c ironpool.OwnerCount
			if err := rows.Scan(&c.Owner, &c.Allocations, &c.Nodes); err != nil {
				rows.Close()
				return err
			}
			st.Owners = append(st.Owners, c)
		}
		rows.Close()
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM allocations WHERE state = 'queued'`).Scan(&st.Queued); err != nil {
			return err
		}
		exp, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT 100`,
			ms(now.Add(time.Hour)))
		if err != nil {
			return err
		}
		for _, r := range exp {
			st.Expiring = append(st.Expiring, r.alloc)
		}
		st.Capacity, err = s.capacity(ctx, tx)
		return err
	})
	return st, err
}

// Capacity reports free/total per flavor and pool, plus an "any" row per pool.
func (s *Store) Capacity(ctx context.Context) ([]ironpool.CapacityRow, error) {
	var out []ironpool.CapacityRow
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.capacity(ctx, tx)
		return err
	})
	return out, err
}

func (s *Store) capacity(ctx context.Context, tx *sql.Tx) ([]ironpool.CapacityRow, error) {
	flavors := []*ironpool.Flavor{{Name: "any"}}
	rows, err := tx.QueryContext(ctx, `SELECT `+flavorColumns+` FROM flavors ORDER BY name`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		f, err := scanFlavor(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		flavors = append(flavors, f)
	}
	rows.Close()
	out := []ironpool.CapacityRow{}
	for _, f := range flavors {
		where, args := constraintSQL(&f.Constraints, 0)
		cond := "1 = 1"
		if len(where) > 0 {
			cond = strings.Join(where, " AND ")
		}
		rows, err := tx.QueryContext(ctx, `SELECT pool, COUNT(*), COALESCE(SUM(CASE WHEN state = 'available' THEN 1 ELSE 0 END), 0)
			FROM nodes WHERE `+cond+` GROUP BY pool ORDER BY pool`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			r := ironpool.CapacityRow{Flavor: f.Name}
			if err := rows.Scan(&r.Pool, &r.Total, &r.Free); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, r)
		}
		rows.Close()
	}
	return out, nil
}
