package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/testlog"
)

// TestJSONAccessLog runs a server with --log-format json at debug level and
// checks that every request gets one JSON access line carrying method,
// route, status, duration, the token's id and role and the request id that
// the response echoed — and that neither the BMC password sent in bodies
// nor any token secret appears anywhere in the log.
func TestJSONAccessLog(t *testing.T) {
	const pw = "Known-PW-ajq83-Kestrel"
	logs := &testlog.Buffer{}
	log, err := server.NewLogger(logs, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	m := &server.Main{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Log: log}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	base, admin := m.URL(), m.AdminToken
	user := newToken(t, base, admin, "user", "lab1")

	must(t, base, admin, "POST", "/v1/nodes", nodeJSON("n1", "p1", pw), 201, nil)
	call(t, base, admin, "PATCH", "/v1/nodes/n1", map[string]any{"set": map[string]string{"bmc.password": pw, "cpus": "many"}})
	call(t, base, user, "GET", "/v1/nodes/n1/fields/bmc.password", nil)
	call(t, base, "ipt_wrong-"+pw, "GET", "/v1/nodes", nil)

	// A caller's own id is kept and echoed in the header and the problem.
	req, _ := http.NewRequest("GET", base+"/v1/nodes/nope", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("X-Request-Id", "ci-job-42.step_3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var prob struct {
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	}
	json.NewDecoder(resp.Body).Decode(&prob)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Request-Id") != "ci-job-42.step_3" || prob.RequestID != "ci-job-42.step_3" {
		t.Errorf("own request id: status %d, header %q, problem %+v", resp.StatusCode, resp.Header.Get("X-Request-Id"), prob)
	}
	// A hostile id (a forged log line) is replaced by the server's own.
	req, _ = http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Request-Id", "x\" level=ERROR msg=forged")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	genID := resp.Header.Get("X-Request-Id")
	if len(genID) != 24 || strings.Contains(genID, "forged") {
		t.Errorf("hostile request id kept or not replaced: %q", genID)
	}

	out := logs.String()
	for _, secret := range []string{pw, admin, user} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %.12s… found in the log:\n%s", secret, out)
		}
	}
	type line struct {
		Msg        string   `json:"msg"`
		Method     string   `json:"method"`
		Route      string   `json:"route"`
		Status     int      `json:"status"`
		DurationMS *float64 `json:"duration_ms"`
		TokenID    string   `json:"token_id"`
		Role       string   `json:"role"`
		RequestID  string   `json:"request_id"`
	}
	var access []line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, l)
		}
		if v.Msg == "request" {
			access = append(access, v)
		}
	}
	// newToken, create, patch, field, wrong token, nope, healthz.
	if len(access) != 7 {
		t.Fatalf("%d access lines, want 7:\n%s", len(access), out)
	}
	want := []struct {
		method, route string
		status        int
		role          string
	}{
		{"POST", "/v1/tokens", 201, "admin"},
		{"POST", "/v1/nodes", 201, "admin"},
		{"PATCH", "/v1/nodes/{name}", 400, "admin"},
		{"GET", "/v1/nodes/{name}/fields/{field}", 200, "user"},
		{"GET", "/v1/nodes", 401, ""},
		{"GET", "/v1/nodes/{name}", 404, "admin"},
		{"GET", "/healthz", 200, ""},
	}
	for i, w := range want {
		a := access[i]
		if a.Method != w.method || a.Route != w.route || a.Status != w.status || a.Role != w.role || a.DurationMS == nil || a.RequestID == "" {
			t.Errorf("access line %d = %+v, want %s %s %d role %q", i, a, w.method, w.route, w.status, w.role)
		}
		if (w.role == "") != (a.TokenID == "") {
			t.Errorf("access line %d: token id %q with role %q", i, a.TokenID, a.Role)
		}
	}
	if access[5].RequestID != "ci-job-42.step_3" || access[6].RequestID != genID {
		t.Errorf("logged request ids %q, %q; responses had ci-job-42.step_3, %q", access[5].RequestID, access[6].RequestID, genID)
	}
}

// TestLogFlagsChecked: a bad --log-format or --log-level is refused naming
// the flag.
func TestLogFlagsChecked(t *testing.T) {
	if _, err := server.NewLogger(nil, "yaml", "info"); err == nil || !strings.Contains(err.Error(), "log-format") {
		t.Errorf("log-format yaml: %v", err)
	}
	if _, err := server.NewLogger(nil, "json", "loud"); err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Errorf("log-level loud: %v", err)
	}
}
