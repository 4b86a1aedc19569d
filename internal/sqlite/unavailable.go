package sqlite

import (
	"errors"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

// unavailable recognises the SQLite errors that mean the file cannot be
// written or read now rather than a bug: a full disk, an I/O error, a file
// that cannot be opened or has become read-only. The server answers them
// with 503, and service resumes by itself when the cause goes away.
func unavailable(err error) string {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Code() & 0xff {
	case sqlite3lib.SQLITE_FULL:
		return "the database is full: no space left on its disk"
	case sqlite3lib.SQLITE_IOERR:
		return "the database file cannot be read or written (I/O error)"
	case sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_READONLY:
		return "the database file cannot be written now"
	}
	return ""
}
