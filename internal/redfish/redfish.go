// Package redfish drives BMCs and Redfish services with
// github.com/stmcginnis/gofish: power (ComputerSystem.Reset), boot override,
// inspection, and, on a service with many systems behind it, discovery and
// composition (CompositionService, the Valence flow). TLS certificates are
// verified unless the address says ?verify=false; a session is opened where
// the service offers one (the password then crosses the wire once), Basic
// authentication otherwise.
package redfish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ironpool/ironpool"
)

// Dialer opens Redfish connections. It implements the Redfish half of
// ironpool.BMCDialer.
type Dialer struct {
	// RootCAs, when set, replaces the system's trusted roots (a site CA;
	// tests' own servers).
	RootCAs *x509.CertPool
}

// Conn is one authenticated connection to one Redfish service, aimed at
// one of its systems. It implements ironpool.BMCClient and, for the
// service as a whole, ironpool.BMCService.
type Conn struct {
	api      *gofish.APIClient
	ep       *ironpool.BMCEndpoint
	query    string // the address's options, kept for the addresses discovery writes
	user     string
	password string
	session  bool
}

var (
	_ ironpool.BMCClient  = (*Conn)(nil)
	_ ironpool.BMCService = (*Conn)(nil)
)

// Dial connects to the service bmc's address names and checks that the
// system its path names exists (or, with no path, that there is exactly
// one system).
func (d Dialer) Dial(ctx context.Context, bmc ironpool.BMC) (*Conn, error) {
	c, err := d.open(ctx, bmc.Address, bmc.Username, bmc.Password)
	if err != nil {
		return nil, err
	}
	if c.ep.System == "" {
		var ids []string
		err := c.bounded(ctx, func() error {
			systems, err := c.api.Service.Systems()
			for _, s := range systems {
				ids = append(ids, s.ODataID)
			}
			return err
		})
		if err != nil {
			c.Close()
			return nil, c.classify("list systems", err)
		}
		if len(ids) != 1 {
			c.Close()
			return nil, ironpool.FieldErrorf("bmc.address", "names no system and the service has %d; add its path (e.g. /redfish/v1/Systems/1)", len(ids))
		}
		c.ep.System = ids[0]
	}
	return c, nil
}

// DialService connects to the Redfish service at addr for discovery or
// composition.
func (d Dialer) DialService(ctx context.Context, addr, user, password string) (*Conn, error) {
	return d.open(ctx, addr, user, password)
}

func (d Dialer) open(ctx context.Context, addr, user, password string) (*Conn, error) {
	ep, err := ironpool.ParseBMCEndpoint("bmc.address", addr)
	if err != nil {
		return nil, err
	}
	if ep.Driver != "redfish" {
		return nil, ironpool.FieldErrorf("bmc.address", "is not a redfish address")
	}
	u, _ := url.Parse(addr)
	c := &Conn{ep: ep, query: u.RawQuery, user: user, password: password}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: d.RootCAs}
	if !ep.Verify {
		tlsConf.InsecureSkipVerify = true // the node's own ?verify=false
	}
	hc := &http.Client{
		Timeout: ep.Timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: ep.Timeout}).DialContext,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: ep.Timeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
		// A BMC that redirects elsewhere must not receive the
		// credentials a second time unasked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	cfg := gofish.ClientConfig{Endpoint: ep.Root, HTTPClient: hc, Username: user, Password: password}
	// Session first where the service offers one; Basic when it offers
	// none or hands back no token (DMTF's mockup server does that).
	err = c.bounded(ctx, func() error {
		api, err := gofish.ConnectContext(ctx, cfg)
		if err == nil {
			if s, serr := api.GetSession(); serr == nil && s.Token != "" {
				c.api, c.session = api, true
				return nil
			}
		} else if status(err) == http.StatusUnauthorized || status(err) == http.StatusForbidden || isTransport(err) {
			return err
		}
		cfg.BasicAuth = true
		api, err = gofish.ConnectContext(ctx, cfg)
		if err != nil {
			return err
		}
		// Basic auth is only checked on a request that needs it.
		if _, err := api.Get("/redfish/v1/Systems"); err != nil {
			return err
		}
		c.api = api
		return nil
	})
	if err != nil {
		return nil, c.classify("connect", err)
	}
	return c, nil
}

func status(err error) int {
	var e *common.Error
	if errors.As(err, &e) {
		return e.HTTPReturnedStatusCode
	}
	return 0
}

