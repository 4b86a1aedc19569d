package soak

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the integrity check of the SQLite file after the run

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// Config describes one campaign against one target.
type Config struct {
	// Target is "sqlite" (one server) or "postgres" (Replicas on DSN).
	Target   string
	DSN      string // postgres: a DSN whose search_path names an empty schema
	Replicas int    // postgres: how many replicas (default 3)
	Bin      string // the ironpool binary (see Build)
	Dir      string // scratch directory: data dirs, logs, the SQLite file
	Ops      int    // client operations in all
	Clients  int
	Nodes    int
	Nemeses  []string      // applied one at a time, round-robin
	Gap      time.Duration // quiet time between two nemeses
	MaxTime  time.Duration // the run stops here even if Ops are not done
	Seed     uint64
	// Tmpfs puts the SQLite file on a tmpfs of its own (root only), which
	// the disk-full nemesis needs.
	Tmpfs bool
	// PrivatePostgres (postgres target) starts a PostgreSQL of the
	// campaign's own (pgcluster.go) instead of using DSN, so that the
	// restart nemesis can stop and crash it.
	PrivatePostgres bool
	Logf            func(string, ...any)
	// Sabotage, when set, runs beside the load until it ends: a test breaks
	// the store behind the servers' backs with it, to show the checker
	// notices (campaign_test.go).
	Sabotage func(ctx context.Context, c *Cluster)
}

// Result is one campaign's figures and verdict.
type Result struct {
	Target    string        `json:"target"`
	Clients   int           `json:"clients"`
	Nodes     int           `json:"nodes"`
	Duration  time.Duration `json:"duration"`
	OpsPerSec float64       `json:"ops_per_sec"`
	Statuses  map[int]int   `json:"statuses"`
	// NemesisRuns counts how many times each nemesis ran.
	NemesisRuns map[string]int `json:"nemesis_runs"`
	Report      *Report        `json:"report"`
	// Integrity is SQLite's integrity_check of the file after the run.
	Integrity string `json:"integrity,omitempty"`
	History   []*Op  `json:"-"`
}

// Run starts the target's servers, seeds them, runs the clients and the
// nemeses until Ops are done (or MaxTime), heals everything, reads back
// the audit log and every allocation, stops the servers and checks.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = 3
	}
	if cfg.Clients == 0 {
		cfg.Clients = 32
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 30
	}
	if cfg.Gap == 0 {
		cfg.Gap = 3 * time.Second
	}
	if cfg.MaxTime == 0 {
		cfg.MaxTime = 30 * time.Minute
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 12))
	var c *Cluster
	var disk *tmpfs
	var pg *pgCluster
	var err error
	switch cfg.Target {
	case "sqlite":
		dbDir := filepath.Join(cfg.Dir, "disk")
		if err := os.MkdirAll(dbDir, 0o700); err != nil {
			return nil, err
		}
		if cfg.Tmpfs {
			if disk, err = mountTmpfs(dbDir, "1g"); err != nil {
				return nil, err
			}
			defer disk.unmount()
		}
		c, err = StartCluster(ctx, cfg.Bin, cfg.Dir, filepath.Join(dbDir, "ironpool.db"), 1, nil)
	case "postgres":
		if cfg.PrivatePostgres {
			if pg, err = startPostgres(cfg.Logf); err != nil {
				return nil, err
			}
			defer pg.Stop()
			cfg.DSN = pg.DSN()
		}
		u, perr := url.Parse(cfg.DSN)
		if perr != nil {
			return nil, fmt.Errorf("dsn: %w", perr)
		}
		proxy, perr := NewProxy(u.Host)
		if perr != nil {
			return nil, perr
		}
		c, err = StartCluster(ctx, cfg.Bin, cfg.Dir, cfg.DSN, cfg.Replicas, proxy)
	default:
		return nil, fmt.Errorf("target %q: want sqlite or postgres", cfg.Target)
	}
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	var clients []*client.Client
	for _, r := range c.Replicas {
		cl, err := client.New(r.URL(), c.Token, client.Options{Timeout: 2 * time.Minute})
		if err != nil {
			return nil, err
		}
		clients = append(clients, cl)
	}
	nodes := Inventory(cfg.Nodes)
	if err := Seed(ctx, clients[0], nodes); err != nil {
		return nil, err
	}
	if err := c.WaitHealthy(ctx, 30*time.Second); err != nil {
		return nil, err
	}

	h := &History{}
	start := time.Now()
	runCtx, stop := context.WithTimeout(ctx, cfg.MaxTime)
	defer stop()
	nemCtx, stopNem := context.WithCancel(runCtx)
	nem := &nemesis{c: c, h: h, kinds: cfg.Nemeses, gap: cfg.Gap, rng: rand.New(rand.NewPCG(cfg.Seed, 13)), disk: disk, pg: pg, logf: cfg.Logf, count: map[string]int{}}
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		if len(cfg.Nemeses) > 0 {
			nem.run(nemCtx)
		}
	}()
	go watchStalls(nemCtx, h)
	sabDone := make(chan struct{})
	go func() {
		defer close(sabDone)
		if cfg.Sabotage != nil {
			cfg.Sabotage(nemCtx, c)
		}
	}()
	var budget atomic.Int64
	budget.Store(int64(cfg.Ops))
	var wg sync.WaitGroup
	workers := make([]*worker, cfg.Clients)
	for i := range workers {
		workers[i] = &worker{id: i, rng: rand.New(rand.NewPCG(rng.Uint64(), uint64(i))), clients: clients, h: h,
			budget: &budget, owners: map[string]bool{}, timeout: 1500 * time.Millisecond}
		wg.Add(1)
		go func(w *worker) { defer wg.Done(); w.run(runCtx) }(workers[i])
	}
	progress := time.NewTicker(10 * time.Second)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-progress.C:
			cfg.Logf("%s: %d ops after %s", cfg.Target, h.Len(), time.Since(start).Round(time.Second))
		}
	}
	progress.Stop()
	loadTime := time.Since(start)
	stopNem()
	<-nemDone
	<-sabDone
	cfg.Logf("%s: load done: %d ops in %s; healing and reading back", cfg.Target, h.Len(), loadTime.Round(time.Millisecond))

	// Heal: every replica up, one leader, the queue drained by deadlines.
	for _, r := range c.Replicas {
		if !r.Running() {
			if err := r.Start(ctx); err != nil {
				return nil, err
			}
		}
	}
	if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	if err := waitQueueEmpty(ctx, clients[0], 30*time.Second); err != nil {
		return nil, err
	}
	owners := map[string]bool{}
	for _, w := range workers {
		for o := range w.owners {
			owners[o] = true
		}
	}
	// Allocations first, then the audit log: the reaper keeps working, and
	// an allocation that ends in between must have its end in the log read.
	ev := &Evidence{Ops: h.Ops(), Nodes: nodes, Flavors: Flavors}
	if ev.Allocations, err = readAllocations(ctx, clients[0], owners); err != nil {
		return nil, err
	}
	if ev.Events, err = readEvents(ctx, clients[0]); err != nil {
		return nil, err
	}
	res := &Result{Target: cfg.Target, Clients: cfg.Clients, Nodes: cfg.Nodes, Duration: loadTime,
		OpsPerSec: float64(len(ev.Ops)) / loadTime.Seconds(), Statuses: map[int]int{}, NemesisRuns: nem.count, History: ev.Ops}
	for _, op := range ev.Ops {
		if op.IsClient() {
			res.Statuses[op.Status]++
		}
	}
	c.Stop()
	if c.DBPath != "" {
		res.Integrity = integrity(c.DBPath)
	}
	res.Report = Check(ev)
	for _, op := range ev.Ops {
		if op.IsClient() && op.Status == 500 {
			res.Report.violate("internal-error", "%s %s on replica %d at %s answered 500", op.Kind, op.ID, op.Target, op.Call.Format(time.StampMilli))
		}
	}
	if res.Integrity != "" && res.Integrity != "ok" {
		res.Report.violate("corrupt", "SQLite integrity_check after the run: %s", res.Integrity)
	}
	return res, nil
}

