// Package clock is the one wall clock behind every decision of the server
// that depends on the time: lease expiries and renewals, queue deadlines,
// the reaper, and the leader lease of the background loop. They all read
// Now, so that the soak campaign can move that clock for one replica and
// see what a clock jump does to the promises (docs/RELIABILITY.md,
// "Campaign"). Timing of requests, metrics and log lines keep time.Now.
//
// In every ordinary build Now is time.Now and nothing can move it. Only a
// binary built with `-tags soakclock` (the campaign builds its own) adds an
// offset, read from a file the campaign names (clock_soak.go); the
// archtest TestNoSoakClockByDefault keeps that hook out of the default build.
package clock
