package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The CI recipes under integrations/ are tested here the way each CI system
// runs them: the same files, the same interpreter, the same environment
// variables, with a real ironpool server and the real binary. Jenkins and
// GitHub's runner cannot run here, so their part (calling the step's code
// with the documented environment, then the post/finally step whatever
// happened) is done by the test. Each recipe runs three jobs: one that
// succeeds, one that fails mid-way and one cancelled with SIGTERM while it
// waits in the queue. After each, the job's nodes are back and nothing is
// left queued.

func integrations(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../integrations")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// recipeJob is one CI job run through a recipe: allocate must start the
// allocation step (not waiting for it), work is the job's own steps and
// cleanup the post/after/finally step. dir is the job's workspace.
type recipeJob struct {
	allocate func(t *testing.T, dir, owner, flavor string) *script
	work     func(t *testing.T, dir, owner string, fail bool) int
	cleanup  func(t *testing.T, dir, owner string) int
	// ownerOf maps the test's name for a job to the owner the recipe
	// allocates as (nil: the same).
	ownerOf func(owner string) string
}

// runRecipe runs the three jobs through r against e's seeded server.
func (e *env) runRecipe(t *testing.T, name string, r recipeJob) {
	real := func(owner string) string {
		if r.ownerOf != nil {
			return r.ownerOf(owner)
		}
		return owner
	}
	check := func(t *testing.T, owner string) {
		t.Helper()
		owner = real(owner)
		if als := e.allocsOf(owner); len(als) > 0 {
			for _, a := range als {
				if a.State == "queued" || a.State == "active" {
					t.Errorf("%s left allocation %s %s", owner, a.ID, a.State)
				}
			}
		}
		if got := count(e.nodes("--owner", owner), "allocated"); got != 0 {
			t.Errorf("%s still holds %d nodes", owner, got)
		}
		var st struct{ Queued int }
		e.jsonOf(&st, "status")
		if st.Queued != 0 {
			t.Errorf("%d requests left queued", st.Queued)
		}
	}
	t.Run("Succeeds", func(t *testing.T) {
		dir, owner := t.TempDir(), name+"-ok"
		s := r.allocate(t, dir, owner, "small=2")
		if code := s.wait(t, time.Minute); code != 0 {
			t.Fatalf("allocate step exit %d:\n%s\n%s", code, s.stdout.String(), s.stderr.String())
		}
		if got := count(e.nodes("--owner", real(owner)), "allocated"); got != 2 {
			t.Fatalf("%s holds %d nodes after allocating, want 2", owner, got)
		}
		if code := r.work(t, dir, owner, false); code != 0 {
			t.Errorf("job steps exit %d", code)
		}
		if code := r.cleanup(t, dir, owner); code != 0 {
			t.Errorf("cleanup exit %d", code)
		}
		check(t, owner)
	})
	t.Run("FailsMidway", func(t *testing.T) {
		dir, owner := t.TempDir(), name+"-fail"
		s := r.allocate(t, dir, owner, "small=1")
		if code := s.wait(t, time.Minute); code != 0 {
			t.Fatalf("allocate step exit %d: %s", code, s.stderr.String())
		}
		if code := r.work(t, dir, owner, true); code == 0 {
			t.Errorf("the failing job step exited 0")
		}
		if code := r.cleanup(t, dir, owner); code != 0 {
			t.Errorf("cleanup exit %d", code)
		}
		check(t, owner)
	})
	t.Run("CancelledWhileQueued", func(t *testing.T) {
		dir, owner := t.TempDir(), name+"-cancel"
		var holder struct{ ID string }
		e.jsonOf(&holder, "allocate", "--owner", name+"-holder", "--flavor", "large=6")
		defer e.ok("release", holder.ID)
		s := r.allocate(t, dir, owner, "large=1")
		deadline := time.Now().Add(time.Minute)
		for len(e.allocsOf(real(owner))) == 0 {
			if time.Now().After(deadline) || s.cmd.ProcessState != nil {
				t.Fatalf("the job never queued:\n%s\n%s", s.stdout.String(), s.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM) // the runner cancels the job
		if code := s.wait(t, 30*time.Second); code == 0 {
			t.Errorf("the cancelled allocate step exited 0")
		}
		if code := r.cleanup(t, dir, owner); code != 0 {
			t.Errorf("cleanup exit %d", code)
		}
		check(t, owner)
	})
}

func need(t *testing.T, bin string) {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("skipped: %s is not installed (hack/test.sh installs it)", bin)
	}
}

// readKV reads KEY=VALUE lines.
func readKV(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "=") {
			out = append(out, sc.Text())
		}
	}
	return out
}

