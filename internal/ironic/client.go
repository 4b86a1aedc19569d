package ironic

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/metrics"
)

// Baseline is the Ironic API microversion every request carries; see the
// package documentation for what needs it.
const Baseline = "1.65"

// Defaults for Config fields left zero.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultWaitTimeout = 30 * time.Minute
	DefaultPageSize    = 500
)

// FakeDriver is the Ironic hardware type whose interfaces all pretend; tests
// set Config.DriverOverride to it so the real state machine runs without a BMC.
const FakeDriver = "fake-hardware"

// Config says how to reach one Ironic.
type Config struct {
	// URL is Ironic's API endpoint, e.g. http://127.0.0.1:6385 (with or
	// without /v1). Used unless Cloud is set.
	URL string
	// Username and Password select HTTP basic authentication (Ironic's
	// auth_strategy=http_basic); both empty means noauth.
	Username string
	Password string
	// Cloud names an entry of clouds.yaml (found the usual way: $OS_CLIENT_CONFIG_FILE,
	// ./clouds.yaml, ~/.config/openstack, /etc/openstack) to authenticate with
	// Keystone and find Ironic in the service catalog — or, for entries with
	// auth_type none or http_basic and baremetal_endpoint_override, to reach
	// a standalone Ironic directly. URL is then ignored.
	Cloud string
	// CloudsFile, when set, is the clouds.yaml to read instead of the
	// usual search path.
	CloudsFile string
	// Timeout bounds each HTTP request, so a hung Ironic surfaces as
	// EUNAVAILABLE instead of blocking a reconciler. Default DefaultTimeout.
	Timeout time.Duration
	// WaitTimeout bounds the waits inside Register, Deploy, Inspect and the
	// other verbs that drive the state machine. Default DefaultWaitTimeout,
	// because real cleaning and deployment take many minutes.
	WaitTimeout time.Duration
	// DriverOverride, when set, replaces the driver Register derives from the
	// BMC URL (FakeDriver in tests); driver_info is kept as derived.
	DriverOverride string
	// PageSize is the limit per list request. Default DefaultPageSize.
	PageSize int
	// Filter limits which nodes a sync sees (ParseFilter: conductor_group,
	// owner, …), so a pool can take a part of a shared Ironic.
	Filter url.Values

	// Metrics receives the client's call latencies and errors; nil
	// records nothing.
	Metrics *metrics.Metrics

	stats *callStats // set by Connect: where the transport counts calls
}

// Client talks to one Ironic. It is safe for concurrent use.
type Client struct {
	sc             *gophercloud.ServiceClient
	endpoint       string
	maxVersion     string
	driverOverride string
	waitTimeout    time.Duration
	pageSize       int
	filter         url.Values
	stats          *callStats
}

// Connect builds a client and probes the server: it returns EUNAVAILABLE if
// Ironic cannot be reached or does not look like Ironic, and EINVALID if the
// configuration is incomplete or the server's newest microversion is below
// Baseline.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	var sc *gophercloud.ServiceClient
	var err error
	stats := newCallStats(cfg.Metrics)
	cfg.stats = stats
	if cfg.Cloud != "" {
		sc, err = cloudClient(ctx, cfg)
	} else {
		sc, err = directClient(cfg, nil)
	}
	if err != nil {
		return nil, err
	}
	c := &Client{
		sc:             sc,
		endpoint:       strings.TrimSuffix(strings.TrimSuffix(sc.ResourceBaseURL(), "/"), "/v1"),
		driverOverride: cfg.DriverOverride,
		waitTimeout:    cfg.WaitTimeout,
		pageSize:       cfg.PageSize,
		filter:         cfg.Filter,
		stats:          stats,
	}
	stats.setEndpoint(c.endpoint)
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	sc.Microversion = Baseline
	return c, nil
}

// directClient builds a noauth or HTTP-basic client for cfg.URL. gophercloud's
// noauth and httpbasic constructors do the same; building it here lets both
// share one ProviderClient set-up (timeout, retries, user agent).
func directClient(cfg Config, tlsConfig *tls.Config) (*gophercloud.ServiceClient, error) {
	if cfg.URL == "" {
		return nil, ironpool.FieldErrorf("ironic.url", "is required unless a clouds.yaml cloud is named")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ironpool.FieldErrorf("ironic.url", "%q is not an http(s) URL", cfg.URL)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, ironpool.FieldErrorf("ironic.username", "HTTP basic authentication needs both a username and a password")
	}
	base := strings.TrimSuffix(u.String(), "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	pc := newProvider(cfg, tlsConfig)
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: base + "/", Type: "baremetal"}
	if cfg.Username != "" {
		token := base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password))
		sc.MoreHeaders = map[string]string{"Authorization": "Basic " + token}
	}
	return sc, nil
}

// cloudClient reaches the Ironic a clouds.yaml entry names: directly for
// entries without Keystone (auth_type none or http_basic with
// baremetal_endpoint_override, as a standalone Ironic is configured), else
// by authenticating with Keystone and finding Ironic in the catalog.
func cloudClient(ctx context.Context, cfg Config) (*gophercloud.ServiceClient, error) {
	c, file, err := findCloud(cfg.Cloud, cfg.CloudsFile)
	if err != nil {
		return nil, err
	}
	direct, endpoint, err := c.keystoneFree()
	if err != nil {
		return nil, ironpool.FieldErrorf("ironic.cloud", "%s: cloud %q: %v", file, cfg.Cloud, err)
	}
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return nil, ironpool.FieldErrorf("ironic.cloud", "%s: cloud %q: %v", file, cfg.Cloud, err)
	}
	if direct {
		d := cfg
		d.URL, d.Username, d.Password = endpoint, "", ""
		if strings.EqualFold(c.AuthType, "http_basic") {
			d.Username, d.Password = c.Auth.Username, c.Auth.Password
		}
		sc, err := directClient(d, tlsConfig)
		if err != nil {
			return nil, ironpool.FieldErrorf("ironic.cloud", "%s: cloud %q: %s", file, cfg.Cloud, ironpool.ErrorMessage(err))
		}
		return sc, nil
	}
	return keystoneClient(ctx, cfg)
}

