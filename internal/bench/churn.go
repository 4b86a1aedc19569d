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
// one after another, at an even pace, while a load runs (but for the
// calibration leases, see Create): the reaper
// (internal/reconcile) releases about Leases/Spread of them per second on
// top of the load. Lag reads, from the audit log, how late each expiry was.
type Churn struct {
	Leases int
	// Spread is how long the expiries last from Start; Create sets Start,
	// the planned start of the load, at which the caller starts it.
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
	// Expiring is how many of them expire during the load (the others
	// are the calibration leases, see Churn.Create).
	Expiring int `json:"expiring"`
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

// calibrationOwner holds the leases Create makes first, with a long TTL,
// to measure how fast leases can be made right now; they stay live through
// the load (they count among the Leases) and Release ends them.
const calibrationOwner = "churn-calibration"

// Create makes the leases on c from clients goroutines, each of one
// bench-small node of ChurnPool. The first Leases/10 (at least 50) are the
// calibration: made with a one-hour TTL, they give the rate at which
// leases can be made on this machine right now, from which Create plans
// Start (the rest at that rate, plus 50%, plus a second). The rest get TTLs
// such that lease k of the creation order expires at
// Start + Spread·(1 − (k+½)/rest): the first created expire last, so if
// making them runs late, the ones already made keep their slack longest.
func (ch *Churn) Create(ctx context.Context, c *client.Client, clients int) error {
	ch.began = time.Now()
	ch.expires = make(map[string]time.Time, ch.Leases)
	cal := min(ch.Leases, max(50, ch.Leases/10))
	if err := ch.make(ctx, c, clients, cal, func(int) string { return "1h" }, calibrationOwner, nil); err != nil {
		return err
	}
	rate := float64(cal) / time.Since(ch.began).Seconds()
	rest := ch.Leases - cal
	ch.Start = time.Now().Add(time.Duration(float64(rest)/rate*1.5*float64(time.Second)) + time.Second)
	err := ch.make(ctx, c, clients, rest, func(k int) string {
		at := ch.Start.Add(time.Duration(float64(ch.Spread) * (1 - (float64(k)+0.5)/float64(rest))))
		ttl := max(time.Until(at), 100*time.Millisecond)
		return strconv.FormatInt(ttl.Milliseconds(), 10) + "ms"
	}, "churn", ch.expires)
	ch.took = time.Since(ch.began)
	return err
}

// make creates n leases from clients goroutines, lease k with ttl(k),
// recording their expiry in into (when not nil).
func (ch *Churn) make(ctx context.Context, c *client.Client, clients, n int, ttl func(k int) string, owner string, into map[string]time.Time) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for w := range max(1, clients) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= n || ctx.Err() != nil || first.Load() != nil {
					return
				}
				a, err := c.Allocate(ctx, &client.AllocateBody{Owner: owner + "-" + strconv.Itoa(w), Pool: ChurnPool,
					TTL: ttl(k), Items: []ironpool.ItemRequest{{Flavor: Shapes[0].Flavor, Count: 1}}})
				if err != nil {
					first.CompareAndSwap(nil, fmt.Errorf("churn lease %d: %w", k, err))
					return
				}
				if into != nil {
					ch.mu.Lock()
					into[a.ID] = a.ExpiresAt
					ch.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if e, ok := first.Load().(error); ok {
		return e
	}
	return nil
}

// Release ends the calibration leases.
func (ch *Churn) Release(ctx context.Context, c *client.Client, clients int) error {
	for w := range max(1, clients) {
		if _, err := c.ReleaseOwner(ctx, calibrationOwner+"-"+strconv.Itoa(w)); err != nil && ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
			return err
		}
	}
	return nil
}

// Lag waits until every lease has expired in the audit log (at most wait
// after the last expiry time) and computes the expiry lag. loadStart is
// when the measured load began, for EarlyExpiries.
func (ch *Churn) Lag(ctx context.Context, c *client.Client, loadStart time.Time, wait time.Duration) (ChurnResult, error) {
	r := ChurnResult{Leases: ch.Leases, Expiring: len(ch.expires), CreateSeconds: ch.took.Seconds()}
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
