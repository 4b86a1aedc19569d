package ironic

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// callStats counts the HTTP calls a client makes to Ironic, by method and
// status, and their time, so operators can alert on a slow or failing
// Ironic (the reconciler hides both by retrying).
type callStats struct {
	mu      sync.Mutex
	calls   map[[2]string]uint64 // {method, status or "error"} → count
	seconds map[string]float64   // method → total seconds
}

func newCallStats() *callStats {
	return &callStats{calls: map[[2]string]uint64{}, seconds: map[string]float64{}}
}

// countingTransport records every round trip in stats.
type countingTransport struct {
	base  http.RoundTripper
	stats *callStats
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.stats.mu.Lock()
	t.stats.calls[[2]string{req.Method, status}]++
	t.stats.seconds[req.Method] += time.Since(start).Seconds()
	t.stats.mu.Unlock()
	return resp, err
}

// WriteMetrics writes the client's call counts and time in Prometheus'
// text format, labelled with its endpoint.
func (c *Client) WriteMetrics(w io.Writer) {
	s := c.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([][2]string, 0, len(s.calls))
	for k := range s.calls {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	fmt.Fprintln(w, "# HELP ironpool_ironic_requests_total HTTP requests to Ironic by method and status (\"error\": no answer).")
	fmt.Fprintln(w, "# TYPE ironpool_ironic_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "ironpool_ironic_requests_total{endpoint=%q,method=%q,status=%q} %d\n", c.endpoint, k[0], k[1], s.calls[k])
	}
	methods := make([]string, 0, len(s.seconds))
	for m := range s.seconds {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	fmt.Fprintln(w, "# HELP ironpool_ironic_request_seconds_total Time spent waiting for Ironic by method.")
	fmt.Fprintln(w, "# TYPE ironpool_ironic_request_seconds_total counter")
	for _, m := range methods {
		fmt.Fprintf(w, "ironpool_ironic_request_seconds_total{endpoint=%q,method=%q} %g\n", c.endpoint, m, s.seconds[m])
	}
}
