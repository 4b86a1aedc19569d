package postgres_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/internal/storetest"
	"github.com/ironpool/ironpool/internal/storetest/opener"
	"github.com/ironpool/ironpool/migrations"
)

// TestStore runs the contract suite on PostgreSQL.
func TestStore(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, openWith(postgres.Options{}))
}

// openWith opens a fresh schema's store with opt, for the suites.
func openWith(opt postgres.Options) func(t *testing.T) ironpool.Store {
	return func(t *testing.T) ironpool.Store { return openStore(t, opt) }
}

// openStore opens a fresh schema's store with opt, closed when t ends.
func openStore(t *testing.T, opt postgres.Options) *sqlstore.Store {
	t.Helper()
	s, err := postgres.OpenWith(context.Background(), pgtest.Schema(t), opener.MustSealer(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestPasswordNotInColumn reads the nodes table as text: a dump of the
// database must not reveal a BMC password.
func TestPasswordNotInColumn(t *testing.T) {
	s, _ := opener.MustOpenPostgres(t)
	const password = "Distinctive-Marmot-Password-4711"
	storetest.CreateSecretNode(t, s, "n1", password)
	var column, row string
	if err := s.DB().QueryRowContext(t.Context(), `SELECT bmc_password, nodes::text FROM nodes WHERE name = 'n1'`).Scan(&column, &row); err != nil {
		t.Fatal(err)
	}
	if column == "" || strings.Contains(column, password) {
		t.Errorf("nodes.bmc_password = %q, want it sealed", column)
	}
	if strings.Contains(row, password) {
		t.Errorf("the nodes row contains the password in clear: %s", row)
	}
	if !strings.Contains(row, "ipmi://10.0.0.9") {
		t.Errorf("the row %q lacks the address; the check above proves nothing", row)
	}
}

// TestMigrateConcurrently starts several stores on one empty schema at once,
// as replicas behind a load balancer do: the advisory lock must let exactly
// one of them migrate and the others find the schema ready.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.Schema(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn, opener.MustSealer(t))
			if err != nil {
				t.Errorf("open: %v", err)
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	s, err := postgres.Open(context.Background(), dsn, opener.MustSealer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var applied int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	files, err := fs.Glob(migrations.Postgres(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if applied != len(files) {
		t.Errorf("goose recorded %d applied migrations, want %d (each once)", applied, len(files))
	}
}

// TestOpenMissingSchema checks that a search_path naming no schema is
// reported as such, not as a failed CREATE TABLE.
func TestOpenMissingSchema(t *testing.T) {
	dsn := pgtest.WithSearchPath(t, pgtest.DSN(t), "ironpool_no_such_schema")
	_, err := postgres.Open(context.Background(), dsn, opener.MustSealer(t))
	if ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), "search_path") {
		t.Errorf("err = %v, want EINVALID about search_path", err)
	}
}

// TestOpenBadDSN checks that a malformed DSN is refused without echoing it,
// since it may carry a password.
func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:Sekrit-Pass@[bad", opener.MustSealer(t))
	if ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
	if strings.Contains(err.Error(), "Sekrit-Pass") {
		t.Errorf("error %q echoes the password", err)
	}
}

// TestListenNotify checks the wake-up path between replicas: a listener is
// called on connect, on every notification, only after the notifying
// transaction commits, and again after its connection is killed.
func TestListenNotify(t *testing.T) {
	s, dsn := opener.MustOpenPostgres(t)
	channel := fmt.Sprintf("ironpool_test_%d", time.Now().UnixNano())
	calls := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- postgres.Listen(ctx, withApp(dsn, channel), channel, func() { calls <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Listen returned %v, want context.Canceled", err)
		}
	})
	wait := func(what string) {
		t.Helper()
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("no call after %s", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case <-calls:
			t.Fatalf("unexpected call %s", what)
		case <-time.After(300 * time.Millisecond):
		}
	}
	wait("connecting")

	if err := postgres.Notify(t.Context(), s.DB(), channel); err != nil {
		t.Fatal(err)
	}
	wait("Notify")

	tx, err := s.DB().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := postgres.Notify(t.Context(), tx, channel); err != nil {
		t.Fatal(err)
	}
	quiet("before the notifying transaction committed")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wait("commit")

	if err := postgres.Notify(t.Context(), s.DB(), channel+"_other"); err != nil {
		t.Fatal(err)
	}
	quiet("for another channel")

	// Kill the listener's session: it must reconnect, call fn (it may have
	// missed something) and go on listening.
	var killed int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, channel).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener sessions, want 1", killed)
	}
	wait("reconnecting")
	if err := postgres.Notify(t.Context(), s.DB(), channel); err != nil {
		t.Fatal(err)
	}
	wait("Notify after reconnecting")
}

// withApp tags the listener's session with application_name so the test
// can find and kill it.
func withApp(dsn, app string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn + " application_name=" + app
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestBatches runs storetest.Batches on PostgreSQL, where batching is on
// by default; TestStoreWithoutBatches keeps the lone transactions covered.
func TestBatches(t *testing.T) {
	pgtest.DSN(t)
	storetest.Batches(t, openWith(postgres.Options{}))
}

// TestStoreWithoutBatches runs the contract suite with every allocation
// and release in a transaction of its own (Options.NoBatch), the path
// every call not served by a batch takes.
func TestStoreWithoutBatches(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, openWith(postgres.Options{NoBatch: true}))
}
