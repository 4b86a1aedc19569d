package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/sqlite"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestSynchronous: commits are synced (synchronous=FULL) unless the
// operator asks for NORMAL, and a bad setting is refused naming the flag.
func TestSynchronous(t *testing.T) {
	for _, c := range []struct {
		setting string
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{"", 2}, {"full", 2}, {"FULL", 2}, {"normal", 1}} {
		st, err := sqlite.OpenWith(context.Background(), filepath.Join(t.TempDir(), "s.db"), opener.MustSealer(t), sqlite.Options{Synchronous: c.setting})
		if err != nil {
			t.Fatalf("%q: %v", c.setting, err)
		}
		var got int
		if err := st.DB().QueryRow(`PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if got != c.want {
			t.Errorf("synchronous %q: PRAGMA synchronous = %d, want %d", c.setting, got, c.want)
		}
	}
	_, err := sqlite.OpenWith(context.Background(), filepath.Join(t.TempDir(), "s.db"), opener.MustSealer(t), sqlite.Options{Synchronous: "off"})
	if e, ok := err.(*ironpool.Error); !ok || e.Field != "sqlite-synchronous" {
		t.Errorf("synchronous off: %v, want refused naming sqlite-synchronous", err)
	}
}

// TestFileModes: the database and its -wal and -shm files are readable by
// their owner only, even under a permissive umask, and a file an older
// version created 0644 is tightened.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "m.db")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s: %s has mode %04o, want 0600", when, filepath.Base(p), perm)
			}
		}
	}
	st, err := sqlite.Open(context.Background(), path, opener.MustSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	storeWrite(t, st)
	check("new database")
	st.Close()

	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644)
	}
	st, err = sqlite.Open(context.Background(), path, opener.MustSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storeWrite(t, st)
	check("database left 0644")
}

// storeWrite makes one write, so that the -wal and -shm files exist.
func storeWrite(t *testing.T, st interface {
	AddEvent(context.Context, *ironpool.Event) error
}) {
	t.Helper()
	ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	if err := st.AddEvent(ctx, &ironpool.Event{Action: "test", Subject: "test/1", Summary: "x"}); err != nil {
		t.Fatal(err)
	}
}