func (e *env) baseEnv(t *testing.T, dir string) []string {
	return []string{"PATH=" + binary(t) + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + dir,
		"IRONPOOL_URL=" + e.m.URL(), "IRONPOOL_TOKEN=" + e.m.AdminToken}
}

// TestRecipeGitHubAction runs integrations/github's main.js and post.js
// with node, as the runner does for a node20 action: inputs as INPUT_*,
// the runner's command files, state passed to the post step as STATE_*.
func TestRecipeGitHubAction(t *testing.T) {
	need(t, "node")
	e := start(t)
	e.seed()
	action := filepath.Join(integrations(t), "github")
	ghEnv := func(t *testing.T, dir, job string) []string {
		for _, f := range []string{"env", "state", "output"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				os.WriteFile(filepath.Join(dir, f), nil, 0o600)
			}
		}
		return append(e.baseEnv(t, dir), "GITHUB_ENV="+filepath.Join(dir, "env"), "GITHUB_STATE="+filepath.Join(dir, "state"),
			"GITHUB_OUTPUT="+filepath.Join(dir, "output"), "RUNNER_TEMP="+dir, "GITHUB_REPOSITORY=acme/hw",
			"GITHUB_RUN_ID=77", "GITHUB_RUN_ATTEMPT=1", "GITHUB_JOB="+job, "GITHUB_SERVER_URL=https://github.example")
	}
	e.runRecipe(t, "gh", recipeJob{
		allocate: func(t *testing.T, dir, owner, flavor string) *script {
			// No owner input: the action names the job itself, and the
			// post step must find it again.
			return e.shEnv(dir, "exec node "+filepath.Join(action, "main.js"),
				append(ghEnv(t, dir, owner), "INPUT_FLAVORS="+flavor+"\n", "INPUT_WAIT=5m", "INPUT_TTL=1h"))
		},
		ownerOf: func(owner string) string { return "gh-acme-hw-77-1-" + owner },
		work: func(t *testing.T, dir, owner string, fail bool) int {
			// A later step of the job sees the exported variables.
			body := `test -n "$IRONPOOL_NODES" && test -n "$IRONPOOL_NODE_0_BMC_PASSWORD" && echo "nodes: $IRONPOOL_NODES"`
			if fail {
				body += "; exit 1"
			}
			s := e.shEnv(dir, body, append(e.baseEnv(t, dir), readKV(t, filepath.Join(dir, "env"))...))
			code := s.wait(t, time.Minute)
			out, _ := os.ReadFile(filepath.Join(dir, "output"))
			if !strings.Contains(string(out), "allocation-id=") {
				t.Errorf("no allocation-id output: %q", out)
			}
			return code
		},
		cleanup: func(t *testing.T, dir, owner string) int {
			envv := ghEnv(t, dir, owner)
			for _, kv := range readKV(t, filepath.Join(dir, "state")) {
				envv = append(envv, "STATE_"+kv)
			}
			s := e.shEnv(dir, "exec node "+filepath.Join(action, "post.js"), envv)
			return s.wait(t, time.Minute)
		},
	})
}

