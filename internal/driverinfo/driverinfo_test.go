package driverinfo

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

// TestRoundTrip checks BMC → driver_info → BMC for every BMC scheme, both
// with the values as FromBMC makes them (ints, as a node file gives them)
// and as Ironic hands them back (numbers as float64, the password masked).
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		addr, driver string
		info         map[string]any
		back         string // what ToBMC rebuilds; "" means addr
	}{
		{"ipmi://127.0.0.1:623", "ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": 623, "ipmi_username": "root", "ipmi_password": "pw"}, ""},
		{"ipmi://bmc.example", "ipmi", map[string]any{"ipmi_address": "bmc.example", "ipmi_username": "root", "ipmi_password": "pw"}, ""},
		{"ipmi://[::1]:6230", "ipmi", map[string]any{"ipmi_address": "::1", "ipmi_port": 6230, "ipmi_username": "root", "ipmi_password": "pw"}, ""},
		{"ipmi://[::1]", "ipmi", map[string]any{"ipmi_address": "::1", "ipmi_username": "root", "ipmi_password": "pw"}, ""},
		{"redfish+https://127.0.0.1/redfish/v1/Systems/1", "redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_system_id": "/redfish/v1/Systems/1", "redfish_username": "root", "redfish_password": "pw"}, ""},
		{"redfish+http://127.0.0.1:8000/redfish/v1/Systems/abc", "redfish", map[string]any{"redfish_address": "http://127.0.0.1:8000", "redfish_system_id": "/redfish/v1/Systems/abc", "redfish_username": "root", "redfish_password": "pw"}, ""},
		{"redfish://127.0.0.1/redfish/v1/Systems/1", "redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_system_id": "/redfish/v1/Systems/1", "redfish_username": "root", "redfish_password": "pw"}, "redfish+https://127.0.0.1/redfish/v1/Systems/1"},
		{"redfish+https://[::1]:8443/redfish/v1/Systems/1/", "redfish", map[string]any{"redfish_address": "https://[::1]:8443", "redfish_system_id": "/redfish/v1/Systems/1", "redfish_username": "root", "redfish_password": "pw"}, "redfish+https://[::1]:8443/redfish/v1/Systems/1"},
		{"redfish+https://127.0.0.1", "redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_username": "root", "redfish_password": "pw"}, ""},
		// Address options: what `node register` must tell Ironic too.
		{"ipmi://127.0.0.1:623?cipher=3", "ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_cipher_suite": 3, "ipmi_port": 623, "ipmi_username": "root", "ipmi_password": "pw"}, ""},
		{"redfish+https://127.0.0.1/redfish/v1/Systems/1?verify=false", "redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_password": "pw", "redfish_system_id": "/redfish/v1/Systems/1", "redfish_username": "root", "redfish_verify_ca": false}, ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			driver, info, err := FromBMC(ironpool.BMC{Address: tc.addr, Username: "root", Password: "pw"})
			if err != nil {
				t.Fatal(err)
			}
			if driver != tc.driver || fmt.Sprint(info) != fmt.Sprint(tc.info) {
				t.Errorf("FromBMC = %s %v, want %s %v", driver, info, tc.driver, tc.info)
			}
			want := tc.back
			if want == "" {
				want = tc.addr
			}
			// As a node file gives it back: the values FromBMC made.
			b, err := ToBMC(driver, info)
			if err != nil || b != (ironpool.BMC{Address: want, Username: "root", Password: "pw"}) {
				t.Errorf("ToBMC(%s, FromBMC) = %+v, %v; want %s root pw", driver, b, err, want)
			}
			// As Ironic gives it back: numbers as float64, the password
			// masked, and read by keys for the fake-hardware driver.
			back := map[string]any{}
			for k, v := range info {
				if n, ok := v.(int); ok {
					v = float64(n)
				}
				if strings.HasSuffix(k, "_password") {
					v = ironpool.MaskedSecret
				}
				back[k] = v
			}
			for _, d := range []string{driver, "fake-hardware"} {
				b, err := ToBMC(d, back)
				if err != nil || b != (ironpool.BMC{Address: want, Username: "root"}) {
					t.Errorf("ToBMC(%s, Ironic's view) = %+v, %v; want %s root and no password", d, b, err, want)
				}
			}
		})
	}
	if _, _, err := FromBMC(ironpool.BMC{Address: "ftp://x"}); ironpool.ErrorCode(err) != ironpool.EINVALID {
		t.Errorf("FromBMC(ftp) error = %v, want EINVALID", err)
	}
}

