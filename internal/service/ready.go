package service

import (
	"context"
	"fmt"

	"github.com/ironpool/ironpool"
)

// BackgroundLease is the store lease the reconciler's leader holds; a fresh
// one means some replica runs the background loop.
const BackgroundLease = "background"

// Readiness is the answer of /readyz: each check is "ok" or says what is
// wrong, in words safe to show without a token (no host, no driver error).
type Readiness struct {
	Ready      bool   `json:"ready"`
	Database   string `json:"database"`
	Migrations string `json:"migrations"`
	Background string `json:"background"`
}

type readinessStore interface {
	Readiness(ctx context.Context, lease string) (*ironpool.StoreReadiness, error)
}

// Ready checks what a load balancer needs before sending this replica
// traffic: the database answers, its schema is the one this binary needs,
// and some replica (this one or another) holds a fresh background lease, so
// leases expire and the queue moves. The returned error is for the log.
func (s *Service) Ready(ctx context.Context) (*Readiness, error) {
	r := &Readiness{Database: "unreachable", Migrations: "unknown", Background: "unknown"}
	rs, ok := s.Store.(readinessStore)
	if !ok {
		// A store without the probe: reachability is all we can tell.
		if err := s.Health(ctx); err != nil {
			return r, err
		}
		r.Ready, r.Database, r.Migrations, r.Background = true, "ok", "ok", "ok"
		return r, nil
	}
	st, err := rs.Readiness(ctx, BackgroundLease)
	if err != nil {
		return r, err
	}
	r.Database = "ok"
	r.Migrations = "ok"
	if st.Schema < st.Want {
		r.Migrations = fmt.Sprintf("database schema is at %d, this binary needs %d", st.Schema, st.Want)
	}
	r.Background = "ok"
	if !st.LeaseFresh {
		r.Background = "no replica holds a fresh background lease"
	}
	r.Ready = st.Schema >= st.Want && st.LeaseFresh
	return r, nil
}
