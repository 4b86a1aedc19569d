package postgres

import "testing"

// TestAnalyzeRule: when a table's statistics are due, with autovacuum on
// and off.
func TestAnalyzeRule(t *testing.T) {
	for _, c := range []struct {
		name       string
		autovacuum bool
		mods, live int64
		age        float64
		want       bool
	}{
		{"never analyzed, written", true, 10, 0, -1, true},
		{"never analyzed, written, autovacuum off", false, 10, 0, -1, true},
		{"never analyzed, empty", false, 0, 0, -1, false},
		{"analyzed, nothing since", false, 0, 1000, 3600, false},
		{"autovacuum on does the rest", true, 100000, 1000, 3600, false},
		{"off, over the threshold, a minute on", false, 151, 1000, 60, true},
		{"off, at the threshold", false, 150, 1000, 600, false},
		{"off, over the threshold, too soon", false, 100000, 1000, 59, false},
	} {
		a := &analyzer{autovacuum: c.autovacuum}
		if got := a.due(c.mods, c.live, c.age); got != c.want {
			t.Errorf("%s: due(%d, %d, %v) = %v, want %v", c.name, c.mods, c.live, c.age, got, c.want)
		}
	}
}
