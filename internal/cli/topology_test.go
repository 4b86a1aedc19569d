package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// topoPool adds t0..t5 in racks r1 r1 r1 r2 r2 r3 (8 cpus) and t6 with no
// rack, the best fit by size (4 cpus), which no topology request may use.
func topoPool(e *env) map[string]string {
	racks := []string{"r1", "r1", "r1", "r2", "r2", "r3", ""}
	rackOf := map[string]string{}
	for i, r := range racks {
		name := fmt.Sprintf("t%d", i)
		args := []string{"node", "add", name, "--bmc", fmt.Sprintf("ipmi://10.0.1.%d:623", i+1),
			"--mac", fmt.Sprintf("52:54:00:00:01:%02x", i), "--cpus", "8", "--memory-mb", "16384", "--local-gb", "100", "--arch", "x86_64"}
		if r != "" {
			args = append(args, "--field", "rack="+r)
		} else {
			args[len(args)-7] = "4" // --cpus
		}
		e.ok(args...)
		rackOf[name] = r
	}
	return rackOf
}

type topoAlloc struct {
	ID    string `json:"id"`
	Items []struct {
		Nodes []string `json:"nodes"`
	} `json:"items"`
	Topology *struct {
		Spread      string `json:"spread"`
		MaxPerValue int    `json:"max_per_value"`
		Together    string `json:"together"`
	} `json:"topology"`
}

// racks returns the rack of each node a holds, counted.
func (a topoAlloc) racks(rackOf map[string]string) map[string]int {
	per := map[string]int{}
	for _, it := range a.Items {
		for _, n := range it.Nodes {
			per[rackOf[n]]++
		}
	}
	return per
}

// TestTopologyEndToEnd drives --spread and --together through the real
// server: the picks keep the constraint across items, nodes without the
// field are never used, a refusal names the constraint and the shortfall
// with exit 3, and the dry run says the same.
func TestTopologyEndToEnd(t *testing.T) {
	e := start(t)
	rackOf := topoPool(e)
	allocate := func(args ...string) topoAlloc {
		t.Helper()
		var a topoAlloc
		e.jsonOf(&a, append([]string{"allocate", "--owner", "lab1"}, args...)...)
		return a
	}

	a := allocate("--constraint", "cpus>=4,count=3", "--spread", "rack")
	if per := a.racks(rackOf); len(per) != 3 || per[""] != 0 {
		t.Errorf("--spread rack: racks %v, want r1 r2 r3 once each", per)
	}
	if a.Topology == nil || a.Topology.Spread != "rack" || a.Topology.MaxPerValue != 1 {
		t.Errorf("allocation topology = %+v, want spread rack, max_per_value 1", a.Topology)
	}
	var shown topoAlloc
	e.jsonOf(&shown, "allocation", "show", a.ID)
	if shown.Topology == nil || shown.Topology.Spread != "rack" {
		t.Errorf("allocation show lost the topology: %+v", shown.Topology)
	}
	if out := e.ok("allocation", "show", a.ID); !strings.Contains(out, "topology") || !strings.Contains(out, "spread rack") {
		t.Errorf("allocation show table lacks the topology:\n%s", out)
	}
	e.ok("release", a.ID)

	// Across items: 2 + 1 nodes, three racks.
	a = allocate("--constraint", "cpus>=4,count=2", "--constraint", "cpus>=8,count=1", "--spread", "rack")
	if per := a.racks(rackOf); len(per) != 3 || per[""] != 0 {
		t.Errorf("--spread rack over two items: racks %v, want three distinct", per)
	}
	e.ok("release", a.ID)

	a = allocate("--constraint", "cpus>=4,count=5", "--spread", "rack:2")
	if per := a.racks(rackOf); per["r1"] != 2 || per["r2"] != 2 || per["r3"] != 1 {
		t.Errorf("--spread rack:2: racks %v, want r1 2, r2 2, r3 1", per)
	}
	e.ok("release", a.ID)

	a = allocate("--constraint", "cpus>=4,count=3", "--together", "rack")
	if per := a.racks(rackOf); per["r1"] != 3 {
		t.Errorf("--together rack: racks %v, want all three in r1", per)
	}
	e.ok("release", a.ID)

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"SpreadShort", []string{"--constraint", "cpus>=4,count=4", "--spread", "rack"},
			"topology.spread: spread rack: no 4 free nodes in distinct rack values; at most 3 can be placed"},
		{"SpreadKShort", []string{"--constraint", "cpus>=4,count=6", "--spread", "rack:2"},
			"topology.spread: spread rack:2: no 6 free nodes with at most 2 per rack value; at most 5 can be placed"},
		{"TogetherShort", []string{"--constraint", "cpus>=4,count=4", "--together", "rack"},
			"topology.together: together rack: no single rack value holds 4 free nodes for the items; the most one holds is 3 (rack=r1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(append([]string{"allocate", "--owner", "lab1"}, c.args...)...)
			if code != 3 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want 3 and %q", code, stderr, c.want)
			}
			stdout, stderr, code := e.run(append([]string{"allocate", "--owner", "lab1", "--dry-run"}, c.args...)...)
			if code != 3 || !strings.Contains(stdout, "why: ") || !strings.Contains(stderr, strings.SplitN(c.want, ": ", 2)[1]) {
				t.Errorf("dry run: exit %d, stdout %q, stderr %q; want 3, a why line and the same refusal", code, stdout, stderr)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("refusal changed the pool:\n%s\n%s", before, after)
			}
		})
	}
	// The node without a rack is free the whole time, and a plain request
	// takes it first (it is the best fit).
	a = allocate("--constraint", "cpus>=4,count=1")
	if !slices.Equal(a.Items[0].Nodes, []string{"t6"}) {
		t.Errorf("plain request took %v, want t6 (best fit, no rack)", a.Items[0].Nodes)
	}
}

