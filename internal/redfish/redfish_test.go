package redfish_test

import (
	"context"
	"crypto/x509"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/redfish"
	"github.com/ironpool/ironpool/internal/redfishsim"
)

func newSim() *redfishsim.Sim {
	return redfishsim.New("admin", "s3cret-pw", redfishsim.System{ID: "1", UUID: "0E1D6B2C-0000-4000-8000-000000000001",
		HostName: "rack1-n1", CPUs: 16, Arch: "x86", MemoryGiB: 64, DiskBytes: 500 << 30,
		MACs: []string{"52:54:00:AA:00:01", "52:54:00:aa:00:02"}})
}

func dial(t *testing.T, addr, user, pass string) (*redfish.Conn, error) {
	t.Helper()
	c, err := redfish.Dialer{}.Dial(context.Background(), ironpool.BMC{Address: addr, Username: user, Password: pass})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func addrOf(srv *httptest.Server, path string) string {
	return "redfish+" + srv.URL + path
}

// TestPowerAndBoot drives the simulator through every power action and
// both boot override modes, checking the simulator's own state.
func TestPowerAndBoot(t *testing.T) {
	sim := newSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := dial(t, addrOf(srv, "/redfish/v1/Systems/1"), "admin", "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []struct {
		action ironpool.PowerAction
		want   ironpool.PowerState
		sim    string
		resets int
	}{
		{ironpool.PowerStatus, ironpool.PowerStateOff, "Off", 0},
		{ironpool.PowerOn, ironpool.PowerStateOn, "On", 1},
		{ironpool.PowerOn, ironpool.PowerStateOn, "On", 1}, // already on: no reset
		{ironpool.PowerReboot, ironpool.PowerStateOn, "On", 2},
		{ironpool.PowerOff, ironpool.PowerStateOff, "Off", 3},
	} {
		got, err := c.Power(ctx, s.action)
		if err != nil {
			t.Fatalf("power %s: %v", s.action, err)
		}
		st := sim.System("1")
		if got != s.want || st.PowerState != s.sim || st.Resets != s.resets {
			t.Errorf("power %s = %q; sim %s after %d resets; want %q, %s, %d", s.action, got, st.PowerState, st.Resets, s.want, s.sim, s.resets)
		}
	}
	for _, b := range []struct {
		dev            ironpool.BootDevice
		once           bool
		target, enable string
	}{
		{ironpool.BootPXE, true, "Pxe", "Once"},
		{ironpool.BootDisk, false, "Hdd", "Continuous"},
		{ironpool.BootBIOS, true, "BiosSetup", "Once"},
	} {
		if err := c.SetBootDevice(ctx, b.dev, b.once); err != nil {
			t.Fatal(err)
		}
		if st := sim.System("1"); st.BootTarget != b.target || st.BootEnabled != b.enable {
			t.Errorf("boot %s once=%v: sim has %s/%s", b.dev, b.once, st.BootTarget, st.BootEnabled)
		}
	}
	hw, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hw.CPUs != 16 || hw.MemoryMB != 65536 || hw.LocalGB != 500 || hw.CPUArch != "x86_64" || hw.Name != "rack1-n1" ||
		!slices.Equal(hw.MACs, []string{"52:54:00:aa:00:01", "52:54:00:aa:00:02"}) || hw.UUID != "0e1d6b2c-0000-4000-8000-000000000001" {
		t.Errorf("inspect: %+v", hw)
	}
}

// TestSessionAuth: the adapter logs in through the SessionService (the
// simulator offers one) and logs out on Close.
func TestSessionAuth(t *testing.T) {
	sim := newSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := redfish.Dialer{}.Dial(context.Background(), ironpool.BMC{Address: addrOf(srv, "/redfish/v1/Systems/1"), Username: "admin", Password: "s3cret-pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Power(context.Background(), ironpool.PowerStatus); err != nil {
		t.Fatal(err)
	}
	if n := sim.Sessions(); n != 1 {
		t.Errorf("sessions open while connected = %d, want 1", n)
	}
	c.Close()
	if n := sim.Sessions(); n != 0 {
		t.Errorf("sessions after Close = %d, want 0", n)
	}
}

// TestFaults: wrong credentials, a slow BMC, a failing BMC, a missing
// system and an untrusted certificate each give their own clear error,
// none carrying the password.
func TestFaults(t *testing.T) {
	sim := newSim()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	ctx := context.Background()
	check := func(name string, err error, code, field, substr string) {
		t.Helper()
		var e *ironpool.Error
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		if ironpool.ErrorCode(err) != code || !strings.Contains(err.Error(), substr) {
			t.Errorf("%s: %v (code %s), want code %s mentioning %q", name, err, ironpool.ErrorCode(err), code, substr)
		}
		if x, ok := err.(*ironpool.Error); ok {
			e = x
		}
		if field != "" && (e == nil || e.Field != field) {
			t.Errorf("%s: field %v, want %s", name, e, field)
		}
		if strings.Contains(err.Error(), "wrong-pass-xyz") || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%s: error carries a password: %v", name, err)
		}
	}
	_, err := dial(t, addrOf(srv, "/redfish/v1/Systems/1"), "admin", "wrong-pass-xyz")
	check("wrong password", err, ironpool.EINVALID, "bmc.password", `user "admin"`)

	_, err = dial(t, addrOf(srv, "/redfish/v1/Systems/9"), "admin", "s3cret-pw")
	if err == nil {
		c, _ := dial(t, addrOf(srv, "/redfish/v1/Systems/9"), "admin", "s3cret-pw")
		_, err = c.Power(ctx, ironpool.PowerStatus)
	}
	check("missing system", err, ironpool.ENOTFOUND, "", "no such resource")

	c, err := dial(t, addrOf(srv, "/redfish/v1/Systems/1?timeout=1s"), "admin", "s3cret-pw")
	if err != nil {
		t.Fatal(err)
	}
	sim.SetDelay(3 * time.Second)
	start := time.Now()
	_, err = c.Power(ctx, ironpool.PowerOn)
	check("slow BMC", err, ironpool.EUNAVAILABLE, "", "did not answer")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("slow BMC held the caller %s; the bound was 1s", d)
	}
	sim.SetDelay(0)
	sim.SetFailure(503)
	_, err = c.Power(ctx, ironpool.PowerOn)
	check("503", err, ironpool.EUNAVAILABLE, "", "HTTP 503")
	sim.SetFailure(0)
	if st := sim.System("1"); st.PowerState != "Off" {
		t.Errorf("failed power on changed the power: %s", st.PowerState)
	}

	_, err = dial(t, "redfish+http://127.0.0.1:1/redfish/v1/Systems/1?timeout=1s", "admin", "s3cret-pw")
	check("nothing listening", err, ironpool.EUNAVAILABLE, "", "cannot be reached")
}

// TestTLS: certificates are verified by default; ?verify=false opts one
// node out; a trusted CA makes the default path work.
func TestTLS(t *testing.T) {
	sim := newSim()
	srv := httptest.NewTLSServer(sim)
	defer srv.Close()
	addr := "redfish+" + srv.URL + "/redfish/v1/Systems/1"
	_, err := dial(t, addr, "admin", "s3cret-pw")
	if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE || !strings.Contains(err.Error(), "TLS certificate is not trusted") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	if n := sim.Requests(); n != 0 {
		t.Errorf("the simulator saw %d requests through an untrusted TLS connection", n)
	}
	if _, err := dial(t, addr+"?verify=false", "admin", "s3cret-pw"); err != nil {
		t.Errorf("verify=false: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c, err := redfish.Dialer{RootCAs: pool}.Dial(context.Background(), ironpool.BMC{Address: addr, Username: "admin", Password: "s3cret-pw"})
	if err != nil {
		t.Fatalf("trusted CA: %v", err)
	}
	c.Close()
}
