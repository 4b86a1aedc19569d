package postgres

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// unavailable recognises the PostgreSQL errors that mean the database
// cannot serve now rather than a bug: the connection is refused, broken or
// closed under us, the server is shutting down or out of disk or memory.
// The server answers them with 503; the pool reconnects when PostgreSQL is
// back.
func unavailable(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "57P"):
			return "the database connection was lost"
		case strings.HasPrefix(pe.Code, "53"):
			return "the database is out of resources (disk, memory or connections)"
		}
		return ""
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "conn closed") {
		return "the database cannot be reached"
	}
	return ""
}
