package soak

import (
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// story is a small correct history: A takes soak-000 and releases it, then
// B takes the same node, renews near its expiry and is reaped after the
// renewed expiry. Each test below breaks one thing in it.
type story struct {
	allocB, releaseA, extendB                    int // when B is allocated, A released, B extended (ms)
	createdBEvent, releasedAEvent, expiredBEvent int // audit log times (ms)
}

func goodStory() story {
	return story{allocB: 600, releaseA: 500, extendB: 2500, createdBEvent: 605, releasedAEvent: 505, expiredBEvent: 4800}
}

func (s story) evidence() *Evidence {
	node := []string{"soak-000"}
	a := &AllocView{ID: "A", Owner: "o1", State: ironpool.AllocActive, Tag: "0-1", ExpiresAt: at(2010),
		Items: []ItemView{{Flavor: "soak-small", Count: 1, Nodes: node}}}
	b := &AllocView{ID: "B", Owner: "o2", State: ironpool.AllocActive, Tag: "1-1", ExpiresAt: at(s.allocB + 2005),
		Items: []ItemView{{Flavor: "soak-small", Count: 1, Nodes: node}}}
	bExt := *b
	bExt.ExpiresAt = at(s.extendB + 2005)
	aRel := *a
	aRel.State = ironpool.AllocReleased
	asked := []ItemView{{Flavor: "soak-small", Count: 1}}
	ops := []*Op{
		{Client: 0, Kind: OpAllocate, Owner: "o1", Tag: "0-1", Items: asked, TTL: 2 * time.Second, Call: at(0), Return: at(10), Outcome: OK, Status: 201, Alloc: a},
		{Client: 0, Kind: OpRelease, ID: "A", Owner: "o1", Call: at(s.releaseA), Return: at(s.releaseA + 10), Outcome: OK, Status: 200, Alloc: &aRel},
		{Client: 1, Kind: OpAllocate, Owner: "o2", Tag: "1-1", Items: asked, TTL: 2 * time.Second, Call: at(s.allocB), Return: at(s.allocB + 10), Outcome: OK, Status: 201, Alloc: b},
		{Client: 1, Kind: OpExtend, ID: "B", Owner: "o2", TTL: 2 * time.Second, Call: at(s.extendB), Return: at(s.extendB + 10), Outcome: OK, Status: 200, Alloc: &bExt},
	}
	events := []*ironpool.Event{
		{Time: at(5), Action: "allocation.created", Subject: "allocation/A"},
		{Time: at(s.releasedAEvent), Action: "allocation.released", Subject: "allocation/A"},
		{Time: at(s.createdBEvent), Action: "allocation.created", Subject: "allocation/B"},
		{Time: at(s.extendB + 5), Action: "allocation.extended", Subject: "allocation/B"},
		{Time: at(s.expiredBEvent), Action: "allocation.expired", Subject: "allocation/B"},
	}
	// The audit log's order is the commit order: sort the story's events
	// by time and number them.
	for i := range events {
		for j := i + 1; j < len(events); j++ {
			if events[j].Time.Before(events[i].Time) {
				events[i], events[j] = events[j], events[i]
			}
		}
	}
	for i, e := range events {
		e.ID = int64(i + 1)
	}
	finalA, finalB := aRel, bExt
	finalB.State = ironpool.AllocExpired
	return &Evidence{Ops: ops, Events: events, Allocations: map[string]*AllocView{"A": &finalA, "B": &finalB},
		Nodes: Inventory(3), Flavors: Flavors}
}

func TestCheckerPassesACorrectHistory(t *testing.T) {
	r := Check(goodStory().evidence())
	if !r.OK() {
		t.Fatalf("a correct history was judged broken:\n%s", r.Summary())
	}
	if r.Linearizable != "Ok" || r.Allocations != 2 || r.ExpiredByReaper != 1 {
		t.Fatalf("unexpected figures:\n%s", r.Summary())
	}
}

// TestCheckerCatchesDoubleAllocation: B is given soak-000 while A still
// holds it (A is released only afterwards).
func TestCheckerCatchesDoubleAllocation(t *testing.T) {
	s := goodStory()
	s.allocB, s.createdBEvent = 200, 205
	s.extendB = 2100
	r := Check(s.evidence())
	if r.Violations["double-allocation"] < 2 {
		t.Fatalf("double allocation not caught by both the audit-log and the client-view checks:\n%s", r.Summary())
	}
}

// TestCheckerCatchesLostRenewal: B's renewal was acknowledged until 4.505 s
// but the reaper released it at its old expiry.
func TestCheckerCatchesLostRenewal(t *testing.T) {
	s := goodStory()
	s.expiredBEvent = 2620
	r := Check(s.evidence())
	if r.Violations["lost-renewal"] == 0 {
		t.Fatalf("lost renewal not caught:\n%s", r.Summary())
	}
}

// TestCheckerCatchesStaleRead: a read after the acknowledged release still
// sees A active, which no order of the operations explains.
func TestCheckerCatchesStaleRead(t *testing.T) {
	ev := goodStory().evidence()
	stale := *ev.Ops[0].Alloc
	ev.Ops = append(ev.Ops, &Op{Client: 2, Kind: OpGet, ID: "A", Call: at(700), Return: at(705), Outcome: OK, Status: 200, Alloc: &stale})
	r := Check(ev)
	if r.Linearizable != "Illegal" || r.OK() {
		t.Fatalf("stale read not caught by the linearizability check:\n%s", r.Summary())
	}
}

// TestCheckerCatchesWrongNode: a flavor asking for trait CUSTOM_GPU given a
// node whose only trait is CUSTOMXGPU ('_' matched as a wildcard).
func TestCheckerCatchesWrongNode(t *testing.T) {
	ev := goodStory().evidence()
	op := ev.Ops[0]
	op.Items = []ItemView{{Flavor: "soak-gpu", Count: 1}}
	op.Alloc.Items = []ItemView{{Flavor: "soak-gpu", Count: 1, Nodes: []string{"soak-001"}}}
	n := Inventory(3)[1]
	if n.Traits[0] != "CUSTOMXGPU" {
		t.Fatalf("inventory changed: soak-001 has %v", n.Traits)
	}
	r := Check(ev)
	if r.Violations["wrong-node"] == 0 {
		t.Fatalf("wrong node not caught:\n%s", r.Summary())
	}
}

// TestCheckerCatchesLateDeadline: a queued request failed 2 s after its
// deadline with no nemesis running.
func TestCheckerCatchesLateDeadline(t *testing.T) {
	ev := goodStory().evidence()
	q := &AllocView{ID: "Q", Owner: "o3", State: ironpool.AllocFailed, Tag: "2-1", WaitUntil: at(3000),
		Items: []ItemView{{Flavor: "soak-large", Count: 1}}}
	ev.Allocations["Q"] = q
	ev.Ops = append(ev.Ops, &Op{Client: 2, Kind: OpAllocate, Owner: "o3", Tag: "2-1", TTL: time.Second, Wait: 2 * time.Second,
		Items: []ItemView{{Flavor: "soak-large", Count: 1}}, Call: at(1000), Return: at(1010), Outcome: OK, Status: 202,
		Alloc: &AllocView{ID: "Q", Owner: "o3", State: ironpool.AllocQueued, WaitUntil: at(3000), Tag: "2-1"}})
	ev.Events = append(ev.Events,
		&ironpool.Event{ID: 10, Time: at(1005), Action: "allocation.queued", Subject: "allocation/Q"},
		&ironpool.Event{ID: 11, Time: at(5000), Action: "allocation.failed", Subject: "allocation/Q"})
	r := Check(ev)
	if r.Violations["deadline-late"] == 0 {
		t.Fatalf("late deadline not caught:\n%s", r.Summary())
	}
	// The same delay while the machine stalled is excused, and counted.
	base := ev.Ops
	ev.Ops = append(base, &Op{Kind: OpStall, Call: at(3200), Healed: at(4600)})
	r = Check(ev)
	if r.Violations["deadline-late"] != 0 || r.Excused["deadline-late (machine stall)"] != 1 || r.Stalls != 1 {
		t.Fatalf("a delay during a machine stall should be excused:\n%s", r.Summary())
	}
	// And inside a nemesis window.
	ev.Ops = append(base, &Op{Kind: OpNemesis, Nemesis: "kill -9 replica 0", Call: at(2500), Healed: at(3500)})
	r = Check(ev)
	if r.Violations["deadline-late"] != 0 || r.Excused["deadline-late"] != 1 {
		t.Fatalf("a delay under a nemesis should be excused:\n%s", r.Summary())
	}
}

// TestCheckerClockJumpBound: a leader whose clock ran 1.5 s ahead reaped A
// at its acknowledged expiry by its own clock, 1.4 s early by the client's,
// and B got the node then. Under a recorded jump of 1.5 s that is within
// the promised bound (a lease may end up to the jump early); under a jump
// of 1 s, or none, it is a double allocation.
func TestCheckerClockJumpBound(t *testing.T) {
	ev := goodStory().evidence()
	ev.Ops = append(ev.Ops[:1:1], ev.Ops[2:]...) // nobody releases A
	for _, e := range ev.Events {
		if e.Subject == "allocation/A" && e.Action == "allocation.released" {
			// Its ID stays before B's creation: the commit order.
			e.Action, e.Time = "allocation.expired", at(2010)
		}
	}
	finalA := *ev.Allocations["A"]
	finalA.State = ironpool.AllocExpired
	ev.Allocations["A"] = &finalA
	base := ev.Ops
	for _, c := range []struct {
		jump time.Duration
		ok   bool
	}{{0, false}, {time.Second, false}, {1500 * time.Millisecond, true}} {
		ev.Ops = base
		if c.jump > 0 {
			ev.Ops = append(slicesClone(base), &Op{Kind: OpNemesis, Nemesis: "clock jump", Call: at(0), Healed: at(3000), Skew: c.jump})
		}
		r := Check(ev)
		if got := r.Violations["double-allocation"] == 0; got != c.ok {
			t.Errorf("jump %s: double allocation allowed %v, want %v:\n%s", c.jump, got, c.ok, r.Summary())
		}
		if c.ok && !r.OK() {
			t.Errorf("jump %s: a history within the bound was judged broken:\n%s", c.jump, r.Summary())
		}
	}
}

func slicesClone(ops []*Op) []*Op { return append([]*Op(nil), ops...) }
