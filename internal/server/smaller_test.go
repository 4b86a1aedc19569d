package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/server"
)

// TestHeldNodeBMCAddressFixed: while a node is allocated its BMC address
// cannot be re-pointed (the owner's handoff would show another machine's
// controller); after release it can.
func TestHeldNodeBMCAddressFixed(t *testing.T) {
	m := &server.Main{}
	run(t, m)
	base, admin := m.URL(), m.AdminToken
	operator := newToken(t, base, admin, "operator")
	user := newToken(t, base, admin, "user", "lab1")
	must(t, base, admin, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw"), 201, nil)
	var a ironpool.Allocation
	must(t, base, user, "POST", "/v1/allocations", allocJSON("lab1", "default"), 201, &a)

	set := map[string]any{"set": map[string]string{"bmc.address": "ipmi://127.0.0.1:6299"}}
	st, body := call(t, base, operator, "PATCH", "/v1/nodes/n1", set)
	var prob struct{ Code, Field string }
	json.Unmarshal(body, &prob)
	if st != 409 || prob.Code != ironpool.ECONFLICT || prob.Field != "bmc.address" {
		t.Errorf("re-point a held node: %d %s; want 409 conflict on bmc.address", st, body)
	}
	var got ironpool.Allocation
	must(t, base, user, "GET", "/v1/allocations/"+a.ID, nil, 200, &got)
	if got.Nodes[0].BMC.Address != "ipmi://10.0.0.1:623" {
		t.Errorf("the owner's handoff shows BMC %s, want the original", got.Nodes[0].BMC.Address)
	}
	// Other fields still change while held.
	must(t, base, operator, "PATCH", "/v1/nodes/n1", map[string]any{"set": map[string]string{"fields.rack": "r2"}}, 200, nil)
	must(t, base, user, "DELETE", "/v1/allocations/"+a.ID, nil, 200, nil)
	must(t, base, operator, "PATCH", "/v1/nodes/n1", set, 200, nil)
}

// TestNegativeZeroTTL: "-0s" is refused, not read as "no TTL given" (the
// server's default lease).
func TestNegativeZeroTTL(t *testing.T) {
	m := &server.Main{}
	run(t, m)
	base, admin := m.URL(), m.AdminToken
	must(t, base, admin, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw"), 201, nil)
	req := allocJSON("lab1", "default")
	req["ttl"] = "-0s"
	st, body := call(t, base, admin, "POST", "/v1/allocations", req)
	if st != 400 || !strings.Contains(string(body), `"field":"ttl"`) {
		t.Errorf("ttl -0s: %d %s; want 400 naming ttl", st, body)
	}
	var allocs struct{ Allocations []any }
	must(t, base, admin, "GET", "/v1/allocations", nil, 200, &allocs)
	if len(allocs.Allocations) != 0 {
		t.Errorf("a refused request allocated: %v", allocs.Allocations)
	}
}

// TestDataDirModes: a first start creates the data dir 0700 and every file
// in it 0600, whatever the umask.
func TestDataDirModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	m := &server.Main{DataDir: dir}
	run(t, m)
	must(t, m.URL(), m.AdminToken, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw"), 201, nil)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v, mode %04o; want 0700", err, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	if len(entries) < 4 {
		t.Errorf("data dir holds %d files; want the database (with -wal, -shm), secret.key, admin.token, server.url", len(entries))
	}
}

// TestBadSynchronousChangesNothing: a wrong --sqlite-synchronous is refused
// naming the flag before the data dir, key or database is created.
func TestBadSynchronousChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	err := startErr(t, &server.Main{DataDir: dir, SQLiteSynchronous: "off"})
	if e, ok := err.(*ironpool.Error); !ok || e.Field != "sqlite-synchronous" {
		t.Fatalf("start with synchronous off = %v, want refused naming sqlite-synchronous", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the refused start created %s (stat: %v)", dir, err)
	}
}
