// Package bmcdial opens a node's BMC by the scheme of its address: ipmi://
// through internal/ipmi, redfish[+http|+https]:// through internal/redfish.
// The service and the reconciler see only ironpool.BMCDialer; the wiring
// (internal/server) hands them this one.
package bmcdial

import (
	"context"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ipmi"
	"github.com/ironpool/ironpool/internal/redfish"
)

// Dialer implements ironpool.BMCDialer.
type Dialer struct {
	Redfish redfish.Dialer
}

var _ ironpool.BMCDialer = Dialer{}

// DialBMC opens the BMC bmc describes.
func (d Dialer) DialBMC(ctx context.Context, bmc ironpool.BMC) (ironpool.BMCClient, error) {
	ep, err := ironpool.ParseBMCEndpoint("bmc.address", bmc.Address)
	if err != nil {
		return nil, err
	}
	if ep.Driver == "ipmi" {
		return ipmi.Dial(ctx, bmc)
	}
	return d.Redfish.Dial(ctx, bmc)
}

// DialService opens a Redfish service for discovery or composition.
func (d Dialer) DialService(ctx context.Context, addr, user, password string) (ironpool.BMCService, error) {
	ep, err := ironpool.ParseBMCEndpoint("url", addr)
	if err != nil {
		return nil, err
	}
	if ep.Driver != "redfish" {
		return nil, ironpool.FieldErrorf("url", "must be a Redfish service (redfish+https://host), not %s", ep.Driver)
	}
	return d.Redfish.DialService(ctx, addr, user, password)
}
