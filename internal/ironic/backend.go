package ironic

import (
	"context"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/driverinfo"
)

// Backend adapts a Client to ironpool.Backend: it is the one place where
// Ironic's node records become ironpool.BackendNode, with the BMC mapped
// from driver_info into ironpool's URL form.
type Backend struct{ *Client }

var _ ironpool.Backend = Backend{}

// NewBackend returns c as an ironpool.Backend.
func NewBackend(c *Client) ironpool.Backend { return Backend{c} }

// ToBackendNode converts what Ironic reports about a node into pool terms.
func ToBackendNode(n NodeInfo) ironpool.BackendNode {
	bmc, _ := driverinfo.ToBMC(n.Driver, n.DriverInfo) // an unusable BMC stays empty
	return ironpool.BackendNode{
		ID: n.UUID, Name: n.Name, ResourceClass: n.ResourceClass,
		CPUs: n.CPUs, MemoryMB: n.MemoryMB, LocalGB: n.LocalGB, CPUArch: n.CPUArch,
		Traits: n.Traits, MACs: n.MACs, BMC: bmc, // the password only where Ironic's show_password policy shows it
		Driver: n.Driver, ProvisionState: n.ProvisionState, TargetProvisionState: n.TargetProvisionState,
		PowerState: n.PowerState, Maintenance: n.Maintenance, MaintenanceReason: n.MaintenanceReason,
		InstanceUUID: n.InstanceUUID, Owner: n.Owner, Lessee: n.Lessee, LastError: n.LastError,
		ManagedBy: n.ManagedBy(),
	}
}

func toBackendNodes(in []NodeInfo, err error) ([]ironpool.BackendNode, error) {
	out := make([]ironpool.BackendNode, len(in))
	for i, n := range in {
		out[i] = ToBackendNode(n)
	}
	return out, err
}

func toBackendNode(n NodeInfo, err error) (ironpool.BackendNode, error) {
	if n.UUID == "" {
		return ironpool.BackendNode{}, err
	}
	return ToBackendNode(n), err
}

// ListNodes implements ironpool.Backend.
func (b Backend) ListNodes(ctx context.Context) ([]ironpool.BackendNode, error) {
	return toBackendNodes(b.Client.ListNodes(ctx))
}

// GetNode implements ironpool.Backend.
func (b Backend) GetNode(ctx context.Context, id string) (ironpool.BackendNode, error) {
	return toBackendNode(b.Client.GetNode(ctx, id))
}

// ManageableNodes implements ironpool.Backend.
func (b Backend) ManageableNodes(ctx context.Context) ([]ironpool.BackendNode, error) {
	return toBackendNodes(b.Client.ManageableNodes(ctx))
}

// WaitForProvisionState implements ironpool.Backend.
func (b Backend) WaitForProvisionState(ctx context.Context, id, want string, timeout time.Duration) (ironpool.BackendNode, error) {
	return toBackendNode(b.Client.WaitForProvisionState(ctx, id, want, timeout))
}

// Inspect implements ironpool.Backend.
func (b Backend) Inspect(ctx context.Context, id string) (ironpool.BackendNode, error) {
	return toBackendNode(b.Client.Inspect(ctx, id))
}
