package httpapi_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMetrics reads /metrics after real traffic: the counters and gauges a
// dashboard or alert would use are there, with the values the traffic made,
// and no secret is in the page.
func TestMetrics(t *testing.T) {
	s := startServer(t)
	id := s.allocation("lab1") // one node in its own pool, allocated
	s.mustDo(s.admin, "DELETE", "/v1/allocations/"+id, nil, 200, nil)
	s.allocation("lab2")
	// Without a token (anyone on the network): no owner names.
	st, hdr, body := s.do("", "GET", "/metrics", nil)
	if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", st, hdr.Get("Content-Type"))
	}
	if strings.Contains(string(body), "lab2") || strings.Contains(string(body), "ironpool_owner_nodes") {
		t.Errorf("/metrics without a token names owners:\n%s", body)
	}
	// A user token is not enough either.
	if _, _, body := s.do(s.user, "GET", "/metrics", nil); strings.Contains(string(body), "lab2") {
		t.Errorf("/metrics with a user token names other owners:\n%s", body)
	}
	// An operator token (a configured scraper) sees them.
	st, _, body = s.do(s.operator, "GET", "/metrics", nil)
	page := string(body)
	metric := func(pattern string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^` + pattern + ` ([0-9.e+]+)$`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no line matching %q in:\n%s", pattern, page)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	if n := metric(`ironpool_http_requests_total\{route="POST /v1/allocations",status="201"\}`); n != 2 {
		t.Errorf("allocations counted: %v, want 2", n)
	}
	if n := metric(`ironpool_owner_nodes\{owner="lab2"\}`); n != 1 {
		t.Errorf("nodes held by lab2: %v, want 1", n)
	}
	if strings.Contains(page, `owner="lab1"`) {
		t.Errorf("lab1 released its node but is still listed:\n%s", page)
	}
	if n := metric(`ironpool_nodes\{pool="p\d+",state="allocated"\}`); n != 1 {
		t.Errorf("allocated nodes: %v, want 1", n)
	}
	metric(`ironpool_allocations_queued`)
	metric(`ironpool_leader`)
	if w, c := metric(`ironpool_store_writes_total`), metric(`ironpool_store_commits_total`); w < 4 || c < 1 || c > w {
		t.Errorf("store writes %v in %v commits: implausible", w, c)
	}
	if strings.Contains(page, "pw-") || strings.Contains(page, "ipt_") {
		t.Errorf("a secret reached /metrics:\n%s", page)
	}
}
