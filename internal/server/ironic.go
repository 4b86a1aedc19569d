package server

import (
	"context"
	"fmt"
	"time"

	"ironpool/internal/ironic"
)

// IronicOptions say which Ironic backs the pool. With neither URL nor Cloud
// the pool is local: ironpool alone tracks its nodes.
type IronicOptions struct {
	// URL is Ironic's API endpoint (noauth, or HTTP basic with User and
	// Password).
	URL, User, Password string
	// Cloud names a clouds.yaml entry (Keystone, or auth_type none /
	// http_basic with baremetal_endpoint_override); it wins over URL.
	// CloudsFile names the clouds.yaml to read (default: the usual search).
	Cloud, CloudsFile string
	// SyncInterval is how often Ironic's nodes are imported and refreshed
	// (0: 30s; negative: only on demand).
	SyncInterval time.Duration
	// DriverOverride replaces the driver `node register` derives from the
	// BMC URL; tests set "fake-hardware".
	DriverOverride string
	// RetryMax caps the reconciler's backoff (0: 15s).
	RetryMax time.Duration
}

// startIronic connects to the configured Ironic and hands it to the
// service before the background loops start, so the reconciler never sees
// a half-set backend. A server told to use Ironic refuses to start without
// it: running as a local pool instead would silently skip every checkout.
func (m *Main) startIronic(ctx context.Context) error {
	o := m.Ironic
	if o.URL == "" && o.Cloud == "" {
		return nil
	}
	c, err := ironic.Connect(ctx, ironic.Config{URL: o.URL, Username: o.User, Password: o.Password,
		Cloud: o.Cloud, CloudsFile: o.CloudsFile, DriverOverride: o.DriverOverride})
	if err != nil {
		return fmt.Errorf("connect to Ironic: %w", err)
	}
	m.Reconciler.Backend = ironic.NewBackend(c)
	m.Reconciler.Config.Backend.SyncInterval = o.SyncInterval
	if o.SyncInterval == 0 {
		m.Reconciler.Config.Backend.SyncInterval = 30 * time.Second
	}
	if o.RetryMax > 0 {
		m.Reconciler.Config.Backend.RetryMax = o.RetryMax
	}
	m.Log.Info("ironic backend", "endpoint", c.Endpoint(), "max_microversion", c.MaxVersion(), "baseline", ironic.Baseline)
	return nil
}
