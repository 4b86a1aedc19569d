package ironpool_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

// TestAggregateUsage checks the usage series on hand-made records: spells
// clipped to the window, an open spell running to the end, a node counted
// from its creation, free never negative, owners by node-hours.
func TestAggregateUsage(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Hour))) }
	rec := &ironpool.UsageRecords{
		Nodes: []ironpool.UsageNode{{Name: "a", Pool: "p", CreatedAt: h(-10)}, {Name: "b", Pool: "p", CreatedAt: h(1.5)},
			{Name: "c", Pool: "q", CreatedAt: h(-1)}},
		Holds: []ironpool.UsageInterval{
			{Node: "a", Pool: "p", Owner: "x", From: h(-5), To: h(1)},     // began before the window
			{Node: "a", Pool: "p", Owner: "y", From: h(2.5)},              // still held
			{Node: "c", Pool: "q", Owner: "x", From: h(0.5), To: h(0.75)}, // a quarter hour
		},
		Maintenance: []ironpool.UsageInterval{{Node: "b", Pool: "p", From: h(1.5), To: h(2)}},
	}
	u := rec.Aggregate(t0, h(4), time.Hour)
	if u.Step != "1h" || len(u.Pools) != 2 || u.Pools[0].Pool != "p" || u.Pools[1].Pool != "q" {
		t.Fatalf("usage = %+v", u)
	}
	var got []string
	for _, pt := range u.Pools[0].Points {
		got = append(got, fmt.Sprintf("%g/%g/%g", pt.Allocated, pt.Maintenance, pt.Free))
	}
	// Hour 1: a free after its hold; b exists for half the hour and spends
	// it in maintenance. Hour 2: y holds a for the second half.
	if want := "[1/0/0 0/0.5/1 0.5/0/1.5 1/0/1]"; fmt.Sprint(got) != want {
		t.Errorf("pool p per hour = %v, want %s", got, want)
	}
	if pt := u.Pools[1].Points[0]; pt.Allocated != 0.25 || pt.Free != 0.75 {
		t.Errorf("pool q hour 0 = %+v", pt)
	}
	if fmt.Sprint(u.Owners) != "[{y 1.5} {x 1.25}]" {
		t.Errorf("owners = %v, want y 1.5 then x 1.25 (largest first)", u.Owners)
	}
	// An empty pool still has a series; free never goes below zero even
	// when the records overlap (a node deleted and re-added, say).
	over := &ironpool.UsageRecords{Nodes: []ironpool.UsageNode{{Name: "a", Pool: "p", CreatedAt: h(-1)}},
		Holds: []ironpool.UsageInterval{{Pool: "p", Owner: "x", From: h(-1)}, {Pool: "p", Owner: "z", From: h(-1)}}}
	if pt := over.Aggregate(t0, h(1), time.Hour).Pools[0].Points[0]; pt.Free != 0 || pt.Allocated != 2 {
		t.Errorf("overlapping holds: %+v", pt)
	}
}
