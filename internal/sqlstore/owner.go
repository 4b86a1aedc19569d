package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ironpool/ironpool"
)

// AllocationOwner returns the owner of allocation id, the one fact the
// service needs to authorize a release or an extend. FindAllocation would
// also read every node of the allocation, which the profile showed costing
// a tenth of the server's CPU on the allocate+release path.
func (s *Store) AllocationOwner(ctx context.Context, id string) (string, error) {
	var owner string
	err := s.R.QueryRowContext(ctx, `SELECT owner FROM allocations WHERE id = $1`, id).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("no allocation %q", id)}
	}
	return owner, s.unavailable(err)
}