// TestRecipeGitLab runs integrations/gitlab's template as a GitLab runner
// does: variables expanded, before_script and the job's script in one
// shell that stops at the first error, after_script in a new shell.
func TestRecipeGitLab(t *testing.T) {
	e := start(t)
	e.seed()
	var tmpl map[string]struct {
		Variables    map[string]string `yaml:"variables"`
		BeforeScript []string          `yaml:"before_script"`
		AfterScript  []string          `yaml:"after_script"`
		Artifacts    struct {
			Reports struct {
				Dotenv string `yaml:"dotenv"`
			} `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	b, err := os.ReadFile(filepath.Join(integrations(t), "gitlab", "ironpool.gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tmpl); err != nil {
		t.Fatal(err)
	}
	job, ok := tmpl[".ironpool"]
	if !ok || len(job.BeforeScript) == 0 || len(job.AfterScript) == 0 || job.Artifacts.Reports.Dotenv == "" {
		t.Fatalf("template has no complete .ironpool job: %+v", tmpl)
	}
	jobIDs := map[string]string{}
	glEnv := func(t *testing.T, dir, owner, flavor string) []string {
		if jobIDs[owner] == "" {
			jobIDs[owner] = fmt.Sprint(1000 + len(jobIDs))
		}
		ci := map[string]string{"CI_PROJECT_ID": "42", "CI_JOB_ID": jobIDs[owner], "CI_JOB_URL": "https://gitlab.example/-/jobs/" + jobIDs[owner]}
		envv := e.baseEnv(t, dir)
		for k, v := range ci {
			envv = append(envv, k+"="+v)
		}
		for k, v := range job.Variables {
			envv = append(envv, k+"="+os.Expand(v, func(n string) string { return ci[n] }))
		}
		return append(envv, "IRONPOOL_ALLOCATE_ARGS=--flavor "+flavor, "IRONPOOL_WAIT=5m")
	}
	flavors := map[string]string{}
	e.runRecipe(t, "gl", recipeJob{
		ownerOf: func(owner string) string { return "gitlab-42-" + jobIDs[owner] },
		allocate: func(t *testing.T, dir, owner, flavor string) *script {
			flavors[owner] = flavor
			// The test runs before_script alone first, then the job script
			// after it in the same way; GitLab runs both in one shell.
			return e.shEnv(dir, "set -eo pipefail\n"+strings.Join(job.BeforeScript, "\n"), glEnv(t, dir, owner, flavor))
		},
		work: func(t *testing.T, dir, owner string, fail bool) int {
			script := []string{`test -n "$IRONPOOL_NODES"`, `echo "nodes: $IRONPOOL_NODES"`}
			if fail {
				script = append(script, "false", "echo NOT REACHED")
			}
			s := e.shEnv(dir, "set -eo pipefail\n"+strings.Join(append(job.BeforeScript[1:], script...), "\n"), glEnv(t, dir, owner, flavors[owner]))
			code := s.wait(t, time.Minute)
			if strings.Contains(s.stdout.String(), "NOT REACHED") {
				t.Errorf("the job went on after a failing line")
			}
			report, err := os.ReadFile(filepath.Join(dir, job.Artifacts.Reports.Dotenv))
			if err != nil || !strings.Contains(string(report), "IRONPOOL_ALLOCATION_ID=") || strings.Contains(string(report), "PASSWORD") {
				t.Errorf("dotenv report %q (%v): want the id and no password", report, err)
			}
			return code
		},
		cleanup: func(t *testing.T, dir, owner string) int {
			s := e.shEnv(dir, strings.Join(job.AfterScript, "\n"), glEnv(t, dir, owner, flavors[owner]))
			code := s.wait(t, time.Minute)
			if _, err := os.Stat(filepath.Join(dir, "ironpool.sh")); err == nil {
				t.Errorf("after_script left ironpool.sh with the passwords")
			}
			return code
		},
	})
}

// TestRecipeJenkins runs integrations/jenkins's resources as withIronpool
// runs them: `sh -xe` with the step's environment, the body with the env
// file's variables, the release in finally.
func TestRecipeJenkins(t *testing.T) {
	need(t, "sh")
	e := start(t)
	e.seed()
	res := filepath.Join(integrations(t), "jenkins", "resources", "ironpool")
	jEnv := func(t *testing.T, dir, owner, flavor string) []string {
		return append(e.baseEnv(t, dir), "IRONPOOL_OWNER="+owner, "IRONPOOL_FLAVORS="+flavor, "IRONPOOL_CONSTRAINTS=",
			"IRONPOOL_TTL=1h", "IRONPOOL_WAIT=5m", "IRONPOOL_ENV_FILE="+filepath.Join(dir, ".ironpool-7.env"))
	}
	sh := func(file string) string { return "exec sh -xe " + filepath.Join(res, file) }
	e.runRecipe(t, "jk", recipeJob{
		allocate: func(t *testing.T, dir, owner, flavor string) *script {
			return e.shEnv(dir, sh("allocate.sh"), jEnv(t, dir, owner, flavor))
		},
		work: func(t *testing.T, dir, owner string, fail bool) int {
			body := `test -n "$IRONPOOL_NODES" && echo "nodes: $IRONPOOL_NODES"`
			if fail {
				body += "; exit 1"
			}
			st, err := os.Stat(filepath.Join(dir, ".ironpool-7.env"))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("env file: %v %v", st, err)
			}
			s := e.shEnv(dir, body, append(e.baseEnv(t, dir), readKV(t, filepath.Join(dir, ".ironpool-7.env"))...))
			return s.wait(t, time.Minute)
		},
		cleanup: func(t *testing.T, dir, owner string) int {
			s := e.shEnv(dir, sh("release.sh"), jEnv(t, dir, owner, ""))
			code := s.wait(t, time.Minute)
			if _, err := os.Stat(filepath.Join(dir, ".ironpool-7.env")); err == nil {
				t.Errorf("release left the env file with the passwords")
			}
			return code
		},
	})
	// The step the pipeline calls has the try/finally the test stands in for.
	b, err := os.ReadFile(filepath.Join(integrations(t), "jenkins", "vars", "withIronpool.groovy"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"libraryResource('ironpool/allocate.sh')", "finally", "libraryResource('ironpool/release.sh')", "def call(Map args"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("withIronpool.groovy lacks %q", want)
		}
	}
}

// TestRecipeZuul runs integrations/zuul's playbooks with Debian's
// ansible-playbook against localhost, with the zuul variables Zuul passes.
func TestRecipeZuul(t *testing.T) {
	need(t, "ansible-playbook")
	e := start(t)
	e.seed()
	zuul := filepath.Join(integrations(t), "zuul")
	zEnv := func(t *testing.T, dir string) []string {
		return append(e.baseEnv(t, dir), "ANSIBLE_ROLES_PATH="+filepath.Join(zuul, "roles"), "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, ".ansible-tmp"),
			"ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_KEY_CHECKING=False", "LANG=C.UTF-8")
	}
	vars := func(dir, owner, flavor string) string {
		b, _ := json.Marshal(map[string]any{"zuul": map[string]any{"build": owner, "executor": map[string]any{"work_root": dir}},
			"ironpool_flavors": []string{flavor}, "ironpool_wait": "5m", "ironpool_ttl": "1h"})
		return string(b)
	}
	playbook := func(dir, file, owner, flavor string) string {
		return fmt.Sprintf("exec ansible-playbook -i localhost, -c local %s -e '%s'", file, vars(dir, owner, flavor))
	}
	e.runRecipe(t, "zu", recipeJob{
		ownerOf: func(owner string) string { return "zuul-" + owner },
		allocate: func(t *testing.T, dir, owner, flavor string) *script {
			return e.shEnv(dir, playbook(dir, filepath.Join(zuul, "playbooks", "pre.yaml"), owner, flavor), zEnv(t, dir))
		},
		work: func(t *testing.T, dir, owner string, fail bool) int {
			run := `- hosts: localhost
  gather_facts: false
  tasks:
    - set_fact: {alloc: "{{ lookup('file', zuul.executor.work_root + '/ironpool.json') | from_json }}"}
    - assert: {that: ["alloc.nodes | length > 0", "alloc.state == 'active'"]}
`
			if fail {
				run += "    - fail: {msg: the tests failed}\n"
			}
			os.WriteFile(filepath.Join(dir, "run.yaml"), []byte(run), 0o600)
			s := e.shEnv(dir, playbook(dir, filepath.Join(dir, "run.yaml"), owner, ""), zEnv(t, dir))
			code := s.wait(t, 2*time.Minute)
			if code != 0 && !fail {
				t.Logf("run playbook: %s", s.stdout.String())
			}
			return code
		},
		cleanup: func(t *testing.T, dir, owner string) int {
			s := e.shEnv(dir, playbook(dir, filepath.Join(zuul, "playbooks", "post.yaml"), owner, ""), zEnv(t, dir))
			code := s.wait(t, 2*time.Minute)
			if code != 0 {
				t.Logf("post playbook: %s %s", s.stdout.String(), s.stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "ironpool.json")); err == nil {
				t.Errorf("post left ironpool.json with the passwords")
			}
			return code
		},
	})
}
