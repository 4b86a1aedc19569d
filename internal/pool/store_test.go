package pool

import (
	"context"
	"testing"

	"ironpool"
	"ironpool/internal/sqlstore"
	"ironpool/internal/storetest/opener"
)

// testStore opens a real SQLite store in a temporary directory for the
// service's tests, with a context acting as an admin.
func testStore(t *testing.T) (*sqlstore.Store, context.Context) {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "test", Role: ironpool.RoleAdmin})
	st, _ := opener.MustOpenSQLite(t)
	return st, ctx
}

// OpenTestStore is testStore for the external pool_test package.
var OpenTestStore = testStore

// Tick runs the background work once, as the loop does on the leader.
func Tick(s *Service, ctx context.Context) { s.tick(ctx) }
