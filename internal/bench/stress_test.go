package bench_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

func startServer(t *testing.T) (*server.Main, *client.Client) {
	t.Helper()
	m := servertest.Start(t, nil)
	c, err := client.New(m.URL(), m.AdminToken, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// TestStress: 64 clients allocate, extend and release random multi-flavor
// requests against one server for a few seconds. Afterwards, from the audit
// log and the final state: no node was ever held by two allocations at once,
// every allocation held exactly what it asked for, and free + held = total.
func TestStress(t *testing.T) {
	dur := 4 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	_, c := startServer(t)
	ctx := context.Background()
	const total = 60 // small enough that requests contend and some are refused
	if err := bench.Seed(ctx, c, total, "stress"); err != nil {
		t.Fatal(err)
	}
	shapes := map[string]ironpool.Constraints{}
	for _, s := range bench.Shapes {
		shapes[s.Flavor] = ironpool.Constraints{CPUs: s.CPUs, MemoryMB: s.Mem, LocalGB: s.Disk}
	}
	var mu sync.Mutex
	granted := map[string]*ironpool.Allocation{}
	var refused, other int
	var wg sync.WaitGroup
	deadline := time.Now().Add(dur)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for time.Now().Before(deadline) {
				var items []ironpool.ItemRequest
				for _, i := range rng.Perm(3)[:1+rng.IntN(3)] {
					items = append(items, ironpool.ItemRequest{Flavor: bench.Shapes[i].Flavor, Count: 1 + rng.IntN(3)})
				}
				a, err := c.Allocate(ctx, &client.AllocateBody{Owner: fmt.Sprintf("o%d", w%8), Items: items, Pool: "stress", TTL: "1h"})
				if err != nil {
					mu.Lock()
					if ironpool.ErrorCode(err) == ironpool.ECAPACITY {
						refused++
					} else {
						other++
						t.Errorf("allocate: %v", err)
					}
					mu.Unlock()
					continue
				}
				// Exactly what it asked: counts per item, each node fitting its item.
				byName := map[string]*ironpool.Node{}
				for _, n := range a.Nodes {
					byName[n.Name] = n
				}
				for i, it := range a.Items {
					if len(it.Nodes) != items[i].Count {
						t.Errorf("allocation %s item %d holds %d nodes, asked %d", a.ID, i, len(it.Nodes), items[i].Count)
					}
					want := shapes[it.Flavor]
					for _, name := range it.Nodes {
						if n := byName[name]; n == nil || !want.Matches(n) {
							t.Errorf("allocation %s item %s got unfit node %s", a.ID, it.Flavor, name)
						}
					}
				}
				mu.Lock()
				granted[a.ID] = a
				mu.Unlock()
				if rng.IntN(4) == 0 {
					if _, err := c.Extend(ctx, a.ID, "2h"); err != nil {
						t.Errorf("extend: %v", err)
					}
				}
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				if _, err := c.Release(ctx, a.ID); err != nil {
					t.Errorf("release: %v", err)
				}
			}
		}(w)
	}
	wg.Wait()
	if len(granted) < 30 || refused == 0 {
		t.Fatalf("too little contention to mean anything: %d granted, %d refused", len(granted), refused)
	}
	t.Logf("%d allocations granted, %d refused for capacity, %d other errors", len(granted), refused, other)

	// Replay the audit log: between an allocation's created and released
	// events, its nodes belong to it alone.
	holder := map[string]string{}
	var after int64
	created, released := 0, 0
	for {
		var page struct{ Events []*ironpool.Event }
		if _, err := c.Do(ctx, "GET", "/v1/events?limit=10000&after="+fmt.Sprint(after), nil, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			after = e.ID
			id := strings.TrimPrefix(e.Subject, "allocation/")
			switch e.Action {
			case "allocation.created":
				created++
				a := granted[id]
				if a == nil {
					t.Fatalf("event for allocation %s no client saw", id)
				}
				for _, it := range a.Items {
					for _, n := range it.Nodes {
						if h := holder[n]; h != "" {
							t.Fatalf("node %s given to %s while %s held it", n, id, h)
						}
						holder[n] = id
					}
				}
			case "allocation.released":
				released++
				for _, it := range granted[id].Items {
					for _, n := range it.Nodes {
						if holder[n] != id {
							t.Fatalf("allocation %s released node %s held by %q", id, n, holder[n])
						}
						delete(holder, n)
					}
				}
			}
		}
	}
	if created != len(granted) || released != len(granted) {
		t.Fatalf("events: %d created, %d released, %d granted", created, released, len(granted))
	}
	nodes, err := c.ListNodes(ctx, url.Values{"pool": {"stress"}})
	if err != nil {
		t.Fatal(err)
	}
	free := 0
	for _, n := range nodes {
		if n.State == ironpool.NodeAvailable {
			free++
		} else {
			t.Errorf("node %s is %s after every allocation was released", n.Name, n.State)
		}
	}
	if free != total || len(nodes) != total {
		t.Fatalf("free %d of %d, want %d", free, len(nodes), total)
	}
}
