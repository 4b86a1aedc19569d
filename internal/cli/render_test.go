package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRendering: every list and show goes through one layer that takes
// -c COLUMN (repeatable), -o value|csv and --no-headers.
func TestRendering(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("node", "set", "n01", "fields.rack=r7")
	var a struct{ ID string }
	e.jsonOf(&a, "allocate", "--owner", "lab", "--flavor", "small=1")

	lines := func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }
	if got := lines(e.ok("node", "list", "-o", "value", "-c", "name")); len(got) != 20 || got[0] != "n00" || got[19] != "n19" {
		t.Errorf("node list -o value -c name = %q", got)
	}
	if got := lines(e.ok("node", "list", "-o", "csv", "-c", "name", "-c", "cpus", "--no-headers")); len(got) != 20 || got[1] != "n01,32" {
		t.Errorf("node list -o csv -c name -c cpus --no-headers = %q", got)
	}
	if got := lines(e.ok("node", "list", "-o", "csv", "-c", "state")); got[0] != "state" {
		t.Errorf("csv header = %q", got[0])
	}
	if got := e.ok("node", "list", "--no-headers"); strings.Contains(got, "NAME") || len(lines(got)) != 20 {
		t.Errorf("node list --no-headers:\n%s", got)
	}
	if got := e.ok("node", "list"); !strings.HasPrefix(got, "NAME") {
		t.Errorf("node list table has no header:\n%s", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "show", "n01", "-o", "value", "-c", "cpus"}, "32\n"},
		{[]string{"node", "show", "n01", "-o", "value", "-c", "fields.rack"}, "r7\n"},
		{[]string{"node", "show", "n01", "-c", "pool", "-c", "state"}, "pool   default\nstate  available\n"},
		{[]string{"allocation", "show", a.ID, "-o", "value", "-c", "state"}, "active\n"},
		{[]string{"allocation", "list", "-o", "value", "-c", "owner"}, "lab\n"},
		{[]string{"flavor", "show", "small", "-o", "value", "-c", "name"}, "small\n"},
		{[]string{"capacity", "-o", "csv", "-c", "flavor", "--no-headers"}, "any\nlarge\nmedium\nsmall\n"},
		{[]string{"token", "list", "-o", "value", "-c", "role"}, "admin\n"},
		{[]string{"release", a.ID, "-o", "value", "-c", "state"}, "released\n"},
	} {
		if got := e.ok(c.args...); got != c.want {
			t.Errorf("%v = %q, want %q", c.args, got, c.want)
		}
	}
	var picked []map[string]string
	if err := json.Unmarshal([]byte(e.ok("node", "list", "-o", "json", "-c", "name", "--state", "available")), &picked); err != nil || len(picked) != 20 || picked[0]["name"] != "n00" || len(picked[0]) != 1 {
		t.Errorf("node list -o json -c name = %v %v", picked, err)
	}
	if got := e.ok("events", "-o", "value", "-c", "action", "--tail", "1"); got != "allocation.released\n" {
		t.Errorf("events -o value -c action = %q", got)
	}

	// An unknown column is refused before anything is sent.
	before := e.snapshot()
	for _, args := range [][]string{
		{"node", "list", "-c", "colour"},
		{"node", "add", "fresh", "--bmc", "ipmi://127.0.0.1", "-c", "colour"},
		{"allocate", "--owner", "x", "--flavor", "small=1", "-c", "name"},
		{"node", "add", "fresh", "--bmc", "ipmi://127.0.0.1", "-o", "value", "-c", "colour"},
	} {
		_, stderr, code := e.run(args...)
		if code != 2 || !strings.Contains(stderr, "column:") {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused -c changed state")
	}
}
