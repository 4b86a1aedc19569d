package ironic

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"

	"github.com/ironpool/ironpool"
)

// Integration tests against a real Ironic (hack/ironic/start.sh: Ironic 21.4
// from Debian packages, one process, SQLite, noauth) with fake-hardware
// nodes, so the real state machine runs without BMCs.
//
// IRONPOOL_TEST_IRONIC_URL reuses an Ironic that is already running. When
// Ironic cannot be started (not installed and not installable: no root, no
// apt), the tests skip with the reason — except under CI=true, where they
// fail, because CI must exercise the real thing.

var (
	ironicOnce sync.Once
	ironicURL  string
	ironicErr  error
	ironicDir  string // set when this process started Ironic
)

func TestMain(m *testing.M) {
	code := m.Run()
	if ironicDir != "" {
		if err := stopIronic(ironicDir, code == 0); err != nil {
			fmt.Fprintln(os.Stderr, "stopping Ironic:", err)
		}
		if code != 0 {
			fmt.Fprintln(os.Stderr, "Ironic state and logs kept in", ironicDir)
		}
	}
	os.Exit(code)
}

func scriptPath(name string) string {
	return filepath.Join("..", "..", "hack", "ironic", name)
}

// startIronicAt runs start.sh into dir on a free port and returns the URL.
func startIronicAt(dir string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // may apt-install
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath("start.sh"), dir)
	cmd.Env = append(os.Environ(), "IRONIC_PORT="+strconv.Itoa(port), "IRONIC_START_TIMEOUT=240")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v: %s", scriptPath("start.sh"), err, lastLines(stderr.String(), 5))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func stopIronic(dir string, purge bool) error {
	args := []string{scriptPath("stop.sh"), dir}
	if purge {
		args = append(args, "--purge")
	}
	out, err := exec.Command("bash", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// requireIronic returns the URL of a real Ironic, starting one the first
// time; it skips the test (fails under CI=true) when none can be had.
func requireIronic(t *testing.T) string {
	t.Helper()
	ironicOnce.Do(func() {
		if u := os.Getenv("IRONPOOL_TEST_IRONIC_URL"); u != "" {
			ironicURL = u
			return
		}
		dir, err := os.MkdirTemp("", "ironpool-ironic-test-")
		if err != nil {
			ironicErr = err
			return
		}
		ironicURL, ironicErr = startIronicAt(dir)
		if ironicErr == nil {
			ironicDir = dir
		} else {
			os.RemoveAll(dir)
		}
	})
	unavailable(t, ironicErr)
	return ironicURL
}

// unavailable skips (or under CI=true fails) the test when err is set.
func unavailable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("real Ironic unavailable under CI=true: %v", err)
	}
	t.Skipf("skipped: real Ironic unavailable: %v", err)
}

func newClient(t *testing.T) *Client {
	t.Helper()
	url := requireIronic(t)
	c, err := Connect(t.Context(), Config{
		URL:            url,
		DriverOverride: FakeDriver,
		Timeout:        30 * time.Second,
		WaitTimeout:    2 * time.Minute,
		PageSize:       7, // small, so 20+ nodes take several pages
	})
	if err != nil {
		t.Fatalf("Connect(%s): %v", url, err)
	}
	return c
}

