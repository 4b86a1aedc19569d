package reconcile

import (
	"context"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
)

// HealthConfig tunes the BMC health checks: every Interval (jittered by a
// fifth either way, so a fleet's probes do not land in one burst) the
// replica running the background loops reads the power status of every
// node that ironpool drives itself (not linked to Ironic, which watches its
// own), at most Concurrency at a time, each bounded by its BMC timeout.
type HealthConfig struct {
	// Interval between rounds; 0 means 3 minutes, negative disables.
	Interval time.Duration
	// FailAfter consecutive failures move an unallocated node to
	// maintenance (default 3).
	FailAfter int
	// RecoverAfter consecutive successes bring a node the health check
	// quarantined back (default 2).
	RecoverAfter int
	// Concurrency bounds the probes in flight (default 8).
	Concurrency int
	// History is how many results are kept per node (default 20).
	History int
}

func (c *HealthConfig) defaults() {
	if c.Interval == 0 {
		c.Interval = 3 * time.Minute
	}
	if c.FailAfter <= 0 {
		c.FailAfter = 3
	}
	if c.RecoverAfter <= 0 {
		c.RecoverAfter = 2
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.History <= 0 {
		c.History = 20
	}
}

type healthState struct {
	mu     sync.Mutex
	nodes  map[string]*ironpool.NodeHealth
	counts ironpool.HealthCounts
}

// HealthCounts returns the counters.
func (r *Reconciler) HealthCounts() ironpool.HealthCounts {
	r.health.mu.Lock()
	defer r.health.mu.Unlock()
	return r.health.counts
}

// NodeHealth returns the health of one node, or of every probed node when
// name is empty.
func (r *Reconciler) NodeHealth(name string) []ironpool.NodeHealth {
	r.health.mu.Lock()
	defer r.health.mu.Unlock()
	out := []ironpool.NodeHealth{}
	for _, h := range r.health.nodes {
		if name == "" || h.Node == name {
			c := *h
			c.History = append([]ironpool.HealthProbe(nil), h.History...)
			out = append(out, c)
		}
	}
	if name != "" && len(out) == 0 {
		out = append(out, ironpool.NodeHealth{Node: name, History: []ironpool.HealthProbe{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// healthLoop runs probe rounds while this replica leads, until ctx ends.
func (r *Reconciler) healthLoop(ctx context.Context) {
	cfg := r.Config.Health
	if cfg.Interval < 0 {
		return
	}
	ctx = ironpool.NewContextWithActor(ctx, ironpool.System)
	for {
		jitter := time.Duration((rand.Float64()*0.4 - 0.2) * float64(cfg.Interval))
		t := time.NewTimer(cfg.Interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if r.Leader() {
			r.HealthRound(ctx)
		}
	}
}

// HealthRound probes every directly driven node once and applies the
// quarantine rules. The background loop calls it; tests may too.
func (r *Reconciler) HealthRound(ctx context.Context) {
	cfg := r.Config.Health
	nodes, err := r.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		r.Log.Warn("health: list nodes", "err", err)
		return
	}
	var probe []*ironpool.Node
	for _, n := range nodes {
		if n.IronicUUID == "" && n.BMC.Address != "" {
			probe = append(probe, n)
		}
	}
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for _, n := range probe {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.probe(ctx, n)
		}()
	}
	wg.Wait()
	r.health.mu.Lock()
	keep := map[string]bool{}
	for _, n := range probe {
		keep[n.Name] = true
	}
	for name := range r.health.nodes {
		if !keep[name] {
			delete(r.health.nodes, name) // deleted, renamed or now in Ironic
		}
	}
	r.health.mu.Unlock()
}

// probe reads one node's power status, records the result and moves the
// node in or out of quarantine.
func (r *Reconciler) probe(ctx context.Context, n *ironpool.Node) {
	cfg := r.Config.Health
	p := ironpool.HealthProbe{Time: r.Now()}
	err := ironpool.UseBMC(ctx, r.BMC, n, func(c ironpool.BMCClient) error {
		ps, err := c.Power(ctx, ironpool.PowerStatus)
		p.PowerState = string(ps)
		return err
	})
	p.OK = err == nil
	if err != nil {
		p.Error = ironpool.ErrorMessage(err)
	}

	r.health.mu.Lock()
	if r.health.nodes == nil {
		r.health.nodes = map[string]*ironpool.NodeHealth{}
	}
	h := r.health.nodes[n.Name]
	if h == nil {
		h = &ironpool.NodeHealth{Node: n.Name}
		r.health.nodes[n.Name] = h
	}
	h.Last = &p
	h.History = append(h.History, p)
	if len(h.History) > cfg.History {
		h.History = h.History[len(h.History)-cfg.History:]
	}
	r.health.counts.Probes++
	if p.OK {
		h.Successes++
		h.Failures, h.FailingFrom, h.Flagged = 0, time.Time{}, false
	} else {
		r.health.counts.Failures++
		if h.Failures == 0 {
			h.FailingFrom = p.Time
		}
		h.Failures++
		h.Successes = 0
	}
	failures, successes, since := h.Failures, h.Successes, h.FailingFrom
	r.health.mu.Unlock()

	switch {
	case !p.OK && failures >= cfg.FailAfter:
		r.quarantine(ctx, n.Name, since, p.Error)
	case p.OK && successes >= cfg.RecoverAfter && n.State == ironpool.NodeMaintenance && strings.HasPrefix(n.MaintenanceReason, ironpool.QuarantinePrefix):
		r.recover(ctx, n.Name)
	}
	if p.OK && n.PowerState != p.PowerState {
		_, _ = r.Store.UpdateNode(ctx, n.Name, func(x *ironpool.Node) error {
			if x.PowerState == p.PowerState {
				return errUnchanged
			}
			x.PowerState = p.PowerState
			return nil
		})
	}
}

// quarantine moves a free node to maintenance; a held node is only
// flagged, never taken from its allocation.
func (r *Reconciler) quarantine(ctx context.Context, name string, since time.Time, why string) {
	reason := ironpool.QuarantinePrefix + since.UTC().Format(time.RFC3339) + ": " + why
	if len(reason) > ironpool.MaxReasonLen {
		reason = reason[:ironpool.MaxReasonLen]
	}
	moved := false
	_, err := r.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeAvailable || n.AllocationID != "" || n.Pending != "" {
			return errUnchanged
		}
		n.State, n.MaintenanceReason = ironpool.NodeMaintenance, reason
		moved = true
		return nil
	})
	r.health.mu.Lock()
	if h := r.health.nodes[name]; h != nil {
		if moved {
			h.Quarantined = true
		} else if err == errUnchanged {
			cur, ferr := r.Store.FindNode(ctx, name)
			h.Flagged = ferr == nil && (cur.State.Held() || cur.AllocationID != "")
		}
	}
	if moved {
		r.health.counts.Quarantines++
	}
	r.health.mu.Unlock()
	if moved {
		r.Log.Warn("health: node quarantined", "node", name, "reason", reason)
		r.changed()
	} else if err != nil && err != errUnchanged {
		r.Log.Warn("health: quarantine", "node", name, "err", err)
	}
}

// recover returns a node the health check quarantined.
func (r *Reconciler) recover(ctx context.Context, name string) {
	moved := false
	_, err := r.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeMaintenance || !strings.HasPrefix(n.MaintenanceReason, ironpool.QuarantinePrefix) {
			return errUnchanged // an operator's maintenance stays
		}
		n.State, n.MaintenanceReason = ironpool.NodeAvailable, ""
		moved = true
		return nil
	})
	if err != nil && err != errUnchanged {
		r.Log.Warn("health: recover", "node", name, "err", err)
		return
	}
	if moved {
		r.health.mu.Lock()
		r.health.counts.Recoveries++
		if h := r.health.nodes[name]; h != nil {
			h.Quarantined = false
		}
		r.health.mu.Unlock()
		r.Log.Info("health: node back in service", "node", name)
		r.changed()
	}
}
