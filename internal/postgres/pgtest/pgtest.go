// Package pgtest gives tests their own PostgreSQL schema on the server named
// by IRONPOOL_TEST_POSTGRES, and skips them, saying why, when there is none.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DSN returns the DSN of the PostgreSQL to test against, or skips the
// test when none is configured. A configured but unreachable server fails
// the test in CI (where it is a broken setup) and skips it elsewhere.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("IRONPOOL_TEST_POSTGRES")
	if dsn == "" {
		tb.Skip("skipped: IRONPOOL_TEST_POSTGRES not set (no PostgreSQL to test against)")
	}
	reach.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		reach.err = err
	})
	if reach.err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL at IRONPOOL_TEST_POSTGRES is unreachable: %v", reach.err)
		}
		tb.Skipf("skipped: PostgreSQL at IRONPOOL_TEST_POSTGRES is unreachable: %v", reach.err)
	}
	return dsn
}

// reach remembers whether the server answered, so an unreachable one costs
// one connection timeout per run rather than one per test.
var reach struct {
	once sync.Once
	err  error
}

// WithSearchPath returns dsn selecting schema.
func WithSearchPath(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("IRONPOOL_TEST_POSTGRES is not a URL: %v", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// Schema creates a schema with a random name, dropped when the test
// ends, and returns a DSN that selects it. Each test gets its own so tests
// never see each other's rows.
func Schema(tb testing.TB) string {
	tb.Helper()
	dsn := DSN(tb)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "ironpool_test_" + hex.EncodeToString(b)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(tb, dsn, schema)
}
