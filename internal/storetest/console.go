package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// testConsole checks what the dashboard's node page and usage chart read:
// a node's history (its events and its allocations', newest first, paged)
// and the holds and maintenance spells over a window, on a controlled clock.
func testConsole(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	c := withClock(t, s)
	ctx := ctxFor(t)
	t0 := c.Now()
	a, b := newNode(t, "con-a", 4), newNode(t, "con-b", 8)
	a.Pool, b.Pool = "p1", "p1"
	mustCreate(t, s, a, b)
	at := func(h int) { c.Set(t0.Add(time.Duration(h) * time.Hour)) }
	maintenance := func(on bool) {
		t.Helper()
		_, err := s.UpdateNode(ctx, "con-b", func(n *ironpool.Node) error {
			if on {
				n.State, n.MaintenanceReason = ironpool.NodeMaintenance, "fan <b>loud</b>"
			} else {
				n.State, n.MaintenanceReason = ironpool.NodeAvailable, ""
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	alloc := func(owner string) *ironpool.Allocation {
		r := request(owner, item("", 1, anyNode()))
		r.CreatedAt, r.ExpiresAt = c.Now(), c.Now().Add(24*time.Hour)
		return mustAllocate(t, s, r)
	}
	at(1)
	x := alloc("x")
	at(2)
	maintenance(true)
	at(3)
	mustRelease(t, s, x.ID, true)
	at(4)
	y := alloc("y")
	at(5)
	maintenance(false)
	at(6)

	t.Run("NodeHistory", func(t *testing.T) {
		h, err := s.NodeHistory(ctx, "con-a", 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range h.Events {
			got = append(got, e.Action+" "+e.Subject)
		}
		want := []string{"allocation.created allocation/" + y.ID, "allocation.released allocation/" + x.ID,
			"allocation.created allocation/" + x.ID}
		if fmt.Sprint(got) != fmt.Sprint(want) || h.Node != "con-a" {
			t.Fatalf("page 1 of con-a = %q, want %q", got, want)
		}
		if h.NextBefore != h.Events[2].ID {
			t.Fatalf("next_before = %d, want %d", h.NextBefore, h.Events[2].ID)
		}
		h2, err := s.NodeHistory(ctx, a.UUID, h.NextBefore, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(h2.Events) != 1 || h2.Events[0].Action != "node.created" || h2.NextBefore != 0 {
			t.Fatalf("page 2 of con-a = %+v (next %d), want only node.created and no next page", h2.Events, h2.NextBefore)
		}
		if n := len(h.Tenancies); n != 2 {
			t.Fatalf("tenancies = %+v, want 2", h.Tenancies)
		}
		ty, tx := h.Tenancies[0], h.Tenancies[1]
		if ty.AllocationID != y.ID || ty.Owner != "y" || ty.State != ironpool.AllocActive || !ty.From.Equal(t0.Add(4*time.Hour)) || !ty.To.IsZero() {
			t.Errorf("newest tenancy = %+v", ty)
		}
		if tx.AllocationID != x.ID || tx.State != ironpool.AllocReleased || !tx.From.Equal(t0.Add(time.Hour)) || !tx.To.Equal(t0.Add(3*time.Hour)) {
			t.Errorf("older tenancy = %+v", tx)
		}
		hb, err := s.NodeHistory(ctx, "con-b", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var acts []string
		for _, e := range hb.Events {
			acts = append(acts, e.Action)
		}
		if strings.Join(acts, ",") != "node.maintenance,node.maintenance,node.created" || len(hb.Tenancies) != 0 {
			t.Errorf("con-b history = %v, tenancies %+v", acts, hb.Tenancies)
		}
		if !strings.Contains(hb.Events[1].Summary, "fan <b>loud</b>") {
			t.Errorf("maintenance event summary %q lacks the reason", hb.Events[1].Summary)
		}
		_, err = s.NodeHistory(ctx, "no-such", 0, 0)
		wantCode(t, err, ironpool.ENOTFOUND)
	})

	t.Run("Usage", func(t *testing.T) {
		rec, err := s.UsageRecords(context.Background(), t0, t0.Add(6*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		u := rec.Aggregate(t0, t0.Add(6*time.Hour), time.Hour)
		if len(u.Pools) != 1 || u.Pools[0].Pool != "p1" || len(u.Pools[0].Points) != 6 {
			t.Fatalf("usage pools = %+v", u.Pools)
		}
		var got []string
		for _, p := range u.Pools[0].Points {
			got = append(got, fmt.Sprintf("%g/%g/%g", p.Allocated, p.Maintenance, p.Free))
		}
		want := "[0/0/2 1/0/1 1/1/0 0/1/1 1/1/0 1/0/1]"
		if fmt.Sprint(got) != want {
			t.Errorf("allocated/maintenance/free per hour = %v, want %s", got, want)
		}
		if fmt.Sprint(u.Owners) != "[{x 2} {y 2}]" {
			t.Errorf("node-hours per owner = %v, want x 2 and y 2", u.Owners)
		}
		// A window that starts inside the maintenance spell still sees it,
		// and an allocation ended before the window is not read.
		rec, err = s.UsageRecords(context.Background(), t0.Add(3*time.Hour+time.Minute), t0.Add(6*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Maintenance) != 1 || !rec.Maintenance[0].From.Equal(t0.Add(2*time.Hour)) || len(rec.Holds) != 1 || rec.Holds[0].Owner != "y" {
			t.Errorf("late window: maintenance %+v, holds %+v", rec.Maintenance, rec.Holds)
		}
	})
}
