// Package sqlitetest opens real SQLite stores for tests: one helper instead
// of a copy in every package that needs a store.
package sqlitetest

import (
	"context"
	"testing"

	"ironpool"
	"ironpool/internal/sqlstore"
	"ironpool/internal/storetest/opener"
)

// MustOpen opens a fresh, migrated SQLite store in a temporary directory,
// closed when the test ends (storetest/opener does the opening), and returns
// it with a context acting as an admin.
func MustOpen(tb testing.TB) (*sqlstore.Store, context.Context) {
	tb.Helper()
	st, _ := opener.MustOpenSQLite(tb)
	return st, ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "test", Role: ironpool.RoleAdmin})
}
