package postgres_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// TestPipeCheckStopsCommit: a batch sends its writes and its COMMIT in
// one pipe, so a failed ironpool_check must leave the COMMIT unrun and
// nothing written; a passing one commits. Results come back statement by
// statement, in order.
func TestPipeCheckStopsCommit(t *testing.T) {
	st := openStore(t, postgres.Options{})
	ctx := t.Context()
	send := func(qs []sqlstore.Piped) error {
		conn, err := st.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var sendErr error
		if err := conn.Raw(func(dc any) error {
			p := postgres.Dialect.Pipe(dc)
			if sendErr = p.Send(ctx, qs); sendErr != nil {
				return p.Send(ctx, []sqlstore.Piped{{SQL: "ROLLBACK"}})
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return sendErr
	}
	write := func(name string, ok bool) []sqlstore.Piped {
		return []sqlstore.Piped{
			{SQL: "BEGIN"},
			{SQL: `INSERT INTO settings (name, value) VALUES ($1, 'x')`, Args: []any{name}},
			{SQL: `SELECT ironpool_check($1, $2)`, Args: []any{ok, "the check of " + name + " failed"}},
			{SQL: "COMMIT"},
		}
	}
	stored := func(name string) bool {
		var n int
		if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM settings WHERE name = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	err := send(write("refused", false))
	var pe *sqlstore.PipeError
	if !errors.As(err, &pe) || pe.Index != 2 || !strings.Contains(err.Error(), "the check of refused failed") {
		t.Errorf("a failed check gave %v, want the error of statement 2 with its message", err)
	}
	if stored("refused") {
		t.Error("the write before a failed check was committed")
	}
	if err := send(write("passed", true)); err != nil {
		t.Fatal(err)
	}
	if !stored("passed") {
		t.Error("a passing check's write was not committed")
	}

	var got []string
	read := func(rows sqlstore.Rows) error {
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			got = append(got, s)
		}
		return rows.Err()
	}
	if err := send([]sqlstore.Piped{
		{SQL: `SELECT 'a' UNION ALL SELECT 'b'`, Rows: read},
		{SQL: `SELECT $1::text`, Args: []any{"c"}, Rows: read},
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "abc" {
		t.Errorf("rows read %q, want a, b, c in order", got)
	}
}

// TestBatchClaimChecksReservations: a reservation booked between a
// batch's read and its claim keeps its node; the claim's check fails the
// batch, and the call, run alone, is refused. Without the check the batch
// committed an allocation holding none of its nodes.
func TestBatchClaimChecksReservations(t *testing.T) {
	st := openStore(t, postgres.Options{})
	ctx := t.Context()
	if err := st.BulkCreateNodes(ctx, []*ironpool.Node{{Name: "n1", CPUs: 8, MemoryMB: 32768, LocalGB: 100,
		CPUArch: "x86_64", ResourceClass: "baremetal", BMC: ironpool.BMC{Address: "ipmi://127.0.0.1:623"}}}); err != nil {
		t.Fatal(err)
	}
	booked := false
	st.SetBatchBetween(func() {
		if booked {
			return
		}
		booked = true
		start := time.Now().Add(time.Minute).UnixMilli()
		if _, err := st.DB().ExecContext(ctx, `INSERT INTO reservations (id, owner, state, mode, items, start_at, end_at, created_at)
			VALUES ('r1', 'lab', 'pending', 'none', '[]', $1, $2, $1)`, start, start+3600000); err != nil {
			t.Error(err)
		}
		if _, err := st.DB().ExecContext(ctx, `INSERT INTO reservation_nodes (reservation_id, node_id, item)
			SELECT 'r1', id, 0 FROM nodes WHERE name = 'n1'`); err != nil {
			t.Error(err)
		}
	})
	a := &ironpool.Allocation{Owner: "ci", Mode: ironpool.ModeNone, TTL: time.Hour,
		Items: []ironpool.AllocationItem{{Count: 1}}}
	err := st.Allocate(ironpool.NewContextWithActor(ctx, ironpool.System), a, false)
	if !booked {
		t.Fatal("no batch ran: this test did not test the batch's claim")
	}
	if err == nil {
		t.Errorf("the allocation was served with %d nodes, though its one node was reserved before the claim", len(a.Nodes))
	}
	var active int
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM allocations WHERE state = 'active'`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if active != 0 {
		t.Errorf("%d active allocations after the refused request, want none", active)
	}
}
