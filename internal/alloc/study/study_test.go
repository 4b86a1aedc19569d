package study

import (
	"bytes"
	"testing"
)

// TestDeterministic: the same Config gives the same table (the study's
// figures in docs/PERFORMANCE.md can be re-made), and another seed gives
// another one (the seed really drives the stream).
func TestDeterministic(t *testing.T) {
	c := Config{Nodes: 200, Requests: 3000, Seed: 7, MeanLife: 90}
	table := func(c Config) string {
		var b bytes.Buffer
		Table(&b, c, Run(c))
		return b.String()
	}
	first, second := table(c), table(c)
	if first != second {
		t.Fatalf("same seed, different tables:\n%s\n%s", first, second)
	}
	c2 := c
	c2.Seed = 8
	if other := table(c2); other == first {
		t.Errorf("seeds 7 and 8 gave the same table:\n%s", first)
	}
}

// TestAccounting: every request is served or refused, and the count of
// free large nodes stays within the pool, whatever the policy.
func TestAccounting(t *testing.T) {
	c := Config{Nodes: 150, Requests: 2000, Seed: 3, MeanLife: 80}
	large := NewPool(c.Nodes, c.Seed).count(len(Shapes) - 1)
	if large != 15 {
		t.Fatalf("%d large nodes in a pool of %d, want 10%%", large, c.Nodes)
	}
	for _, r := range Run(c) {
		if r.Served+r.Refused != c.Requests {
			t.Errorf("%s: served %d + refused %d != %d", r.Policy, r.Served, r.Refused, c.Requests)
		}
		if r.FirstRefusal > r.Served {
			t.Errorf("%s: first refusal after %d of %d served", r.Policy, r.FirstRefusal, r.Served)
		}
		for i, v := range r.LargeFree {
			if v < 0 || v > large {
				t.Fatalf("%s: %d large nodes free after arrival %d (pool has %d)", r.Policy, v, i, large)
			}
		}
	}
}
