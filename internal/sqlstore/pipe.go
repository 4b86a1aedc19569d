package sqlstore

import (
	"context"
	"fmt"
)

// Pipe sends several statements to the database in one round trip and
// reads their results in order (PostgreSQL's pipeline mode). A batch runs
// in two of them: its reads, and its writes with the COMMIT. Measured on a
// 2-core machine under load, a round trip cost about 1 ms more than
// PostgreSQL's own work (BEGIN: 1.5–2.2 ms, 20 µs of it in PostgreSQL),
// and a batch made about ten of them (docs/PERFORMANCE.md, "PostgreSQL:
// plans and two round trips a batch").
type Pipe interface {
	// Send runs qs in order. The first statement that fails stops it:
	// the error is a *PipeError naming it, and no later statement ran.
	Send(ctx context.Context, qs []Piped) error
}

// Piped is one statement of a Pipe. Rows, when set, reads its result rows.
type Piped struct {
	SQL  string
	Args []any
	Rows func(r Rows) error
}

// Rows is what a pipe's statement result offers to Piped.Rows; a
// database/sql *sql.Rows offers it too, so one scan serves both.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// PipeError is the failure of statement Index of a Send.
type PipeError struct {
	Index int
	SQL   string
	Err   error
}

func (e *PipeError) Error() string { return fmt.Sprintf("statement %d of a pipe: %v", e.Index, e.Err) }

func (e *PipeError) Unwrap() error { return e.Err }
