package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/ironpool/ironpool"
)

// QuotaBody is a quota as set over the API: durations as strings ("4h",
// "7d"), like an allocation's ttl. An absent limit is no limit.
type QuotaBody struct {
	MaxNodes     int            `json:"max_nodes,omitempty" minimum:"0" doc:"Nodes held at once by the owners the quota applies to"`
	MaxFlavor    map[string]int `json:"max_flavor,omitempty" doc:"Nodes held at once per flavor name"`
	MaxLease     string         `json:"max_lease,omitempty" maxLength:"32" doc:"Longest lease, renewals included, e.g. 8h"`
	MaxNodeHours float64        `json:"max_node_hours,omitempty" minimum:"0" doc:"Node-hours per rolling window per"`
	Per          string         `json:"per,omitempty" maxLength:"32" doc:"The rolling window of max_node_hours, e.g. 24h or 7d"`
}

// Quota turns the body into the domain's quota for owner.
func (b *QuotaBody) Quota(owner string) (*ironpool.Quota, error) {
	lease, err := ironpool.ParseDuration("max_lease", b.MaxLease)
	if err != nil {
		return nil, err
	}
	per, err := ironpool.ParseDuration("per", b.Per)
	if err != nil {
		return nil, err
	}
	return &ironpool.Quota{Owner: owner, MaxNodes: b.MaxNodes, MaxFlavor: b.MaxFlavor, MaxLease: lease,
		MaxNodeHours: b.MaxNodeHours, Per: per}, nil
}

// OwnerParam is the {owner} path parameter: an owner name or pattern.
type OwnerParam struct {
	Owner string `path:"owner" maxLength:"63" doc:"Owner name or pattern (ci-*)"`
}

type quotaReply struct{ Body *ironpool.QuotaStatus }

func (s *Server) quotaRoutes() {
	svc := s.Service
	register(s, http.MethodPut, "/v1/quotas/{owner}", "set-quota", "Create or replace the quota of an owner or owner pattern", 200,
		func(ctx context.Context, in *struct {
			OwnerParam
			Body QuotaBody
		}) (*quotaReply, error) {
			q, err := in.Body.Quota(in.Owner)
			if err != nil {
				return nil, err
			}
			st, err := svc.SetQuota(ctx, q)
			return &quotaReply{st}, err
		})
	register(s, http.MethodGet, "/v1/quotas", "list-quotas", "List quotas with their usage", 200,
		func(ctx context.Context, in *struct{}) (*struct {
			Body struct {
				Quotas []*ironpool.QuotaStatus `json:"quotas"`
			}
		}, error) {
			qs, err := svc.FindQuotas(ctx)
			out := &struct {
				Body struct {
					Quotas []*ironpool.QuotaStatus `json:"quotas"`
				}
			}{}
			out.Body.Quotas = qs
			return out, err
		})
	register(s, http.MethodGet, "/v1/quotas/{owner}", "get-quota", "Show a quota with its usage", 200,
		func(ctx context.Context, in *OwnerParam) (*quotaReply, error) {
			st, err := svc.FindQuota(ctx, in.Owner)
			return &quotaReply{st}, err
		})
	register(s, http.MethodDelete, "/v1/quotas/{owner}", "delete-quota", "Delete the quota of an owner or owner pattern", 204,
		func(ctx context.Context, in *OwnerParam) (*struct{}, error) {
			return nil, svc.DeleteQuota(ctx, in.Owner)
		})
	register(s, http.MethodGet, "/v1/usage/owners", "owner-usage", "Node-hours per owner and flavor since a time", 200,
		func(ctx context.Context, in *struct {
			Owner string `query:"owner" maxLength:"63"`
			Since string `query:"since" maxLength:"40" doc:"RFC 3339 time or a duration back from now (24h, 7d); default 24h"`
		}) (*struct{ Body *ironpool.UsageReport }, error) {
			f := ironpool.UsageFilter{Owner: in.Owner}
			if in.Since != "" {
				if t, err := time.Parse(time.RFC3339, in.Since); err == nil {
					f.Since = t
				} else if d, err := ironpool.ParseDuration("since", in.Since); err == nil && d > 0 {
					f.Since = svc.Now().Add(-d)
				} else {
					return nil, ironpool.FieldErrorf("since", "%q is neither an RFC 3339 time nor a positive duration", in.Since)
				}
			}
			rep, err := svc.OwnerUsage(ctx, f)
			return &struct{ Body *ironpool.UsageReport }{rep}, err
		})
}
