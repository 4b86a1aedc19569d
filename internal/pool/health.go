package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"ironpool"
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

// QuarantinePrefix starts the maintenance reason the health check writes;
// only a reason with it is ever cleared by the health check, so an
// operator's own maintenance stays.
const QuarantinePrefix = "bmc unreachable since "

// Probe is one health-check result.
type Probe struct {
	Time       time.Time `json:"time"`
	OK         bool      `json:"ok"`
	PowerState string    `json:"power_state,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// NodeHealth is what the health check knows of one node.
type NodeHealth struct {
	Node string `json:"node"`
	// Failures and Successes count the current run of results.
	Failures  int    `json:"consecutive_failures"`
	Successes int    `json:"consecutive_successes"`
	Last      *Probe `json:"last,omitempty"`
	// Flagged is set for a held node whose BMC fails: it is reported,
	// never taken from its allocation.
	Flagged     bool      `json:"flagged,omitempty"`
	Quarantined bool      `json:"quarantined,omitempty"`
	FailingFrom time.Time `json:"failing_since,omitzero"`
	History     []Probe   `json:"history"`
}

// HealthCounts are the health check's counters, for /metrics.
type HealthCounts struct {
	Probes, Failures, Quarantines, Recoveries uint64
}

type healthState struct {
	mu     sync.Mutex
	nodes  map[string]*NodeHealth
	counts HealthCounts
}

// HealthCounts returns the counters.
func (s *Service) HealthCounts() HealthCounts {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.counts
}

// NodeHealth returns the health of one node, or of every probed node when
// name is empty. Results live on the replica that probes; another replica
// answers with what it has probed itself (nothing, until it leads).
func (s *Service) NodeHealth(ctx context.Context, name string) ([]NodeHealth, error) {
	if _, err := Authorize(ctx, OpNodeShow); err != nil {
		return nil, err
	}
	if name != "" {
		n, err := s.Store.FindNode(ctx, name)
		if err != nil {
			return nil, err
		}
		name = n.Name
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	out := []NodeHealth{}
	for _, h := range s.health.nodes {
		if name == "" || h.Node == name {
			c := *h
			c.History = append([]Probe(nil), h.History...)
			out = append(out, c)
		}
	}
	if name != "" && len(out) == 0 {
		out = append(out, NodeHealth{Node: name, History: []Probe{}})
	}
	sortHealth(out)
	return out, nil
}

func sortHealth(h []NodeHealth) {
	for i := 1; i < len(h); i++ {
		for j := i; j > 0 && h[j].Node < h[j-1].Node; j-- {
			h[j], h[j-1] = h[j-1], h[j]
		}
	}
}

// healthLoop runs probe rounds while this replica leads, until ctx ends.
func (s *Service) healthLoop(ctx context.Context) {
	cfg := s.Config.Health
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
		if s.Leader() {
			s.HealthRound(ctx)
		}
	}
}

// HealthRound probes every directly driven node once and applies the
// quarantine rules. The background loop calls it; tests may too.
func (s *Service) HealthRound(ctx context.Context) {
	cfg := s.Config.Health
	nodes, err := s.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		s.Log.Warn("health: list nodes", "err", err)
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
			s.probe(ctx, n)
		}()
	}
	wg.Wait()
	s.health.mu.Lock()
	keep := map[string]bool{}
	for _, n := range probe {
		keep[n.Name] = true
	}
	for name := range s.health.nodes {
		if !keep[name] {
			delete(s.health.nodes, name) // deleted, renamed or now in Ironic
		}
	}
	s.health.mu.Unlock()
}

// probe reads one node's power status, records the result and moves the
// node in or out of quarantine.
func (s *Service) probe(ctx context.Context, n *ironpool.Node) {
	cfg := s.Config.Health
	p := Probe{Time: s.Now()}
	err := s.withBMC(ctx, n, func(c ironpool.BMCClient) error {
		ps, err := c.Power(ctx, ironpool.PowerStatus)
		p.PowerState = string(ps)
		return err
	})
	p.OK = err == nil
	if err != nil {
		p.Error = ironpool.ErrorMessage(err)
	}

	s.health.mu.Lock()
	if s.health.nodes == nil {
		s.health.nodes = map[string]*NodeHealth{}
	}
	h := s.health.nodes[n.Name]
	if h == nil {
		h = &NodeHealth{Node: n.Name}
		s.health.nodes[n.Name] = h
	}
	h.Last = &p
	h.History = append(h.History, p)
	if len(h.History) > cfg.History {
		h.History = h.History[len(h.History)-cfg.History:]
	}
	s.health.counts.Probes++
	if p.OK {
		h.Successes++
		h.Failures, h.FailingFrom, h.Flagged = 0, time.Time{}, false
	} else {
		s.health.counts.Failures++
		if h.Failures == 0 {
			h.FailingFrom = p.Time
		}
		h.Failures++
		h.Successes = 0
	}
	failures, successes, since := h.Failures, h.Successes, h.FailingFrom
	s.health.mu.Unlock()

	switch {
	case !p.OK && failures >= cfg.FailAfter:
		s.quarantine(ctx, n.Name, since, p.Error)
	case p.OK && successes >= cfg.RecoverAfter && n.State == ironpool.NodeMaintenance && strings.HasPrefix(n.MaintenanceReason, QuarantinePrefix):
		s.recover(ctx, n.Name)
	}
	if p.OK && n.PowerState != p.PowerState {
		_, _ = s.Store.UpdateNode(ctx, n.Name, func(x *ironpool.Node) error {
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
func (s *Service) quarantine(ctx context.Context, name string, since time.Time, why string) {
	reason := QuarantinePrefix + since.UTC().Format(time.RFC3339) + ": " + why
	if len(reason) > ironpool.MaxReasonLen {
		reason = reason[:ironpool.MaxReasonLen]
	}
	moved := false
	_, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeAvailable || n.AllocationID != "" || n.Pending != "" {
			return errUnchanged
		}
		n.State, n.MaintenanceReason = ironpool.NodeMaintenance, reason
		moved = true
		return nil
	})
	s.health.mu.Lock()
	if h := s.health.nodes[name]; h != nil {
		if moved {
			h.Quarantined = true
		} else if err == errUnchanged {
			cur, ferr := s.Store.FindNode(ctx, name)
			h.Flagged = ferr == nil && (cur.State.Held() || cur.AllocationID != "")
		}
	}
	if moved {
		s.health.counts.Quarantines++
	}
	s.health.mu.Unlock()
	if moved {
		s.Log.Warn("health: node quarantined", "node", name, "reason", reason)
		s.notify()
	} else if err != nil && err != errUnchanged {
		s.Log.Warn("health: quarantine", "node", name, "err", err)
	}
}

// recover returns a node the health check quarantined.
func (s *Service) recover(ctx context.Context, name string) {
	moved := false
	_, err := s.Store.UpdateNode(ctx, name, func(n *ironpool.Node) error {
		if n.State != ironpool.NodeMaintenance || !strings.HasPrefix(n.MaintenanceReason, QuarantinePrefix) {
			return errUnchanged // an operator's maintenance stays
		}
		n.State, n.MaintenanceReason = ironpool.NodeAvailable, ""
		moved = true
		return nil
	})
	if err != nil && err != errUnchanged {
		s.Log.Warn("health: recover", "node", name, "err", err)
		return
	}
	if moved {
		s.health.mu.Lock()
		s.health.counts.Recoveries++
		if h := s.health.nodes[name]; h != nil {
			h.Quarantined = false
		}
		s.health.mu.Unlock()
		s.Log.Info("health: node back in service", "node", name)
		s.notify()
	}
}

// String describes a probe for tables.
func (p Probe) String() string {
	if p.OK {
		return fmt.Sprintf("%s ok %s", p.Time.UTC().Format(time.RFC3339), p.PowerState)
	}
	return fmt.Sprintf("%s FAILED %s", p.Time.UTC().Format(time.RFC3339), p.Error)
}
