package molteniron_test

import (
	"context"
	"fmt"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ironpool/ironpool/internal/molteniron"
	"github.com/ironpool/ironpool/internal/server"
)

func TestPostgresReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	key := filepath.Join(t.TempDir(), "secret.key")
	var replicas []*server.Main
	for i := range 2 {
		m := &server.Main{Listen: "127.0.0.1:0", MoltenIronListen: "127.0.0.1:0", MoltenIronRole: "admin",
			DB: dsn, SecretKeyFile: key, DataDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := m.Run(context.Background()); err != nil {
			if strings.Contains(err.Error(), "not built in") {
				t.Skipf("skipped: server.Main cannot open PostgreSQL yet: %v", err)
			}
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { m.Close() })
		replicas = append(replicas, m)
	}
	const nodes, owners, clients = 200, 240, 8
	for i := 1; i <= nodes; i++ {
		mustOK(t, replicas[i%2], baremetal(i, "default"))
	}
	var mu sync.Mutex
	holder := map[string]string{}
	got := 0
	work := make(chan int)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				owner := fmt.Sprintf("owner%d", o)
				st, rep, raw := Call(t, replicas[(o+c)%2], req("allocate", "owner_name", owner, "number_of_nodes", 1, "node_pool", "default"))
				if st == 404 {
					continue
				}
				if st != 200 {
					t.Errorf("%s: %d %s", owner, st, raw)
					continue
				}
				v, _ := rep.Get("nodes")
				mu.Lock()
				for _, e := range v.(molteniron.Object) {
					if prev, dup := holder[e.Key]; dup {
						t.Errorf("%s given to %s and %s", e.Key, prev, owner)
					}
					holder[e.Key] = owner
					got++
				}
				mu.Unlock()
			}
		}()
	}
	for o := range owners {
		work <- o
	}
	close(work)
	wg.Wait()
	if got != nodes {
		t.Errorf("%d nodes handed out, want all %d", got, nodes)
	}
	// Every owner can release what it got, on either replica: nobody's
	// node was overwritten by a second writer.
	for node, owner := range holder {
		if st, _, raw := Call(t, replicas[len(node)%2], req("release", "owner_name", owner)); st != 200 {
			t.Errorf("release %s (%s): %s", owner, node, raw)
		}
	}
}
