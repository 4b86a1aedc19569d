package ironpool

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Owner patterns. A token's owner list and a quota's subject may be an
// owner name or a pattern: an owner name in which '*' stands for any run of
// name characters, possibly empty ("ci-*" matches "ci-" and "ci-1234", not
// "ci" or "cix"; "*-nightly" matches "db-nightly"). '*' is the only special
// character: owner names are letters, digits, '.', '_', ':' and '-', none
// of which means anything in a pattern, so there are no regular-expression
// or path.Match surprises ('?', '[', '\' are not name characters and are
// refused). A lone "*" is AnyOwner. Matching is case-sensitive, as names are.

// IsOwnerPattern reports whether s is a pattern rather than one owner name.
func IsOwnerPattern(s string) bool { return strings.Contains(s, "*") }

// ValidateOwnerPattern checks that p is an owner name or a pattern of name
// characters and '*'; the error names field.
func ValidateOwnerPattern(field, p string) error {
	if p == AnyOwner {
		return nil
	}
	if p == "" {
		return FieldErrorf(field, "is required")
	}
	if len(p) > MaxNameLen {
		return FieldErrorf(field, "is %d characters long; the limit is %d", len(p), MaxNameLen)
	}
	// Every '*' stands for name characters, so a pattern is valid when
	// the name it gives with each '*' read as one letter is.
	if !namePattern.MatchString(strings.ReplaceAll(p, "*", "a")) {
		return FieldErrorf(field, "%q must be an owner name or a pattern of name characters and '*' (e.g. ci-*); '*' is the only wildcard", truncate(p, 70))
	}
	return nil
}

// MatchOwner reports whether owner matches pattern p (see IsOwnerPattern;
// a name without '*' matches only itself).
func MatchOwner(p, owner string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == owner
	}
	if !strings.HasPrefix(owner, parts[0]) {
		return false
	}
	rest := owner[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, mid)
		if i < 0 {
			return false
		}
		rest = rest[i+len(mid):]
	}
	return len(rest) >= len(last) && strings.HasSuffix(rest, last)
}

// Priorities order the queue: higher first, then arrival, with aging
// (docs/SCHEDULING.md). A token carries one; a request takes its token's.
const (
	MinPriority     = 0
	MaxPriority     = 9
	DefaultPriority = 5
)

// DefaultQueueAging is how long a queued request waits for its priority
// to rise by one. With it the lowest class (0) waits at most
// (MaxPriority-0) × 1m = 9 minutes before no request that arrives later
// can be served ahead of it (docs/SCHEDULING.md).
const DefaultQueueAging = time.Minute

// ValidatePriority checks that p is within MinPriority..MaxPriority.
func ValidatePriority(field string, p int) error {
	if p < MinPriority || p > MaxPriority {
		return FieldErrorf(field, "is %d; priorities run from %d (lowest) to %d (highest)", p, MinPriority, MaxPriority)
	}
	return nil
}

// EffectivePriority is a queued request's priority after aging: it rises
// by one for every full step waited, so the longer a request waits, the
// fewer requests can overtake it. A step of zero turns aging off.
func EffectivePriority(priority int, waited, step time.Duration) int {
	if step <= 0 || waited <= 0 {
		return priority
	}
	return priority + int(min(waited/step, math.MaxInt32))
}

