package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

// TestMetricsZeroSeries: a pool whose only node is allocated still has an
// ironpool_nodes series for "available", at 0, and one for every other
// state, so that an alert on available == 0 fires rather than seeing no
// series at all.
func TestMetricsZeroSeries(t *testing.T) {
	s := startServer(t)
	_, pool := s.node()
	s.mustDo(s.admin, "POST", "/v1/allocations", allocBody("lab1", pool), 201, nil)
	_, _, body := s.do("", "GET", "/metrics", nil)
	page := string(body)
	for _, state := range ironpool.NodeStates {
		want := 0
		if state == ironpool.NodeAllocated {
			want = 1
		}
		line := fmt.Sprintf("ironpool_nodes{pool=%q,state=%q} %d\n", pool, state, want)
		if !strings.Contains(page, line) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(line))
		}
	}
}
