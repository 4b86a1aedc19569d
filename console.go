package ironpool

import (
	"slices"
	"sort"
	"strings"
	"time"
)

// The operator's console (the dashboard) needs two views the plain lists
// do not give: a node's whole history, and how the pool was used over time.
// Both are read from what the store already keeps for the record: the audit
// log and the allocation_nodes rows, which outlive a release.

// NodeHistory is one page of a node's history, newest first.
type NodeHistory struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Events are the node's own audit events (created, updated,
	// maintenance, cleaned, adopted) and those of every allocation that held
	// it (created, extended, released, expired), newest first.
	Events []*Event `json:"events"`
	// NextBefore, when non-zero, is the "before" value that reads the next
	// (older) page.
	NextBefore int64 `json:"next_before,omitempty"`
	// Tenancies are the allocations that held the node, newest first.
	Tenancies []Tenancy `json:"tenancies"`
}

// Tenancy is one allocation's hold on a node.
type Tenancy struct {
	AllocationID string          `json:"allocation_id"`
	Owner        string          `json:"owner"`
	State        AllocationState `json:"state"`
	// From is when the node was handed out (the allocation.created event;
	// a queued request is created when it is served, not when it queued).
	From time.Time `json:"from"`
	// To is when the allocation ended; zero while it still holds the node.
	To time.Time `json:"to,omitzero"`
}

// UsageRecords is what the store knows of the pool's use over a window:
// every hold on a node and every maintenance spell that overlaps it, and
// the nodes that exist now. Aggregate turns it into chart series.
type UsageRecords struct {
	// Holds are node-by-node allocation intervals (To zero: still held).
	Holds []UsageInterval
	// Maintenance are node-by-node maintenance intervals from the audit
	// log's node.maintenance events (To zero: still in maintenance).
	Maintenance []UsageInterval
	// Nodes are the nodes that exist now, with their pool and creation time.
	// A deleted node drops out of every series: the record of its pool
	// membership went with it.
	Nodes []UsageNode
}

// UsageInterval is one node's spell in a state.
type UsageInterval struct {
	Node  string
	Pool  string
	Owner string
	From  time.Time
	To    time.Time
}

// UsageNode is a node as the usage view counts it.
type UsageNode struct {
	Name      string
	Pool      string
	CreatedAt time.Time
}

// Usage is the pool's use over a window, in equal steps.
type Usage struct {
	Window string    `json:"window"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Step   string    `json:"step"`
	// Pools has one series per pool, sorted by pool name.
	Pools []PoolUsage `json:"pools"`
	// Owners are node-hours per owner over the window, largest first.
	Owners []OwnerUsage `json:"owners"`
}

// PoolUsage is one pool's series: each point is the average number of
// nodes allocated, in maintenance and free during that step.
type PoolUsage struct {
	Pool   string       `json:"pool"`
	Points []UsagePoint `json:"points"`
}

// UsagePoint is one step of a pool's series. Values are average node
// counts over the step (0.5 allocated: one node held for half the step).
type UsagePoint struct {
	Start       time.Time `json:"start"`
	Allocated   float64   `json:"allocated"`
	Maintenance float64   `json:"maintenance"`
	Free        float64   `json:"free"`
}

// OwnerUsage is how many node-hours an owner held over the window.
type OwnerUsage struct {
	Owner     string  `json:"owner"`
	NodeHours float64 `json:"node_hours"`
}

// UsageWindows are the windows the usage view offers and the step each is
// drawn in.
var UsageWindows = map[string]struct{ Span, Step time.Duration }{
	"24h": {24 * time.Hour, time.Hour},
	"7d":  {7 * 24 * time.Hour, 6 * time.Hour},
}

// overlap is how long [from, to) (to zero: open) overlaps [a, b).
func overlap(from, to, a, b time.Time) time.Duration {
	if to.IsZero() || to.After(b) {
		to = b
	}
	if from.Before(a) {
		from = a
	}
	if !to.After(from) {
		return 0
	}
	return to.Sub(from)
}

// Aggregate turns rec into per-pool series of steps of step from since to
// until, and node-hours per owner. A node counts in its pool's total from
// its creation; free is what is neither allocated nor in maintenance.
func (rec *UsageRecords) Aggregate(since, until time.Time, step time.Duration) *Usage {
	u := &Usage{Since: since, Until: until, Step: strings.TrimSuffix(step.String(), "0m0s"), Pools: []PoolUsage{}, Owners: []OwnerUsage{}}
	n := int((until.Sub(since) + step - 1) / step)
	series := map[string][]UsagePoint{}
	pointsOf := func(pool string) []UsagePoint {
		p, ok := series[pool]
		if !ok {
			p = make([]UsagePoint, n)
			for i := range p {
				p[i].Start = since.Add(time.Duration(i) * step)
			}
			series[pool] = p
		}
		return p
	}
	frac := func(d time.Duration) float64 { return float64(d) / float64(step) }
	total := map[string][]float64{}
	for _, node := range rec.Nodes {
		pts := pointsOf(node.Pool)
		if total[node.Pool] == nil {
			total[node.Pool] = make([]float64, n)
		}
		for i := range pts {
			total[node.Pool][i] += frac(overlap(node.CreatedAt, time.Time{}, pts[i].Start, pts[i].Start.Add(step)))
		}
	}
	hours := map[string]float64{}
	for _, h := range rec.Holds {
		pts := pointsOf(h.Pool)
		for i := range pts {
			pts[i].Allocated += frac(overlap(h.From, h.To, pts[i].Start, pts[i].Start.Add(step)))
		}
		hours[h.Owner] += overlap(h.From, h.To, since, until).Hours()
	}
	for _, m := range rec.Maintenance {
		pts := pointsOf(m.Pool)
		for i := range pts {
			pts[i].Maintenance += frac(overlap(m.From, m.To, pts[i].Start, pts[i].Start.Add(step)))
		}
	}
	for pool, pts := range series {
		for i := range pts {
			var t float64
			if total[pool] != nil {
				t = total[pool][i]
			}
			pts[i].Allocated, pts[i].Maintenance = round4(pts[i].Allocated), round4(pts[i].Maintenance)
			pts[i].Free = round4(max(0, t-pts[i].Allocated-pts[i].Maintenance))
		}
		u.Pools = append(u.Pools, PoolUsage{Pool: pool, Points: pts})
	}
	sort.Slice(u.Pools, func(i, j int) bool { return u.Pools[i].Pool < u.Pools[j].Pool })
	for owner, h := range hours {
		if h > 0 {
			u.Owners = append(u.Owners, OwnerUsage{Owner: owner, NodeHours: round4(h)})
		}
	}
	slices.SortFunc(u.Owners, func(a, b OwnerUsage) int {
		if a.NodeHours != b.NodeHours {
			if a.NodeHours > b.NodeHours {
				return -1
			}
			return 1
		}
		if a.Owner < b.Owner {
			return -1
		}
		return 1
	})
	return u
}

// round4 keeps four decimals: enough to draw a node held for seconds in an
// hour-long step, few enough to keep the reply small.
func round4(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }

// Identity is who a token is and what the policy lets it do, so a client
// (the dashboard) offers only the actions the server would accept. The
// server still decides each request: this is a courtesy, not a guard.
type Identity struct {
	TokenID string   `json:"token_id"`
	Role    Role     `json:"role"`
	Owners  []string `json:"owners,omitempty"`
	// May lists the operations (e.g. node.maintenance) the role may run;
	// those on allocations are further limited to Owners for a user.
	May []string `json:"may"`
}
