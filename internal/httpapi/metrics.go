package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
)

// Metrics counts requests by route and status and their latency, and serves
// them with pool gauges in the Prometheus text format. It is small on
// purpose: a dependency on the Prometheus client for a dozen series is not
// worth it.
type Metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // {pattern, status} → count
	seconds  map[string]float64   // pattern → total seconds

	// The pool gauges come from one status query, shared for gaugesTTL by
	// every scrape: /metrics needs no token, so a flood of it must not
	// turn into a flood of database reads.
	gaugesMu sync.Mutex
	gaugesAt time.Time
	gauges   *service.Gauges

	// Sources write further series (the Ironic clients' call counts);
	// the server adds them before serving.
	Sources []func(io.Writer)
}

// gaugesTTL is how long one status query serves /metrics.
const gaugesTTL = time.Second

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{requests: map[[2]string]uint64{}, seconds: map[string]float64{}}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe serves r through next and counts it; it returns the matched
// pattern and the status for the access log.
func (m *Metrics) observe(w http.ResponseWriter, r *http.Request, next *http.ServeMux) (string, int) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: 200}
	next.ServeHTTP(sw, r)
	_, pattern := next.Handler(r)
	logged := pattern
	if pattern == "" {
		pattern = "unmatched"
	}
	defer m.mu.Unlock()
	m.mu.Lock()
	m.requests[[2]string{pattern, fmt.Sprint(sw.status)}]++
	m.seconds[pattern] += time.Since(start).Seconds()
	return logged, sw.status
}

// poolGauges returns gauges at most gaugesTTL old; concurrent scrapes wait
// for one query rather than each running their own.
func (m *Metrics) poolGauges(r *http.Request, svc *service.Service) (*service.Gauges, error) {
	m.gaugesMu.Lock()
	defer m.gaugesMu.Unlock()
	if m.gauges != nil && time.Since(m.gaugesAt) < gaugesTTL {
		return m.gauges, nil
	}
	g, err := svc.Gauges(r.Context())
	if err != nil {
		return nil, err
	}
	m.gauges, m.gaugesAt = g, time.Now()
	return g, nil
}

// showsOwners reports whether the scrape may see owner names: only with an
// admin or operator token (Prometheus' authorization.credentials_file),
// since anyone who reaches the port may read /metrics.
func showsOwners(r *http.Request, svc *service.Service) bool {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	a, err := svc.Authenticate(r.Context(), secret)
	return err == nil && (a.Role == ironpool.RoleAdmin || a.Role == ironpool.RoleOperator)
}

func (m *Metrics) serve(svc *service.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.mu.Lock()
		keys := make([][2]string, 0, len(m.requests))
		for k := range m.requests {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
		fmt.Fprintln(w, "# HELP ironpool_http_requests_total HTTP requests by route and status.")
		fmt.Fprintln(w, "# TYPE ironpool_http_requests_total counter")
		for _, k := range keys {
			fmt.Fprintf(w, "ironpool_http_requests_total{route=%q,status=%q} %d\n", k[0], k[1], m.requests[k])
		}
		fmt.Fprintln(w, "# HELP ironpool_http_request_seconds_total Time spent serving requests by route.")
		fmt.Fprintln(w, "# TYPE ironpool_http_request_seconds_total counter")
		routes := make([]string, 0, len(m.seconds))
		for k := range m.seconds {
			routes = append(routes, k)
		}
		sort.Strings(routes)
		for _, k := range routes {
			fmt.Fprintf(w, "ironpool_http_request_seconds_total{route=%q} %g\n", k, m.seconds[k])
		}
		m.mu.Unlock()
		g, err := m.poolGauges(r, svc)
		if err != nil {
			return
		}
		st := g.Status
		fmt.Fprintln(w, "# HELP ironpool_nodes Nodes by pool and state (every state of every pool, zeros included).")
		fmt.Fprintln(w, "# TYPE ironpool_nodes gauge")
		writeNodeGauges(w, st.Nodes)
		fmt.Fprintln(w, "# HELP ironpool_allocations_queued Allocation requests waiting in the queue.")
		fmt.Fprintln(w, "# TYPE ironpool_allocations_queued gauge")
		fmt.Fprintf(w, "ironpool_allocations_queued %d\n", st.Queued)
		if showsOwners(r, svc) {
			fmt.Fprintln(w, "# HELP ironpool_owner_nodes Nodes held per owner (shown to admin and operator tokens only).")
			fmt.Fprintln(w, "# TYPE ironpool_owner_nodes gauge")
			for _, o := range st.Owners {
				fmt.Fprintf(w, "ironpool_owner_nodes{owner=%q} %d\n", o.Owner, o.Nodes)
			}
		}
		leader := 0
		if svc.Leader() {
			leader = 1
		}
		hc := svc.HealthCounts()
		for _, c := range []struct {
			name, help string
			v          uint64
		}{
			{"ironpool_bmc_probes_total", "BMC health probes run.", hc.Probes},
			{"ironpool_bmc_probe_failures_total", "BMC health probes that failed.", hc.Failures},
			{"ironpool_bmc_quarantines_total", "Nodes the health check moved to maintenance.", hc.Quarantines},
			{"ironpool_bmc_recoveries_total", "Quarantined nodes the health check returned.", hc.Recoveries},
		} {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v)
		}
		fmt.Fprintf(w, "# HELP ironpool_leader Whether this replica runs the background loops.\n# TYPE ironpool_leader gauge\nironpool_leader %d\n", leader)
		// Group commit (SQLite): writes per commit shows how much batching
		// the load gives.
		if g.Commit > 0 {
			fmt.Fprintf(w, "# HELP ironpool_store_writes_total Write transactions run for callers.\n# TYPE ironpool_store_writes_total counter\nironpool_store_writes_total %d\n", g.Writes)
			fmt.Fprintf(w, "# HELP ironpool_store_commits_total Database commits those writes took (group commit).\n# TYPE ironpool_store_commits_total counter\nironpool_store_commits_total %d\n", g.Commit)
		}
		for _, src := range m.Sources {
			src(w)
		}
	}
}

// writeNodeGauges writes ironpool_nodes for every state of every pool that
// has a node, zeros included: an alert on
// ironpool_nodes{state="available"} == 0 must see a series at zero, not
// none.
func writeNodeGauges(w io.Writer, counts []ironpool.StateCount) {
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
	for _, p := range pools {
		for _, state := range ironpool.NodeStates {
			fmt.Fprintf(w, "ironpool_nodes{pool=%q,state=%q} %d\n", p, state, byPool[p][state])
		}
	}
}
