package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/migrations"
)

// Readiness reads the schema version and the named lease, through the read
// pool so that a probe never waits behind SQLite's single writer (on
// PostgreSQL both pools are one). The error is the driver's, for the log
// only: it may name the host.
func (s *Store) Readiness(ctx context.Context, lease string) (*ironpool.StoreReadiness, error) {
	r := &ironpool.StoreReadiness{Want: migrations.Latest()}
	if err := s.R.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&r.Schema); err != nil {
		return nil, fmt.Errorf("schema version: %w", err)
	}
	var exp int64
	err := s.R.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = $1`, lease).Scan(&r.LeaseHolder, &exp)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lease %s: %w", lease, err)
	}
	r.LeaseFresh = err == nil && fromMS(exp).After(s.Now())
	return r, nil
}
