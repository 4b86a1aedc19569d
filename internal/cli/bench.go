package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/server"
)

func (a *app) benchCmd() *cobra.Command {
	var nodes, clients, replicas int
	var dur, db, cpuprofile, synchronous string
	var target bool
	c := &cobra.Command{
		Use:   "bench [--nodes N] [--clients C] [--duration D] [--db PATH|postgres://…] [--target]",
		Short: "Measure allocations per second and p50/p99 latency over HTTP with concurrent clients",
		Long: `Measure allocation throughput end to end. By default it starts its own server
on 127.0.0.1 with a fresh database (SQLite in a temp dir, or --db), seeds --nodes
nodes of three shapes, and runs --clients clients that each allocate a 2-item
request and release it, for --duration. With --target it measures the server at
--url / IRONPOOL_URL instead (seeding a pool named by the run).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := time.ParseDuration(dur)
			if err != nil {
				return usagef("--duration %q is not a duration", dur)
			}
			ctx := cmd.Context()
			var cl *client.Client
			var cls []*client.Client
			pool := "bench"
			if target {
				if cl, err = a.client(); err != nil {
					return err
				}
				pool = fmt.Sprintf("bench%d", time.Now().Unix()%100000)
			} else {
				dir, err := os.MkdirTemp("", "ironpool-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if replicas > 1 && !server.IsPostgres(db) {
					return usagef("--replicas needs --db postgres://…")
				}
				token := ""
				for i := 0; i < max(1, replicas); i++ {
					m := &server.Main{Listen: "127.0.0.1:0", DataDir: dir, DB: db, SQLiteSynchronous: synchronous,
						Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
					if err := m.Run(ctx); err != nil {
						return err
					}
					defer m.Close()
					if m.AdminToken != "" {
						token = m.AdminToken
					}
					c, err := client.New(m.URL(), "", client.Options{})
					if err != nil {
						return err
					}
					cls = append(cls, c)
				}
				for _, c := range cls {
					c.Token = token
				}
				cl = cls[0]
			}
			if cls == nil {
				cls = []*client.Client{cl}
			}
			fmt.Fprintf(a.env.Stderr, "seeding %d nodes, then %d clients for %s...\n", nodes, clients, d)
			o := bench.Options{Nodes: nodes, Clients: clients, Duration: d, Pool: pool}
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return usagef("--cpuprofile: %v", err)
				}
				defer f.Close()
				o.OnStart = func() {
					if err := pprof.StartCPUProfile(f); err != nil {
						fmt.Fprintf(a.env.Stderr, "cpu profile: %v\n", err)
					}
				}
				defer pprof.StopCPUProfile()
			}
			r, err := bench.RunMany(ctx, cls, o)
			if err != nil {
				return err
			}
			return a.print(r, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NODES\tCLIENTS\tALLOCATIONS\tREFUSED\tERRORS\tALLOC/S\tP50\tP99\tMAX")
				fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\n", r.Nodes, r.Clients, r.Allocations, r.Refused, r.Errors,
					r.PerSecond, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
			})
		},
	}
	f := c.Flags()
	f.IntVar(&nodes, "nodes", 10000, "nodes to seed")
	f.IntVar(&clients, "clients", 16, "concurrent clients")
	f.StringVar(&dur, "duration", "10s", "how long to run")
	f.StringVar(&db, "db", "", "database for the built-in server (default: SQLite in a temp dir)")
	f.BoolVar(&target, "target", false, "measure the server at --url instead of starting one")
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the measured part (clients and built-in server) to this file")
	f.StringVar(&synchronous, "sqlite-synchronous", "full", "SQLite durability of the built-in server: full or normal (see serve --help)")
	f.IntVar(&replicas, "replicas", 1, "start this many servers on the --db PostgreSQL and spread the clients over them")
	return c
}
