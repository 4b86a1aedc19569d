package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
	"github.com/ironpool/ironpool/internal/testlog"
)

// TestMetricsBackgroundWork drives the background paths and reads their
// metrics back: a queued request granted when a node frees (queue wait), a
// lease that runs out (expiry), a clean command that fails (cleaning
// duration and failure), and webhook POSTs to a receiver on loopback
// (deliveries). Each count must move by what the traffic did.
func TestMetricsBackgroundWork(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer hook.Close()
	logs := &testlog.Buffer{}
	m := servertest.Start(t, &server.Main{
		Log:        slog.New(slog.NewTextHandler(logs, nil)),
		Background: reconcile.Config{LoopInterval: 50 * time.Millisecond, CleanCommand: []string{"false"}},
		Webhooks:   []string{hook.URL}, WebhookSecret: "metrics-test-secret",
	})
	s := &testServer{t: t, m: m, logs: logs, admin: m.AdminToken}
	_, pool := s.node()
	var first, queued struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	s.mustDo(s.admin, "POST", "/v1/allocations", allocBody("lab1", pool), 201, &first)
	body := allocBody("lab2", pool)
	body["wait"] = "1m"
	s.mustDo(s.admin, "POST", "/v1/allocations", body, 202, &queued)
	// A released node cleans (and fails: the clean command is false), so
	// the queued request needs a second node, which frees at once.
	s.mustDo(s.admin, "DELETE", "/v1/allocations/"+first.ID, nil, 200, nil)
	addNode := func() { s.mustDo(s.admin, "POST", "/v1/nodes", nodeBody(s.name("n"), pool, "pw-x"), 201, nil) }
	addNode()
	short := allocBody("lab3", pool)
	short["ttl"] = "1s"

	value := func(page, pattern string) float64 {
		m := regexp.MustCompile(`(?m)^` + pattern + ` ([0-9.e+-]+)$`).FindStringSubmatch(page)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	wait := func(what, pattern string, want float64) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, _, page := s.do("", "GET", "/metrics", nil)
			if v := value(string(page), pattern); v >= want {
				return string(page)
			} else if time.Now().After(deadline) {
				t.Fatalf("%s: %s = %v, want %v", what, pattern, v, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("queued request granted", `ironpool_queue_wait_seconds_count`, 1)
	wait("failed cleaning", `ironpool_cleaning_failures_total`, 1)
	wait("cleaning observed", `ironpool_cleaning_duration_seconds_count`, 1)
	page := wait("webhook deliveries", `ironpool_webhook_deliveries_total\{result="ok"\}`, 1)
	if v := value(page, `ironpool_allocations_total\{outcome="queued",reason=""\}`); v != 1 {
		t.Errorf("queued allocations: %v, want 1", v)
	}
	// The queued request now holds the second node; release it, add a
	// node, and let a one-second lease run out.
	s.mustDo(s.admin, "DELETE", "/v1/allocations/"+queued.ID, nil, 200, nil)
	addNode()
	s.mustDo(s.admin, "POST", "/v1/allocations", short, 201, nil)
	wait("lease expiry", `ironpool_lease_expiries_total`, 1)
	if v := value(page, `ironpool_webhook_drops_total`); v != 0 {
		t.Errorf("webhook drops: %v, want 0 (the receiver answers 200)", v)
	}
}
