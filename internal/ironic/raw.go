package ironic

import (
	"context"

	"github.com/gophercloud/gophercloud/v2"
)

// ServiceClient returns the gophercloud client the Client talks through —
// its endpoint, microversion, retry policy and timeouts — for test helpers
// (internal/ironictest) that drive Ironic APIs ironpool itself does not use,
// such as Ironic's own allocator.
func (c *Client) ServiceClient() *gophercloud.ServiceClient { return c.sc }

// MapError turns an error from a call through ServiceClient into a coded
// *ironpool.Error the way the Client's own calls do; op says what was being
// done ("create allocation").
func MapError(ctx context.Context, err error, op string) error { return mapError(ctx, err, op) }
