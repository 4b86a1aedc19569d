package pool

import (
	"context"
	"testing"

	"ironpool"
	"ironpool/internal/secret"
	"ironpool/internal/sqlite"
	"ironpool/internal/sqlstore"
)

// testStore opens a real SQLite store in a temporary directory for the
// service's tests, with a context acting as an admin.
func testStore(t *testing.T) (*sqlstore.Store, context.Context) {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "test", Role: ironpool.RoleAdmin})
	key, _ := secret.GenerateKey()
	ring, _ := secret.New(key)
	st, err := sqlite.Open(ctx, t.TempDir()+"/pool.db", ring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, ctx
}

// OpenTestStore is testStore for the external pool_test package.
var OpenTestStore = testStore

// Tick runs the background work once, as the loop does on the leader.
func Tick(s *Service, ctx context.Context) { s.tick(ctx) }
