// Package metrics holds ironpool's Prometheus metrics: one registry per
// server (tests run many servers in one process), the families the request
// path, the background loops, the webhook sender and the backends record
// into, and the Go and process collectors. internal/httpapi serves it at
// /metrics. docs/METRICS.md lists every family; TestMetricsDoc keeps that
// table and this file in step.
//
// Every method is safe on a nil *Metrics, so code under test that wires no
// metrics records nothing rather than crashing.
//
// No family has a per-owner label: owners are as many as CI jobs
// (unbounded cardinality), and their names are for the API's authorization
// to show, not for anyone who can reach /metrics.
package metrics

import (
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/buildinfo"
)

// Outcomes of an allocation request, the outcome label of
// ironpool_allocations_total and ironpool_allocation_duration_seconds.
const (
	OutcomeGranted = "granted"
	OutcomeQueued  = "queued"
	OutcomeRefused = "refused"
)

// Metrics is one server's registry and the families recorded into it.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests       *prometheus.CounterVec
	httpDuration       *prometheus.HistogramVec
	allocations        *prometheus.CounterVec
	allocationDuration *prometheus.HistogramVec
	queueWait          prometheus.Histogram
	cleaningDuration   prometheus.Histogram
	cleaningFailures   prometheus.Counter
	leaseExpiries      prometheus.Counter
	releases           prometheus.Counter
	reconcilerRetries  *prometheus.CounterVec
	webhookDeliveries  *prometheus.CounterVec
	webhookDrops       prometheus.Counter
	backendDuration    *prometheus.HistogramVec
	backendRequests    *prometheus.CounterVec
	backendErrors      *prometheus.CounterVec
}

// latencyBuckets suit an HTTP API and a backend call: 1ms to 30s.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// slowBuckets suit waits in a queue and cleanings: a second to a day.
var slowBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400}

// New returns a registry holding every family, the Go and process
// collectors and ironpool_build_info.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ironpool_http_requests_total",
		Help: "HTTP requests served, by route pattern, method and status."}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ironpool_http_request_duration_seconds",
		Help: "Time to serve an HTTP request, by route pattern, method and status class (2xx, 4xx, 5xx).", Buckets: latencyBuckets},
		[]string{"route", "method", "status_class"})
	m.allocations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ironpool_allocations_total",
		Help: "Allocation requests by outcome (granted, queued, refused) and, for refusals, the error code."}, []string{"outcome", "reason"})
	m.allocationDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ironpool_allocation_duration_seconds",
		Help: "Time to answer an allocation request (selection and commit), by outcome.", Buckets: latencyBuckets}, []string{"outcome"})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ironpool_queue_wait_seconds",
		Help: "Time a queued allocation waited until it was granted.", Buckets: slowBuckets})
	m.cleaningDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ironpool_cleaning_duration_seconds",
		Help: "Time from a node's release to the end of its cleaning (success or failure).", Buckets: slowBuckets})
	m.cleaningFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "ironpool_cleaning_failures_total",
		Help: "Cleanings that ended with the node in error."})
	m.leaseExpiries = prometheus.NewCounter(prometheus.CounterOpts{Name: "ironpool_lease_expiries_total",
		Help: "Allocations the reaper released because their lease expired."})
	m.releases = prometheus.NewCounter(prometheus.CounterOpts{Name: "ironpool_releases_total",
		Help: "Allocations released by request (by id or by owner)."})
	m.reconcilerRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ironpool_reconciler_retries_total",
		Help: "Background side effects that failed and will be retried, by the work owed (checkout, clean, register, deploy, undeploy)."},
		[]string{"work"})
	m.webhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ironpool_webhook_deliveries_total",
		Help: "Webhook POSTs, by result (ok: 2xx; failed: any other answer or none)."}, []string{"result"})
	m.webhookDrops = prometheus.NewCounter(prometheus.CounterOpts{Name: "ironpool_webhook_drops_total",
		Help: "Audit events a webhook gave up on after its retries."})
	m.backendDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ironpool_backend_request_duration_seconds",
		Help: "Time of one HTTP call to a backend (Ironic), by backend, endpoint and method.", Buckets: latencyBuckets},
		[]string{"backend", "endpoint", "method"})
	m.backendRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ironpool_ironic_requests_total",
		Help: "HTTP requests to Ironic by endpoint, method and status (\"error\": no answer)."}, []string{"endpoint", "method", "status"})
	m.backendErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ironpool_backend_errors_total",
		Help: "Backend calls that failed, by backend and code (the HTTP status, or \"error\" when no answer came)."},
		[]string{"backend", "code"})
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.allocations, m.allocationDuration,
		m.queueWait, m.cleaningDuration, m.cleaningFailures, m.leaseExpiries, m.releases, m.reconcilerRetries,
		m.webhookDeliveries, m.webhookDrops, m.backendDuration, m.backendRequests, m.backendErrors} {
		f(c)
	}
	// Series a dashboard or alert reads exist from the start, at zero:
	// rate() over a series that appears only with its first event misses
	// that event, and an absent series looks like a broken scrape.
	for _, o := range []string{OutcomeGranted, OutcomeQueued} {
		m.allocations.WithLabelValues(o, "")
		m.allocationDuration.WithLabelValues(o)
	}
	for _, code := range []string{ironpool.ECAPACITY, ironpool.EQUOTA, ironpool.EINVALID, ironpool.EFORBIDDEN, ironpool.ENOTFOUND, ironpool.ECONFLICT} {
		m.allocations.WithLabelValues(OutcomeRefused, code)
	}
	m.allocationDuration.WithLabelValues(OutcomeRefused)
	for _, p := range ironpool.PendingWork {
		if p != ironpool.PendingNone {
			m.reconcilerRetries.WithLabelValues(string(p))
		}
	}
	m.webhookDeliveries.WithLabelValues("ok")
	m.webhookDeliveries.WithLabelValues("failed")

	in := buildinfo.Read()
	bi := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ironpool_build_info",
		Help:        "Always 1; the labels say which build this server runs.",
		ConstLabels: prometheus.Labels{"version": in.Version, "commit": in.Commit, "goversion": in.GoVersion}})
	bi.Set(1)
	f(bi)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// HTTPRequest records one served request. route is the mux pattern
