package cli_test

import (
	"fmt"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/bmctest"
	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/redfishsim"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// TestPerAllocationAccounts: in a pool set to per-allocation BMC
// credentials, checkout makes a new Operator account on each node's BMC
// (the Redfish simulator's AccountService shows it), the handoff carries
// it and never the stored password, and release deletes it. A BMC that
// cannot make one refuses the whole allocation and holds nothing.
func TestPerAllocationAccounts(t *testing.T) {
	m := servertest.Start(t, &server.Main{Background: reconcile.Config{PerAllocationBMC: []string{"lab"}, LoopInterval: 100 * time.Millisecond}})
	e := &env{t: t, m: m}
	const stored = "Stored-Admin-Pw-9"
	pw := pwFile(t, stored)
	var sims []*redfishsim.Sim
	for i, name := range []string{"l1", "l2"} {
		sim := redfishsim.New("root", stored, redfishsim.System{ID: "1", CPUs: 8 + i})
		srv := httptest.NewServer(sim)
		t.Cleanup(srv.Close)
		sims = append(sims, sim)
		e.ok("node", "add", name, "--pool", "lab", "--bmc", "redfish+"+srv.URL+"/redfish/v1/Systems/1", "--bmc-user", "root",
			"--bmc-password-file", pw, "--cpus", "8")
	}

	var al struct {
		ID    string
		Nodes []struct {
			Name string
			BMC  struct{ Username, Password string }
		}
	}
	out := e.ok("allocate", "--owner", "lab1", "--constraint", "pool=lab,count=1", "-o", "json")
	if strings.Contains(out, stored) {
		t.Fatalf("the handoff carries the stored password:\n%s", out)
	}
	e.jsonOf(&al, "allocation", "show", strings.TrimSpace(between(out, `"id": "`, `"`)))
	if len(al.Nodes) != 1 {
		t.Fatalf("allocation: %+v", al)
	}
	got := al.Nodes[0]
	sim := sims[0]
	if got.Name == "l2" {
		sim = sims[1]
	}
	accounts := sim.Accounts()
	if len(accounts) != 2 {
		t.Fatalf("BMC accounts after checkout: %+v", accounts)
	}
	acc := accounts[1]
	if acc.UserName != got.BMC.Username || acc.Password != got.BMC.Password || acc.RoleID != "Operator" || !acc.Enabled ||
		got.BMC.Password == "" || got.BMC.Password == stored {
		t.Errorf("handoff %+v, BMC account %+v", got.BMC, acc)
	}
	for _, format := range []string{"env", "ironic", "ansible", "json"} {
		x := e.ok("allocation", "export", al.ID, "-o", format)
		if strings.Contains(x, stored) || !strings.Contains(x, got.BMC.Password) {
			t.Errorf("export -o %s: stored password present or lease password absent:\n%s", format, x)
		}
	}
	// The account works: a real Redfish login with it succeeds.
	if !sim.CheckLogin(got.BMC.Username, got.BMC.Password) {
		t.Errorf("the lease account cannot log in")
	}

	// Release owes the node a cleaning whose first step deletes the
	// account; the node is not available before that is done.
	e.ok("release", al.ID)
	eventually(t, 10*time.Second, "account deleted and node available", func() (bool, string) {
		n := e.fullBMCNode(got.Name)
		if n.State == "available" && len(sim.Accounts()) != 1 {
			t.Fatalf("node available with the lease account still on its BMC: %+v", sim.Accounts())
		}
		return n.State == "available" && n.Fields["bmc_lease_user"] == "", n.State
	})
	if accounts := sim.Accounts(); len(accounts) != 1 || accounts[0].UserName != "root" {
		t.Errorf("accounts after release: %+v", accounts)
	}

	// A BMC that fails refuses the allocation of both nodes as a whole:
	// the account made on the other node is deleted again.
	sims[1].SetFailure(503)
	before := len(sims[0].Accounts())
	_, errs, code := e.run("allocate", "--owner", "lab1", "--constraint", "pool=lab,count=2")
	if code != 8 || !strings.Contains(errs, "node l2") || !strings.Contains(errs, "per-allocation BMC account") || strings.Contains(errs, stored) {
		t.Errorf("refused checkout: exit %d: %s", code, errs)
	}
	sims[1].SetFailure(0)
	if n := len(sims[0].Accounts()); n != before {
		t.Errorf("l1 keeps %d accounts after the refused checkout, had %d", n, before)
	}
	for _, name := range []string{"l1", "l2"} {
		if n := e.fullBMCNode(name); n.State != "available" || n.Owner != "" {
			t.Errorf("%s after the refused checkout: %+v", name, n)
		}
	}

	// Expiry deletes the account too.
	e.jsonOf(&al, "allocate", "--owner", "lab1", "--constraint", "pool=lab,count=2", "--ttl", "1s")
	if len(sims[0].Accounts()) != 2 || len(sims[1].Accounts()) != 2 {
		t.Fatalf("accounts after checkout of both: %d, %d", len(sims[0].Accounts()), len(sims[1].Accounts()))
	}
	eventually(t, 10*time.Second, "accounts deleted at expiry", func() (bool, string) {
		return len(sims[0].Accounts()) == 1 && len(sims[1].Accounts()) == 1, ""
	})
}

func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	s = s[i+len(from):]
	if j := strings.Index(s, to); j >= 0 {
		return s[:j]
	}
	return s
}

