package bench

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// ChurnPool is the pool the churn leases take their nodes from, apart from
// the measured pool, so the measured request mix finds the same free nodes
// with and without churn.
const ChurnPool = "bench-churn"

// Churn is a set of live leases whose TTLs are spread so that they expire
// one after another, at an even pace, while a load runs: the reaper
// (internal/reconcile) releases about Leases/Spread of them per second on
// top of the load. Lag reads, from the audit log, how late each expiry was.
type Churn struct {
	Leases int
	// Start is when the first lease should expire (the load's planned
	// start) and Spread how long after it the last one does. Create moves
	// Start later when making the leases runs slower than planned; the
	// caller starts the load at Start as it is after Create.
	Start  time.Time
	Spread time.Duration

	began   time.Time
	took    time.Duration // how long Create ran
	mu      sync.Mutex
	expires map[string]time.Time // allocation ID → expires_at as the server set it
}

// ChurnResult is what a churn run measured. Lag is release time minus
// expires_at, both as the server recorded them (the allocation.expired
// audit event's time, and the lease's expiry).
type ChurnResult struct {
	Leases int `json:"leases"`
	// Expired is how many leases the audit log shows expired; Unexpired
	// how many it did not within the wait after the last expiry.
	Expired   int `json:"expired"`
	Unexpired int `json:"unexpired"`
	// EarlyExpiries counts leases whose expiry fell before the load began
	// (creating the leases took longer than planned); they are in the lag
	// figures all the same.
	EarlyExpiries int     `json:"early_expiries"`
	LagP50        Millis  `json:"lag_p50_ms"`
	LagP99        Millis  `json:"lag_p99_ms"`
	LagMax        Millis  `json:"lag_max_ms"`
	CreateSeconds float64 `json:"create_seconds"`
}

// Create makes the leases on c from clients goroutines, each of one
// bench-small node of ChurnPool, with TTLs such that lease k of the
// creation order expires at Start + Spread·(1 − (k+½)/Leases): the first
// created expire last, so the leases created while the estimate of Start
// was still uncertain have the most slack. Start is re-planned from the
// rate of creation as it goes.
func (ch *Churn) Create(ctx context.Context, c *client.Client, clients int) error {
	ch.began = time.Now()
	ch.expires = make(map[string]time.Time, ch.Leases)
	var next, made atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for w := range max(1, clients) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= ch.Leases || ctx.Err() != nil || first.Load() != nil {
					return
				}
				ch.mu.Lock()
				start := ch.Start
				ch.mu.Unlock()
				at := start.Add(time.Duration(float64(ch.Spread) * (1 - (float64(k)+0.5)/float64(ch.Leases))))
				ttl := max(time.Until(at), 100*time.Millisecond)
				a, err := c.Allocate(ctx, &client.AllocateBody{Owner: "churn-" + strconv.Itoa(w), Pool: ChurnPool,
					TTL: strconv.FormatInt(ttl.Milliseconds(), 10) + "ms", Items: []ironpool.ItemRequest{{Flavor: Shapes[0].Flavor, Count: 1}}})
				if err != nil {
					first.CompareAndSwap(nil, fmt.Errorf("churn lease %d: %w", k, err))
					return
				}
				done := made.Add(1)
				ch.mu.Lock()
				ch.expires[a.ID] = a.ExpiresAt
				if done >= 100 && done%50 == 0 {
					// Re-plan from the rate so far (with a margin); the
					// start only moves later, and the leases made before
					// expire last, so they keep most of their slack.
					rate := float64(done) / time.Since(ch.began).Seconds()
					est := time.Now().Add(time.Duration(float64(ch.Leases-int(done))/rate*1.2*float64(time.Second)) + time.Second)
					if est.After(ch.Start) {
						ch.Start = est
					}
				}
				ch.mu.Unlock()
			}
		})
	}
	wg.Wait()
	ch.took = time.Since(ch.began)
	if e, ok := first.Load().(error); ok {
		return e
	}
	return nil
}

// Lag waits until every lease has expired in the audit log (at most wait
// after the last expiry time) and computes the expiry lag. loadStart is
// when the measured load began, for EarlyExpiries.
func (ch *Churn) Lag(ctx context.Context, c *client.Client, loadStart time.Time, wait time.Duration) (ChurnResult, error) {
	r := ChurnResult{Leases: ch.Leases, CreateSeconds: ch.took.Seconds()}
	var last time.Time
	for _, e := range ch.expires {
		if e.After(last) {
			last = e
		}
		if e.Before(loadStart) {
			r.EarlyExpiries++
		}
	}
	lags := map[string]time.Duration{}
	var after int64
	for {
		q := url.Values{"action": {"allocation.expired"}, "since": {ch.began.UTC().Format(time.RFC3339)},
			"after": {strconv.FormatInt(after, 10)}, "limit": {"10000"}}
		var out struct {
			Events []*ironpool.Event `json:"events"`
		}
		if _, err := c.Do(ctx, "GET", "/v1/events?"+q.Encode(), nil, &out); err != nil {
			return r, err
		}
		for _, ev := range out.Events {
			after = max(after, ev.ID)
			id, ok := strings.CutPrefix(ev.Subject, "allocation/")
			if exp, mine := ch.expires[id]; ok && mine {
				lags[id] = ev.Time.Sub(exp)
			}
		}
		if len(out.Events) == 10000 {
			continue // more pages
		}
		if len(lags) == len(ch.expires) || time.Now().After(last.Add(wait)) {
			break
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	all := make([]time.Duration, 0, len(lags))
	for _, d := range lags {
		all = append(all, d)
	}
	slices.Sort(all)
	r.Expired, r.Unexpired = len(all), len(ch.expires)-len(all)
	if len(all) > 0 {
		r.LagP50, r.LagP99, r.LagMax = Millis(all[len(all)/2]), Millis(all[len(all)*99/100]), Millis(all[len(all)-1])
	}
	return r, nil
}

// Took is how long Create ran.
func (ch *Churn) Took() time.Duration { return ch.took }