// TestTopologyBadInput: malformed topology flags are refused before
// anything is sent (exit 2, the flag named), an unknown key by the server
// (400 naming topology.spread), and the API's own shape errors name their
// field; none changes anything.
func TestTopologyBadInput(t *testing.T) {
	e := start(t)
	topoPool(e)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"UnknownKey", []string{"--spread", "rak"}, `topology.spread: no node has field "rak"`},
		{"UnknownKeyQueued", []string{"--together", "switch", "--wait", "10m"}, `topology.together: no node has field "switch"`},
		{"Both", []string{"--spread", "rack", "--together", "rack"}, "topology: give --spread or --together, not both"},
		{"KZero", []string{"--spread", "rack:0"}, `spread: "rack:0": the most per value`},
		{"KNegative", []string{"--spread", "rack:-1"}, `spread: "rack:-1"`},
		{"KNotANumber", []string{"--spread", "rack:two"}, `spread: "rack:two"`},
		{"BadKey", []string{"--spread", "r a"}, `spread: key "r a"`},
		{"EmptyKey", []string{"--spread", ":2"}, `spread: key ""`},
		{"BadTogetherKey", []string{"--together", "9rack"}, `together: key "9rack"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(append([]string{"allocate", "--owner", "lab1", "--constraint", "cpus>=4,count=1"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, c.want)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("bad input changed the pool:\n%s\n%s", before, after)
			}
		})
	}
	for _, c := range []struct{ name, topo, field string }{
		{"APIMaxZero", `{"spread": "rack", "max_per_value": 0}`, "topology.max_per_value"},
		{"APIMaxWithTogether", `{"together": "rack", "max_per_value": 2}`, "topology.max_per_value"},
		{"APIBoth", `{"spread": "rack", "together": "rack"}`, "topology"},
		{"APIEmpty", `{}`, "topology"},
		{"APIUnknownKey", `{"spread": "rak"}`, "topology.spread"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			body := `{"owner": "lab1", "items": [{"constraints": {"cpus": 4}, "count": 1}], "topology": ` + c.topo + `}`
			req, _ := http.NewRequest("POST", e.m.URL()+"/v1/allocations", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.m.AdminToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var p struct{ Field string }
			json.Unmarshal(raw, &p)
			if resp.StatusCode != 400 || p.Field != c.field {
				t.Errorf("status %d field %q (%s); want 400 naming %s", resp.StatusCode, p.Field, raw, c.field)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("bad input changed the pool:\n%s\n%s", before, after)
			}
		})
	}
}
