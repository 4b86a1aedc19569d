package ironpool

import "time"

// The queue's promises, which the store and the pool service keep:
//
//   - Admission: a request that no state of the pool could satisfy — more
//     nodes than match in all, counting allocated, cleaning, maintenance and
//     error nodes that may come back — is refused at once with ECAPACITY and
//     the per-item shortfall, never queued, so it cannot block the requests
//     behind it forever.
//   - Deadlines: every queued request whose wait ran out is failed within
//     about a second, whatever its position.
//   - Order: queued requests are served by priority (with aging), then in
//     arrival order, and the head is never overtaken (docs/SCHEDULING.md).
//     A request its owner's quota does not allow yet is passed over, not
//     waited for, and reserves no nodes. Freed nodes go to the queue first: a
//     request without --wait may take only free nodes that match no item of
//     any queued request (they are "reserved"); if the rest do not fit, it
//     is refused with the reserved count in its shortfall.
//   - Attribution: the events of serving a queued request name the token
//     that queued it.
//   - A queued request needs a live waiter (Config.WaiterGrace in package
//     pool).

// QueueInfo is where a queued request stands.
type QueueInfo struct {
	// Position is 1 for the head of the queue.
	Position int `json:"position"`
	// Length is how many requests are queued in all.
	Length int `json:"length"`
	// Reason says in words why the request waits.
	Reason string `json:"reason"`
	// Items is the capacity per item now; Free counts only nodes not
	// reserved for requests ahead.
	Items []Shortfall `json:"items"`
	// Compete is set when every item fits alone but not together: the items
	// compete for the same nodes.
	Compete bool `json:"compete,omitempty"`
	// EstimatedAt is when, if every lease holding matching nodes runs to its
	// expiry and no request ahead takes them, enough nodes will be free;
	// zero when no lease's expiry would do it (nodes in maintenance, say).
	EstimatedAt time.Time `json:"estimated_at,omitzero"`
	// Quota is set when the owner's quota does not allow the request now:
	// it waits for usage to fall, whatever the pool has free, and other
	// requests are served past it (docs/SCHEDULING.md).
	Quota *QuotaRefusal `json:"quota,omitempty"`
}
