package cli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/cli"
)

// TestFlagMistakesChangeNothing: every command that changes state checks
// every flag, -o included, before it sends anything. On the old code
// `allocate … -o enf` committed the allocation and then refused to print
// it: the nodes stayed held for the default lease and the job never learnt
// the id.
func TestFlagMistakesChangeNothing(t *testing.T) {
	e := start(t)
	e.seed()
	var a struct{ ID string }
	e.jsonOf(&a, "allocate", "--owner", "held", "--flavor", "small=1")
	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir", "ironpool.env")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"AllocateOutputTypo", []string{"allocate", "--owner", "typo", "--constraint", "cpus>=1", "-o", "enf"}, 2, `output: "enf"`},
		{"AllocateDryRunHandoffFormat", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--dry-run", "-o", "env"}, 2, `output: "env"`},
		{"AllocateEnvFileMissingDir", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--env-file", missingDir}, 2, "env-file: cannot write"},
		{"AllocateEnvFileIsDir", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--env-file", t.TempDir()}, 2, "env-file:"},
		{"AllocateTTLZero", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--ttl", "0s"}, 2, "ttl: must be positive"},
		{"AllocateTTLZeroDays", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--ttl", "0d"}, 2, "ttl: must be positive"},
		{"AllocateWaitZero", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--wait", "0"}, 2, "wait: must be positive"},
		{"AllocateBadMode", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--mode", "borrow"}, 2, `mode: "borrow" is not a checkout mode`},
		{"AllocateBadOwner", []string{"allocate", "--owner", "bad owner!", "--flavor", "small=1"}, 2, "owner:"},
		{"AllocateBadMetadata", []string{"allocate", "--owner", "x", "--flavor", "small=1", "--metadata", "novalue"}, 2, "metadata:"},
		{"NodeAddOutputTypo", []string{"node", "add", "fresh", "--bmc", "ipmi://127.0.0.1", "-o", "jsno"}, 2, `output: "jsno"`},
		{"FlavorCreateOutputTypo", []string{"flavor", "create", "fresh", "--cpus", "1", "-o", "ymal"}, 2, `output: "ymal"`},
		{"ReleaseOutputTypo", []string{"release", a.ID, "-o", "env"}, 2, `output: "env"`},
		{"ReleaseBadOwner", []string{"release", "--owner", "held", "--owner", "no good"}, 2, "owner[1]:"},
		{"ExtendOutputTypo", []string{"allocation", "extend", a.ID, "--ttl", "1h", "-o", "enf"}, 2, `output: "enf"`},
		{"ExtendTTLZero", []string{"allocation", "extend", a.ID, "--ttl", "0s"}, 2, "ttl: must be positive"},
		{"TokenCreateOutputTypo", []string{"token", "create", "--role", "user", "--owner", "x", "-o", "txt"}, 2, `output: "txt"`},
		{"NodeDeleteOutputTypo", []string{"node", "delete", "n05", "-o", "enf"}, 2, `output: "enf"`},
		{"MaintenanceOutputTypo", []string{"node", "maintenance", "n05", "on", "--reason", "x", "-o", "enf"}, 2, `output: "enf"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (%s)", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q lacks %q", stderr, c.want)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("state changed:\n%s\n%s", before, after)
			}
		})
	}
	if got := count(e.nodes(), "allocated"); got != 1 {
		t.Fatalf("allocated nodes = %d, want 1 (only the allocation made on purpose)", got)
	}
}

// brokenPipe is a stdout whose reader went away: a real pipe closed early
// behaves the same way in the binary, where the CLI catches SIGPIPE.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestHandoffWriteFailureReleases: when the server granted the nodes but the
// CLI cannot hand them over, it releases them and says so; nothing is left
// held by an allocation nobody knows about.
func TestHandoffWriteFailureReleases(t *testing.T) {
	e := start(t)
	e.seed()
	var errb bytes.Buffer
	vars := map[string]string{"IRONPOOL_URL": e.m.URL(), "IRONPOOL_TOKEN": e.m.AdminToken, "IRONPOOL_DATA_DIR": t.TempDir()}
	code := cli.Run(context.Background(), []string{"allocate", "--owner", "job-1", "--flavor", "small=2", "-o", "env"},
		cli.Env{Stdin: strings.NewReader(""), Stdout: brokenPipe{}, Stderr: &errb, Getenv: func(k string) string { return vars[k] }})
	if code == 0 {
		t.Fatalf("exit 0 with a broken stdout")
	}
	if !strings.Contains(errb.String(), "could not write the handoff") || !strings.Contains(errb.String(), "released allocation") {
		t.Errorf("stderr does not say the allocation was released: %s", errb.String())
	}
	if got := count(e.nodes(), "allocated"); got != 0 {
		t.Fatalf("allocated nodes after a failed handoff = %d, want 0", got)
	}
	var live struct{ Allocations []struct{ ID string } }
	e.jsonOf(&live, "allocation", "list", "--owner", "job-1")
	if len(live.Allocations) != 0 {
		t.Fatalf("live allocations left: %+v", live.Allocations)
	}
}

// TestEnvFile: --env-file is written whole with mode 0600, holds the
// secrets, while stdout (the job log) shows the masked table.
func TestEnvFile(t *testing.T) {
	e := start(t)
	e.seed()
	file := filepath.Join(t.TempDir(), "ironpool.env")
	out := e.ok("allocate", "--owner", "job-2", "--flavor", "small=1", "--env-file", file)
	if strings.Contains(out, "s3cret-bmc") {
		t.Errorf("table output shows the BMC password:\n%s", out)
	}
	if !strings.Contains(out, "******") {
		t.Errorf("table output does not mask the password:\n%s", out)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "export IRONPOOL_NODE_0_BMC_PASSWORD='s3cret-bmc'") {
		t.Errorf("env file lacks the password export:\n%s", b)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".ironpool.env.tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if got := e.ok("allocate", "--owner", "job-3", "--flavor", "small=1", "--show-secrets"); !strings.Contains(got, "s3cret-bmc") {
		t.Errorf("--show-secrets table lacks the password:\n%s", got)
	}

	dot := filepath.Join(t.TempDir(), "build.env")
	logged := e.ok("allocate", "--owner", "job-4", "--flavor", "small=1", "-o", "dotenv", "--env-file", dot, "--metadata", "job_url=https://ci/4")
	if strings.Contains(logged, "s3cret-bmc") {
		t.Errorf("-o dotenv --env-file printed the password to stdout:\n%s", logged)
	}
	b, _ = os.ReadFile(dot)
	for _, want := range []string{"IRONPOOL_NODE_0_BMC_PASSWORD=s3cret-bmc\n", "IRONPOOL_META_JOB_URL=https://ci/4\n", "IRONPOOL_NODE_COUNT=1\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("dotenv file lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "'") || strings.Contains(string(b), "export ") {
		t.Errorf("dotenv file has shell quoting:\n%s", b)
	}
}
