package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// fakeIronic is a scripted Backend for the reconciler's error paths that a
// real fake-hardware Ironic does not produce on demand: a cleaning Ironic
// itself fails, an Ironic that is down and comes back, a node another party
// put into maintenance. The happy paths, and Ironic killed mid-release, are
// tested against a real Ironic in internal/ironic and internal/cli.
type fakeIronic struct {
	mu    sync.Mutex
	node  ironpool.BackendNode
	gone  bool
	down  bool // every call fails as unreachable
	calls []string
}

var errDown = &ironpool.Error{Code: ironpool.EUNAVAILABLE, Message: "ironic: connection refused"}

func (f *fakeIronic) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if f.down {
		return errDown
	}
	return nil
}

func (f *fakeIronic) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeIronic) set(fn func(n *ironpool.BackendNode)) { f.mu.Lock(); fn(&f.node); f.mu.Unlock() }

func (f *fakeIronic) Endpoint() string { return "http://fake-ironic:6385" }
func (f *fakeIronic) GetNode(ctx context.Context, ident string) (ironpool.BackendNode, error) {
	if err := f.record("get"); err != nil {
		return ironpool.BackendNode{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return ironpool.BackendNode{}, &ironpool.Error{Code: ironpool.ENOTFOUND, Message: "ironic: node not found"}
	}
	return f.node, nil
}
func (f *fakeIronic) SetMaintenance(ctx context.Context, uuid, reason string) error {
	if err := f.record("maintenance on"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.Maintenance, n.MaintenanceReason = true, reason })
	return nil
}
func (f *fakeIronic) ClearMaintenance(ctx context.Context, uuid string) error {
	if err := f.record("maintenance off"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.Maintenance, n.MaintenanceReason = false, "" })
	return nil
}
func (f *fakeIronic) SetLessee(ctx context.Context, uuid, lessee string) error {
	if err := f.record("lessee " + lessee); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.Lessee = lessee })
	return nil
}
func (f *fakeIronic) Reserve(ctx context.Context, uuid, name string, extra map[string]string) error {
	if err := f.record("reserve " + name); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.InstanceUUID = "alloc-" + name })
	return nil
}
func (f *fakeIronic) ClearInstance(ctx context.Context, uuid string) error {
	if err := f.record("clear instance"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.InstanceUUID = "" })
	return nil
}
func (f *fakeIronic) Unreserve(ctx context.Context, name string) error {
	if err := f.record("unreserve"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) {
		if n.InstanceUUID == "alloc-"+name {
			n.InstanceUUID = ""
		}
	})
	return nil
}
func (f *fakeIronic) Manage(ctx context.Context, uuid string) error {
	if err := f.record("manage"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.ProvisionState = "manageable" })
	return nil
}
func (f *fakeIronic) Provide(ctx context.Context, uuid string) error {
	if err := f.record("provide"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.ProvisionState = "available" })
	return nil
}
func (f *fakeIronic) Undeploy(ctx context.Context, uuid string) error {
	if err := f.record("undeploy"); err != nil {
		return err
	}
	f.set(func(n *ironpool.BackendNode) { n.ProvisionState = "available" })
	return nil
}
func (f *fakeIronic) WaitForProvisionState(ctx context.Context, uuid, want string, timeout time.Duration) (ironpool.BackendNode, error) {
	if err := f.record("wait " + want); err != nil {
		return ironpool.BackendNode{}, err
	}
	f.set(func(n *ironpool.BackendNode) { n.ProvisionState, n.TargetProvisionState = want, "" })
	return f.node, nil
}

// The operations the clean path never uses fail loudly if it does.
func (f *fakeIronic) ListNodes(context.Context) ([]ironpool.BackendNode, error) {
	return nil, f.unexpected("list")
}
func (f *fakeIronic) ManageableNodes(context.Context) ([]ironpool.BackendNode, error) {
	return nil, f.unexpected("manageable")
}
func (f *fakeIronic) Register(context.Context, *ironpool.Node) (string, error) {
	return "", f.unexpected("register")
}
func (f *fakeIronic) Unregister(context.Context, string) error { return f.unexpected("unregister") }
func (f *fakeIronic) Deploy(context.Context, string, ironpool.DeploySpec) error {
	return f.unexpected("deploy")
}
func (f *fakeIronic) Inspect(context.Context, string) (ironpool.BackendNode, error) {
	return ironpool.BackendNode{}, f.unexpected("inspect")
}
func (f *fakeIronic) Adopt(context.Context, string) error            { return f.unexpected("adopt") }
func (f *fakeIronic) SetPower(context.Context, string, string) error { return f.unexpected("power") }
func (f *fakeIronic) PowerState(context.Context, string) (string, error) {
	return "", f.unexpected("power state")
}
func (f *fakeIronic) unexpected(call string) error {
	f.record("UNEXPECTED " + call)
	return fmt.Errorf("fake: unexpected call %s", call)
}

