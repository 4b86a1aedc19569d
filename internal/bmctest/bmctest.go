// Package bmctest starts the real BMCs the direct-BMC tests talk to:
// OpenIPMI's ipmi_sim (hack/ironic/ipmi-sim.sh, Debian's openipmi) and
// DMTF's Redfish Mockup Server serving DMTF's public mockups
// (../shared/redfish, or $IRONPOOL_REDFISH_DIR). Every one listens on
// 127.0.0.1 on a free port and is stopped, by its own PID, when the test
// ends. A part that cannot be had skips the test saying why; under CI=true
// a part that hack/test.sh installs fails it instead.
package bmctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func repoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Missing skips the test, or fails it under CI=true when installable is
// true (hack/test.sh installs the part there, so its absence is a bug).
func Missing(tb testing.TB, installable bool, format string, args ...any) {
	tb.Helper()
	why := fmt.Sprintf(format, args...)
	if installable && os.Getenv("CI") == "true" {
		tb.Fatalf("under CI=true this part must be present: %s", why)
	}
	tb.Skipf("skipped: %s", why)
}

// IPMISim is one running ipmi_sim.
type IPMISim struct {
	Host, User, Password string
	Port                 int
	Dir                  string
}

// Address is the sim's BMC address with cipher suite 3: ipmi_sim offers
// no suite 17.
func (s *IPMISim) Address() string {
	return fmt.Sprintf("ipmi://%s:%d?cipher=3", s.Host, s.Port)
}

// State reads one of the sim's state files (power, boot): what the
// simulated chassis was last told, written by the sim itself.
func (s *IPMISim) State(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, name+".state"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Ipmitool runs Debian's ipmitool against the sim (lanplus, suite 3) as a
// second client, and returns its output.
func (s *IPMISim) Ipmitool(tb testing.TB, args ...string) (string, error) {
	tb.Helper()
	base := []string{"-I", "lanplus", "-C", "3", "-H", s.Host, "-p", strconv.Itoa(s.Port), "-U", s.User, "-P", s.Password}
	out, err := exec.Command("ipmitool", append(base, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// StartIPMISim starts a private ipmi_sim with its state in a temp dir.
func StartIPMISim(tb testing.TB) *IPMISim {
	tb.Helper()
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		Missing(tb, true, "OpenIPMI's ipmi_sim is not installed (apt-get install openipmi ipmitool)")
	}
	if _, err := exec.LookPath("ipmitool"); err != nil {
		Missing(tb, true, "ipmitool is not installed (apt-get install ipmitool)")
	}
	dir := tb.TempDir()
	var lastErr error
	for range 3 { // a free port can be taken between the probe and the bind
		port, err := freeUDPPort()
		if err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command("bash", filepath.Join(repoDir(), "hack", "ironic", "ipmi-sim.sh"), "start", dir)
		cmd.Env = append(os.Environ(), "IPMI_SIM_PORT="+strconv.Itoa(port), "IPMI_SIM_USER=admin", "IPMI_SIM_PASSWORD=s3cret-pw")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			lastErr = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
			continue
		}
		f := strings.Fields(string(out))
		if len(f) != 4 {
			tb.Fatalf("ipmi-sim.sh printed %q", out)
		}
		s := &IPMISim{Host: f[0], User: f[2], Password: f[3], Port: port, Dir: dir}
		tb.Cleanup(func() {
			_ = exec.Command("bash", filepath.Join(repoDir(), "hack", "ironic", "ipmi-sim.sh"), "stop", dir).Run()
		})
		return s
	}
	tb.Fatalf("ipmi_sim did not start: %v", lastErr)
	return nil
}

// Stop stops the sim now (a BMC going away in the middle of a test).
func (s *IPMISim) Stop(tb testing.TB) {
	tb.Helper()
	_ = exec.Command("bash", filepath.Join(repoDir(), "hack", "ironic", "ipmi-sim.sh"), "stop", s.Dir).Run()
}

// Restart starts a stopped sim again on the same port and state.
func (s *IPMISim) Restart(tb testing.TB) {
	tb.Helper()
	cmd := exec.Command("bash", filepath.Join(repoDir(), "hack", "ironic", "ipmi-sim.sh"), "start", s.Dir)
	cmd.Env = append(os.Environ(), "IPMI_SIM_PORT="+strconv.Itoa(s.Port), "IPMI_SIM_USER="+s.User, "IPMI_SIM_PASSWORD="+s.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("restart ipmi_sim: %v: %s", err, out)
	}
}

// RedfishDir is where DMTF's mockup server and mockups live.
func RedfishDir() string {
	if d := os.Getenv("IRONPOOL_REDFISH_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoDir(), "..", "shared", "redfish")
}

// Mockup is one running DMTF Redfish Mockup Server.
type Mockup struct {
	// URL is the service root, http://127.0.0.1:PORT/redfish/v1.
	URL string
	// Host is 127.0.0.1:PORT.
	Host string
	// Dir holds the server's own copy of the mockup, which PATCH, POST
	// and DELETE change.
	Dir string
	pid int
}

// StartMockup serves one of DMTF's public mockups (public-rackmount1,
// public-bladed, public-composability).
func StartMockup(tb testing.TB, mockup string) *Mockup {
	tb.Helper()
	start := filepath.Join(RedfishDir(), "start.sh")
	if _, err := os.Stat(start); err != nil {
		Missing(tb, false, "DMTF's Redfish Mockup Server is not at %s (set IRONPOOL_REDFISH_DIR)", RedfishDir())
	}
	if _, err := exec.LookPath("python3"); err != nil {
		Missing(tb, true, "python3 is not installed")
	}
	dir := tb.TempDir()
	var stderr bytes.Buffer
	cmd := exec.Command("bash", start, dir, mockup)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	pid := readPID(filepath.Join(dir, "redfish.pid"))
	m := &Mockup{Dir: filepath.Join(dir, "mockup"), pid: pid}
	tb.Cleanup(func() { m.Stop() })
	if err != nil {
		tb.Fatalf("mockup server %s did not start: %v: %s", mockup, err, stderr.String())
	}
	m.URL = strings.TrimSpace(string(out))
	m.Host = strings.TrimSuffix(strings.TrimPrefix(m.URL, "http://"), "/redfish/v1")
	return m
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// Stop ends the mockup server by its own PID.
func (m *Mockup) Stop() {
	if m.pid <= 0 {
		return
	}
	_ = syscall.Kill(m.pid, syscall.SIGTERM)
	for range 40 {
		if syscall.Kill(m.pid, 0) != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.pid = 0
}
