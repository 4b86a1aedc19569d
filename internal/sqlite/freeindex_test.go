package sqlite_test

import (
	"context"
	"database/sql"
	"testing"

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
