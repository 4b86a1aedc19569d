package service

import (
	"context"
	"slices"
	"time"

	"github.com/ironpool/ironpool"
)

// Reserve books nodes for a future window, all items or none. Returns
// EINVALID for a malformed request (window in the past, end not after
// start, longer than the maximum lease, unknown flavor) and ECAPACITY with
// the per-item short interval when the pool's future cannot serve it.
func (s *Service) Reserve(ctx context.Context, req *ironpool.ReservationRequest) (*ironpool.Reservation, error) {
	if _, err := forOwner(ctx, OpReservationCreate, req.Owner); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	if err := req.Validate(now); err != nil {
		return nil, err
	}
	window := req.End.Sub(req.Start)
	if window > s.Config.MaxTTL {
		return nil, ironpool.FieldErrorf("end", "the window is %s long; the maximum lease is %s", window, s.Config.MaxTTL)
	}
	a, err := s.resolve(ctx, &ironpool.AllocationRequest{Owner: req.Owner, Items: req.Items, Pool: req.Pool,
		Mode: req.Mode, Metadata: req.Metadata, TTL: window})
	if err != nil {
		return nil, err
	}
	r := &ironpool.Reservation{Owner: a.Owner, Mode: a.Mode, Pool: req.Pool, Items: a.Items, Metadata: a.Metadata,
		Start: req.Start, End: req.End}
	if err := s.Store.Reserve(ctx, r); err != nil {
		return nil, err
	}
	s.notify()
	return r, nil
}

// FindReservations lists the reservations the actor may see.
func (s *Service) FindReservations(ctx context.Context, f ironpool.ReservationFilter) ([]*ironpool.Reservation, error) {
	actor, err := Authorize(ctx, OpReservationRead)
	if err != nil {
		return nil, err
	}
	if actor.Role == ironpool.RoleUser && !slices.Contains(actor.Owners, ironpool.AnyOwner) {
		if f.Owner != "" && !actor.CanActFor(f.Owner) {
			return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "owner", Message: "this token may not act for owner " + f.Owner}
		}
		f.Owners = slices.Clone(actor.Owners)
		if f.Owners == nil {
			f.Owners = []string{}
		}
	}
	return s.Store.FindReservations(ctx, f)
}

// FindReservation returns one reservation the actor may see.
func (s *Service) FindReservation(ctx context.Context, id string) (*ironpool.Reservation, error) {
	actor, err := Authorize(ctx, OpReservationRead)
	if err != nil {
		return nil, err
	}
	r, err := s.Store.FindReservation(ctx, id)
	if err != nil {
		return nil, err
	}
	if !actor.CanSee(r.Owner) {
		return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "id", Message: "reservation " + id + " belongs to another owner"}
	}
	return r, nil
}

// CancelReservation cancels a pending reservation (idempotent for one
// already cancelled or failed; ECONFLICT for an active one).
func (s *Service) CancelReservation(ctx context.Context, id string) (*ironpool.Reservation, error) {
	if _, err := Authorize(ctx, OpReservationCancel); err != nil {
		return nil, err
	}
	cur, err := s.Store.FindReservation(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := forOwner(ctx, OpReservationCancel, cur.Owner); err != nil {
		return nil, err
	}
	r, err := s.Store.CancelReservation(ctx, id)
	if err != nil {
		return nil, err
	}
	s.notify()
	return r, nil
}

// MaxCalendarRange bounds one calendar read.
const MaxCalendarRange = 366 * 24 * time.Hour

// Calendar shows the pool's future over [from, to): per node its holds
// and, with byFlavor, per flavor how many nodes are free over time. A zero
// from is now; a zero to is from + 7 days.
func (s *Service) Calendar(ctx context.Context, pool string, from, to time.Time, byFlavor bool) (*ironpool.Calendar, error) {
	if _, err := Authorize(ctx, OpCalendarRead); err != nil {
		return nil, err
	}
	if pool != "" {
		if err := ironpool.ValidateName("pool", pool); err != nil {
			return nil, err
		}
	}
	if from.IsZero() {
		from = s.Now().UTC().Truncate(time.Second)
	}
	if to.IsZero() {
		to = from.Add(7 * 24 * time.Hour)
	}
	if !to.After(from) {
		return nil, ironpool.FieldErrorf("to", "%s is not after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if to.Sub(from) > MaxCalendarRange {
		return nil, ironpool.FieldErrorf("to", "the range is over %d days", int(MaxCalendarRange.Hours()/24))
	}
	c, err := s.Store.Calendar(ctx, pool, from, to)
	if err != nil {
		return nil, err
	}
	if byFlavor {
		flavors, err := s.Store.FindFlavors(ctx)
		if err != nil {
			return nil, err
		}
		c.ByFlavor(flavors)
	}
	return c, nil
}
