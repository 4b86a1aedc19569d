package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlite"
	"github.com/ironpool/ironpool/internal/storetest"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestFreeIndexAcrossRestart: after a random history (faults included) the
// store is closed and opened again on the same file; the index the new
// process builds must equal the database, and stay so through a second
// history.
func TestFreeIndexAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/ironpool.db"
	sealer := opener.MustSealer(t)
	for run := range 3 {
		s, err := sqlite.Open(context.Background(), path, sealer)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckFreeIndex(context.Background(), nil); err != nil {
			t.Fatalf("run %d, just opened: %v", run, err)
		}
		storetest.FreeIndexHistory(t, []ironpool.Store{s}, uint64(run+1), 6)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
}

// TestFreeIndexSeesOtherProcesses: a node changed through another
// connection (another process on the file, or sqlite3 by hand) reaches no
// hook of this store; its data_version does, and the index is rebuilt.
func TestFreeIndexSeesOtherProcesses(t *testing.T) {
	s, path := opener.MustOpenSQLite(t)
	storetest.FreeIndexHistory(t, []ironpool.Store{s}, 3, 1)
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	res, err := other.Exec(`UPDATE nodes SET state = 'maintenance' WHERE id IN (SELECT id FROM nodes WHERE state = 'available' LIMIT 5)`)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := res.RowsAffected(); k != 5 {
		t.Fatalf("the other connection changed %d nodes, want 5", k)
	}
	if err := s.CheckFreeIndex(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestNoQuotaCacheSeesNewQuotas: an allocation in a store without quotas
// lets the writer remember "no quotas"; a quota set afterwards, by this
// store or by another connection on the file, must still be enforced.
func TestNoQuotaCacheSeesNewQuotas(t *testing.T) {
	ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "t", Role: ironpool.RoleAdmin})
	s, path := opener.MustOpenSQLite(t)
	var nodes []*ironpool.Node
	for i := range 2 {
		nodes = append(nodes, &ironpool.Node{Name: fmt.Sprintf("q%d", i), CPUs: 4, MemoryMB: 4096, LocalGB: 10,
			MACs: []string{fmt.Sprintf("52:54:00:00:00:%02x", i)}, BMC: ironpool.BMC{Address: "ipmi://127.0.0.1:623"}})
	}
	if err := s.CreateNodes(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	allocateN := func(n int) error {
		a := &ironpool.Allocation{Owner: "lab", Mode: ironpool.ModeNone, TTL: time.Hour, Metadata: map[string]string{},
			Items: []ironpool.AllocationItem{{Count: n}}}
		return s.Allocate(ctx, a, false)
	}
	allocate := func() error { return allocateN(1) }
	release := func() {
		if _, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{Owner: "lab"}, ironpool.AllocReleased, true); err != nil {
			t.Fatal(err)
		}
	}
	// The first request after the quota appeared must be refused: the
	// store may not serve it from what it remembered before.
	refused := func(how string) {
		t.Helper()
		var e *ironpool.Error
		if err := allocateN(2); !errors.As(err, &e) || e.Code != ironpool.EQUOTA {
			t.Fatalf("%s: 2 nodes under a 1-node quota: %v, want quota_exceeded", how, err)
		}
	}
	if err := allocate(); err != nil { // no quota: remembered
		t.Fatal(err)
	}
	release()
	if _, err := s.SetQuota(ctx, &ironpool.Quota{Owner: "lab", MaxNodes: 1}); err != nil {
		t.Fatal(err)
	}
	refused("quota set by the store")

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var row []any
	cols, err := other.Query(`SELECT * FROM quotas`)
	if err != nil {
		t.Fatal(err)
	}
	names, _ := cols.Columns()
	for cols.Next() {
		row = make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := cols.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
	}
	cols.Close()
	if err := s.DeleteQuota(ctx, "lab"); err != nil {
		t.Fatal(err)
	}
	if err := allocate(); err != nil { // no quota again: remembered again
		t.Fatal(err)
	}
	release()
	ph := strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")
	if _, err := other.Exec(`INSERT INTO quotas (`+strings.Join(names, ",")+`) VALUES (`+ph+`)`, row...); err != nil {
		t.Fatal(err)
	}
	refused("quota written by another connection")
}
