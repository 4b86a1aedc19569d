package service_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/metrics"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/service"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestConcurrentReleasesCountOnce: eight concurrent releases of one
// allocation all succeed (a release is idempotent), and
// ironpool_releases_total counts one, because each release is counted by
// the state its own transaction read under the allocation's lock. On
// PostgreSQL the releases go through the batcher too.
func TestConcurrentReleasesCountOnce(t *testing.T) {
	engines := map[string]func(t *testing.T) ironpool.Store{
		"sqlite": func(t *testing.T) ironpool.Store { s, _ := opener.MustOpenSQLite(t); return s },
		"postgres": func(t *testing.T) ironpool.Store {
			pgtest.DSN(t)
			s, _ := opener.MustOpenPostgres(t)
			return s
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			svc := service.New(st, service.Config{CleanInline: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			svc.Metrics = metrics.New()
			ctx := ironpool.NewContextWithActor(context.Background(), &ironpool.Actor{TokenID: "t", Role: ironpool.RoleAdmin})
			if err := svc.CreateNodes(ctx, []*ironpool.Node{{Name: "n1", CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://127.0.0.1:6230"}}}); err != nil {
				t.Fatal(err)
			}
			for round := range 5 {
				a, err := svc.Allocate(ctx, &ironpool.AllocationRequest{Owner: "ci", TTL: time.Hour,
					Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: 1}}})
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						if out, err := svc.ReleaseAllocation(ctx, a.ID); err != nil || out.State != ironpool.AllocReleased {
							t.Errorf("release %s: %+v, %v", a.ID, out, err)
						}
					})
				}
				wg.Wait()
				if got := releases(t, svc.Metrics); got != float64(round+1) {
					t.Fatalf("after %d allocations each released 8 times at once, ironpool_releases_total = %v", round+1, got)
				}
			}
		})
	}
}

// releases reads ironpool_releases_total from m's registry.
func releases(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "ironpool_releases_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no ironpool_releases_total")
	return 0
}
