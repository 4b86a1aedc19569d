package migrations

import (
	"io/fs"
	"strconv"
	"strings"
)

// Latest returns the version of the newest migration this binary carries
// (the number a file name starts with). /readyz compares it with the
// database's, so a replica whose schema is behind is not sent traffic.
func Latest() int64 {
	var latest int64
	entries, _ := fs.ReadDir(schema, "schema")
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(num, 10, 64); err == nil && v > latest {
			latest = v
		}
	}
	return latest
}
