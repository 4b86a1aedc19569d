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

// call is one caller's write for inOneGroup; a nil ctx is Background.
type call struct {
	ctx context.Context
	fn  func(context.Context, *sql.Tx) error
}

// inOneGroup holds the writer with a blocking write, queues calls behind it
// (each from its own goroutine, as concurrent requests would), runs
// meanwhile once all are queued, then releases the writer so the calls run
// as one group. It returns each call's error and any panic it raised.
func inOneGroup(t *testing.T, s *Store, calls []call, meanwhile func()) ([]error, []any) {
	t.Helper()
	gate, held := make(chan struct{}), make(chan struct{})
	heldErr := make(chan error, 1)
	go func() {
		heldErr <- s.write(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			close(held)
			<-gate
			return insertKey(ctx, tx, "held")
		})
	}()
	<-held
	errs, panics := make([]error, len(calls)), make([]any, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		if c.ctx == nil {
			c.ctx = context.Background()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			errs[i] = s.write(c.ctx, c.fn)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.group.waiting.Load() < int64(len(calls)) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d writes queued", s.group.waiting.Load(), len(calls))
		}
		time.Sleep(time.Millisecond)
	}
	if meanwhile != nil {
		meanwhile()
	}
	close(gate)
	if err := <-heldErr; err != nil {
		t.Errorf("held write: %v", err)
	}
	wg.Wait()
	return errs, panics
}

// TestGroupCommitIsolatesFailures runs ten writes in one group, every third
// of which fails after writing: the failing ones leave nothing and get their
// own error, the others commit, and the group took one commit.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := groupStore(t)
	calls := make([]call, 10)
	for i := range calls {
		calls[i].fn = func(ctx context.Context, tx *sql.Tx) error {
			if err := insertKey(ctx, tx, fmt.Sprint("k", i)); err != nil {
				return err
			}
			if i%3 == 0 {
				return fmt.Errorf("refused %d", i)
			}
			return nil
		}
	}
	errs, _ := inOneGroup(t, s, calls, nil)
	want := []string{"held"}
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
	sort.Strings(want)
	if got := keys(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("table holds %v, want %v", got, want)
	}
	if w, c, busy := s.WriteStats(); w != 11 || c != 2 || busy <= 0 {
		t.Fatalf("writes=%d commits=%d busy=%s, want 11 writes in 2 commits (the held one, then one group) and the writer's time", w, c, busy)
	}
}

// TestGroupCommitSeesEarlierWrites checks serial semantics inside a group:
// a later write sees an earlier one's row (as a unique violation here).
func TestGroupCommitSeesEarlierWrites(t *testing.T) {
	s := groupStore(t)
	same := call{fn: func(ctx context.Context, tx *sql.Tx) error { return insertKey(ctx, tx, "same") }}
	errs, _ := inOneGroup(t, s, []call{same, same}, nil)
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
	calls := make([]call, 4)
	for i := range calls {
		calls[i].fn = func(ctx context.Context, tx *sql.Tx) error {
			if err := insertKey(ctx, tx, fmt.Sprint("k", i)); err != nil {
				return err
			}
			if i == 2 {
				_, err := tx.ExecContext(ctx, `ROLLBACK`)
				return err
			}
			return nil
		}
	}
	errs, _ := inOneGroup(t, s, calls, nil)
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
	cctx, cancel := context.WithCancel(context.Background())
	errs, panics := inOneGroup(t, s, []call{
		{fn: func(ctx context.Context, tx *sql.Tx) error {
			insertKey(ctx, tx, "panic")
			panic("boom")
		}},
		{fn: func(ctx context.Context, tx *sql.Tx) error { return insertKey(ctx, tx, "ok") }},
		{ctx: cctx, fn: func(ctx context.Context, tx *sql.Tx) error { return insertKey(ctx, tx, "canceled") }},
	}, cancel)
	if panics[0] == nil {
		t.Error("the panic was not raised in its caller")
	}
	if errs[1] != nil || panics[1] != nil {
		t.Errorf("the good write failed: %v %v", errs[1], panics[1])
	}
	if !errors.Is(errs[2], context.Canceled) {
		t.Errorf("canceled write: %v, want context.Canceled", errs[2])
	}
	if got := keys(t, s); fmt.Sprint(got) != "[held ok]" {
		t.Fatalf("table holds %v, want [held ok]", got)
	}
}
