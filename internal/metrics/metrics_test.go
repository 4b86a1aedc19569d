package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNilSafe: code wired without metrics records nothing and does not
// crash (tests of the service and reconciler build them so).
func TestNilSafe(t *testing.T) {
	var m *Metrics
	m.HTTPRequest("/v1/nodes", "GET", 200, time.Millisecond)
	m.Allocation(OutcomeGranted, "", time.Millisecond)
	m.QueueWait(time.Second)
	m.CleaningDone(time.Second, true)
	m.LeaseExpired(1)
	m.Released(1)
	m.ReconcilerRetry("clean")
	m.WebhookDelivery(true)
	m.WebhookDropped()
	m.BackendCall("ironic", "http://x", "GET", 500, time.Millisecond)
	m.Backend("ironic")
}

// TestBackendCall: a call's latency is observed, Ironic's request counter
// gets its status, and only failures (4xx/5xx or no answer) count as
// backend errors, by code.
func TestBackendCall(t *testing.T) {
	m := New()
	m.BackendCall("ironic", "http://ironic:6385", "GET", 200, time.Millisecond)
	m.BackendCall("ironic", "http://ironic:6385", "PUT", 503, time.Millisecond)
	m.BackendCall("ironic", "http://ironic:6385", "GET", 0, time.Millisecond)
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("ironic", "503")); got != 1 {
		t.Errorf("errors with 503: %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("ironic", "error")); got != 1 {
		t.Errorf("errors without an answer: %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.backendRequests.WithLabelValues("http://ironic:6385", "GET", "200")); got != 1 {
		t.Errorf("GET 200 requests: %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.backendDuration); n != 2 {
		t.Errorf("latency series: %d, want 2 (GET and PUT)", n)
	}
	if f := strings.Join(m.Families(), " "); !strings.Contains(f, "ironpool_backend_errors_total") || !strings.Contains(f, "ironpool_queue_wait_seconds") {
		t.Errorf("Families() = %s", f)
	}
}

// BenchmarkHTTPRequest measures what every request pays for its metrics
// (a counter and a histogram observation), beside the hand-written
// mutex-and-map counter the registry replaced, in the same run.
func BenchmarkHTTPRequest(b *testing.B) {
	b.Run("registry", func(b *testing.B) {
		m := New()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.HTTPRequest("/v1/nodes/{name}", "GET", 200, 3*time.Millisecond)
			}
		})
	})
	b.Run("mutex-map", func(b *testing.B) {
		var mu sync.Mutex
		counts := map[[2]string]uint64{}
		seconds := map[string]float64{}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				counts[[2]string{"GET /v1/nodes/{name}", "200"}]++
				seconds["GET /v1/nodes/{name}"] += 0.003
				mu.Unlock()
			}
		})
	})
}
