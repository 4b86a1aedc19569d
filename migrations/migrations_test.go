package migrations

import (
	"bytes"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
)

// TestDialects checks that each dialect serves every schema file, found by
// the glob goose uses, with @ID@ filled in and the size it reports.
func TestDialects(t *testing.T) {
	want, err := fs.Glob(schema, "schema/*.sql")
	if err != nil || len(want) == 0 {
		t.Fatalf("embedded schema: %v %v", want, err)
	}
	for name, fsys := range map[string]fs.FS{"sqlite": SQLite(), "postgres": Postgres()} {
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil || len(files) != len(want) {
			t.Fatalf("%s: glob = %v, %v; want %d files", name, files, err, len(want))
		}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := fs.ReadFile(schema, "schema/"+f)
			if bytes.Contains(b, []byte("@ID@")) || (bytes.Contains(raw, []byte("@ID@")) && bytes.Equal(b, raw)) {
				t.Errorf("%s %s: @ID@ not filled in", name, f)
			}
			info, err := fs.Stat(fsys, f)
			if err != nil || info.Size() != int64(len(b)) {
				t.Errorf("%s %s: stat = %v, %v; want size %d", name, f, info, err, len(b))
			}
		}
	}
}

// TestBinaryHasNoTestingPackages keeps test-only packages (testing/fstest
// once came in through this package) out of the production binary.
func TestBinaryHasNoTestingPackages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipped: no go command to list the binary's packages")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/ironpool/ironpool/cmd/ironpool").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		ours := strings.HasPrefix(pkg, "github.com/ironpool/ironpool/")
		if pkg == "testing" || strings.HasPrefix(pkg, "testing/") || (ours && strings.HasSuffix(pkg, "test")) {
			t.Errorf("cmd/ironpool depends on %s", pkg)
		}
	}
}

// TestPostgresOnlyBlocks: the blocks marked for PostgreSQL reach it and are
// left out of SQLite, which has no such triggers (its write connection
// reports changes itself).
func TestPostgresOnlyBlocks(t *testing.T) {
	const f = "00010_node_changes.sql"
	pg, err := fs.ReadFile(Postgres(), f)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := fs.ReadFile(SQLite(), f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(pg, []byte("CREATE TRIGGER nodes_updated")) {
		t.Errorf("postgres %s lacks its triggers", f)
	}
	if bytes.Contains(lite, []byte("TRIGGER")) || bytes.Contains(lite, []byte("+ironpool")) {
		t.Errorf("sqlite %s kept the PostgreSQL block:\n%s", f, lite)
	}
	if !bytes.Contains(lite, []byte("-- +goose Down")) {
		t.Errorf("sqlite %s lost its Down section:\n%s", f, lite)
	}
}
