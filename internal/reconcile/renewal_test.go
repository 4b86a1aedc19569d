package reconcile_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/reconcile"
)

// jitterStore delays every write a little, at random, so that the reaper
// and a renewal interleave in every order they can: a decision taken on a
// row read before the delay is caught acting on stale data.
type jitterStore struct{ ironpool.Store }

func jitter() { time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) }

func (j jitterStore) ReleaseAllocations(ctx context.Context, sel ironpool.ReleaseSelector, final ironpool.AllocationState, inline bool) ([]*ironpool.Allocation, error) {
	jitter()
	return j.Store.ReleaseAllocations(ctx, sel, final, inline)
}

func (j jitterStore) ExpireAllocations(ctx context.Context, inline bool) ([]*ironpool.Allocation, error) {
	jitter()
	return j.Store.ExpireAllocations(ctx, inline)
}

func (j jitterStore) ExtendAllocation(ctx context.Context, id string, ttl time.Duration) (*ironpool.Allocation, error) {
	jitter()
	return j.Store.ExtendAllocation(ctx, id, ttl)
}

// TestRenewalAtExpiryIsNeverLost races `allocation extend` with the reaper
// at the instant a lease expires. An acknowledged renewal must hold: the
// allocation stays active with the acknowledged expiry. And the reverse: a
// lease the reaper ended is never reported as extended.
func TestRenewalAtExpiryIsNeverLost(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	h, svc, ctx := open(t, clk.Now)
	svc.Store = jitterStore{h.st}
	h.rec.Store = svc.Store
	sys := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	const rounds = 100
	won := map[string]int{}
	for i := range rounds {
		a, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "ci", TTL: time.Second,
			Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{CPUs: 1}, Count: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second) // exactly at expiry
		var wg sync.WaitGroup
		var ext *ironpool.Allocation
		var extErr error
		wg.Add(2)
		go func() { defer wg.Done(); reconcile.Tick(h.rec, sys) }()
		go func() { defer wg.Done(); ext, extErr = svc.ExtendAllocation(ctx, a.ID, time.Hour) }()
		wg.Wait()
		got, err := svc.FindAllocation(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		var e *ironpool.Error
		switch {
		case extErr == nil:
			won["extend"]++
			if got.State != ironpool.AllocActive || !got.ExpiresAt.Equal(ext.ExpiresAt) {
				t.Fatalf("round %d: renewal acknowledged until %v, then the allocation is %s (expires %v)",
					i, ext.ExpiresAt, got.State, got.ExpiresAt)
			}
			if _, err := svc.ReleaseAllocation(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
		case errors.As(extErr, &e) && e.Code == ironpool.ECONFLICT:
			won["reaper"]++
			if got.State != ironpool.AllocExpired {
				t.Fatalf("round %d: extend refused as ended, but the allocation is %s", i, got.State)
			}
		default:
			t.Fatalf("round %d: extend: %v", i, extErr)
		}
	}
	t.Logf("%d rounds: %v", rounds, won)
}
