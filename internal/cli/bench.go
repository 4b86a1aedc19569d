package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// benchFlags are the bench command's flags; check validates all of them
// before anything is started, seeded or sent.
type benchFlags struct {
	nodes, clients, replicas, churnLeases int
	dur, db, cpuprofile, synchronous      string
	peer, seed                            string
	target, floor, churn, serverProcess   bool

	d       time.Duration
	peerURL string
}

func (f *benchFlags) check() error {
	var err error
	if f.d, err = time.ParseDuration(f.dur); err != nil || f.d <= 0 {
		return usagef("--duration %q is not a positive duration (e.g. 10s)", f.dur)
	}
	switch {
	case f.nodes < 0 || f.nodes > 10_000_000:
		return usagef("--nodes %d: want 0 to 10000000", f.nodes)
	case f.clients < 1 || f.clients > 4096:
		return usagef("--clients %d: want 1 to 4096", f.clients)
	case f.replicas < 1 || f.replicas > 16:
		return usagef("--replicas %d: want 1 to 16", f.replicas)
	case f.replicas > 1 && !server.IsPostgres(f.db):
		return usagef("--replicas needs --db postgres://…")
	case f.synchronous != "full" && f.synchronous != "normal":
		return usagef("--sqlite-synchronous %q: want full or normal", f.synchronous)
	case f.churn && (f.churnLeases < 1 || f.churnLeases > 1_000_000):
		return usagef("--churn-leases %d: want 1 to 1000000", f.churnLeases)
	case !f.churn && f.churnLeases != 10000:
		return usagef("--churn-leases needs --churn")
	case f.seed != "" && f.seed != "bulk" && f.seed != "api":
		return usagef("--seed %q: want bulk or api", f.seed)
	case f.target && f.seed == "bulk":
		return usagef("--seed bulk writes to the database of a server bench starts; with --target only --seed api works")
	case f.target && (f.serverProcess || f.db != "" || f.replicas > 1):
		return usagef("--target measures the server at --url: --server-process, --db and --replicas are for the built-in server")
	case f.serverProcess && f.replicas > 1:
		return usagef("--server-process runs one server; use --replicas without it")
	}
	if f.seed == "" {
		f.seed = "bulk"
		if f.target {
			f.seed = "api"
		}
	}
	if f.peer != "" {
		name, u, ok := strings.Cut(f.peer, "=")
		if !ok || name != "ironic" {
			return usagef("--peer %q: want ironic=URL (the only peer is Ironic's allocation API)", f.peer)
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return usagef("--peer %q: %q is not an http(s) URL", f.peer, u)
		}
		f.peerURL = u
	}
	return nil
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench [--nodes N] [--clients C] [--duration D] [--floor] [--churn] [--peer ironic=URL] [--db PATH|postgres://…] [--target]",
		Short: "Measure allocations per second and p50/p99 latency over HTTP with concurrent clients",
		Long: `Measure allocation throughput end to end. By default it starts its own server
on 127.0.0.1 with a fresh database (SQLite in a temp dir, or --db), seeds --nodes
nodes of three shapes (--seed bulk: straight into the database with multi-row
INSERTs before the server starts; --seed api: through the HTTP import), and runs
--clients clients that each allocate a 2-item request and release it, for
--duration. With --target it measures the server at --url / IRONPOOL_URL
instead (seeding a pool named by the run through the API).

--floor also runs a trivial JSON handler (stdlib net/http, keep-alive, the same
clients) in this process and prints its requests/s, p50 and p99, and the ratio
ironpool pairs/s ÷ (floor requests/s ÷ 2): an allocate+release pair is two
requests, and no allocation API over HTTP can beat the floor on this machine.

--churn then runs the same load again while --churn-leases leases (in a pool of
their own) expire one after another across the run, then once more without
them, and reports the expiry lag (release time − expires_at, from the audit
log) and the churn run's rate against the mean of the no-churn runs before
and after it (so a machine that drifts between runs does not pass for churn).

--peer ironic=URL registers --nodes fake-hardware nodes in that Ironic and runs
its allocation API (one node per allocation, until active, then DELETE) with
the same clients, then deletes the nodes.

--server-process runs the built-in server as a child process (this binary's
serve command), so the memory figures (VmHWM, VmRSS from /proc) are the
server's alone; otherwise they are of this process, server and clients.

On SQLite (one server) it also prints how busy the one writer was during
the ironpool runs, from the server's /metrics: near 100% means the writer,
not HTTP, bounds the rate. On PostgreSQL it prints how many calls a batch
served on average and the share of all calls that batches served (the rest
ran in transactions of their own), summed over the replicas.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			return a.runBench(cmd.Context(), &f)
		},
	}
	fl := c.Flags()
	fl.IntVar(&f.nodes, "nodes", 10000, "nodes to seed")
	fl.IntVar(&f.clients, "clients", 16, "concurrent clients")
	fl.StringVar(&f.dur, "duration", "10s", "how long each measured load runs")
	fl.StringVar(&f.db, "db", "", "database for the built-in server (default: SQLite in a temp dir)")
	fl.BoolVar(&f.target, "target", false, "measure the server at --url instead of starting one")
	fl.StringVar(&f.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured part (clients, and the built-in server unless --server-process) to this file")
	fl.StringVar(&f.synchronous, "sqlite-synchronous", "full", "SQLite durability of the built-in server: full or normal (see serve --help)")
	fl.IntVar(&f.replicas, "replicas", 1, "start this many servers on the --db PostgreSQL and spread the clients over them")
	fl.BoolVar(&f.floor, "floor", false, "also measure a trivial JSON handler with the same clients and print the ratio")
	fl.BoolVar(&f.churn, "churn", false, "also run the load while --churn-leases leases expire, and report the expiry lag")
	fl.IntVar(&f.churnLeases, "churn-leases", 10000, "live leases of the --churn run")
	fl.StringVar(&f.peer, "peer", "", "also run a peer's allocation API on the same nodes and clients: ironic=URL")
	fl.StringVar(&f.seed, "seed", "", "how to seed: bulk (into the database, the default for the built-in server) or api (HTTP import; the only way with --target)")
	fl.BoolVar(&f.serverProcess, "server-process", false, "run the built-in server as a separate process, so memory is measured for the server alone")
	return c
}

// runBench seeds, starts what is measured, runs every asked-for part one
// after another in this one run, and prints the report.
func (a *app) runBench(ctx context.Context, f *benchFlags) error {
	rep := bench.Report{Machine: bench.ReadMachine()}
	logw := a.env.Stderr
	pool := "bench"
	var cls []*client.Client
	serverPID := 0 // the child server, with --server-process
	if f.target {
		cl, err := a.client()
		if err != nil {
			return err
		}
		cls = []*client.Client{cl}
		pool = fmt.Sprintf("bench%d", time.Now().Unix()%100000)
	} else {
		dir, err := os.MkdirTemp("", "ironpool-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		db := f.db
		if db == "" {
			db = filepath.Join(dir, "ironpool.db")
		}
		// A first server creates the database, key and admin token; with
		// --seed bulk it also writes the nodes straight into its store.
		// It then stops, so the measured server starts on the full pool
		// as it would in production (and builds whatever it keeps in
		// memory from it).
		m := a.benchMain(dir, db, f.synchronous)
		if err := m.Run(ctx); err != nil {
			return err
		}
		token := m.AdminToken
		if f.seed == "bulk" {
			st, ok := m.Store.(*sqlstore.Store)
			if !ok {
				m.Close()
				return fmt.Errorf("bench: the store does not support bulk seeding")
			}
			fmt.Fprintf(logw, "seeding %d nodes (bulk)...\n", f.nodes+f.churnCount())
			t0 := time.Now()
			err := bench.SeedStore(ctx, st, f.nodes, pool)
			if err == nil && f.churn {
				err = bench.SeedChurnStore(ctx, st, f.churnLeases)
			}
			rep.Seed = bench.Seeding{Nodes: f.nodes + f.churnCount(), Method: "bulk", Seconds: time.Since(t0).Seconds()}
			if err != nil {
				m.Close()
				return err
			}
		}
		if err := m.Close(); err != nil {
			return err
		}
		if f.serverProcess {
			u, pid, stop, err := a.startServerProcess(ctx, dir, db, f.synchronous)
			if err != nil {
				return err
			}
			defer stop()
			serverPID = pid
			c, err := client.New(u, token, client.Options{})
			if err != nil {
				return err
			}
			cls = append(cls, c)
		} else {
			for range f.replicas {
				m := a.benchMain(dir, db, f.synchronous)
				if err := m.Run(ctx); err != nil {
					return err
				}
				defer m.Close()
				c, err := client.New(m.URL(), token, client.Options{})
				if err != nil {
					return err
				}
				cls = append(cls, c)
			}
		}
	}
	cl := cls[0]
	if err := bench.SeedFlavors(ctx, cl); err != nil {
		return err
	}
	if f.seed == "api" {
		fmt.Fprintf(logw, "seeding %d nodes (api)...\n", f.nodes+f.churnCount())
		t0 := time.Now()
		err := bench.Seed(ctx, cl, f.nodes, pool)
		if err == nil && f.churn {
			err = bench.SeedChurn(ctx, cl, f.churnLeases)
		}
		rep.Seed = bench.Seeding{Nodes: f.nodes + f.churnCount(), Method: "api", Seconds: time.Since(t0).Seconds()}
		if err != nil {
			return err
		}
	}
	o := bench.Options{Clients: f.clients, Duration: f.d, Pool: pool}
	if f.cpuprofile != "" {
		pf, err := os.Create(f.cpuprofile)
		if err != nil {
			return usagef("--cpuprofile: %v", err)
		}
		defer pf.Close()
		o.OnStart = func() {
			if err := pprof.StartCPUProfile(pf); err != nil {
				fmt.Fprintf(logw, "cpu profile: %v\n", err)
			}
		}
		defer pprof.StopCPUProfile()
	}
	// With --floor, ironpool and the floor take turns (floorTurns each,
	// of equal length), so both see the same machine: on a shared
	// machine the load moves within seconds, and a ratio of two figures
	// measured a minute apart says more about the neighbours than about
	// ironpool.
	turns := 1
	if f.floor && f.d >= time.Second {
		turns = floorTurns
	}
	var rs []bench.Result
	var fls []bench.Load
	var writer bench.WriterUse
	var batches bench.BatchUse
	for range turns {
		o.Duration = f.d / time.Duration(turns)
		fmt.Fprintf(logw, "ironpool: %d clients for %s...\n", f.clients, o.Duration)
		// Every server's store counters are sampled around each turn
		// (the one writer's on SQLite, the batches' on PostgreSQL); an
		// error only leaves the line out.
		before := make([]bench.WriterSample, len(cls))
		for i, c := range cls {
			before[i], _ = bench.SampleWriter(ctx, c)
		}
		ri, err := bench.RunMany(ctx, cls, o)
		if err != nil {
			return err
		}
		for i, c := range cls {
			after, _ := bench.SampleWriter(ctx, c)
			if len(cls) == 1 {
				writer.Add(before[i], after)
			}
			batches.Add(before[i], after)
		}
		o.OnStart = nil // profile the first turn only
		rs = append(rs, ri)
		if f.floor {
			fmt.Fprintf(logw, "floor: %d clients for %s...\n", f.clients, o.Duration)
			l, err := bench.Floor(ctx, f.clients, o.Duration)
			if err != nil {
				return err
			}
			fls = append(fls, l)
		}
	}
	o.Duration = f.d
	if writer.Counted() {
		rep.Writer = &writer
	}
	r := bench.MergeResults(rs...)
	r.Nodes = f.nodes
	rep.Ironpool = r
	if batches.Counted() {
		batches.Finish(r)
		rep.Batches = &batches
	}
	if f.floor {
		l := bench.Merge(fls...)
		rep.Floor = &l
		ratio := r.PerSecond / (l.PerSecond / 2)
		rep.FloorRatio = &ratio
	}
	if f.churn {
		ch, err := runChurn(ctx, logw, cls, o, f, r)
		if err != nil {
			return err
		}
		rep.Churn = ch
	}
	if f.peerURL != "" {
		p, err := runIronicPeer(ctx, logw, f, r)
		if err != nil {
			return err
		}
		rep.Peer = p
	}
	if !f.target {
		scope := "server+clients"
		if serverPID > 0 {
			scope = "server"
		}
		if mem, err := bench.ReadMemory(serverPID, scope); err == nil {
			rep.Memory = &mem
		}
	}
	rep.Machine.LoadAfter = bench.LoadAverage()
	return a.print(rep, func(w *tabwriter.Writer) { benchTable(w, &rep) })
}

func (f *benchFlags) churnCount() int {
	if f.churn {
		return f.churnLeases
	}
	return 0
}

// floorTurns is how many turns ironpool and the floor take with --floor.
const floorTurns = 5

// benchMain is a built-in server as bench runs it: quiet, on a free
// loopback port, without BMC health checks (the bench nodes have no BMCs).
func (a *app) benchMain(dir, db, sync string) *server.Main {
	m := &server.Main{Listen: "127.0.0.1:0", DataDir: dir, DB: db, SQLiteSynchronous: sync,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m.Background.Health.Interval = -1
	return m
}

// startServerProcess runs this binary's serve command on dir and db as a
// child process and waits until it answers /healthz. stop ends it (by its
// PID) and waits for it.
func (a *app) startServerProcess(ctx context.Context, dir, db, sync string) (string, int, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(exe, "serve", "--listen", addr, "--data-dir", dir, "--db", db,
		"--sqlite-synchronous", sync, "--health-interval", "-1s", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", 0, nil, err
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	u := "http://" + addr
	deadline := time.Now().Add(5 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return u, cmd.Process.Pid, stop, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil || cmd.ProcessState != nil {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return "", 0, nil, fmt.Errorf("server process did not become healthy: %s", strings.TrimSpace(string(log)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runChurn creates the churn leases so that they expire evenly across a
// second run of the same load, runs it, and reads the expiry lag.
func runChurn(ctx context.Context, logw io.Writer, cls []*client.Client, o bench.Options, f *benchFlags, base bench.Result) (*bench.ChurnRun, error) {
	ch := &bench.Churn{Leases: f.churnLeases, Spread: f.d * 95 / 100}
	fmt.Fprintf(logw, "churn: creating %d leases...\n", f.churnLeases)
	if err := ch.Create(ctx, cls[0], f.clients); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "churn: leases made in %s\n", ch.Took().Round(100*time.Millisecond))
	if w := time.Until(ch.Start); w > 0 {
		time.Sleep(w)
	}
	fmt.Fprintf(logw, "ironpool with churn: %d clients for %s...\n", f.clients, f.d)
	start := time.Now()
	r, err := bench.RunMany(ctx, cls, o)
	if err != nil {
		return nil, err
	}
	r.Nodes = f.nodes
	exp, err := ch.Lag(ctx, cls[0], start, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := ch.Release(ctx, cls[0], f.clients); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "ironpool without churn again: %d clients for %s...\n", f.clients, f.d)
	after, err := bench.RunMany(ctx, cls, o)
	if err != nil {
		return nil, err
	}
	after.Nodes = f.nodes
	return &bench.ChurnRun{Load: r, After: after, RateRatio: r.PerSecond / ((base.PerSecond + after.PerSecond) / 2), Expiry: exp}, nil
}

// runIronicPeer registers the nodes in Ironic, runs its allocation API
// with the same clients and duration, and deletes the nodes again.
func runIronicPeer(ctx context.Context, logw io.Writer, f *benchFlags, base bench.Result) (*bench.Peer, error) {
	ic, err := bench.ConnectIronic(ctx, f.peerURL)
	if err != nil {
		return nil, fmt.Errorf("--peer: %w", err)
	}
	run := "ironpool-bench-" + strconv.FormatInt(time.Now().Unix()%1000000, 10)
	fmt.Fprintf(logw, "ironic: registering %d nodes...\n", f.nodes)
	uuids, err := bench.IronicNodes(ctx, ic, f.nodes, run, run)
	defer func() {
		if err := bench.UnregisterIronic(context.WithoutCancel(ctx), ic, uuids); err != nil {
			fmt.Fprintf(logw, "ironic: deleting the bench nodes: %v\n", err)
		}
	}()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "ironic: %d clients for %s...\n", f.clients, f.d)
	l := bench.Drive(ctx, f.clients, f.d, bench.IronicAllocateRelease(ic, run))
	if l.Served == 0 && l.FirstErr != nil {
		return nil, fmt.Errorf("ironic: %w", l.FirstErr)
	}
	p := &bench.Peer{Name: "ironic", URL: f.peerURL, Nodes: f.nodes, Load: l}
	if l.PerSecond > 0 {
		p.Ratio = base.PerSecond / l.PerSecond
	}
	return p, nil
}

func benchTable(w *tabwriter.Writer, r *bench.Report) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d cpus, %s, load %s before, %s after\n", m.CPUs, m.Model, m.LoadBefore, m.LoadAfter)
	if r.Seed.Method != "" {
		fmt.Fprintf(w, "seeded %d nodes (%s) in %.1fs\n", r.Seed.Nodes, r.Seed.Method, r.Seed.Seconds)
	}
	fmt.Fprintln(w, "RUN\tNODES\tCLIENTS\tDONE\tREFUSED\tERRORS\tPER SEC\tP50\tP99\tMAX\tRATIO")
	i := r.Ironpool
	fmt.Fprintf(w, "ironpool (allocate+release pairs)\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n", i.Nodes, i.Clients,
		i.Allocations, i.Refused, i.Errors, i.PerSecond, i.P50, i.P99, i.Max)
	if c := r.Churn; c != nil {
		l := c.Load
		fmt.Fprintf(w, "ironpool with %d leases expiring\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%.2f of no-churn (mean of before and after)\n", c.Expiry.Leases,
			l.Nodes, l.Clients, l.Allocations, l.Refused, l.Errors, l.PerSecond, l.P50, l.P99, l.Max, c.RateRatio)
		l = c.After
		fmt.Fprintf(w, "ironpool without churn, after\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t\n",
			l.Nodes, l.Clients, l.Allocations, l.Refused, l.Errors, l.PerSecond, l.P50, l.P99, l.Max)
	}
	if f := r.Floor; f != nil {
		fmt.Fprintf(w, "floor (trivial JSON requests)\t-\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\tpairs/s ÷ (floor/2) = %.2f\n", f.Clients,
			f.Served, f.Refused, f.Errors, f.PerSecond, f.P50, f.P99, f.Max, *r.FloorRatio)
	}
	if p := r.Peer; p != nil {
		l := p.Load
		fmt.Fprintf(w, "ironic allocation API (1 node each)\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\tironpool ÷ ironic = %.1f\n", p.Nodes,
			l.Clients, l.Served, l.Refused, l.Errors, l.PerSecond, l.P50, l.P99, l.Max, p.Ratio)
	}
	if c := r.Churn; c != nil {
		e := c.Expiry
		fmt.Fprintf(w, "expiry lag (release − expires_at): p50 %s, p99 %s, max %s; of %d leases %d expiring: %d expired, %d not, %d before the load; leases made in %.1fs\n",
			e.LagP50, e.LagP99, e.LagMax, e.Leases, e.Expiring, e.Expired, e.Unexpired, e.EarlyExpiries, e.CreateSeconds)
	}
	if mem := r.Memory; mem != nil {
		fmt.Fprintf(w, "memory (%s, pid %d): VmHWM %d MB, VmRSS %d MB\n", mem.Scope, mem.PID, mem.HWMMB, mem.RSSMB)
	}
	if u := r.Writer; u != nil {
		fmt.Fprintf(w, "writer (SQLite's one): busy %.0f%% of the ironpool run, %.1f writes per commit, %.0f µs per write\n",
			100*u.BusyShare, u.WritesPerCommit, u.BusyPerWriteUS)
	}
	if u := r.Batches; u != nil {
		fmt.Fprintf(w, "batches (PostgreSQL): %.1f calls per batch, %.0f%% of the calls served by a batch\n",
			u.CallsPerBatch, 100*u.ServedShare)
	}
}
