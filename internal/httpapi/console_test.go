package httpapi_test

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
	"github.com/ironpool/ironpool/internal/testlog"
)

// TestCleanNode runs the clean of a node in error again through
// POST /v1/nodes/{name}/clean, against a real server whose clean command
// fails the first time: the node goes error → cleaning → available, the
// audit log says who asked, and a node not in error is refused unchanged.
func TestCleanNode(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "failed-once")
	script := fmt.Sprintf(`[ -e %q ] || { touch %q; echo "disk wipe failed"; exit 1; }`, flag, flag)
	logs := &testlog.Buffer{}
	m := servertest.Start(t, &server.Main{Log: slog.New(slog.NewTextHandler(logs, nil)),
		Background: reconcile.Config{CleanCommand: []string{"sh", "-c", script}}})
	s := &testServer{t: t, m: m, logs: logs, admin: m.AdminToken}
	s.operator = s.token("operator")
	s.user = s.token("user", "lab1")

	id := s.allocation("lab1")
	var a struct {
		Nodes []struct {
			Name string `json:"name"`
		} `json:"nodes"`
	}
	s.mustDo(s.admin, "GET", "/v1/allocations/"+id, nil, 200, &a)
	if len(a.Nodes) != 1 {
		t.Fatalf("allocation nodes: %+v", a.Nodes)
	}
	name := a.Nodes[0].Name
	s.mustDo(s.user, "DELETE", "/v1/allocations/"+id, nil, 200, nil)
	n := waitNode(t, s, name, "error")
	if !strings.Contains(fmt.Sprint(n["last_error"]), "disk wipe failed") {
		t.Fatalf("last_error = %v", n["last_error"])
	}

	// A user may not ask; the node stays in error.
	s.wantProblem(s.user, "POST", "/v1/nodes/"+name+"/clean", nil, 403, "may not node.clean")
	waitNode(t, s, name, "error")

	var got map[string]any
	s.mustDo(s.operator, "POST", "/v1/nodes/"+name+"/clean", nil, 200, &got)
	if got["state"] != "cleaning" && got["state"] != "available" {
		t.Errorf("clean answered state %v, want cleaning", got["state"])
	}
	n = waitNode(t, s, name, "available")
	if n["last_error"] != nil && n["last_error"] != "" {
		t.Errorf("last_error after a good clean = %v", n["last_error"])
	}
	var ev struct {
		Events []struct {
			Action, Summary, Role string
		} `json:"events"`
	}
	s.mustDo(s.admin, "GET", "/v1/events?subject=node/"+name+"&action=node.clean", nil, 200, &ev)
	if len(ev.Events) != 1 || ev.Events[0].Role != "operator" || !strings.Contains(ev.Events[0].Summary, "disk wipe failed") {
		t.Errorf("node.clean events = %+v, want one by the operator naming the old error", ev.Events)
	}

	// Not in error: refused with the state named, nothing changes.
	s.wantProblem(s.operator, "POST", "/v1/nodes/"+name+"/clean", nil, 409, "is available; only a node in error")
	s.wantProblem(s.operator, "POST", "/v1/nodes/no-such-node/clean", nil, 404, "no-such-node")
	s.mustDo(s.admin, "GET", "/v1/events?subject=node/"+name+"&action=node.clean", nil, 200, &ev)
	if len(ev.Events) != 1 {
		t.Errorf("a refused clean wrote an event: %+v", ev.Events)
	}
}

// TestUsageAndHistoryInput checks the console reads refuse bad input by
// name: an unknown window, a negative page cursor.
func TestUsageAndHistoryInput(t *testing.T) {
	s := startServer(t)
	s.wantProblem(s.operator, "GET", "/v1/usage?window=1y", nil, 400, "window")
	n, _ := s.node()
	s.wantProblem(s.operator, "GET", "/v1/nodes/"+n+"/history?before=-1", nil, 400, "before")
	s.wantProblem(s.operator, "GET", "/v1/nodes/nope/history", nil, 404, "nope")
	var u struct {
		Window string `json:"window"`
		Pools  []struct {
			Pool   string `json:"pool"`
			Points []struct {
				Free float64 `json:"free"`
			} `json:"points"`
		} `json:"pools"`
	}
	s.mustDo(s.operator, "GET", "/v1/usage", nil, 200, &u)
	if u.Window != "24h" || len(u.Pools) == 0 || len(u.Pools[0].Points) != 24 {
		t.Fatalf("usage = %+v, want 24 hourly points for each pool", u)
	}
}

func waitNode(t *testing.T, s *testServer, name, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n map[string]any
		s.mustDo(s.admin, "GET", "/v1/nodes/"+name, nil, 200, &n)
		if n["state"] == state {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s is %v (last_error %v), want %s", name, n["state"], n["last_error"], state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantProblem sends a request and fails unless it is refused with status
// and a problem detail containing want.
func (s *testServer) wantProblem(tok, method, path string, body any, status int, want string) {
	s.t.Helper()
	got, _, data := s.do(tok, method, path, body)
	if got != status || !strings.Contains(string(data), want) {
		s.t.Errorf("%s %s: %d %s, want %d naming %q", method, path, got, data, status, want)
	}
}
