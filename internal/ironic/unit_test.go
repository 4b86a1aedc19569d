package ironic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ironpool/ironpool"
)

func nodeFromJSON(t *testing.T, s string) nodes.Node {
	t.Helper()
	var n nodes.Node
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// These tests need no Ironic: they cover the pure mappings and the
// client's behaviour against canned HTTP replies that a healthy Ironic
// rarely gives (locks, 503s, old versions, hangs).

func TestFaultString(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"DoubleEncoded", `{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node x could not be found.\", \"debuginfo\": null}"}`, "Node x could not be found."},
		{"InnerObject", `{"error_message": {"faultstring": "boom"}}`, "boom"},
		{"TitleDescription", `{"error_message": "{\"code\": \"406 Not Acceptable\", \"title\": \"Not Acceptable\", \"description\": \"Version 1.99 was requested but the supported range is [1.1, 1.82].\"}"}`, "Version 1.99 was requested but the supported range is [1.1, 1.82]."},
		{"PlainText", `Bad Gateway`, "Bad Gateway"},
		{"InnerPlain", `{"error_message": "just text"}`, "just text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := faultString([]byte(tc.body)); got != tc.want {
				t.Errorf("faultString = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{"1.82", "1.65", true}, {"1.65", "1.65", true}, {"1.9", "1.65", false},
		{"1.64", "1.65", false}, {"2.0", "1.65", true},
	} {
		got, err := versionAtLeast(tc.have, tc.want)
		if err != nil || got != tc.ok {
			t.Errorf("versionAtLeast(%q, %q) = %v, %v; want %v", tc.have, tc.want, got, err, tc.ok)
		}
	}
	if _, err := versionAtLeast("latest", "1.65"); err == nil {
		t.Error("versionAtLeast(latest) did not fail")
	}
}

func TestToPoolNode(t *testing.T) {
	n := nodeInfo(nodeFromJSON(t, `{"uuid":"u1","name":"n1","resource_class":"rc",
		"properties":{"cpus":"8","memory_mb":16384,"local_gb":100,"cpu_arch":"x86_64"},
		"traits":["CUSTOM_B","CUSTOM_A"],"driver":"ipmi",
		"driver_info":{"ipmi_address":"10.0.0.5","ipmi_port":623,"ipmi_username":"u","ipmi_password":"******"},
		"provision_state":"available","power_state":"power off","maintenance":true,
		"maintenance_reason":"broken fan","extra":{"managed_by":"ironpool"}}`))
	n.MACs = []string{"52:54:00:00:00:01"}
	p := ToPoolNode(n)
	if p.Name != "n1" || p.IronicUUID != "u1" || p.CPUs != 8 || p.MemoryMB != 16384 || p.LocalGB != 100 ||
		p.CPUArch != "x86_64" || p.ResourceClass != "rc" || p.ManagedBy != "ironpool" {
		t.Errorf("ToPoolNode = %+v", p)
	}
	if got, want := strings.Join(p.Traits, ","), "CUSTOM_A,CUSTOM_B"; got != want {
		t.Errorf("traits = %s, want %s", got, want)
	}
	if p.BMC.Address != "ipmi://10.0.0.5:623" || p.BMC.Username != "u" || p.BMC.Password != "" {
		t.Errorf("BMC = %+v", p.BMC)
	}
	if p.State != ironpool.NodeMaintenance || p.MaintenanceReason != "broken fan" {
		t.Errorf("state = %s %q", p.State, p.MaintenanceReason)
	}
	if err := p.Validate(""); err != nil {
		t.Errorf("imported node does not validate: %v", err)
	}
}

// fakeIronic serves the version document plus handler for everything else.
func fakeIronic(t *testing.T, maxVersion string, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" { // the root document gophercloud's catalog discovery reads
			fmt.Fprintf(w, `{"name": "OpenStack Ironic API", "versions": [{"id": "v1", "status": "CURRENT", "min_version": "1.1", "version": %q, "links": [{"href": "http://%s/v1/", "rel": "self"}]}]}`, maxVersion, r.Host)
			return
		}
		if r.URL.Path == "/v1/" || r.URL.Path == "/v1" {
			w.Header().Set("X-OpenStack-Ironic-API-Maximum-Version", maxVersion)
			fmt.Fprintf(w, `{"id": "v1", "version": {"version": %q, "min_version": "1.1"}}`, maxVersion)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestConnectRefusesOldIronic(t *testing.T) {
	srv := fakeIronic(t, "1.58", func(w http.ResponseWriter, r *http.Request) {})
	_, err := Connect(t.Context(), Config{URL: srv.URL})
	if ironpool.ErrorCode(err) != ironpool.EINVALID || !strings.Contains(err.Error(), "1.58") {
		t.Fatalf("Connect to a 1.58 server: %v, want EINVALID naming 1.58", err)
	}
}

func TestConnectRefusesNonIronic(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, err := Connect(t.Context(), Config{URL: srv.URL})
	if err == nil {
		t.Fatal("Connect to a non-Ironic server succeeded")
	}
}

func TestConnectBadConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {URL: "ftp://x"}, {URL: "http://127.0.0.1:1", Username: "only-user"}} {
		if _, err := Connect(t.Context(), cfg); ironpool.ErrorCode(err) != ironpool.EINVALID {
			t.Errorf("Connect(%+v) = %v, want EINVALID", cfg, err)
		}
	}
}

