package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/bmctest"
	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/redfishsim"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// TestHealthChecks: a BMC stopped during the test quarantines its free
// node after FailAfter probes and restarting it returns the node; an
// allocated node whose BMC fails is flagged, never taken; an operator's
// own maintenance is never undone.
func TestHealthChecks(t *testing.T) {
	sim := bmctest.StartIPMISim(t)
	m := servertest.Start(t, &server.Main{Background: reconcile.Config{LoopInterval: 100 * time.Millisecond,
		Health: reconcile.HealthConfig{Interval: 250 * time.Millisecond, FailAfter: 2, RecoverAfter: 2}}})
	e := &env{t: t, m: m}
	pw := pwFile(t, sim.Password)
	e.ok("node", "add", "free1", "--bmc", sim.Address()+"&timeout=1s", "--bmc-user", sim.User, "--bmc-password-file", pw, "--cpus", "2")

	held := redfishsim.New("admin", "s3cret-pw", redfishsim.System{ID: "1", CPUs: 64})
	hsrv := httptest.NewServer(held)
	t.Cleanup(hsrv.Close)
	rpw := pwFile(t, "s3cret-pw")
	e.ok("node", "add", "held1", "--bmc", "redfish+"+hsrv.URL+"/redfish/v1/Systems/1?timeout=1s", "--bmc-user", "admin", "--bmc-password-file", rpw, "--cpus", "64")
	opm := redfishsim.New("admin", "s3cret-pw", redfishsim.System{ID: "1", CPUs: 1})
	osrv := httptest.NewServer(opm)
	t.Cleanup(osrv.Close)
	e.ok("node", "add", "opm", "--bmc", "redfish+"+osrv.URL+"/redfish/v1/Systems/1?timeout=1s", "--bmc-user", "admin", "--bmc-password-file", rpw, "--cpus", "1")
	e.ok("node", "maintenance", "opm", "on", "--reason", "disk swap, ticket 42")
	var al struct{ ID string }
	e.jsonOf(&al, "allocate", "--owner", "lab1", "--constraint", "cpus>=64,count=1")

	state := func(name string) bmcNode { return e.fullBMCNode(name) }
	eventually(t, 10*time.Second, "first probes", func() (bool, string) {
		var r struct{ Nodes []ironpool.NodeHealth }
		e.jsonOf(&r, "node", "health")
		return len(r.Nodes) == 3 && r.Nodes[0].Last != nil, e.ok("node", "health")
	})

	sim.Stop(t)
	held.SetFailure(503)
	eventually(t, 15*time.Second, "free1 quarantined", func() (bool, string) {
		n := state("free1")
		return n.State == "maintenance" && strings.HasPrefix(n.Reason, "bmc unreachable since "), n.State + " " + n.Reason
	})
	eventually(t, 10*time.Second, "held1 flagged", func() (bool, string) {
		var r struct{ Nodes []ironpool.NodeHealth }
		e.jsonOf(&r, "node", "health", "held1")
		return len(r.Nodes) == 1 && r.Nodes[0].Flagged && r.Nodes[0].Failures >= 2, e.ok("node", "health", "held1")
	})
	if n := state("held1"); n.State != "allocated" || n.Owner != "lab1" {
		t.Errorf("allocated node taken: %+v", n)
	}
	out := e.ok("node", "health", "free1")
	if !strings.Contains(out, "HISTORY") || !strings.Contains(out, "FAILED") {
		t.Errorf("node health free1:\n%s", out)
	}

	sim.Restart(t)
	held.SetFailure(0)
	eventually(t, 15*time.Second, "free1 back", func() (bool, string) {
		n := state("free1")
		return n.State == "available" && n.Reason == "", n.State + " " + n.Reason
	})
	time.Sleep(600 * time.Millisecond) // more good probes of opm
	if n := state("opm"); n.State != "maintenance" || n.Reason != "disk swap, ticket 42" {
		t.Errorf("operator maintenance undone: %+v", n)
	}
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "ironpool_bmc_quarantines_total 1\n") || !strings.Contains(string(b), "ironpool_bmc_recoveries_total 1\n") {
		t.Errorf("metrics:\n%s", grepLines(string(b), "ironpool_bmc_"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
