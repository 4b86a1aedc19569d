package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/metrics"
)

// resolve turns a request into an allocation with every item's constraints
// spelled out: the flavor's, overlaid with inline constraints, scoped to the
// request's pool. Allocations keep these, so a later flavor change does not
// alter a lease.
func (s *Service) resolve(ctx context.Context, req *ironpool.AllocationRequest) (*ironpool.Allocation, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	defaulted := req.TTL == 0
	if defaulted {
		req.TTL = s.Config.DefaultTTL
	}
	if req.TTL > s.Config.MaxTTL {
		return nil, ironpool.FieldErrorf("ttl", "%s is over the maximum lease of %s", req.TTL, s.Config.MaxTTL)
	}
	if req.Wait > s.Config.MaxWait {
		return nil, ironpool.FieldErrorf("wait", "%s is over the maximum wait of %s", req.Wait, s.Config.MaxWait)
	}
	if req.Mode == "" {
		req.Mode = s.Config.DefaultMode
	}
	now := s.Now().UTC()
	a := &ironpool.Allocation{Owner: req.Owner, Mode: req.Mode, Metadata: req.Metadata,
		CreatedAt: now, ExpiresAt: now.Add(req.TTL), TTL: req.TTL, DefaultTTL: defaulted}
	if req.Wait > 0 {
		a.WaitUntil = now.Add(req.Wait)
	}
	if req.Topology != nil {
		a.Topology = req.Topology.Normalized()
	}
	for i, it := range req.Items {
		var c ironpool.Constraints
		if it.Flavor != "" {
			f, err := s.Store.FindFlavor(ctx, it.Flavor)
			if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
				return nil, (&ironpool.Error{Code: ironpool.EINVALID, Field: fmt.Sprintf("items[%d].flavor", i),
					Message: fmt.Sprintf("no flavor named %q", it.Flavor)}).WithHint("list flavors with `ironpool flavor list`")
			} else if err != nil {
				return nil, err
			}
			c = f.Constraints
		}
		if in := it.Constraints; in != nil {
			c.CPUs, c.MemoryMB, c.LocalGB = max(c.CPUs, in.CPUs), max(c.MemoryMB, in.MemoryMB), max(c.LocalGB, in.LocalGB)
			c.CPUArch = cmpOr(in.CPUArch, c.CPUArch)
			c.ResourceClass = cmpOr(in.ResourceClass, c.ResourceClass)
			c.Pool = cmpOr(in.Pool, c.Pool)
			c.Traits = append(slices.Clone(c.Traits), in.Traits...)
			slices.Sort(c.Traits)
			c.Traits = slices.Compact(c.Traits)
		}
		if c.Pool == "" {
			c.Pool = req.Pool
		} else if req.Pool != "" && req.Pool != c.Pool {
			return nil, ironpool.FieldErrorf(fmt.Sprintf("items[%d]", i), "flavor %s is for pool %s, but the request asks for pool %s", it.Flavor, c.Pool, req.Pool)
		}
		a.Items = append(a.Items, ironpool.AllocationItem{Flavor: it.Flavor, Constraints: c, Count: it.Count})
	}
	return a, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Allocate claims nodes for every item of the request or for none. Returns
// EINVALID for a malformed request or unknown flavor, ECAPACITY (with
// Shortfall) when the free nodes cannot satisfy it; with Wait > 0 an
// unsatisfiable request is queued instead and returned in state queued.
func (s *Service) Allocate(ctx context.Context, req *ironpool.AllocationRequest) (*ironpool.Allocation, error) {
	start := time.Now()
	a, err := s.allocate(ctx, req)
	switch {
	case err != nil:
		s.Metrics.Allocation(metrics.OutcomeRefused, ironpool.ErrorCode(err), time.Since(start))
	case a.State == ironpool.AllocQueued:
		s.Metrics.Allocation(metrics.OutcomeQueued, "", time.Since(start))
	default:
		s.Metrics.Allocation(metrics.OutcomeGranted, "", time.Since(start))
	}
	return a, err
}

func (s *Service) allocate(ctx context.Context, req *ironpool.AllocationRequest) (*ironpool.Allocation, error) {
	actor, err := forOwner(ctx, OpAllocCreate, req.Owner)
	if err != nil {
		return nil, err
	}
	a, err := s.resolve(ctx, req)
	if err != nil {
		return nil, err
	}
	// The request carries its token's priority into the queue.
	a.Priority = actor.Priority
	if err := s.Store.Allocate(ctx, a, req.Wait > 0); err != nil {
		return nil, err
	}
	if a.State == ironpool.AllocActive && s.Work != nil && len(s.Config.PerAllocationBMC) > 0 {
		if err := s.Work.CheckoutAccounts(ctx, a); err != nil {
			s.Work.RefuseCheckout(ctx, a)
			s.notify()
			return nil, err
		}
	}
	s.notify()
	return s.present(actor, a), nil
}

// PlanAllocation is a dry run: the nodes a request would take now and the
// capacity per item. It changes nothing.
func (s *Service) PlanAllocation(ctx context.Context, req *ironpool.AllocationRequest) (*ironpool.Plan, error) {
	if _, err := forOwner(ctx, OpAllocCreate, req.Owner); err != nil {
		return nil, err
	}
	a, err := s.resolve(ctx, req)
	if err != nil {
		return nil, err
	}
	return s.Store.Plan(ctx, a)
}

// present shapes an allocation for the actor: node passwords stay only for
// the owner (or an admin), the handoff the product promises.
func (s *Service) present(actor *ironpool.Actor, a *ironpool.Allocation) *ironpool.Allocation {
	s.leaseCredentials(a)
	if actor.CanActFor(a.Owner) {
		return a
	}
	for i, n := range a.Nodes {
		a.Nodes[i] = n.Redacted()
	}
	return a
}

