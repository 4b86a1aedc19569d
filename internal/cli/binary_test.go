package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this file drive the real ironpool binary from real shell
// scripts, the way a CI hook does: signals, exit codes under `set -e`, and
// file modes only show there.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binary builds cmd/ironpool once per test run and returns the directory
// holding it, to be put first in PATH.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ironpool-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "ironpool"), "github.com/ironpool/ironpool/cmd/ironpool")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			buildErr = &buildError{err, out.String()}
		}
	})
	if buildErr != nil {
		t.Fatalf("build ironpool: %v", buildErr)
	}
	return binDir
}

// TestMain removes the built binary after the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// script is a shell script run against e's server with the real binary
// first in PATH.
type script struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sh starts bash -c body (not waiting for it) in dir with the server's URL
// and token in the environment.
func (e *env) sh(dir, body string, extraEnv ...string) *script {
	e.t.Helper()
	bin := binary(e.t)
	return e.shEnv(dir, body, append([]string{"PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + dir,
		"IRONPOOL_URL=" + e.m.URL(), "IRONPOOL_TOKEN=" + e.m.AdminToken, "IRONPOOL_DATA_DIR=" + dir}, extraEnv...))
}

// shEnv starts bash -c body in dir with exactly envv.
func (e *env) shEnv(dir, body string, envv []string) *script {
	e.t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		e.t.Skip("skipped: bash is not installed")
	}
	s := &script{cmd: exec.Command("bash", "-c", body)}
	s.cmd.Dir = dir
	s.cmd.Env = envv
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	// Its own process group, so a signal reaches the script's children the
	// way a CI runner's does, and the test can end the whole group.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			s.cmd.Wait()
		}
	})
	return s
}

// wait waits for the script and returns its exit code.
func (s *script) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("script still running after %s\nstdout: %s\nstderr: %s", limit, s.stdout.String(), s.stderr.String())
	}
	return s.cmd.ProcessState.ExitCode()
}

// runSh runs a script to its end and returns its exit code.
func (e *env) runSh(body string, extraEnv ...string) (*script, int) {
	e.t.Helper()
	s := e.sh(e.t.TempDir(), body, extraEnv...)
	return s, s.wait(e.t, time.Minute)
}

// TestHookStopsOnRefusal: the hook forms the docs give stop a `set -e`
// script when the allocation is refused, and pass exported variables to the
// commands the job runs when it succeeds. The form the README used to show,
// eval "$(ironpool allocate …)", went on with empty variables and rc 0.
func TestHookStopsOnRefusal(t *testing.T) {
	e := start(t)
	e.seed()
	forms := map[string]string{
		"SubshellOrExit": `set -e
out=$(ironpool allocate --owner job-1 --flavor large=100 -o env) || exit
eval "$out"
echo REACHED`,
		"EnvFile": `set -e
ironpool allocate --owner job-1 --flavor large=100 --env-file ironpool.env
. ./ironpool.env
echo REACHED`,
	}
	for name, body := range forms {
		t.Run(name, func(t *testing.T) {
			s, code := e.runSh(body)
			if code != 3 {
				t.Errorf("exit %d, want 3 (refused)\nstderr: %s", code, s.stderr.String())
			}
			if strings.Contains(s.stdout.String(), "REACHED") {
				t.Errorf("the script went on after a refused allocation")
			}
			if !strings.Contains(s.stderr.String(), "large: asked 100") {
				t.Errorf("stderr lacks the shortfall: %s", s.stderr.String())
			}
		})
	}
	if got := count(e.nodes(), "allocated"); got != 0 {
		t.Fatalf("allocated = %d after refusals", got)
	}

	// The same forms on success: the variables reach a child process.
	s, code := e.runSh(`set -e
out=$(ironpool allocate --owner job-2 --flavor small=2 -o env) || exit
eval "$out"
sh -c 'echo "child sees $IRONPOOL_NODE_COUNT nodes: $IRONPOOL_NODES"'
ironpool allocate --owner job-3 --flavor small=1 --env-file ironpool.env > log.txt
. ./ironpool.env
sh -c 'echo "child sees $IRONPOOL_NODE_COUNT node: $IRONPOOL_NODE_0_NAME"'
if grep -q s3cret-bmc log.txt; then echo "PASSWORD IN LOG"; fi
stat -c %a ironpool.env`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr.String())
	}
	out := s.stdout.String()
	for _, want := range []string{"child sees 2 nodes: n", "child sees 1 node: n", "600\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PASSWORD IN LOG") {
		t.Errorf("the table in the job log shows the BMC password")
	}
}
