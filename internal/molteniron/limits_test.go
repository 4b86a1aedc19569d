package molteniron_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/testlog"
)

// TestListenLoopbackOnly: the unauthenticated listener binds loopback
// unless --molteniron-allow-remote says otherwise.
func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0"} {
		m := &server.Main{Listen: "127.0.0.1:0", MoltenIronListen: addr, MoltenIronRole: "admin",
			DataDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := m.Run(context.Background())
		if err == nil {
			m.Close()
			t.Errorf("--molteniron-listen %s started without --molteniron-allow-remote", addr)
			continue
		}
		if e, ok := err.(*ironpool.Error); !ok || e.Field != "molteniron-listen" || !strings.Contains(e.Hint, "--molteniron-allow-remote") {
			t.Errorf("%s: refusal = %v; want field molteniron-listen naming --molteniron-allow-remote", addr, err)
		}
	}
	// With the flag the operator takes the risk: ":0" binds.
	m := MustMain(t, func(m *server.Main) { m.MoltenIronListen, m.MoltenIronAllowRemote = ":0", true })
	if m.MoltenIronListen == "" {
		t.Fatal("no address bound")
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		m := &server.Main{Listen: "127.0.0.1:0", MoltenIronListen: addr, MoltenIronRole: "admin",
			DataDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := m.Run(context.Background()); err != nil && !strings.Contains(err.Error(), "cannot assign") && !strings.Contains(err.Error(), "address family") {
			t.Errorf("loopback %s refused: %v", addr, err)
		}
		m.Close()
	}
}

// TestDepthLimit: a deeply nested body is refused at the REST API's depth
// (encoding/json's 10000 levels) and costs no more than reading it.
func TestDepthLimit(t *testing.T) {
	m := MustMain(t)
	deep := []byte(strings.Repeat("[", 1<<20-1))
	st, _, raw := Call(t, m, deep)
	if st != 400 || !strings.Contains(raw, "nests deeper than 10000") {
		t.Errorf("1 MiB of '[': %d %.200s; want 400 naming the depth limit", st, raw)
	}
	// Just under the limit still parses (and is then not an object).
	ok := []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))
	if st, _, raw := Call(t, m, ok); st != 400 || !strings.Contains(raw, "must be a JSON object") {
		t.Errorf("10000 levels: %d %.200s; want it parsed and refused as not an object", st, raw)
	}
	// The REST API refuses the same body.
	req, _ := http.NewRequest("POST", m.URL()+"/v1/nodes", bytes.NewReader(deep))
	req.Header.Set("Authorization", "Bearer "+m.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 && resp.StatusCode != 422 {
		t.Errorf("REST API answered the same body %d", resp.StatusCode)
	}
	// And both refuse a body over 1 MiB.
	if st, _, _ := Call(t, m, []byte(`{"method": "status", "x": "`+strings.Repeat("a", 1<<20)+`"}`)); st != 413 {
		t.Errorf("a body over 1 MiB: %d, want 413", st)
	}
}

// TestGetNotLoggedAsError: a GET is the client's mistake (501), logged at
// INFO, not at ERROR where operators look for the server's failures.
func TestGetNotLoggedAsError(t *testing.T) {
	logs := &testlog.Buffer{}
	m := MustMain(t, func(m *server.Main) { m.Log = slog.New(slog.NewTextHandler(logs, nil)) })
	resp, err := http.Get("http://" + m.MoltenIronListen + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 {
		t.Fatalf("GET: %d, want 501", resp.StatusCode)
	}
	out := logs.String()
	if !strings.Contains(out, "status=501") {
		t.Fatalf("no log line for the GET:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "status=501") && strings.Contains(line, "level=ERROR") {
			t.Errorf("GET logged at ERROR: %s", line)
		}
	}
}
