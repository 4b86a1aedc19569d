package soak

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCampaignPostgresRestart starts the campaign's own PostgreSQL, writes
// a row, crashes the server (-m immediate) and checks the committed row
// came back: the restart nemesis relies on a cluster that really stops,
// really loses its sessions and really recovers.
func TestCampaignPostgresRestart(t *testing.T) {
	if os.Getenv("IRONPOOL_SOAK_OPS") == "" {
		t.Skip("skipped: runs with the campaign, when IRONPOOL_SOAK_OPS is set")
	}
	p, err := startPostgres(t.Logf)
	if errors.Is(err, ErrNoPostgresBinaries) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("skipped: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	if err := p.Restart("immediate", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("a session survived the crash: the server was not restarted")
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after the crash: %d, %v; want the committed 42", v, err)
	}
	if err := p.Restart("fast", 0); err != nil {
		t.Fatal(err)
	}
}
