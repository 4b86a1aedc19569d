package server

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ironic"
)

// IronicOptions say which Ironics back the pool. With no URL, Cloud or
// Endpoints the pool is local: ironpool alone tracks its nodes.
type IronicOptions struct {
	// Endpoints are further Ironics behind the same pool (serve --ironic
	// NAME=URL or NAME=cloud:CLOUD); each node's link names its endpoint.
	Endpoints []IronicEndpoint
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
	// Filter limits which Ironic nodes sync sees (ironic.ParseFilter:
	// conductor_group=…,owner=…), for every endpoint.
	Filter url.Values
}

// IronicEndpoint is one more Ironic behind the pool.
type IronicEndpoint struct {
	// Name is what logs and errors call it.
	Name string
	// URL (noauth) or Cloud (a clouds.yaml entry, read from CloudsFile).
	URL, Cloud string
}

// ParseIronicFilter reads serve's --ironic-filter (see ironic.ParseFilter).
func ParseIronicFilter(s string) (url.Values, error) { return ironic.ParseFilter(s) }

// ParseIronicEndpoint reads serve's --ironic NAME=URL or NAME=cloud:CLOUD.
func ParseIronicEndpoint(s string) (IronicEndpoint, error) {
	name, target, ok := strings.Cut(s, "=")
	if !ok || name == "" || target == "" {
		return IronicEndpoint{}, ironpool.FieldErrorf("ironic", "%q is not NAME=URL or NAME=cloud:CLOUD", s)
	}
	if err := ironpool.ValidateName("ironic", name); err != nil {
		return IronicEndpoint{}, err
	}
	if c, ok := strings.CutPrefix(target, "cloud:"); ok {
		return IronicEndpoint{Name: name, Cloud: c}, nil
	}
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		return IronicEndpoint{}, ironpool.FieldErrorf("ironic", "%s: %q is not an http(s) URL or cloud:NAME", name, target)
	}
	return IronicEndpoint{Name: name, URL: target}, nil
}

// startIronic connects to the configured Ironics and hands them to the
// reconciler before the background loops start, so the reconciler never
// sees a half-set backend. A server told to use Ironic refuses to start
// without each of them: running without one would silently skip the
// checkouts of its nodes. The store is told which endpoints this server
// reaches, so it never hands out a node whose Ironic nobody here can drive.
func (m *Main) startIronic(ctx context.Context) error {
	o := m.Ironic
	var eps []IronicEndpoint
	if o.URL != "" || o.Cloud != "" {
		eps = append(eps, IronicEndpoint{Name: "default", URL: o.URL, Cloud: o.Cloud})
	}
	eps = append(eps, o.Endpoints...)
	var reach []string
	for i, ep := range eps {
		cfg := ironic.Config{Metrics: m.Metrics, URL: ep.URL, Cloud: ep.Cloud, CloudsFile: o.CloudsFile, DriverOverride: o.DriverOverride, Filter: o.Filter}
		if i == 0 && ep.Name == "default" {
			cfg.Username, cfg.Password = o.User, o.Password
		}
		c, err := ironic.Connect(ctx, cfg)
		if err != nil {
			return fmt.Errorf("connect to Ironic %s: %w", ep.Name, err)
		}
		for _, b := range m.Reconciler.Backends {
			if b.Endpoint() == c.Endpoint() {
				return fmt.Errorf("Ironic %s: endpoint %s is given twice", ep.Name, c.Endpoint())
			}
		}
		m.Reconciler.Backends = append(m.Reconciler.Backends, ironic.NewBackend(c))
		reach = append(reach, c.Endpoint())
		m.Log.Info("ironic backend", "name", ep.Name, "endpoint", c.Endpoint(), "max_microversion", c.MaxVersion(), "baseline", ironic.Baseline)
	}
	if r, ok := m.Store.(interface{ SetReachable([]string) }); ok {
		r.SetReachable(reach)
	}
	if len(eps) == 0 {
		return nil
	}
	m.Reconciler.Config.Backend.SyncInterval = o.SyncInterval
	if o.SyncInterval == 0 {
		m.Reconciler.Config.Backend.SyncInterval = 30 * time.Second
	}
	if o.RetryMax > 0 {
		m.Reconciler.Config.Backend.RetryMax = o.RetryMax
	}
	return nil
}
