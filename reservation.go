package ironpool

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ReservationState is where a booking for a future window is in its life.
type ReservationState string

// Reservation states. pending → active (its allocation exists, expiring at
// the window's end) is the common path; cancelled by its owner before the
// start; failed when, at the start, nodes it was promised were broken and
// no free node could replace them (the owner is told by event and webhook).
const (
	ResPending   ReservationState = "pending"
	ResActive    ReservationState = "active"
	ResCancelled ReservationState = "cancelled"
	ResFailed    ReservationState = "failed"
)

// ReservationStates lists every reservation state, for validating filters.
var ReservationStates = []ReservationState{ResPending, ResActive, ResCancelled, ResFailed}

// Check returns EINVALID naming field unless s is a reservation state.
func (s ReservationState) Check(field string) error {
	if slices.Contains(ReservationStates, s) {
		return nil
	}
	names := make([]string, len(ReservationStates))
	for i, v := range ReservationStates {
		names[i] = string(v)
	}
	return FieldErrorf(field, "%q is not a reservation state (want %s)", truncate(string(s), 20), strings.Join(names, ", "))
}

// MaxReservationAhead bounds how far ahead a window may start: a booking a
// year out pins nodes that will likely have been replaced by then.
const MaxReservationAhead = 366 * 24 * time.Hour

// ReservationRequest books nodes for the window [Start, End): all items or
// nothing, as an allocation asks for them now.
type ReservationRequest struct {
	Owner    string            `json:"owner"`
	Items    []ItemRequest     `json:"items"`
	Pool     string            `json:"pool,omitempty"`
	Mode     Mode              `json:"mode,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
}

// Validate checks the request's shape against now (not flavor existence):
// the items as an allocation's, and a window that starts in the future,
// ends after it starts and starts within MaxReservationAhead.
func (r *ReservationRequest) Validate(now time.Time) error {
	a := AllocationRequest{Owner: r.Owner, Items: r.Items, Pool: r.Pool, Mode: r.Mode, Metadata: r.Metadata}
	if err := a.Validate(); err != nil {
		return err
	}
	switch {
	case r.Start.IsZero():
		return FieldErrorf("start", "is required (RFC 3339 time or +DURATION from now)")
	case r.End.IsZero():
		return FieldErrorf("end", "is required (RFC 3339 time or +DURATION from now)")
	case !r.Start.After(now):
		return FieldErrorf("start", "%s is not in the future (now is %s)", r.Start.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)).
			WithHint("to take nodes now, use `ironpool allocate`")
	case !r.End.After(r.Start):
		return FieldErrorf("end", "%s is not after start %s", r.End.UTC().Format(time.RFC3339), r.Start.UTC().Format(time.RFC3339))
	case r.Start.Sub(now) > MaxReservationAhead:
		return FieldErrorf("start", "is more than %d days ahead", int(MaxReservationAhead.Hours()/24))
	}
	return nil
}

// Reservation is a booking of nodes for a future window. The nodes are
// named at booking (Items[i].Nodes): the promise is exact and checkable,
// and a node that fails before the start is replaced, when a free one can
// be found for the whole window, by another that fits the same item.
type Reservation struct {
	ID       string            `json:"id"`
	Owner    string            `json:"owner"`
	State    ReservationState  `json:"state" enum:"pending,active,cancelled,failed"`
	Mode     Mode              `json:"mode" enum:"none,handoff,lessee"`
	Pool     string            `json:"pool,omitempty"`
	Items    []AllocationItem  `json:"items"`
	Metadata map[string]string `json:"metadata"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	// Gap is the cleaning gap the booking was checked with, as a duration
	// string: no other hold of its nodes ends later than Start-Gap or
	// starts earlier than End+Gap.
	Gap       string    `json:"gap"`
	CreatedAt time.Time `json:"created_at"`
	// AllocationID is the allocation the reservation became at its start.
	AllocationID string `json:"allocation_id,omitempty"`
	// LastError says why a pending reservation is at risk (a node broke
	// and nothing can replace it yet) or why it failed.
	LastError string `json:"last_error,omitempty"`
}

// ReservationFilter selects reservations.
type ReservationFilter struct {
	ID     string
	Owner  string
	Owners []string // any of these (for scoped callers); nil means no restriction
	State  ReservationState
	Live   bool // pending or active only
	Limit  int
}

