// Package archtest checks the rules that keep ironpool's layers apart, on
// the real import graph (go list), so that a broken rule fails the build's
// tests rather than surfacing later as a tangle. Each rule is also shown to
// fail on a graph that breaks it on purpose, so that a rule which can
// never fire is noticed.
package archtest

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pkg is what the rules need of a package: its direct imports and every
// package it depends on.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// rule forbids packages (matched by prefix) to depend on others. Direct
// rules look at imports only: the root package's error table may know
// net/http status codes without the service layer speaking HTTP.
type rule struct {
	name   string
	of     []string
	forbid []string
	direct bool
	// except are packages a rule whose of is "every package" leaves out.
	except []string
}

const mod = "github.com/ironpool/ironpool"

var stores = []string{mod + "/internal/sqlstore", mod + "/internal/sqlite", mod + "/internal/postgres"}

var rules = []rule{
	{name: "the root package imports nothing under internal/",
		of: []string{mod}, forbid: []string{mod + "/internal/"}},
	{name: "the request service and the reconciler import no store implementation",
		of: []string{mod + "/internal/service", mod + "/internal/reconcile"}, forbid: stores},
	{name: "the request service and the reconciler import no HTTP package",
		of: []string{mod + "/internal/service", mod + "/internal/reconcile"}, direct: true,
		forbid: []string{"net/http", "github.com/danielgtaylor/huma", mod + "/internal/httpapi", mod + "/client"}},
	{name: "the request service and the reconciler do not import internal/ironic",
		of: []string{mod + "/internal/service", mod + "/internal/reconcile"}, forbid: []string{mod + "/internal/ironic"}},
	{name: "the service does not import the reconciler (it declares Workflows)",
		of: []string{mod + "/internal/service"}, forbid: []string{mod + "/internal/reconcile"}},
	{name: "stores import no transport and no backend",
		of: stores, forbid: []string{"net/http", mod + "/internal/httpapi", mod + "/client", mod + "/internal/ironic", "github.com/gophercloud"}},
	{name: "internal/httpapi imports no store",
		of: []string{mod + "/internal/httpapi"}, forbid: stores},
	{name: "only the wiring (internal/server) imports internal/ironic",
		of: []string{mod + "/"}, forbid: []string{mod + "/internal/ironic"}, direct: true,
		// internal/bench drives Ironic's allocation API as a performance
		// peer (bench --peer ironic=URL); it is a measuring tool, not wiring
		// or the request path.
		except: []string{mod + "/internal/server", mod + "/internal/ironictest", mod + "/internal/ironic", mod + "/internal/bench"}},
}

// matches reports whether path is prefix itself or inside it.
func matches(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, strings.TrimSuffix(prefix, "/")+"/")
}

// violations lists "package → dependency (rule)" for every broken rule.
func violations(pkgs []pkg, rules []rule) []string {
	var out []string
	for _, r := range rules {
		for _, p := range pkgs {
			if !slices.ContainsFunc(r.of, func(o string) bool { return p.ImportPath == o || o != mod && matches(p.ImportPath, o) }) ||
				slices.Contains(r.except, p.ImportPath) {
				continue
			}
			deps := p.Deps
			if r.direct {
				deps = p.Imports
			}
			for _, d := range deps {
				for _, f := range r.forbid {
					if matches(d, f) || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) {
						out = append(out, p.ImportPath+" → "+d+" ("+r.name+")")
					}
				}
			}
		}
	}
	return out
}

// loadGraph lists every package of the module with its imports and deps.
func loadGraph(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", mod+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// TestLayers checks every rule on the real import graph.
func TestLayers(t *testing.T) {
	pkgs := loadGraph(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.ImportPath] = true
	}
	for _, r := range rules {
		for _, o := range r.of {
			if !seen[o] && !strings.HasSuffix(o, "/") { // "ironpool/" is every package
				t.Errorf("rule %q names %s, which is not a package of the module: the rule checks nothing", r.name, o)
			}
		}
	}
	for _, v := range violations(pkgs, rules) {
		t.Error(v)
	}
}

// TestRulesFire breaks each rule on purpose, in a made-up graph, and
// expects exactly that rule to report it.
func TestRulesFire(t *testing.T) {
	clean := []pkg{
		{ImportPath: mod, Imports: []string{"context", "net/http"}},
		{ImportPath: mod + "/internal/service", Imports: []string{mod}, Deps: []string{mod, "net/http"}},
		{ImportPath: mod + "/internal/reconcile", Imports: []string{mod}, Deps: []string{mod}},
		{ImportPath: mod + "/internal/sqlstore", Imports: []string{mod}, Deps: []string{mod}},
		{ImportPath: mod + "/internal/httpapi", Imports: []string{mod + "/internal/service", "net/http"}, Deps: []string{mod + "/internal/service"}},
	}
	if v := violations(clean, rules); len(v) > 0 {
		t.Fatalf("a graph that keeps every rule is reported: %v", v)
	}
	breaks := map[string]pkg{
		rules[0].name: {ImportPath: mod, Deps: []string{mod + "/internal/secret"}},
		rules[1].name: {ImportPath: mod + "/internal/reconcile", Deps: []string{mod + "/internal/sqlite"}},
		rules[2].name: {ImportPath: mod + "/internal/service", Imports: []string{"net/http"}},
		rules[3].name: {ImportPath: mod + "/internal/service", Deps: []string{mod + "/internal/ironic"}},
		rules[4].name: {ImportPath: mod + "/internal/service", Deps: []string{mod + "/internal/reconcile"}},
		rules[5].name: {ImportPath: mod + "/internal/postgres", Deps: []string{mod + "/internal/ironic"}},
		rules[6].name: {ImportPath: mod + "/internal/httpapi", Deps: []string{mod + "/internal/sqlstore"}},
		rules[7].name: {ImportPath: mod + "/internal/cli", Imports: []string{mod + "/internal/ironic"}},
	}
	if len(breaks) != len(rules) {
		t.Fatalf("%d rules but %d deliberate violations: every rule needs one", len(rules), len(breaks))
	}
	for name, bad := range breaks {
		v := violations([]pkg{bad}, rules)
		if len(v) != 1 || !strings.Contains(v[0], name) {
			t.Errorf("breaking %q reported %v, want exactly that rule", name, v)
		}
	}
}

// TestNoSoakClockByDefault keeps the soak campaign's clock hook out of
// production binaries: the default build of internal/clock compiles none
// of the files that can move the clock, and every source file outside the
// campaign that names the hook's variable is built only with -tags
// soakclock. Dropping the build constraint from clock_soak.go fails it.
func TestNoSoakClockByDefault(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .GoFiles " "}}`, mod+"/internal/clock").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := strings.Fields(string(out))
	if !slices.Contains(files, "clock_default.go") {
		t.Fatalf("the default build of internal/clock compiles %v, not clock_default.go", files)
	}
	if slices.Contains(files, "clock_soak.go") {
		t.Fatalf("the default build of internal/clock compiles clock_soak.go, the campaign's clock hook")
	}
	out, err = exec.Command("go", "list", "-f", `{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .IgnoredGoFiles}} {{.}}{{end}}`, mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(f[0], "/internal/soak") {
			continue
		}
		for _, name := range f[1:] {
			b, err := os.ReadFile(filepath.Join(f[0], name))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "IRONPOOL_SOAK_CLOCK_FILE") && !strings.HasPrefix(string(b), "//go:build soakclock\n") {
				t.Errorf("%s/%s names IRONPOOL_SOAK_CLOCK_FILE but is not built only with -tags soakclock", f[0], name)
			}
		}
	}
}
