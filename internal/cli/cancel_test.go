package cli_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
	"github.com/ironpool/ironpool/internal/service"
)

// startGrace runs a real server whose queued requests need a waiter seen
// within grace.
func startGrace(t *testing.T, grace time.Duration) *env {
	t.Helper()
	return &env{t: t, m: servertest.Start(t, &server.Main{Pool: service.Config{WaiterGrace: grace}})}
}

// queueWaiter starts the real binary waiting for a large node (all held)
// and returns once it says it is queued.
func (e *env) queueWaiter(owner, wait string) *script {
	e.t.Helper()
	s := e.sh(e.t.TempDir(), "exec ironpool allocate --owner "+owner+" --flavor large=1 --wait "+wait)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.stderr.String(), "queued as") {
		if time.Now().After(deadline) || s.cmd.ProcessState != nil {
			e.t.Fatalf("never queued: %s", s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

type allocView struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Owner     string `json:"owner"`
	LastError string `json:"last_error"`
}

func (e *env) allocsOf(owner string) []allocView {
	var out struct{ Allocations []allocView }
	e.jsonOf(&out, "allocation", "list", "--owner", owner, "--all")
	return out.Allocations
}

// TestKilledWaiterCancelled: a CLI killed with SIGKILL cannot cancel its
// request; the server does, once no client has waited on it for the grace
// period, and the freed node does not go to it.
func TestKilledWaiterCancelled(t *testing.T) {
	e := startGrace(t, time.Second)
	e.seed()
	var holder struct{ ID string }
	e.jsonOf(&holder, "allocate", "--owner", "holder", "--flavor", "large=6")
	s := e.queueWaiter("killed", "10m")
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
	s.wait(t, 10*time.Second)

	deadline := time.Now().Add(10 * time.Second)
	for {
		als := e.allocsOf("killed")
		if len(als) == 1 && als[0].State == "failed" {
			if !strings.Contains(als[0].LastError, "no client waited") {
				t.Errorf("last_error %q", als[0].LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed waiter's request is still %+v after the grace period", als)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.ok("release", holder.ID)
	time.Sleep(300 * time.Millisecond)
	if got := count(e.nodes("--owner", "killed"), "allocated"); got != 0 {
		t.Errorf("the cancelled request was served %d nodes", got)
	}
	var st struct{ Queued int }
	e.jsonOf(&st, "status")
	if st.Queued != 0 {
		t.Errorf("%d requests still queued", st.Queued)
	}
}

// TestLiveWaiterOutlivesGrace: a CLI that keeps long-polling renews its
// request, however long it waits.
func TestLiveWaiterOutlivesGrace(t *testing.T) {
	e := startGrace(t, time.Second)
	e.seed()
	var holder struct{ ID string }
	e.jsonOf(&holder, "allocate", "--owner", "holder", "--flavor", "large=6")
	s := e.queueWaiter("patient", "1m")
	time.Sleep(3 * time.Second) // three grace periods
	if als := e.allocsOf("patient"); len(als) != 1 || als[0].State != "queued" {
		t.Fatalf("a live waiter's request is %+v", als)
	}
	e.ok("release", holder.ID)
	if code := s.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("waiter exit %d: %s", code, s.stderr.String())
	}
	if !strings.Contains(s.stdout.String(), "patient") {
		t.Errorf("waiter output lacks its allocation:\n%s", s.stdout.String())
	}
}

// TestReleaseRetriesAcrossRestart: release is idempotent, so it retries a
// connection error; a post-hook running while the server restarts still
// gives the nodes back.
func TestReleaseRetriesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	m := servertest.Start(t, &server.Main{DataDir: dir})
	e := &env{t: t, m: m}
	e.seed()
	var a struct{ ID string }
	e.jsonOf(&a, "allocate", "--owner", "job", "--flavor", "small=2")
	addr, tok := m.Addr, m.AdminToken
	m.Close()

	done := make(chan [3]string, 1)
	go func() {
		out, stderr, code := runWith(map[string]string{"IRONPOOL_URL": "http://" + addr, "IRONPOOL_TOKEN": tok}, "release", a.ID, "--retry-for", "20s")
		done <- [3]string{out, stderr, strconv.Itoa(code)}
	}()
	time.Sleep(700 * time.Millisecond)
	m2 := servertest.Start(t, &server.Main{DataDir: dir, Listen: addr})
	e2 := &env{t: t, m: m2}
	e2.m.AdminToken = tok
	select {
	case r := <-done:
		if r[2] != "0" {
			t.Fatalf("release across a restart: exit %s: %s", r[2], r[1])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("release did not return")
	}
	if got := count(e2.nodes(), "allocated"); got != 0 {
		t.Fatalf("allocated after release = %d", got)
	}
}

// serveProc is a real `ironpool serve` process.
type serveProc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
}

func startServe(t *testing.T, dir, addr string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(filepath.Join(binary(t), "ironpool"), "serve", "--listen", addr, "--data-dir", dir)}
	p.cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin"}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerSIGTERMWithWaiters: SIGTERM to a server with a long-poll open
// ends it at once with a retryable answer and exits 0 within seconds (it
// used to take 5-7 s and exit 10); the waiting CLI reconnects to the
// restarted server, keeps its place and is served.
func TestServerSIGTERMWithWaiters(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := startServe(t, dir, addr)
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, m: &server.Main{Addr: addr, AdminToken: strings.TrimSpace(string(tok))}}
	e.seed()
	var holder struct{ ID string }
	e.jsonOf(&holder, "allocate", "--owner", "holder", "--flavor", "large=6")
	w := e.queueWaiter("survivor", "2m")
	time.Sleep(300 * time.Millisecond) // into the long-poll

	start := time.Now()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	err = srv.cmd.Wait()
	took := time.Since(start)
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("serve exit %d after SIGTERM (%v): %s", code, err, srv.stderr.String())
	}
	if took > 3*time.Second {
		t.Errorf("serve took %s to stop with a waiter", took)
	}
	time.Sleep(500 * time.Millisecond)
	if w.cmd.ProcessState != nil {
		t.Fatalf("the waiter gave up when the server stopped: %s", w.stderr.String())
	}

	startServe(t, dir, addr)
	e.ok("release", holder.ID)
	if code := w.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("waiter exit %d after the restart: %s", code, w.stderr.String())
	}
	if !strings.Contains(w.stderr.String(), "reconnect") {
		t.Errorf("waiter did not say it reconnected: %s", w.stderr.String())
	}
	if got := count(e.nodes("--owner", "survivor"), "allocated"); got != 1 {
		t.Errorf("survivor holds %d nodes, want 1", got)
	}
}
