package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/ironpool/ironpool/internal/testlog"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/cli"
	"github.com/ironpool/ironpool/internal/server"
)

// run starts m on a free port with its log captured at debug level, the
// most talkative an operator can make it.
func run(t *testing.T, m *server.Main) *testlog.Buffer {
	t.Helper()
	logs := &testlog.Buffer{}
	m.Listen = "127.0.0.1:0"
	if m.DataDir == "" {
		m.DataDir = t.TempDir()
	}
	m.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return logs
}

// call sends one JSON request and returns the status and body.
func call(t *testing.T, base, tok, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// must is call for set-up steps: another status fails the test.
func must(t *testing.T, base, tok, method, path string, body any, want int, out any) []byte {
	t.Helper()
	st, data := call(t, base, tok, method, path, body)
	if st != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return data
}

func newToken(t *testing.T, base, admin, role string, owners ...string) string {
	t.Helper()
	var tok struct {
		Token string `json:"token"`
	}
	must(t, base, admin, "POST", "/v1/tokens", map[string]any{"role": role, "owners": owners}, 201, &tok)
	return tok.Token
}

// runCLI runs the ironpool command line in-process and returns its exit
// code, stdout and stderr. env supplies the environment; nothing is read
// from the real one.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut testlog.Buffer
	code := cli.Run(context.Background(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

func nodeJSON(name, pool, password string) map[string]any {
	return map[string]any{"name": name, "pool": pool, "cpus": 4, "memory_mb": 8192, "cpu_arch": "x86_64",
		"bmc": map[string]any{"address": "ipmi://10.0.0.1:623", "username": "root", "password": password}}
}

func allocJSON(owner, pool string) map[string]any {
	return map[string]any{"owner": owner, "pool": pool, "ttl": "1h",
		"items": []map[string]any{{"constraints": map[string]any{"cpus": 1}, "count": 1}}}
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func newLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
