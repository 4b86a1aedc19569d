// Package opener opens real, empty, migrated stores for tests: a SQLite
// file in the test's temporary directory, or a fresh schema on the
// PostgreSQL that IRONPOOL_TEST_POSTGRES names. It is the one copy of
// "make a key, open, close at cleanup" that the store, service, API and
// benchmark tests share. It lives apart from storetest so that storetest
// (imported by the stores' own tests) imports no store.
package opener

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/sqlite"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// MustSealer returns a keyring with a fresh random key.
func MustSealer(tb testing.TB) *secret.Keyring {
	tb.Helper()
	key, err := secret.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	k, err := secret.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustOpenSQLite opens a store on a fresh SQLite file in a temporary
// directory and closes it when the test ends. It returns the store and the
// file's path.
func MustOpenSQLite(tb testing.TB) (*sqlstore.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ironpool.db")
	s, err := sqlite.Open(context.Background(), path, MustSealer(tb))
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s, path
}

// MustOpenPostgres opens a store in a fresh schema and closes it when the
// test ends (before the schema is dropped: cleanups run last-registered
// first). It returns the store and its DSN; without IRONPOOL_TEST_POSTGRES
// the test is skipped.
func MustOpenPostgres(tb testing.TB) (*sqlstore.Store, string) {
	tb.Helper()
	dsn := pgtest.Schema(tb)
	s, err := postgres.Open(context.Background(), dsn, MustSealer(tb))
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s, dsn
}

// MustOpenSQLiteAdmin is MustOpenSQLite with a context acting as an admin,
// for tests of the service and the reconciler.
func MustOpenSQLiteAdmin(tb testing.TB) (*sqlstore.Store, context.Context) {
	tb.Helper()
	st, _ := MustOpenSQLite(tb)
	return st, ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "test", Role: ironpool.RoleAdmin})
}
