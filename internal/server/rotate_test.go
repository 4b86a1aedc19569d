package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/sqlite"
)

// resealBatch is the store's batch size; the test needs more nodes than
// one batch to interrupt a reseal between batches.
const resealBatch = 500

// failingSealer seals n values and then fails, as a crash would stop a
// reseal part of the way through.
type failingSealer struct {
	ironpool.Sealer
	n int
}

func (f *failingSealer) Seal(plain, aad string) (string, error) {
	if f.n == 0 {
		return "", errors.New("simulated crash during reseal")
	}
	f.n--
	return f.Sealer.Seal(plain, aad)
}

// rawPasswords reads the stored (sealed) password of every node straight
// from the database.
func rawPasswords(t *testing.T, db string) map[string]string {
	t.Helper()
	ring, _ := secret.New(make([]byte, secret.KeySize))
	st, err := sqlite.Open(context.Background(), db, ring)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.DB().Query(`SELECT name, bmc_password FROM nodes`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, p string
		if err := rows.Scan(&n, &p); err != nil {
			t.Fatal(err)
		}
		out[n] = p
	}
	return out
}

func keyID(t *testing.T, path string) string {
	t.Helper()
	k, err := secret.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secret.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return ring.KeyID()
}

// countByKey counts sealed values per key id.
func countByKey(raw map[string]string) map[string]int {
	c := map[string]int{}
	for _, v := range raw {
		parts := strings.SplitN(v, ":", 3)
		c[parts[1]]++
	}
	return c
}

// reveal reads every node's password through the API with an admin token and
// returns the names whose password did not come back right.
func reveal(t *testing.T, m *server.Main, admin string, names []string) []string {
	t.Helper()
	var bad []string
	for _, n := range names {
		var node ironpool.Node
		st, data := call(t, m.URL(), admin, "GET", "/v1/nodes/"+n+"?reveal=true", nil)
		if st != 200 {
			bad = append(bad, n)
			continue
		}
		if err := jsonUnmarshal(data, &node); err != nil || node.BMC.Password != "pw-"+n {
			bad = append(bad, n)
		}
	}
	return bad
}

