package cli_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/ironictest"
)

// TestAllocationPeer measures, in one run on one machine, allocations per
// second through ironpool's API and through Ironic's own allocation API
// (POST /v1/allocations until active, then DELETE), on the same node count
// and concurrency. Each client allocates one node and releases it again in
// a loop. It runs only with IRONPOOL_PEER_BENCH=1 because it takes about
// half a minute; docs/PERFORMANCE.md records its output and command.
func TestAllocationPeer(t *testing.T) {
	if os.Getenv("IRONPOOL_PEER_BENCH") != "1" {
		t.Skip("skipped: set IRONPOOL_PEER_BENCH=1 to run the ironpool vs Ironic allocation benchmark")
	}
	nodes, clients, dur := envInt("PEER_NODES", 20), envInt("PEER_CLIENTS", 4), time.Duration(envInt("PEER_SECONDS", 10))*time.Second
	in := ironictest.Start(t)
	c := in.Connect(t)
	specs := make([]ironictest.Spec, nodes)
	for i := range specs {
		specs[i] = ironictest.Spec{Name: fmt.Sprintf("peer-%03d", i), ResourceClass: "rc-peer", CPUs: 8,
			MACs: []string{fmt.Sprintf("52:54:0b:00:%02x:%02x", i/256, i%256)}}
	}
	ironictest.MakeNodes(t, c, specs)

	// One load loop for both sides (bench.Drive), the same one
	// `ironpool bench --peer ironic=URL` runs.
	run := func(name string, op bench.Op) (float64, int64) {
		l := bench.Drive(context.Background(), clients, dur, op)
		t.Logf("%-28s nodes=%d clients=%d allocations=%d refused=%d errors=%d rate=%.1f/s p50=%s p99=%s",
			name, nodes, clients, l.Served, l.Refused, l.Errors, l.PerSecond, l.P50, l.P99)
		return l.PerSecond, l.Errors
	}

	ironicRate, ierrs := run("Ironic allocation API", bench.IronicAllocateRelease(c, "rc-peer"))

	e := start(t) // a local pool: same nodes, released nodes are free at once
	pool := make([]*ironpool.Node, nodes)
	for i := range pool {
		pool[i] = &ironpool.Node{Name: specs[i].Name, CPUs: 8, CPUArch: "x86_64", ResourceClass: "rc-peer",
			MACs: specs[i].MACs, BMC: ironpool.BMC{Address: fmt.Sprintf("ipmi://10.9.0.%d:623", i+1)}}
	}
	cl, err := client.New(e.m.URL(), e.m.AdminToken, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ImportNodes(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	poolRate, perrs := run("ironpool API (HTTP)", bench.ResourceClassAllocateRelease(cl, "rc-peer"))
	t.Logf("ironpool/Ironic allocation rate ratio: %.1fx", poolRate/ironicRate)
	if ierrs > 0 || perrs > 0 {
		t.Errorf("errors: Ironic %d, ironpool %d", ierrs, perrs)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}