// Quota caps what an owner, or every owner matching a pattern, may hold.
// A zero limit is no limit. Every quota whose subject matches an owner
// applies to it, so the most restrictive wins; a pattern quota counts the
// usage of all the owners it matches together (one budget for "ci-*").
type Quota struct {
	// Owner is the owner name or pattern the quota applies to.
	Owner string `json:"owner"`
	// MaxNodes caps the nodes held at once.
	MaxNodes int `json:"max_nodes,omitempty"`
	// MaxFlavor caps the nodes held at once per flavor name.
	MaxFlavor map[string]int `json:"max_flavor,omitempty"`
	// MaxLease caps how long one allocation may hold its nodes, renewals
	// included (from when it got them to its expiry).
	MaxLease time.Duration `json:"-"`
	// MaxNodeHours caps the node-hours used over the rolling window Per;
	// live allocations count up to now.
	MaxNodeHours float64       `json:"max_node_hours,omitempty"`
	Per          time.Duration `json:"-"`
	// MaxLeaseText and PerText are MaxLease and Per on the wire ("4h0m0s").
	MaxLeaseText string    `json:"max_lease,omitempty"`
	PerText      string    `json:"per,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// MaxQuotaFlavors bounds one quota's per-flavor limits.
const MaxQuotaFlavors = 64

// SetText fills the wire forms of the durations.
func (q *Quota) SetText() {
	q.MaxLeaseText, q.PerText = "", ""
	if q.MaxLease > 0 {
		q.MaxLeaseText = q.MaxLease.String()
	}
	if q.Per > 0 {
		q.PerText = q.Per.String()
	}
}

// Validate checks a quota before it is stored.
func (q *Quota) Validate() error {
	if err := ValidateOwnerPattern("owner", q.Owner); err != nil {
		return err
	}
	if q.MaxNodes < 0 || q.MaxNodes > 1_000_000 {
		return FieldErrorf("max_nodes", "must be between 0 (no limit) and 1000000 (got %d)", q.MaxNodes)
	}
	if len(q.MaxFlavor) > MaxQuotaFlavors {
		return FieldErrorf("max_flavor", "has %d entries; the limit is %d", len(q.MaxFlavor), MaxQuotaFlavors)
	}
	for _, name := range slices.Sorted(maps.Keys(q.MaxFlavor)) {
		if err := ValidateName("max_flavor", name); err != nil {
			return err
		}
		if n := q.MaxFlavor[name]; n < 1 || n > 1_000_000 {
			return FieldErrorf("max_flavor."+name, "must be between 1 and 1000000 (got %d); delete the entry for no limit", n)
		}
	}
	if q.MaxLease < 0 {
		return FieldErrorf("max_lease", "must not be negative")
	}
	if q.MaxLease > 0 && q.MaxLease < time.Minute {
		return FieldErrorf("max_lease", "%s is under the smallest limit of 1m", q.MaxLease)
	}
	switch {
	case math.IsNaN(q.MaxNodeHours) || q.MaxNodeHours < 0 || q.MaxNodeHours > 1e9:
		return FieldErrorf("max_node_hours", "must be between 0 (no limit) and 1e9")
	case q.MaxNodeHours > 0 && q.Per <= 0:
		return FieldErrorf("per", "is required with max_node_hours (the rolling window, e.g. 24h or 7d)")
	case q.MaxNodeHours == 0 && q.Per != 0:
		return FieldErrorf("per", "is only meaningful with max_node_hours")
	case q.Per < 0 || q.Per > 366*24*time.Hour:
		return FieldErrorf("per", "must be between 1m and 366d")
	case q.Per > 0 && q.Per < time.Minute:
		return FieldErrorf("per", "%s is under the smallest window of 1m", q.Per)
	}
	if q.MaxNodes == 0 && len(q.MaxFlavor) == 0 && q.MaxLease == 0 && q.MaxNodeHours == 0 {
		return FieldErrorf("max_nodes", "a quota needs at least one limit (max_nodes, max_flavor, max_lease or max_node_hours)")
	}
	return nil
}

// QuotaUsage is what the owners a quota applies to hold and have used.
type QuotaUsage struct {
	// Nodes is the nodes held now.
	Nodes int `json:"nodes"`
	// Flavors is the nodes held now per flavor ("" for inline constraints).
	Flavors map[string]int `json:"flavors"`
	// NodeHours is the node-hours used over the quota's window (zero when
	// it has no node-hours limit).
	NodeHours float64 `json:"node_hours"`
}

// QuotaStatus is a quota with the usage it is measured against. Warning
// is set when the usage is over a limit already (a quota set below current
// usage is allowed; new requests are refused until usage falls).
type QuotaStatus struct {
	Quota   *Quota     `json:"quota"`
	Used    QuotaUsage `json:"used"`
	Warning string     `json:"warning,omitempty"`
}

// QuotaRefusal is, on an EQUOTA error, the quota that refused and how far.
type QuotaRefusal struct {
	// Quota is the owner or pattern of the quota that refused.
	Quota string `json:"quota"`
	// Limit names the limit: max_nodes, max_flavor.NAME, max_lease or
	// max_node_hours.
	Limit string `json:"limit"`
	// Allowed, Used and Requested are in the limit's unit (nodes, seconds
	// of lease, node-hours).
	Allowed   float64 `json:"allowed"`
	Used      float64 `json:"used"`
	Requested float64 `json:"requested"`
}

// QuotaError returns the EQUOTA error for r.
func QuotaError(owner string, r QuotaRefusal) *Error {
	var what string
	switch {
	case r.Limit == "max_lease":
		what = fmt.Sprintf("allows leases of up to %s; this one would run %s",
			time.Duration(r.Allowed*float64(time.Second)), time.Duration(r.Requested*float64(time.Second)).Round(time.Second))
	case r.Limit == "max_node_hours":
		what = fmt.Sprintf("allows %.4g node-hours per window; %.4g used, this request needs up to %.4g more", r.Allowed, r.Used, r.Requested)
	default:
		what = fmt.Sprintf("allows %g nodes; %g held, %g asked", r.Allowed, r.Used, r.Requested)
	}
	return &Error{Code: EQUOTA, Field: "owner", Quota: &r,
		Message: fmt.Sprintf("quota %s %s for owner %s: %s", r.Quota, r.Limit, owner, what),
		Hint:    "release nodes, wait for usage to fall (--wait queues until it does), or ask an admin (`ironpool quota show " + r.Quota + "`)"}
}

// UsageRow is the node-hours one owner used with one flavor over a window.
type UsageRow struct {
	Owner string `json:"owner"`
	// Flavor is "" for items given by inline constraints.
	Flavor    string  `json:"flavor"`
	NodeHours float64 `json:"node_hours"`
	// Nodes is how many nodes of it the owner holds now.
	Nodes int `json:"nodes"`
}

// UsageFilter selects usage rows. Zero Until means now.
type UsageFilter struct {
	Owner string
	Since time.Time
	Until time.Time
}

// UsageReport is the node-hours per owner and flavor over [Since, Until).
type UsageReport struct {
	Since time.Time  `json:"since"`
	Until time.Time  `json:"until"`
	Rows  []UsageRow `json:"rows"`
}
