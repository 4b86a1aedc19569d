package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/bench"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/server"
)

// replicas starts n servers on one PostgreSQL schema, sharing one key.
func replicas(t *testing.T, n int) ([]*server.Main, []*client.Client) {
	t.Helper()
	dsn := pgtest.Schema(t)
	dir := t.TempDir()
	keyFile := dir + "/secret.key"
	if _, err := secret.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	var ms []*server.Main
	var cs []*client.Client
	var token string
	for i := 0; i < n; i++ {
		m := &server.Main{Listen: "127.0.0.1:0", DB: dsn, DataDir: t.TempDir(), SecretKeyFile: keyFile,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		m.Background.ReplicaID = fmt.Sprintf("replica-%d", i)
		m.Background.LoopInterval = 300 * time.Millisecond
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		if m.AdminToken != "" {
			if token != "" {
				t.Fatal("two replicas each created a bootstrap admin token")
			}
			token = m.AdminToken
		}
		ms = append(ms, m)
	}
	if token == "" {
		t.Fatal("no replica created the bootstrap admin token")
	}
	for _, m := range ms {
		c, err := client.New(m.URL(), token, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return ms, cs
}

// TestReplicasShareOnePool: 64 clients spread over three replicas allocate,
// extend and release for a few seconds. From the audit log: no node was
// ever in two allocations at once, and no request was lost.
func TestReplicasShareOnePool(t *testing.T) {
	_, cs := replicas(t, 3)
	ctx := context.Background()
	const total = 60
	if err := bench.Seed(ctx, cs[0], total, "shared"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	granted := map[string]*ironpool.Allocation{}
	refused := 0
	var wg sync.WaitGroup
	deadline := time.Now().Add(4 * time.Second)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := cs[w%3]
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for time.Now().Before(deadline) {
				var items []ironpool.ItemRequest
				for _, i := range rng.Perm(3)[:1+rng.IntN(2)] {
					items = append(items, ironpool.ItemRequest{Flavor: bench.Shapes[i].Flavor, Count: 1 + rng.IntN(2)})
				}
				a, err := c.Allocate(ctx, &client.AllocateBody{Owner: fmt.Sprintf("o%d", w), Items: items, Pool: "shared", TTL: "1h"})
				if err != nil {
					if ironpool.ErrorCode(err) != ironpool.ECAPACITY {
						t.Errorf("allocate on replica %d: %v", w%3, err)
					}
					mu.Lock()
					refused++
					mu.Unlock()
					continue
				}
				mu.Lock()
				granted[a.ID] = a
				mu.Unlock()
				other := cs[(w+1)%3] // extend and release through another replica
				if rng.IntN(3) == 0 {
					if _, err := other.Extend(ctx, a.ID, "2h"); err != nil {
						t.Errorf("extend: %v", err)
					}
				}
				if _, err := other.Release(ctx, a.ID); err != nil {
					t.Errorf("release: %v", err)
				}
			}
		}(w)
	}
	wg.Wait()
	if len(granted) < 20 {
		t.Fatalf("only %d allocations granted", len(granted))
	}
	t.Logf("%d granted, %d refused", len(granted), refused)
	holder := map[string]string{}
	created, released := 0, 0
	var after int64
	for {
		var page struct{ Events []*ironpool.Event }
		if _, err := cs[2].Do(ctx, "GET", fmt.Sprintf("/v1/events?limit=10000&after=%d", after), nil, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			after = e.ID
			a := granted[strings.TrimPrefix(e.Subject, "allocation/")]
			switch e.Action {
			case "allocation.created":
				created++
				if a == nil {
					t.Fatalf("allocation event %s that no client saw", e.Subject)
				}
				for _, it := range a.Items {
					for _, n := range it.Nodes {
						if h := holder[n]; h != "" {
							t.Fatalf("node %s given to %s while %s held it", n, a.ID, h)
						}
						holder[n] = a.ID
					}
				}
			case "allocation.released":
				released++
				for _, it := range a.Items {
					for _, n := range it.Nodes {
						delete(holder, n)
					}
				}
			}
		}
	}
	if created != len(granted) || released != len(granted) {
		t.Fatalf("lost requests: %d granted, %d created events, %d released events", len(granted), created, released)
	}
	st, err := cs[1].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Nodes {
		if c.Pool == "shared" && (c.State != ironpool.NodeAvailable || c.Count != total) {
			t.Fatalf("final state %+v, want all %d available", st.Nodes, total)
		}
	}
}

// TestReaperTakeover: the replica running the background loops is stopped;
// another takes the lease over and still releases expired leases within a
// few seconds.
func TestReaperTakeover(t *testing.T) {
	ms, cs := replicas(t, 3)
	ctx := context.Background()
	if err := bench.Seed(ctx, cs[0], 6, "reap"); err != nil {
		t.Fatal(err)
	}
	var leader = -1
	for try := 0; try < 50 && leader < 0; try++ {
		for i, m := range ms {
			if m.Service.Leader() {
				leader = i
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if leader < 0 {
		t.Fatal("no replica took the background lease")
	}
	other := cs[(leader+1)%3]
	a, err := other.Allocate(ctx, &client.AllocateBody{Owner: "ci", Pool: "reap", TTL: "2s",
		Items: []ironpool.ItemRequest{{Flavor: bench.Shapes[0].Flavor, Count: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	ms[leader].Close() // the reaper's replica dies
	start := time.Now()
	for {
		got, err := other.GetAllocation(ctx, a.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == ironpool.AllocExpired {
			late := got.ReleasedAt.Sub(got.ExpiresAt)
			t.Logf("released %s after expiry by a surviving replica", late)
			if late > 6*time.Second {
				t.Fatalf("released %s after expiry; want within a few seconds", late)
			}
			return
		}
		if time.Since(start) > 12*time.Second {
			t.Fatalf("lease not released 12s after the leader died (state %s)", got.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQueueAcrossReplicas: a release on one replica serves a request queued
// on another within a second.
func TestQueueAcrossReplicas(t *testing.T) {
	_, cs := replicas(t, 2)
	ctx := context.Background()
	if err := bench.Seed(ctx, cs[0], 3, "q"); err != nil {
		t.Fatal(err)
	}
	one := []ironpool.ItemRequest{{Flavor: bench.Shapes[0].Flavor, Count: 1}}
	all := []ironpool.ItemRequest{{Flavor: bench.Shapes[0].Flavor, Count: 3}} // every node fits bench-small
	held, err := cs[0].Allocate(ctx, &client.AllocateBody{Owner: "a", Pool: "q", Items: all})
	if err != nil {
		t.Fatal(err)
	}
	queued, err := cs[1].Allocate(ctx, &client.AllocateBody{Owner: "b", Pool: "q", Items: one, Wait: "1m"})
	if err != nil || queued.State != ironpool.AllocQueued {
		t.Fatalf("queued: %+v %v", queued, err)
	}
	if _, err := cs[0].Release(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := cs[1].GetAllocation(ctx, queued.ID, 5*time.Second)
	if err != nil || got.State != ironpool.AllocActive {
		t.Fatalf("queued request not served: %+v %v", got, err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("served %s after the release on the other replica; want within about a second", d)
	}
}
