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
	ReservationStore

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
	// AdoptNode adds n (as CreateNodes would) and an active allocation of
	// a.Owner holding it in state, with a node.adopted event carrying
	// summary, all in one transaction: a crash never leaves an adopted node
	// without its allocation. ECONFLICT for a taken name, MAC or link.
	AdoptNode(ctx context.Context, n *Node, a *Allocation, state NodeState, summary string) error
	// SetDeploySpec stores what a deploy of an active allocation writes to
	// its nodes; DeploySpec reads it back (ENOTFOUND without one). The
	// nodes' pending deploy refers to it, so any replica can carry it out.
	SetDeploySpec(ctx context.Context, allocationID string, spec DeploySpec) error
	DeploySpec(ctx context.Context, allocationID string) (DeploySpec, error)
	// IgnoredBackendNodes lists the backend ids of nodes an operator
	// deleted from the pool (DeleteNode marks them; CreateNodes of a node
	// with that link lifts the mark), so sync does not import them again.
	IgnoredBackendNodes(ctx context.Context) (map[string]bool, error)
	// Plan is Allocate without writing anything.
	Plan(ctx context.Context, a *Allocation) (*Plan, error)
	// DispatchQueue fulfils queued allocations in queue order (priority
	// with aging, then arrival; docs/SCHEDULING.md), stopping at the first
	// that still does not fit (so the head is never starved by smaller
	// requests behind it), skipping those their owner's quota does not
	// allow yet, and fails those whose deadline passed. It returns the
	// allocations whose state changed.
	DispatchQueue(ctx context.Context, now time.Time) ([]*Allocation, error)

	FindAllocations(ctx context.Context, f AllocationFilter) ([]*Allocation, error)
	// FindAllocation returns the allocation with its nodes (secrets opened).
	FindAllocation(ctx context.Context, id string) (*Allocation, error)
	// ExtendAllocation sets an active allocation's expiry to the store's
	// now + ttl, deciding on the row as it is inside the writing
	// transaction: an allocation the reaper ended first gets ECONFLICT, and
	// one extended first is not expired. ENOTFOUND for an unknown id.
	ExtendAllocation(ctx context.Context, id string, ttl time.Duration) (*Allocation, error)
	// ReleaseAllocations ends the live allocations selected by id or owner
	// (state final: released or expired) and returns them; already-ended ones
	// selected by id are returned unchanged. Nodes go to cleaning with
	// Pending "clean", or straight to available when cleanInline is set (a
	// local pool with no cleaning hook: cleaning is a no-op).
	ReleaseAllocations(ctx context.Context, sel ReleaseSelector, final AllocationState, cleanInline bool) ([]*Allocation, error)
	// ExpireAllocations ends (state expired) every active allocation whose
	// expiry is at or before the store's now, and returns them. The expiry
	// is read in the same transaction that releases, on the locked row, so a
	// renewal that committed first is always honoured. Nodes go to cleaning
	// as with ReleaseAllocations.
	ExpireAllocations(ctx context.Context, cleanInline bool) ([]*Allocation, error)
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
	// NextExpiry is the earliest time the background loop has timed work:
	// the expiry of an active allocation or the deadline of a queued one
	// (zero if none). The loop sleeps until then, so a deadline is failed
	// on time rather than at the loop's next periodic pass.
	NextExpiry(ctx context.Context) (time.Time, error)
	// FinishCleaning moves a cleaning node to available, or to error with
	// errMsg as last_error.
	FinishCleaning(ctx context.Context, nodeID int64, errMsg string) error

	Status(ctx context.Context, now time.Time) (*Status, error)
	Capacity(ctx context.Context) ([]CapacityRow, error)

	// NodeHistory reads one page of a node's history (name or UUID):
	// its own events and those of the allocations that held it, newest
	// first, limit of them with ids below before (0: the newest), and
	// every allocation that held it. ENOTFOUND for an unknown node.
	NodeHistory(ctx context.Context, name string, before int64, limit int) (*NodeHistory, error)
	// UsageRecords reads the holds and maintenance spells overlapping
	// [since, until) and the nodes that exist now.
	UsageRecords(ctx context.Context, since, until time.Time) (*UsageRecords, error)

	// SetQuota creates or replaces the quota of q.Owner (a name or pattern)
	// and returns it with its usage; a quota below the usage is stored, with
	// Warning set. Allocate, DispatchQueue and ExtendAllocation enforce
	// quotas inside their transactions: EQUOTA (with Quota set) for a
	// request no quota allows, and the quota.refused event. Every quota
	// whose subject matches the owner applies.
	SetQuota(ctx context.Context, q *Quota) (*QuotaStatus, error)
	// DeleteQuota removes the quota of a name or pattern (ENOTFOUND if none).
	DeleteQuota(ctx context.Context, owner string) error
	// FindQuota reads one quota with its usage (ENOTFOUND if none).
	FindQuota(ctx context.Context, owner string) (*QuotaStatus, error)
	// FindQuotas lists every quota with its usage, by subject.
	FindQuotas(ctx context.Context) ([]*QuotaStatus, error)
	// Usage sums node-hours per owner and flavor over [f.Since, f.Until)
	// from the usage record; live holds count up to now.
	Usage(ctx context.Context, f UsageFilter) (*UsageReport, error)

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
	// it reports how many secrets it rewrote and under which key. A secret
	// that does not open (its key is gone) is skipped and named in the
	// result, never a reason to stop: the rest still get resealed.
	Reseal(ctx context.Context) (ResealResult, error)
	// CheckKey verifies that the sealer holds the key the stored secrets
	// are sealed with, by opening the key check kept with the data (or, in
	// a database without one, any stored password). With record set and no
	// key check stored yet, it stores one sealed under the current key.
	// Returns EINVALID (field secret-key-file) naming the key id the data
	// needs when the sealer cannot open it; the server then refuses to start.
	CheckKey(ctx context.Context, record bool) error

	// TryLease takes or renews the named lease for holder for ttl, and
	// reports whether holder has it. Background loops run only on the holder.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the named lease up if holder has it, so that
	// another holder's next TryLease takes it at once rather than after
	// its TTL (a replica that stops hands the background loops over).
	ReleaseLease(ctx context.Context, name, holder string) error

	Close() error
}

// ResealResult is what a re-encryption pass did.
type ResealResult struct {
	// Resealed counts the secrets rewritten under KeyID.
	Resealed int `json:"resealed"`
	// KeyID names the key every secret that opens is now sealed under.
	KeyID string `json:"key_id"`
	// Skipped names the nodes whose password did not open and so stayed
	// as it was; set each again (`node set NAME bmc.password=…`) or
	// configure the key it needs and reseal again.
	Skipped []string `json:"skipped"`
}

// ReleaseSelector picks what to release: one allocation or every live
// allocation of an owner.
type ReleaseSelector struct {
	ID    string
	Owner string
	// Check, when set, is called inside the release's transaction with
	// the owner and state of each allocation selected, before anything
	// changes; its error is returned as is and nothing is released. The
	// service authorizes a release by id here, so that it costs no read
	// of its own. It may be called more than once for one release.
	Check func(owner string, state AllocationState) error
}