func TestRetriesLockedAnd503(t *testing.T) {
	var calls atomic.Int32
	srv := fakeIronic(t, "1.82", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("X-OpenStack-Ironic-API-Version"); got != Baseline {
			t.Errorf("request carried microversion %q, want %s", got, Baseline)
		}
		switch calls.Add(1) {
		case 1:
			w.WriteHeader(409)
			fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"Node n1 is locked by host c1, please retry after the current operation is completed.\"}"}`)
		case 2:
			w.WriteHeader(503)
			fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"lack of free conductor workers\"}"}`)
		default:
			fmt.Fprint(w, `{"uuid": "n1", "name": "n1", "provision_state": "available"}`)
		}
	})
	c, err := Connect(t.Context(), Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.getNode(t.Context(), "n1")
	if err != nil || n.ProvisionState != "available" {
		t.Fatalf("getNode after a lock and a 503 = %+v, %v", n, err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("server saw %d calls, want 3", got)
	}
}

func TestOtherConflictsAreNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := fakeIronic(t, "1.82", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(409)
		fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"A port with MAC address 52:54:00:00:00:01 already exists.\"}"}`)
	})
	c, err := Connect(t.Context(), Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.getNode(t.Context(), "n1")
	var e *ironpool.Error
	if !errors.As(err, &e) || e.Code != ironpool.ECONFLICT || !strings.Contains(e.Message, "already exists") {
		t.Fatalf("error = %v, want ECONFLICT with Ironic's message", err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("server saw %d calls, want 1 (no retry)", got)
	}
}

func TestAllocation503IsNotRetried(t *testing.T) {
	var posts, deletes atomic.Int32
	srv := fakeIronic(t, "1.82", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			posts.Add(1)
			w.WriteHeader(503)
			fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"lack of free conductor workers\"}"}`)
		case http.MethodDelete:
			deletes.Add(1)
			if r.URL.Path != "/v1/allocations/job-1" {
				t.Errorf("DELETE %s, want the stray allocation by name", r.URL.Path)
			}
			w.WriteHeader(204)
		}
	})
	c, err := Connect(t.Context(), Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.CreateAllocation(t.Context(), "rc", "job-1")
	if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE {
		t.Fatalf("CreateAllocation on 503 = %v, want EUNAVAILABLE", err)
	}
	if posts.Load() != 1 || deletes.Load() != 1 {
		t.Errorf("posts=%d deletes=%d, want 1 and 1", posts.Load(), deletes.Load())
	}
}

func TestHungIronicIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accept and never answer
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
		}
	}()
	start := time.Now()
	_, err = Connect(t.Context(), Config{URL: "http://" + ln.Addr().String(), Timeout: 300 * time.Millisecond})
	if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE {
		t.Fatalf("Connect to a hung server = %v, want EUNAVAILABLE", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %s; the 300ms timeout did not bound it", d)
	}
}

func TestClosedPortIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Connect(context.Background(), Config{URL: "http://" + addr})
	if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Connect to a closed port = %v, want EUNAVAILABLE connection refused", err)
	}
}

// TestConnectWithCloudsYAML authenticates through a fake Keystone named in a
// clouds.yaml and checks that Ironic is found in the catalog and gets the token.
func TestConnectWithCloudsYAML(t *testing.T) {
	var sawToken atomic.Bool
	ironicSrv := fakeIronic(t, "1.82", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") == "tok-123" {
			sawToken.Store(true)
		}
		fmt.Fprint(w, `{"uuid": "n1", "provision_state": "available"}`)
	})
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v3/auth/tokens" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Subject-Token", "tok-123")
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"token": {"expires_at": "2099-01-01T00:00:00.000000Z", "catalog": [
			{"type": "baremetal", "name": "ironic", "endpoints": [
				{"interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": %q}]}]}}`, ironicSrv.URL)
	}))
	t.Cleanup(keystone.Close)
	file := filepath.Join(t.TempDir(), "clouds.yaml")
	yaml := fmt.Sprintf(`clouds:
  lab:
    auth:
      auth_url: %s/v3
      username: admin
      password: pw
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`, keystone.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", file)
	c, err := Connect(t.Context(), Config{Cloud: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != ironicSrv.URL || c.MaxVersion() != "1.82" {
		t.Errorf("Endpoint %q MaxVersion %q", c.Endpoint(), c.MaxVersion())
	}
	if _, err := c.getNode(t.Context(), "n1"); err != nil {
		t.Fatal(err)
	}
	if !sawToken.Load() {
		t.Error("Ironic never saw the Keystone token")
	}
	_, err = Connect(t.Context(), Config{Cloud: "no-such-cloud"})
	wantCode(t, err, ironpool.EINVALID)
}

// TestUnregisterFromFailedState: Ironic deletes a node in "clean failed"
// only once it is in maintenance, a state the fake-hardware driver never
// reaches on its own; so an Ironic that answers that way stands in, and
// Unregister must put the node into maintenance before deleting it.
func TestUnregisterFromFailedState(t *testing.T) {
	var calls []string
	var mu sync.Mutex
	maint := false
	srv := fakeIronic(t, "1.82", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		switch {
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/v1/nodes/"):
			fmt.Fprintf(w, `{"uuid": "u1", "name": "n1", "provision_state": "clean failed", "maintenance": %v}`, maint)
		case r.Method == "PUT" && r.URL.Path == "/v1/nodes/u1/maintenance":
			maint = true
			w.WriteHeader(202)
		case r.Method == "DELETE" && r.URL.Path == "/v1/nodes/u1":
			if !maint {
				w.WriteHeader(409)
				fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"Can not delete node in clean failed state\"}"}`)
				return
			}
			w.WriteHeader(204)
		case r.URL.Path == "/v1/ports":
			fmt.Fprint(w, `{"ports": []}`)
		default:
			http.NotFound(w, r)
		}
	})
	c, err := Connect(t.Context(), Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unregister(t.Context(), "u1"); err != nil {
		t.Fatalf("unregister from clean failed: %v (calls %v)", err, calls)
	}
	mu.Lock()
	defer mu.Unlock()
	if !maint || !slices.Contains(calls, "DELETE /v1/nodes/u1") {
		t.Errorf("calls %v: want maintenance set, then the delete", calls)
	}
}