// keystoneClient authenticates with Keystone as clouds.yaml says and finds
// Ironic in the catalog. gophercloud's parser is trusted with Keystone
// entries only; a panic in it is a refused configuration, not a crash.
func keystoneClient(ctx context.Context, cfg Config) (sc *gophercloud.ServiceClient, err error) {
	defer func() {
		if r := recover(); r != nil {
			sc, err = nil, ironpool.FieldErrorf("ironic.cloud", "cannot use clouds.yaml cloud %q: %v", cfg.Cloud, r)
		}
	}()
	opts := []clouds.ParseOption{clouds.WithCloudName(cfg.Cloud)}
	if cfg.CloudsFile != "" {
		opts = append(opts, clouds.WithLocations(cfg.CloudsFile))
	}
	ao, eo, tlsConfig, err := clouds.Parse(opts...)
	if err != nil {
		return nil, ironpool.FieldErrorf("ironic.cloud", "cannot use clouds.yaml cloud %q: %v", cfg.Cloud, err)
	}
	if ao.IdentityEndpoint == "" {
		return nil, (&ironpool.Error{Code: ironpool.EINVALID, Field: "ironic.cloud",
			Message: fmt.Sprintf("cloud %q has no auth.auth_url", cfg.Cloud)}).
			WithHint("for an Ironic without Keystone use auth_type: none (or http_basic) with baremetal_endpoint_override")
	}
	pc, err := openstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, ironpool.FieldErrorf("ironic.cloud", "cloud %q: bad auth_url: %v", cfg.Cloud, err)
	}
	configureProvider(pc, cfg, tlsConfig)
	if err := openstack.Authenticate(ctx, pc, ao); err != nil {
		return nil, keystoneHint(mapError(ctx, err, "authenticate with Keystone for cloud "+cfg.Cloud))
	}
	sc, err = openstack.NewBareMetalV1(pc, eo)
	if err != nil {
		return nil, ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: cloud %q: no baremetal endpoint in the service catalog: %v", cfg.Cloud, err)
	}
	return sc, nil
}

// keystoneHint says that Keystone, not Ironic, refused or was unreachable.
func keystoneHint(err error) error {
	var e *ironpool.Error
	if errors.As(err, &e) && e.Hint == "" {
		c := *e
		c.Hint = "Keystone is the problem, not Ironic: check auth_url and the credentials in clouds.yaml"
		return &c
	}
	return err
}

func newProvider(cfg Config, tlsConfig *tls.Config) *gophercloud.ProviderClient {
	pc := &gophercloud.ProviderClient{}
	configureProvider(pc, cfg, tlsConfig)
	return pc
}

func configureProvider(pc *gophercloud.ProviderClient, cfg Config, tlsConfig *tls.Config) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig
	}
	var rt http.RoundTripper = tr
	if cfg.stats != nil {
		rt = &countingTransport{base: tr, stats: cfg.stats}
	}
	pc.HTTPClient = http.Client{Transport: rt, Timeout: cfg.Timeout}
	pc.UserAgent.Prepend("ironpool")
	pc.RetryFunc = retryTransient
}

// Endpoint returns Ironic's base URL (without /v1), for recording which
// Ironic a node came from.
func (c *Client) Endpoint() string { return c.endpoint }

// MaxVersion returns the newest microversion the server offers, as probed by
// Connect, for callers that gate optional features on it.
func (c *Client) MaxVersion() string { return c.maxVersion }

// probe reads the server's microversion range. It sends no version header,
// since a server older than Baseline would answer 406 to one.
func (c *Client) probe(ctx context.Context) error {
	var body struct {
		ID      string `json:"id"`
		Version struct {
			Version    string `json:"version"`
			MinVersion string `json:"min_version"`
		} `json:"version"`
	}
	resp, err := c.sc.Get(ctx, c.sc.ServiceURL(), &body, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return mapError(ctx, err, "probe API version at "+c.endpoint)
	}
	maxV := resp.Header.Get("X-OpenStack-Ironic-API-Maximum-Version")
	if maxV == "" {
		maxV = body.Version.Version
	}
	if body.ID != "v1" && maxV == "" {
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s does not look like an Ironic API (no v1 version document)", c.endpoint)
	}
	ok, err := versionAtLeast(maxV, Baseline)
	if err != nil {
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s reports an unreadable API version %q", c.endpoint, maxV)
	}
	if !ok {
		return ironpool.Errorf(ironpool.EINVALID, "ironic: %s supports API microversions up to %s; ironpool needs %s (node lessee)", c.endpoint, maxV, Baseline).
			WithHint("upgrade Ironic to 2023.1 (21.4) or newer")
	}
	c.maxVersion = maxV
	return nil
}

// versionAtLeast compares "major.minor" microversions numerically (1.9 < 1.65).
func versionAtLeast(have, want string) (bool, error) {
	hMaj, hMin, err := parseVersion(have)
	if err != nil {
		return false, err
	}
	wMaj, wMin, err := parseVersion(want)
	if err != nil {
		return false, err
	}
	return hMaj > wMaj || (hMaj == wMaj && hMin >= wMin), nil
}

func parseVersion(v string) (int, int, error) {
	maj, mnr, ok := strings.Cut(v, ".")
	if !ok {
		return 0, 0, fmt.Errorf("version %q is not major.minor", v)
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(mnr)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	return a, b, nil
}
