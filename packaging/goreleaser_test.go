package packaging_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// goreleaser is the release tool the check runs, fetched by `go run` from
// the Go module proxy at this exact version (the newest that builds with
// this Go and the modules the proxy serves here).
const goreleaser = "github.com/goreleaser/goreleaser/v2@v2.15.1"

type goreleaserConfig struct {
	Version int `yaml:"version"`
	Builds  []struct {
		Main    string   `yaml:"main"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Nfpms []struct {
		Formats  []string       `yaml:"formats"`
		License  string         `yaml:"license"`
		Contents []nfpmContents `yaml:"contents"`
	} `yaml:"nfpms"`
	Checksum struct {
		Name string `yaml:"name_template"`
	} `yaml:"checksum"`
}

type nfpmContents struct {
	Src  string `yaml:"src"`
	Dst  string `yaml:"dst"`
	Type string `yaml:"type"`
}

// ldflagsMap reads "-s -w -X k=v …" into its -X settings; plain flags map
// to themselves.
func ldflagsMap(s string) map[string]string {
	out := map[string]string{}
	f := strings.Fields(s)
	for i := 0; i < len(f); i++ {
		if f[i] == "-X" && i+1 < len(f) {
			k, v, _ := strings.Cut(f[i+1], "=")
			out[k] = v
			i++
			continue
		}
		out[f[i]] = f[i]
	}
	return out
}

// TestGoreleaserConfig checks .goreleaser.yaml: its structure here (static
// linux amd64 and arm64 builds, the ldflags hack/ldflags.sh gives
// hack/package.sh and hack/image.sh with goreleaser's templates for the
// values, a .deb with the same contents as packaging/nfpm.yaml, checksums),
// then `goreleaser check` itself (IRONPOOL_GORELEASER names a binary;
// otherwise `go run` builds the pinned version, which -short skips).
func TestGoreleaserConfig(t *testing.T) {
	data, err := os.ReadFile("../.goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg goreleaserConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != 2 || len(cfg.Builds) != 1 || len(cfg.Nfpms) != 1 {
		t.Fatalf("want version 2, one build and one nfpm: %+v", cfg)
	}
	b := cfg.Builds[0]
	if b.Main != "./cmd/ironpool" || !slices.Contains(b.Env, "CGO_ENABLED=0") ||
		!slices.Equal(b.Goos, []string{"linux"}) || !slices.Equal(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("build: %+v, want a static ./cmd/ironpool for linux amd64 and arm64", b)
	}
	out, err := exec.Command("bash", "../hack/ldflags.sh", "VERSION").Output()
	if err != nil {
		t.Fatalf("hack/ldflags.sh: %v", err)
	}
	script := ldflagsMap(string(out))
	if len(b.Ldflags) != 1 {
		t.Fatalf("ldflags: %q, want one line", b.Ldflags)
	}
	release := ldflagsMap(b.Ldflags[0])
	const pkg = "github.com/ironpool/ironpool/internal/buildinfo."
	templates := map[string]string{pkg + "Version": "{{.Version}}", pkg + "Commit": "{{.FullCommit}}", pkg + "Date": "{{.CommitDate}}"}
	if len(script) != len(release) {
		t.Errorf("ldflags differ: hack/ldflags.sh %v, .goreleaser.yaml %v", script, release)
	}
	for k, v := range script {
		want := v
		if tmpl, ok := templates[k]; ok {
			want = tmpl
		}
		if got, ok := release[k]; !ok || got != want {
			t.Errorf("ldflag %s: .goreleaser.yaml has %q, want %q (hack/ldflags.sh sets %q)", k, got, want, v)
		}
	}
	if script[pkg+"Version"] != "VERSION" {
		t.Errorf("hack/ldflags.sh does not stamp the version: %v", script)
	}
	n := cfg.Nfpms[0]
	if !slices.Equal(n.Formats, []string{"deb"}) || n.License != "Apache-2.0" {
		t.Errorf("nfpm: formats %v licence %q, want deb, Apache-2.0", n.Formats, n.License)
	}
	var deb struct {
		License  string         `yaml:"license"`
		Contents []nfpmContents `yaml:"contents"`
	}
	raw, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &deb); err != nil {
		t.Fatal(err)
	}
	if deb.License != n.License {
		t.Errorf("licence: nfpm.yaml %q, .goreleaser.yaml %q", deb.License, n.License)
	}
	for _, c := range deb.Contents {
		if c.Dst == "/usr/bin/ironpool" {
			continue // goreleaser adds its build under bindir
		}
		if !slices.Contains(n.Contents, c) {
			t.Errorf(".goreleaser.yaml's .deb lacks %+v from packaging/nfpm.yaml", c)
		}
	}
	if cfg.Checksum.Name == "" {
		t.Error("no checksum file")
	}

	bin := os.Getenv("IRONPOOL_GORELEASER")
	args := []string{"check"}
	if bin == "" {
		if testing.Short() {
			t.Skip("skipped: -short (goreleaser check fetches and builds goreleaser; the structure above was checked)")
		}
		bin, args = "go", []string{"run", goreleaser, "check"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if res, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(res), "1 configuration file(s) validated") {
		t.Errorf("goreleaser check: %v\n%s", err, res)
	}
}
