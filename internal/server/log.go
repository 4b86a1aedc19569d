package server

import (
	"io"
	"log/slog"

	"github.com/ironpool/ironpool"
)

// NewLogger builds the server's log: format "text" (logfmt-like, for people
// reading a terminal or journalctl) or "json" (one object per line, for a
// log shipper), at level debug, info, warn or error. Both flags are checked
// here so that serve refuses a bad value before it opens anything.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, ironpool.FieldErrorf("log-level", "%q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, ironpool.FieldErrorf("log-format", "%q is not text or json", format)
}
