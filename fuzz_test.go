package ironpool_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

// FuzzParseBMCAddress checks that the BMC URL parser never panics on
// hostile input, and that whatever it accepts is a sane BMC address: a
// known driver scheme, a host, no credentials, a port in range, and a
// string form that parses again to the same scheme, host and port (so the
// address stored is the address used).
func FuzzParseBMCAddress(f *testing.F) {
	for _, s := range []string{
		"ipmi://10.0.0.5:623", "ipmi://bmc1.example.com", "redfish+https://10.0.0.5/redfish/v1/Systems/1",
		"redfish://[fe80::1%25eth0]:443/x", "redfish+http://h:0", "ipmi://user:pw@h", "ipmi://h:99999",
		"ipmi://:623", "ipmi://h:", "IPMI://h", "ipmi:///path", "ipmi://h/../../etc", "redfish+https://h?x=%zz",
		"ipmi://h\n.example", "file:///etc/passwd", "", strings.Repeat("a", 2000),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		u, err := ironpool.ParseBMCAddress("bmc.address", addr)
		if err != nil {
			if ironpool.ErrorCode(err) != ironpool.EINVALID {
				t.Fatalf("%q: error code %q, want invalid", addr, ironpool.ErrorCode(err))
			}
			var e *ironpool.Error
			if !errors.As(err, &e) || e.Field != "bmc.address" {
				t.Fatalf("%q: error does not name the field: %v", addr, err)
			}
			return
		}
		if _, ok := ironpool.BMCSchemes[u.Scheme]; !ok {
			t.Fatalf("%q: accepted scheme %q", addr, u.Scheme)
		}
		if u.Hostname() == "" || u.User != nil || strings.ContainsAny(u.Hostname(), " \t\r\n") {
			t.Fatalf("%q: accepted host %q user %v", addr, u.Hostname(), u.User)
		}
		again, err := ironpool.ParseBMCAddress("bmc.address", u.String())
		if err != nil {
			t.Fatalf("%q: accepted, but its string form %q is refused: %v", addr, u.String(), err)
		}
		if again.Scheme != u.Scheme || again.Hostname() != u.Hostname() || again.Port() != u.Port() {
			t.Fatalf("%q: round trip changed the address: %s → %s", addr, u, again)
		}
		if _, err := url.Parse(u.String()); err != nil {
			t.Fatalf("%q: string form does not parse: %v", addr, err)
		}
	})
}

// FuzzParseConstraints checks that the --constraint parser never panics,
// that what it accepts is valid, and that the canonical form it prints
// parses back to the same constraints (flavors are shown in that form and
// users paste it back).
func FuzzParseConstraints(f *testing.F) {
	for _, s := range []string{
		"cpus>=16,memory_mb>=65536,arch=x86_64,trait=CUSTOM_GPU,pool=ci", "", "any", "cpus>=-1",
		"cpus>=99999999999999999999", "trait=custom_gpu,trait=CUSTOM_GPU", "resource_class=baremetal.gold",
		"pool=../x", "cpus=>4", "=,=,>=", "arch=X86", "local_gb>=0,local_gb>=5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ironpool.ParseConstraints("constraint", s)
		if err != nil {
			if ironpool.ErrorCode(err) != ironpool.EINVALID {
				t.Fatalf("%q: error code %q, want invalid", s, ironpool.ErrorCode(err))
			}
			return
		}
		if err := c.Validate(""); err != nil {
			t.Fatalf("%q: accepted constraints do not validate: %v", s, err)
		}
		str := c.String()
		if str == "any" {
			str = ""
		}
		again, err := ironpool.ParseConstraints("constraint", str)
		if err != nil {
			t.Fatalf("%q: canonical form %q is refused: %v", s, str, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("%q: round trip through %q changed %+v into %+v", s, str, c, again)
		}
	})
}
