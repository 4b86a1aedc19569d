package sqlite_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/storetest"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestStore runs the contract suite on a real SQLite file.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ironpool.Store {
		s, _ := opener.MustOpenSQLite(t)
		return s
	})
}

// TestPasswordNotInFile reads the database file and its write-ahead log as
// bytes: a stolen copy of either must not reveal a BMC password.
func TestPasswordNotInFile(t *testing.T) {
	s, path := opener.MustOpenSQLite(t)
	const password = "Distinctive-Marmot-Password-4711"
	storetest.CreateSecretNode(t, s, "n1", password)
	// Change it once, so that the old and new row versions are both on disk.
	if _, err := s.UpdateNode(t.Context(), "n1", func(n *ironpool.Node) error {
		n.BMC.Password = password + "-v2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindNode(t.Context(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if got.BMC.Password != password+"-v2" {
		t.Fatalf("password = %q, want it back", got.BMC.Password)
	}
	found := 0
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		found++
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s contains the BMC password in clear", filepath.Base(p))
		}
	}
	if found == 0 {
		t.Fatal("neither the database file nor its WAL exists")
	}
	// The check must be able to fail: the address, stored in clear, is there.
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("ipmi://10.0.0.9")) {
		t.Error("the node row is in neither file; the check above proves nothing")
	}
}
