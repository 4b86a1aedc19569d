package cli_test

import (
	"strings"
	"testing"
)

// TestCompletion: the shell's Tab asks the binary (`__complete`), which
// asks the server for names.
func TestCompletion(t *testing.T) {
	e := start(t)
	e.seed()
	var a struct{ ID string }
	e.jsonOf(&a, "allocate", "--owner", "lab", "--flavor", "small=1")
	complete := func(args ...string) []string {
		t.Helper()
		out := e.ok(append([]string{"__complete"}, args...)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, ":") && l != "" {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return got
	}
	has := func(what string, got []string, want ...string) {
		t.Helper()
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Errorf("%s: completions %v lack %q", what, got, w)
			}
		}
	}
	has("node show", complete("node", "show", ""), "n00", "n19")
	if got := complete("node", "show", "n1"); len(got) != 10 {
		t.Errorf("node show n1<Tab> = %v, want the ten n1x", got)
	}
	has("node delete (several)", complete("node", "delete", "n00", ""), "n01")
	has("node maintenance on|off", complete("node", "maintenance", "n00", ""), "on", "off")
	has("flavor show", complete("flavor", "show", ""), "small", "medium", "large")
	has("release", complete("release", ""), a.ID)
	has("allocation show", complete("allocation", "show", ""), a.ID)
	has("allocate --flavor", complete("allocate", "--flavor", ""), "small=", "large=")
	has("node list --state", complete("node", "list", "--state", ""), "available", "maintenance")
	has("allocation list --state", complete("allocation", "list", "--state", ""), "queued", "active")
	has("allocate -o", complete("allocate", "-o", ""), "env", "dotenv", "json")
	has("node list -c", complete("node", "list", "-c", ""), "name", "state")
	has("node list --pool", complete("node", "list", "--pool", ""), "default")
	has("release --owner", complete("release", "--owner", ""), "lab")
	has("allocate --mode", complete("allocate", "--mode", ""), "handoff")
	// The scripts themselves come from cobra.
	if got := e.ok("completion", "bash"); !strings.Contains(got, "__complete") {
		t.Errorf("completion bash does not call back into the binary")
	}
}
