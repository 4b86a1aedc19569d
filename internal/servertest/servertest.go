// Package servertest starts real ironpool servers for tests: the same
// server.Main the binary runs, on 127.0.0.1:0 with a temporary data
// directory, closed when the test ends.
package servertest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/ironpool/ironpool/internal/server"
)

// Start runs m and closes it when the test ends. What m leaves empty is
// filled in for a test: Listen 127.0.0.1:0, a temporary DataDir and a log
// that is thrown away, and a BMC dialer that reaches only 127.0.0.1
// (LoopbackDialer). A nil m is a default server on SQLite.
func Start(tb testing.TB, m *server.Main) *server.Main {
	tb.Helper()
	if m == nil {
		m = &server.Main{}
	}
	if m.Listen == "" {
		m.Listen = "127.0.0.1:0"
	}
	if m.DataDir == "" {
		m.DataDir = tb.TempDir()
	}
	if m.BMC == nil {
		m.BMC = LoopbackDialer{}
	}
	if m.Background.Health.Interval == 0 {
		m.Background.Health.Interval = -1 // health checks only where a test asks for them
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	if err := m.Run(context.Background()); err != nil {
		tb.Fatalf("start server: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}
