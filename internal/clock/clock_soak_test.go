//go:build soakclock

package clock

import (
	"testing"
	"time"
)

// TestSoakOffset checks the campaign's build follows its offset.
func TestSoakOffset(t *testing.T) {
	offset.Store(int64(3 * time.Second))
	defer offset.Store(0)
	if d := Now().Sub(time.Now()); d < 2900*time.Millisecond || d > 3100*time.Millisecond {
		t.Fatalf("offset 3s, clock moved by %s", d)
	}
}
