package soak

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoPostgresBinaries means initdb and pg_ctl were not found, so the
// campaign cannot start a PostgreSQL of its own to restart.
var ErrNoPostgresBinaries = errors.New("no initdb/pg_ctl under /usr/lib/postgresql/*/bin (Debian's postgresql package)")

// pgCluster is a private PostgreSQL the campaign starts for its PostgreSQL
// target, so that the restart nemesis can stop and crash it without
// touching the machine's shared server on :5432. It listens on a free
// loopback port, with fsync on (the setting a production server has), and
// runs as the postgres OS user when the campaign runs as root (initdb
// refuses root).
type pgCluster struct {
	binDir string
	dir    string // owned by the user PostgreSQL runs as
	data   string
	port   int
	asUser string // "" when the campaign is not root
	opts   string // the server's options, the same at every start
	logf   func(string, ...any)
}

// pgBinDir finds the newest installed PostgreSQL's bin directory.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err != nil {
			continue
		}
		ok = append(ok, d)
	}
	if len(ok) == 0 {
		return "", ErrNoPostgresBinaries
	}
	sort.Slice(ok, func(i, j int) bool { return pgVersion(ok[i]) < pgVersion(ok[j]) })
	return ok[len(ok)-1], nil
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// startPostgres creates a cluster in a new directory under the system temp
// dir (the campaign's own scratch dir is root's and closed to others) and
// starts it.
func startPostgres(logf func(string, ...any)) (*pgCluster, error) {
	binDir, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ironpool-soak-pg-")
	if err != nil {
		return nil, err
	}
	p := &pgCluster{binDir: binDir, dir: dir, data: filepath.Join(dir, "data"), logf: logf}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, initdb needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		p.asUser = "postgres"
	}
	addr, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p.port, _ = strconv.Atoi(port)
	// -N: initdb's own files are not synced (it is a fresh scratch cluster);
	// the server itself runs with fsync on.
	if out, err := p.run("initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	p.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=on -c synchronous_commit=on -c max_connections=200", p.port, p.dir)
	if err := p.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// run runs one of PostgreSQL's programs as the cluster's user.
func (p *pgCluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(p.binDir, prog)
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// DSN is the URL the replicas use: the cluster's own postgres database,
// whose public schema is empty at the start.
func (p *pgCluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Restart stops the server in mode ("fast": a clean shutdown that ends
// every session; "immediate": a crash, recovered from the WAL at the next
// start), keeps it down for down, and starts it again with the options it
// had.
func (p *pgCluster) Restart(mode string, down time.Duration) error {
	if out, err := p.run("pg_ctl", "-D", p.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %v: %s", mode, err, strings.TrimSpace(string(out)))
	}
	time.Sleep(down)
	return p.start()
}

func (p *pgCluster) start() error {
	if out, err := p.run("pg_ctl", "-D", p.data, "-o", p.opts, "-l", filepath.Join(p.dir, "postgres.log"), "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Stop shuts the cluster down and removes its files.
func (p *pgCluster) Stop() {
	if out, err := p.run("pg_ctl", "-D", p.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		p.logf("pg_ctl stop: %v: %s", err, strings.TrimSpace(string(out)))
	}
	os.RemoveAll(p.dir)
}
