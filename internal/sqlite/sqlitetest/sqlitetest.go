// Package sqlitetest opens real SQLite stores for tests: one helper instead
// of a copy in every package that needs a store.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"ironpool"
	"ironpool/internal/secret"
	"ironpool/internal/sqlite"
	"ironpool/internal/sqlstore"
)

// MustOpen opens a fresh, migrated SQLite store in a temporary directory,
// closed when the test ends, and returns it with a context acting as an
// admin.
func MustOpen(tb testing.TB) (*sqlstore.Store, context.Context) {
	tb.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "test", Role: ironpool.RoleAdmin})
	key, err := secret.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	ring, err := secret.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "ironpool.db"), ring)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st, ctx
}
