package client

import (
	"context"
	"net/url"

	"github.com/ironpool/ironpool"
)

// QuotaBody is a quota as sent to SetQuota: durations as strings ("8h",
// "7d"); a zero limit is no limit. See docs/SCHEDULING.md.
type QuotaBody struct {
	MaxNodes     int            `json:"max_nodes,omitempty"`
	MaxFlavor    map[string]int `json:"max_flavor,omitempty"`
	MaxLease     string         `json:"max_lease,omitempty"`
	MaxNodeHours float64        `json:"max_node_hours,omitempty"`
	Per          string         `json:"per,omitempty"`
}

// SetQuota creates or replaces the quota of an owner or owner pattern
// ("ci-*"). The reply's Warning is set when usage is over it already.
func (c *Client) SetQuota(ctx context.Context, owner string, q QuotaBody) (*ironpool.QuotaStatus, error) {
	var out ironpool.QuotaStatus
	_, err := c.Do(ctx, "PUT", "/v1/quotas/"+url.PathEscape(owner), q, &out)
	return &out, err
}

// Quota reads one quota with its usage.
func (c *Client) Quota(ctx context.Context, owner string) (*ironpool.QuotaStatus, error) {
	var out ironpool.QuotaStatus
	_, err := c.Do(ctx, "GET", "/v1/quotas/"+url.PathEscape(owner), nil, &out)
	return &out, err
}

// Quotas lists every quota with its usage.
func (c *Client) Quotas(ctx context.Context) ([]*ironpool.QuotaStatus, error) {
	var out struct {
		Quotas []*ironpool.QuotaStatus `json:"quotas"`
	}
	_, err := c.Do(ctx, "GET", "/v1/quotas", nil, &out)
	return out.Quotas, err
}

// DeleteQuota removes the quota of an owner or owner pattern.
func (c *Client) DeleteQuota(ctx context.Context, owner string) error {
	_, err := c.Do(ctx, "DELETE", "/v1/quotas/"+url.PathEscape(owner), nil, nil)
	return err
}

// Usage reads node-hours per owner and flavor; since is an RFC 3339 time
// or a duration back from now ("" for the last 24 hours), owner "" for all
// the owners the token may see.
func (c *Client) Usage(ctx context.Context, owner, since string) (*ironpool.UsageReport, error) {
	q := url.Values{}
	if owner != "" {
		q.Set("owner", owner)
	}
	if since != "" {
		q.Set("since", since)
	}
	path := "/v1/usage/owners"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out ironpool.UsageReport
	_, err := c.Do(ctx, "GET", path, nil, &out)
	return &out, err
}
