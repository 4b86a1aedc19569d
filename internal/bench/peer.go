package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/ironic"
)

// This file holds the Ironic side of the peer benchmark: the same load loop
// (Drive) against Ironic's own allocation API, which allocates one node of
// a resource class per request (POST /v1/allocations until active, then
// DELETE). internal/bench is a measurement tool, not part of the request
// path, which is why it may import internal/ironic (see internal/archtest).

// ConnectIronic connects to the Ironic at url (noauth or as the URL
// carries), registering nodes with the fake-hardware driver so the real
// state machine runs without BMCs.
func ConnectIronic(ctx context.Context, url string) (*ironic.Client, error) {
	return ironic.Connect(ctx, ironic.Config{URL: url, DriverOverride: ironic.FakeDriver,
		Timeout: 30 * time.Second, WaitTimeout: 2 * time.Minute})
}

// IronicNodes registers n fake-hardware nodes of resource class rc in
// Ironic, named prefix-000…, 8 at a time, and returns their UUIDs. On
// error the nodes made so far are returned too, for UnregisterIronic.
func IronicNodes(ctx context.Context, c *ironic.Client, n int, prefix, rc string) ([]string, error) {
	uuids := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			uuids[i], errs[i] = c.Register(ctx, &ironpool.Node{Name: fmt.Sprintf("%s-%03d", prefix, i), CPUs: 8,
				MemoryMB: 8192, LocalGB: 80, CPUArch: "x86_64", ResourceClass: rc,
				MACs: []string{fmt.Sprintf("52:54:0c:%02x:%02x:%02x", (i>>16)&255, (i>>8)&255, i&255)},
				BMC:  ironpool.BMC{Address: "ipmi://127.0.0.1:623", Username: "admin", Password: "bench-secret"}})
		})
	}
	wg.Wait()
	var made []string
	var first error
	for i, u := range uuids {
		if u != "" {
			made = append(made, u)
		}
		if errs[i] != nil && first == nil {
			first = fmt.Errorf("registering Ironic node %s-%03d: %w", prefix, i, errs[i])
		}
	}
	return made, first
}

// UnregisterIronic deletes the nodes IronicNodes made.
func UnregisterIronic(ctx context.Context, c *ironic.Client, uuids []string) error {
	var first error
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, u := range uuids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := c.Unregister(ctx, u); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// IronicAllocateRelease is one iteration against Ironic's allocation API:
// allocate one node of resource class rc, wait until active, delete the
// allocation. It times the allocation until active, as ironpool's side
// times its allocate call.
func IronicAllocateRelease(c *ironic.Client, rc string) Op {
	return func(ctx context.Context, _ int) (time.Duration, error) {
		t0 := time.Now()
		alloc, _, err := c.CreateAllocation(ctx, rc, "")
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		return d, c.DeleteAllocation(ctx, alloc)
	}
}

// ResourceClassAllocateRelease is ironpool's side in the shape of Ironic's
// requests: one node by resource class, then its release.
func ResourceClassAllocateRelease(c *client.Client, rc string) Op {
	return func(ctx context.Context, w int) (time.Duration, error) {
		t0 := time.Now()
		a, err := c.Allocate(ctx, &client.AllocateBody{Owner: "peer" + strconv.Itoa(w),
			Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{ResourceClass: rc}, Count: 1}}})
		d := time.Since(t0)
		if err != nil {
			return 0, err
		}
		_, err = c.Release(ctx, a.ID)
		return d, err
	}
}
