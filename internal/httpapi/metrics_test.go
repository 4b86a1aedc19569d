package httpapi_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMetrics reads /metrics after real traffic: the counters and gauges a
// dashboard or alert would use are there, with the values the traffic made,
// and no owner name, secret or token is in the page, whichever token the
// scrape sends (per-owner usage is the API's to show, behind its
// authorization).
func TestMetrics(t *testing.T) {
	s := startServer(t)
	id := s.allocation("lab1") // one node in its own pool, allocated
	s.mustDo(s.admin, "DELETE", "/v1/allocations/"+id, nil, 200, nil)
	s.allocation("lab2")
	_, pool := s.node()
	s.mustDo(s.admin, "POST", "/v1/allocations", map[string]any{"owner": "lab3",
		"pool": pool, "items": []map[string]any{{"constraints": map[string]any{"cpus": 1 << 20}, "count": 1}}}, 409, nil)
	var page string
	for _, tok := range []string{"", s.user, s.operator, s.admin} {
		st, hdr, body := s.do(tok, "GET", "/metrics", nil)
		if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET /metrics: %d %s", st, hdr.Get("Content-Type"))
		}
		for _, owner := range []string{"lab1", "lab2", "lab3", "owner="} {
			if strings.Contains(string(body), owner) {
				t.Errorf("/metrics (token %v) names an owner (%s):\n%s", tok != "", owner, body)
			}
		}
		page = string(body)
	}
	metric := func(pattern string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + pattern + ` ([0-9.e+]+)$`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no line matching %q in:\n%s", pattern, page)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	if n := metric(`ironpool_http_requests_total\{method="POST",route="/v1/allocations",status="201"\}`); n != 2 {
		t.Errorf("allocations counted: %v, want 2", n)
	}
	if n := metric(`ironpool_http_request_duration_seconds_count\{method="POST",route="/v1/allocations",status_class="2xx"\}`); n != 2 {
		t.Errorf("allocation latencies observed: %v, want 2", n)
	}
	if n := metric(`ironpool_allocations_total\{outcome="granted",reason=""\}`); n != 2 {
		t.Errorf("granted allocations: %v, want 2", n)
	}
	if n := metric(`ironpool_allocations_total\{outcome="refused",reason="no_capacity"\}`); n != 1 {
		t.Errorf("allocations refused for capacity: %v, want 1", n)
	}
	if n := metric(`ironpool_releases_total`); n != 1 {
		t.Errorf("releases: %v, want 1", n)
	}
	metric(`ironpool_build_info\{commit="[^"]*",goversion="go[^"]+",version="[^"]+"\}`)
	metric(`go_goroutines`)
	metric(`process_resident_memory_bytes`)
	metric(`ironpool_reconciler_lag_seconds`)
	// Summed over pools: every pool has a series per state, zeros included.
	allocated := 0.0
	for _, m := range regexp.MustCompile(`(?m)^ironpool_nodes\{pool="p\d+",state="allocated"\} ([0-9.e+]+)$`).FindAllStringSubmatch(page, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		allocated += v
	}
	if allocated != 1 {
		t.Errorf("allocated nodes: %v, want 1", allocated)
	}
	metric(`ironpool_allocations_queued`)
	metric(`ironpool_leader`)
	if w, c := metric(`ironpool_store_writes_total`), metric(`ironpool_store_commits_total`); w < 4 || c < 1 || c > w {
		t.Errorf("store writes %v in %v commits: implausible", w, c)
	}
	// SQLite does not batch (its one writer's group commit shares commits).
	if strings.Contains(page, "ironpool_store_batches_total") {
		t.Errorf("batch counters on a SQLite server:\n%s", page)
	}
	if strings.Contains(page, "pw-") || strings.Contains(page, "ipt_") {
		t.Errorf("a secret reached /metrics:\n%s", page)
	}
}

// TestMetricsTokenRequired: with serve --metrics-token-required, /metrics
// answers 401 without a token and 403 to a user token, and serves an
// operator's scrape.
func TestMetricsTokenRequired(t *testing.T) {
	s := startServer(t)
	s.m.API.MetricsNeedToken = true
	for _, c := range []struct {
		tok  string
		want int
	}{{"", 401}, {"ipt_nosuchtoken", 401}, {s.user, 403}, {s.operator, 200}, {s.admin, 200}} {
		st, _, body := s.do(c.tok, "GET", "/metrics", nil)
		if st != c.want {
			t.Errorf("GET /metrics with token %.8q: %d, want %d", c.tok, st, c.want)
		}
		if got := strings.Contains(string(body), "ironpool_build_info"); got != (c.want == 200) {
			t.Errorf("GET /metrics with token %.8q: metrics served %v, want %v", c.tok, got, c.want == 200)
		}
	}
}
