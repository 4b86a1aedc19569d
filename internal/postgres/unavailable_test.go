package postgres

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// TestUnreachableIsUnavailable: a replica whose PostgreSQL cannot be
// reached (the campaign cuts it with a fault proxy) answers reads and
// writes with EUNAVAILABLE (HTTP 503), not an internal error. The refused
// connection is real: a loopback port with nothing listening.
func TestUnreachableIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := pgx.ParseConfig("postgres://postgres@" + addr + "/test?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	s := sqlstore.New(db, db, Dialect, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, rerr := s.FindNodes(ctx, ironpool.NodeFilter{})
	werr := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "f", Constraints: ironpool.Constraints{CPUs: 1}})
	_, terr := s.FindTokenByHash(ctx, "0000")
	for what, err := range map[string]error{"read": rerr, "write": werr, "token lookup (every request's first read)": terr} {
		if code := ironpool.ErrorCode(err); code != ironpool.EUNAVAILABLE {
			t.Errorf("%s with PostgreSQL unreachable failed with %q (%v); want %q", what, code, err, ironpool.EUNAVAILABLE)
		}
	}
}

// TestUnavailableClassifier names the server-side codes that mean "not
// now": connection and shutdown classes and resource exhaustion, not
// constraint violations.
func TestUnavailableClassifier(t *testing.T) {
	for code, want := range map[string]bool{"08006": true, "57P01": true, "53100": true, "23505": false, "22021": false} {
		got := unavailable(&pgconn.PgError{Code: code}) != ""
		if got != want {
			t.Errorf("unavailable(SQLSTATE %s) = %v, want %v", code, got, want)
		}
	}
}
