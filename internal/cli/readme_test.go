package cli_test

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// section returns the body of the first fenced block of kind (sh, yaml)
// after heading in README.
func readmeBlock(t *testing.T, heading, kind string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q", heading)
	}
	_, rest, ok = strings.Cut(rest, "```"+kind+"\n")
	if !ok {
		t.Fatalf("README's %s has no %s block", heading, kind)
	}
	body, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README's %s block is not closed", heading)
	}
	return body
}

// TestReadmeQuickStart runs README's Quick start line by line, as written,
// against a real server that its first line starts, with the nodes.yaml of
// README's "Node files" section. It fails when the README stops working.
func TestReadmeQuickStart(t *testing.T) {
	bin := binary(t)
	lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(readmeBlock(t, "## Quick start", "sh"), "\\\n", " ")), "\n")
	if !strings.HasPrefix(lines[0], "ironpool serve &") {
		t.Fatalf("Quick start does not start with `ironpool serve &`: %q", lines[0])
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nodes.yaml"), []byte(readmeBlock(t, "## Node files", "yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A fresh HOME: the server creates its data dir and admin token there,
	// and the CLI finds the token by itself, as on a new machine.
	envv := []string{"PATH=" + bin + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "IRONPOOL_LISTEN=" + addr, "IRONPOOL_URL=http://" + addr}
	e := &env{t: t}
	serve := e.shEnv(dir, lines[0]+"\nwait", envv)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Quick start's server did not come up: %s", serve.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := e.shEnv(dir, "set -eu\n"+strings.Join(lines[1:], "\n")+"\nironpool node list --state allocated -o json", envv)
	if code := s.wait(t, time.Minute); code != 0 {
		t.Fatalf("Quick start failed (exit %d):\nstdout: %s\nstderr: %s", code, s.stdout.String(), s.stderr.String())
	}
	out := s.stdout.String()
	if !strings.Contains(out, "ipmi://127.0.0.1") && !strings.Contains(out, "redfish") {
		t.Errorf("the echo line printed no BMC address:\n%s", out)
	}
	if !strings.Contains(out, `"nodes": []`) {
		t.Errorf("nodes still allocated after the release:\n%s", out)
	}
	// The group's SIGTERM ends bash too; what matters is that the server
	// shut down cleanly.
	syscall.Kill(-serve.cmd.Process.Pid, syscall.SIGTERM)
	serve.wait(t, 10*time.Second)
	if log := serve.stderr.String(); !strings.Contains(log, "shutting down") || strings.Contains(log, "level=ERROR") {
		t.Errorf("the Quick start's server did not stop cleanly on SIGTERM:\n%s", log)
	}
}
