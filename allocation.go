package ironpool

import (
	"fmt"
	"time"
)

// AllocationState is where a lease is in its life.
type AllocationState string

// Allocation states. queued → active → released is the common path;
// expired is released by the reaper; failed is a queued request whose
// deadline passed. There is no "releasing": a release is one transaction
// that ends the allocation at once and hands its nodes to cleaning, so the
// work still under way after it is the nodes' (state cleaning, pending
// clean), shown per node, and the allocation never lingers half-ended.
const (
	AllocQueued   AllocationState = "queued"
	AllocActive   AllocationState = "active"
	AllocReleased AllocationState = "released"
	AllocExpired  AllocationState = "expired"
	AllocFailed   AllocationState = "failed"
)

// Live reports whether an allocation in this state still holds or waits for nodes.
func (s AllocationState) Live() bool { return s == AllocQueued || s == AllocActive }

// Mode is how nodes are checked out of the backend.
type Mode string

// Checkout modes. handoff puts the Ironic node in maintenance with a reason
// naming the owner; lessee sets Ironic's lessee; none is bookkeeping only.
const (
	ModeNone    Mode = "none"
	ModeHandoff Mode = "handoff"
	ModeLessee  Mode = "lessee"
)

// ItemRequest is one line of an allocation request: a flavor name or inline
// constraints, and a count.
type ItemRequest struct {
	Flavor      string       `json:"flavor,omitempty"`
	Constraints *Constraints `json:"constraints,omitempty"`
	Count       int          `json:"count"`
}