// watchStalls records the moments this process got no CPU for over 200 ms
// (a 20 ms sleep that took far longer): on a machine that stalls, no server
// can keep a one-second promise, and the checker must know when it did.
func watchStalls(ctx context.Context, h *History) {
	const tick = 20 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		time.Sleep(tick)
		if end := time.Now(); end.Sub(start) > tick+200*time.Millisecond {
			h.Add(&Op{Kind: OpStall, Call: start, Healed: end})
		}
	}
}

func waitQueueEmpty(ctx context.Context, c *client.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var out struct {
			Allocations []*ironpool.Allocation `json:"allocations"`
		}
		if _, err := c.Do(ctx, "GET", "/v1/allocations?state=queued&limit=1", nil, &out); err == nil && len(out.Allocations) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("allocations still queued %s after the run", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readEvents pages through the whole audit log.
func readEvents(ctx context.Context, c *client.Client) ([]*ironpool.Event, error) {
	var all []*ironpool.Event
	var after int64
	for {
		var out struct {
			Events []*ironpool.Event `json:"events"`
		}
		if _, err := c.Do(ctx, "GET", fmt.Sprintf("/v1/events?after=%d&limit=10000", after), nil, &out); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		if len(out.Events) == 0 {
			return all, nil
		}
		all = append(all, out.Events...)
		after = out.Events[len(out.Events)-1].ID
	}
}

// readAllocations reads back every allocation of every owner the clients used.
func readAllocations(ctx context.Context, c *client.Client, owners map[string]bool) (map[string]*AllocView, error) {
	names := make([]string, 0, len(owners))
	for o := range owners {
		names = append(names, o)
	}
	sort.Strings(names)
	out := map[string]*AllocView{}
	for _, o := range names {
		var page struct {
			Allocations []*ironpool.Allocation `json:"allocations"`
		}
		if _, err := c.Do(ctx, "GET", "/v1/allocations?limit=10000&owner="+url.QueryEscape(o), nil, &page); err != nil {
			return nil, fmt.Errorf("read allocations of %s: %w", o, err)
		}
		if len(page.Allocations) == 10000 {
			return nil, fmt.Errorf("owner %s has 10000 allocations or more: the campaign cannot read them all", o)
		}
		for _, a := range page.Allocations {
			out[a.ID] = view(a)
		}
	}
	return out, nil
}

func integrity(path string) string {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var s string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&s); err != nil {
		return err.Error()
	}
	return s
}

// WriteHistory saves the history as JSON lines, for a look after a failure.
func WriteHistory(path string, ops []*Op) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
