package ironic

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironpool/ironpool"
)

// patch is one JSON-patch operation. gophercloud's nodes.UpdateOperation
// tags Value omitempty, which silently drops false and "" values; this one
// sends the value for every operation except remove.
type patch struct {
	Op    string
	Path  string
	Value any
}

// ToNodeUpdateMap implements nodes.Patch.
func (p patch) ToNodeUpdateMap() (map[string]any, error) {
	m := map[string]any{"op": p.Op, "path": p.Path}
	if p.Op != "remove" {
		m["value"] = p.Value
	}
	return m, nil
}

func (c *Client) patchNode(ctx context.Context, uuid, op string, ops ...nodes.Patch) error {
	_, err := nodes.Update(ctx, c.sc, uuid, ops).Extract()
	return mapError(ctx, err, op)
}

// SetMaintenance puts a node into maintenance with a reason (the handoff
// checkout names owner and allocation there). Returns ENOTFOUND.
func (c *Client) SetMaintenance(ctx context.Context, uuid, reason string) error {
	err := nodes.SetMaintenance(ctx, c.sc, uuid, nodes.MaintenanceOpts{Reason: reason}).ExtractErr()
	return mapError(ctx, err, "set maintenance on node "+uuid)
}

// ClearMaintenance takes a node out of maintenance, clearing the reason.
func (c *Client) ClearMaintenance(ctx context.Context, uuid string) error {
	err := nodes.UnsetMaintenance(ctx, c.sc, uuid).ExtractErr()
	return mapError(ctx, err, "clear maintenance on node "+uuid)
}

// SetLessee sets the node's lessee (the project allowed to use it, for the
// lessee checkout mode); "" clears it.
func (c *Client) SetLessee(ctx context.Context, uuid, lessee string) error {
	op := patch{Op: "replace", Path: "/lessee", Value: lessee}
	if lessee == "" {
		op = patch{Op: "remove", Path: "/lessee"}
	}
	return c.patchNode(ctx, uuid, "set lessee of node "+uuid, op)
}

// changeState asks for a provision-state transition. Ironic answers a verb
// that does not fit the current state with 400; that is a state clash, so it
// becomes ECONFLICT.
func (c *Client) changeState(ctx context.Context, uuid string, opts nodes.ProvisionStateOpts) error {
	err := nodes.ChangeProvisionState(ctx, c.sc, uuid, opts).ExtractErr()
	if err == nil {
		return nil
	}
	err = mapError(ctx, err, fmt.Sprintf("%s node %s", opts.Target, uuid))
	if e, ok := err.(*ironpool.Error); ok && e.Code == ironpool.EINVALID &&
		strings.Contains(e.Message, "while it is in state") {
		e.Code = ironpool.ECONFLICT
	}
	return err
}

// Manage moves a node to manageable (from enroll, available or a failure
// state) and waits for it. A node already manageable is left alone, so a
// reconciler may repeat the call.
func (c *Client) Manage(ctx context.Context, uuid string) error {
	_, err := c.transition(ctx, uuid, nodes.TargetManage, "manageable", 0, nodes.ProvisionStateOpts{})
	return err
}

// Provide moves a node to available — through cleaning, which can take many
// minutes on real hardware — and waits for it. A node already available is
// left alone.
func (c *Client) Provide(ctx context.Context, uuid string) error {
	_, err := c.transition(ctx, uuid, nodes.TargetProvide, "available", 0, nodes.ProvisionStateOpts{})
	return err
}

// transition issues verb unless the node is already in (or heading for)
// want, then waits until it gets there.
func (c *Client) transition(ctx context.Context, uuid string, verb nodes.TargetProvisionState, want string, timeout time.Duration, opts nodes.ProvisionStateOpts) (NodeInfo, error) {
	n, err := c.getNode(ctx, uuid)
	if err != nil {
		return NodeInfo{}, err
	}
	switch {
	case n.ProvisionState == want && n.TargetProvisionState == "":
		return n, nil
	case n.TargetProvisionState == want && !failureStates[n.ProvisionState]:
		// Already on the way (a retried call after a lost reply).
	default:
		opts.Target = verb
		if err := c.changeState(ctx, n.UUID, opts); err != nil {
			return n, err
		}
	}
	return c.WaitForProvisionState(ctx, n.UUID, want, timeout)
}

