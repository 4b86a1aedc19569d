package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ironpool/ironpool"
)

// TouchWaiter records a live waiter; see ironpool.Store.
func (s *Store) TouchWaiter(ctx context.Context, id string, now time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE allocations SET waiter_seen_at = $1 WHERE id = $2 AND state = $3`,
			ms(now), id, string(ironpool.AllocQueued))
		return err
	})
}

// CancelAbandoned fails queued requests nobody waits for; see ironpool.Store.
func (s *Store) CancelAbandoned(ctx context.Context, cutoff, now time.Time) ([]*ironpool.Allocation, error) {
	// Most ticks find nothing: look on the read side before taking the
	// write lock every second.
	var n int
	if err := s.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM allocations WHERE state = 'queued' AND created_at < $1 AND waiter_seen_at < $1`,
		ms(cutoff)).Scan(&n); err != nil || n == 0 {
		return nil, err
	}
	var out []*ironpool.Allocation
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		rows, err := s.queryAllocations(ctx, tx, `SELECT `+allocColumns+` FROM allocations
			WHERE state = 'queued' AND created_at < $1 AND waiter_seen_at < $1 ORDER BY seq LIMIT 1000 `+s.Dialect.LockWait,
			ms(cutoff))
		if err != nil {
			return err
		}
		for _, r := range rows {
			a := r.alloc
			a.State = ironpool.AllocFailed
			a.LastError = fmt.Sprintf("cancelled: no client waited for it since %s (the waiter was killed or lost)", cutoff.UTC().Format(time.RFC3339))
			a.ReleasedAt = now
			if err := updateQueued(ctx, tx, a.ID, `state = $1, last_error = $2, released_at = $3`,
				string(a.State), a.LastError, ms(now)); err != nil {
				return err
			}
			if err := s.insertEvent(ctx, tx, "allocation.failed", "allocation/"+a.ID, a.LastError); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}
