package cli_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ironpool/ironpool/internal/cli"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
	"github.com/ironpool/ironpool/internal/testlog"
)

// runWith runs the CLI with exactly vars as its environment.
func runWith(vars map[string]string, args ...string) (string, string, int) {
	var out, errb testlog.Buffer
	code := cli.Run(context.Background(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return vars[k] }})
	return out.String(), errb.String(), code
}

// authRecorder is a loopback HTTP server that is not ironpool and records
// every Authorization header it is sent.
type authRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	a.mu.Unlock()
	w.WriteHeader(http.StatusUnauthorized)
}

func (a *authRecorder) sent(secret string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.seen {
		if secret != "" && strings.Contains(h, secret) {
			return true
		}
	}
	return false
}

// TestLocalTokenOnlyToItsServer: with no token given, the CLI sends the
// data dir's admin.token to the URL the server on that data dir recorded,
// and to nothing else on loopback: not another program, not another
// ironpool with its own data dir.
func TestLocalTokenOnlyToItsServer(t *testing.T) {
	dir := t.TempDir()
	m := servertest.Start(t, &server.Main{DataDir: dir})
	admin := m.AdminToken
	if b, err := os.ReadFile(filepath.Join(dir, "admin.token")); err != nil || strings.TrimSpace(string(b)) != admin {
		t.Fatalf("admin.token: %v", err)
	}
	if _, errOut, code := runWith(map[string]string{"IRONPOOL_URL": m.URL(), "IRONPOOL_DATA_DIR": dir}, "node", "list"); code != 0 {
		t.Fatalf("node list against the local server with its admin.token: exit %d: %s", code, errOut)
	}

	rec := &authRecorder{}
	impostor := httptest.NewServer(rec)
	defer impostor.Close()
	runWith(map[string]string{"IRONPOOL_URL": impostor.URL, "IRONPOOL_DATA_DIR": dir}, "node", "list")
	if len(rec.seen) == 0 {
		t.Fatal("the impostor got no request at all; the test proves nothing")
	}
	if rec.sent(admin) {
		t.Error("the CLI sent the local admin.token to a loopback server that is not the one on its data dir")
	}

	// Another ironpool on another data dir: refused (no token), not 403ed
	// with ours.
	other := servertest.Start(t, nil)
	if _, _, code := runWith(map[string]string{"IRONPOOL_URL": other.URL(), "IRONPOOL_DATA_DIR": dir}, "node", "list"); code != 4 {
		t.Errorf("node list against another data dir's server: exit %d, want 4 (no token sent)", code)
	}

	// A stopped server's record goes with it.
	m.Close()
	if _, err := os.Stat(filepath.Join(dir, server.LocalURLFile)); !os.IsNotExist(err) {
		t.Errorf("%s left behind after the server stopped (stat: %v)", server.LocalURLFile, err)
	}
}

// TestRedirectToPlainHTTPRefused: a redirect from https to http (or to any
// other origin) is not followed, so the bearer token never crosses the
// network in clear.
func TestRedirectToPlainHTTPRefused(t *testing.T) {
	const token = "ipt_redirect-test-token-0123456789"
	rec := &authRecorder{}
	plain := httptest.NewServer(rec)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	_, errOut, code := runWith(map[string]string{"IRONPOOL_URL": tlsSrv.URL, "IRONPOOL_TOKEN": token, "IRONPOOL_INSECURE": "true"}, "node", "list")
	if code == 0 {
		t.Fatal("node list followed the redirect and succeeded")
	}
	if rec.sent(token) || len(rec.seen) > 0 {
		t.Errorf("the plain-HTTP target was contacted after the redirect (headers %q)", rec.seen)
	}
	if !strings.Contains(errOut, "refusing to follow a redirect") {
		t.Errorf("stderr does not say the redirect was refused:\n%s", errOut)
	}
}