// TestFromBMCOmitsEmptyCredentials checks that a BMC without username or
// password gives driver_info without the keys (register did so; the
// `-o ironic` export used to write them as "").
func TestFromBMCOmitsEmptyCredentials(t *testing.T) {
	_, info, err := FromBMC(ironpool.BMC{Address: "ipmi://127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(info); got != "map[ipmi_address:127.0.0.1]" {
		t.Errorf("driver_info = %s, want only ipmi_address", got)
	}
}

// TestToBMCDrivers checks how each driver's driver_info is read, and that
// an error names the key the driver needs, not another driver's.
func TestToBMCDrivers(t *testing.T) {
	for _, tc := range []struct {
		driver  string
		info    map[string]any
		want    string // the address, or the error text
		wantErr bool
	}{
		{"ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": "6230"}, "ipmi://127.0.0.1:6230", false},
		{"ipmi", map[string]any{"ipmi_address": "[::1]"}, "ipmi://[::1]", false},
		{"intel-ipmi", map[string]any{"ipmi_address": "127.0.0.1"}, "ipmi://127.0.0.1", false},
		// An IPMI driver goes by its own keys even when Redfish keys are there.
		{"ipmi", map[string]any{"ipmi_address": "127.0.0.1", "redfish_address": "https://127.0.0.1"}, "ipmi://127.0.0.1", false},
		{"redfish", map[string]any{"redfish_address": "127.0.0.1:8443", "redfish_system_id": "redfish/v1/Systems/1"}, "redfish+https://127.0.0.1:8443/redfish/v1/Systems/1", false},
		{"redfish", map[string]any{"redfish_address": "HTTP://127.0.0.1/"}, "redfish+http://127.0.0.1", false},
		{"idrac", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_system_id": "/redfish/v1/Systems/System.Embedded.1"}, "redfish+https://127.0.0.1/redfish/v1/Systems/System.Embedded.1", false},
		{"fake-hardware", map[string]any{"ipmi_address": "127.0.0.1", "redfish_address": "https://127.0.0.1"}, "redfish+https://127.0.0.1", false},
		{"manual-management", map[string]any{"ipmi_address": "127.0.0.1"}, "ipmi://127.0.0.1", false},

		{"ipmi", map[string]any{"redfish_address": "https://127.0.0.1"}, `driver_info.ipmi_address: is required for driver "ipmi"`, true},
		{"ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": 70000}, `driver_info.ipmi_port: "70000" is not a port (1-65535)`, true},
		{"ipmi", map[string]any{"ipmi_address": []any{"127.0.0.1"}}, `driver_info.ipmi_address: want a string or a number`, true},
		{"redfish", map[string]any{"ipmi_address": "127.0.0.1"}, `driver_info.redfish_address: is required for driver "redfish"`, true},
		{"idrac", map[string]any{"drac_address": "127.0.0.1"}, `driver_info.redfish_address: is required for driver "idrac" (ironpool reaches an iDRAC through Redfish; the WS-Man drac_* keys are not supported)`, true},
		{"redfish", map[string]any{"redfish_address": "ftp://127.0.0.1"}, `driver_info.redfish_address: scheme "ftp" is not https or http`, true},
		// Vendor controllers that speak Redfish read as its service root.
		{"ilo", map[string]any{"ilo_address": "127.0.0.1", "ilo_username": "admin"}, "redfish+https://127.0.0.1", false},
		{"irmc", map[string]any{"irmc_address": "127.0.0.1:8443"}, "redfish+https://127.0.0.1:8443", false},
		{"ibmc", map[string]any{"ibmc_address": "https://127.0.0.1/redfish"}, "redfish+https://127.0.0.1", false},
		// Address options travel with the address.
		{"ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_cipher_suite": 3}, "ipmi://127.0.0.1?cipher=3", false},
		{"redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_verify_ca": false}, "redfish+https://127.0.0.1?verify=false", false},
		{"redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_verify_ca": "False"}, "redfish+https://127.0.0.1?verify=false", false},
		{"redfish", map[string]any{"redfish_address": "https://127.0.0.1", "redfish_verify_ca": "/etc/ca.pem"}, "redfish+https://127.0.0.1", false},
		{"ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_cipher_suite": 0}, `driver_info.ipmi_address: option cipher=0 is refused: IPMI cipher suite 0 has no authentication`, true},
		{"xclarity", map[string]any{"xclarity_manager_ip": "127.0.0.1"}, `driver_info: has neither redfish_address nor ipmi_address; ironpool reaches a BMC by Redfish or IPMI, and driver "xclarity" gives neither`, true},
		{"", nil, `driver_info: has neither redfish_address nor ipmi_address; ironpool reaches a BMC by Redfish or IPMI, and driver_info gives neither`, true},
	} {
		b, err := ToBMC(tc.driver, tc.info)
		switch {
		case tc.wantErr && (err == nil || err.Error() != tc.want || ironpool.ErrorCode(err) != ironpool.EINVALID):
			t.Errorf("ToBMC(%s, %v) = %+v, %v; want EINVALID %q", tc.driver, tc.info, b, err, tc.want)
		case !tc.wantErr && (err != nil || b.Address != tc.want):
			t.Errorf("ToBMC(%s, %v) = %+v, %v; want %s", tc.driver, tc.info, b, err, tc.want)
		}
	}
}

// TestToBMCNoSecretInError checks that a password of the wrong type is
// refused without repeating it.
func TestToBMCNoSecretInError(t *testing.T) {
	_, err := ToBMC("ipmi", map[string]any{"ipmi_address": "127.0.0.1", "ipmi_password": []any{"Zq9-secret"}})
	if err == nil || strings.Contains(err.Error(), "Zq9") {
		t.Errorf("error = %v, want one that does not repeat the password", err)
	}
}
