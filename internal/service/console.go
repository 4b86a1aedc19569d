package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// The operator's console (the dashboard) reads a node's history and the
// pool's usage over time, and asks for a failed clean to run again. Both
// reads come from the audit log, so they need the events.read role.

// NodeHistory returns one page of a node's history, newest first.
func (s *Service) NodeHistory(ctx context.Context, name string, before int64, limit int) (*ironpool.NodeHistory, error) {
	if _, err := Authorize(ctx, OpEventsRead); err != nil {
		return nil, err
	}
	if before < 0 {
		return nil, ironpool.FieldErrorf("before", "must not be negative")
	}
	if limit < 0 || limit > 1000 {
		return nil, ironpool.FieldErrorf("limit", "is %d; want 1 to 1000 (0: 50)", limit)
	}
	return s.Store.NodeHistory(ctx, name, before, limit)
}

// Usage aggregates allocated, free and maintenance nodes per pool and
// node-hours per owner over window ("24h" or "7d"), ending now.
func (s *Service) Usage(ctx context.Context, window string) (*ironpool.Usage, error) {
	if _, err := Authorize(ctx, OpEventsRead); err != nil {
		return nil, err
	}
	if window == "" {
		window = "24h"
	}
	w, ok := ironpool.UsageWindows[window]
	if !ok {
		return nil, ironpool.FieldErrorf("window", "%q is not a usage window (want 24h or 7d)", truncate(window, 16))
	}
	// The last step ends now, so no step averages over time to come; the
	// store keeps milliseconds, and what was written this millisecond
	// counts.
	until := s.Now().UTC().Truncate(time.Millisecond).Add(time.Millisecond)
	since := until.Add(-w.Span)
	rec, err := s.Store.UsageRecords(ctx, since, until)
	if err != nil {
		return nil, err
	}
	u := rec.Aggregate(since, until, w.Step)
	u.Window = window
	return u, nil
}

// CleanNode runs the clean again for a node whose cleaning failed: in one
// store transaction the node goes from error back to cleaning, owing a
// clean, and the reconciler takes it from there (a local node runs the
// clean command, or none; a backend node runs the backend's cleaning). Any
// other state is ECONFLICT: an available node needs no clean, and a held
// one belongs to its owner.
func (s *Service) CleanNode(ctx context.Context, name string) (*ironpool.Node, error) {
	if _, err := Authorize(ctx, OpNodeClean); err != nil {
		return nil, err
	}
	n, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeError {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
				Message: fmt.Sprintf("node %s is %s; only a node in error can be cleaned again", n.Name, n.State)}
		}
		n.State, n.Pending, n.LastError = ironpool.NodeCleaning, ironpool.PendingClean, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return n.Redacted(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// WhoAmI describes the actor in ctx and the operations its role may run.
func (s *Service) WhoAmI(ctx context.Context) (*ironpool.Identity, error) {
	a, err := Authorize(ctx, OpStatus)
	if err != nil {
		return nil, err
	}
	id := &ironpool.Identity{TokenID: a.TokenID, Role: a.Role, Owners: a.Owners, May: []string{}}
	for op, roles := range Policy {
		if slices.Contains(roles, a.Role) {
			id.May = append(id.May, op)
		}
	}
	slices.Sort(id.May)
	return id, nil
}
