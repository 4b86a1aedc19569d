package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/ironpool/ironpool/internal/testlog"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// memSource is an in-memory event log standing in for the store.
type memSource struct {
	mu  sync.Mutex
	evs []*ironpool.Event
}

func (m *memSource) add(action string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, &ironpool.Event{ID: int64(len(m.evs) + 1), Time: at, Actor: "tok-1",
		Role: ironpool.RoleAdmin, Action: action, Subject: "node/n1", Summary: action})
}

func (m *memSource) FindEvents(_ context.Context, f ironpool.EventFilter) ([]*ironpool.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ironpool.Event
	for _, e := range m.evs {
		if e.ID > f.AfterID && !e.Time.Before(f.Since) && (f.Limit == 0 || len(out) < f.Limit) {
			c := *e
			out = append(out, &c)
		}
	}
	return out, nil
}

// receiver records deliveries; status decides each reply.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	calls  atomic.Int32
	status func(call int32) int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	n := r.calls.Add(1)
	b, _ := io.ReadAll(req.Body)
	st := http.StatusNoContent
	if r.status != nil {
		st = r.status(n)
	}
	if st < 300 {
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.sigs = append(r.sigs, req.Header.Get(SignatureHeader))
		r.mu.Unlock()
	}
	w.WriteHeader(st)
}

func (r *receiver) got() ([][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]string(nil), r.sigs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startSender(t *testing.T, src Source, cfg Config) (*Sender, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	if cfg.Secret == nil {
		cfg.Secret = []byte("s3cret")
	}
	if cfg.BaseDelay == 0 {
		cfg.BaseDelay = time.Millisecond
	}
	s, err := New(src, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// TestDelivery checks that every event arrives once, in order, as the
// event's JSON, signed with an HMAC the receiver can recompute on its own
// (the test does not use Sign, so a broken Sign cannot vouch for itself).
func TestDelivery(t *testing.T) {
	src := &memSource{}
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	s, _ := startSender(t, src, Config{URLs: []string{srv.URL}, Secret: []byte("k3y")})
	for _, a := range []string{"node.created", "allocation.created", "allocation.released"} {
		src.add(a, time.Now())
	}
	s.Notify()
	waitFor(t, "3 deliveries", func() bool { b, _ := rcv.got(); return len(b) == 3 })
	bodies, sigs := rcv.got()
	for i, b := range bodies {
		m := hmac.New(sha256.New, []byte("k3y"))
		m.Write(b)
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); sigs[i] != want {
			t.Errorf("delivery %d: signature %q, want %q", i, sigs[i], want)
		}
		var e ironpool.Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("delivery %d is not an event: %v", i, err)
		}
		if e.ID != int64(i+1) {
			t.Errorf("delivery %d carries event %d; want in order", i, e.ID)
		}
	}
	if !Verify([]byte("k3y"), bodies[0], sigs[0]) || Verify([]byte("other"), bodies[0], sigs[0]) {
		t.Error("Verify does not tell the right secret from a wrong one")
	}
}

// TestRetry checks that a failing receiver is retried with backoff until it
// accepts, and that a 4xx refusal is not retried.
func TestRetry(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		src := &memSource{}
		rcv := &receiver{status: func(n int32) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		s, _ := startSender(t, src, Config{URLs: []string{srv.URL}})
		src.add("node.created", time.Now())
		s.Notify()
		waitFor(t, "delivery after retries", func() bool { b, _ := rcv.got(); return len(b) == 1 })
		if got := rcv.calls.Load(); got != 3 {
			t.Errorf("receiver called %d times, want 3 (two failures, one success)", got)
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		src := &memSource{}
		rcv := &receiver{status: func(int32) int { return http.StatusInternalServerError }}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		s, logs := startSender(t, src, Config{URLs: []string{srv.URL}, MaxAttempts: 4})
		src.add("node.created", time.Now())
		s.Notify()
		waitFor(t, "give-up log line", func() bool { return strings.Contains(logs.String(), "giving up") })
		time.Sleep(20 * time.Millisecond)
		if got := rcv.calls.Load(); got != 4 {
			t.Errorf("receiver called %d times, want MaxAttempts=4", got)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		src := &memSource{}
		rcv := &receiver{status: func(int32) int { return http.StatusBadRequest }}
		srv := httptest.NewServer(rcv)
		defer srv.Close()
		s, logs := startSender(t, src, Config{URLs: []string{srv.URL}})
		src.add("node.created", time.Now())
		s.Notify()
		waitFor(t, "give-up log line", func() bool { return strings.Contains(logs.String(), "giving up") })
		if got := rcv.calls.Load(); got != 1 {
			t.Errorf("a 400 was tried %d times; it is permanent and must not be retried", got)
		}
	})
}

// TestDropOldest checks that a full queue drops its oldest event with a log
// line, so a dead receiver costs bounded memory.
func TestDropOldest(t *testing.T) {
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	tg := &target{url: "http://user:pw@example.invalid/hook?token=abc", max: 2, wake: make(chan struct{}, 1)}
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for i := int64(1); i <= 5; i++ {
			tg.push(&ironpool.Event{ID: i, Action: "node.created"}, log, nil)
		}
	}()
	select {
	case <-pushed:
	case <-time.After(2 * time.Second):
		t.Fatal("push blocks on a full queue; it must drop the oldest event instead")
	}
	var ids []int64
	for {
		e, ok := tg.pop()
		if !ok {
			break
		}
		ids = append(ids, e.ID)
	}
	if len(ids) != 2 || ids[0] != 4 || ids[1] != 5 {
		t.Errorf("queue kept %v, want the newest two [4 5]", ids)
	}
	if tg.dropped != 3 {
		t.Errorf("dropped %d, want 3", tg.dropped)
	}
	out := logs.String()
	if strings.Count(out, "dropped the oldest event") != 3 {
		t.Errorf("want one log line per dropped event, got:\n%s", out)
	}
	if strings.Contains(out, "pw") || strings.Contains(out, "token=abc") {
		t.Errorf("log line leaks the URL's credentials:\n%s", out)
	}
}

// TestSlowReceiverDoesNotBlock checks that a receiver that never answers
// holds up neither Notify nor another URL's deliveries.
func TestSlowReceiverDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	rcv := &receiver{}
	fast := httptest.NewServer(rcv)
	defer fast.Close()
	src := &memSource{}
	s, _ := startSender(t, src, Config{URLs: []string{slow.URL, fast.URL}, QueueSize: 10})
	for batch := 1; batch <= 5; batch++ {
		start := time.Now()
		for i := 0; i < 10; i++ {
			src.add("allocation.created", time.Now())
			s.Notify()
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("10 notifications took %s; Notify must not wait for delivery", d)
		}
		waitFor(t, "the fast receiver to keep up", func() bool { b, _ := rcv.got(); return len(b) == 10*batch })
	}
	if s.Dropped(slow.URL) == 0 {
		t.Error("the stuck receiver's queue of 4 took 50 events without dropping any")
	}
}