func isTransport(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// bounded runs fn, giving up after the endpoint's timeout: gofish takes
// its context at connect time, so each call is bounded here as well.
func (c *Conn) bounded(ctx context.Context, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, c.ep.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// classify turns a gofish or transport error into an ironpool error that
// names the service and the user but never the password.
func (c *Conn) classify(op string, err error) error {
	var ie *ironpool.Error
	if errors.As(err, &ie) {
		return ie
	}
	where := "Redfish service " + c.ep.Root
	msg := err.Error()
	if c.password != "" {
		msg = strings.ReplaceAll(msg, c.password, ironpool.MaskedSecret)
	}
	var cerr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var nerr net.Error
	switch st := status(err); {
	case errors.As(err, &cerr) || errors.As(err, &uerr) || errors.As(err, &herr):
		return (&ironpool.Error{Code: ironpool.EUNAVAILABLE, Message: fmt.Sprintf("%s: its TLS certificate is not trusted (%s)", where, op)}).
			WithHint("install the BMC's CA, or add ?verify=false to this node's BMC address to opt out")
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return &ironpool.Error{Code: ironpool.EINVALID, Field: "bmc.password",
			Message: fmt.Sprintf("%s refused the credentials of user %q", where, c.user)}
	case st == http.StatusNotFound:
		return ironpool.Errorf(ironpool.ENOTFOUND, "%s has no such resource (%s)", where, op)
	case st >= 400 && st < 500:
		return ironpool.Errorf(ironpool.ECONFLICT, "%s refused %s (HTTP %d)", where, op, st)
	case st >= 500:
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s failed %s (HTTP %d)", where, op, st)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout():
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s did not answer within %s (%s)", where, c.ep.Timeout, op)
	case isTransport(err):
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s cannot be reached (%s)", where, op)
	}
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s: %s failed: %s", where, op, msg)
}

func (c *Conn) system() (*redfish.ComputerSystem, error) {
	return redfish.GetComputerSystem(c.api, c.ep.System)
}

// Power resets the system and reads its PowerState back. Off is ForceOff
// and reboot ForceRestart (On when it is off), the hard variants Ironic
// uses too: a hung OS must not keep a node from being cleaned.
func (c *Conn) Power(ctx context.Context, action ironpool.PowerAction) (ironpool.PowerState, error) {
	if err := action.Validate(); err != nil {
		return "", err
	}
	var state ironpool.PowerState
	err := c.bounded(ctx, func() error {
		sys, err := c.system()
		if err != nil {
			return err
		}
		on := sys.PowerState == redfish.OnPowerState || sys.PowerState == redfish.PoweringOnPowerState
		var rt redfish.ResetType
		switch {
		case action == ironpool.PowerOn && !on, action == ironpool.PowerReboot && !on:
			rt = redfish.OnResetType
		case action == ironpool.PowerOff && on:
			rt = redfish.ForceOffResetType
		case action == ironpool.PowerReboot:
			rt = redfish.ForceRestartResetType
		}
		if rt != "" {
			if err := sys.Reset(rt); err != nil {
				return err
			}
			if sys, err = c.system(); err != nil {
				return err
			}
		}
		state = powerState(sys.PowerState)
		return nil
	})
	if err != nil {
		return "", c.classify("power "+string(action), err)
	}
	return state, nil
}

func powerState(p redfish.PowerState) ironpool.PowerState {
	switch p {
	case redfish.OnPowerState, redfish.PoweringOffPowerState:
		return ironpool.PowerStateOn
	case redfish.OffPowerState, redfish.PoweringOnPowerState:
		return ironpool.PowerStateOff
	}
	return ironpool.PowerStateUnknown
}

var bootTargets = map[ironpool.BootDevice]string{
	ironpool.BootPXE:  "Pxe",
	ironpool.BootDisk: "Hdd",
	ironpool.BootBIOS: "BiosSetup",
}

// SetBootDevice patches Boot.BootSourceOverrideTarget and
// BootSourceOverrideEnabled (Once or Continuous).
func (c *Conn) SetBootDevice(ctx context.Context, dev ironpool.BootDevice, once bool) error {
	if err := dev.Validate(); err != nil {
		return err
	}
	enabled := "Continuous"
	if once {
		enabled = "Once"
	}
	err := c.bounded(ctx, func() error {
		resp, err := c.api.Patch(c.ep.System, map[string]any{"Boot": map[string]string{
			"BootSourceOverrideTarget": bootTargets[dev], "BootSourceOverrideEnabled": enabled}})
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if err != nil {
		return c.classify("set boot device", err)
	}
	return nil
}

// Inspect reads the system's hardware.
func (c *Conn) Inspect(ctx context.Context) (*ironpool.Hardware, error) {
	var hw *ironpool.Hardware
	err := c.bounded(ctx, func() error {
		sys, err := c.system()
		if err != nil {
			return err
		}
		hw, err = c.hardware(sys)
		return err
	})
	if err != nil {
		return nil, c.classify("inspect", err)
	}
	return hw, nil
}

// hardware reads one system and the resources it links to. A missing
// sub-resource leaves its figure zero; a failing one fails the whole read,
// so discovery never writes half a node.
func (c *Conn) hardware(sys *redfish.ComputerSystem) (*ironpool.Hardware, error) {
	hw := &ironpool.Hardware{UUID: strings.ToLower(sys.UUID), Name: sys.HostName, MACs: []string{},
		CPUs: sys.ProcessorSummary.Count, MemoryMB: int64(sys.MemorySummary.TotalSystemMemoryGiB * 1024),
		Composed: sys.SystemType == "Composed"}
	if hw.Name == "" {
		hw.Name = sys.ID
	}
	procs, err := sys.Processors()
	if err != nil && status(err) != http.StatusNotFound {
		return nil, err
	}
	if hw.CPUs == 0 {
		for _, p := range procs {
			if p.ProcessorType == "" || p.ProcessorType == redfish.CPUProcessorType {
				hw.CPUs++
			}
		}
	}
	for _, p := range procs {
		if a := cpuArch(string(p.ProcessorArchitecture), string(p.InstructionSet)); a != "" {
			hw.CPUArch = a
			break
		}
	}
	nics, err := sys.EthernetInterfaces()
	if err != nil && status(err) != http.StatusNotFound {
		return nil, err
	}
	for _, n := range nics {
		mac := n.MACAddress
		if mac == "" {
			mac = n.PermanentMACAddress
		}
		if mac == "" {
			continue
		}
		if m, err := ironpool.NormalizeMAC("mac", mac); err == nil && !slices.Contains(hw.MACs, m) {
			hw.MACs = append(hw.MACs, m)
		}
	}
	// gofish reads collection members concurrently: sort, so a second
	// read of the same system reports the same list.
	slices.Sort(hw.MACs)
	// local_gb is the largest single disk, as Ironic's inspection reports
	// it: the root disk is one device, not the sum of all of them.
	var largest int64
	simple, err := sys.SimpleStorages()
	if err != nil && status(err) != http.StatusNotFound {
		return nil, err
	}
	for _, s := range simple {
		for _, d := range s.Devices {
			largest = max(largest, d.CapacityBytes)
		}
	}
	storage, err := sys.Storage()
	if err != nil && status(err) != http.StatusNotFound {
		return nil, err
	}
	for _, s := range storage {
		drives, err := s.Drives()
		if err != nil && status(err) != http.StatusNotFound {
			return nil, err
		}
		for _, d := range drives {
			largest = max(largest, d.CapacityBytes)
		}
	}
	hw.LocalGB = largest / (1 << 30)
	hw.Address = c.addressOf(sys.ODataID)
	return hw, nil
}

// cpuArch maps Redfish's InstructionSet (or, without one,
// ProcessorArchitecture) to the cpu_arch words Ironic and Nova use.
func cpuArch(archName, isa string) string {
	switch isa {
	case "x86-64":
		return "x86_64"
	case "x86":
		return "i686"
	case "ARM-A64":
		return "aarch64"
	case "ARM-A32":
		return "armv7l"
	case "PowerISA":
		return "ppc64le"
	case "RV64":
		return "riscv64"
	case "IA-64":
		return "ia64"
	}
	switch archName {
	case "x86":
		return "x86_64"
	case "ARM":
		return "aarch64"
	case "Power":
		return "ppc64le"
	case "RISC-V":
		return "riscv64"
	case "IA-64":
		return "ia64"
	}
	return ""
}

// addressOf is the BMC address of one system of this service: the
// service's scheme and host, the system's path, and the options (verify,
// timeout) the service's own address carried.
func (c *Conn) addressOf(path string) string {
	u, _ := url.Parse(c.ep.Root)
	scheme := "redfish+" + u.Scheme
	addr := scheme + "://" + u.Host + path
	if c.query != "" {
		addr += "?" + c.query
	}
	return addr
}

// Systems describes every ComputerSystem of the service.
func (c *Conn) Systems(ctx context.Context) ([]*ironpool.Hardware, error) {
	var out []*ironpool.Hardware
	err := c.bounded(ctx, func() error {
		systems, err := c.api.Service.Systems()
		if err != nil {
			return err
		}
		for _, s := range systems {
			hw, err := c.hardware(s)
			if err != nil {
				return err
			}
			out = append(out, hw)
		}
		return nil
	})
	if err != nil {
		return nil, c.classify("list systems", err)
	}
	return out, nil
}

// getJSON reads one resource into v.
func (c *Conn) getJSON(path string, v any) error {
	resp, err := c.api.Get(path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(v)
}

type odataLink struct {
	ID string `json:"@odata.id"`
}

func lastSegment(p string) string {
	p = strings.TrimSuffix(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// Composition lists the CompositionService's zones and blocks.
func (c *Conn) Composition(ctx context.Context) (*ironpool.Composition, error) {
	out := &ironpool.Composition{Zones: []ironpool.ResourceZone{}, Blocks: []ironpool.ResourceBlock{}}
	err := c.bounded(ctx, func() error {
		var root struct {
			CompositionService *odataLink
		}
		if err := c.getJSON("/redfish/v1", &root); err != nil {
			return err
		}
		if root.CompositionService == nil {
			return ironpool.Errorf(ironpool.ENOTFOUND, "Redfish service %s has no CompositionService", c.ep.Root)
		}
		var cs struct{ ResourceBlocks, ResourceZones odataLink }
		if err := c.getJSON(root.CompositionService.ID, &cs); err != nil {
			return err
		}
		var coll struct{ Members []odataLink }
		if err := c.getJSON(cs.ResourceZones.ID, &coll); err != nil {
			return err
		}
		zoneOf := map[string][]string{}
		for _, m := range coll.Members {
			var z struct {
				ID    string `json:"Id"`
				Links struct{ ResourceBlocks []odataLink }
			}
			if err := c.getJSON(m.ID, &z); err != nil {
				return err
			}
			zone := ironpool.ResourceZone{ID: z.ID, Path: m.ID, Blocks: []string{}}
			for _, b := range z.Links.ResourceBlocks {
				zone.Blocks = append(zone.Blocks, lastSegment(b.ID))
				zoneOf[b.ID] = append(zoneOf[b.ID], z.ID)
			}
			out.Zones = append(out.Zones, zone)
		}
		coll.Members = nil
		if err := c.getJSON(cs.ResourceBlocks.ID, &coll); err != nil {
			return err
		}
		for _, m := range coll.Members {
			b, err := c.block(m.ID)
			if err != nil {
				return err
			}
			b.Zones = zoneOf[m.ID]
			if b.Zones == nil {
				b.Zones = []string{}
			}
			out.Blocks = append(out.Blocks, *b)
		}
		return nil
	})
	if err != nil {
		return nil, c.classify("read the CompositionService", err)
	}
	return out, nil
}

// block reads one ResourceBlock and what it provides: processors'
// cores, memory and drive capacity.
func (c *Conn) block(path string) (*ironpool.ResourceBlock, error) {
	var rb struct {
		ID                string `json:"Id"`
		ResourceBlockType []string
		CompositionStatus struct{ CompositionState string }
		Processors        []odataLink
		Memory            []odataLink
		Drives            []odataLink
		Storage           []odataLink
	}
	if err := c.getJSON(path, &rb); err != nil {
		return nil, err
	}
	b := &ironpool.ResourceBlock{ID: rb.ID, Path: path, Types: rb.ResourceBlockType, State: rb.CompositionStatus.CompositionState}
	if b.Types == nil {
		b.Types = []string{}
	}
	for _, p := range rb.Processors {
		var v struct{ TotalCores int }
		if err := c.getJSON(p.ID, &v); err != nil {
			return nil, err
		}
		b.CPUs += max(v.TotalCores, 1)
	}
	for _, m := range rb.Memory {
		var v struct{ CapacityMiB int64 }
		if err := c.getJSON(m.ID, &v); err != nil {
			return nil, err
		}
		b.MemoryMB += v.CapacityMiB
	}
	var largest int64
	for _, d := range rb.Drives {
		var v struct{ CapacityBytes int64 }
		if err := c.getJSON(d.ID, &v); err != nil {
			return nil, err
		}
		largest = max(largest, v.CapacityBytes)
	}
	b.LocalGB = largest / (1 << 30)
	return b, nil
}

// Compose POSTs a new system to the Systems collection with
// Links.ResourceBlocks and reads it back from the Location the service
// answers with.
func (c *Conn) Compose(ctx context.Context, req ironpool.ComposeRequest) (*ironpool.Hardware, error) {
	var hw *ironpool.Hardware
	err := c.bounded(ctx, func() error {
		links := []odataLink{}
		for _, b := range req.Blocks {
			links = append(links, odataLink{ID: "/redfish/v1/CompositionService/ResourceBlocks/" + b})
		}
		body := map[string]any{"Name": req.Name, "Links": map[string]any{"ResourceBlocks": links}}
		resp, err := c.api.Post("/redfish/v1/Systems", body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			return ironpool.Errorf(ironpool.ECONFLICT, "Redfish service %s composed no system (no Location in its answer)", c.ep.Root)
		}
		if u, err := url.Parse(loc); err == nil {
			loc = u.Path
		}
		sys, err := redfish.GetComputerSystem(c.api, loc)
		if err != nil {
			return err
		}
		hw, err = c.hardware(sys)
		if err == nil {
			hw.Composed = true
		}
		return err
	})
	if err != nil {
		return nil, c.classify("compose a system", err)
	}
	return hw, nil
}

// Decompose DELETEs a composed system, given its BMC address.
func (c *Conn) Decompose(ctx context.Context, address string) error {
	ep, err := ironpool.ParseBMCEndpoint("bmc.address", address)
	if err != nil {
		return err
	}
	if ep.Root != c.ep.Root || ep.System == "" {
		return ironpool.FieldErrorf("bmc.address", "is not a system of %s", c.ep.Root)
	}
	err = c.bounded(ctx, func() error {
		resp, err := c.api.Delete(ep.System)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if err != nil {
		return c.classify("decompose "+ep.System, err)
	}
	return nil
}

// Close logs the session out (deleting it on the service).
func (c *Conn) Close() error {
	if c.api != nil && c.session {
		done := make(chan struct{})
		go func() { c.api.Logout(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

var _ ironpool.BMCAccounts = (*Conn)(nil)

// CreateAccount POSTs a ManagerAccount with RoleId Operator to the
// AccountService and returns its URI (the Location answered).
func (c *Conn) CreateAccount(ctx context.Context, username, password string) (string, error) {
	var ref string
	err := c.bounded(ctx, func() error {
		var root struct{ AccountService *odataLink }
		if err := c.getJSON("/redfish/v1", &root); err != nil {
			return err
		}
		if root.AccountService == nil {
			return ironpool.Errorf(ironpool.ECONFLICT, "Redfish service %s has no AccountService", c.ep.Root)
		}
		var as struct{ Accounts odataLink }
		if err := c.getJSON(root.AccountService.ID, &as); err != nil {
			return err
		}
		resp, err := c.api.Post(as.Accounts.ID, map[string]any{"UserName": username, "Password": password, "RoleId": "Operator", "Enabled": true})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		ref = resp.Header.Get("Location")
		if ref == "" {
			var body odataLink
			_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
			ref = body.ID
		}
		if u, err := url.Parse(ref); err == nil && u.Path != "" {
			ref = u.Path
		}
		if ref == "" {
			return ironpool.Errorf(ironpool.ECONFLICT, "Redfish service %s created an account but did not say where", c.ep.Root)
		}
		return nil
	})
	if err != nil {
		return "", c.classify("create account "+username, err)
	}
	return ref, nil
}

// DeleteAccount DELETEs the account URI; one already gone is success.
func (c *Conn) DeleteAccount(ctx context.Context, ref string) error {
	if !strings.HasPrefix(ref, "/redfish/v1/") {
		return ironpool.FieldErrorf("account", "%q is not an account of this service", ref)
	}
	err := c.bounded(ctx, func() error {
		resp, err := c.api.Delete(ref)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	if err != nil && status(err) != http.StatusNotFound {
		return c.classify("delete account", err)
	}
	return nil
}