// ReservationStore is the store's part for reservations; ironpool.Store
// embeds it. Every method is one transaction.
type ReservationStore interface {
	// Reserve books r (owner, mode, pool, metadata, items with resolved
	// constraints, Start, End) against the pool's future: a node serves
	// the window only if no live lease's expiry plus the gap is after
	// Start and no pending reservation holds it within the gap of the
	// window. On success r.ID, r.State=pending and r.Items[i].Nodes are
	// set. ECAPACITY with Shortfall (item, counts and the short interval
	// in From/To) when the window cannot be served.
	Reserve(ctx context.Context, r *Reservation) error
	FindReservations(ctx context.Context, f ReservationFilter) ([]*Reservation, error)
	// FindReservation returns one reservation; ENOTFOUND for an unknown id.
	FindReservation(ctx context.Context, id string) (*Reservation, error)
	// CancelReservation ends a pending reservation (state cancelled) and
	// returns it; one already cancelled or failed is returned unchanged;
	// an active one is ECONFLICT (release its allocation instead).
	CancelReservation(ctx context.Context, id string) (*Reservation, error)
	// StartReservations, decided inside one transaction, repairs pending
	// reservations whose nodes broke (maintenance, error, deleted) from
	// nodes free over their window, marks those it cannot repair at risk
	// (event reservation.at_risk, once), and turns every pending
	// reservation whose start has come into an active allocation with
	// expires_at = End (event reservation.started), replacing nodes that
	// are not available from the free ones, or fails it (event
	// reservation.failed) when that is impossible. It returns the
	// reservations whose state or nodes changed and the allocations made.
	StartReservations(ctx context.Context) ([]*Reservation, []*Allocation, error)
	// Calendar reads, for the nodes of pool ("" every pool), their holds
	// overlapping [from, to): active leases, pending reservations and
	// maintenance or error spells (open-ended).
	Calendar(ctx context.Context, pool string, from, to time.Time) (*Calendar, error)
}

// HoldKind says what holds a node over a calendar interval.
type HoldKind string

// Hold kinds: a live lease, a pending reservation, or a node out of
// service (maintenance, error) with no known end.
const (
	HoldLease       HoldKind = "lease"
	HoldReservation HoldKind = "reservation"
	HoldUnavailable HoldKind = "unavailable"
)