// without its method ("/v1/nodes/{name}", "unmatched"), never the path.
func (m *Metrics) HTTPRequest(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method, strconv.Itoa(status/100)+"xx").Observe(d.Seconds())
}

// Allocation records one answered allocation request: its outcome, for a
// refusal the error code, and how long the answer took.
func (m *Metrics) Allocation(outcome, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.allocations.WithLabelValues(outcome, reason).Inc()
	m.allocationDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// QueueWait records how long a queued allocation waited before its grant.
func (m *Metrics) QueueWait(d time.Duration) {
	if m != nil {
		m.queueWait.Observe(max(d, 0).Seconds())
	}
}

// CleaningDone records the end of a node's cleaning: how long it took and
// whether it failed.
func (m *Metrics) CleaningDone(d time.Duration, failed bool) {
	if m == nil {
		return
	}
	m.cleaningDuration.Observe(max(d, 0).Seconds())
	if failed {
		m.cleaningFailures.Inc()
	}
}

// LeaseExpired counts n allocations the reaper ended.
func (m *Metrics) LeaseExpired(n int) {
	if m != nil {
		m.leaseExpiries.Add(float64(n))
	}
}

// Released counts n allocations released by request.
func (m *Metrics) Released(n int) {
	if m != nil {
		m.releases.Add(float64(n))
	}
}

// ReconcilerRetry counts one failed side effect that will be retried.
func (m *Metrics) ReconcilerRetry(work ironpool.Pending) {
	if m != nil {
		m.reconcilerRetries.WithLabelValues(string(work)).Inc()
	}
}

// WebhookDelivery counts one webhook POST.
func (m *Metrics) WebhookDelivery(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.webhookDeliveries.WithLabelValues("ok").Inc()
	} else {
		m.webhookDeliveries.WithLabelValues("failed").Inc()
	}
}

// WebhookDropped counts one event a webhook gave up on.
func (m *Metrics) WebhookDropped() {
	if m != nil {
		m.webhookDrops.Inc()
	}
}

// BackendCall records one HTTP call to a backend: status is the HTTP
// status, 0 when no answer came. A status of 400 or more, or none, is also
// counted as an error with that code.
func (m *Metrics) BackendCall(backend, endpoint, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	code := "error"
	if status > 0 {
		code = strconv.Itoa(status)
	}
	m.backendDuration.WithLabelValues(backend, endpoint, method).Observe(d.Seconds())
	if backend == "ironic" {
		m.backendRequests.WithLabelValues(endpoint, method, code).Inc()
	}
	if status == 0 || status >= 400 {
		m.backendErrors.WithLabelValues(backend, code).Inc()
	}
}

// Backend makes a backend's error series exist at zero before its first
// call, so alerts on its errors see a series.
func (m *Metrics) Backend(backend string) {
	if m != nil {
		m.backendErrors.WithLabelValues(backend, "error")
	}
}

// Families returns the name of every family this package defines, for
// tests that check names used elsewhere (docs, dashboards) exist.
func (m *Metrics) Families() []string {
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.allocations, m.allocationDuration,
			m.queueWait, m.cleaningDuration, m.cleaningFailures, m.leaseExpiries, m.releases, m.reconcilerRetries,
			m.webhookDeliveries, m.webhookDrops, m.backendDuration, m.backendRequests, m.backendErrors} {
			c.Describe(ch)
		}
		close(ch)
	}()
	var out []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	return out
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// BackendFamilies are the families whose series exist only once a backend
// (Ironic) is connected, since their labels name its endpoint: a server
// without one shows none of them. The contrib dashboard test accepts their
// names without a live series.
var BackendFamilies = []string{"ironpool_backend_request_duration_seconds", "ironpool_ironic_requests_total", "ironpool_backend_errors_total"}