// releasedIronicNode returns a reconciler over a real SQLite store with the
// fake as its Ironic, and one Ironic-linked node that was allocated in
// handoff mode and released: state cleaning, pending clean.
func releasedIronicNode(t *testing.T, f *fakeIronic) (*Reconciler, context.Context, *ironpool.Node) {
	t.Helper()
	st, ctx := opener.MustOpenSQLiteAdmin(t)
	s := New(st, Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Backends = []ironpool.Backend{f}
	n := &ironpool.Node{Name: "ir1", CPUs: 4, BMC: ironpool.BMC{Address: "ipmi://10.0.0.1"},
		IronicUUID: "6f1b7c1e-0000-4000-8000-000000000001", IronicEndpoint: f.Endpoint(), ManagedBy: "ironic"}
	if err := st.CreateNodes(ctx, []*ironpool.Node{n}); err != nil {
		t.Fatal(err)
	}
	a := &ironpool.Allocation{Owner: "lab1", Mode: ironpool.ModeHandoff, TTL: time.Hour,
		Items: []ironpool.AllocationItem{{Constraints: ironpool.Constraints{CPUs: 1}, Count: 1}}}
	if err := st.Allocate(ctx, a, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReleaseAllocations(ctx, ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocReleased, true); err != nil {
		t.Fatal(err)
	}
	got, err := st.FindNode(ctx, n.Name)
	if err != nil || got.State != ironpool.NodeCleaning || got.Pending != ironpool.PendingClean {
		t.Fatalf("set-up: node %+v, %v; want cleaning with pending clean", got, err)
	}
	return s, ctx, got
}

func (s *Reconciler) nodeNow(t *testing.T, ctx context.Context, name string) *ironpool.Node {
	t.Helper()
	n, err := s.Store.FindNode(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCleanErrorPaths drives the clean step against scripted Ironic answers
// and checks where the node ends and what was asked of Ironic.
func TestCleanErrorPaths(t *testing.T) {
	handoff := handoffReason("lab1", "x")
	for _, tc := range []struct {
		name      string
		node      ironpool.BackendNode
		gone      bool
		wantState ironpool.NodeState
		wantError string // in the node's last_error; "" for none
		wantCalls []string
		notCalled string
	}{
		{name: "OurHandoffIsUndone", node: ironpool.BackendNode{ProvisionState: "available", Maintenance: true, MaintenanceReason: handoff},
			wantState: ironpool.NodeAvailable, wantCalls: []string{"maintenance off", "manage", "provide"}},
		{name: "DeployedByOwnerIsUndeployed", node: ironpool.BackendNode{ProvisionState: "active"},
			wantState: ironpool.NodeAvailable, wantCalls: []string{"undeploy"}, notCalled: "manage"},
		// A deploy Ironic refused after ironpool wrote instance_info
		// leaves the node available with an instance: cleared.
		{name: "LeftoverInstanceIsCleared", node: ironpool.BackendNode{ProvisionState: "available", InstanceUUID: "leftover-deploy"},
			wantState: ironpool.NodeAvailable, wantCalls: []string{"clear instance", "manage", "provide"}},
		{name: "LesseeIsCleared", node: ironpool.BackendNode{ProvisionState: "available", Lessee: "lab1"},
			wantState: ironpool.NodeAvailable, wantCalls: []string{"lessee ", "manage", "provide"}},
		{name: "StepUnderWayIsAwaited", node: ironpool.BackendNode{ProvisionState: "cleaning", TargetProvisionState: "available"},
			wantState: ironpool.NodeAvailable, wantCalls: []string{"wait available", "manage", "provide"}},
		{name: "IronicFailedTheCleaning", node: ironpool.BackendNode{ProvisionState: "clean failed", LastError: "erase_devices: disk /dev/sdb did not wipe"},
			wantState: ironpool.NodeError, wantError: "ironic: erase_devices: disk /dev/sdb did not wipe", notCalled: "provide"},
		{name: "NodeDeletedFromIronic", gone: true,
			wantState: ironpool.NodeError, wantError: "no longer in Ironic", notCalled: "manage"},
		{name: "UnknownStateIsAnError", node: ironpool.BackendNode{ProvisionState: "rescue"},
			wantState: ironpool.NodeError, wantError: "rescue", notCalled: "provide"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIronic{node: tc.node, gone: tc.gone}
			s, ctx, n := releasedIronicNode(t, f)
			s.cleanBackend(ctx, n)
			got := s.nodeNow(t, ctx, n.Name)
			calls := f.called()
			if got.State != tc.wantState || got.Pending != "" {
				t.Fatalf("node ends %s (pending %q, last error %q); want %s. Ironic calls: %v", got.State, got.Pending, got.LastError, tc.wantState, calls)
			}
			if (tc.wantError == "") != (got.LastError == "") || !strings.Contains(got.LastError, tc.wantError) {
				t.Errorf("last error %q, want %q", got.LastError, tc.wantError)
			}
			joined := strings.Join(calls, ",")
			for _, c := range tc.wantCalls {
				if !slices.Contains(calls, c) {
					t.Errorf("Ironic was not asked to %q: %v", c, calls)
				}
			}
			if tc.notCalled != "" && slices.Contains(calls, tc.notCalled) || strings.Contains(joined, "UNEXPECTED") {
				t.Errorf("Ironic calls %v (must not include %q)", calls, tc.notCalled)
			}
		})
	}
}

// TestCleanWhileIronicIsDown: an unreachable Ironic keeps the node owed
// (cleaning, pending clean) with the reason recorded, and the next attempt
// after Ironic is back finishes it: nothing is lost and nothing is blamed
// on the node.
func TestCleanWhileIronicIsDown(t *testing.T) {
	f := &fakeIronic{node: ironpool.BackendNode{ProvisionState: "available", Maintenance: true, MaintenanceReason: handoffReason("lab1", "x")}, down: true}
	s, ctx, n := releasedIronicNode(t, f)
	if err := s.cleanBackend(ctx, n); !retryable(err) {
		t.Fatalf("attempt while down: %v, want a retryable error", err)
	}
	got := s.nodeNow(t, ctx, n.Name)
	if got.State != ironpool.NodeCleaning || got.Pending != ironpool.PendingClean || !strings.Contains(got.LastError, "connection refused") {
		t.Fatalf("while down the node is %s, pending %q, last error %q; want cleaning, still owed, reason recorded", got.State, got.Pending, got.LastError)
	}
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	if err := s.cleanBackend(ctx, got); err != nil {
		t.Fatalf("attempt after Ironic is back: %v", err)
	}
	got = s.nodeNow(t, ctx, n.Name)
	if got.State != ironpool.NodeAvailable || got.Pending != "" || got.LastError != "" {
		t.Fatalf("after Ironic is back the node is %s, pending %q, last error %q; want available and clean", got.State, got.Pending, got.LastError)
	}
	if f.node.Maintenance || f.node.ProvisionState != "available" {
		t.Errorf("Ironic's node ends %+v; want out of maintenance and available", f.node)
	}
}

// TestCleanWaitsForSomeoneElsesMaintenance: a node someone else put into
// maintenance in Ironic during the allocation is not ours to take out of
// it; it stays owed its clean (with the reason shown) and is cleaned once
// the maintenance is lifted — it never returns to the pool uncleaned.
func TestCleanWaitsForSomeoneElsesMaintenance(t *testing.T) {
	f := &fakeIronic{node: ironpool.BackendNode{ProvisionState: "available", Maintenance: true, MaintenanceReason: "DC ticket 4711: PSU"}}
	s, ctx, n := releasedIronicNode(t, f)
	if err := s.cleanBackend(ctx, n); err == nil {
		t.Fatal("clean of a node in someone else's maintenance finished; want it to wait")
	}
	got := s.nodeNow(t, ctx, n.Name)
	if got.State != ironpool.NodeCleaning || got.Pending != ironpool.PendingClean || !strings.Contains(got.LastError, "DC ticket 4711") {
		t.Fatalf("node is %s pending %q last error %q; want still cleaning, owed, reason shown", got.State, got.Pending, got.LastError)
	}
	if slices.Contains(f.called(), "maintenance off") || slices.Contains(f.called(), "provide") {
		t.Fatalf("Ironic calls %v: someone else's maintenance was touched", f.called())
	}
	f.set(func(b *ironpool.BackendNode) { b.Maintenance, b.MaintenanceReason = false, "" })
	if err := s.cleanBackend(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = s.nodeNow(t, ctx, n.Name)
	if got.State != ironpool.NodeAvailable || !slices.Contains(f.called(), "provide") {
		t.Fatalf("after the maintenance is lifted: node %s, calls %v; want cleaned (manage, provide) and available", got.State, f.called())
	}
}

// TestInterruptionSurvivesRestart: a clean cut off by an Ironic outage
// leaves "retrying" on the node; a reconciler that starts afresh (a
// restart, a new leader) reads it there and retries the clean Ironic
// failed under the outage instead of blaming the node.
func TestInterruptionSurvivesRestart(t *testing.T) {
	f := &fakeIronic{node: ironpool.BackendNode{ProvisionState: "available", Maintenance: true, MaintenanceReason: handoffReason("lab1", "x")}, down: true}
	s, ctx, n := releasedIronicNode(t, f)
	if err := s.cleanBackend(ctx, n); !retryable(err) {
		t.Fatalf("attempt while down: %v", err)
	}
	// Ironic comes back having failed the cleaning it was doing; and this
	// is a fresh reconciler with no memory of the outage.
	f.mu.Lock()
	f.down, f.node.ProvisionState, f.node.LastError = false, "clean failed", "conductor restarted"
	f.mu.Unlock()
	fresh := New(s.Store, Config{}, s.Log)
	fresh.Backends = []ironpool.Backend{f}
	got := fresh.nodeNow(t, ctx, n.Name)
	if err := fresh.cleanBackend(ctx, got); err != nil {
		t.Fatal(err)
	}
	got = fresh.nodeNow(t, ctx, n.Name)
	if got.State != ironpool.NodeAvailable {
		t.Fatalf("after restart the interrupted clean ended %s (%q); want retried and available", got.State, got.LastError)
	}
}

// TestMaintenanceOffGoesThroughIronic: `node maintenance off` on an
// Ironic-backed node does not make it allocatable by itself: the node is
// cleaned through Ironic, and one Ironic failed ("clean failed") returns to
// error instead of being handed out; a healthy one becomes available.
func TestMaintenanceOffGoesThroughIronic(t *testing.T) {
	for _, tc := range []struct {
		name  string
		node  ironpool.BackendNode
		want  ironpool.NodeState
		calls []string
	}{
		{"CleanFailedStaysOut", ironpool.BackendNode{ProvisionState: "clean failed", LastError: "disk wipe failed"}, ironpool.NodeError, nil},
		{"HealthyComesBack", ironpool.BackendNode{ProvisionState: "available"}, ironpool.NodeAvailable, []string{"manage", "provide"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeIronic{node: tc.node}
			r, ctx, n := releasedIronicNode(t, f)
			if err := r.Store.FinishCleaning(ctx, n.ID, "ironic: disk wipe failed"); err != nil {
				t.Fatal(err)
			}
			svc := service.New(r.Store, service.Config{}, r.Log)
			got, err := svc.SetMaintenance(ctx, n.Name, false, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != ironpool.NodeCleaning || got.Pending != ironpool.PendingClean {
				t.Fatalf("maintenance off made the Ironic node %s (pending %q); want cleaning through Ironic", got.State, got.Pending)
			}
			_ = r.cleanBackend(ctx, r.nodeNow(t, ctx, n.Name))
			if got := r.nodeNow(t, ctx, n.Name); got.State != tc.want {
				t.Fatalf("after the clean the node is %s (%q), want %s", got.State, got.LastError, tc.want)
			}
			for _, c := range tc.calls {
				if !slices.Contains(f.called(), c) {
					t.Errorf("Ironic was not asked to %s: %v", c, f.called())
				}
			}
		})
	}
}