// Hold is one interval during which a node is not free: [Start, End),
// followed by the cleaning gap until CleanUntil (leases and reservations).
type Hold struct {
	Kind       HoldKind  `json:"kind" enum:"lease,reservation,unavailable"`
	ID         string    `json:"id,omitempty"`
	Owner      string    `json:"owner,omitempty"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	CleanUntil time.Time `json:"clean_until"`
}

// CalendarNode is one node's holds over the calendar's range.
type CalendarNode struct {
	Node  string    `json:"node"`
	Pool  string    `json:"pool"`
	State NodeState `json:"state"`
	Holds []Hold    `json:"holds"`
	// node is kept for the per-flavor view, which matches constraints.
	node *Node
}

// SetNode attaches the node record the per-flavor view matches against.
func (c *CalendarNode) SetNode(n *Node) { c.node = n }

// CalendarSlot is, for one flavor, an interval over which the same number
// of its nodes are free.
type CalendarSlot struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Free  int       `json:"free"`
	Held  int       `json:"held"`
}

// CalendarFlavor is one flavor's free/held counts over time.
type CalendarFlavor struct {
	Flavor string         `json:"flavor"`
	Total  int            `json:"total"`
	Slots  []CalendarSlot `json:"slots"`
}

// Calendar is the pool's future: per node its holds, and per flavor (with
// --by flavor) how many nodes are free over each interval.
type Calendar struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Gap     string           `json:"gap"`
	Nodes   []CalendarNode   `json:"nodes"`
	Flavors []CalendarFlavor `json:"flavors,omitempty"`
}

// busy reports the node's busy intervals within [from, to): each hold
// stretched by its cleaning gap, clipped to the range.
func (c *CalendarNode) busy(from, to time.Time) [][2]time.Time {
	var out [][2]time.Time
	for _, h := range c.Holds {
		end := h.CleanUntil
		if end.Before(h.End) {
			end = h.End
		}
		s, e := h.Start, end
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		if s.Before(e) {
			out = append(out, [2]time.Time{s, e})
		}
	}
	return out
}

// FreeSlots splits [from, to) into intervals over which the same nodes of
// nodes are free (not within any hold or its cleaning gap) and counts them.
// Holds of a reservation are counted from Start; a booking additionally
// needs the gap before its own start, which callers add by widening the
// holds (see Reservation.Gap).
func FreeSlots(nodes []*CalendarNode, from, to time.Time) []CalendarSlot {
	cuts := map[int64]time.Time{from.UnixMilli(): from, to.UnixMilli(): to}
	busy := make([][][2]time.Time, len(nodes))
	for i, n := range nodes {
		busy[i] = n.busy(from, to)
		for _, b := range busy[i] {
			cuts[b[0].UnixMilli()], cuts[b[1].UnixMilli()] = b[0], b[1]
		}
	}
	var ts []time.Time
	for _, t := range cuts {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var out []CalendarSlot
	for k := 0; k+1 < len(ts); k++ {
		s, e := ts[k], ts[k+1]
		free := 0
		for i := range nodes {
			held := false
			for _, b := range busy[i] {
				if b[0].Before(e) && b[1].After(s) {
					held = true
					break
				}
			}
			if !held {
				free++
			}
		}
		slot := CalendarSlot{Start: s, End: e, Free: free, Held: len(nodes) - free}
		if n := len(out); n > 0 && out[n-1].Free == slot.Free && out[n-1].End.Equal(s) {
			out[n-1].End = e
			continue
		}
		out = append(out, slot)
	}
	return out
}

// ByFlavor fills c.Flavors: for each flavor, the nodes of the calendar that
// match its constraints and how many of them are free over time.
func (c *Calendar) ByFlavor(flavors []*Flavor) {
	c.Flavors = []CalendarFlavor{}
	for _, f := range flavors {
		var match []*CalendarNode
		for i := range c.Nodes {
			if n := c.Nodes[i].node; n != nil && f.Constraints.Matches(n) {
				match = append(match, &c.Nodes[i])
			}
		}
		c.Flavors = append(c.Flavors, CalendarFlavor{Flavor: f.Name, Total: len(match), Slots: FreeSlots(match, c.From, c.To)})
	}
}

// ReservationShortfall describes, for one item of a refused reservation,
// how many nodes were asked, how many match at all, how many are free over
// the whole window (cleaning gaps included) and the first interval within
// the window where fewer than asked are free at once (From, To; the whole
// window when enough are free at every instant but not the same ones).
func ReservationShortfall(item int, flavor string, requested int, nodes []*CalendarNode, start, end time.Time) Shortfall {
	sf := Shortfall{Item: item, Flavor: flavor, Requested: requested, Matching: len(nodes)}
	for _, n := range nodes {
		if len(n.busy(start, end)) == 0 {
			sf.Free++
		}
	}
	if sf.Free >= requested {
		return sf
	}
	for _, s := range FreeSlots(nodes, start, end) {
		if s.Free < requested {
			if sf.From.IsZero() {
				sf.From, sf.To = s.Start, s.End
			} else if sf.To.Equal(s.Start) {
				sf.To = s.End
			}
		} else if !sf.From.IsZero() {
			break
		}
	}
	if sf.From.IsZero() {
		sf.From, sf.To = start, end
	}
	return sf
}

// ReservationCapacityError is the ECAPACITY error of a refused booking:
// it names the first short item in Field and, per item, the interval
// where it is short.
func ReservationCapacityError(sf []Shortfall) *Error {
	var parts []string
	field := "items"
	for _, f := range sf {
		if f.Free >= f.Requested {
			continue
		}
		if field == "items" {
			field = fmt.Sprintf("items[%d]", f.Item)
		}
		name := f.Flavor
		if name == "" {
			name = fmt.Sprintf("item %d", f.Item)
		}
		parts = append(parts, fmt.Sprintf("item %d (%s): asked %d, %d match, %d free over the whole window; short from %s to %s",
			f.Item, name, f.Requested, f.Matching, f.Free, f.From.UTC().Format(time.RFC3339), f.To.UTC().Format(time.RFC3339)))
	}
	msg := "the window cannot be served (" + strings.Join(parts, "; ") + ")"
	if len(parts) == 0 {
		msg = "the window cannot be served: every item fits alone, but the items compete for the same nodes"
	}
	return &Error{Code: ECAPACITY, Field: field, Message: msg, Shortfall: sf,
		Hint: "see `ironpool calendar --by flavor` for free capacity over time, or pick another window"}
}
