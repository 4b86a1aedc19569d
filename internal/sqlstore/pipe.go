package sqlstore

import (
	"context"
	"fmt"
)

// Pipe sends several statements to the database in one round trip and
// reads their results in order (PostgreSQL's pipeline mode). A batch runs
// in two of them: its reads, and its writes with the COMMIT. On a 2-core
// machine under load, each round trip's wait is mostly the batch's
// goroutine waiting to be scheduled again behind the HTTP handlers a batch
// has just woken: about 1 ms each, measured, against 10 round trips a
// batch before pipes (docs/PERFORMANCE.md, "Batches in two round trips").
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
