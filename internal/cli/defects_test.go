package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/cli"
	"github.com/ironpool/ironpool/internal/server"
)

// TestReleaseRepeatedOwner: --owner a --owner b releases both; the old CLI
// kept only the last.
func TestReleaseRepeatedOwner(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("allocate", "--owner", "a", "--flavor", "small=1")
	e.ok("allocate", "--owner", "b", "--flavor", "small=1")
	e.ok("allocate", "--owner", "c", "--flavor", "small=1")
	e.ok("release", "--owner", "a", "--owner", "b")
	for owner, want := range map[string]int{"a": 0, "b": 0, "c": 1} {
		if got := count(e.nodes("--owner", owner), "allocated"); got != want {
			t.Errorf("owner %s holds %d nodes, want %d", owner, got, want)
		}
	}
	_, stderr, code := e.run("release", "ID", "--owner", "c")
	if code != 1 || !strings.Contains(stderr, "not both") {
		t.Errorf("ids and --owner: exit %d %s", code, stderr)
	}
}

// TestNodeDeleteAllOrNone: one name that cannot go keeps every node.
func TestNodeDeleteAllOrNone(t *testing.T) {
	e := start(t)
	e.seed()
	var a struct{ Nodes []nodeView }
	e.jsonOf(&a, "allocate", "--owner", "lab", "--flavor", "small=1")
	held := a.Nodes[0].Name
	free := []string{"n01", "n02"}
	if held == free[0] || held == free[1] {
		free = []string{"n04", "n05"}
	}
	for _, args := range [][]string{
		{"node", "delete", free[0], free[1], held},
		{"node", "delete", free[0], "no-such-node", free[1]},
	} {
		before := e.snapshot()
		_, stderr, code := e.run(args...)
		if code == 0 {
			t.Fatalf("%v: exit 0", args)
		}
		if !strings.Contains(stderr, "names[") {
			t.Errorf("%v: stderr %q does not name the entry", args, stderr)
		}
		if after := e.snapshot(); after != before {
			t.Errorf("%v: refused delete changed state", args)
		}
	}
	e.ok("node", "delete", free[0], free[1])
	if got := len(e.nodes()); got != 18 {
		t.Errorf("nodes after deleting two = %d, want 18", got)
	}
}

