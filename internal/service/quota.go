package service

import (
	"context"
	"slices"
	"time"

	"github.com/ironpool/ironpool"
)

// SetQuota creates or replaces a quota (admin). A quota for an owner that
// has never allocated, or a pattern no owner matches yet, is allowed:
// owners are free-form names that appear with their first request, and a
// quota set ahead of them is the point. A quota below current usage is
// stored too; the reply's Warning says so and new requests are refused.
func (s *Service) SetQuota(ctx context.Context, q *ironpool.Quota) (*ironpool.QuotaStatus, error) {
	if _, err := Authorize(ctx, OpQuotaManage); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.MaxLease > s.Config.MaxTTL && s.Config.MaxTTL > 0 {
		// Not an error: the server's maximum lease caps it anyway; the
		// quota is stored as asked and the warning says which wins.
		st, err := s.Store.SetQuota(ctx, q)
		if err == nil && st.Warning == "" {
			st.Warning = "max_lease " + q.MaxLease.String() + " is over the server's maximum lease of " + s.Config.MaxTTL.String() + ", which applies first"
		}
		s.notify()
		return st, err
	}
	st, err := s.Store.SetQuota(ctx, q)
	s.notify() // a raised quota may let a queued request through
	return st, err
}

// DeleteQuota removes a quota (admin).
func (s *Service) DeleteQuota(ctx context.Context, owner string) error {
	if _, err := Authorize(ctx, OpQuotaManage); err != nil {
		return err
	}
	if err := ironpool.ValidateOwnerPattern("owner", owner); err != nil {
		return err
	}
	if err := s.Store.DeleteQuota(ctx, owner); err != nil {
		return err
	}
	s.notify() // a queued request may fit now
	return nil
}

// FindQuota reads one quota with its usage.
func (s *Service) FindQuota(ctx context.Context, owner string) (*ironpool.QuotaStatus, error) {
	if _, err := Authorize(ctx, OpQuotaRead); err != nil {
		return nil, err
	}
	if err := ironpool.ValidateOwnerPattern("owner", owner); err != nil {
		return nil, err
	}
	return s.Store.FindQuota(ctx, owner)
}

// FindQuotas lists every quota with its usage.
func (s *Service) FindQuotas(ctx context.Context) ([]*ironpool.QuotaStatus, error) {
	if _, err := Authorize(ctx, OpQuotaRead); err != nil {
		return nil, err
	}
	return s.Store.FindQuotas(ctx)
}

// OwnerUsage reports node-hours per owner and flavor since f.Since (default:
// the last 24 hours). A user token sees the owners it acts for only, and
// asking for another owner is EFORBIDDEN.
func (s *Service) OwnerUsage(ctx context.Context, f ironpool.UsageFilter) (*ironpool.UsageReport, error) {
	actor, err := Authorize(ctx, OpUsageRead)
	if err != nil {
		return nil, err
	}
	if f.Owner != "" {
		if err := ironpool.ValidateName("owner", f.Owner); err != nil {
			return nil, err
		}
		if !actor.CanSee(f.Owner) {
			return nil, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "owner", Message: "this token may not act for owner " + f.Owner}
		}
	}
	now := s.Now().UTC()
	if f.Since.IsZero() {
		f.Since = now.Add(-24 * time.Hour)
	}
	if f.Since.After(now) {
		return nil, ironpool.FieldErrorf("since", "%s is in the future", f.Since.Format(time.RFC3339))
	}
	rep, err := s.Store.Usage(ctx, f)
	if err != nil || actor.Unscoped() {
		return rep, err
	}
	rep.Rows = slices.DeleteFunc(rep.Rows, func(r ironpool.UsageRow) bool { return !actor.CanActFor(r.Owner) })
	return rep, nil
}
