// Package soak is ironpool's Jepsen-style campaign: a load generator whose
// clients talk HTTP to real `ironpool serve` processes (one on SQLite, or
// three replicas on one PostgreSQL) while nemeses kill, pause and cut them,
// a recorder that keeps every client operation with its invocation and
// completion, and a checker that judges the history together with the
// server's audit log against what ironpool promises (docs/RELIABILITY.md,
// "Campaign").
//
// The checker reads only the history and what the servers answer over the
// API, so a test can hand it a history that was broken on purpose and
// expect it to say so (check_test.go).
package soak

import (
	"sync"
	"time"

	"github.com/ironpool/ironpool"
)

// Kind is what one operation did.
type Kind string

// Operation kinds. Client operations go to the API; nemesis entries mark
// when a fault was applied and healed, so the checker can tell a deadline
// missed under a dead leader from one missed by a healthy cluster.
const (
	OpAllocate     Kind = "allocate"
	OpRelease      Kind = "release"
	OpReleaseOwner Kind = "release-owner"
	OpExtend       Kind = "extend"
	OpGet          Kind = "get"
	OpStatus       Kind = "status"
	OpCapacity     Kind = "capacity"
	OpNodes        Kind = "nodes"
	OpNemesis      Kind = "nemesis"
	// OpStall marks a moment the campaign's own process got no CPU for a
	// while (its 20 ms timer fired far too late): the machine stalled, and
	// the servers on it with it.
	OpStall Kind = "stall"
)

// Outcome is how an operation ended, as the client saw it.
type Outcome string

// Outcomes. Unknown is a timeout, a broken connection or a 5xx: the request
// may or may not have taken effect, and the checker must allow both.
const (
	OK      Outcome = "ok"
	Fail    Outcome = "fail"
	Unknown Outcome = "unknown"
)

// AllocView is the part of an allocation the checker needs, kept small so a
// history of a million operations fits in memory.
type AllocView struct {
	ID        string
	Owner     string
	State     ironpool.AllocationState
	Items     []ItemView
	ExpiresAt time.Time
	WaitUntil time.Time
	Tag       string // metadata soak-op: which request created it
}

// ItemView is one item of an allocation: what was asked and what was given.
type ItemView struct {
	Flavor string
	Count  int
	Nodes  []string
}

// NodeNames lists every node of the allocation.
func (a *AllocView) NodeNames() []string {
	var out []string
	for _, it := range a.Items {
		out = append(out, it.Nodes...)
	}
	return out
}

// Op is one recorded operation. Call and Return are the client's wall clock
// (the servers run on the same machine and stamp the audit log with the same
// clock); Return is zero while the operation is in flight.
type Op struct {
	Client  int
	Kind    Kind
	Call    time.Time
	Return  time.Time
	Outcome Outcome
	Status  int    // HTTP status, 0 when none came back
	Code    string // ironpool error code of a failure
	Target  int    // which server (replica index) it went to

	// Request.
	Owner string
	ID    string
	Tag   string
	Items []ItemView // asked: flavor and count (Nodes empty)
	TTL   time.Duration
	Wait  time.Duration

	// Reply.
	Alloc  *AllocView
	Allocs []*AllocView // release by owner
	// Reads: the capacity rows, the per-state node counts, or the node →
	// allocation map of a node list.
	Capacity  []ironpool.CapacityRow
	NodeCount int
	Holders   map[string]string

	// Nemesis: a short description, and the end of the fault window.
	Nemesis string
	Healed  time.Time
	// Skew is, for a clock jump, the most any replica's clock was off
	// during the window: the checker allows exactly that much where it
	// compares a server's time with the recording client's.
	Skew time.Duration `json:",omitempty"`
}

// IsClient reports whether op is a client operation (not a nemesis or a
// stall entry).
func (op *Op) IsClient() bool { return op.Kind != OpNemesis && op.Kind != OpStall }

// History is the campaign's record, appended to by every client.
type History struct {
	mu  sync.Mutex
	ops []*Op
}

// Begin records the invocation of op and returns it for End.
func (h *History) Begin(op *Op) *Op {
	op.Call = time.Now()
	return op
}

// End records the completion of op (whatever the outcome) and keeps it.
func (h *History) End(op *Op, out Outcome) {
	op.Outcome = out
	if out != Unknown {
		op.Return = time.Now()
	}
	h.Add(op)
}

// Add keeps an already complete operation (nemesis entries, tests).
func (h *History) Add(op *Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns the operations recorded so far.
func (h *History) Ops() []*Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Op(nil), h.ops...)
}

// Len is the number of client operations recorded (nemesis entries excluded).
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// view converts an API allocation.
func view(a *ironpool.Allocation) *AllocView {
	if a == nil || a.ID == "" {
		return nil
	}
	v := &AllocView{ID: a.ID, Owner: a.Owner, State: a.State, ExpiresAt: a.ExpiresAt, WaitUntil: a.WaitUntil,
		Tag: a.Metadata[tagKey]}
	for _, it := range a.Items {
		v.Items = append(v.Items, ItemView{Flavor: it.Flavor, Count: it.Count, Nodes: it.Nodes})
	}
	return v
}

// tagKey is the metadata key naming the request that created an allocation,
// so an allocation whose 201 was lost (a timeout, a kill) can still be tied
// to the request that made it.
const tagKey = "soak-op"
