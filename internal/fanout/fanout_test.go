package fanout

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestEachBoundsAndCompletes: every item is visited once, never more than
// limit at a time, and Each returns only after the last call.
func TestEachBoundsAndCompletes(t *testing.T) {
	items := make([]int, 40)
	var running, peak, done atomic.Int64
	seen := make([]atomic.Int64, len(items))
	Each(items, 4, func(i int, _ int) {
		if n := running.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		time.Sleep(2 * time.Millisecond)
		seen[i].Add(1)
		running.Add(-1)
		done.Add(1)
	})
	if done.Load() != int64(len(items)) {
		t.Fatalf("Each returned after %d of %d calls", done.Load(), len(items))
	}
	if peak.Load() > 4 {
		t.Errorf("%d calls ran at once, limit 4", peak.Load())
	}
	for i := range seen {
		if seen[i].Load() != 1 {
			t.Errorf("item %d visited %d times", i, seen[i].Load())
		}
	}
}
