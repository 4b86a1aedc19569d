package clock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDefaultBuildUnmoved checks that the default build's clock ignores the
// soak campaign's offset file, even when the variable names one holding a
// jump of an hour: production binaries cannot be moved this way.
func TestDefaultBuildUnmoved(t *testing.T) {
	if Hooked {
		t.Skip("skipped: built with -tags soakclock (TestSoakOffset covers that build)")
	}
	// The hook reads the variable at init; setting it now and re-running
	// nothing is the point: no code path in this build reads it at all.
	f := filepath.Join(t.TempDir(), "offset")
	if err := os.WriteFile(f, []byte("3600000000000"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IRONPOOL_SOAK_CLOCK_FILE", f)
	if d := Now().Sub(time.Now()); d > time.Second || d < -time.Second {
		t.Fatalf("the default build's clock is off by %s", d)
	}
}
