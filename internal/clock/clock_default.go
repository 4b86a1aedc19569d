//go:build !soakclock

package clock

import "time"

// Hooked reports whether this build can move the clock (the soakclock
// build tag). It is false in every production build.
const Hooked = false

// Now returns the current time: time.Now, unmoved.
func Now() time.Time { return time.Now() }
