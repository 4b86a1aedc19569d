// Package ipmi drives a node's BMC over IPMI 2.0 (RMCP+, "lanplus") with
// github.com/bougou/go-ipmi: power, boot device and the little inspection
// IPMI offers. It speaks only cipher suites 17 and 3 and never IPMI 1.5's
// plain LAN: suite 0 lets anyone in without the password, and RAKP over
// plain LAN leaks enough to crack it offline.
package ipmi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ironpool/ironpool"
)

// Conn is one RMCP+ session with one BMC. It implements
// ironpool.BMCClient.
type Conn struct {
	c        *client.Client
	ep       *ironpool.BMCEndpoint
	user     string
	password string
}

var _ ironpool.BMCClient = (*Conn)(nil)

// Dial opens an RMCP+ session to the BMC bmc describes, with the cipher
// suite its address names (17 unless ?cipher=3). The session opens within
// the endpoint's timeout or the call fails with EUNAVAILABLE.
func Dial(ctx context.Context, bmc ironpool.BMC) (*Conn, error) {
	ep, err := ironpool.ParseBMCEndpoint("bmc.address", bmc.Address)
	if err != nil {
		return nil, err
	}
	if ep.Driver != "ipmi" {
		return nil, ironpool.FieldErrorf("bmc.address", "is not an ipmi address")
	}
	if ep.Cipher != ironpool.IPMICipherDefault && ep.Cipher != ironpool.IPMICipherSHA1 {
		// ParseBMCEndpoint refuses these already; this guards the one
		// place that opens sessions against a future option slipping by.
		return nil, ironpool.FieldErrorf("bmc.address", "cipher suite %d is refused", ep.Cipher)
	}
	c, err := client.NewClient(ep.Host, ep.Port, bmc.Username, bmc.Password)
	if err != nil {
		return nil, ironpool.FieldErrorf("bmc.username", "is longer than IPMI allows (16 bytes)")
	}
	// Each UDP exchange waits up to 1s and retries twice, so an absent BMC
	// fails within a few seconds, bounded again by the endpoint timeout.
	c.WithInterface(client.InterfaceLanplus).
		WithCipherSuiteID(types.CipherSuiteID(ep.Cipher)).
		WithTimeout(time.Second).WithRetry(2)
	conn := &Conn{c: c, ep: ep, user: bmc.Username, password: bmc.Password}
	err = conn.bounded(ctx, func(ctx context.Context) error { return c.Connect(ctx) })
	if err != nil {
		return nil, conn.classify("open session", err)
	}
	return conn, nil
}

