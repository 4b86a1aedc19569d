package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// Batcher is implemented by stores that serve concurrent allocations and
// releases in shared transactions (sqlstore's batcher, on PostgreSQL).
type Batcher interface {
	// BatchStats reports the batches run and the calls they served, and
	// whether batching is on.
	BatchStats() (batches, served int64, on bool)
}

// Batches checks a store whose batching is on: the concurrency test's
// history holds every invariant when most calls are served in batches,
// batches did serve several calls at once, a served call records exactly
// what a lone transaction records, and with a quota defined every call
// runs alone (quotas are checked one transaction at a time).
func Batches(t *testing.T, open func(t *testing.T) ironpool.Store) {
	stats := func(t *testing.T, s ironpool.Store) (int64, int64) {
		b, ok := s.(Batcher)
		if !ok {
			t.Fatalf("%T does not batch", s)
		}
		batches, served, on := b.BatchStats()
		if !on {
			t.Fatalf("%T has batching off", s)
		}
		return batches, served
	}
	t.Run("Concurrency", func(t *testing.T) {
		var s ironpool.Store
		testConcurrency(t, func(t *testing.T) ironpool.Store {
			s = open(t)
			return s
		})
		batches, served := stats(t, s)
		t.Logf("%d calls served in %d batches", served, batches)
		if batches == 0 || served <= batches {
			t.Errorf("%d calls served in %d batches: no batch served more than one call", served, batches)
		}
	})
	t.Run("SameRecords", func(t *testing.T) {
		s := open(t)
		local, linked := newNode(t, "local", 8), newNode(t, "linked", 8)
		linked.IronicUUID = "6f8a3c1e-6a58-4a8b-9d43-3e5f8b1c2d40"
		mustCreate(t, s, local, linked)
		ctx := ironpool.NewContextWithActor(context.Background(), testActor)
		a := request("ci", item("small", 2, ironpool.Constraints{CPUs: 8}))
		if err := s.Allocate(ctx, a, false); err != nil {
			t.Fatal(err)
		}
		checkHolds(t, a)
		if len(a.Nodes) != 2 || a.Items[0].Nodes == nil {
			t.Fatalf("allocation holds %d nodes, items %+v", len(a.Nodes), a.Items)
		}
		out, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true)
		if err != nil || len(out) != 1 || out[0].State != ironpool.AllocReleased || out[0].ReleasedAt.IsZero() {
			t.Fatalf("release = %+v, %v", out, err)
		}
		if _, served := stats(t, s); served != 2 {
			t.Errorf("batches served %d calls, want the allocation and its release", served)
		}
		want := map[string]string{
			"allocation.created":  "ci took small×2 [local linked]",
			"allocation.released": "released small×2 [local linked] of ci (active); 1 Ironic nodes cleaning in Ironic",
		}
		for action, summary := range want {
			ev := events(t, s, action)
			if len(ev) != 1 || ev[0].Summary != summary || ev[0].Actor != testActor.TokenID || ev[0].Subject != "allocation/"+a.ID {
				t.Errorf("%s events = %s, want one %q by %s", action, eventList(ev), summary, testActor.TokenID)
			}
		}
		states := map[string]ironpool.NodeState{}
		for _, n := range findNodes(t, s, ironpool.NodeFilter{}) {
			states[n.Name] = n.State
		}
		// The Ironic node cleans in Ironic; the local one is free at once.
		if states["local"] != ironpool.NodeAvailable || states["linked"] != ironpool.NodeCleaning {
			t.Errorf("after release: %v", states)
		}
		if r, ok := s.(RawDB); ok {
			var open int
			if err := r.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM usage_log WHERE allocation_id = $1 AND end_ms = 0`, a.ID).Scan(&open); err != nil {
				t.Fatal(err)
			}
			if open != 0 {
				t.Errorf("%d usage rows still open after the release", open)
			}
		}
	})
	t.Run("CheckRefuses", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "c1", 8))
		ctx := ironpool.NewContextWithActor(context.Background(), testActor)
		a := request("ci", item("", 1, ironpool.Constraints{}))
		if err := s.Allocate(ctx, a, false); err != nil {
			t.Fatal(err)
		}
		refuse := &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "owner", Message: "not yours"}
		var saw string
		_, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID, Check: func(owner string, state ironpool.AllocationState) error {
			saw = owner + "/" + string(state)
			return refuse
		}}, ironpool.AllocReleased, true)
		if err != refuse || saw != "ci/active" {
			t.Errorf("release refused by its check = %v (check saw %q), want the check's error after seeing ci/active", err, saw)
		}
		got, err := s.FindAllocation(ctx, a.ID)
		if err != nil || got.State != ironpool.AllocActive {
			t.Errorf("after a refused release: %+v, %v; want it still active", got, err)
		}
		if n := countEvents(t, s, "allocation.released"); n != 0 {
			t.Errorf("%d release events after a refused release", n)
		}
	})
	t.Run("FailedBatchRunsAlone", func(t *testing.T) {
		// An allocation whose id exists already fails the batch's
		// statement for every call in it: the batch rolls back whole,
		// and each call then runs alone, so only that one fails.
		s := open(t)
		mustCreate(t, s, numberedNodes(t, "f%02d", 24, 8)...)
		ctx := ironpool.NewContextWithActor(context.Background(), testActor)
		first := request("ci", item("", 1, ironpool.Constraints{}))
		if err := s.Allocate(ctx, first, false); err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			const calls = 12
			as := make([]*ironpool.Allocation, calls)
			for i := range as {
				as[i] = request("ci", item("", 1, ironpool.Constraints{}))
				if i == calls/2 {
					as[i].ID = first.ID
				}
			}
			errs := allocateAtOnce(ctx, s, as)
			for i, err := range errs {
				switch {
				case i == calls/2 && ironpool.ErrorCode(err) != ironpool.ECONFLICT:
					t.Errorf("round %d: the allocation with a taken id got %v, want a conflict", round, err)
				case i != calls/2 && err != nil:
					t.Errorf("round %d: allocation %d failed with its neighbour: %v", round, i, err)
				case i != calls/2:
					checkHolds(t, as[i])
				}
			}
			for i, a := range as {
				if i != calls/2 {
					if _, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if got, want := countEvents(t, s, "allocation.created"), 1+5*11; got != want {
			t.Errorf("%d allocation.created events, want %d", got, want)
		}
		// 111 calls succeeded; had the taken id never shared a batch,
		// batches would have served all of them.
		batches, served := stats(t, s)
		t.Logf("%d of 111 calls served in %d batches", served, batches)
		if served >= 1+5*22 {
			t.Errorf("batches served all %d calls: the failing call never shared a batch, so this test did not test it", served)
		}
	})
	t.Run("QueueKeepsItsNodes", func(t *testing.T) {
		// A batch reads its candidates before it knows whether anything
		// is queued, and reads them again when something is: calls that
		// do not queue must still leave alone every node the queue could
		// use, as Allocate does.
		s := open(t)
		// One call more than there are small nodes: the one left over
		// must be refused, not given the free big node.
		const calls = 8
		mustCreate(t, s, append(numberedNodes(t, "big%d", 2, 32), numberedNodes(t, "small%02d", calls-1, 8)...)...)
		ctx := ironpool.NewContextWithActor(context.Background(), testActor)
		mustAllocate(t, s, request("lab", item("big", 1, ironpool.Constraints{CPUs: 32})))
		waiting := queued("lab", time.Hour, item("big", 2, ironpool.Constraints{CPUs: 32}))
		if err := s.Allocate(ctx, waiting, true); err != nil {
			t.Fatal(err)
		}
		if waiting.State != ironpool.AllocQueued {
			t.Fatalf("two big nodes with one free: the request is %s, want queued", waiting.State)
		}
		before, _ := stats(t, s)
		for round := range 3 {
			as := make([]*ironpool.Allocation, calls)
			for i := range as {
				as[i] = request("ci", item("", 1, ironpool.Constraints{}))
			}
			errs := allocateAtOnce(ctx, s, as)
			refused := 0
			for i, a := range as {
				if errs[i] != nil {
					refused++
					continue
				}
				for _, n := range a.Nodes {
					if strings.HasPrefix(n.Name, "big") {
						t.Errorf("round %d: a request that does not queue took %s, which the queued request waits for", round, n.Name)
					}
				}
				if _, err := s.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
					t.Fatal(err)
				}
			}
			if refused != 1 {
				t.Errorf("round %d: %d of %d calls refused, want the one left over (%v)", round, refused, calls, errs)
			}
		}
		if after, _ := stats(t, s); after == before {
			t.Error("no batch ran: this test did not test batches")
		}
	})
	t.Run("QuotaRunsAlone", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "q1", 8), newNode(t, "q2", 8))
		mustSetQuota(t, s, &ironpool.Quota{Owner: "ci", MaxNodes: 1})
		ctx := ironpool.NewContextWithActor(context.Background(), testActor)
		err := s.Allocate(ctx, request("ci", item("", 2, ironpool.Constraints{})), false)
		if ironpool.ErrorCode(err) != ironpool.EQUOTA || !strings.Contains(fmt.Sprint(err), "quota") {
			t.Errorf("2 nodes over a quota of 1: %v, want the quota's refusal", err)
		}
		a := request("ci", item("", 1, ironpool.Constraints{}))
		if err := s.Allocate(ctx, a, false); err != nil {
			t.Fatal(err)
		}
		checkHolds(t, a)
		if _, served := stats(t, s); served != 0 {
			t.Errorf("batches served %d calls with a quota defined, want none", served)
		}
	})
}

func eventList(ev []*ironpool.Event) string {
	var parts []string
	for _, e := range ev {
		parts = append(parts, fmt.Sprintf("%s %s by %s: %q", e.Action, e.Subject, e.Actor, e.Summary))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// allocateAtOnce allocates every request of as (without queueing) from a
// goroutine each, released together so that batches can gather them, and
// returns their errors.
func allocateAtOnce(ctx context.Context, s ironpool.Store, as []*ironpool.Allocation) []error {
	errs := make([]error, len(as))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.Allocate(ctx, as[i], false)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}
