package ironic

import (
	"context"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/allocations"

	"ironpool"
)

// allocationTimeout bounds the wait for one Ironic allocation; an idle
// standalone Ironic settles one in tens of milliseconds.
const allocationTimeout = 2 * time.Minute

// CreateAllocation asks Ironic's own allocator for one node of a resource
// class (ironpool uses it as a performance peer) and waits until the
// allocation is active. It returns the allocation and node UUIDs.
//
// When Ironic finds no node, the failed allocation is deleted (so the name
// can be reused) and ECAPACITY is returned. A 503 on create is not retried:
// Ironic may have created the allocation and left it "allocating" for good,
// so a named one is looked up and deleted, and EUNAVAILABLE is returned.
func (c *Client) CreateAllocation(ctx context.Context, resourceClass, name string) (allocUUID, nodeUUID string, err error) {
	if resourceClass == "" {
		return "", "", ironpool.FieldErrorf("resource_class", "is required")
	}
	a, err := allocations.Create(ctx, c.sc, allocations.CreateOpts{ResourceClass: resourceClass, Name: name}).Extract()
	if err != nil {
		mapped := mapError(ctx, err, "create allocation")
		if status, _, ok := responseError(err); ok && status == 503 && name != "" {
			_ = c.DeleteAllocation(context.WithoutCancel(ctx), name)
		}
		return "", "", mapped
	}
	wctx, cancel := context.WithTimeout(ctx, allocationTimeout)
	defer cancel()
	err = poll(wctx, func() (bool, error) {
		got, err := allocations.Get(wctx, c.sc, a.UUID).Extract()
		if err != nil {
			return false, mapError(ctx, err, "get allocation "+a.UUID)
		}
		a = got
		return a.State == "active" || a.State == "error", nil
	})
	if err != nil {
		// Do not leave an allocation behind that may still grab a node.
		_ = c.DeleteAllocation(context.WithoutCancel(ctx), a.UUID)
		if wctx.Err() != nil && ctx.Err() == nil {
			return "", "", ironpool.Errorf(ironpool.ETIMEOUT, "ironic: allocation %s still %q after %s", a.UUID, a.State, allocationTimeout)
		}
		return "", "", err
	}
	if a.State == "error" {
		_ = c.DeleteAllocation(context.WithoutCancel(ctx), a.UUID)
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
func (c *Client) DeleteAllocation(ctx context.Context, ident string) error {
	err := mapError(ctx, allocations.Delete(ctx, c.sc, ident).ExtractErr(), "delete allocation "+ident)
	if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
		return nil
	}
	return err
}
