package ironic

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/driverinfo"
)

// ManagedBy is the extra.managed_by value Register writes, so ironpool can
// tell its own enrolments from nodes an operator made by hand.
const ManagedBy = ironpool.ManagedBy

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// Register enrolls a pool node into Ironic and drives it to available:
// create (driver from the BMC scheme, or Config.DriverOverride), properties,
// resource_class, traits, one port per MAC, extra.managed_by=ironpool; then
// manage, power off once if the power state is still unknown (allocations
// skip nodes whose power state is null), and provide (cleaning). It returns
// the Ironic UUID, also on a later failure, so the caller can record it.
//
// It is idempotent: a node of the same name made by ironpool is reused and
// driven on from wherever it stopped; one made by someone else (or by
// ironpool for another pool node) gives ECONFLICT. A MAC already on another
// Ironic node gives ECONFLICT too. A node stuck in a failure state gives a
// *StateError with Ironic's last_error.
func (c *Client) Register(ctx context.Context, n *ironpool.Node) (string, error) {
	if err := ironpool.ValidateName("name", n.Name); err != nil {
		return "", err
	}
	driver, info, err := driverinfo.FromBMC(n.BMC)
	if err != nil {
		return "", err
	}
	if c.driverOverride != "" {
		driver = c.driverOverride
	}
	existing, err := c.getNode(ctx, n.Name)
	var uuid string
	switch {
	case err == nil:
		if existing.ManagedBy() != ManagedBy {
			return existing.UUID, ironpool.Errorf(ironpool.ECONFLICT,
				"ironic: a node named %q already exists (%s) and was not registered by ironpool", n.Name, existing.UUID).
				WithHint("import it with `ironpool ironic sync` instead, or rename one of them")
		}
		if id, _ := existing.Extra["ironpool_uuid"].(string); id != "" && n.UUID != "" && id != n.UUID {
			return existing.UUID, ironpool.Errorf(ironpool.ECONFLICT,
				"ironic: node %q (%s) was registered by ironpool for another pool node (%s)", n.Name, existing.UUID, id)
		}
		uuid = existing.UUID
	case ironpool.ErrorCode(err) == ironpool.ENOTFOUND:
		uuid, err = c.createNode(ctx, n, driver, info)
		if err != nil {
			return "", err
		}
	default:
		return "", err
	}
	if err := c.ensureTraitsAndPorts(ctx, uuid, n); err != nil {
		return uuid, err
	}
	return uuid, c.driveToAvailable(ctx, uuid)
}

func (c *Client) createNode(ctx context.Context, n *ironpool.Node, driver string, info map[string]any) (string, error) {
	props := map[string]any{}
	if n.CPUs > 0 {
		props["cpus"] = n.CPUs
	}
	if n.MemoryMB > 0 {
		props["memory_mb"] = n.MemoryMB
	}
	if n.LocalGB > 0 {
		props["local_gb"] = n.LocalGB
	}
	setIf(props, "cpu_arch", n.CPUArch)
	extra := map[string]any{"managed_by": ManagedBy}
	setIf(extra, "ironpool_uuid", n.UUID)
	opts := nodes.CreateOpts{
		Name:          n.Name,
		Driver:        driver,
		DriverInfo:    info,
		Properties:    props,
		ResourceClass: n.ResourceClass,
		Extra:         extra,
	}
	if err := applyRegisterFields(&opts, n.Fields); err != nil {
		return "", err
	}
	created, err := nodes.Create(ctx, c.sc, opts).Extract()
	if err != nil {
		return "", mapError(ctx, err, "create node "+n.Name)
	}
	return created.UUID, nil
}

// ensureTraitsAndPorts makes the Ironic node carry n's traits and a port for
// each of n's MACs, creating only what is missing, so a retried Register
// after a partial failure completes the job.
func (c *Client) ensureTraitsAndPorts(ctx context.Context, uuid string, n *ironpool.Node) error {
	cur, err := c.GetNode(ctx, uuid)
	if err != nil {
		return err
	}
	want := slices.Clone(n.Traits)
	slices.Sort(want)
	if len(want) > 0 && !slices.Equal(want, cur.Traits) {
		_, err := c.sc.Put(ctx, c.sc.ServiceURL("nodes", uuid, "traits"), map[string]any{"traits": want}, nil,
			&gophercloud.RequestOpts{OkCodes: []int{204}})
		if err != nil {
			return mapError(ctx, err, "set traits of node "+uuid)
		}
	}
	for _, mac := range n.MACs {
		mac = strings.ToLower(mac)
		if slices.Contains(cur.MACs, mac) {
			continue
		}
		_, err := ports.Create(ctx, c.sc, ports.CreateOpts{NodeUUID: uuid, Address: mac}).Extract()
		if err != nil {
			return mapError(ctx, err, "create port "+mac+" of node "+uuid)
		}
	}
	return nil
}