// TestKeyRotation follows the documented rotation: `admin rotate-key`
// writes a new key, the server restarts with the new key and the old one,
// `admin reseal` re-encrypts, and the old key is dropped. It interrupts a
// reseal half way and checks every secret still opens, that dropping the
// old key before the reseal finishes is refused (which is why the
// procedure keeps it: the server refuses to start), and that afterwards
// every stored value has changed and opens under the new key alone.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldKey := filepath.Join(dir, "secret.key")
	newKey := filepath.Join(dir, "secret-new.key")
	restart := func(current string, old ...string) *server.Main {
		t.Helper()
		m := &server.Main{DataDir: dir, SecretKeyFile: current, OldSecretKeyFiles: old}
		run(t, m)
		return m
	}

	// A pool with more nodes than one reseal batch.
	m := restart("")
	var nodes []any
	var names []string
	for i := range resealBatch + 100 {
		name := fmt.Sprintf("n%03d", i)
		names = append(names, name)
		nodes = append(nodes, nodeJSON(name, "default", "pw-"+name))
	}
	must(t, m.URL(), m.AdminToken, "POST", "/v1/nodes/import", map[string]any{"nodes": nodes}, 201, nil)
	admin := m.AdminToken
	m.Close()
	before := rawPasswords(t, m.DB)

	// Step 1: the CLI writes the new key, 0600, and refuses to overwrite.
	env := map[string]string{"IRONPOOL_DATA_DIR": dir}
	code, out, errOut := runCLI(t, env, "admin", "rotate-key", "--new-key-file", newKey)
	if code != 0 {
		t.Fatalf("rotate-key: exit %d: %s", code, errOut)
	}
	oldID, newID := keyID(t, oldKey), keyID(t, newKey)
	if !strings.Contains(out, newID) || !strings.Contains(out, oldID) || !strings.Contains(out, "--old-secret-key-file") {
		t.Errorf("rotate-key output lacks the key ids or the next step:\n%s", out)
	}
	if fi, err := os.Stat(newKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new key file: %v %v, want mode 0600", err, fi.Mode().Perm())
	}
	if code, _, _ := runCLI(t, env, "admin", "rotate-key", "--new-key-file", newKey); code == 0 {
		t.Error("rotate-key overwrote an existing key file")
	}
	if oldID == newID {
		t.Fatal("the new key is the old key")
	}

	// Step 2, interrupted: the first batch commits, the second fails.
	oldK, _ := secret.LoadKeyFile(oldKey)
	newK, _ := secret.LoadKeyFile(newKey)
	ring, err := secret.New(newK, oldK)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "ironpool.db"), ring)
	if err != nil {
		t.Fatal(err)
	}
	st.SetSealer(&failingSealer{Sealer: ring, n: resealBatch + 10})
	if _, err := st.Reseal(ironpool.NewContextWithActor(context.Background(), ironpool.System)); err == nil {
		t.Fatal("the simulated crash did not interrupt the reseal")
	}
	st.Close()
	partial := countByKey(rawPasswords(t, m.DB))
	if partial[newID] != resealBatch || partial[oldID] != 100 {
		t.Fatalf("after the interrupted reseal: %v; want %d under the new key and 100 under the old", partial, resealBatch)
	}

	// Mid-rotation, with both keys, every secret opens.
	m = restart(newKey, oldKey)
	if bad := reveal(t, m, admin, names); len(bad) > 0 {
		t.Fatalf("with both keys configured, %d passwords do not open (e.g. %s)", len(bad), bad[0])
	}
	m.Close()

	// Dropping the old key before the reseal finishes would lose the rows
	// still under it: the key check is still under the old key, so the
	// server refuses to start and names the key it needs.
	early := &server.Main{DataDir: dir, SecretKeyFile: newKey, Listen: "127.0.0.1:0", Log: newLogger(io.Discard)}
	if err := early.Run(context.Background()); err == nil {
		early.Close()
		t.Fatal("the server started without the old key while 100 rows still need it")
	} else if !strings.Contains(err.Error(), oldID) || ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Errorf("refusal %q does not name the old key %s (or is not EINVALID)", err, oldID)
	}

	// Step 2 again with both keys finishes the job, and may be rerun.
	m = restart(newKey, oldKey)
	cliEnv := map[string]string{"IRONPOOL_URL": m.URL()}
	for range 2 {
		code, out, errOut = runCLI(t, cliEnv, "admin", "reseal", "--token", admin)
		if code != 0 || !strings.Contains(out, "re-encrypted") {
			t.Fatalf("reseal: exit %d: %s%s", code, out, errOut)
		}
	}
	if !strings.Contains(out, newID) {
		t.Errorf("reseal output %q does not name the new key %s", out, newID)
	}
	// The API reports the key every secret is now under (it was always
	// empty before: the handler looked for a method the store lacks).
	if _, body := call(t, m.URL(), admin, "POST", "/v1/admin/reseal", nil); !strings.Contains(string(body), `"key_id":"`+newID+`"`) {
		t.Errorf("POST /v1/admin/reseal = %s, want key_id %s", body, newID)
	}
	_, events := call(t, m.URL(), admin, "GET", "/v1/events?action=key.rotated", nil)
	if !strings.Contains(string(events), newID) {
		t.Errorf("no key.rotated event names the new key: %s", events)
	}
	m.Close()

	// Every stored value changed and is under the new key.
	after := rawPasswords(t, m.DB)
	for n, v := range after {
		if v == before[n] {
			t.Errorf("%s: stored value unchanged by the rotation", n)
		}
		if !strings.HasPrefix(v, "v1:"+newID+":") {
			t.Errorf("%s: stored value %q is not sealed with the new key", n, v)
		}
	}

	// Step 3: the old key is dropped and everything still opens.
	m = restart(newKey)
	if bad := reveal(t, m, admin, names); len(bad) > 0 {
		t.Fatalf("after the rotation, %d passwords do not open with the new key alone (e.g. %s)", len(bad), bad[0])
	}
}