// TestPerAllocationAccountsIPMI: the same over IPMI, against ipmi_sim's
// user slots; ipmitool logs in with the handed-out account, and cannot
// once the allocation is released.
func TestPerAllocationAccountsIPMI(t *testing.T) {
	sim := bmctest.StartIPMISim(t)
	m := servertest.Start(t, &server.Main{Background: reconcile.Config{PerAllocationBMC: []string{"*"}}})
	e := &env{t: t, m: m}
	e.ok("node", "add", "i1", "--bmc", sim.Address(), "--bmc-user", sim.User, "--bmc-password-file", pwFile(t, sim.Password))
	var al struct {
		ID    string
		Nodes []struct {
			BMC struct{ Username, Password string }
		}
	}
	e.jsonOf(&al, "allocate", "--owner", "lab1", "--constraint", "count=1")
	if len(al.Nodes) != 1 || al.Nodes[0].BMC.Username == sim.User || al.Nodes[0].BMC.Password == sim.Password || al.Nodes[0].BMC.Password == "" {
		t.Fatalf("handoff: %+v", al)
	}
	u, p := al.Nodes[0].BMC.Username, al.Nodes[0].BMC.Password
	login := func() error {
		return exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", sim.Host, "-p", fmt.Sprint(sim.Port), "-U", u, "-P", p, "-L", "OPERATOR", "chassis", "power", "status").Run()
	}
	if err := login(); err != nil {
		t.Fatalf("ipmitool cannot log in with the handed-out account %s: %v", u, err)
	}
	e.ok("release", al.ID)
	eventually(t, 15*time.Second, "node cleaned", func() (bool, string) {
		n := e.fullBMCNode("i1")
		return n.State == "available", n.State
	})
	if err := login(); err == nil {
		t.Errorf("the account %s still logs in after release", u)
	}
}

// TestPerAllocationAccountsQueued: a queued request served later by the
// reconciler gets its own account too, once the previous holder's is gone.
func TestPerAllocationAccountsQueued(t *testing.T) {
	m := servertest.Start(t, &server.Main{Background: reconcile.Config{PerAllocationBMC: []string{"*"}, LoopInterval: 100 * time.Millisecond}})
	e := &env{t: t, m: m}
	sim := redfishsim.New("root", "Stored-Admin-Pw-9", redfishsim.System{ID: "1"})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	e.ok("node", "add", "q1", "--bmc", "redfish+"+srv.URL+"/redfish/v1/Systems/1", "--bmc-user", "root", "--bmc-password-file", pwFile(t, "Stored-Admin-Pw-9"))
	type handoff struct {
		ID    string
		State string
		Nodes []struct {
			BMC struct{ Username, Password string }
		}
	}
	var first handoff
	e.jsonOf(&first, "allocate", "--owner", "lab1", "--constraint", "count=1")
	done := make(chan handoff, 1)
	go func() {
		var h handoff
		e.jsonOf(&h, "allocate", "--owner", "lab2", "--constraint", "count=1", "--wait", "30s")
		done <- h
	}()
	time.Sleep(300 * time.Millisecond) // queued behind lab1
	e.ok("release", first.ID)
	var second handoff
	select {
	case second = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the queued request was not served")
	}
	accounts := sim.Accounts()
	if second.State != "active" || len(second.Nodes) != 1 || len(accounts) != 2 {
		t.Fatalf("queued request: %+v; accounts %+v", second, accounts)
	}
	got := second.Nodes[0].BMC
	if accounts[1].UserName != got.Username || accounts[1].Password != got.Password || got.Username == first.Nodes[0].BMC.Username {
		t.Errorf("handoff %+v, accounts %+v, first holder's %s", got, accounts, first.Nodes[0].BMC.Username)
	}
}
