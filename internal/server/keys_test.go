package server_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/sqlite"
)

// startErr runs a server that is expected not to start and returns why.
func startErr(t *testing.T, m *server.Main) error {
	t.Helper()
	m.Listen, m.Log = "127.0.0.1:0", newLogger(io.Discard)
	err := m.Run(context.Background())
	if err == nil {
		m.Close()
	}
	return err
}

// writeKey writes a fresh key file (0600) and returns its path and id.
func writeKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if _, err := secret.CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	return path, keyID(t, path)
}

// TestWrongKeyRefusesToStart: a key that does not open the data stops the
// server at start, with the key id the data needs, instead of starting and
// failing later with 500 on node show and allocate.
func TestWrongKeyRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	m := &server.Main{DataDir: dir}
	run(t, m)
	must(t, m.URL(), m.AdminToken, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw-n1"), 201, nil)
	m.Close()
	rightID := keyID(t, filepath.Join(dir, "secret.key"))

	wrong, wrongID := writeKey(t, t.TempDir(), "wrong.key")
	err := startErr(t, &server.Main{DataDir: dir, SecretKeyFile: wrong})
	if err == nil {
		t.Fatal("the server started with a key that does not open its data")
	}
	if ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), rightID) || !strings.Contains(err.Error(), wrongID) {
		t.Errorf("refusal = %v; want EINVALID naming the needed key %s and the given key %s", err, rightID, wrongID)
	}
	// The variable is checked the same way.
	t.Setenv(secret.EnvKey, hex.EncodeToString(make([]byte, secret.KeySize)))
	if err := startErr(t, &server.Main{DataDir: dir}); ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Errorf("start with a wrong %s = %v, want EINVALID", secret.EnvKey, err)
	}
	os.Unsetenv(secret.EnvKey)

	// The right key still starts, and a rotation's old key counts.
	m = &server.Main{DataDir: dir}
	run(t, m)
	m.Close()
	m = &server.Main{DataDir: dir, SecretKeyFile: wrong, OldSecretKeyFiles: []string{filepath.Join(dir, "secret.key")}}
	run(t, m)
}

// TestLostKeyFileNotReplaced: a deleted secret.key is not silently
// replaced by a new one while the database holds data sealed under it.
func TestLostKeyFileNotReplaced(t *testing.T) {
	dir := t.TempDir()
	m := &server.Main{DataDir: dir}
	run(t, m)
	admin := m.AdminToken
	must(t, m.URL(), admin, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw-n1"), 201, nil)
	m.Close()
	keyFile := filepath.Join(dir, "secret.key")
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	err := startErr(t, &server.Main{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("start without the key file = %v; want a refusal naming the missing %s", err, keyFile)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a new key file was created in place of the lost one (stat: %v)", err)
	}
	// The documented recovery when the key is truly gone: drop the key
	// check and the passwords nothing can open; the server then starts
	// with a new key and the pool is intact, without passwords.
	raw, err := sql.Open("sqlite", filepath.Join(dir, "ironpool.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM settings WHERE name = 'key_check'`, `UPDATE nodes SET bmc_password = ''`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	m = &server.Main{DataDir: dir}
	run(t, m)
	var n ironpool.Node
	must(t, m.URL(), admin, "GET", "/v1/nodes/n1?reveal=true", nil, 200, &n)
	if n.BMC.Password != "" || n.BMC.PasswordError != "" {
		t.Errorf("after the recovery: password %q, error %q; want none", n.BMC.Password, n.BMC.PasswordError)
	}
	m.Close()

	// A first start on an empty database still creates the key.
	fresh := t.TempDir()
	run(t, &server.Main{DataDir: fresh})
	if fi, err := os.Stat(filepath.Join(fresh, "secret.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("first start: secret.key %v %v, want created with mode 0600", fi, err)
	}
}

// TestLostKeyRow: one node whose password is sealed under a key the server
// does not have. Listing, showing, allocating, setting its password and
// deleting it all work; reseal reports it and does the rest.
func TestLostKeyRow(t *testing.T) {
	dir := t.TempDir()
	m := &server.Main{DataDir: dir}
	run(t, m)
	base, admin := m.URL(), m.AdminToken
	for _, n := range []string{"good", "lost1", "lost2"} {
		must(t, base, admin, "POST", "/v1/nodes", nodeJSON(n, "p-"+n, "pw-"+n), 201, nil)
	}
	m.Close()

	// Reseal lost1 and lost2 under a key nobody keeps.
	other, _ := secret.GenerateKey()
	ring, _ := secret.New(other)
	st, err := sqlite.Open(context.Background(), m.DB, ring)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	for _, n := range []string{"lost1", "lost2"} {
		if _, err := st.UpdateNode(ctx, n, func(n *ironpool.Node) error {
			n.BMC.Password, n.BMC.PasswordError = "pw-unknown", ""
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	m = &server.Main{DataDir: dir}
	run(t, m)
	base = m.URL()
	must(t, base, admin, "GET", "/v1/nodes", nil, 200, nil)
	var shown ironpool.Node
	must(t, base, admin, "GET", "/v1/nodes/lost1?reveal=true", nil, 200, &shown)
	if shown.BMC.Password != "" || !strings.Contains(shown.BMC.PasswordError, "unknown key") {
		t.Errorf("node show: password %q, password_error %q; want it reported unavailable", shown.BMC.Password, shown.BMC.PasswordError)
	}
	env := map[string]string{"IRONPOOL_URL": base, "IRONPOOL_TOKEN": admin}
	if code, out, errOut := runCLI(t, env, "node", "show", "lost1"); code != 0 || !strings.Contains(out, "unavailable") {
		t.Errorf("node show lost1: exit %d, want the password shown unavailable:\n%s%s", code, out, errOut)
	}

	// Allocating it commits and answers with the id (never 500 after commit).
	user := newToken(t, base, admin, "user", "lab1")
	var a ironpool.Allocation
	must(t, base, user, "POST", "/v1/allocations", allocJSON("lab1", "p-lost2"), 201, &a)
	if a.ID == "" || len(a.Nodes) != 1 || a.Nodes[0].BMC.PasswordError == "" {
		t.Errorf("allocation of lost2 = %+v; want its id and the node with its password reported unavailable", a)
	}

	var res struct {
		Resealed int      `json:"resealed"`
		Skipped  []string `json:"skipped"`
	}
	must(t, base, admin, "POST", "/v1/admin/reseal", nil, 200, &res)
	if len(res.Skipped) != 2 {
		t.Errorf("reseal skipped %v, want lost1 and lost2", res.Skipped)
	}
	if code, out, errOut := runCLI(t, env, "admin", "reseal"); code != 0 || !strings.Contains(out, "lost1") {
		t.Errorf("admin reseal: exit %d, want success naming lost1:\n%s%s", code, out, errOut)
	}

	// The hint "set the secret again" works, and so does delete.
	if code, _, errOut := runCLI(t, env, "node", "set", "lost1", "bmc.password="); code != 0 {
		t.Errorf("node set lost1 bmc.password=: exit %d: %s", code, errOut)
	}
	shown = ironpool.Node{}
	must(t, base, admin, "GET", "/v1/nodes/lost1", nil, 200, &shown)
	if shown.BMC.PasswordError != "" {
		t.Errorf("after setting the password: password_error %q", shown.BMC.PasswordError)
	}
	must(t, base, admin, "DELETE", "/v1/allocations/"+a.ID, nil, 200, nil)
	if code, _, errOut := runCLI(t, env, "node", "delete", "lost2"); code != 0 {
		t.Errorf("node delete lost2: exit %d: %s", code, errOut)
	}
}