// FindAllocations lists the allocations the actor may see.
func (s *Service) FindAllocations(ctx context.Context, f ironpool.AllocationFilter) ([]*ironpool.Allocation, error) {
	actor, err := Authorize(ctx, OpAllocRead)
	if err != nil {
		return nil, err
	}
	// A user token sees its owners' allocations only; an entry of its
	// owner list may be a pattern, which the store matches exactly as
	// CanActFor does.
	if !actor.Unscoped() {
		if f.Owner != "" && !actor.CanActFor(f.Owner) {
			return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "owner", Message: "this token may not act for owner " + f.Owner}
		}
		f.Owners = slices.Clone(actor.Owners)
		if f.Owners == nil {
			f.Owners = []string{}
		}
	}
	return s.Store.FindAllocations(ctx, f)
}

// FindAllocation returns one allocation with its nodes. A user may only see
// its own owners' allocations.
func (s *Service) FindAllocation(ctx context.Context, id string) (*ironpool.Allocation, error) {
	actor, err := Authorize(ctx, OpAllocRead)
	if err != nil {
		return nil, err
	}
	a, err := s.Store.FindAllocation(ctx, id)
	if err != nil {
		return nil, err
	}
	if !actor.CanSee(a.Owner) {
		return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "id", Message: "allocation " + id + " belongs to another owner"}
	}
	return s.present(actor, a), nil
}

// ExtendAllocation renews a lease to now+ttl.
func (s *Service) ExtendAllocation(ctx context.Context, id string, ttl time.Duration) (*ironpool.Allocation, error) {
	if _, err := Authorize(ctx, OpAllocExtend); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, ironpool.FieldErrorf("ttl", "must be positive")
	}
	if ttl > s.Config.MaxTTL {
		return nil, ironpool.FieldErrorf("ttl", "%s is over the maximum lease of %s", ttl, s.Config.MaxTTL)
	}
	owner, _, err := s.allocationOwner(ctx, id)
	if err != nil {
		return nil, err
	}
	actor, err := forOwner(ctx, OpAllocExtend, owner)
	if err != nil {
		return nil, err
	}
	a, err := s.Store.ExtendAllocation(ctx, id, ttl)
	if err != nil {
		return nil, err
	}
	s.notify()
	return s.present(actor, a), nil
}

// ReleaseAllocation releases one allocation (idempotent).
func (s *Service) ReleaseAllocation(ctx context.Context, id string) (*ironpool.Allocation, error) {
	if _, err := Authorize(ctx, OpAllocRelease); err != nil {
		return nil, err
	}
	// Authorized by the owner the release's own transaction reads, and
	// counted by the state it reads there.
	var actor *ironpool.Actor
	var was ironpool.AllocationState
	check := func(owner string, state ironpool.AllocationState) error {
		a, err := forOwner(ctx, OpAllocRelease, owner)
		actor, was = a, state
		return err
	}
	out, err := s.Store.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: id, Check: check}, ironpool.AllocReleased, s.cleanInline())
	if err != nil {
		return nil, err
	}
	if was.Live() {
		// A repeated release changes nothing and is not counted; two
		// concurrent releases of one allocation count once, as the state
		// is the one each read under the release's lock.
		s.Metrics.Released(1)
	}
	s.notify()
	a := out[0]
	a.Nodes = nil
	return s.present(actor, a), nil
}

// ReleaseOwner releases every live allocation of owner (idempotent: none is
// not an error).
func (s *Service) ReleaseOwner(ctx context.Context, owner string) ([]*ironpool.Allocation, error) {
	if err := ironpool.ValidateName("owner", owner); err != nil {
		return nil, err
	}
	if _, err := forOwner(ctx, OpAllocRelease, owner); err != nil {
		return nil, err
	}
	out, err := s.Store.ReleaseAllocations(ctx, ironpool.ReleaseSelector{Owner: owner}, ironpool.AllocReleased, s.cleanInline())
	if err != nil {
		return nil, err
	}
	s.Metrics.Released(len(out))
	s.notify()
	for _, a := range out {
		a.Nodes = nil
	}
	return out, nil
}

// Status summarizes the pool.
func (s *Service) Status(ctx context.Context) (*ironpool.Status, error) {
	if _, err := Authorize(ctx, OpStatus); err != nil {
		return nil, err
	}
	return s.Store.Status(ctx, s.Now())
}

// Capacity is free/total per flavor and pool.
func (s *Service) Capacity(ctx context.Context) ([]ironpool.CapacityRow, error) {
	if _, err := Authorize(ctx, OpStatus); err != nil {
		return nil, err
	}
	return s.Store.Capacity(ctx)
}

// FindEvents reads the audit log.
func (s *Service) FindEvents(ctx context.Context, f ironpool.EventFilter) ([]*ironpool.Event, error) {
	if _, err := Authorize(ctx, OpEventsRead); err != nil {
		return nil, err
	}
	return s.Store.FindEvents(ctx, f)
}

// ownerReader is what a store may offer to read an allocation's owner
// without its nodes (sqlstore does); authorizing a release or an extend
// needs nothing more.
type ownerReader interface {
	AllocationOwner(ctx context.Context, id string) (string, ironpool.AllocationState, error)
}

// allocationOwner returns the owner of allocation id, by the store's
// cheap read when it has one.
func (s *Service) allocationOwner(ctx context.Context, id string) (string, ironpool.AllocationState, error) {
	if r, ok := s.Store.(ownerReader); ok {
		return r.AllocationOwner(ctx, id)
	}
	a, err := s.Store.FindAllocation(ctx, id)
	if err != nil {
		return "", "", err
	}
	return a.Owner, a.State, nil
}
