package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/servertest"
)

// TestOpenAPIResponses: every operation documents its problem statuses
// (at least 400, 401, 403 and 500, none of huma's 422 that ironpool never
// sends), allocate documents both 201 and the queued 202, and the document
// names its server.
func TestOpenAPIResponses(t *testing.T) {
	m := servertest.Start(t, nil)
	resp, err := http.Get(m.URL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Servers []struct{ URL string } `json:"servers"`
		Paths   map[string]map[string]struct {
			OperationID string                     `json:"operationId"`
			Responses   map[string]json.RawMessage `json:"responses"`
		} `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) == 0 {
		t.Error("the document names no server")
	}
	ops := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			ops++
			for _, c := range []string{"400", "401", "403", "500"} {
				if op.Responses[c] == nil {
					t.Errorf("%s %s (%s) does not document %s", method, path, op.OperationID, c)
				}
			}
			if op.Responses["422"] != nil || op.Responses["default"] != nil {
				t.Errorf("%s %s documents 422 or default", method, path)
			}
			if op.OperationID == "allocate" && (op.Responses["201"] == nil || op.Responses["202"] == nil) {
				t.Errorf("allocate documents %v, want 201 and 202", keys(op.Responses))
			}
		}
	}
	if ops < 20 {
		t.Errorf("only %d operations in the document", ops)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestOpenAPILint lints /openapi.json with Redocly's CLI (npm, installed by
// hack/test.sh into ~/.cache/ironpool/redocly; IRONPOOL_REDOCLY names
// another): the recommended rules must report no error and no warning.
func TestOpenAPILint(t *testing.T) {
	bin := os.Getenv("IRONPOOL_REDOCLY")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "ironpool", "redocly", "node_modules", ".bin", "redocly")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("skipped: Redocly CLI not installed at %s (hack/test.sh installs it from npm)", bin)
	}
	m := servertest.Start(t, nil)
	resp, err := http.Get(m.URL() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	path := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "lint", "--format", "stylish", path)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("redocly lint: %v\n%s", err, out)
	}
	if regexp.MustCompile(`You have \d+ warning`).Match(out) {
		t.Errorf("redocly lint warns (the licence and version in info were the last):\n%s", out)
	}
}