// Names and MACs are unique per test run, so runs against a shared Ironic
// (IRONPOOL_TEST_IRONIC_URL) do not collide.
var (
	runID = func() string {
		var b [3]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	macSeq atomic.Uint32
)

func newMAC() string {
	n := macSeq.Add(1)
	return fmt.Sprintf("52:%s:%s:%s:%02x:%02x", runID[0:2], runID[2:4], runID[4:6], byte(n>>8), byte(n))
}

func nodeName(prefix string, i int) string { return fmt.Sprintf("it-%s-%s-%02d", runID, prefix, i) }

// nodeSpec describes a fake-hardware test node and the state to leave it in.
type nodeSpec struct {
	Name          string
	ResourceClass string
	CPUs          int
	Traits        []string
	MACs          []string
	State         string // "enroll", "manageable" or "available" (default)
}

// makeNodes creates fake-hardware nodes the way an operator would (create,
// ports, power off, manage, provide), in parallel, and deletes them when the
// test ends. It returns the Ironic UUIDs in spec order.
func makeNodes(t *testing.T, c *Client, specs []nodeSpec) []string {
	t.Helper()
	uuids := make([]string, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { uuids[i], errs[i] = makeNode(t.Context(), c, s) })
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, u := range uuids {
			if u != "" {
				forceDelete(c, u)
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("making node %s: %v", specs[i].Name, err)
		}
	}
	return uuids
}

func makeNode(ctx context.Context, c *Client, s nodeSpec) (string, error) {
	rc := s.ResourceClass
	props := map[string]any{"cpus": s.CPUs, "memory_mb": 1024 * s.CPUs, "local_gb": 10 * s.CPUs, "cpu_arch": "x86_64"}
	n, err := nodes.Create(ctx, c.sc, nodes.CreateOpts{
		Name:   s.Name,
		Driver: FakeDriver,
		DriverInfo: map[string]any{
			"ipmi_address": "10.9.0.1", "ipmi_port": 623, "ipmi_username": "admin", "ipmi_password": "secret",
		},
		Properties:    props,
		ResourceClass: rc,
	}).Extract()
	if err != nil {
		return "", mapError(ctx, err, "create")
	}
	if len(s.Traits) > 0 {
		_, err := c.sc.Put(ctx, c.sc.ServiceURL("nodes", n.UUID, "traits"), map[string]any{"traits": s.Traits}, nil,
			&gophercloud.RequestOpts{OkCodes: []int{204}})
		if err != nil {
			return n.UUID, mapError(ctx, err, "traits")
		}
	}
	for _, mac := range s.MACs {
		if _, err := ports.Create(ctx, c.sc, ports.CreateOpts{NodeUUID: n.UUID, Address: mac}).Extract(); err != nil {
			return n.UUID, mapError(ctx, err, "port")
		}
	}
	if s.State == "enroll" {
		return n.UUID, nil
	}
	// Gotcha: fake power stays null through manage/provide, and Ironic's
	// allocator skips nodes whose power state is null.
	if err := c.SetPower(ctx, n.UUID, "off"); err != nil {
		return n.UUID, err
	}
	if err := c.Manage(ctx, n.UUID); err != nil {
		return n.UUID, err
	}
	if s.State == "manageable" {
		return n.UUID, nil
	}
	return n.UUID, c.Provide(ctx, n.UUID)
}

// forceDelete removes a test node whatever its state: maintenance lets
// Ironic delete nodes in states it otherwise refuses.
func forceDelete(c *Client, uuid string) {
	if uuid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if nodes.Delete(ctx, c.sc, uuid).ExtractErr() == nil {
		return
	}
	_ = c.patchNode(ctx, uuid, "", patch{Op: "remove", Path: "/instance_uuid"})
	_ = c.SetMaintenance(ctx, uuid, "test cleanup")
	_ = nodes.Delete(ctx, c.sc, uuid).ExtractErr()
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ironpool.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func mustGet(t *testing.T, c *Client, uuid string) NodeInfo {
	t.Helper()
	n, err := c.GetNode(t.Context(), uuid)
	if err != nil {
		t.Fatalf("GetNode(%s): %v", uuid, err)
	}
	return n
}

func TestConnect(t *testing.T) {
	c := newClient(t)
	if ok, err := versionAtLeast(c.MaxVersion(), Baseline); err != nil || !ok {
		t.Errorf("MaxVersion = %q, want ≥ %s", c.MaxVersion(), Baseline)
	}
	if !strings.HasPrefix(c.Endpoint(), "http://127.0.0.1:") && os.Getenv("IRONPOOL_TEST_IRONIC_URL") == "" {
		t.Errorf("Endpoint = %q", c.Endpoint())
	}
	// /v1 in the URL is accepted too.
	if _, err := Connect(t.Context(), Config{URL: c.Endpoint() + "/v1/"}); err != nil {
		t.Errorf("Connect with /v1: %v", err)
	}
}

func TestListNodes(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	const count = 22
	specs := make([]nodeSpec, count)
	for i := range specs {
		specs[i] = nodeSpec{
			Name: nodeName("list", i), ResourceClass: "rc-list", CPUs: i + 1,
			Traits: []string{"CUSTOM_LIST", fmt.Sprintf("CUSTOM_N%d", i)},
			MACs:   []string{newMAC(), newMAC()},
		}
	}
	uuids := makeNodes(t, c, specs)

	all, err := c.ListNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byUUID := map[string]NodeInfo{}
	for _, n := range all {
		if _, dup := byUUID[n.UUID]; dup {
			t.Errorf("node %s listed twice (pagination)", n.UUID)
		}
		byUUID[n.UUID] = n
	}
	for i, u := range uuids {
		n, ok := byUUID[u]
		if !ok {
			t.Errorf("node %s (%s) missing from ListNodes (%d nodes)", specs[i].Name, u, len(all))
			continue
		}
		s := specs[i]
		wantMACs := slices.Clone(s.MACs)
		slices.Sort(wantMACs)
		wantTraits := slices.Clone(s.Traits)
		slices.Sort(wantTraits)
		switch {
		case n.Name != s.Name || n.ResourceClass != s.ResourceClass:
			t.Errorf("%s: name/rc = %q %q", u, n.Name, n.ResourceClass)
		case n.CPUs != s.CPUs || n.MemoryMB != int64(1024*s.CPUs) || n.LocalGB != int64(10*s.CPUs) || n.CPUArch != "x86_64":
			t.Errorf("%s: properties = %d %d %d %q", s.Name, n.CPUs, n.MemoryMB, n.LocalGB, n.CPUArch)
		case !slices.Equal(n.MACs, wantMACs):
			t.Errorf("%s: MACs = %v, want %v", s.Name, n.MACs, wantMACs)
		case !slices.Equal(n.Traits, wantTraits):
			t.Errorf("%s: traits = %v, want %v", s.Name, n.Traits, wantTraits)
		case n.ProvisionState != "available" || n.PowerState != "power off" || n.Driver != FakeDriver:
			t.Errorf("%s: state = %q power %q driver %q", s.Name, n.ProvisionState, n.PowerState, n.Driver)
		case n.DriverInfo["ipmi_password"] != ironpool.MaskedSecret:
			t.Errorf("%s: ipmi_password = %v, want it masked", s.Name, n.DriverInfo["ipmi_password"])
		}
		p := ToPoolNode(n)
		if p.BMC.Address != "ipmi://10.9.0.1:623" || p.BMC.Username != "admin" || p.State != ironpool.NodeAvailable {
			t.Errorf("%s: ToPoolNode BMC %+v state %s", s.Name, p.BMC, p.State)
		}
	}

	got := mustGet(t, c, uuids[3])
	if got.Name != specs[3].Name || len(got.MACs) != 2 || got.CPUs != 4 {
		t.Errorf("GetNode = %+v", got)
	}
	byName := mustGet(t, c, specs[3].Name)
	if byName.UUID != uuids[3] {
		t.Errorf("GetNode by name = %s, want %s", byName.UUID, uuids[3])
	}
}

func TestGetNodeNotFound(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	_, err := c.GetNode(t.Context(), "00000000-0000-0000-0000-000000000000")
	wantCode(t, err, ironpool.ENOTFOUND)
	if !strings.Contains(err.Error(), "could not be found") {
		t.Errorf("message %q does not carry Ironic's faultstring", err)
	}
}

func TestMaintenance(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	u := makeNodes(t, c, []nodeSpec{{Name: nodeName("maint", 0), CPUs: 1, MACs: []string{newMAC()}}})[0]
	const reason = "handoff: owner lab1, allocation a-123"
	if err := c.SetMaintenance(t.Context(), u, reason); err != nil {
		t.Fatal(err)
	}
	n := mustGet(t, c, u)
	if !n.Maintenance || n.MaintenanceReason != reason {
		t.Fatalf("after SetMaintenance: maintenance=%v reason=%q", n.Maintenance, n.MaintenanceReason)
	}
	if s := ToPoolNode(n).State; s != ironpool.NodeMaintenance {
		t.Errorf("ToPoolNode state = %s, want maintenance", s)
	}
	if err := c.ClearMaintenance(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	n = mustGet(t, c, u)
	if n.Maintenance || n.MaintenanceReason != "" {
		t.Fatalf("after ClearMaintenance: maintenance=%v reason=%q", n.Maintenance, n.MaintenanceReason)
	}
	wantCode(t, c.SetMaintenance(t.Context(), "it-no-such-node-"+runID, "x"), ironpool.ENOTFOUND)
}

func TestSetLessee(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	u := makeNodes(t, c, []nodeSpec{{Name: nodeName("lessee", 0), CPUs: 1}})[0]
	if err := c.SetLessee(t.Context(), u, "project-lab1"); err != nil {
		t.Fatal(err)
	}
	if n := mustGet(t, c, u); n.Lessee != "project-lab1" {
		t.Fatalf("lessee = %q", n.Lessee)
	}
	for range 2 { // clearing twice is fine
		if err := c.SetLessee(t.Context(), u, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := mustGet(t, c, u); n.Lessee != "" {
		t.Fatalf("lessee after clear = %q", n.Lessee)
	}
}

func TestManageProvide(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	u := makeNodes(t, c, []nodeSpec{{Name: nodeName("mp", 0), CPUs: 2, State: "enroll"}})[0]
	if n := mustGet(t, c, u); n.ProvisionState != "enroll" {
		t.Fatalf("new node is %q", n.ProvisionState)
	}
	for range 2 { // the second call finds it manageable and does nothing
		if err := c.Manage(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	if n := mustGet(t, c, u); n.ProvisionState != "manageable" {
		t.Fatalf("after Manage: %q", n.ProvisionState)
	}
	start := time.Now()
	if err := c.Provide(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	t.Logf("provide (cleaning) took %s", time.Since(start))
	if n := mustGet(t, c, u); n.ProvisionState != "available" || n.TargetProvisionState != "" {
		t.Fatalf("after Provide: %q → %q", n.ProvisionState, n.TargetProvisionState)
	}
	if err := c.Provide(t.Context(), u); err != nil {
		t.Fatalf("Provide on available: %v", err)
	}
	// available → manageable → available: the checkin path.
	if err := c.Manage(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if err := c.Provide(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	// A verb that does not fit the state is a conflict, not bad input.
	wantCode(t, c.changeState(t.Context(), u, nodes.ProvisionStateOpts{Target: nodes.TargetAdopt}), ironpool.ECONFLICT)
	// Waiting for a state the node will not reach fails at once.
	_, err := c.WaitForProvisionState(t.Context(), u, "manageable", 5*time.Second)
	var se *StateError
	if !asStateError(err, &se) || se.State != "available" {
		t.Fatalf("WaitForProvisionState(manageable) on an available node = %v, want a StateError", err)
	}
}

func asStateError(err error, target **StateError) bool {
	se, ok := err.(*StateError)
	if ok {
		*target = se
	}
	return ok && ironpool.ErrorCode(err) == ironpool.ECONFLICT
}

func TestRegisterUnregister(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	pn := &ironpool.Node{
		UUID: "pool-" + runID, Name: nodeName("reg", 0), CPUs: 16, MemoryMB: 65536, LocalGB: 400, CPUArch: "x86_64",
		ResourceClass: "rc-reg", Traits: []string{"CUSTOM_GPU", "CUSTOM_NVME"}, MACs: []string{newMAC(), newMAC()},
		BMC: ironpool.BMC{Address: "ipmi://10.9.1.5:6230", Username: "root", Password: "s3cret"},
	}
	u, err := c.Register(t.Context(), pn)
	t.Cleanup(func() { forceDelete(c, u) })
	if err != nil {
		t.Fatal(err)
	}
	n := mustGet(t, c, u)
	switch {
	case n.Name != pn.Name || n.ProvisionState != "available" || n.PowerState != "power off" || n.Driver != FakeDriver:
		t.Errorf("registered node: %q %q %q %q", n.Name, n.ProvisionState, n.PowerState, n.Driver)
	case n.CPUs != 16 || n.MemoryMB != 65536 || n.LocalGB != 400 || n.CPUArch != "x86_64" || n.ResourceClass != "rc-reg":
		t.Errorf("registered properties: %+v", n)
	case !slices.Equal(n.Traits, []string{"CUSTOM_GPU", "CUSTOM_NVME"}):
		t.Errorf("traits = %v", n.Traits)
	case len(n.MACs) != 2 || !slices.Contains(n.MACs, pn.MACs[0]) || !slices.Contains(n.MACs, pn.MACs[1]):
		t.Errorf("MACs = %v, want %v", n.MACs, pn.MACs)
	case n.ManagedBy() != ManagedBy || n.Extra["ironpool_uuid"] != pn.UUID:
		t.Errorf("extra = %v", n.Extra)
	case n.DriverInfo["ipmi_address"] != "10.9.1.5" || n.DriverInfo["ipmi_username"] != "root" || n.DriverInfo["ipmi_password"] != ironpool.MaskedSecret:
		t.Errorf("driver_info = %v", n.DriverInfo)
	}
	if back := ToPoolNode(n); back.BMC.Address != pn.BMC.Address || back.BMC.Username != "root" || back.ManagedBy != ManagedBy {
		t.Errorf("ToPoolNode BMC = %+v managed_by %q", back.BMC, back.ManagedBy)
	}

	// Idempotent: the same pool node maps to the same Ironic node.
	again, err := c.Register(t.Context(), pn)
	if err != nil || again != u {
		t.Fatalf("second Register = %s, %v; want %s", again, err, u)
	}
	// Another pool node with the same name is refused.
	other := *pn
	other.UUID = "pool-other"
	_, err = c.Register(t.Context(), &other)
	wantCode(t, err, ironpool.ECONFLICT)

	wantCode(t, c.Unregister(t.Context(), u), "")
	_, err = c.GetNode(t.Context(), u)
	wantCode(t, err, ironpool.ENOTFOUND)
	for _, mac := range pn.MACs {
		pp, err := ports.List(c.sc, ports.ListOpts{Address: mac}).AllPages(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ports.ExtractPorts(pp); len(got) != 0 {
			t.Errorf("port %s survived Unregister: %+v", mac, got)
		}
	}
	wantCode(t, c.Unregister(t.Context(), u), "") // already gone
}

func TestRegisterRedfish(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	pn := &ironpool.Node{
		Name: nodeName("regrf", 0), CPUs: 4, ResourceClass: "rc-reg", MACs: []string{newMAC()},
		BMC: ironpool.BMC{Address: "redfish+https://10.9.2.7:8443/redfish/v1/Systems/abc", Username: "admin", Password: "pw"},
	}
	u, err := c.Register(t.Context(), pn)
	t.Cleanup(func() { forceDelete(c, u) })
	if err != nil {
		t.Fatal(err)
	}
	n := mustGet(t, c, u)
	if n.DriverInfo["redfish_address"] != "https://10.9.2.7:8443" || n.DriverInfo["redfish_system_id"] != "/redfish/v1/Systems/abc" ||
		n.DriverInfo["redfish_password"] != ironpool.MaskedSecret {
		t.Errorf("driver_info = %v", n.DriverInfo)
	}
	if got := ToPoolNode(n).BMC.Address; got != pn.BMC.Address {
		t.Errorf("BMC address round trip = %q, want %q", got, pn.BMC.Address)
	}
}

func TestRegisterConflicts(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	mac := newMAC()
	// A node an operator made by hand, with a MAC.
	hand := makeNodes(t, c, []nodeSpec{{Name: nodeName("hand", 0), CPUs: 1, MACs: []string{mac}, State: "enroll"}})[0]

	_, err := c.Register(t.Context(), &ironpool.Node{Name: nodeName("hand", 0), BMC: ironpool.BMC{Address: "ipmi://10.9.3.1"}})
	wantCode(t, err, ironpool.ECONFLICT)
	if !strings.Contains(err.Error(), "not registered by ironpool") {
		t.Errorf("message = %q", err)
	}
	if n := mustGet(t, c, hand); n.ManagedBy() != "" || n.ProvisionState != "enroll" {
		t.Errorf("the hand-made node was touched: %+v", n)
	}

	// A MAC already on another node: Ironic's 409 comes through as ECONFLICT.
	u, err := c.Register(t.Context(), &ironpool.Node{Name: nodeName("dupmac", 0), MACs: []string{mac}, BMC: ironpool.BMC{Address: "ipmi://10.9.3.2"}})
	t.Cleanup(func() { forceDelete(c, u) })
	wantCode(t, err, ironpool.ECONFLICT)
	if !strings.Contains(err.Error(), mac) {
		t.Errorf("message %q does not name the MAC", err)
	}
	_, err = c.Register(t.Context(), &ironpool.Node{Name: nodeName("badbmc", 0), BMC: ironpool.BMC{Address: "telnet://x"}})
	wantCode(t, err, ironpool.EINVALID)
}

func TestDeployUndeploy(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ids := makeNodes(t, c, []nodeSpec{
		{Name: nodeName("deploy", 0), CPUs: 2, MACs: []string{newMAC()}},
		{Name: nodeName("deploy", 1), CPUs: 2, State: "manageable"},
	})
	u := ids[0]
	spec := DeploySpec{
		ImageSource:   "http://images.example/ubuntu.qcow2",
		ImageChecksum: "sha256:" + strings.Repeat("ab", 32),
		ConfigDrive:   `{"meta_data": {"hostname": "n1"}}`,
	}
	if err := c.Deploy(t.Context(), u, spec); err != nil {
		t.Fatal(err)
	}
	n := mustGet(t, c, u)
	if n.ProvisionState != "active" || n.InstanceUUID == "" {
		t.Fatalf("after Deploy: %q instance %q", n.ProvisionState, n.InstanceUUID)
	}
	full, err := nodes.Get(t.Context(), c.sc, u).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if full.InstanceInfo["image_source"] != spec.ImageSource || full.InstanceInfo["image_os_hash_algo"] != "sha256" {
		t.Errorf("instance_info = %v", full.InstanceInfo)
	}
	if err := c.Deploy(t.Context(), u, spec); err != nil {
		t.Errorf("repeated Deploy: %v", err)
	}
	wantCode(t, c.Deploy(t.Context(), u, DeploySpec{ImageSource: "http://images.example/other.qcow2"}), ironpool.ECONFLICT)
	wantCode(t, c.Unregister(t.Context(), u), ironpool.ECONFLICT)
	wantCode(t, c.Deploy(t.Context(), ids[1], spec), ironpool.ECONFLICT) // manageable

	if err := c.Undeploy(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	n = mustGet(t, c, u)
	if n.ProvisionState != "available" || n.InstanceUUID != "" {
		t.Fatalf("after Undeploy: %q instance %q", n.ProvisionState, n.InstanceUUID)
	}
	full, err = nodes.Get(t.Context(), c.sc, u).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(full.InstanceInfo) != 0 {
		t.Errorf("instance_info after Undeploy = %v", full.InstanceInfo)
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ids := makeNodes(t, c, []nodeSpec{
		{Name: nodeName("inspect", 0), CPUs: 6, MACs: []string{newMAC()}},
		{Name: nodeName("inspect", 1), CPUs: 3, State: "manageable"},
		{Name: nodeName("inspect", 2), CPUs: 3, State: "enroll"},
	})
	n, err := c.Inspect(t.Context(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	// fake inspection finds nothing new; the properties must survive and the
	// node must be back where it started.
	if n.ProvisionState != "available" || n.CPUs != 6 || n.MemoryMB != 6144 || len(n.MACs) != 1 {
		t.Errorf("Inspect(available) = %q cpus %d mem %d macs %v", n.ProvisionState, n.CPUs, n.MemoryMB, n.MACs)
	}
	n, err = c.Inspect(t.Context(), ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if n.ProvisionState != "manageable" || n.CPUs != 3 {
		t.Errorf("Inspect(manageable) = %q cpus %d", n.ProvisionState, n.CPUs)
	}
	_, err = c.Inspect(t.Context(), ids[2])
	wantCode(t, err, ironpool.ECONFLICT)
}

func TestPower(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	u := makeNodes(t, c, []nodeSpec{{Name: nodeName("power", 0), CPUs: 1}})[0]
	for _, step := range []struct{ action, want string }{
		{"on", "power on"}, {"off", "power off"}, {"reboot", "power on"}, {"on", "power on"},
	} {
		if err := c.SetPower(t.Context(), u, step.action); err != nil {
			t.Fatalf("SetPower(%s): %v", step.action, err)
		}
		got, err := c.PowerState(t.Context(), u)
		if err != nil || got != step.want {
			t.Fatalf("after %s: PowerState = %q, %v; want %q", step.action, got, err, step.want)
		}
	}
	wantCode(t, c.SetPower(t.Context(), u, "sideways"), ironpool.EINVALID)
	_, err := c.PowerState(t.Context(), "it-no-such-node-"+runID)
	wantCode(t, err, ironpool.ENOTFOUND)
}

// TestManageableNodes builds every kind of active node and checks that
// exactly the qualifying ones are listed. An active node without an
// instance_uuid is produced two ways: Ironic's adopt verb (manage, then
// adopt: manageable → adopting → active, never sets instance_uuid), and a
// deploy whose instance_uuid is then removed by PATCH (Ironic allows that on
// an active node).
func TestManageableNodes(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ids := makeNodes(t, c, []nodeSpec{
		{Name: nodeName("mgbl", 0), ResourceClass: "rc-mgbl", CPUs: 1, State: "manageable", MACs: []string{newMAC()}}, // adopted: qualifies
		{Name: nodeName("mgbl", 1), ResourceClass: "rc-mgbl", CPUs: 1},                                                // deployed, instance removed: qualifies
		{Name: nodeName("mgbl", 2), ResourceClass: "rc-mgbl", CPUs: 1},                                                // deployed with instance: no
		{Name: nodeName("mgbl", 3), CPUs: 1, State: "manageable"},                                                     // adopted, no resource class: no
		{Name: nodeName("mgbl", 4), ResourceClass: "rc-mgbl", CPUs: 1},                                                // available: no
		{Name: nodeName("mgbl", 5), ResourceClass: "rc-mgbl", CPUs: 1, State: "manageable"},                           // manageable: no
	})
	ctx := t.Context()
	for _, i := range []int{0, 3} {
		if err := c.Adopt(ctx, ids[i]); err != nil {
			t.Fatalf("Adopt: %v", err)
		}
	}
	for _, i := range []int{1, 2} {
		if err := c.Deploy(ctx, ids[i], DeploySpec{ImageSource: "http://images.example/x.img"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.patchNode(ctx, ids[1], "clear instance", patch{Op: "remove", Path: "/instance_uuid"}); err != nil {
		t.Fatal(err)
	}

	got, err := c.ManageableNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, n := range got {
		if n.ProvisionState != "active" || n.InstanceUUID != "" || n.ResourceClass == "" {
			t.Errorf("ManageableNodes returned %s: %q instance %q rc %q", n.Name, n.ProvisionState, n.InstanceUUID, n.ResourceClass)
		}
		if strings.HasPrefix(n.Name, "it-"+runID+"-mgbl-") {
			mine = append(mine, n.UUID)
			if n.Name == nodeName("mgbl", 0) && len(n.MACs) != 1 {
				t.Errorf("%s: MACs = %v", n.Name, n.MACs)
			}
		}
	}
	want := []string{ids[0], ids[1]}
	slices.Sort(want)
	slices.Sort(mine)
	if !slices.Equal(mine, want) {
		t.Errorf("ManageableNodes (this test's nodes) = %v, want %v", mine, want)
	}
}

func TestAdopt(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ids := makeNodes(t, c, []nodeSpec{
		{Name: nodeName("adopt", 0), ResourceClass: "rc-adopt", CPUs: 1, State: "manageable"},
		{Name: nodeName("adopt", 1), ResourceClass: "rc-adopt", CPUs: 1},
	})
	for range 2 { // the second call finds it active
		if err := c.Adopt(t.Context(), ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	n := mustGet(t, c, ids[0])
	if n.ProvisionState != "active" || n.InstanceUUID != "" {
		t.Fatalf("after Adopt: %q instance %q", n.ProvisionState, n.InstanceUUID)
	}
	wantCode(t, c.Adopt(t.Context(), ids[1]), ironpool.ECONFLICT) // available
}

func TestAllocations(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	rc := "rc-alloc-" + runID
	ids := makeNodes(t, c, []nodeSpec{
		{Name: nodeName("alloc", 0), ResourceClass: rc, CPUs: 1},
		{Name: nodeName("alloc", 1), ResourceClass: rc, CPUs: 1},
	})
	held := map[string]string{}
	for i := range 2 {
		name := fmt.Sprintf("it-%s-job-%d", runID, i)
		a, node, err := c.CreateAllocation(t.Context(), rc, name)
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if !slices.Contains(ids, node) || held[node] != "" {
			t.Fatalf("allocation %d got node %s (held: %v)", i, node, held)
		}
		held[node] = a
		if n := mustGet(t, c, node); n.InstanceUUID != a {
			t.Errorf("node %s instance_uuid = %q, want the allocation %s", node, n.InstanceUUID, a)
		}
	}
	_, _, err := c.CreateAllocation(t.Context(), rc, fmt.Sprintf("it-%s-job-x", runID))
	wantCode(t, err, ironpool.ECAPACITY)
	// The failed allocation was deleted, so its name is free again.
	_, _, err = c.CreateAllocation(t.Context(), rc, fmt.Sprintf("it-%s-job-x", runID))
	wantCode(t, err, ironpool.ECAPACITY)

	for node, a := range held {
		if err := c.DeleteAllocation(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		if n := mustGet(t, c, node); n.InstanceUUID != "" {
			t.Errorf("node %s keeps instance_uuid %q after DeleteAllocation", node, n.InstanceUUID)
		}
		if err := c.DeleteAllocation(t.Context(), a); err != nil {
			t.Errorf("second DeleteAllocation: %v", err)
		}
	}
	_, _, err = c.CreateAllocation(t.Context(), "", "")
	wantCode(t, err, ironpool.EINVALID)
}

// TestStoppedIronic starts a second, private Ironic, connects, stops it with
// stop.sh and checks that the client then reports EUNAVAILABLE promptly.
func TestStoppedIronic(t *testing.T) {
	t.Parallel()
	requireIronic(t) // same skip rules; also makes sure Ironic is installed
	if _, err := exec.LookPath("ironic"); err != nil {
		unavailable(t, fmt.Errorf("ironic not installed locally (using IRONPOOL_TEST_IRONIC_URL): %w", err))
	}
	dir := t.TempDir()
	url, err := startIronicAt(dir)
	if err != nil {
		unavailable(t, err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = stopIronic(dir, false)
		}
	})
	c, err := Connect(t.Context(), Config{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListNodes(t.Context()); err != nil {
		t.Fatalf("ListNodes on a running Ironic: %v", err)
	}
	if err := stopIronic(dir, false); err != nil {
		t.Fatal(err)
	}
	stopped = true
	start := time.Now()
	_, err = c.ListNodes(t.Context())
	wantCode(t, err, ironpool.EUNAVAILABLE)
	err = c.SetPower(t.Context(), "x", "on")
	wantCode(t, err, ironpool.EUNAVAILABLE)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("errors took %s; want prompt failure", d)
	}
	_, err = Connect(t.Context(), Config{URL: url})
	wantCode(t, err, ironpool.EUNAVAILABLE)
}
