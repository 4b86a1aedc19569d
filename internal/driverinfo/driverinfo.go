// Package driverinfo is the one mapping between ironpool's BMC URL and
// Ironic's driver plus driver_info, both ways. Registration (internal/ironic),
// Ironic sync, the node-file import (internal/cli) and the `-o ironic`
// handoff all use it, so a BMC reads the same wherever it comes from; it has
// no Ironic client dependency so the CLI and handoff can use it too.
//
// The forms are:
//
//	ipmi://host[:port]                ↔ driver ipmi: ipmi_address, ipmi_port,
//	                                    ipmi_username, ipmi_password
//	redfish+https://host[:port]/path  ↔ driver redfish: redfish_address
//	redfish://host[:port]/path          (https://host[:port]), redfish_system_id
//	redfish+http://host[:port]/path     (/path), redfish_username, redfish_password
//
// A bare redfish:// means https, as it does for Ironic's redfish_address
// without a scheme; it reads back as redfish+https://.
//
// Address options travel too: ipmi://…?cipher=3 ↔ ipmi_cipher_suite, and
// redfish+https://…?verify=false ↔ redfish_verify_ca: false. Vendor drivers
// whose controllers also speak Redfish (ilo: ilo_address, irmc:
// irmc_address, ibmc: ibmc_address) read as redfish+https://HOST, the
// service root, whose one system the Redfish client finds; xclarity
// (a management server, not a BMC) and anything else without a known key
// gives no BMC, and the node is still imported when Ironic drives it.
package driverinfo

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	"github.com/ironpool/ironpool"
)

