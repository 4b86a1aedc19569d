package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/server"
)

// TestSecretsStayHidden drives a server through adding nodes, failed
// requests, allocation and release, and then looks for the BMC passwords
// everywhere they must not be: replies other than the owner's handoff and
// an admin's reveal, error messages, events, the CLI's list and show, the
// log at debug level, and the bytes of the SQLite database and its WAL.
func TestSecretsStayHidden(t *testing.T) {
	const pw1, pw2 = "Hunter2-ZEBRA-7731-xq", "Second-PW-kq41-ZZ"
	m := &server.Main{}
	logs := run(t, m)
	base, admin := m.URL(), m.AdminToken
	operator := newToken(t, base, admin, "operator")
	user := newToken(t, base, admin, "user", "lab1")
	other := newToken(t, base, admin, "user", "lab2")

	// hidden collects every reply that must not carry a password.
	var hidden []string
	say := func(tok, method, path string, body any, want int) string {
		t.Helper()
		st, data := call(t, base, tok, method, path, body)
		if st != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, data)
		}
		return string(data)
	}
	keep := func(label, reply string) { hidden = append(hidden, label+": "+reply) }

	keep("create", say(admin, "POST", "/v1/nodes", nodeJSON("n1", "p1", pw1), 201))
	keep("import", say(operator, "POST", "/v1/nodes/import", map[string]any{"nodes": []any{nodeJSON("n2", "p2", pw2)}}, 201))

	// Errors, each carrying a password in the request.
	keep("duplicate", say(admin, "POST", "/v1/nodes", nodeJSON("n1", "p1", pw1), 409))
	bad := nodeJSON("n3", "p1", pw1)
	bad["bmc"].(map[string]any)["address"] = "ftp://" + pw1
	keep("bad address", say(admin, "POST", "/v1/nodes", bad, 400))
	keep("too long", say(admin, "POST", "/v1/nodes", nodeJSON("n4", "p1", pw1+strings.Repeat("x", 2000)), 400))
	keep("mask as password", say(admin, "PATCH", "/v1/nodes/n1", map[string]any{"set": map[string]string{"bmc.password": "******"}}, 400))
	keep("bad set", say(admin, "PATCH", "/v1/nodes/n1", map[string]any{"set": map[string]string{"bmc.password": pw1, "cpus": "many"}}, 400))
	keep("set by user", say(user, "PATCH", "/v1/nodes/n1", map[string]any{"set": map[string]string{"bmc.password": pw1}}, 403))
	keep("foreign allocate", say(user, "POST", "/v1/allocations", allocJSON("lab2", "p1"), 403))
	big := allocJSON("lab1", "p1")
	big["items"] = []map[string]any{{"constraints": map[string]any{"cpus": 1}, "count": 5}}
	keep("no capacity", say(user, "POST", "/v1/allocations", big, 409))

	// Reads that must mask.
	for _, tok := range []string{admin, operator, user} {
		keep("list", say(tok, "GET", "/v1/nodes", nil, 200))
		keep("show", say(tok, "GET", "/v1/nodes/n1", nil, 200))
		keep("field", say(tok, "GET", "/v1/nodes/n1/fields/bmc.password", nil, 200))
	}
	if show := say(operator, "GET", "/v1/nodes/n1", nil, 200); !strings.Contains(show, `"password":"******"`) {
		t.Errorf("node show does not show the mask: %s", show)
	}
	keep("reveal as operator", say(operator, "GET", "/v1/nodes/n1?reveal=true", nil, 403))
	keep("reveal as user", say(user, "GET", "/v1/nodes/n1?reveal=true", nil, 403))
	if r := say(admin, "GET", "/v1/nodes/n1?reveal=true", nil, 200); !strings.Contains(r, pw1) {
		t.Errorf("admin reveal does not show the password: %s", r)
	}

	// The handoff: the owner and an admin get the password, nobody else.
	var a1, a2 struct {
		ID string `json:"id"`
	}
	handoff := must(t, base, user, "POST", "/v1/allocations", allocJSON("lab1", "p1"), 201, &a1)
	if !strings.Contains(string(handoff), pw1) {
		t.Errorf("the owner's handoff lacks the password: %s", handoff)
	}
	if r := say(user, "GET", "/v1/allocations/"+a1.ID, nil, 200); !strings.Contains(r, pw1) {
		t.Errorf("the owner's allocation show lacks the password: %s", r)
	}
	handoff = must(t, base, admin, "POST", "/v1/allocations", allocJSON("lab2", "p2"), 201, &a2)
	if !strings.Contains(string(handoff), pw2) {
		t.Errorf("the admin's handoff lacks the password: %s", handoff)
	}
	keep("operator reads allocation", say(operator, "GET", "/v1/allocations/"+a1.ID, nil, 200))
	keep("operator lists allocations", say(operator, "GET", "/v1/allocations", nil, 200))
	keep("other user reads allocation", say(other, "GET", "/v1/allocations/"+a1.ID, nil, 403))
	keep("other user lists allocations", say(other, "GET", "/v1/allocations", nil, 200))
	keep("list allocated", say(operator, "GET", "/v1/nodes?state=allocated", nil, 200))
	keep("status", say(operator, "GET", "/v1/status", nil, 200))
	keep("release", say(user, "DELETE", "/v1/allocations/"+a1.ID, nil, 200))
	keep("release other", say(admin, "DELETE", "/v1/allocations/"+a2.ID, nil, 200))
	keep("rotate", say(admin, "POST", "/v1/admin/reseal", nil, 200))

	events := say(admin, "GET", "/v1/events", nil, 200)
	if !strings.Contains(events, "allocation") || !strings.Contains(events, "n1") {
		t.Fatalf("the event log does not record the changes, so checking it proves nothing: %s", events)
	}
	keep("events", events)

	// The CLI, as people see it.
	env := map[string]string{"IRONPOOL_URL": base}
	for _, args := range [][]string{{"node", "list"}, {"node", "show", "n1"}, {"node", "list", "-o", "json"}, {"node", "get", "n1", "bmc.password"}, {"events"}} {
		code, out, errOut := runCLI(t, env, append(args, "--token", operator)...)
		if code != 0 {
			t.Fatalf("ironpool %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		keep("cli "+strings.Join(args, " "), out+errOut)
		if len(args) > 1 && args[1] == "show" && !strings.Contains(out, "******") {
			t.Errorf("node show does not print the mask:\n%s", out)
		}
	}
	for _, tok := range []string{operator, user} {
		code, out, errOut := runCLI(t, env, "node", "show", "n1", "--reveal", "--token", tok)
		if code != 4 {
			t.Errorf("node show --reveal as non-admin: exit %d, want 4 (forbidden): %s", code, errOut)
		}
		keep("cli reveal refused", out+errOut)
	}
	if code, out, errOut := runCLI(t, env, "node", "show", "n1", "--reveal", "--token", admin); code != 0 || !strings.Contains(out, pw1) {
		t.Errorf("node show --reveal as admin: exit %d, output lacks the password:\n%s%s", code, out, errOut)
	}

	for _, r := range hidden {
		for _, pw := range []string{pw1, pw2} {
			if strings.Contains(r, pw) {
				t.Errorf("password %s leaked in %.400s", pw, r)
			}
		}
	}
	checkNoSecret := func(what, text string) {
		t.Helper()
		for _, pw := range []string{pw1, pw2} {
			if strings.Contains(text, pw) {
				t.Errorf("password %s found in %s", pw, what)
			}
		}
	}
	if !strings.Contains(logs.String(), "ironpool serving") {
		t.Fatal("the server log was not captured, so checking it proves nothing")
	}
	checkNoSecret("the server log", logs.String())

	// The database: while running (rows in the WAL) and after close
	// (checkpointed into the main file).
	rawDB := func() string {
		var all []byte
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			b, err := os.ReadFile(m.DB + suffix)
			if err == nil {
				all = append(all, b...)
			}
		}
		if !strings.Contains(string(all), "n1") {
			t.Fatalf("read %d bytes of %s without finding node n1; the check would prove nothing", len(all), m.DB)
		}
		return string(all)
	}
	checkNoSecret("the SQLite file and WAL of the running server", rawDB())
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoSecret("the SQLite file after shutdown", rawDB())
	if key, err := os.Stat(filepath.Join(m.DataDir, "secret.key")); err != nil || key.Mode().Perm() != 0o600 {
		t.Errorf("secret.key: %v, mode %v; want 0600", err, key.Mode().Perm())
	}
	if tok, err := os.Stat(filepath.Join(m.DataDir, "admin.token")); err != nil || tok.Mode().Perm() != 0o600 {
		t.Errorf("admin.token: %v, mode %v; want 0600", err, tok.Mode().Perm())
	}
	checkNoSecret("the log after shutdown", logs.String())
}
