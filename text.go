package ironpool

import (
	"strings"
	"unicode/utf8"
)

// Column bounds both engines share. SQLite's INTEGER holds 64 bits but
// PostgreSQL's INTEGER holds 32, so a count stored in an INTEGER column
// (cpus) is bounded well inside int32; BIGINT columns (memory_mb, local_gb)
// are bounded too, so no value that passes validation overflows either.
const (
	MaxCPUs = 1 << 20
	MaxSize = 1 << 40 // memory_mb, local_gb
)

// ValidateText checks a free-form string before it reaches a text column
// or a query: PostgreSQL refuses a NUL byte or invalid UTF-8 in text
// (SQLSTATE 22021) where SQLite stores or compares it, so both engines
// answer alike only if neither ever sees one. The error names the field and
// never repeats the value.
func ValidateText(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return FieldErrorf(field, "contains a NUL byte")
	}
	if !utf8.ValidString(s) {
		return FieldErrorf(field, "is not valid UTF-8")
	}
	return nil
}
