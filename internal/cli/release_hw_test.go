package cli_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/redfishsim"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// TestReleasePowerOff: in a pool set to power released nodes off, release
// powers each node off and sets a one-time PXE boot through its BMC before
// the node is available again; a BMC that fails puts its node in error
// with the reason.
func TestReleasePowerOff(t *testing.T) {
	m := servertest.Start(t, &server.Main{Background: reconcile.Config{ReleasePowerOff: []string{"lab"}, ReleasePXE: true, LoopInterval: 100 * time.Millisecond}})
	e := &env{t: t, m: m}
	pw := pwFile(t, "s3cret-pw")
	var sims []*redfishsim.Sim
	for _, name := range []string{"h1", "h2"} {
		sim := redfishsim.New("admin", "s3cret-pw", redfishsim.System{ID: "1", PowerState: "On"})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		sims = append(sims, sim)
		e.ok("node", "add", name, "--pool", "lab", "--bmc", "redfish+"+srv.URL+"/redfish/v1/Systems/1?timeout=2s", "--bmc-user", "admin", "--bmc-password-file", pw)
	}
	var al struct{ ID string }
	e.jsonOf(&al, "allocate", "--owner", "lab1", "--constraint", "pool=lab,count=2")
	sims[1].SetFailure(500)
	e.ok("release", al.ID)
	eventually(t, 10*time.Second, "cleaning done", func() (bool, string) {
		a, b := e.fullBMCNode("h1"), e.fullBMCNode("h2")
		return a.State == "available" && b.State == "error", a.State + "/" + b.State
	})
	if st := sims[0].System("1"); st.PowerState != "Off" || st.BootTarget != "Pxe" || st.BootEnabled != "Once" {
		t.Errorf("h1's BMC after release: %+v", st)
	}
	var n struct {
		LastError string `json:"last_error"`
	}
	e.jsonOf(&n, "node", "show", "h2")
	if !strings.Contains(n.LastError, "release power off") || !strings.Contains(n.LastError, "node h2") {
		t.Errorf("h2 last_error = %q", n.LastError)
	}
}
