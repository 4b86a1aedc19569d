package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfiles: the client config's named profiles choose the server,
// token file and data dir; --profile and IRONPOOL_PROFILE select one; flags
// and variables win over it; a missing profile or a bad file is an error
// naming the file.
func TestProfiles(t *testing.T) {
	a, b := start(t), start(t)
	a.ok("node", "add", "on-a", "--bmc", "ipmi://127.0.0.1:623")
	b.ok("node", "add", "on-b", "--bmc", "ipmi://127.0.0.1:624")
	home := t.TempDir()
	cfgDir := filepath.Join(home, ".config", "ironpool")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "a.token"), []byte(a.m.AdminToken+"\n"), 0o600)
	os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(`default: a
profiles:
  a:
    url: `+a.m.URL()+`
    token_file: ~/.config/ironpool/a.token
  b:
    url: `+b.m.URL()+`
    data_dir: `+b.m.DataDir+`
`), 0o600)
	names := func(vars map[string]string, args ...string) (string, string, int) {
		vars["HOME"] = home
		return runWith(vars, append(args, "node", "list", "-o", "value", "-c", "name")...)
	}
	for _, c := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"Default", map[string]string{}, nil, "on-a\n"},
		{"Flag", map[string]string{}, []string{"--profile", "b"}, "on-b\n"},
		{"Env", map[string]string{"IRONPOOL_PROFILE": "b"}, nil, "on-b\n"},
		{"FlagOverEnv", map[string]string{"IRONPOOL_PROFILE": "b"}, []string{"--profile", "a"}, "on-a\n"},
		{"URLOverProfile", map[string]string{"IRONPOOL_URL": b.m.URL(), "IRONPOOL_TOKEN": b.m.AdminToken}, nil, "on-b\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, stderr, code := names(c.vars, c.args...)
			if code != 0 || out != c.want {
				t.Errorf("got %q exit %d %s, want %q", out, code, stderr, c.want)
			}
		})
	}
	_, stderr, code := names(map[string]string{}, "--profile", "nope")
	if code != 2 || !strings.Contains(stderr, `no profile "nope"`) || !strings.Contains(stderr, "(have a, b)") {
		t.Errorf("unknown profile: exit %d %s", code, stderr)
	}
	os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte("profiles:\n  a:\n    uri: http://x\n"), 0o600)
	_, stderr, code = names(map[string]string{}, "--profile", "a")
	if code != 2 || !strings.Contains(stderr, "config.yaml") || !strings.Contains(stderr, "uri") {
		t.Errorf("bad config: exit %d %s", code, stderr)
	}
}
