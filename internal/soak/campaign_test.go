package soak

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/postgres/pgtest"
)

// TestCampaign is the campaign itself: IRONPOOL_SOAK_OPS client operations,
// half against one SQLite server, half against three PostgreSQL replicas,
// with kill -9, a leader pause longer than its lease and the other nemeses
// running. hack/test.sh runs it with 50,000 operations (the CI form),
// `make soak` (hack/soak.sh) with a million. In the ordinary `go test ./...`
// it skips, because it builds and runs real servers for minutes.
//
//	IRONPOOL_SOAK_OPS      operations in all (split between the targets)
//	IRONPOOL_SOAK_TARGETS  sqlite,postgres (default both)
//	IRONPOOL_SOAK_CLIENTS  concurrent clients per target (default 32)
//	IRONPOOL_SOAK_REPORT   file to write the JSON results to
//	IRONPOOL_SOAK_KEEP     keep the scratch directory (logs, history) after the run
func TestCampaign(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("IRONPOOL_SOAK_OPS"))
	if total <= 0 {
		t.Skip("skipped: the campaign runs only when IRONPOOL_SOAK_OPS is set (hack/test.sh and make soak set it)")
	}
	targets := strings.Split(envOr("IRONPOOL_SOAK_TARGETS", "sqlite,postgres"), ",")
	clients, _ := strconv.Atoi(envOr("IRONPOOL_SOAK_CLIENTS", "32"))
	ctx := context.Background()
	dir := t.TempDir()
	if keep := os.Getenv("IRONPOOL_SOAK_KEEP"); keep != "" {
		dir = keep
		os.MkdirAll(dir, 0o700)
	}
	bin, err := Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var results []*Result
	for i, target := range targets {
		cfg := Config{Target: target, Bin: bin, Dir: filepath.Join(dir, target), Ops: total / len(targets), Clients: clients,
			Seed: uint64(time.Now().UnixNano()) + uint64(i), Logf: t.Logf, MaxTime: 2 * time.Hour}
		switch target {
		case "sqlite":
			cfg.Nemeses = []string{NemKill, NemPause, NemClock}
			if os.Geteuid() == 0 {
				cfg.Tmpfs = true
				cfg.Nemeses = append(cfg.Nemeses, NemDiskFull)
			} else {
				t.Log("note: not root, so no tmpfs for the SQLite file and no disk-full nemesis")
			}
		case "postgres":
			cfg.Nemeses = []string{NemKill, NemPause, NemLatency, NemCut, NemRestart, NemClock}
			// The replicas run on a PostgreSQL of the campaign's own, which
			// the restart nemesis stops and crashes; the machine's shared
			// server is never restarted.
			if _, err := pgBinDir(); err == nil {
				cfg.PrivatePostgres = true
			} else if os.Getenv("CI") == "true" {
				t.Fatalf("postgres: the restart nemesis needs a PostgreSQL of its own: %v", err)
			} else {
				t.Logf("note: the PostgreSQL restart nemesis is skipped: %v; the replicas use IRONPOOL_TEST_POSTGRES", err)
				cfg.DSN = pgtest.Schema(t)
				cfg.Nemeses = []string{NemKill, NemPause, NemLatency, NemCut, NemClock}
			}
		}
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		res, err := Run(ctx, cfg)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		results = append(results, res)
		t.Logf("%s: %d clients, %d nodes, %s, %.0f ops/s, statuses %v, integrity %q\n%s", target, res.Clients, res.Nodes,
			res.Duration.Round(time.Millisecond), res.OpsPerSec, res.Statuses, res.Integrity, res.Report.Summary())
		for _, n := range res.Report.Nemeses {
			t.Logf("  nemesis: %s", n)
		}
		t.Logf("%s: nemesis runs %v", target, res.NemesisRuns)
		// Each nemesis of the target must have fired: one that never ran
		// proves nothing (more operations are needed).
		for _, k := range cfg.Nemeses {
			if res.NemesisRuns[k] == 0 {
				t.Errorf("%s: nemesis %s never ran (runs %v); the campaign needs at least one of each (more operations?)", target, k, res.NemesisRuns)
			}
		}
		if !res.Report.OK() {
			p := filepath.Join(cfg.Dir, "history.jsonl")
			if err := WriteHistory(p, res.History); err == nil {
				t.Logf("history written to %s (set IRONPOOL_SOAK_KEEP to keep it)", p)
			}
			t.Errorf("%s: the checker found broken promises (above)", target)
		}
	}
	if p := os.Getenv("IRONPOOL_SOAK_REPORT"); p != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TestCampaignCatchesSabotage breaks a running server's store on purpose
// and expects the checker to say so: a second process writes to the SQLite
// file behind the server's back, freeing nodes that live allocations hold
// (so the server hands them out again: a double allocation) and moving
// acknowledged expiries forward to now (so the reaper ends leases before the
// expiry their owners were given: lost renewals). It runs with the campaign
// (IRONPOOL_SOAK_OPS set), as it builds and starts the real binary.
func TestCampaignCatchesSabotage(t *testing.T) {
	if os.Getenv("IRONPOOL_SOAK_OPS") == "" {
		t.Skip("skipped: runs with the campaign, when IRONPOOL_SOAK_OPS is set")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin, err := Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var freed, shortened atomic.Int64
	cfg := Config{Target: "sqlite", Bin: bin, Dir: filepath.Join(dir, "sqlite"), Ops: 4000, Clients: 16, Logf: t.Logf,
		Seed: 7, MaxTime: 5 * time.Minute,
		Sabotage: func(ctx context.Context, c *Cluster) {
			db, err := sql.Open("sqlite", "file:"+c.DBPath+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Error(err)
				return
			}
			defer db.Close()
			for ctx.Err() == nil {
				time.Sleep(150 * time.Millisecond)
				if res, err := db.Exec(`UPDATE nodes SET state = 'available', allocation_id = NULL, owner = ''
					WHERE id = (SELECT id FROM nodes WHERE state = 'allocated' ORDER BY random() LIMIT 1)`); err == nil {
					n, _ := res.RowsAffected()
					freed.Add(n)
				}
				now := time.Now().UnixMilli()
				if res, err := db.Exec(`UPDATE allocations SET expires_at = $1
					WHERE id = (SELECT id FROM allocations WHERE state = 'active' AND expires_at > $2 ORDER BY random() LIMIT 1)`,
					now, now+1500); err == nil {
					n, _ := res.RowsAffected()
					shortened.Add(n)
				}
			}
		}}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sabotage: %d held nodes freed, %d leases cut short\n%s", freed.Load(), shortened.Load(), res.Report.Summary())
	if freed.Load() == 0 || shortened.Load() == 0 {
		t.Fatalf("the sabotage did nothing (freed %d, shortened %d): the test proves nothing", freed.Load(), shortened.Load())
	}
	if res.Report.Violations["double-allocation"] == 0 {
		t.Error("the checker missed the double allocations the sabotage caused")
	}
	if res.Report.Violations["lost-renewal"] == 0 {
		t.Error("the checker missed the leases the sabotage cut short")
	}
}
