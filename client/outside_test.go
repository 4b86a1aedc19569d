package client_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/servertest"
)

// TestOutsideModule builds the example program of docs/CLIENT.md as a
// module of its own — the way a Terraform provider or CI plugin would use
// ironpool, with a replace directive — and runs it against a real server:
// it must compile against the public client (not internal/) and allocate
// and release through it.
func TestOutsideModule(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile("testdata/outside/main.go")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("testdata/outside/go.mod.in")
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "go.mod"), bytes.ReplaceAll(mod, []byte("REPO"), []byte(repo)), 0o644))
	bin := filepath.Join(dir, "ci-plugin")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("an outside module does not build against the public client: %v\n%s", err, out)
	}

	m := servertest.Start(t, nil)
	c, err := client.New(m.URL(), m.AdminToken, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n1", "n2"} {
		if _, err := c.CreateNode(t.Context(), &ironpool.Node{Name: name, CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://127.0.0.1:6230"}}); err != nil {
			t.Fatal(err)
		}
	}
	run := exec.Command(bin)
	run.Env = append(os.Environ(), "IRONPOOL_URL="+m.URL(), "IRONPOOL_TOKEN="+m.AdminToken)
	out, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "allocated ") || !strings.Contains(string(out), ": 2 nodes") || !strings.Contains(string(out), "released ") {
		t.Fatalf("outside program: %v\n%s", err, out)
	}
	// And a refusal reaches it as a typed error with the shortfall.
	if _, err := c.CreateNode(t.Context(), &ironpool.Node{Name: "n3", CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://127.0.0.1:6231"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		if _, err := c.Do(t.Context(), "PUT", "/v1/nodes/"+name+"/maintenance", map[string]any{"reason": "test"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	run = exec.Command(bin)
	run.Env = append(os.Environ(), "IRONPOOL_URL="+m.URL(), "IRONPOOL_TOKEN="+m.AdminToken)
	out, err = run.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "refused: ") {
		t.Fatalf("outside program on a pool with no free node: %v\n%s\nwant exit 3 from the typed capacity error", err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