// AllocationRequest asks for nodes for an owner: all items or nothing.
type AllocationRequest struct {
	Owner    string            `json:"owner"`
	Items    []ItemRequest     `json:"items"`
	Pool     string            `json:"pool,omitempty"`
	TTL      time.Duration     `json:"-"`
	Wait     time.Duration     `json:"-"`
	Mode     Mode              `json:"mode,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Topology, when set, constrains where the nodes of the whole request
	// sit relative to each other (see Topology).
	Topology *Topology `json:"topology,omitempty"`
	// NodeIDs, when set, skips selection and claims exactly these nodes (adopt).
	NodeIDs []int64 `json:"-"`
}

// MaxItems and MaxCount bound one request.
const (
	MaxItems = 32
	MaxCount = 1000
)

// Validate checks the request's shape (not flavor existence).
func (r *AllocationRequest) Validate() error {
	if err := ValidateName("owner", r.Owner); err != nil {
		return err
	}
	if len(r.Items) == 0 && len(r.NodeIDs) == 0 {
		return FieldErrorf("items", "at least one item is required (e.g. --flavor small=2)")
	}
	if len(r.Items) > MaxItems {
		return FieldErrorf("items", "has %d entries; the limit is %d", len(r.Items), MaxItems)
	}
	total := 0
	for i := range r.Items {
		it := &r.Items[i]
		p := fmt.Sprintf("items[%d].", i)
		if it.Count <= 0 {
			return FieldErrorf(p+"count", "must be at least 1 (got %d)", it.Count)
		}
		if it.Count > MaxCount {
			return FieldErrorf(p+"count", "is %d; the limit is %d", it.Count, MaxCount)
		}
		total += it.Count
		if it.Flavor == "" && it.Constraints == nil {
			return FieldErrorf(p+"flavor", "give a flavor name or constraints")
		}
		if it.Flavor != "" {
			if err := ValidateName(p+"flavor", it.Flavor); err != nil {
				return err
			}
		}
		if it.Constraints != nil {
			if err := it.Constraints.Validate(p + "constraints."); err != nil {
				return err
			}
		}
	}
	if total > MaxCount {
		return FieldErrorf("items", "ask for %d nodes in all; the limit is %d", total, MaxCount)
	}
	if r.Pool != "" {
		if err := ValidateName("pool", r.Pool); err != nil {
			return err
		}
	}
	switch r.Mode {
	case "", ModeNone, ModeHandoff, ModeLessee:
	default:
		return FieldErrorf("mode", "%q is not a checkout mode (want none, handoff or lessee)", truncate(string(r.Mode), 20))
	}
	if r.Topology != nil {
		if err := r.Topology.Validate(); err != nil {
			return err
		}
	}
	if r.TTL < 0 {
		return FieldErrorf("ttl", "must be positive")
	}
	if r.Wait < 0 {
		return FieldErrorf("wait", "must not be negative")
	}
	if len(r.Metadata) > MaxFields {
		return FieldErrorf("metadata", "has %d entries; the limit is %d", len(r.Metadata), MaxFields)
	}
	for k, v := range r.Metadata {
		if err := ValidateFieldKey("metadata", k); err != nil {
			return err
		}
		if len(v) > MaxValueLen {
			return FieldErrorf("metadata."+k, "value is too long (limit %d)", MaxValueLen)
		}
	}
	return nil
}

// Topology asks where the nodes of a request sit relative to each other, by
// one node field (Node.Fields): spread apart or packed together. Any field
// key serves as a topology key (rack, switch, site, …), so `node set N
// rack=r1` and fields synced from Ironic already place a node; there is no
// separate list of topology keys to keep in step.
//
// The constraint is on the whole request, across all its items: a spread
// over racks with two items of two nodes each puts the four nodes in four
// racks. A node whose field is missing or empty takes part in no topology
// request: nothing says it is apart from, or together with, any other.
type Topology struct {
	// Spread is the field no two nodes of the request share a value of
	// (at most MaxPerValue do).
	Spread string `json:"spread,omitempty" maxLength:"64" doc:"Node field key (e.g. rack): at most max_per_value nodes of the request share a value of it"`
	// MaxPerValue is how many nodes of a spread request may share one
	// value; 1 when left out. The schema's minimum makes an explicit 0 a
	// 400, where the domain alone could not tell 0 from "left out".
	MaxPerValue int `json:"max_per_value,omitempty" minimum:"1" maximum:"1000" doc:"With spread: how many nodes may share one value (default 1)"`
	// Together is the field all nodes of the request share one value of.
	Together string `json:"together,omitempty" maxLength:"64" doc:"Node field key (e.g. rack): all nodes of the request share one value of it"`
}

// Validate checks the topology's shape: one of spread or together, a valid
// field key, max_per_value at least 1 and only with spread. It does not
// check that some node has the key; the store does, in the transaction that
// matches.
func (t *Topology) Validate() error {
	switch {
	case t.Spread != "" && t.Together != "":
		return FieldErrorf("topology", "give spread or together, not both")
	case t.Spread == "" && t.Together == "":
		return FieldErrorf("topology", "give spread (e.g. rack) or together (e.g. rack)")
	case t.Spread != "":
		if err := ValidateFieldKey("topology.spread", t.Spread); err != nil {
			return err
		}
		if t.MaxPerValue < 0 || t.MaxPerValue > MaxCount {
			return FieldErrorf("topology.max_per_value", "must be 1 to %d (got %d)", MaxCount, t.MaxPerValue)
		}
	default:
		if err := ValidateFieldKey("topology.together", t.Together); err != nil {
			return err
		}
		if t.MaxPerValue != 0 {
			return FieldErrorf("topology.max_per_value", "applies to spread only, not to together")
		}
	}
	return nil
}

// Key returns the field the topology is about.
func (t *Topology) Key() string { return t.Spread + t.Together }

// Field returns the request field that names the key, for errors.
func (t *Topology) Field() string {
	if t.Spread != "" {
		return "topology.spread"
	}
	return "topology.together"
}

// Normalized returns a copy with the defaults filled in (max_per_value 1
// for spread), as allocations keep it.
func (t *Topology) Normalized() *Topology {
	c := *t
	if c.Spread != "" && c.MaxPerValue == 0 {
		c.MaxPerValue = 1
	}
	return &c
}

// String is the topology as the CLI spells it: "spread rack", "spread
// rack:2", "together rack".
func (t *Topology) String() string {
	switch {
	case t.Spread != "" && t.MaxPerValue > 1:
		return fmt.Sprintf("spread %s:%d", t.Spread, t.MaxPerValue)
	case t.Spread != "":
		return "spread " + t.Spread
	}
	return "together " + t.Together
}

// AllocationItem is one resolved line of an allocation: its constraints as
// they were when the request was made, and the nodes picked for it.
type AllocationItem struct {
	Flavor      string      `json:"flavor,omitempty"`
	Constraints Constraints `json:"constraints"`
	Count       int         `json:"count"`
	Nodes       []string    `json:"nodes,omitempty"`
}

// Allocation is a lease on a set of nodes.
type Allocation struct {
	ID        string            `json:"id"`
	Owner     string            `json:"owner"`
	State     AllocationState   `json:"state"`
	Mode      Mode              `json:"mode"`
	Items     []AllocationItem  `json:"items"`
	Metadata  map[string]string `json:"metadata"`
	LastError string            `json:"last_error,omitempty"`
	// Priority is the queue priority the request carries (its token's).
	Priority int `json:"priority"`
	// Topology is the request's topology constraint, kept with a queued
	// request so that it is served under it.
	Topology *Topology `json:"topology,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// TTL is the lease asked for. The store sets CreatedAt from its own
	// clock, read once in the transaction that writes, and ExpiresAt to
	// CreatedAt+TTL when the allocation becomes active.
	TTL time.Duration `json:"-"`
	// DefaultTTL says TTL is the server's default, not asked for: a quota
	// whose max_lease is shorter then shortens the lease to it instead of
	// refusing the request.
	DefaultTTL bool `json:"-"`
	// WaitUntil is the deadline of a queued request.
	WaitUntil  time.Time `json:"wait_until,omitzero"`
	ReleasedAt time.Time `json:"released_at,omitzero"`

	// Nodes are the held nodes with what the owner needs to use them. The
	// service masks passwords for callers who may not read them.
	Nodes []*Node `json:"nodes,omitempty"`
	// Queue says, for a queued request, where it stands and why it waits
	// (see queue.go).
	Queue *QueueInfo `json:"queue,omitempty"`
}

// Pick is one node the matcher chose for one item (dry run and result).
type Pick struct {
	Item int    `json:"item"`
	Node string `json:"node"`
}

// ItemCapacity is, for one item of a request, how many nodes match and are free.
type ItemCapacity struct {
	Item        int         `json:"item"`
	Flavor      string      `json:"flavor,omitempty"`
	Constraints Constraints `json:"constraints"`
	Requested   int         `json:"requested"`
	Matching    int         `json:"matching"`
	Free        int         `json:"free"`
}

// Plan is the answer of a dry run: whether the request fits now, the nodes
// it would take, and capacity per item.
type Plan struct {
	Satisfiable bool           `json:"satisfiable"`
	Picks       []Pick         `json:"picks"`
	Capacity    []ItemCapacity `json:"capacity"`
	// Refusal says why a request that does not fit fails, when the
	// capacity per item does not say it (the topology, items competing).
	Refusal string `json:"refusal,omitempty"`
}

// AllocationFilter selects allocations.
type AllocationFilter struct {
	ID     string
	Owner  string
	Owners []string // any of these names or patterns (for scoped callers); nil means no restriction
	State  AllocationState
	Live   bool // queued or active only
	Limit  int
}

// CapacityRow is free/total nodes for one flavor (or "any") in one pool.
type CapacityRow struct {
	Flavor string `json:"flavor"`
	Pool   string `json:"pool"`
	Free   int    `json:"free"`
	Total  int    `json:"total"`
}

// StateCount is the number of nodes in one pool and state.
type StateCount struct {
	Pool  string    `json:"pool"`
	State NodeState `json:"state"`
	Count int       `json:"count"`
}

// OwnerCount is the live allocations and held nodes of one owner.
type OwnerCount struct {
	Owner       string `json:"owner"`
	Allocations int    `json:"allocations"`
	Nodes       int    `json:"nodes"`
}

// Status summarizes the pool.
type Status struct {
	Nodes    []StateCount  `json:"nodes"`
	Capacity []CapacityRow `json:"capacity"`
	Owners   []OwnerCount  `json:"owners"`
	Queued   int           `json:"queued"`
	Expiring []*Allocation `json:"expiring"`
}
