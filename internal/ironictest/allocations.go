package ironictest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/allocations"

	"ironpool"
	"ironpool/internal/ironic"
)

// allocationTimeout bounds the wait for one Ironic allocation; an idle
// standalone Ironic settles one in tens of milliseconds.
const allocationTimeout = 2 * time.Minute

// CreateAllocation asks Ironic's own allocator for one node of a resource
// class, through c, and waits until the allocation is active. It returns the
// allocation and node UUIDs. ironpool does not use Ironic's allocator; the
// performance peer test (internal/cli) measures against it.
//
// When Ironic finds no node, the failed allocation is deleted (so the name
// can be reused) and ECAPACITY is returned. A 503 on create is not retried
// (c's retry policy leaves POST /allocations alone): Ironic may have created
// the allocation and left it "allocating" for good, so a named one is looked
// up and deleted, and EUNAVAILABLE is returned.
func CreateAllocation(ctx context.Context, c *ironic.Client, resourceClass, name string) (allocUUID, nodeUUID string, err error) {
	if resourceClass == "" {
		return "", "", ironpool.FieldErrorf("resource_class", "is required")
	}
	sc := c.ServiceClient()
	a, err := allocations.Create(ctx, sc, allocations.CreateOpts{ResourceClass: resourceClass, Name: name}).Extract()
	if err != nil {
		var rc gophercloud.ErrUnexpectedResponseCode
		if errors.As(err, &rc) && rc.Actual == 503 && name != "" {
			_ = DeleteAllocation(context.WithoutCancel(ctx), c, name)
		}
		return "", "", ironic.MapError(ctx, err, "create allocation")
	}
	wctx, cancel := context.WithTimeout(ctx, allocationTimeout)
	defer cancel()
	for delay := 50 * time.Millisecond; a.State != "active" && a.State != "error"; delay = min(delay*3/2, time.Second) {
		select {
		case <-wctx.Done():
			// Do not leave an allocation behind that may still grab a node.
			_ = DeleteAllocation(context.WithoutCancel(ctx), c, a.UUID)
			if ctx.Err() == nil {
				return "", "", ironpool.Errorf(ironpool.ETIMEOUT, "ironic: allocation %s still %q after %s", a.UUID, a.State, allocationTimeout)
			}
			return "", "", ctx.Err()
		case <-time.After(delay):
		}
		got, err := allocations.Get(wctx, sc, a.UUID).Extract()
		if err != nil {
			_ = DeleteAllocation(context.WithoutCancel(ctx), c, a.UUID)
			return "", "", ironic.MapError(ctx, err, "get allocation "+a.UUID)
		}
		a = got
	}
	if a.State == "error" {
		_ = DeleteAllocation(context.WithoutCancel(ctx), c, a.UUID)
		code := ironpool.ECONFLICT
		if strings.Contains(a.LastError, "no available nodes") || strings.Contains(a.LastError, "no suitable nodes") {
			code = ironpool.ECAPACITY
		}
		return "", "", ironpool.Errorf(code, "ironic: allocation for resource class %q failed: %s", resourceClass, a.LastError)
	}
	return a.UUID, a.NodeUUID, nil
}

// DeleteAllocation releases an Ironic allocation (by UUID or name), which
// clears the node's instance_uuid. An allocation already gone is not an error.
func DeleteAllocation(ctx context.Context, c *ironic.Client, ident string) error {
	err := ironic.MapError(ctx, allocations.Delete(ctx, c.ServiceClient(), ident).ExtractErr(), "delete allocation "+ident)
	if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
		return nil
	}
	return err
}
