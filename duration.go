package ironpool

import (
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration, also accepting whole days ("7d"),
// which lease lengths are usually given in. The error names field.
func ParseDuration(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	// "-0s" parses as zero, which callers read as "not given": a sign
	// is refused before it can mean the default.
	if strings.HasPrefix(s, "-") {
		return 0, FieldErrorf(field, "must not be negative")
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 3650 {
			return 0, FieldErrorf(field, "%q is not a duration (e.g. 30m, 4h, 7d)", truncate(s, 20))
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, FieldErrorf(field, "%q is not a duration (e.g. 30m, 4h, 7d)", truncate(s, 20))
	}
	if v < 0 {
		return 0, FieldErrorf(field, "must not be negative")
	}
	return v, nil
}

// ParseTime parses a point in time given as RFC 3339 or as +DURATION from
// now ("+2h", "+7d"), which is how reservation windows are usually written.
// The error names field.
func ParseTime(field, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutPrefix(s, "+"); ok {
		v, err := ParseDuration(field, d)
		if err != nil {
			return time.Time{}, FieldErrorf(field, "%q is not +DURATION (e.g. +30m, +4h, +7d)", truncate(s, 30))
		}
		return now.Add(v).UTC().Truncate(time.Millisecond), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, FieldErrorf(field, "%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor +DURATION", truncate(s, 30))
	}
	return t.UTC().Truncate(time.Millisecond), nil
}
