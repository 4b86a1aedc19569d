package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/cli"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// env is a running server plus a way to drive the CLI against it.
type env struct {
	t *testing.T
	m *server.Main
}

// start runs the real server on 127.0.0.1:0 with a temp SQLite database.
func start(t *testing.T) *env {
	t.Helper()
	return &env{t: t, m: servertest.Start(t, nil)}
}

// run executes the CLI with args and returns stdout, stderr and exit code.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"IRONPOOL_URL": e.m.URL(), "IRONPOOL_TOKEN": e.m.AdminToken, "IRONPOOL_DATA_DIR": e.t.TempDir()}
	code := cli.Run(context.Background(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return vars[k] }})
	return out.String(), errb.String(), code
}

// ok runs the CLI and fails the test on a non-zero exit.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("ironpool %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// jsonOf runs the CLI with -o json and decodes the reply.
func (e *env) jsonOf(v any, args ...string) {
	e.t.Helper()
	if err := json.Unmarshal([]byte(e.ok(append(args, "-o", "json")...)), v); err != nil {
		e.t.Fatal(err)
	}
}

type nodeView struct {
	Name  string `json:"name"`
	State string `json:"state"`
	CPUs  int    `json:"cpus"`
	Owner string `json:"owner"`
	BMC   struct {
		Password string `json:"password"`
	} `json:"bmc"`
}

func (e *env) nodes(args ...string) []nodeView {
	var out struct{ Nodes []nodeView }
	e.jsonOf(&out, append([]string{"node", "list"}, args...)...)
	return out.Nodes
}

// snapshot is everything a refused request must leave untouched.
func (e *env) snapshot() string {
	var ev struct{ Events []json.RawMessage }
	e.jsonOf(&ev, "events")
	return fmt.Sprintf("%v|%d", e.nodes(), len(ev.Events))
}

