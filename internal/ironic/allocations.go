package ironic

import (
	"context"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/allocations"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironpool/ironpool"
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
	a, err := c.allocate(ctx, allocations.CreateOpts{ResourceClass: resourceClass, Name: name})
	if err != nil {
		return "", "", err
	}
	return a.UUID, a.NodeUUID, nil
}

// allocate creates an Ironic allocation and waits until it is active; a
// failed or stuck one is deleted before the error is returned.
func (c *Client) allocate(ctx context.Context, opts allocations.CreateOpts) (*allocations.Allocation, error) {
	a, err := allocations.Create(ctx, c.sc, opts).Extract()
	if err != nil {
		mapped := mapError(ctx, err, "create allocation")
		if status, _, ok := responseError(err); ok && status == 503 && opts.Name != "" {
			_ = c.DeleteAllocation(context.WithoutCancel(ctx), opts.Name)
		}
		return nil, mapped
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
			return nil, ironpool.Errorf(ironpool.ETIMEOUT, "ironic: allocation %s still %q after %s", a.UUID, a.State, allocationTimeout)
		}
		return nil, err
	}
	if a.State == "error" {
		_ = c.DeleteAllocation(context.WithoutCancel(ctx), a.UUID)
		code := ironpool.ECONFLICT
		if strings.Contains(a.LastError, "no available nodes") || strings.Contains(a.LastError, "no suitable nodes") {
			code = ironpool.ECAPACITY
		}
		return nil, ironpool.Errorf(code, "ironic: allocation for resource class %q failed: %s", opts.ResourceClass, a.LastError)
	}
	return a, nil
}

// Reserve records in Ironic that ironpool has handed node id out: an
// Ironic allocation named name for exactly that node, which sets the
// node's instance_uuid, so Nova, Metal3, ESI-Leap and any other consumer of
// the same Ironic see the node as taken and their allocations skip it. It
// is idempotent: an active allocation of that name on that node is kept. A
// node another consumer holds already (an instance_uuid of its own) is
// ECONFLICT.
func (c *Client) Reserve(ctx context.Context, id, name string, extra map[string]string) error {
	if a, err := allocations.Get(ctx, c.sc, name).Extract(); err == nil {
		if a.NodeUUID == id && a.State == "active" {
			return nil
		}
		if err := c.DeleteAllocation(ctx, a.UUID); err != nil { // stale: ours, but failed or elsewhere
			return err
		}
	} else if code := ironpool.ErrorCode(mapError(ctx, err, "get allocation "+name)); code != ironpool.ENOTFOUND {
		return mapError(ctx, err, "get allocation "+name)
	}
	n, err := c.GetNode(ctx, id)
	if err != nil {
		return err
	}
	if n.InstanceUUID != "" {
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is taken by another consumer (instance_uuid %s)", id, n.InstanceUUID)
	}
	rc := n.ResourceClass
	if rc == "" {
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s has no resource class, so it cannot be reserved with an allocation", id)
	}
	_, err = c.allocate(ctx, allocations.CreateOpts{ResourceClass: rc, CandidateNodes: []string{id}, Name: name, Extra: extra})
	return err
}

// Unreserve deletes the allocation Reserve created under name, and nothing
// else; one already gone (Ironic removes it when the node is undeployed)
// is not an error.
func (c *Client) Unreserve(ctx context.Context, name string) error {
	return c.DeleteAllocation(ctx, name)
}

// ClearInstance removes what a deploy left on a node that is not deployed:
// instance_info and instance_uuid (after a failed or interrupted deploy
// Ironic keeps both, and nobody else could then use the node). A deployed
// node is left alone: undeploy clears it.
func (c *Client) ClearInstance(ctx context.Context, id string) error {
	full, err := nodes.Get(ctx, c.sc, id).Extract()
	if err != nil {
		return mapError(ctx, err, "get node "+id)
	}
	if full.ProvisionState == "active" || full.TargetProvisionState != "" {
		return nil
	}
	var ops []nodes.Patch
	if len(full.InstanceInfo) > 0 {
		ops = append(ops, patch{Op: "remove", Path: "/instance_info"})
	}
	if full.InstanceUUID != "" {
		ops = append(ops, patch{Op: "remove", Path: "/instance_uuid"})
	}
	if len(ops) == 0 {
		return nil
	}
	return c.patchNode(ctx, id, "clear the instance of node "+id, ops...)
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
