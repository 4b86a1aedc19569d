package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sort"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// pgGroupStore is groupStore on the real PostgreSQL: a bare store with
// group commit (one group at a time, so inOneGroup's calls form one group),
// over a fresh schema holding the table t.
func pgGroupStore(t *testing.T) *Store {
	t.Helper()
	dsn := os.Getenv("IRONPOOL_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("skipped: IRONPOOL_TEST_POSTGRES is not set (no PostgreSQL to test against)")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "ironpool_grp_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Skip("skipped: PostgreSQL does not answer: ", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", dsn); err == nil {
			db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			db.Close()
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	s := New(db, db, Dialect{Name: "postgres", GroupCommit: true, GroupWriters: 1}, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestGroupCommitIsolatesFailuresPostgres is TestGroupCommitIsolatesFailures
// on PostgreSQL, where a failing statement puts the whole transaction in
// the aborted state: one write of the group violates the primary key (an
// engine error, not just a returned one), and the rollback to its savepoint
// must still let the writes after it run and commit with the rest.
func TestGroupCommitIsolatesFailuresPostgres(t *testing.T) {
	s := pgGroupStore(t)
	calls := make([]call, 10)
	for i := range calls {
		calls[i].fn = func(ctx context.Context, tx *sql.Tx) error {
			if i == 5 {
				return insertKey(ctx, tx, "held") // committed before the group: a unique violation
			}
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
		switch {
		case i == 5:
			if err == nil {
				t.Errorf("write 5 inserted a duplicate key without an error")
			}
		case i%3 == 0:
			if err == nil || err.Error() != fmt.Sprint("refused ", i) {
				t.Errorf("write %d: got %v, want its own error", i, err)
			}
		default:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			want = append(want, fmt.Sprint("k", i))
		}
	}
	sort.Strings(want)
	if got := keys(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("table holds %v, want %v", got, want)
	}
	if w, c, _ := s.WriteStats(); w != 11 || c != 2 {
		t.Fatalf("writes=%d commits=%d, want 11 writes in 2 commits (the held one, then one group)", w, c)
	}
}
