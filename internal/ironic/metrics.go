package ironic

import (
	"net/http"
	"sync"
	"time"

	"github.com/ironpool/ironpool/internal/metrics"
)

// callStats records the HTTP calls a client makes to Ironic (by endpoint,
// method and status) and their latency, so operators can alert on a slow
// or failing Ironic (the reconciler hides both by retrying).
type callStats struct {
	m        *metrics.Metrics
	mu       sync.Mutex
	endpoint string // the client's Endpoint(), once Connect knows it
}

func newCallStats(m *metrics.Metrics) *callStats {
	m.Backend("ironic")
	return &callStats{m: m}
}

func (s *callStats) setEndpoint(ep string) {
	s.mu.Lock()
	s.endpoint = ep
	s.mu.Unlock()
}

// countingTransport records every round trip in stats.
type countingTransport struct {
	base  http.RoundTripper
	stats *callStats
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.stats.mu.Lock()
	ep := t.stats.endpoint
	t.stats.mu.Unlock()
	if ep == "" {
		// Before Connect knows the endpoint (Keystone's token request):
		// the server asked, without a path that might carry a project.
		ep = req.URL.Scheme + "://" + req.URL.Host
	}
	t.stats.m.BackendCall("ironic", ep, req.Method, status, time.Since(start))
	return resp, err
}
