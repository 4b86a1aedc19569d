package httpapi

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
)

// statusWriter remembers the status a handler wrote, for the request
// metrics and the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe serves r through next and records it; it returns the matched
// pattern ("GET /v1/nodes/{name}", "" when none matched) and the status for
// the access log. The route label is the pattern's path, never the
// request's, so ids and names do not become series.
func (s *Server) observe(w http.ResponseWriter, r *http.Request, next *http.ServeMux) (string, int) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: 200}
	next.ServeHTTP(sw, r)
	_, pattern := next.Handler(r)
	route := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		route = p
	}
	if route == "" {
		route = "unmatched"
	}
	method := r.Method
	if !knownMethod(method) {
		method = "other" // anyone may send any method: no series per invented one
	}
	s.Metrics.HTTPRequest(route, method, sw.status, time.Since(start))
	return pattern, sw.status
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// poolCollector reads the pool's gauges at scrape time: nodes by pool and
// state, free nodes per flavor, the queue, leadership, the BMC health
// check's counters and the store's group commit. One status query serves
// every scrape within gaugesTTL: /metrics may need no token, so a flood of
// it must not turn into a flood of database reads.
type poolCollector struct {
	svc *service.Service
	srv *Server

	mu     sync.Mutex
	at     time.Time
	gauges *service.Gauges
}

// gaugesTTL is how long one status query serves /metrics.
const gaugesTTL = time.Second

var (
	descNodes = prometheus.NewDesc("ironpool_nodes",
		"Nodes by pool and state (every state of every pool that has a node, zeros included).", []string{"pool", "state"}, nil)
	descFree = prometheus.NewDesc("ironpool_free_nodes",
		"Free nodes that match each flavor, by flavor and the flavor's pool.", []string{"flavor", "pool"}, nil)
	descQueued = prometheus.NewDesc("ironpool_allocations_queued",
		"Allocation requests waiting in the queue.", nil, nil)
	descLeader = prometheus.NewDesc("ironpool_leader",
		"Whether this replica runs the background loops (1) or not (0).", nil, nil)
	descLag = prometheus.NewDesc("ironpool_reconciler_lag_seconds",
		"Seconds since this replica's background loop last finished a pass (0 when it is not the leader).", nil, nil)
	descProbes        = prometheus.NewDesc("ironpool_bmc_probes_total", "BMC health probes run.", nil, nil)
	descProbeFailures = prometheus.NewDesc("ironpool_bmc_probe_failures_total", "BMC health probes that failed.", nil, nil)
	descQuarantines   = prometheus.NewDesc("ironpool_bmc_quarantines_total", "Nodes the health check moved to maintenance.", nil, nil)
	descRecoveries    = prometheus.NewDesc("ironpool_bmc_recoveries_total", "Quarantined nodes the health check returned.", nil, nil)
	descWrites        = prometheus.NewDesc("ironpool_store_writes_total", "Write transactions run for callers (SQLite).", nil, nil)
	descWriterBusy    = prometheus.NewDesc("ironpool_store_writer_busy_seconds_total", "Time the one writer spent running write groups (SQLite).", nil, nil)
	descCommits       = prometheus.NewDesc("ironpool_store_commits_total", "Database commits those writes took under group commit (SQLite).", nil, nil)
	descBatches       = prometheus.NewDesc(batchesFamily, "Batches that served allocations and releases together (PostgreSQL).", nil, nil)
	descBatchedCalls  = prometheus.NewDesc(batchedCallsFamily, "Allocations and releases those batches served (PostgreSQL).", nil, nil)
)

// The batcher's counters, served only by a server on PostgreSQL.
const (
	batchesFamily      = "ironpool_store_batches_total"
	batchedCallsFamily = "ironpool_store_batched_calls_total"
)

// PostgresFamilies are the families served only by a server on
// PostgreSQL; docs/METRICS.md lists them too.
var PostgresFamilies = []string{batchesFamily, batchedCallsFamily}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodes, descFree, descQueued, descLeader, descLag, descProbes,
		descProbeFailures, descQuarantines, descRecoveries, descWrites, descCommits, descWriterBusy,
		descBatches, descBatchedCalls} {
		ch <- d
	}
}