// WaitForProvisionState polls a node until its provision_state is want with
// no transition pending. Polling starts at 50 ms and backs off to 1 s, so
// fast fake-hardware steps finish in a fraction of a second while slow real
// ones do not hammer Ironic. It returns a *StateError (ECONFLICT) carrying
// last_error when the node lands in a failure state or settles in another
// stable state, and ETIMEOUT after timeout (0 means Config.WaitTimeout).
func (c *Client) WaitForProvisionState(ctx context.Context, uuid, want string, timeout time.Duration) (NodeInfo, error) {
	if timeout <= 0 {
		timeout = c.waitTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last NodeInfo
	err := poll(wctx, func() (bool, error) {
		n, err := c.getNode(wctx, uuid)
		if err != nil {
			return false, err
		}
		last = n
		switch {
		case n.ProvisionState == want && n.TargetProvisionState == "":
			return true, nil
		case n.ProvisionState != want && failureStates[n.ProvisionState],
			n.ProvisionState != want && n.TargetProvisionState == "" && stableStates[n.ProvisionState]:
			return false, &StateError{Node: n.UUID, State: n.ProvisionState, Want: want, LastError: n.LastError}
		}
		return false, nil
	})
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return last, ironpool.Errorf(ironpool.ETIMEOUT, "ironic: node %s still %q (target %q) after %s waiting for %q",
				uuid, last.ProvisionState, last.TargetProvisionState, timeout, want)
		}
		return last, err
	}
	macs, err := c.portMACs(ctx, last.UUID)
	if err != nil {
		return last, err
	}
	last.MACs = macs[last.UUID]
	return last, nil
}

// poll calls fn until it reports done or fails, sleeping 50 ms and then
// 1.5 times longer each round up to 1 s.
func poll(ctx context.Context, fn func() (bool, error)) error {
	delay := 50 * time.Millisecond
	for {
		done, err := fn()
		if err != nil || done {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*3/2, time.Second)
	}
}

// DeploySpec is the root package's DeploySpec: what to write to a node.
type DeploySpec = ironpool.DeploySpec

// Deploy writes the image to instance_info and moves an available node to
// active, waiting for it. The node also gets an instance_uuid (a new one if
// it had none), so Ironic and ManageableNodes see it as in use. Calling it
// again on a node already active with the same image does nothing; another
// image gives ECONFLICT, as does a node that is not available.
func (c *Client) Deploy(ctx context.Context, uuid string, spec DeploySpec) error {
	if spec.ImageSource == "" {
		return ironpool.FieldErrorf("image", "is required")
	}
	n, err := c.getNode(ctx, uuid)
	if err != nil {
		return err
	}
	if n.ProvisionState == "active" && n.TargetProvisionState == "" {
		full, err := nodes.Get(ctx, c.sc, n.UUID).Extract()
		if err != nil {
			return mapError(ctx, err, "get node "+uuid)
		}
		if src, _ := full.InstanceInfo["image_source"].(string); src == spec.ImageSource {
			return nil
		}
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is already deployed with another image; undeploy it first", n.UUID)
	}
	if n.TargetProvisionState == "active" && !failureStates[n.ProvisionState] {
		// A deploy is under way (a retried call after a lost reply): wait for it.
		_, err := c.WaitForProvisionState(ctx, n.UUID, "active", spec.Timeout)
		return err
	}
	if n.ProvisionState != "available" {
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is %q; only available nodes can be deployed", n.UUID, n.ProvisionState)
	}
	ops := []nodes.Patch{patch{Op: "add", Path: "/instance_info/image_source", Value: spec.ImageSource}}
	if algo, hash, ok := strings.Cut(spec.ImageChecksum, ":"); ok && (algo == "sha256" || algo == "sha512") {
		ops = append(ops,
			patch{Op: "add", Path: "/instance_info/image_os_hash_algo", Value: algo},
			patch{Op: "add", Path: "/instance_info/image_os_hash_value", Value: hash})
	} else if spec.ImageChecksum != "" {
		ops = append(ops, patch{Op: "add", Path: "/instance_info/image_checksum", Value: spec.ImageChecksum})
	}
	if n.InstanceUUID == "" {
		ops = append(ops, patch{Op: "add", Path: "/instance_uuid", Value: newUUID()})
	}
	if err := c.patchNode(ctx, n.UUID, "set instance_info of node "+n.UUID, ops...); err != nil {
		return err
	}
	opts := nodes.ProvisionStateOpts{}
	if cd := strings.TrimSpace(spec.ConfigDrive); cd != "" {
		var obj map[string]any
		if strings.HasPrefix(cd, "{") && json.Unmarshal([]byte(cd), &obj) == nil {
			opts.ConfigDrive = obj
		} else {
			opts.ConfigDrive = cd
		}
	}
	_, err = c.transition(ctx, n.UUID, nodes.TargetActive, "active", spec.Timeout, opts)
	return err
}

