package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/bench"
)

// TestQuotasAcrossReplicas: 64 clients of 4 owners, spread over three
// replicas on one PostgreSQL, allocate and release as fast as they can
// under quotas by name and by pattern. Replaying the audit log, no owner
// (and no pattern's owners together) ever held more than its quota: the
// quota row lock serializes the replicas' decisions.
func TestQuotasAcrossReplicas(t *testing.T) {
	_, cs := replicas(t, 3)
	ctx := context.Background()
	if err := bench.Seed(ctx, cs[0], 48, "shared"); err != nil {
		t.Fatal(err)
	}
	set := func(owner string, q client.QuotaBody) {
		if _, err := cs[1].SetQuota(ctx, owner, q); err != nil {
			t.Fatalf("set quota %s: %v", owner, err)
		}
	}
	set("team-a", client.QuotaBody{MaxNodes: 3})
	set("ci-*", client.QuotaBody{MaxNodes: 8})
	set("ci-2", client.QuotaBody{MaxNodes: 5})
	set("lab", client.QuotaBody{MaxNodes: 7})
	limits := map[string]int{"team-a": 3, "ci-1": 8, "ci-2": 5, "lab": 7}
	owners := []string{"team-a", "ci-1", "ci-2", "lab"}

	var mu sync.Mutex
	granted := map[string]*ironpool.Allocation{}
	var refusedByQuota atomic.Int64
	var wg sync.WaitGroup
	deadline, hardStop := time.Now().Add(3*time.Second), time.Now().Add(30*time.Second)
	var grants atomic.Int64
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, owner := cs[w%3], owners[w%4]
			// Until the deadline and 100 grants, so a busy machine still
			// presses on the quotas; at most 30s.
			for i := 0; (time.Now().Before(deadline) || grants.Load() < 100) && time.Now().Before(hardStop); i++ {
				items := []ironpool.ItemRequest{{Flavor: bench.Shapes[(w+i)%len(bench.Shapes)].Flavor, Count: 1 + (w+i)%3}}
				a, err := c.Allocate(ctx, &client.AllocateBody{Owner: owner, Items: items, Pool: "shared", TTL: "1h"})
				switch ironpool.ErrorCode(err) {
				case "":
				case ironpool.EQUOTA:
					refusedByQuota.Add(1)
					continue
				case ironpool.ECAPACITY:
					continue
				default:
					t.Errorf("allocate: %v", err)
					return
				}
				grants.Add(1)
				mu.Lock()
				granted[a.ID] = a
				mu.Unlock()
				if _, err := cs[(w+1)%3].Release(ctx, a.ID); err != nil {
					t.Errorf("release: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(granted) < 50 || refusedByQuota.Load() == 0 {
		t.Fatalf("%d granted, %d refused by quota: the run did not press on the quotas", len(granted), refusedByQuota.Load())
	}
	held := map[string]int{}
	peak := map[string]int{}
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
			if a == nil {
				continue
			}
			n := 0
			for _, it := range a.Items {
				n += it.Count
			}
			switch e.Action {
			case "allocation.created":
				held[a.Owner] += n
			case "allocation.released":
				held[a.Owner] -= n
			}
			peak[a.Owner] = max(peak[a.Owner], held[a.Owner])
			if held[a.Owner] > limits[a.Owner] {
				t.Fatalf("event %d: %s holds %d nodes, over its quota of %d", e.ID, a.Owner, held[a.Owner], limits[a.Owner])
			}
			if ci := held["ci-1"] + held["ci-2"]; ci > 8 {
				t.Fatalf("event %d: the ci-* owners hold %d nodes, over their shared quota of 8", e.ID, ci)
			}
		}
	}
	t.Logf("%d granted, %d refused by quota, peaks %v", len(granted), refusedByQuota.Load(), peak)
}
