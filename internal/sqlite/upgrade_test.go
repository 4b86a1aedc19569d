package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlite"
	"github.com/ironpool/ironpool/internal/storetest/opener"
	"github.com/ironpool/ironpool/migrations"
)

// TestUpgradeCountsLiveHolds: an allocation active when the database is
// upgraded to quotas (migration 00006) counts against a quota set after
// the upgrade. Without its backfilled usage row the owner's holdings would
// be invisible and a max_nodes quota would let it take as many again.
func TestUpgradeCountsLiveHolds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 5); err != nil {
		t.Fatal(err)
	}
	held := time.Now().Add(-2 * time.Hour).UnixMilli()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO nodes (uuid, name, pool, state, cpus, bmc_address, allocation_id, owner, created_at, updated_at)
			VALUES ('u1', 'n1', 'default', 'allocated', 8, 'ipmi://10.0.0.1', 'old-1', 'lab', 1, 1),
			       ('u2', 'n2', 'default', 'allocated', 8, 'ipmi://10.0.0.2', 'old-1', 'lab', 1, 1),
			       ('u3', 'n3', 'default', 'available', 8, 'ipmi://10.0.0.3', NULL, '', 1, 1)`, nil},
		{`INSERT INTO allocations (id, owner, state, mode, items, ttl_ms, created_at, expires_at)
			VALUES ('old-1', 'lab', 'active', 'none', '[{"count":2,"constraints":{}}]', 86400000, 1, 4102444800000)`, nil},
		{`INSERT INTO events (time, actor, role, action, subject, summary)
			VALUES (?, 'tok', 'admin', 'allocation.created', 'allocation/old-1', 'lab took 2')`, []any{held}},
	} {
		if _, err := db.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	db.Close()

	s, err := sqlite.Open(ctx, path, opener.MustSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	actx := ironpool.NewContextWithActor(ctx, ironpool.System)
	st, err := s.SetQuota(actx, &ironpool.Quota{Owner: "lab", MaxNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Used.Nodes != 2 {
		t.Errorf("usage after the upgrade = %+v, want the 2 nodes held before it", st.Used)
	}
	err = s.Allocate(actx, &ironpool.Allocation{Owner: "lab", Mode: ironpool.ModeNone, TTL: time.Hour,
		Items: []ironpool.AllocationItem{{Count: 1}}}, false)
	if ironpool.ErrorCode(err) != ironpool.EQUOTA {
		t.Errorf("allocate over a quota the old holds fill: %v, want %s", err, ironpool.EQUOTA)
	}
	rep, err := s.Usage(ctx, ironpool.UsageFilter{Since: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].NodeHours < 3.9 || rep.Rows[0].NodeHours > 4.1 {
		t.Errorf("usage = %+v, want lab's 2 nodes × 2h since its allocation.created event", rep.Rows)
	}
}
