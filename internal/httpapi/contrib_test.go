package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool/internal/httpapi"
	"github.com/ironpool/ironpool/internal/metrics"
)

// metricName finds the metric names in a PromQL expression: ironpool's own
// and the Go and process collectors'. Label names and values, functions and
// keywords do not start with these prefixes.
var metricName = regexp.MustCompile(`\b(?:ironpool|go|process)_[a-zA-Z0-9_]+`)

// livePage starts a server, makes the traffic that gives every family a
// series (a flavor, allocations granted, refused and released, a 404), and
// returns its /metrics page.
func livePage(t *testing.T) string {
	t.Helper()
	s := startServer(t)
	s.mustDo(s.admin, "POST", "/v1/flavors", map[string]any{"name": "small", "cpus": 1}, 201, nil)
	id := s.allocation("lab1")
	s.mustDo(s.admin, "DELETE", "/v1/allocations/"+id, nil, 200, nil)
	s.do(s.admin, "GET", "/v1/nodes/missing", nil)
	_, _, page := s.do(s.operator, "GET", "/metrics", nil)
	return string(page)
}

// seriesNames returns the sample names on a /metrics page.
func seriesNames(page string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}

// checkNames fails for every name in exprs that the live page does not
// show, unless it belongs to a family that exists only with a backend.
func checkNames(t *testing.T, what string, exprs []string, live map[string]bool) {
	t.Helper()
	if len(exprs) < 5 {
		t.Fatalf("%s: only %d expressions found", what, len(exprs))
	}
	for _, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", what, e)
		}
		for _, n := range names {
			if live[n] {
				continue
			}
			base := n
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				base = strings.TrimSuffix(base, suf)
			}
			if slices.Contains(metrics.BackendFamilies, base) {
				continue
			}
			t.Errorf("%s: %q uses %s, which /metrics does not have", what, e, n)
		}
	}
}

// TestContribMetricNames parses the Grafana dashboard and the Prometheus
// alert rules under contrib/ and checks that every metric their queries
// name exists on a live server's /metrics, so a renamed metric cannot leave
// a blank panel or an alert that never fires. The rules also pass
// `promtool check rules` when promtool is installed.
func TestContribMetricNames(t *testing.T) {
	live := seriesNames(livePage(t))

	raw, err := os.ReadFile("../../contrib/grafana/ironpool-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok && strings.Contains(q, "(") {
			exprs = append(exprs, q)
		}
	}
	checkNames(t, "contrib/grafana/ironpool-dashboard.json", exprs, live)

	const rulesFile = "../../contrib/prometheus/ironpool-alerts.yaml"
	raw, err = os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("rules: %v", err)
	}
	exprs = nil
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	checkNames(t, rulesFile, exprs, live)

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (Debian package prometheus): the rules' syntax is not checked")
		return
	}
	var out bytes.Buffer
	cmd := exec.Command(promtool, "check", "rules", rulesFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out.String())
	}
}

// docRow is one row of docs/METRICS.md's table: `name` | type | ….
var docRow = regexp.MustCompile("(?m)^\\| `(ironpool_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\|")

// TestMetricsDoc checks docs/METRICS.md's table against a live server:
// every ironpool family the page types is listed with that type, every
// family internal/metrics defines is listed, and every listed family is
// on the page (or is one that exists only with a backend connected).
func TestMetricsDoc(t *testing.T) {
	page := livePage(t)
	raw, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]string{}
	for _, m := range docRow.FindAllStringSubmatch(string(raw), -1) {
		doc[m[1]] = m[2]
	}
	live := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (ironpool_\S+) (\S+)$`).FindAllStringSubmatch(page, -1) {
		live[m[1]] = m[2]
	}
	if len(live) < 20 {
		t.Fatalf("only %d ironpool families on /metrics:\n%s", len(live), page)
	}
	for name, typ := range live {
		if doc[name] != typ {
			t.Errorf("docs/METRICS.md lists %s as %q; /metrics says %s", name, doc[name], typ)
		}
	}
	for _, name := range metrics.New().Families() {
		if doc[name] == "" {
			t.Errorf("docs/METRICS.md does not list %s (internal/metrics defines it)", name)
		}
	}
	for name := range doc {
		if live[name] == "" && !slices.Contains(metrics.BackendFamilies, name) && !slices.Contains(httpapi.PostgresFamilies, name) {
			t.Errorf("docs/METRICS.md lists %s, which /metrics does not serve", name)
		}
	}
}
