package storetest

import (
	"testing"

	"github.com/ironpool/ironpool"
)

// CreateSecretNode adds node name with the given BMC password to s and
// checks that the store hands the password back; engine tests then look
// for it in their raw files or columns.
func CreateSecretNode(t testing.TB, s ironpool.Store, name, password string) {
	t.Helper()
	n := &ironpool.Node{Name: name, CPUs: 8, MACs: []string{"52:54:00:aa:bb:cc"},
		BMC: ironpool.BMC{Address: "ipmi://10.0.0.9", Username: "root", Password: password}}
	if err := n.Validate(""); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateNodes(t.Context(), []*ironpool.Node{n}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindNode(t.Context(), name); err != nil || got.BMC.Password != password {
		t.Fatalf("FindNode = %v, %v; want the password back", got, err)
	}
}
