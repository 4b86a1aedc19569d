package sqlite_test

import (
	"context"
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