// bounded runs fn under the endpoint's timeout.
func (c *Conn) bounded(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.ep.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// classify turns a go-ipmi error into an ironpool error that names the
// BMC and the user but never the password (scrubbed even if a library
// message ever quoted it).
func (c *Conn) classify(op string, err error) error {
	msg := err.Error()
	if c.password != "" {
		msg = strings.ReplaceAll(msg, c.password, ironpool.MaskedSecret)
	}
	where := fmt.Sprintf("IPMI BMC %s:%d", c.ep.Host, c.ep.Port)
	var nerr net.Error
	low := strings.ToLower(msg)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nerr) && nerr.Timeout() ||
		strings.Contains(low, "timeout") || strings.Contains(low, "i/o timeout"):
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s did not answer (%s)", where, op)
	case strings.Contains(low, "connection refused"):
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s refused the connection (%s)", where, op)
	case strings.Contains(low, "rakp") && (strings.Contains(low, "unauthorized") || strings.Contains(low, "invalid") ||
		strings.Contains(low, "integrity") || strings.Contains(low, "name")),
		strings.Contains(low, "rakp2") || strings.Contains(low, "rakp4"):
		return &ironpool.Error{Code: ironpool.EINVALID, Field: "bmc.password",
			Message: fmt.Sprintf("%s refused the credentials of user %q", where, c.user)}
	case strings.Contains(low, "cipher"):
		return ironpool.Errorf(ironpool.ECONFLICT, "%s does not offer cipher suite %d", where, c.ep.Cipher)
	}
	return ironpool.Errorf(ironpool.EUNAVAILABLE, "%s: %s failed: %s", where, op, firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// Power runs a chassis control command and reads the power state back.
// Reboot is a power cycle when the machine is on and a power up when it
// is off, as Ironic's ipmitool driver does.
func (c *Conn) Power(ctx context.Context, action ironpool.PowerAction) (ironpool.PowerState, error) {
	if err := action.Validate(); err != nil {
		return "", err
	}
	var state ironpool.PowerState
	err := c.bounded(ctx, func(ctx context.Context) error {
		st, err := c.c.GetChassisStatus(ctx)
		if err != nil {
			return err
		}
		on := st.PowerIsOn
		var ctl chassis.ChassisControl = 255
		switch {
		case action == ironpool.PowerOn && !on, action == ironpool.PowerReboot && !on:
			ctl = chassis.ChassisControlPowerUp
		case action == ironpool.PowerOff && on:
			ctl = chassis.ChassisControlPowerDown
		case action == ironpool.PowerReboot:
			ctl = chassis.ChassisControlPowerCycle
		}
		if ctl != 255 {
			if _, err := c.c.ChassisControl(ctx, ctl); err != nil {
				return err
			}
			st, err = c.c.GetChassisStatus(ctx)
			if err != nil {
				return err
			}
		}
		state = ironpool.PowerStateOff
		if st.PowerIsOn {
			state = ironpool.PowerStateOn
		}
		return nil
	})
	if err != nil {
		return "", c.classify("power "+string(action), err)
	}
	return state, nil
}

var bootSelectors = map[ironpool.BootDevice]types.BootDeviceSelector{
	ironpool.BootPXE:  types.BootDeviceSelectorForcePXE,
	ironpool.BootDisk: types.BootDeviceSelectorForceHardDrive,
	ironpool.BootBIOS: types.BootDeviceSelectorForceBIOSSetup,
}

// SetBootDevice sets the boot flags (legacy BIOS boot type; persistent
// unless once).
func (c *Conn) SetBootDevice(ctx context.Context, dev ironpool.BootDevice, once bool) error {
	if err := dev.Validate(); err != nil {
		return err
	}
	err := c.bounded(ctx, func(ctx context.Context) error {
		return c.c.SetBootDevice(ctx, bootSelectors[dev], types.BIOSBootTypeLegacy, !once)
	})
	if err != nil {
		return c.classify("set boot device", err)
	}
	return nil
}

// Inspect reads what IPMI can tell: Get Device ID (manufacturer and
// product ids, firmware and IPMI versions) and the system GUID where the
// BMC has one. IPMI carries no CPU, memory or disk inventory, so those
// stay zero and the caller keeps what it had.
func (c *Conn) Inspect(ctx context.Context) (*ironpool.Hardware, error) {
	hw := &ironpool.Hardware{MACs: []string{}, Fields: map[string]string{}}
	err := c.bounded(ctx, func(ctx context.Context) error {
		id, err := c.c.GetDeviceID(ctx)
		if err != nil {
			return err
		}
		hw.Fields["ipmi_manufacturer_id"] = fmt.Sprint(id.ManufacturerID)
		hw.Fields["ipmi_product_id"] = fmt.Sprint(id.ProductID)
		hw.Fields["ipmi_firmware"] = fmt.Sprintf("%d.%02x", id.MajorFirmwareRevision, id.MinorFirmwareRevision)
		hw.Fields["ipmi_version"] = fmt.Sprintf("%d.%d", id.MajorIPMIVersion, id.MinorIPMIVersion)
		// Not every BMC answers Get System GUID (it is optional).
		if g, err := c.c.GetSystemGUID(ctx); err == nil {
			hw.UUID = guidString(g.GUID)
		}
		return nil
	})
	if err != nil {
		return nil, c.classify("get device id", err)
	}
	return hw, nil
}

// guidString formats an IPMI GUID, stored least-significant byte first in
// each field (IPMI 2.0 §20.8), as the usual string form.
func guidString(g [16]byte) string {
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		g[15], g[14], g[13], g[12], g[11], g[10], g[9], g[8], g[7], g[6], g[5], g[4], g[3], g[2], g[1], g[0])
}

