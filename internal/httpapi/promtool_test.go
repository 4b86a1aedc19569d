package httpapi_test

import (
	"bytes"
	"os/exec"
	"testing"
)

// TestPromtoolCheckMetrics runs Prometheus' own linter (promtool, Debian
// package prometheus, installed by hack/test.sh) over a /metrics page after
// real traffic, with the operator's view (owner series included).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("skipped: promtool not installed (Debian package prometheus)")
	}
	s := startServer(t)
	id := s.allocation("lab1")
	s.mustDo(s.admin, "DELETE", "/v1/allocations/"+id, nil, 200, nil)
	s.allocation("lab2")
	s.do("", "GET", "/v1/nodes/missing", nil)
	st, _, page := s.do(s.operator, "GET", "/metrics", nil)
	if st != 200 {
		t.Fatalf("GET /metrics: %d", st)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\npage:\n%s", err, out, page)
	}
}