// TestStateFiltersChecked: a misspelt state is refused by the CLI and by
// the API, instead of listing nothing with rc 0.
func TestStateFiltersChecked(t *testing.T) {
	e := start(t)
	e.seed()
	for _, args := range [][]string{{"node", "list", "--state", "bogus"}, {"allocation", "list", "--state", "bogus"}, {"node", "export", "--state", "bogus"}} {
		_, stderr, code := e.run(args...)
		if code != 2 || !strings.Contains(stderr, `state: "bogus" is not`) {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
	cl, err := client.New(e.m.URL(), e.m.AdminToken, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, path := range []string{"/v1/nodes?state=bogus", "/v1/allocations?state=bogus"} {
		_, err := cl.Do(ctx, "GET", path, nil, nil)
		var ie *ironpool.Error
		if !asError(err, &ie) || ie.Code != ironpool.EINVALID || ie.Field != "state" {
			t.Errorf("GET %s: %v, want invalid state", path, err)
		}
	}
	// The API refuses an explicit zero TTL too.
	_, err = cl.Do(ctx, "POST", "/v1/allocations", map[string]any{"owner": "x", "ttl": "0s",
		"items": []map[string]any{{"flavor": "small", "count": 1}}}, nil)
	if ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), "ttl: must be positive") {
		t.Errorf("POST ttl=0s: %v", err)
	}
	if got := count(e.nodes(), "allocated"); got != 0 {
		t.Errorf("allocated = %d", got)
	}
}

func asError(err error, target **ironpool.Error) bool {
	e, ok := err.(*ironpool.Error)
	*target = e
	return ok
}

// TestImportDefaultsMatchAdd: a node imported without cpu_arch gets what
// `node add` without --arch gives.
func TestImportDefaultsMatchAdd(t *testing.T) {
	e := start(t)
	e.ok("node", "add", "added", "--bmc", "ipmi://127.0.0.1:623")
	f := filepath.Join(t.TempDir(), "nodes.yaml")
	os.WriteFile(f, []byte("nodes:\n- name: imported\n  bmc: {address: 'ipmi://127.0.0.1:624'}\n- name: from-ironic\n  driver: ipmi\n  driver_info: {ipmi_address: 127.0.0.1, ipmi_port: 625}\n"), 0o600)
	e.ok("node", "import", f)
	var got []string
	for _, n := range []string{"added", "imported", "from-ironic"} {
		got = append(got, strings.TrimSpace(e.ok("node", "get", n, "cpu_arch")))
	}
	if got[0] == "" || got[0] != got[1] || got[0] != got[2] {
		t.Fatalf("cpu_arch of added, imported, ironic-imported = %q", got)
	}
}

// TestNodeExportRoundTrip: what `node export` writes, `node import` takes
// back, passwords included for an admin and left out for others.
func TestNodeExportRoundTrip(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("node", "set", "n03", "fields.rack=r7", "traits=CUSTOM_A,CUSTOM_B", "resource_class=baremetal")
	var before []*ironpool.Node
	for i := range 20 {
		var n ironpool.Node
		e.jsonOf(&n, "node", "show", nodeName(i), "--reveal")
		before = append(before, &n)
	}
	file := filepath.Join(t.TempDir(), "nodes.yaml")
	if err := os.WriteFile(file, []byte(e.ok("node", "export")), 0o600); err != nil {
		t.Fatal(err)
	}
	names := []string{"node", "delete"}
	for i := range 20 {
		names = append(names, nodeName(i))
	}
	e.ok(names...)
	e.ok("node", "import", file)
	for i, want := range before {
		var got ironpool.Node
		e.jsonOf(&got, "node", "show", nodeName(i), "--reveal")
		if a, b := nodeKey(want), nodeKey(&got); a != b {
			t.Errorf("node %s after the round trip:\n got %s\nwant %s", want.Name, b, a)
		}
	}

	// A user token gets no passwords, and is told.
	tok := strings.TrimSpace(e.ok("token", "create", "--role", "user", "--owner", "*"))
	out, stderr, code := runWith(map[string]string{"IRONPOOL_URL": e.m.URL(), "IRONPOOL_TOKEN": tok}, "node", "export")
	if code != 0 {
		t.Fatalf("user export: exit %d %s", code, stderr)
	}
	if strings.Contains(out, "s3cret-bmc") || strings.Contains(out, "password") || strings.Contains(out, "******") {
		t.Errorf("user export carries passwords:\n%s", out)
	}
	if !strings.Contains(stderr, "only an admin") {
		t.Errorf("user export does not say passwords were left out: %s", stderr)
	}
}

func nodeName(i int) string { return fmt.Sprintf("n%02d", i) }

// nodeKey is what an export must carry over.
func nodeKey(n *ironpool.Node) string {
	return strings.Join([]string{n.Name, n.UUID, n.Pool, itoa(n.CPUs), itoa(int(n.MemoryMB)), itoa(int(n.LocalGB)), n.CPUArch,
		n.ResourceClass, strings.Join(n.Traits, ","), strings.Join(n.MACs, ","), n.BMC.Address, n.BMC.Username, n.BMC.Password,
		n.Fields["rack"]}, "|")
}

func itoa(i int) string { return strconv.Itoa(i) }

// allCommands is root and every command below it.
func allCommands(root *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{root}
	for _, c := range root.Commands() {
		out = append(out, allCommands(c)...)
	}
	return out
}

// TestTokenFileNamed: the CLI reads admin.token from --data-dir (or
// IRONPOOL_DATA_DIR), and when the server refuses the token it names the
// file it read.
func TestTokenFileNamed(t *testing.T) {
	e := start(t)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "admin.token"), []byte("not-this-servers-token\n"), 0o600)
	// As if a server on that dir had recorded this URL: the CLI sends the
	// token, and the server refuses it.
	os.WriteFile(filepath.Join(other, server.LocalURLFile), []byte(e.m.URL()+"\n"), 0o600)
	_, stderr, code := runWith(map[string]string{"IRONPOOL_URL": e.m.URL(), "IRONPOOL_DATA_DIR": other}, "node", "list")
	if code != 4 || !strings.Contains(stderr, filepath.Join(other, "admin.token")) || !strings.Contains(stderr, "--data-dir") {
		t.Errorf("refused token file: exit %d %s", code, stderr)
	}
	_, stderr, code = runWith(map[string]string{"IRONPOOL_URL": e.m.URL(), "IRONPOOL_DATA_DIR": other}, "--data-dir", e.m.DataDir, "node", "list")
	if code != 0 {
		t.Errorf("--data-dir of the server: exit %d %s", code, stderr)
	}
	empty := t.TempDir()
	_, stderr, code = runWith(map[string]string{"IRONPOOL_URL": e.m.URL()}, "--data-dir", empty, "node", "list")
	if code != 4 || !strings.Contains(stderr, "no token was sent") || !strings.Contains(stderr, filepath.Join(empty, "admin.token")) {
		t.Errorf("no token file: exit %d %s", code, stderr)
	}
}

// TestFlagHelpReadable: pflag takes the first `quoted` word of a flag's
// usage as its value name, which turned serve --help into
// "--ironic-sync-interval ironpool ironic sync". No flag may do that.
func TestFlagHelpReadable(t *testing.T) {
	root := cli.Root(cli.Env{})
	n := 0
	for _, c := range allCommands(root) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			n++
			name, _ := pflag.UnquoteUsage(f)
			if strings.ContainsAny(name, " `") {
				t.Errorf("%s --%s shows %q as its value name", c.CommandPath(), f.Name, name)
			}
		})
	}
	if n < 50 {
		t.Fatalf("visited only %d flags", n)
	}
	out, _, _ := runWith(map[string]string{}, "serve", "--help")
	if !regexp.MustCompile(`--ironic-sync-interval duration`).MatchString(out) {
		t.Errorf("serve --help:\n%s", out)
	}
}
