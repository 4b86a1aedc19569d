package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles cmd/ironpool into dir and returns the binary's path. The
// campaign runs the real binary in its own processes so that kill -9 and
// SIGSTOP hit a server exactly as they would in production.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "ironpool")
	// -tags soakclock: the campaign's build only, whose clock the
	// clock-jump nemesis can move (internal/clock).
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "soakclock", "-o", bin, "github.com/ironpool/ironpool/cmd/ironpool")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Replica is one `ironpool serve` process, restartable on the same port,
// database and data directory.
type Replica struct {
	Index   int
	Bin     string
	Args    []string
	Addr    string // 127.0.0.1:port, fixed across restarts
	DataDir string
	LogPath string
	// ClockFile holds this replica's clock offset (internal/clock,
	// soakclock build): nanoseconds, written by the clock-jump nemesis.
	ClockFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// URL is the replica's base URL.
func (r *Replica) URL() string { return "http://" + r.Addr }

// Start launches the process and waits until /healthz answers.
func (r *Replica) Start(ctx context.Context) error {
	r.mu.Lock()
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	cmd := exec.Command(r.Bin, r.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if r.ClockFile != "" {
		cmd.Env = append(os.Environ(), "IRONPOOL_SOAK_CLOCK_FILE="+r.ClockFile)
	}
	// Its own process group, so a signal meant for the campaign does not
	// reach it; and killed with the campaign, so a run that dies leaves no
	// server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.mu.Unlock()
		return fmt.Errorf("start replica %d: %w", r.Index, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	r.cmd, r.exited, r.paused = cmd, exited, false
	r.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.Health(ctx); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("replica %d exited at start; see %s", r.Index, r.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("replica %d did not answer /healthz within 30s; see %s", r.Index, r.LogPath)
}

// Kill sends SIGKILL (continuing it first if paused) and waits for the exit.
func (r *Replica) Kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Stop ends the process gracefully (SIGTERM), then by SIGKILL after 10 s.
func (r *Replica) Stop() {
	r.mu.Lock()
	cmd, exited, paused := r.cmd, r.exited, r.paused
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// SetClock moves the replica's clock by off from the true time (0: back
// to true), within the 10 ms the server takes to read the file. The file
// is replaced whole, so the server never reads half a number.
func (r *Replica) SetClock(off time.Duration) error {
	tmp := r.ClockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(int64(off), 10)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.ClockFile)
}

// Pause and Resume send SIGSTOP and SIGCONT.
func (r *Replica) Pause() { r.signal(syscall.SIGSTOP, true) }

// Resume continues a paused process.
func (r *Replica) Resume() { r.signal(syscall.SIGCONT, false) }

func (r *Replica) signal(sig syscall.Signal, paused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		r.cmd.Process.Signal(sig)
		r.paused = paused
	}
}

// Running reports whether the process is up.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// Health reads /healthz: whether the replica answers and runs the loops.
func (r *Replica) Health(ctx context.Context) (leader bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.URL()+"/healthz", nil)
	resp, err := healthClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
		Leader bool   `json:"leader"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(b, &h) != nil || h.Status != "ok" {
		return false, fmt.Errorf("healthz %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return h.Leader, nil
}

var healthClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// freePort reserves a loopback port for a replica. The listener is closed
// at once; the port stays the replica's across restarts.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Cluster is the servers of one campaign target.
type Cluster struct {
	Replicas []*Replica
	Token    string
	// Proxy sits between the last replica and PostgreSQL (nil on SQLite).
	Proxy *Proxy
	// DBPath is the SQLite file (empty on PostgreSQL); DiskDir its directory.
	DBPath string
}

// StartCluster starts n replicas of bin sharing db (a SQLite path when
// n == 1, else a postgres:// URL). With a proxy, the last replica reaches
// PostgreSQL through it.
func StartCluster(ctx context.Context, bin, dir, db string, n int, proxy *Proxy) (*Cluster, error) {
	c := &Cluster{Proxy: proxy}
	if !strings.HasPrefix(db, "postgres") {
		c.DBPath = db
	}
	keyFile := filepath.Join(dir, "secret.key")
	for i := 0; i < n; i++ {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		data := filepath.Join(dir, fmt.Sprintf("r%d", i))
		rdb := db
		if proxy != nil && i == n-1 {
			rdb = proxy.DSN(db)
		}
		r := &Replica{Index: i, Bin: bin, Addr: addr, DataDir: data, LogPath: filepath.Join(dir, fmt.Sprintf("r%d.log", i)),
			ClockFile: filepath.Join(dir, fmt.Sprintf("r%d.clock", i)),
			Args: []string{"serve", "--listen", addr, "--db", rdb, "--data-dir", data, "--secret-key-file", keyFile,
				"--replica-id", fmt.Sprintf("r%d", i), "--log-level", "warn", "--default-ttl", "1m", "--max-wait", "1m"}}
		if err := r.Start(ctx); err != nil {
			c.Stop()
			return nil, err
		}
		c.Replicas = append(c.Replicas, r)
		if b, err := os.ReadFile(filepath.Join(data, "admin.token")); err == nil && c.Token == "" {
			c.Token = strings.TrimSpace(string(b))
		}
	}
	if c.Token == "" {
		c.Stop()
		return nil, fmt.Errorf("no replica wrote admin.token (the database was not empty?)")
	}
	return c, nil
}

// Leaders lists the replicas that say they run the background loops.
func (c *Cluster) Leaders(ctx context.Context) []int {
	var out []int
	for _, r := range c.Replicas {
		if l, err := r.Health(ctx); err == nil && l {
			out = append(out, r.Index)
		}
	}
	return out
}

// WaitHealthy waits until every replica answers and exactly one leads.
func (c *Cluster) WaitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, r := range c.Replicas {
			if _, err := r.Health(ctx); err != nil {
				ok = false
			}
		}
		if ok && len(c.Leaders(ctx)) == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not healthy with one leader after %s (leaders %v)", timeout, c.Leaders(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends every replica.
func (c *Cluster) Stop() {
	for _, r := range c.Replicas {
		r.Stop()
	}
	if c.Proxy != nil {
		c.Proxy.Close()
	}
}
