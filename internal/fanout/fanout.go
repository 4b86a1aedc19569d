// Package fanout runs one function over many items with bounded
// concurrency: the shape every "act on each node's BMC" step shares, so
// that one slow BMC never delays the others beyond its own timeout.
package fanout

import "sync"

// Each calls fn(i, item) for every item, at most limit at a time, and
// returns when all calls have.
func Each[T any](items []T, limit int, fn func(i int, item T)) {
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i, it)
		}()
	}
	wg.Wait()
}
