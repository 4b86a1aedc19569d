package ironpool

import (
	"context"
	"time"
)

// Store is persistence: every method is one transaction, and every change
// writes its audit event (actor from ctx) in that same transaction. The
// SQLite and PostgreSQL stores implement it and pass one contract suite.
// Callers validate input first; the store still enforces uniqueness and
// state rules, which only it can check atomically.
type Store interface {
	NodeService
	FlavorService

	// Allocate claims nodes for a (owner, mode, metadata, items with resolved
	// constraints, ExpiresAt set). On success a.ID, a.State=active,
	// a.Items[i].Nodes and a.Nodes are filled. When the free nodes cannot
	// satisfy it: with queue, a is stored as queued (FIFO) and returned with
	// nil error; without, ECAPACITY with Shortfall. A request is also queued,
	// never run, when queue is set and earlier requests wait already.
	Allocate(ctx context.Context, a *Allocation, queue bool) error
	// AllocateNodes creates an active allocation of a.Owner holding exactly
	// nodeIDs, with no selection step (adopting a node that already runs the
	// owner's workload); the nodes enter state, which must be a held state.
	// Returns ENOTFOUND for an unknown id and ECONFLICT when a node is held,
	// cleaning or in another allocation.
	AllocateNodes(ctx context.Context, a *Allocation, nodeIDs []int64, state NodeState) error
	// Plan is Allocate without writing anything.
	Plan(ctx context.Context, a *Allocation) (*Plan, error)
	// DispatchQueue fulfils queued allocations first-come first-served,
	// stopping at the first that still does not fit (so the head is never
	// starved by smaller requests behind it), and fails those whose deadline
	// passed. It returns the allocations whose state changed.
	DispatchQueue(ctx context.Context, now time.Time) ([]*Allocation, error)

	FindAllocations(ctx context.Context, f AllocationFilter) ([]*Allocation, error)
	// FindAllocation returns the allocation with its nodes (secrets opened).
	FindAllocation(ctx context.Context, id string) (*Allocation, error)
	// ExtendAllocation sets a live allocation's expiry. ECONFLICT if not live.
	ExtendAllocation(ctx context.Context, id string, expiresAt time.Time) (*Allocation, error)
	// ReleaseAllocations ends the live allocations selected by id or owner
	// (state final: released or expired) and returns them; already-ended ones
	// selected by id are returned unchanged. Nodes go to cleaning with
	// Pending "clean", or straight to available when cleanInline is set (a
	// local pool with no cleaning hook: cleaning is a no-op).
	ReleaseAllocations(ctx context.Context, sel ReleaseSelector, final AllocationState, cleanInline bool) ([]*Allocation, error)
	// ExpiredAllocations lists ids of active allocations whose expiry is at
	// or before now.
	ExpiredAllocations(ctx context.Context, now time.Time) ([]string, error)
	// QueueInfo says where queued allocation id stands: position, reason
	// and estimate (nil, nil when it is not queued).
	QueueInfo(ctx context.Context, id string) (*QueueInfo, error)
	// TouchWaiter records that a client waits on queued allocation id now;
	// it does nothing for an allocation that is not queued.
	TouchWaiter(ctx context.Context, id string, now time.Time) error
	// CancelAbandoned fails the queued allocations whose waiter was last
	// seen (or which were created, if never waited on) before cutoff, and
	// returns them.
	CancelAbandoned(ctx context.Context, cutoff, now time.Time) ([]*Allocation, error)
	// NextExpiry is the earliest expiry of an active allocation (zero if none).
	NextExpiry(ctx context.Context) (time.Time, error)
	// FinishCleaning moves a cleaning node to available, or to error with
	// errMsg as last_error.
	FinishCleaning(ctx context.Context, nodeID int64, errMsg string) error

	Status(ctx context.Context, now time.Time) (*Status, error)
	Capacity(ctx context.Context) ([]CapacityRow, error)

	// AddEvent records an event that no other store change carries.
	AddEvent(ctx context.Context, e *Event) error
	FindEvents(ctx context.Context, f EventFilter) ([]*Event, error)

	CreateToken(ctx context.Context, t *Token) error
	// FindTokenByHash returns the unrevoked token with this hash, or ENOTFOUND.
	FindTokenByHash(ctx context.Context, hash string) (*Token, error)
	FindTokens(ctx context.Context) ([]*Token, error)
	RevokeToken(ctx context.Context, id string) error
	// CreateFirstToken stores t only if no token exists yet, and reports
	// whether it did: replicas starting on one empty database race here.
	CreateFirstToken(ctx context.Context, t *Token) (bool, error)

	// Reseal re-encrypts every stored secret with the sealer's current key;
	// it returns how many secrets it rewrote.
	Reseal(ctx context.Context) (int, error)

	// TryLease takes or renews the named lease for holder for ttl, and
	// reports whether holder has it. Background loops run only on the holder.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)

	Close() error
}

// ReleaseSelector picks what to release: one allocation or every live
// allocation of an owner.
type ReleaseSelector struct {
	ID    string
	Owner string
}