// seed adds 20 nodes of three shapes through `node add` and three flavors.
func (e *env) seed() {
	shapes := []struct{ cpus, mem, disk string }{{"8", "32768", "200"}, {"32", "131072", "500"}, {"64", "524288", "2000"}}
	pw := filepath.Join(e.t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret-bmc\n"), 0o600)
	for i := 0; i < 20; i++ {
		s := shapes[i%3]
		e.ok("node", "add", fmt.Sprintf("n%02d", i), "--bmc", fmt.Sprintf("ipmi://10.0.0.%d:623", i+1), "--bmc-user", "root",
			"--bmc-password-file", pw, "--mac", fmt.Sprintf("52:54:00:00:00:%02x", i), "--cpus", s.cpus,
			"--memory-mb", s.mem, "--local-gb", s.disk, "--arch", "x86_64")
	}
	e.ok("flavor", "create", "small", "--cpus", "8", "--memory-mb", "32768")
	e.ok("flavor", "create", "medium", "--cpus", "32")
	e.ok("flavor", "create", "large", "--cpus", "64", "--local-gb", "1000")
}

func count(nodes []nodeView, state string) int {
	n := 0
	for _, x := range nodes {
		if x.State == state {
			n++
		}
	}
	return n
}

func TestEndToEnd(t *testing.T) {
	e := start(t)
	e.seed()
	if got := len(e.nodes()); got != 20 {
		t.Fatalf("nodes = %d, want 20", got)
	}

	var a struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Items []struct {
			Flavor string   `json:"flavor"`
			Nodes  []string `json:"nodes"`
		} `json:"items"`
		Nodes []nodeView `json:"nodes"`
	}
	e.jsonOf(&a, "allocate", "--owner", "lab1", "--flavor", "small=3", "--flavor", "medium=2", "--flavor", "large=1", "--ttl", "1h")
	if a.State != "active" || len(a.Nodes) != 6 {
		t.Fatalf("allocation %+v", a)
	}
	// Best fit: "small" took 8-cpu nodes, "medium" 32-cpu ones, though larger ones were free.
	want := map[string]int{"small": 8, "medium": 32, "large": 64}
	cpus := map[string]int{}
	for _, n := range a.Nodes {
		cpus[n.Name] = n.CPUs
		if n.BMC.Password != "s3cret-bmc" {
			t.Errorf("owner handoff for %s has password %q", n.Name, n.BMC.Password)
		}
	}
	for _, it := range a.Items {
		for _, n := range it.Nodes {
			if cpus[n] != want[it.Flavor] {
				t.Errorf("%s item got node %s with %d cpus, want %d", it.Flavor, n, cpus[n], want[it.Flavor])
			}
		}
	}
	if got := count(e.nodes("--owner", "lab1"), "allocated"); got != 6 {
		t.Fatalf("allocated to lab1 = %d, want 6", got)
	}
	for _, n := range e.nodes() {
		if n.BMC.Password != "" && n.BMC.Password != "******" {
			t.Fatalf("node list shows password %q", n.BMC.Password)
		}
	}

	// An impossible request (more large nodes than exist) changes nothing.
	before := e.snapshot()
	_, stderr, code := e.run("allocate", "--owner", "lab2", "--flavor", "small=1", "--flavor", "large=10")
	if code != 3 || !strings.Contains(stderr, "large: asked 10, 6 match, 5 free") {
		t.Fatalf("impossible request: exit %d, %s", code, stderr)
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("refused request changed state:\n%s\n%s", before, after)
	}

	// Dry run shows the pick and changes nothing.
	var plan struct {
		Satisfiable bool
		Picks       []struct{ Node string }
	}
	e.jsonOf(&plan, "allocate", "--owner", "lab2", "--flavor", "large=2", "--dry-run")
	if !plan.Satisfiable || len(plan.Picks) != 2 {
		t.Fatalf("plan %+v", plan)
	}
	if after := e.snapshot(); after != before {
		t.Fatal("dry run changed state")
	}

	e.ok("release", a.ID)
	e.ok("release", a.ID) // idempotent
	if got := count(e.nodes(), "available"); got != 20 {
		t.Fatalf("available after release = %d, want 20", got)
	}
	var ev struct {
		Events []struct{ Action string }
	}
	e.jsonOf(&ev, "events", "--subject", "allocation/"+a.ID)
	if len(ev.Events) != 2 || ev.Events[0].Action != "allocation.created" || ev.Events[1].Action != "allocation.released" {
		t.Fatalf("events %+v", ev.Events)
	}
}

func TestHandoffFormats(t *testing.T) {
	e := start(t)
	e.seed()
	out := e.ok("allocate", "--owner", "ci-job-1", "--flavor", "small=2", "-o", "env", "--metadata", "job_url=https://ci/1")
	for _, s := range []string{"export IRONPOOL_NODE_COUNT='2'", "export IRONPOOL_NODE_0_BMC_PASSWORD='s3cret-bmc'", "export IRONPOOL_META_JOB_URL='https://ci/1'"} {
		if !strings.Contains(out, s) {
			t.Errorf("env output lacks %s:\n%s", s, out)
		}
	}
	var id string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "export IRONPOOL_ALLOCATION_ID="); ok {
			id = strings.Trim(v, "'")
		}
	}
	for format, want := range map[string]string{"dnsmasq": "dhcp-host=52:54:00:00:00:", "ironic": "ipmi_address: 10.0.0.", "ansible": "bmc_address: ipmi://", "yaml": "owner: ci-job-1"} {
		if got := e.ok("allocation", "export", id, "-o", format); !strings.Contains(got, want) {
			t.Errorf("-o %s lacks %q:\n%s", format, want, got)
		}
	}
	b64 := strings.TrimSpace(e.ok("allocation", "show", id, "-o", "base64"))
	if len(b64) < 100 || strings.ContainsAny(b64, " {") {
		t.Errorf("base64 output %q", b64)
	}
}
