package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ironpool/ironpool/internal/sqlstore"
)

// pipe is a sqlstore.Pipe on one pgx connection: a Send is one pgx batch,
// which pgx sends as one pipeline with a single Sync. After a failed
// statement PostgreSQL skips the rest until that Sync, which is what
// Send promises.
type pipe struct{ c *pgx.Conn }

// newPipe is Dialect.Pipe: dc is the driver connection database/sql's
// Conn.Raw hands out, pgx's stdlib one.
func newPipe(dc any) sqlstore.Pipe { return pipe{dc.(*stdlib.Conn).Conn()} }

func (p pipe) Send(ctx context.Context, qs []sqlstore.Piped) error {
	b := &pgx.Batch{}
	for _, q := range qs {
		b.Queue(q.SQL, q.Args...)
	}
	br := p.c.SendBatch(ctx, b)
	for i, q := range qs {
		if err := read(br, q); err != nil {
			br.Close()
			return &sqlstore.PipeError{Index: i, SQL: q.SQL, Err: err}
		}
	}
	return br.Close()
}

// read reads one statement's result from br.
func read(br pgx.BatchResults, q sqlstore.Piped) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if q.Rows != nil {
		if err := q.Rows(rows); err != nil {
			return err
		}
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}
