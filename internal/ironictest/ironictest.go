// Package ironictest starts real, private Ironic instances for integration
// tests (hack/ironic/start.sh: Debian's Ironic 21.4, one process, SQLite,
// noauth) and fills them with fake-hardware nodes, so every package that
// tests against Ironic skips, fails under CI, and cleans up the same way.
package ironictest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ironic"
)

// Instance is one running Ironic owned by a test.
type Instance struct {
	URL  string
	Dir  string
	Port int
	env  []string
}

func hackDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "hack", "ironic")
}

// Unavailable skips the test with the reason, or fails it under CI=true,
// where the real thing must be exercised.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("real Ironic unavailable under CI=true: %v", err)
	}
	tb.Skipf("skipped: real Ironic unavailable: %v", err)
}

// Start runs a private Ironic on a free port (installing it with apt when
// allowed) and stops it, purging its state, when the test ends; the state
// is kept when the test failed, for its logs. env adds knobs such as
// IRONIC_FAKE_DELAY=1.
func Start(tb testing.TB, env ...string) *Instance {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		Unavailable(tb, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "ironpool-ironic-")
	if err != nil {
		tb.Fatal(err)
	}
	in := &Instance{Dir: dir, Port: port, env: append([]string{"IRONIC_PORT=" + strconv.Itoa(port), "IRONIC_START_TIMEOUT=240"}, env...)}
	if err := in.start(); err != nil {
		os.RemoveAll(dir)
		Unavailable(tb, err)
	}
	tb.Cleanup(func() {
		args := []string{filepath.Join(hackDir(), "stop.sh"), dir}
		if !tb.Failed() {
			args = append(args, "--purge")
		} else {
			tb.Logf("Ironic state and logs kept in %s", dir)
		}
		_ = exec.Command("bash", args...).Run()
	})
	return in
}

var installMu sync.Mutex

func (in *Instance) start() error {
	installMu.Lock() // one apt-get at a time
	defer installMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(hackDir(), "start.sh"), in.Dir)
	cmd.Env = append(os.Environ(), in.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		return fmt.Errorf("start.sh: %v: %s", err, strings.Join(lines[max(0, len(lines)-5):], " | "))
	}
	in.URL = strings.TrimSpace(out.String())
	return nil
}

// Kill stops Ironic with SIGKILL, as a crash would: nothing is flushed or
// handed over.
func (in *Instance) Kill(tb testing.TB) {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(in.Dir, "ironic.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	os.Remove(filepath.Join(in.Dir, "ironic.pid"))
}

// Restart starts Ironic again on the same port and database.
func (in *Instance) Restart(tb testing.TB) {
	tb.Helper()
	if err := in.start(); err != nil {
		tb.Fatal(err)
	}
}

// Connect returns a client for the instance that registers nodes with the
// fake-hardware driver, so the real state machine runs without BMCs.
func (in *Instance) Connect(tb testing.TB) *ironic.Client {
	tb.Helper()
	c, err := ironic.Connect(context.Background(), ironic.Config{URL: in.URL, DriverOverride: ironic.FakeDriver,
		Timeout: 30 * time.Second, WaitTimeout: 2 * time.Minute, PageSize: 7})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Spec is a test node. State is "available" (default), "manageable", or
// "adopted" (active without an instance: what `node manageable` lists).
type Spec struct {
	Name          string
	ResourceClass string
	CPUs          int
	MACs          []string
	State         string
}

// MakeNodes creates fake-hardware nodes in parallel the way an operator
// would (driver_info with an ipmi address, one port per MAC, manage,
// provide) and returns their Ironic UUIDs in order.
func MakeNodes(tb testing.TB, c *ironic.Client, specs []Spec) []string {
	tb.Helper()
	uuids := make([]string, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range specs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx := context.Background()
			n := &ironpool.Node{Name: s.Name, CPUs: s.CPUs, MemoryMB: int64(1024 * s.CPUs), LocalGB: int64(10 * s.CPUs),
				CPUArch: "x86_64", ResourceClass: s.ResourceClass, MACs: s.MACs,
				BMC: ironpool.BMC{Address: fmt.Sprintf("ipmi://10.9.%d.%d:623", i/250, i%250+1), Username: "admin", Password: "secret"}}
			uuids[i], errs[i] = c.Register(ctx, n)
			if errs[i] != nil || s.State == "" || s.State == "available" {
				return
			}
			if errs[i] = c.Manage(ctx, uuids[i]); errs[i] != nil || s.State == "manageable" {
				return
			}
			errs[i] = c.Adopt(ctx, uuids[i])
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("making Ironic node %s: %v", specs[i].Name, err)
		}
	}
	return uuids
}
