package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docFiles are the documents users copy commands from.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, _ := filepath.Glob("../../docs/*.md")
	paths = append(paths, "../../README.md")
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = string(b)
	}
	if len(out) < 2 {
		t.Fatalf("found only %d documents", len(out))
	}
	return out
}

// TestDocsHookForms: no document shows a hook form that hides a refusal,
// and no synopsis leaves a constraint's > or < to the shell, which would
// redirect into a file named "=16,…".
func TestDocsHookForms(t *testing.T) {
	evalSubst := regexp.MustCompile(`eval\s+"?\$\(\s*ironpool\s+(allocate|allocation)`)
	unquoted := regexp.MustCompile(`--constraint[ =]([^'"\s][^\s]*[<>])`)
	for path, text := range docFiles(t) {
		for i, line := range strings.Split(text, "\n") {
			if evalSubst.MatchString(line) {
				t.Errorf("%s:%d: eval \"$(ironpool allocate …)\" goes on under set -e after a refusal: %s", path, i+1, line)
			}
			if m := unquoted.FindStringSubmatch(line); m != nil {
				t.Errorf("%s:%d: unquoted constraint %q: the shell takes > as a redirection", path, i+1, m[1])
			}
		}
	}
}