// Close ends the session.
func (c *Conn) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.c.Close(ctx)
}

var _ ironpool.BMCAccounts = (*Conn)(nil)

// CreateAccount takes a free user slot (no name, not the null user 1):
// Set User Name, Set User Password, Set User Access (operator, IPMI
// messaging on) on the current channel, Enable User. The reference is
// "slot:ID:NAME", so deletion can check the slot still holds this user.
func (c *Conn) CreateAccount(ctx context.Context, username, password string) (string, error) {
	if len(username) > 16 || len(password) > 16 {
		return "", ironpool.FieldErrorf("username", "IPMI user names and passwords are at most 16 bytes")
	}
	var ref string
	err := c.bounded(ctx, func(ctx context.Context) error {
		users, err := c.c.GetUsers(ctx, types.ChannelNumberSelf)
		if err != nil {
			return err
		}
		var slot uint8
		for _, u := range users {
			if u.ID > 1 && strings.TrimRight(u.Name, "\x00 ") == "" {
				slot = u.ID
				break
			}
		}
		if slot == 0 {
			return ironpool.Errorf(ironpool.ECONFLICT, "IPMI BMC %s:%d has no free user slot", c.ep.Host, c.ep.Port)
		}
		if _, err := c.c.SetUsername(ctx, slot, username); err != nil {
			return err
		}
		if _, err := c.c.SetUserPassword(ctx, slot, password, false); err != nil {
			return err
		}
		if _, err := c.c.SetUserAccess(ctx, &app.SetUserAccessRequest{EnableChanging: true, EnableLinkAuth: true, EnableIPMIMessaging: true,
			ChannelNumber: types.ChannelNumberSelf, UserID: slot, MaxPrivLevel: uint8(types.PrivilegeLevelOperator)}); err != nil {
			return err
		}
		if err := c.c.EnableUser(ctx, slot); err != nil {
			return err
		}
		ref = fmt.Sprintf("slot:%d:%s", slot, username)
		return nil
	})
	if err != nil {
		return "", c.classify("create user "+username, err)
	}
	return ref, nil
}

// DeleteAccount empties the slot if it still holds the user: disabled,
// no access, a random password, no name. A slot now holding someone else
// is left alone.
func (c *Conn) DeleteAccount(ctx context.Context, ref string) error {
	var slot int
	var name string
	if parts := strings.SplitN(ref, ":", 3); len(parts) == 3 && parts[0] == "slot" {
		fmt.Sscan(parts[1], &slot)
		name = parts[2]
	}
	if slot < 2 || slot > 63 || name == "" {
		return ironpool.FieldErrorf("account", "%q is not an IPMI user slot reference", ref)
	}
	id := uint8(slot)
	err := c.bounded(ctx, func(ctx context.Context) error {
		u, err := c.c.GetUsername(ctx, id)
		if err != nil {
			return err
		}
		if strings.TrimRight(u.Username, "\x00 ") != name {
			return nil // gone already, or the slot was reused
		}
		if err := c.c.DisableUser(ctx, id); err != nil {
			return err
		}
		if _, err := c.c.SetUserAccess(ctx, &app.SetUserAccessRequest{EnableChanging: true, ChannelNumber: types.ChannelNumberSelf,
			UserID: id, MaxPrivLevel: 0x0f}); err != nil {
			return err
		}
		if _, err := c.c.SetUserPassword(ctx, id, randomPassword(), false); err != nil {
			return err
		}
		_, err = c.c.SetUsername(ctx, id, "")
		return err
	})
	if err != nil {
		return c.classify("delete user "+name, err)
	}
	return nil
}

func randomPassword() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