// driveToAvailable walks a registered node through enroll → manageable →
// available, from whatever state it is in.
func (c *Client) driveToAvailable(ctx context.Context, uuid string) error {
	for range 4 {
		n, err := c.getNode(ctx, uuid)
		if err != nil {
			return err
		}
		if n.TargetProvisionState != "" {
			if _, err := c.WaitForProvisionState(ctx, uuid, n.TargetProvisionState, 0); err != nil {
				return err
			}
			continue
		}
		switch n.ProvisionState {
		case "available":
			return nil
		case "enroll":
			if err := c.Manage(ctx, uuid); err != nil {
				return err
			}
		case "manageable":
			if n.PowerState == "" {
				// fake-hardware (and some BMCs) leave power_state null through
				// manage; Ironic's allocator skips such nodes.
				if err := c.SetPower(ctx, uuid, "off"); err != nil {
					return err
				}
			}
			if err := c.Provide(ctx, uuid); err != nil {
				return err
			}
		default:
			return &StateError{Node: uuid, State: n.ProvisionState, Want: "available", LastError: n.LastError}
		}
	}
	return ironpool.Errorf(ironpool.EINTERNAL, "ironic: node %s did not reach available", uuid)
}

// Unregister deletes a node from Ironic; its ports go with it. It refuses
// with ECONFLICT while the node is deployed or has an instance, puts a node
// in a failed state into maintenance first (Ironic's condition for deleting
// it), and does nothing if the node is already gone.
func (c *Client) Unregister(ctx context.Context, uuid string) error {
	n, err := c.getNode(ctx, uuid)
	if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	switch {
	case n.InstanceUUID != "":
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s has instance %s; undeploy it before unregistering", n.UUID, n.InstanceUUID)
	case n.ProvisionState == "active" || n.TargetProvisionState == "active":
		return ironpool.Errorf(ironpool.ECONFLICT, "ironic: node %s is %q; undeploy it before unregistering", n.UUID, n.ProvisionState)
	}
	switch n.ProvisionState {
	case "enroll", "manageable", "available":
	default:
		// Ironic deletes a node in any other state (clean failed, inspect
		// failed, error…) only once it is in maintenance.
		if !n.Maintenance {
			if err := c.SetMaintenance(ctx, n.UUID, "ironpool: unregistering"); err != nil {
				return err
			}
		}
	}
	err = nodes.Delete(ctx, c.sc, n.UUID).ExtractErr()
	if ironpool.ErrorCode(mapError(ctx, err, "")) == ironpool.ENOTFOUND {
		return nil
	}
	return mapError(ctx, err, "delete node "+n.UUID)
}

// RegisterFieldPrefix marks the node fields `node register` turns into
// Ironic settings, so an operator sets them on the pool node (or in its
// node file) and a retried registration still has them:
//
//	ironic.deploy_kernel, ironic.deploy_ramdisk   → driver_info
//	ironic.conductor_group, ironic.owner          → the node
//	ironic.automated_clean (true|false)           → the node
//	ironic.<kind>_interface (boot, deploy, power, management, inspect,
//	  bios, console, network, raid, rescue, storage, vendor, firmware)
const RegisterFieldPrefix = "ironic."

// applyRegisterFields copies the ironic.* fields of a pool node into the
// create request; an unknown key or a bad value is EINVALID naming it, so a
// typo is not silently dropped.
func applyRegisterFields(o *nodes.CreateOpts, fields map[string]string) error {
	ifaces := map[string]*string{
		"bios_interface": &o.BIOSInterface, "boot_interface": &o.BootInterface, "console_interface": &o.ConsoleInterface,
		"deploy_interface": &o.DeployInterface, "firmware_interface": &o.FirmwareInterface, "inspect_interface": &o.InspectInterface,
		"management_interface": &o.ManagementInterface, "network_interface": &o.NetworkInterface, "power_interface": &o.PowerInterface,
		"raid_interface": &o.RAIDInterface, "rescue_interface": &o.RescueInterface, "storage_interface": &o.StorageInterface,
		"vendor_interface": &o.VendorInterface,
	}
	for k, v := range fields {
		key, ok := strings.CutPrefix(k, RegisterFieldPrefix)
		if !ok {
			continue
		}
		switch {
		case key == "deploy_kernel" || key == "deploy_ramdisk":
			o.DriverInfo[key] = v
		case key == "conductor_group":
			o.ConductorGroup = v
		case key == "owner":
			o.Owner = v
		case key == "automated_clean":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return ironpool.FieldErrorf("fields."+k, "%q is not true or false", v)
			}
			o.AutomatedClean = &b
		case ifaces[key] != nil:
			*ifaces[key] = v
		default:
			return ironpool.FieldErrorf("fields."+k, "is not an Ironic setting ironpool registers (deploy_kernel, deploy_ramdisk, conductor_group, owner, automated_clean, <kind>_interface)")
		}
	}
	return nil
}