// FromBMC returns the Ironic driver and driver_info for a BMC. Empty
// usernames and passwords are left out rather than sent as "". Returns
// EINVALID naming bmc.address for an address ParseBMCAddress refuses.
func FromBMC(bmc ironpool.BMC) (driver string, info map[string]any, err error) {
	u, err := ironpool.ParseBMCAddress("bmc.address", bmc.Address)
	if err != nil {
		return "", nil, err
	}
	switch ironpool.BMCSchemes[u.Scheme] {
	case "ipmi":
		info = map[string]any{"ipmi_address": u.Hostname()}
		if p := u.Port(); p != "" {
			port, _ := strconv.Atoi(p) // ParseBMCAddress checked the range
			info["ipmi_port"] = port
		}
		setIf(info, "ipmi_username", bmc.Username)
		setIf(info, "ipmi_password", bmc.Password)
		if c := u.Query().Get("cipher"); c != "" {
			n, _ := strconv.Atoi(c) // ParseBMCEndpoint refused anything but 3 and 17
			info["ipmi_cipher_suite"] = n
		}
		return "ipmi", info, nil
	case "redfish":
		scheme := "https"
		if s, ok := strings.CutPrefix(u.Scheme, "redfish+"); ok {
			scheme = s
		}
		info = map[string]any{"redfish_address": scheme + "://" + u.Host}
		setIf(info, "redfish_system_id", strings.TrimSuffix(u.EscapedPath(), "/"))
		setIf(info, "redfish_username", bmc.Username)
		setIf(info, "redfish_password", bmc.Password)
		if v := u.Query().Get("verify"); v == "false" {
			info["redfish_verify_ca"] = false
		}
		return "redfish", info, nil
	}
	return "", nil, ironpool.FieldErrorf("bmc.address", "scheme %q has no Ironic driver", u.Scheme)
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// family is how ironpool reaches the BMC of an Ironic driver.
type family int

const (
	byKeys  family = iota // fake-hardware, manual-management, drivers ironpool does not drive
	ipmi                  // ipmi, intel-ipmi: ipmi_* keys
	redfish               // redfish, idrac (its Redfish interfaces): redfish_* keys
)

func familyOf(driver string) family {
	switch {
	case strings.Contains(driver, "ipmi"):
		return ipmi
	case strings.HasPrefix(driver, "redfish"), strings.HasPrefix(driver, "idrac"):
		return redfish
	}
	return byKeys
}

// ToBMC builds ironpool's BMC from an Ironic driver and driver_info. IPMI
// drivers need ipmi_address, Redfish drivers (redfish, idrac) need
// redfish_address; any other driver (fake-hardware, or one ironpool does not
// drive) is read by the keys present, Redfish first. A password Ironic
// shows masked ("******") is left empty. Values may be strings or numbers,
// as JSON and YAML give them. Returns EINVALID naming the driver_info key
// that is missing or wrong.
func ToBMC(driver string, di map[string]any) (ironpool.BMC, error) {
	switch familyOf(driver) {
	case ipmi:
		return fromIPMI(driver, di)
	case redfish:
		return fromRedfish(driver, di)
	}
	if has(di, "redfish_address") {
		return fromRedfish(driver, di)
	}
	if has(di, "ipmi_address") {
		return fromIPMI(driver, di)
	}
	for _, k := range []string{"ilo_address", "irmc_address", "ibmc_address"} {
		if has(di, k) {
			return fromVendor(driver, di, strings.TrimSuffix(k, "_address"))
		}
	}
	what := "driver_info"
	if driver != "" {
		what = fmt.Sprintf("driver %q", driver)
	}
	return ironpool.BMC{}, ironpool.FieldErrorf("driver_info",
		"has neither redfish_address nor ipmi_address; ironpool reaches a BMC by Redfish or IPMI, and %s gives neither", what)
}

func has(di map[string]any, k string) bool {
	v, err := text(di, k)
	return err == nil && v != ""
}

func fromRedfish(driver string, di map[string]any) (ironpool.BMC, error) {
	addr, err := text(di, "redfish_address")
	if err != nil {
		return ironpool.BMC{}, err
	}
	if addr == "" {
		msg := fmt.Sprintf("is required for driver %q", driver)
		if has(di, "drac_address") {
			msg += " (ironpool reaches an iDRAC through Redfish; the WS-Man drac_* keys are not supported)"
		}
		return ironpool.BMC{}, ironpool.FieldErrorf("driver_info.redfish_address", "%s", msg)
	}
	scheme, hostport, ok := strings.Cut(addr, "://")
	if !ok {
		scheme, hostport = "https", addr
	}
	scheme = strings.ToLower(scheme)
	if scheme != "https" && scheme != "http" {
		return ironpool.BMC{}, ironpool.FieldErrorf("driver_info.redfish_address", "scheme %q is not https or http", truncate(scheme, 20))
	}
	sys, err := text(di, "redfish_system_id")
	if err != nil {
		return ironpool.BMC{}, err
	}
	if sys = strings.TrimSuffix(sys, "/"); sys != "" && !strings.HasPrefix(sys, "/") {
		sys = "/" + sys
	}
	b := ironpool.BMC{Address: "redfish+" + scheme + "://" + strings.TrimSuffix(hostport, "/") + sys}
	if noVerify(di["redfish_verify_ca"]) {
		b.Address += "?verify=false"
	}
	if _, err := ironpool.ParseBMCAddress("driver_info.redfish_address", b.Address); err != nil {
		return ironpool.BMC{}, err
	}
	return credentials(b, di, "redfish_username", "redfish_password")
}

// fromVendor reads a vendor driver whose controller speaks Redfish at its
// address (prefix_address, a host or an https URL) with prefix_username and
// prefix_password.
func fromVendor(driver string, di map[string]any, prefix string) (ironpool.BMC, error) {
	addr, err := text(di, prefix+"_address")
	if err != nil {
		return ironpool.BMC{}, err
	}
	host := addr
	if _, rest, ok := strings.Cut(addr, "://"); ok {
		host = rest
	}
	host, _, _ = strings.Cut(host, "/")
	b := ironpool.BMC{Address: "redfish+https://" + host}
	if _, err := ironpool.ParseBMCAddress("driver_info."+prefix+"_address", b.Address); err != nil {
		return ironpool.BMC{}, err
	}
	return credentials(b, di, prefix+"_username", prefix+"_password")
}

func fromIPMI(driver string, di map[string]any) (ironpool.BMC, error) {
	host, err := text(di, "ipmi_address")
	if err != nil {
		return ironpool.BMC{}, err
	}
	if host == "" {
		return ironpool.BMC{}, ironpool.FieldErrorf("driver_info.ipmi_address", "is required for driver %q", driver)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	port, err := text(di, "ipmi_port")
	if err != nil {
		return ironpool.BMC{}, err
	}
	switch {
	case port != "":
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return ironpool.BMC{}, ironpool.FieldErrorf("driver_info.ipmi_port", "%q is not a port (1-65535)", truncate(port, 10))
		}
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	b := ironpool.BMC{Address: "ipmi://" + host}
	suite, err := text(di, "ipmi_cipher_suite")
	if err != nil {
		return ironpool.BMC{}, err
	}
	if suite != "" {
		b.Address += "?cipher=" + suite
	}
	if _, err := ironpool.ParseBMCEndpoint("driver_info.ipmi_address", b.Address); err != nil {
		return ironpool.BMC{}, err
	}
	return credentials(b, di, "ipmi_username", "ipmi_password")
}

func credentials(b ironpool.BMC, di map[string]any, user, pass string) (ironpool.BMC, error) {
	var err error
	if b.Username, err = text(di, user); err != nil {
		return ironpool.BMC{}, err
	}
	if b.Password, err = text(di, pass); err != nil {
		return ironpool.BMC{}, err
	}
	if b.Password == ironpool.MaskedSecret {
		b.Password = "" // Ironic never shows it; the pool keeps its own
	}
	return b, nil
}

// text reads a driver_info value that Ironic (JSON) or a node file (YAML)
// may hold as a string or a number. The error never repeats the value: it
// may be a password.
func text(di map[string]any, k string) (string, error) {
	switch v := di[k].(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case json.Number:
		return v.String(), nil
	case int, int64, int32, uint, uint64, uint32:
		return fmt.Sprint(v), nil
	}
	return "", ironpool.FieldErrorf("driver_info."+k, "want a string or a number")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// noVerify reports whether redfish_verify_ca turns verification off (false,
// as a boolean or in words); a CA bundle path or true keeps it on.
func noVerify(v any) bool {
	switch v := v.(type) {
	case bool:
		return !v
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "false", "no", "0", "off":
			return true
		}
	}
	return false
}
