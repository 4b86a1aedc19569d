package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ironpool/ironpool"
)

// Op is one iteration of a client's loop. It returns the latency to record
// for it (the caller decides what it times: the allocate call alone, or a
// whole request) and an error; an error with code ECAPACITY counts as a
// refusal, any other as a failure. Latency is recorded only on success.
type Op func(ctx context.Context, worker int) (time.Duration, error)

// Load is what Drive measured: counts, the rate of successful iterations,
// and latency percentiles.
type Load struct {
	Clients   int     `json:"clients"`
	Seconds   float64 `json:"seconds"`
	Served    int64   `json:"served"`
	Refused   int64   `json:"refused"`
	Errors    int64   `json:"errors"`
	PerSecond float64 `json:"per_second"`
	P50       Millis  `json:"p50_ms"`
	P99       Millis  `json:"p99_ms"`
	Max       Millis  `json:"max_ms"`
	// FirstErr is the first failure, kept for the report when nothing was
	// served at all.
	FirstErr error `json:"-"`

	lat []time.Duration // sorted, for Merge
}

// Merge adds loads measured in turns (see the cli's --floor, which
// alternates ironpool and the floor so both see the same machine): counts
// and seconds add up, percentiles are of all the latencies together.
func Merge(ls ...Load) Load {
	var m Load
	for _, l := range ls {
		m.Clients = l.Clients
		m.Seconds += l.Seconds
		m.Served += l.Served
		m.Refused += l.Refused
		m.Errors += l.Errors
		m.lat = append(m.lat, l.lat...)
		if m.FirstErr == nil {
			m.FirstErr = l.FirstErr
		}
	}
	slices.Sort(m.lat)
	m.fill()
	return m
}

// fill sets the rate and percentiles from the counts and latencies.
func (l *Load) fill() {
	if l.Seconds > 0 {
		l.PerSecond = float64(l.Served) / l.Seconds
	}
	if n := len(l.lat); n > 0 {
		l.P50, l.P99, l.Max = Millis(l.lat[n/2]), Millis(l.lat[n*99/100]), Millis(l.lat[n-1])
	}
}

// Millis is a duration that encodes in JSON as fractional milliseconds, so
// a script reads "p99_ms": 12.3 rather than nanoseconds.
type Millis time.Duration

// MarshalJSON writes the milliseconds with microsecond precision.
func (m Millis) MarshalJSON() ([]byte, error) {
	return []byte(formatFloat(float64(time.Duration(m).Microseconds()) / 1000)), nil
}

// String rounds to 10 µs for tables.
func (m Millis) String() string { return time.Duration(m).Round(10 * time.Microsecond).String() }

// Drive runs op in a loop from clients goroutines until dur has passed or
// ctx ends, and returns the counts and latency percentiles. It is the one
// load loop of every measurement here (ironpool's API, the floor, Ironic's
// allocation API), so their figures are comparable.
func Drive(ctx context.Context, clients int, dur time.Duration, op Op) Load {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var served, refused, failed atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				// The request itself is not cut off at the deadline: a
				// request cancelled halfway would count as an error.
				d, err := op(context.WithoutCancel(ctx), w)
				switch {
				case err == nil:
					served.Add(1)
					lat[w] = append(lat[w], d)
				case ironpool.ErrorCode(err) == ironpool.ECAPACITY:
					refused.Add(1)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	l := Load{Clients: clients, Seconds: elapsed.Seconds(), Served: served.Load(), Refused: refused.Load(),
		Errors: failed.Load(), lat: all}
	l.fill()
	if e, ok := firstErr.Load().(error); ok {
		l.FirstErr = e
	}
	return l
}
