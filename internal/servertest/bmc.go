package servertest

import (
	"context"
	"net"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/bmcdial"
)

// LoopbackDialer is the BMC dialer of test servers: the real one for BMCs
// on 127.0.0.1 (the simulators tests start), and an EUNAVAILABLE without
// sending a packet for any other address. Fixtures name BMCs such as
// ipmi://10.0.0.1 as data; a test that powers such a node must not reach
// a real network.
type LoopbackDialer struct{ bmcdial.Dialer }

func loopback(field, addr string) error {
	ep, err := ironpool.ParseBMCEndpoint(field, addr)
	if err != nil {
		return err
	}
	host := ep.Host
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "BMC %s is not on loopback; test servers only reach 127.0.0.1", host)
	}
	return nil
}

// DialBMC implements ironpool.BMCDialer.
func (d LoopbackDialer) DialBMC(ctx context.Context, bmc ironpool.BMC) (ironpool.BMCClient, error) {
	if err := loopback("bmc.address", bmc.Address); err != nil {
		return nil, err
	}
	return d.Dialer.DialBMC(ctx, bmc)
}

// DialService implements ironpool.BMCDialer.
func (d LoopbackDialer) DialService(ctx context.Context, addr, user, password string) (ironpool.BMCService, error) {
	if err := loopback("url", addr); err != nil {
		return nil, err
	}
	return d.Dialer.DialService(ctx, addr, user, password)
}
