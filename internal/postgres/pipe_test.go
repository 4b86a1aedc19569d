package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/sqlstore"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestPipeCheckStopsCommit: a batch sends its writes and its COMMIT in
// one pipe, so a failed ironpool_check must leave the COMMIT unrun and
// nothing written; a passing one commits. Results come back statement by
// statement, in order.
func TestPipeCheckStopsCommit(t *testing.T) {
	st, err := postgres.OpenWith(context.Background(), pgtest.Schema(t), opener.MustSealer(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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

	err = send(write("refused", false))
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
