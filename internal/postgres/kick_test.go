package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestKicker: kicks during a run ask for exactly one more run, and a
// failed run is tried again after the retry delay without a new kick.
func TestKicker(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k := NewKicker()
	var runs atomic.Int32
	release := make(chan struct{})
	fails := atomic.Int32{}
	fails.Store(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, 10*time.Millisecond, func(context.Context) error {
			n := runs.Add(1)
			if n == 1 {
				<-release // the first run is slow; kicks pile up meanwhile
			}
			if n == 2 && fails.Add(-1) == 0 {
				return errors.New("fail once")
			}
			return nil
		})
	}()
	k.Kick()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for range 5 {
		k.Kick()
	}
	close(release)
	deadline := time.Now().Add(2 * time.Second)
	for runs.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := runs.Load(); got != 3 {
		t.Fatalf("runs = %d, want 3: the first, one for five kicks during it, and the retry of the failed second", got)
	}
	cancel()
	<-done
}