// Undeploy tears a node down (Ironic's "deleted": active → deleting →
// cleaning → available) and waits for available. Ironic clears
// instance_info, instance_uuid and any allocation on the way; a leftover
// instance_uuid is removed so the node can be allocated again.
func (c *Client) Undeploy(ctx context.Context, uuid string) error {
	n, err := c.transition(ctx, uuid, nodes.TargetDeleted, "available", 0, nodes.ProvisionStateOpts{})
	if err != nil {
		return err
	}
	if n.InstanceUUID != "" {
		return c.patchNode(ctx, n.UUID, "clear instance_uuid of node "+n.UUID, patch{Op: "remove", Path: "/instance_uuid"})
	}
	return nil
}

// Inspect runs Ironic's inspection (manageable → inspecting → manageable) and
// returns the node with the properties Ironic found. An available node is
// managed first and provided again afterwards, so it ends where it started;
// other states give ECONFLICT.
func (c *Client) Inspect(ctx context.Context, uuid string) (NodeInfo, error) {
	n, err := c.getNode(ctx, uuid)
	if err != nil {
		return NodeInfo{}, err
	}
	wasAvailable := n.ProvisionState == "available"
	switch {
	case n.TargetProvisionState != "":
		return n, ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is busy (%q → %q)", n.UUID, n.ProvisionState, n.TargetProvisionState)
	case wasAvailable:
		if err := c.Manage(ctx, n.UUID); err != nil {
			return n, err
		}
	case n.ProvisionState != "manageable":
		return n, ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is %q; only manageable or available nodes can be inspected", n.UUID, n.ProvisionState)
	}
	if err := c.changeState(ctx, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetInspect}); err != nil {
		// Refused (a driver with no-inspect): put the node back where it
		// was rather than leave it manageable.
		if wasAvailable {
			if perr := c.Provide(context.WithoutCancel(ctx), n.UUID); perr != nil {
				return n, fmt.Errorf("%w (and returning it to available failed: %v)", err, perr)
			}
		}
		return n, err
	}
	n, err = c.WaitForProvisionState(ctx, n.UUID, "manageable", 0)
	if err != nil {
		return n, err
	}
	if wasAvailable {
		if err := c.Provide(ctx, n.UUID); err != nil {
			return n, err
		}
		return c.GetNode(ctx, n.UUID)
	}
	return n, nil
}

// Adopt runs Ironic's own adopt verb: a manageable node that is already
// running a workload becomes active without being deployed or cleaned.
// An active node is left alone; other states give ECONFLICT.
func (c *Client) Adopt(ctx context.Context, uuid string) error {
	n, err := c.getNode(ctx, uuid)
	if err != nil {
		return err
	}
	if n.ProvisionState != "manageable" && n.ProvisionState != "active" && n.TargetProvisionState != "active" {
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is %q; only manageable nodes can be adopted", n.UUID, n.ProvisionState)
	}
	_, err = c.transition(ctx, n.UUID, nodes.TargetAdopt, "active", 0, nodes.ProvisionStateOpts{})
	return err
}

// powerTargets maps ironpool's power words to Ironic's targets and the
// power_state each ends in.
var powerTargets = map[string]struct {
	target nodes.TargetPowerState
	state  string
}{
	"on":     {nodes.PowerOn, "power on"},
	"off":    {nodes.PowerOff, "power off"},
	"reboot": {nodes.Rebooting, "power on"},
}

// SetPower powers a node "on", "off" or "reboot"s it and waits until Ironic
// reports the result. A failed power action (an unreachable BMC) gives
// EUNAVAILABLE with Ironic's last_error.
func (c *Client) SetPower(ctx context.Context, uuid, action string) error {
	pt, ok := powerTargets[action]
	if !ok {
		return ironpool.FieldErrorf("action", "%q is not a power action (want on, off or reboot)", action)
	}
	err := nodes.ChangePowerState(ctx, c.sc, uuid, nodes.PowerStateOpts{Target: pt.target}).ExtractErr()
	if err != nil {
		return mapError(ctx, err, fmt.Sprintf("power %s node %s", action, uuid))
	}
	wctx, cancel := context.WithTimeout(ctx, c.waitTimeout)
	defer cancel()
	var last NodeInfo
	err = poll(wctx, func() (bool, error) {
		n, err := c.getNode(wctx, uuid)
		if err != nil {
			return false, err
		}
		last = n
		if n.TargetPowerState != "" {
			return false, nil
		}
		if n.PowerState != pt.state {
			return false, ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: power %s node %s failed (power state %q): %s", action, uuid, n.PowerState, n.LastError)
		}
		return true, nil
	})
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return ironpool.Errorf(ironpool.ETIMEOUT, "ironic: node %s still powering %s (state %q) after %s", uuid, action, last.PowerState, c.waitTimeout)
	}
	return err
}

// PowerState returns Ironic's power_state of a node: "power on", "power off",
// or "" when Ironic does not know yet.
func (c *Client) PowerState(ctx context.Context, uuid string) (string, error) {
	n, err := c.getNode(ctx, uuid)
	return n.PowerState, err
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
