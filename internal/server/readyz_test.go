package server_test

import (
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/server"
)

type readiness struct {
	Ready      bool   `json:"ready"`
	Database   string `json:"database"`
	Migrations string `json:"migrations"`
	Background string `json:"background"`
}

func getReady(t *testing.T, base string) (int, readiness) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, r
}

// waitReady polls /readyz until it answers want (the leader takes its lease
// on the loop's first turn, a moment after start).
func waitReady(t *testing.T, base string, want int) readiness {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, r := getReady(t, base)
		if st == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d %+v, want %d", st, r, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func healthz(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzChecks: a SQLite server becomes ready once its loop holds the
// background lease; with the loop stopped and its lease expired, or with
// the schema behind the binary, /readyz is 503 naming the check, while
// /healthz (liveness) stays 200.
func TestReadyzChecks(t *testing.T) {
	m := &server.Main{}
	run(t, m)
	base := m.URL()
	if r := waitReady(t, base, 200); !r.Ready || r.Database != "ok" || r.Migrations != "ok" || r.Background != "ok" {
		t.Fatalf("ready server: %+v", r)
	}
	db, err := sql.Open("sqlite", m.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	m.Reconciler.Close()
	if _, err := db.Exec(`UPDATE leases SET expires_at = 1 WHERE name = 'background'`); err != nil {
		t.Fatal(err)
	}
	st, r := getReady(t, base)
	if st != 503 || r.Ready || r.Background == "ok" || r.Database != "ok" {
		t.Errorf("no background loop: %d %+v, want 503 naming background", st, r)
	}
	if h := healthz(t, base); h != 200 {
		t.Errorf("/healthz %d without a background loop; liveness must stay 200", h)
	}

	if _, err := db.Exec(`UPDATE leases SET expires_at = 9999999999999 WHERE name = 'background'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE goose_db_version SET is_applied = false WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)`); err != nil {
		t.Fatal(err)
	}
	st, r = getReady(t, base)
	if st != 503 || r.Migrations == "ok" || r.Background != "ok" {
		t.Errorf("schema behind: %d %+v, want 503 naming migrations", st, r)
	}
}

// proxy forwards TCP connections from a loopback port to target until
// stopped; stopping closes the listener and every open connection, which is
// how a database host going away looks to the server.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, addr, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestReadyzDatabaseUnreachable runs a server on PostgreSQL through a TCP
// proxy, stops the proxy, and expects /readyz to fail saying the database
// is unreachable; with the proxy back on the same port it is ready again.
func TestReadyzDatabaseUnreachable(t *testing.T) {
	dsn := pgtest.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("test DSN: %v", err)
	}
	target := u.Host
	p := startProxy(t, "127.0.0.1:0", target)
	addr := p.ln.Addr().String()
	u.Host = addr
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	m := &server.Main{DB: u.String()}
	run(t, m)
	base := m.URL()
	waitReady(t, base, 200)

	p.stop()
	st, r := getReady(t, base)
	if st != 503 || r.Ready || r.Database != "unreachable" {
		t.Fatalf("database down: /readyz %d %+v, want 503 with database unreachable", st, r)
	}

	startProxy(t, addr, target)
	waitReady(t, base, 200)
}