// TestInactiveReplica checks that a replica that is not the leader sends
// nothing, and on becoming leader sends the recent events the old leader
// may have missed but not old history.
func TestInactiveReplica(t *testing.T) {
	src := &memSource{}
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	var active atomic.Bool
	s, _ := startSender(t, src, Config{URLs: []string{srv.URL}, Active: active.Load, Handover: time.Minute,
		PollInterval: 10 * time.Millisecond})
	src.add("node.created", time.Now().Add(-2*time.Minute)) // before the handover window
	src.add("node.updated", time.Now())
	s.Notify()
	time.Sleep(50 * time.Millisecond)
	if n := rcv.calls.Load(); n != 0 {
		t.Fatalf("an inactive replica delivered %d events", n)
	}
	active.Store(true)
	s.Notify()
	waitFor(t, "the recent event", func() bool { b, _ := rcv.got(); return len(b) == 1 })
	b, _ := rcv.got()
	if !bytes.Contains(b[0], []byte("node.updated")) {
		t.Errorf("new leader sent %s; want the recent node.updated only", b[0])
	}
}

// TestNewRefusesUnsigned checks that webhooks cannot be configured without
// a secret or with a URL that is not http(s).
func TestNewRefusesUnsigned(t *testing.T) {
	if _, err := New(&memSource{}, Config{URLs: []string{"http://x"}}, nil); ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Errorf("no secret: err %v, want EINVALID", err)
	}
	if _, err := New(&memSource{}, Config{URLs: []string{"ftp://x"}, Secret: []byte("s")}, nil); ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Errorf("ftp URL: err %v, want EINVALID", err)
	}
}
