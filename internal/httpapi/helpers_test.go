package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/ironpool/ironpool/internal/testlog"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// testServer is a real ironpool server on a free port with tokens for each
// role: the same Main the binary runs, so the tests see what users see.
type testServer struct {
	t        *testing.T
	m        *server.Main
	logs     *testlog.Buffer
	admin    string
	operator string
	user     string // owners: lab1
	seq      atomic.Int64
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	logs := &testlog.Buffer{}
	m := servertest.Start(t, &server.Main{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	s := &testServer{t: t, m: m, logs: logs, admin: m.AdminToken}
	s.operator = s.token("operator")
	s.user = s.token("user", "lab1")
	return s
}

// token creates a token with the admin token and returns its secret.
func (s *testServer) token(role string, owners ...string) string {
	s.t.Helper()
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	s.mustDo(s.admin, "POST", "/v1/tokens", map[string]any{"role": role, "owners": owners}, 201, &tok)
	return tok.Token
}

// do sends one request; body may be nil, a []byte sent as is, or a value
// encoded as JSON.
func (s *testServer) do(tok, method, path string, body any) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.m.URL()+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

// mustDo is do for fixture set-up: any other status fails the test.
func (s *testServer) mustDo(tok, method, path string, body any, want int, out any) {
	s.t.Helper()
	st, _, data := s.do(tok, method, path, body)
	if st != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// name returns a fresh name so fixtures never collide.
func (s *testServer) name(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, s.seq.Add(1))
}

// node adds a node in its own pool and returns its name and pool, so an
// allocation for that pool takes exactly this node.
func (s *testServer) node() (name, pool string) {
	s.t.Helper()
	name, pool = s.name("n"), s.name("p")
	s.mustDo(s.admin, "POST", "/v1/nodes", nodeBody(name, pool, "pw-"+name), 201, nil)
	return name, pool
}

func nodeBody(name, pool, password string) map[string]any {
	return map[string]any{"name": name, "pool": pool, "cpus": 4, "memory_mb": 8192, "cpu_arch": "x86_64",
		"bmc": map[string]any{"address": "ipmi://10.0.0.1:623", "username": "root", "password": password}}
}

func allocBody(owner, pool string) map[string]any {
	return map[string]any{"owner": owner, "pool": pool, "ttl": "1h",
		"items": []map[string]any{{"constraints": map[string]any{"cpus": 1}, "count": 1}}}
}

// allocation allocates a fresh node for owner (as admin) and returns the
// allocation id.
func (s *testServer) allocation(owner string) string {
	s.t.Helper()
	_, pool := s.node()
	var a struct {
		ID string `json:"id"`
	}
	s.mustDo(s.admin, "POST", "/v1/allocations", allocBody(owner, pool), 201, &a)
	return a.ID
}

// heldNode allocates a fresh node to owner and returns its name.
func (s *testServer) heldNode(owner string) string {
	s.t.Helper()
	name, pool := s.node()
	s.mustDo(s.admin, "POST", "/v1/allocations", allocBody(owner, pool), 201, nil)
	return name
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func reserveBody(owner, pool string) map[string]any {
	return map[string]any{"owner": owner, "pool": pool, "start": "+1h", "end": "+2h",
		"items": []map[string]any{{"constraints": map[string]any{"cpus": 1}, "count": 1}}}
}

// reservation books a fresh node for owner (as admin) and returns the
// reservation id.
func (s *testServer) reservation(owner string) string {
	s.t.Helper()
	_, pool := s.node()
	var r struct {
		ID string `json:"id"`
	}
	s.mustDo(s.admin, "POST", "/v1/reservations", reserveBody(owner, pool), 201, &r)
	return r.ID
}
