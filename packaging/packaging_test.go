// Package packaging_test checks the recipes in packaging/ with the real
// tools: systemd-analyze for the unit, nfpm and dpkg for the .deb, buildah
// for the container image. Each test skips, saying why, when its tool is
// missing.
package packaging_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testVersion = "9.8.7-pkgtest"

// binDir holds the binary staticBinary builds; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// staticBinary builds ironpool once for the tests the way the scripts do
// (CGO_ENABLED=0, version stamped by -X), without -trimpath so that the
// build cache of the rest of the suite is reused.
var staticBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ironpool-pkgtest-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "ironpool")
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/ironpool/ironpool/internal/buildinfo.Version="+testVersion, "-o", bin, "../cmd/ironpool")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func binary(t *testing.T) string {
	t.Helper()
	bin, err := staticBinary()
	if err != nil {
		t.Fatalf("build ironpool: %v", err)
	}
	return bin
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSystemdUnit verifies the unit with systemd-analyze (no warning
// allowed), checks the hardening directives are there, and that systemd's
// own exposure score stays at "OK" (2.0 or below out of 10).
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("skipped: systemd-analyze not installed (Debian package systemd)")
	}
	unit, err := os.ReadFile("ironpool.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"User=ironpool", "StateDirectory=ironpool", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"ProtectHome=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
		"ExecStart=/usr/bin/ironpool serve --config /etc/ironpool/config.yaml"} {
		if !strings.Contains(string(unit), d) {
			t.Errorf("ironpool.service lacks %q", strings.TrimSpace(d))
		}
	}
	// verify checks that ExecStart's program exists; point it at one that
	// does (this test's own executable) and keep every other line.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ironpool.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/bin/ironpool", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", "verify", path)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	sec, err := exec.Command("systemd-analyze", "security", "--offline=yes", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, sec)
	}
	m := regexp.MustCompile(`Overall exposure level for ironpool.service: ([0-9.]+)`).FindSubmatch(sec)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", sec)
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v > 2.0 {
		t.Errorf("exposure level %s, want 2.0 or below:\n%s", m[1], sec)
	}
}

// TestDeb builds the .deb with hack/package.sh (nfpm from the Go proxy),
// unpacks it into a scratch root with dpkg -x, runs the packaged binary's
// `version`, and starts the packaged binary on the packaged config until
// /readyz answers 200.
func TestDeb(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed", tool)
		}
	}
	bin := binary(t)
	out := t.TempDir()
	run(t, "..", []string{"IRONPOOL_VERSION=" + testVersion, "IRONPOOL_BINARY=" + bin}, "bash", "hack/package.sh", out)
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("hack/package.sh made %v, want one .deb", debs)
	}
	info := run(t, "", nil, "dpkg-deb", "--field", debs[0], "Package", "Version")
	if !strings.Contains(info, "Package: ironpool") || !strings.Contains(info, "Version: "+testVersion) {
		t.Errorf("package fields:\n%s", info)
	}
	root := t.TempDir()
	run(t, "", nil, "dpkg", "-x", debs[0], root)
	for _, f := range []string{"usr/bin/ironpool", "usr/lib/systemd/system/ironpool.service", "etc/ironpool/config.yaml",
		"etc/default/ironpool", "usr/share/doc/ironpool/CONFIG.md", "usr/share/doc/ironpool/copyright"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the package lacks /%s", f)
		}
	}
	// A .deb has no licence field: Debian's place is the copyright file.
	if c, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/ironpool/copyright")); !strings.Contains(string(c), "Apache License") {
		t.Errorf("/usr/share/doc/ironpool/copyright does not hold the Apache licence")
	}
	pkgBin := filepath.Join(root, "usr/bin/ironpool")
	if v := run(t, "", nil, pkgBin, "version"); !strings.Contains(v, "ironpool "+testVersion) {
		t.Errorf("packaged ironpool version = %q, want it to name %s", v, testVersion)
	}

	// The packaged config is valid: the packaged binary serves with it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pkgBin, "serve", "--config", filepath.Join(root, "etc/ironpool/config.yaml"),
		"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	url := ""
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "ironpool serving on "); ok {
			url, _, _ = strings.Cut(u, " ")
			break
		}
	}
	if url == "" {
		t.Fatal("the packaged server did not start with the packaged config")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the packaged server never became ready at %s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestImage builds the container image with buildah (hack/image.sh, no
// pull: FROM scratch) and checks it runs as the non-root user with the
// state volume, and that `ironpool version` runs inside it.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("skipped: buildah not installed (Debian package buildah)")
	}
	store := t.TempDir()
	flags := []string{"--storage-driver", "vfs", "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run")}
	if out, err := exec.Command("buildah", append(flags, "info")...).CombinedOutput(); err != nil {
		t.Skipf("skipped: buildah cannot run here: %v: %.300s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("buildah", append(flags, "rmi", "--all", "--force")...).Run()
		// vfs layers are plain directories; the temp dir removal takes them.
	})
	bin := binary(t)
	const tag = "localhost/ironpool:pkgtest"
	run(t, "..", []string{"IRONPOOL_BINARY=" + bin, "BUILDAH_FLAGS=" + strings.Join(flags, " ")}, "bash", "hack/image.sh", tag)
	cfg := run(t, "", nil, "buildah", append(flags, "inspect", "--type", "image", "--format",
		"{{.OCIv1.Config.User}}|{{.OCIv1.Config.Volumes}}|{{.OCIv1.Config.Entrypoint}}", tag)...)
	if want := "65532:65532|map[/var/lib/ironpool:{}]|[/usr/bin/ironpool]"; strings.TrimSpace(cfg) != want {
		t.Errorf("image config %q, want %q", strings.TrimSpace(cfg), want)
	}
	ctr := strings.TrimSpace(run(t, "", nil, "buildah", append(flags, "from", "--pull=never", tag)...))
	out, err := exec.Command("buildah", append(flags, "run", "--isolation", "chroot", ctr, "--", "/usr/bin/ironpool", "version")...).CombinedOutput()
	if err != nil {
		t.Skipf("skipped running inside the image (build and config were checked): buildah run: %v: %.300s", err, out)
	}
	if !strings.Contains(string(out), "ironpool "+testVersion) {
		t.Errorf("version inside the image: %q", out)
	}
}
