//go:build soakclock

package clock

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Hooked reports whether this build can move the clock: true here, in the
// soak campaign's build only.
const Hooked = true

// offset is what the campaign's clock-jump nemesis asks Now to add, in
// nanoseconds, as last read from the file.
var offset atomic.Int64

// FileEnv names the file that holds the offset: one signed integer of
// nanoseconds, rewritten by the nemesis; a missing or empty file is 0.
const FileEnv = "IRONPOOL_SOAK_CLOCK_FILE"

func init() {
	path := os.Getenv(FileEnv)
	if path == "" {
		return
	}
	read := func() {
		b, err := os.ReadFile(path)
		if err != nil {
			offset.Store(0)
			return
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return // a half-written file: keep the last value
		}
		offset.Store(n)
	}
	read()
	// Polled rather than read on every call: Now is on the request path.
	go func() {
		for range time.Tick(10 * time.Millisecond) {
			read()
		}
	}()
}

// Now returns the current time moved by the campaign's offset. The offset
// moves the monotonic reading too, so a jump is seen even by durations
// measured inside the process: harsher than a real wall-clock step.
func Now() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
