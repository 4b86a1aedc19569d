package cli_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeExitCodes returns the exit codes README's table documents.
func readmeExitCodes(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| exit | meaning | HTTP |")
	if !ok {
		t.Fatal("README has no exit code table")
	}
	var codes []int
	row := regexp.MustCompile(`^\| ([0-9, ]+) \|`)
	for _, line := range strings.Split(table, "\n")[2:] {
		m := row.FindStringSubmatch(line)
		if m == nil {
			break
		}
		for _, f := range strings.Split(m[1], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				t.Fatalf("README exit table row %q", line)
			}
			codes = append(codes, n)
		}
	}
	return codes
}

// TestExitCodes checks README's exit code table row by row against a real
// server: every documented code has a case here, and each case exits with
// its code and says why.
func TestExitCodes(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("allocate", "--owner", "holder", "--flavor", "large=6") // every large node is held now

	// A server that answers 500 with a problem of ours: the real server
	// cannot be made to fail on purpose.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(500)
		w.Write([]byte(`{"status":500,"detail":"internal error","code":"internal"}`))
	}))
	defer broken.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	type row struct {
		name string
		run  func(t *testing.T) (stderr string, code int)
		want string
	}
	cli := func(args ...string) func(t *testing.T) (string, int) {
		return func(t *testing.T) (string, int) {
			_, stderr, code := e.run(args...)
			return stderr, code
		}
	}
	with := func(vars map[string]string, args ...string) func(t *testing.T) (string, int) {
		return func(t *testing.T) (string, int) {
			_, stderr, code := runWith(vars, args...)
			return stderr, code
		}
	}
	signalled := func(sig syscall.Signal) func(t *testing.T) (string, int) {
		return func(t *testing.T) (string, int) { return e.interruptWaiting(t, sig) }
	}
	rows := map[int][]row{
		0: {{"NodeList", cli("node", "list"), ""}},
		1: {
			{"ReleaseNoArgument", cli("release"), "ironpool: give allocation ids or --owner OWNER\nusage: ironpool release"},
			{"UnknownFlag", cli("node", "list", "--colour"), "usage:"},
		},
		2: {{"BadDuration", cli("allocate", "--owner", "x", "--flavor", "small=1", "--ttl", "soon"), `ttl: "soon" is not a duration`}},
		3: {
			{"NotEnoughFree", cli("allocate", "--owner", "x", "--flavor", "large=1"), "large: asked 1, 6 match, 0 free"},
			{"DryRunDoesNotFit", cli("allocate", "--owner", "x", "--flavor", "large=1", "--dry-run"), "large: asked 1, 6 match, 0 free"},
		},
		4: {{"UnknownToken", with(map[string]string{"IRONPOOL_URL": e.m.URL(), "IRONPOOL_TOKEN": "nope"}, "node", "list"), "IRONPOOL_TOKEN was refused"}},
		5: {{"NoSuchNode", cli("node", "show", "nosuch"), `no node named "nosuch"`}},
		6: {{"DuplicateNode", cli("node", "add", "n01", "--bmc", "ipmi://127.0.0.1"), "exists already"}},
		7: {{"WaitRanOut", cli("allocate", "--owner", "w", "--flavor", "large=1", "--wait", "1s"), "--wait 1s ran out"}},
		8: {{"Unreachable", with(map[string]string{"IRONPOOL_URL": closedURL, "IRONPOOL_TOKEN": "x"}, "node", "list"), "cannot reach ironpool"}},
		9: {{"OverQuota", func(t *testing.T) (string, int) {
			e.ok("quota", "set", "quota-*", "--max-nodes", "1")
			_, stderr, code := e.run("allocate", "--owner", "quota-x", "--flavor", "small=2")
			return stderr, code
		}, "quota quota-* max_nodes for owner quota-x: allows 1 nodes; 0 held, 2 asked"}},
		10:  {{"InternalError", with(map[string]string{"IRONPOOL_URL": broken.URL, "IRONPOOL_TOKEN": "x"}, "node", "list"), "internal error"}},
		129: {{"SIGHUPWhileWaiting", signalled(syscall.SIGHUP), "interrupted by hangup"}},
		130: {{"SIGINTWhileWaiting", signalled(syscall.SIGINT), "interrupted by interrupt"}},
		143: {{"SIGTERMWhileWaiting", signalled(syscall.SIGTERM), "interrupted by terminated"}},
	}
	documented := readmeExitCodes(t)
	if len(documented) < 10 {
		t.Fatalf("README documents only %v", documented)
	}
	for _, code := range documented {
		cases, ok := rows[code]
		if !ok {
			t.Errorf("README documents exit %d, but no case checks it", code)
			continue
		}
		delete(rows, code)
		for _, c := range cases {
			t.Run(strconv.Itoa(code)+"/"+c.name, func(t *testing.T) {
				stderr, got := c.run(t)
				if got != code {
					t.Errorf("exit %d, want %d\n%s", got, code, stderr)
				}
				if !strings.Contains(stderr, c.want) {
					t.Errorf("stderr %q lacks %q", stderr, c.want)
				}
			})
		}
	}
	for code := range rows {
		t.Errorf("exit %d is checked but README does not document it", code)
	}
	// Nothing the rows did is left queued or held beyond the holder's six.
	var st struct{ Queued int }
	e.jsonOf(&st, "status")
	if st.Queued != 0 {
		t.Errorf("%d requests left queued", st.Queued)
	}
	if got := count(e.nodes(), "allocated"); got != 6 {
		t.Errorf("allocated = %d, want the holder's 6", got)
	}
}

// interruptWaiting starts the real binary waiting in the queue for a large
// node (all are held), sends sig once it is queued, and returns its stderr
// and exit code after checking that nothing is left queued.
func (e *env) interruptWaiting(t *testing.T, sig syscall.Signal) (string, int) {
	t.Helper()
	s := e.sh(t.TempDir(), `exec ironpool allocate --owner sig-waiter --flavor large=1 --wait 5m`)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.stderr.String(), "queued as") {
		if time.Now().After(deadline) {
			t.Fatalf("never queued: %s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // into the long-poll
	s.cmd.Process.Signal(sig)
	code := s.wait(t, 30*time.Second)
	var live struct{ Allocations []struct{ ID, State string } }
	e.jsonOf(&live, "allocation", "list", "--owner", "sig-waiter")
	if len(live.Allocations) != 0 {
		t.Errorf("after %v the request is still live: %+v", sig, live.Allocations)
	}
	return s.stderr.String(), code
}
