package server_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/ironpool/ironpool/internal/testlog"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/server"
)

// hookReceiver records the events a webhook delivers, checking each
// signature with its own HMAC computation.
type hookReceiver struct {
	secret []byte
	mu     sync.Mutex
	events []ironpool.Event
	bad    []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := hmac.New(sha256.New, h.secret)
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := r.Header.Get("X-Ironpool-Signature"); got != want {
		h.bad = append(h.bad, fmt.Sprintf("signature %q, want %q", got, want))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e ironpool.Event
	if err := json.Unmarshal(body, &e); err != nil {
		h.bad = append(h.bad, "body is not an event: "+string(body))
	}
	h.events = append(h.events, e)
}

func (h *hookReceiver) actions() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, e.Action+" "+e.Subject)
	}
	return out
}

// TestWebhookDelivery starts `serve --webhook URL --webhook-secret-file F`
// and checks that changes arrive at the receiver as signed events.
func TestWebhookDelivery(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "hook.secret")
	if err := os.WriteFile(secretFile, []byte("hook-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rcv := &hookReceiver{secret: []byte("hook-s3cret")}
	hook := httptest.NewServer(rcv)
	t.Cleanup(hook.Close) // after the server's cleanup, which stops deliveries

	data := filepath.Join(dir, "data")
	url := serveCLI(t, nil, "--data-dir", data, "--webhook", hook.URL, "--webhook-secret-file", secretFile)
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(tok))
	must(t, url, admin, "POST", "/v1/nodes", nodeJSON("w1", "default", "Secret-Hook-PW"), 201, nil)
	var a struct {
		ID string `json:"id"`
	}
	must(t, url, admin, "POST", "/v1/allocations", allocJSON("lab1", "default"), 201, &a)
	must(t, url, admin, "DELETE", "/v1/allocations/"+a.ID, nil, 200, nil)

	want := []string{"node.created node/w1", "allocation.created allocation/" + a.ID}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := strings.Join(rcv.actions(), "\n")
		missing := ""
		for _, w := range want {
			if !strings.Contains(got, w) {
				missing = w
			}
		}
		if missing == "" {
			if strings.Contains(got, "Secret-Hook-PW") {
				t.Error("an event carries the BMC password")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %q never arrived; got:\n%s", missing, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("bad deliveries: %v", rcv.bad)
	}
}

// TestWebhookNeverBlocks configures one webhook that refuses connections
// and one that takes 10 s to answer, and checks that 50 allocations and
// releases run at full speed and that the server still shuts down promptly.
func TestWebhookNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/hook"
	ln.Close() // nothing listens there now: connection refused
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // net/http notices a client hang-up only once the body is read
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close) // after the server's cleanup, which stops deliveries

	m := &server.Main{Webhooks: []string{dead, slow.URL}, WebhookSecret: "s"}
	run(t, m)
	base, admin := m.URL(), m.AdminToken
	var nodes []any
	for i := range 50 {
		nodes = append(nodes, nodeJSON(fmt.Sprintf("b%02d", i), "default", "pw"))
	}
	must(t, base, admin, "POST", "/v1/nodes/import", map[string]any{"nodes": nodes}, 201, nil)

	// The loop runs on its own goroutine so that a webhook that does block
	// fails the test in seconds instead of hanging it.
	start := time.Now()
	var slowest time.Duration
	done := make(chan error, 1)
	go func() {
		for range 50 {
			t0 := time.Now()
			var a struct {
				ID string `json:"id"`
			}
			if st, body := post(base, admin, "POST", "/v1/allocations", allocJSON("lab1", "default")); st != 201 {
				done <- fmt.Errorf("allocate: %d %s", st, body)
				return
			} else if err := json.Unmarshal(body, &a); err != nil {
				done <- err
				return
			}
			if st, body := post(base, admin, "DELETE", "/v1/allocations/"+a.ID, nil); st != 200 {
				done <- fmt.Errorf("release: %d %s", st, body)
				return
			}
			slowest = max(slowest, time.Since(t0))
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("50 allocate+release did not finish in 10 s with a dead and a slow webhook; delivery is blocking them")
	}
	if total := time.Since(start); total > 5*time.Second || slowest > time.Second {
		t.Errorf("50 allocate+release took %s (slowest %s) with a dead and a slow webhook; they must not wait for it", total, slowest)
	}
	t0 := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("shutdown took %s; a stuck webhook must not hold it up", d)
	}
}

// post is call without testing.T, for use off the test goroutine.
func post(base, tok, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// TestWebhookNeedsSecret checks that a webhook without a signing secret is
// refused at start, since unsigned calls could be forged by anyone.
func TestWebhookNeedsSecret(t *testing.T) {
	m := &server.Main{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Webhooks: []string{"http://127.0.0.1:9/"}}
	logs := &testlog.Buffer{}
	m.Log = newLogger(logs)
	if err := m.Run(t.Context()); err == nil {
		m.Close()
		t.Fatal("a webhook without a secret was accepted")
	}
}
