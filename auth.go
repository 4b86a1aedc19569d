package ironpool

import (
	"context"
	"slices"
	"time"
)

// Role is what a token may do.
type Role string

// Roles. admin may do everything; operator runs the inventory (add, import,
// set, maintenance, flavors) but never reads secrets or allocates; user
// allocates, extends, releases and reads for its own owners only.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleUser     Role = "user"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleOperator || r == RoleUser }

// AnyOwner in a token's owner list lets a user token act for every owner
// (the Molten Iron listener's default scope).
const AnyOwner = "*"

// Actor is who is making a request: the token behind it and its scope.
type Actor struct {
	TokenID string   `json:"token_id"`
	Role    Role     `json:"role"`
	Owners  []string `json:"owners,omitempty"`
	// Priority is what the actor's requests carry into the queue
	// (MinPriority..MaxPriority): its token's.
	Priority int `json:"priority"`
}

// System is the actor of background loops (reaper, queue, reconciler).
var System = &Actor{TokenID: "system", Role: RoleAdmin, Priority: DefaultPriority}

// CanActFor reports whether a may allocate for, release, or read the
// secrets of allocations of owner. An entry of a's owner list may be a
// pattern ("ci-*", see MatchOwner): it covers every owner it matches.
func (a *Actor) CanActFor(owner string) bool {
	if a == nil {
		return false
	}
	if a.Role == RoleAdmin {
		return true
	}
	if a.Role != RoleUser {
		return false
	}
	return slices.ContainsFunc(a.Owners, func(p string) bool { return p == AnyOwner || MatchOwner(p, owner) })
}

// Unscoped reports whether a sees every owner's allocations: admins,
// operators and user tokens for AnyOwner.
func (a *Actor) Unscoped() bool {
	return a != nil && (a.Role == RoleAdmin || a.Role == RoleOperator || slices.Contains(a.Owners, AnyOwner))
}

// CanSee reports whether a may see (not necessarily the secrets of) the
// allocations of owner: admins and operators see all, users their own.
func (a *Actor) CanSee(owner string) bool {
	if a == nil {
		return false
	}
	return a.Role == RoleAdmin || a.Role == RoleOperator || a.CanActFor(owner)
}

type actorKey struct{}

// NewContextWithActor returns ctx carrying the actor.
func NewContextWithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the actor of ctx, or nil.
func ActorFromContext(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// Token is an API credential. Only its hash is stored; Secret is set once,
// in the reply that creates it.
type Token struct {
	ID          string   `json:"id"`
	Role        Role     `json:"role"`
	Owners      []string `json:"owners"`
	Description string   `json:"description,omitempty"`
	// Priority is the queue priority of the token's requests
	// (MinPriority..MaxPriority).
	Priority  int       `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Hash      string    `json:"-"`
	Secret    string    `json:"token,omitempty"`
}

// Event is one audit record: who changed what, when.
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Role    Role      `json:"role"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Summary string    `json:"summary"`
}

// EventFilter selects events. AfterID pages forward.
type EventFilter struct {
	AfterID int64
	Since   time.Time
	Subject string
	Action  string
	Limit   int
	// Tail, when positive, keeps only the newest Tail events that match
	// (still listed oldest first): the dashboard's "recent events".
	Tail int
}

// Sealer encrypts secrets at rest. aad binds a ciphertext to the row and
// column it belongs to, so a ciphertext copied elsewhere does not open.
type Sealer interface {
	Seal(plaintext, aad string) (string, error)
	Open(ciphertext, aad string) (string, error)
	// KeyID names the key Seal uses now.
	KeyID() string
	// NeedsReseal reports whether a ciphertext is sealed under a key other
	// than the current one, so a re-encryption pass can skip the rest.
	NeedsReseal(ciphertext string) bool
}
