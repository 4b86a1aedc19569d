package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// groupStore is a bare store over a one-connection SQLite pool with group
// commit, holding one table the tests write to directly.
func groupStore(t *testing.T) *Store {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "g.db")+"?_txlock=immediate&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	s := New(db, db, Dialect{Name: "sqlite", GroupCommit: true}, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

func insertKey(ctx context.Context, tx *sql.Tx, k string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ($1)`, k)
	return err
}

func keys(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.W.Query(`SELECT k FROM t ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		rows.Scan(&k)
		out = append(out, k)
	}
	return out
}

// holdWriter starts a write that blocks until the returned release is
// called, then waits until n other writes queue behind it, so that they
// all land in the next group.
func holdWriter(t *testing.T, s *Store, start func()) (release func()) {
	t.Helper()
	gate, held := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			close(held)
			<-gate
			return insertKey(ctx, tx, "held")
		})
		if err != nil {
			t.Errorf("held write: %v", err)
		}
	}()
	<-held
	start()
	return func() { close(gate); wg.Wait() }
}

func waitQueued(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.group.waiting.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes queued", s.group.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitIsolatesFailures runs ten writes in one group, every third
// of which fails after writing: the failing ones leave nothing and get their
// own error, the others commit, and the group took one commit.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := groupStore(t)
	errs := make([]error, 10)
	var wg sync.WaitGroup
	release := holdWriter(t, s, func() {
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
					if err := insertKey(ctx, tx, fmt.Sprint("k", i)); err != nil {
						return err
					}
					if i%3 == 0 {
						return fmt.Errorf("refused %d", i)
					}
					return nil
				})
			}()
		}
		waitQueued(t, s, int64(len(errs)))
	})
	release()
	wg.Wait()
	var want []string
	for i, err := range errs {
		if i%3 == 0 {
			if err == nil || err.Error() != fmt.Sprint("refused ", i) {
				t.Errorf("write %d: got %v, want its own error", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
		want = append(want, fmt.Sprint("k", i))
	}
	want = append(want, "held")
	sort.Strings(want)
	if got := keys(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("table holds %v, want %v", got, want)
	}
	if w, c := s.WriteStats(); w != 11 || c != 2 {
		t.Fatalf("writes=%d commits=%d, want 11 writes in 2 commits (the held one, then one group)", w, c)
	}
}

// TestGroupCommitSeesEarlierWrites checks serial semantics inside a group:
// a later write sees an earlier one's row (as a unique violation here).
func TestGroupCommitSeesEarlierWrites(t *testing.T) {
	s := groupStore(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	release := holdWriter(t, s, func() {
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error { return insertKey(ctx, tx, "same") })
			}()
		}
		waitQueued(t, s, 2)
	})
	release()
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two writes of one key in a group: %v and %v; want exactly one to fail", errs[0], errs[1])
	}
	if got := keys(t, s); fmt.Sprint(got) != "[held same]" {
		t.Fatalf("table holds %v", got)
	}
}

// TestGroupCommitFallsBackAlone breaks the shared transaction from inside
// one write (as an engine error that rolls the transaction back would): the
// group is abandoned and each write runs again alone, so the others still
// commit, exactly once.
func TestGroupCommitFallsBackAlone(t *testing.T) {
	s := groupStore(t)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	release := holdWriter(t, s, func() {
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
					if err := insertKey(ctx, tx, fmt.Sprint("k", i)); err != nil {
						return err
					}
					if i == 2 {
						_, err := tx.ExecContext(ctx, `ROLLBACK`)
						return err
					}
					return nil
				})
			}()
		}
		waitQueued(t, s, int64(len(errs)))
	})
	release()
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 2) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if got := keys(t, s); fmt.Sprint(got) != "[held k0 k1 k3]" {
		t.Fatalf("table holds %v, want [held k0 k1 k3]", got)
	}
}

// TestGroupCommitPanicAndCancel: a panicking write re-panics in its own
// caller and a write whose context ended while queued does not run; the
// rest of the group commits.
func TestGroupCommitPanicAndCancel(t *testing.T) {
	s := groupStore(t)
	var wg sync.WaitGroup
	var panicked any
	var okErr, cancelErr error
	cctx, cancel := context.WithCancel(context.Background())
	release := holdWriter(t, s, func() {
		wg.Add(3)
		go func() {
			defer wg.Done()
			defer func() { panicked = recover() }()
			s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
				insertKey(ctx, tx, "panic")
				panic("boom")
			})
		}()
		go func() {
			defer wg.Done()
			okErr = s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error { return insertKey(ctx, tx, "ok") })
		}()
		go func() {
			defer wg.Done()
			cancelErr = s.write(cctx, func(ctx context.Context, tx *sql.Tx) error { return insertKey(ctx, tx, "canceled") })
		}()
		waitQueued(t, s, 3)
		cancel()
	})
	release()
	wg.Wait()
	if panicked == nil {
		t.Error("the panic was not raised in its caller")
	}
	if okErr != nil {
		t.Errorf("the good write failed: %v", okErr)
	}
	if !errors.Is(cancelErr, context.Canceled) {
		t.Errorf("canceled write: %v, want context.Canceled", cancelErr)
	}
	if got := keys(t, s); fmt.Sprint(got) != "[held ok]" {
		t.Fatalf("table holds %v, want [held ok]", got)
	}
}