// gaugesNow returns gauges at most gaugesTTL old; concurrent scrapes wait
// for one query rather than each running their own.
func (c *poolCollector) gaugesNow() *service.Gauges {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gauges != nil && time.Since(c.at) < gaugesTTL {
		return c.gauges
	}
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	g, err := c.svc.Gauges(ctx)
	if err != nil {
		return nil // the database is down: the pool gauges are absent, the rest stays
	}
	c.gauges, c.at = g, time.Now()
	return g
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	leader := 0.0
	if c.svc.Leader() {
		leader = 1
	}
	gauge(descLeader, leader)
	if c.srv.Lag != nil {
		gauge(descLag, c.srv.Lag().Seconds())
	} else {
		gauge(descLag, 0)
	}
	hc := c.svc.HealthCounts()
	counter(descProbes, float64(hc.Probes))
	counter(descProbeFailures, float64(hc.Failures))
	counter(descQuarantines, float64(hc.Quarantines))
	counter(descRecoveries, float64(hc.Recoveries))
	// The writer's counters cost no query: read fresh at every scrape.
	if w, ok := c.svc.WriteStats(); ok {
		counter(descWrites, float64(w.Writes))
		counter(descCommits, float64(w.Commits))
		counter(descWriterBusy, w.Busy.Seconds())
	}
	if b, ok := c.svc.BatchStats(); ok {
		counter(descBatches, float64(b.Batches))
		counter(descBatchedCalls, float64(b.Calls))
	}
	g := c.gaugesNow()
	if g == nil {
		return
	}
	for _, n := range nodeGauges(g.Status.Nodes) {
		gauge(descNodes, float64(n.Count), n.Pool, string(n.State))
	}
	seen := map[[2]string]bool{}
	for _, row := range g.Status.Capacity {
		k := [2]string{row.Flavor, row.Pool}
		if !seen[k] {
			seen[k] = true
			gauge(descFree, float64(row.Free), row.Flavor, row.Pool)
		}
	}
	gauge(descQueued, float64(g.Status.Queued))
}

// nodeGauges returns a count for every state of every pool that has a
// node, zeros included: an alert on ironpool_nodes{state="available"} == 0
// must see a series at zero, not none.
func nodeGauges(counts []ironpool.StateCount) []ironpool.StateCount {
	byPool := map[string]map[ironpool.NodeState]int{}
	var pools []string
	for _, c := range counts {
		if byPool[c.Pool] == nil {
			byPool[c.Pool] = map[ironpool.NodeState]int{}
			pools = append(pools, c.Pool)
		}
		byPool[c.Pool][c.State] += c.Count
	}
	sort.Strings(pools)
	var out []ironpool.StateCount
	for _, p := range pools {
		for _, state := range ironpool.NodeStates {
			out = append(out, ironpool.StateCount{Pool: p, State: state, Count: byPool[p][state]})
		}
	}
	return out
}

// serveMetrics serves the registry in Prometheus' text format. With
// MetricsNeedToken, only an admin or operator token may read it
// (Prometheus: authorization.credentials_file); otherwise anyone who
// reaches the port may, which is why no family names an owner.
func (s *Server) serveMetrics(reg *prometheus.Registry) http.HandlerFunc {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return func(w http.ResponseWriter, r *http.Request) {
		if s.MetricsNeedToken {
			if status, msg := s.metricsAuth(r); status != 0 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ironpool"`)
				http.Error(w, msg, status)
				return
			}
		}
		h.ServeHTTP(w, r)
	}
}

// metricsAuth returns 0 when r carries an admin or operator token, else
// the status and message to refuse it with.
func (s *Server) metricsAuth(r *http.Request) (int, string) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return http.StatusUnauthorized, "/metrics needs an admin or operator token (serve --metrics-token-required)"
	}
	a, err := s.Service.Authenticate(r.Context(), secret)
	if err != nil {
		return http.StatusUnauthorized, "unknown or revoked token"
	}
	if a.Role != ironpool.RoleAdmin && a.Role != ironpool.RoleOperator {
		return http.StatusForbidden, "/metrics needs an admin or operator token"
	}
	return 0, ""
}

// registerPoolMetrics adds the pool's gauges to the server's registry.
func (s *Server) registerPoolMetrics() {
	s.Metrics.Registry.MustRegister(&poolCollector{svc: s.Service, srv: s})
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
