package sqlite_test

import (
	"fmt"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestFullDiskIsUnavailable: when the database cannot grow (SQLite's
// max_page_count stands in for a full disk: the engine reports the same
// SQLITE_FULL), a write fails with EUNAVAILABLE (HTTP 503), not an internal
// error, changes nothing, and writes succeed again once there is room. The
// campaign (internal/soak) does the same with a real full tmpfs.
func TestFullDiskIsUnavailable(t *testing.T) {
	s, ctx := opener.MustOpenSQLiteAdmin(t)
	var pages int
	if err := s.W.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.W.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	var full error
	made := 0
	for i := 0; i < 2000 && full == nil; i++ {
		f := &ironpool.Flavor{Name: fmt.Sprintf("f%04d", i), Constraints: ironpool.Constraints{CPUs: 1, ResourceClass: fmt.Sprintf("rc-%0200d", i)}}
		if full = s.CreateFlavor(ctx, f); full == nil {
			made++
		}
	}
	if full == nil {
		t.Fatal("2000 writes fitted in a database that may not grow")
	}
	if code := ironpool.ErrorCode(full); code != ironpool.EUNAVAILABLE {
		t.Fatalf("a write to a full database failed with %q (%v); want %q", code, full, ironpool.EUNAVAILABLE)
	}
	fs, err := s.FindFlavors(ctx)
	if err != nil || len(fs) != made {
		t.Fatalf("after the failed write: %d flavors, %v; want the %d made before", len(fs), err, made)
	}
	if _, err := s.W.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "after", Constraints: ironpool.Constraints{CPUs: 1}}); err != nil {
		t.Fatalf("write after room came back: %v", err)
	}
}
