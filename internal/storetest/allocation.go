package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

func testAllocate(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "s1", 8), newNode(t, "s2", 8), newNode(t, "s3", 8),
			newNode(t, "m1", 16), newNode(t, "g1", 32, "CUSTOM_GPU"), newNode(t, "g2", 32, "CUSTOM_GPU"))
		a := request("lab1",
			item("small", 2, ironpool.Constraints{CPUs: 8}),
			item("medium", 1, ironpool.Constraints{CPUs: 16}),
			item("gpu", 2, ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}}))
		ttl := a.TTL
		if err := s.Allocate(ctx, a, false); err != nil {
			t.Fatal(err)
		}
		if a.ID == "" || a.State != ironpool.AllocActive {
			t.Fatalf("allocation id=%q state=%s, want an id and active", a.ID, a.State)
		}
		if got := a.ExpiresAt.Sub(a.CreatedAt); got != ttl {
			t.Errorf("lease = %s, want %s", got, ttl)
		}
		wantItems := [][]string{{"s1", "s2"}, {"m1"}, {"g1", "g2"}}
		for i, want := range wantItems {
			got := slices.Sorted(slices.Values(a.Items[i].Nodes))
			if !slices.Equal(got, want) {
				t.Errorf("item %d nodes = %v, want %v", i, got, want)
			}
		}
		if got := names(a.Nodes); !slices.Equal(got, []string{"g1", "g2", "m1", "s1", "s2"}) {
			t.Errorf("a.Nodes = %v", got)
		}
		for _, n := range a.Nodes {
			if n.BMC.Password != "pw-"+n.Name {
				t.Errorf("node %s password = %q, want it opened for the handoff", n.Name, n.BMC.Password)
			}
		}
		for _, name := range []string{"g1", "g2", "m1", "s1", "s2"} {
			n := mustFind(t, s, name)
			if n.State != ironpool.NodeAllocated || n.AllocationID != a.ID || n.Owner != "lab1" || n.LastAllocatedAt.IsZero() {
				t.Errorf("node %s: state=%s allocation=%q owner=%q last=%v", name, n.State, n.AllocationID, n.Owner, n.LastAllocatedAt)
			}
		}
		if n := mustFind(t, s, "s3"); n.State != ironpool.NodeAvailable || n.AllocationID != "" {
			t.Errorf("s3 should stay free: %s %q", n.State, n.AllocationID)
		}
		got, err := s.FindAllocation(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Owner != "lab1" || got.State != ironpool.AllocActive || got.Mode != ironpool.ModeNone ||
			got.Metadata["job"] != "https://ci.example/1" || len(got.Items) != 3 ||
			!got.ExpiresAt.Equal(a.ExpiresAt.Truncate(time.Millisecond)) || got.CreatedAt.IsZero() {
			t.Errorf("FindAllocation = %+v", got)
		}
		for i := range got.Items {
			if !slices.Equal(slices.Sorted(slices.Values(got.Items[i].Nodes)), wantItems[i]) {
				t.Errorf("stored item %d nodes = %v, want %v", i, got.Items[i].Nodes, wantItems[i])
			}
			if got.Items[i].Count != a.Items[i].Count || got.Items[i].Flavor != a.Items[i].Flavor {
				t.Errorf("stored item %d = %+v", i, got.Items[i])
			}
		}
		if got := names(got.Nodes); !slices.Equal(got, []string{"g1", "g2", "m1", "s1", "s2"}) {
			t.Errorf("FindAllocation nodes = %v", got)
		}
		if ev := events(t, s, "allocation.created"); len(ev) != 1 || ev[0].Subject != "allocation/"+a.ID {
			t.Errorf("allocation.created events = %+v, want 1", ev)
		}
		list, err := s.FindAllocations(ctx, ironpool.AllocationFilter{Owner: "lab1", Live: true})
		if err != nil || len(list) != 1 || list[0].ID != a.ID {
			t.Errorf("FindAllocations(lab1, live) = %v, %v", list, err)
		}
	})

	t.Run("ErrCapacity", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "s1", 8), newNode(t, "s2", 8), newNode(t, "big", 64))
		mustAllocate(t, s, request("other", item("", 1, ironpool.Constraints{CPUs: 64})))
		before := takeSnapshot(t, s)
		a := request("lab1",
			item("small", 2, ironpool.Constraints{CPUs: 8}),
			item("big", 1, ironpool.Constraints{CPUs: 64}),
			item("", 1, ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}}))
		err := s.Allocate(ctx, a, false)
		e := wantCode(t, err, ironpool.ECAPACITY)
		want := []ironpool.Shortfall{
			{Item: 0, Flavor: "small", Requested: 2, Matching: 3, Free: 2},
			{Item: 1, Flavor: "big", Requested: 1, Matching: 1, Free: 0},
			{Item: 2, Requested: 1, Matching: 0, Free: 0},
		}
		if !slices.Equal(e.Shortfall, want) {
			t.Errorf("shortfall = %+v, want %+v", e.Shortfall, want)
		}
		if e.Message == "" {
			t.Error("capacity error has no message")
		}
		sameSnapshot(t, s, before, "refused allocation")
		live, _ := s.FindAllocations(ctx, ironpool.AllocationFilter{Owner: "lab1"})
		if len(live) != 0 {
			t.Errorf("refused allocation was stored: %+v", live)
		}
	})

	t.Run("ErrCapacityAllOrNothing", func(t *testing.T) {
		// Every item but the last fits: the ones that fit must not be taken.
		s := open(t)
		mustCreate(t, s, newNode(t, "s1", 8), newNode(t, "s2", 8), newNode(t, "m1", 16))
		before := takeSnapshot(t, s)
		err := s.Allocate(ctxFor(t), request("lab1",
			item("", 2, ironpool.Constraints{CPUs: 8}),
			item("", 2, ironpool.Constraints{CPUs: 16})), false)
		e := wantCode(t, err, ironpool.ECAPACITY)
		if len(e.Shortfall) != 2 || e.Shortfall[1].Matching != 1 || e.Shortfall[1].Free != 1 {
			t.Errorf("shortfall = %+v", e.Shortfall)
		}
		sameSnapshot(t, s, before, "refused allocation")
	})

	t.Run("Adversarial", func(t *testing.T) {
		// The GPU node is the best fit for "any" as well; a greedy matcher
		// would give it to the first item and then fail the second.
		s := open(t)
		mustCreate(t, s, newNode(t, "gpu", 16, "CUSTOM_GPU"), newNode(t, "plain", 64))
		a := mustAllocate(t, s, request("lab1",
			item("any", 1, anyNode()),
			item("gpu", 1, ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}})))
		if !slices.Equal(a.Items[0].Nodes, []string{"plain"}) || !slices.Equal(a.Items[1].Nodes, []string{"gpu"}) {
			t.Errorf("items = %v / %v, want [plain] / [gpu]", a.Items[0].Nodes, a.Items[1].Nodes)
		}
	})

	t.Run("AdversarialBig", func(t *testing.T) {
		// One big node: "any" must leave it to the item that needs it even
		// when "any" comes first and asks for more.
		s := open(t)
		mustCreate(t, s, newNode(t, "big", 64), newNode(t, "s1", 8), newNode(t, "s2", 8))
		a := mustAllocate(t, s, request("lab1",
			item("any", 2, anyNode()),
			item("big", 1, ironpool.Constraints{CPUs: 64})))
		if got := slices.Sorted(slices.Values(a.Items[0].Nodes)); !slices.Equal(got, []string{"s1", "s2"}) {
			t.Errorf("any = %v, want [s1 s2]", got)
		}
		if !slices.Equal(a.Items[1].Nodes, []string{"big"}) {
			t.Errorf("big = %v, want [big]", a.Items[1].Nodes)
		}
	})

	t.Run("BestFit", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "n64", 64), newNode(t, "n32", 32), newNode(t, "n16", 16), newNode(t, "n8", 8))
		for _, tc := range []struct {
			cpus int
			want string
		}{{10, "n16"}, {4, "n8"}, {4, "n32"}, {1, "n64"}} {
			a := mustAllocate(t, s, request("lab1", item("", 1, ironpool.Constraints{CPUs: tc.cpus})))
			if !slices.Equal(a.Items[0].Nodes, []string{tc.want}) {
				t.Errorf("cpus>=%d took %v, want [%s]", tc.cpus, a.Items[0].Nodes, tc.want)
			}
		}
	})

	t.Run("BestFitLeastRecentlyAllocated", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, newNode(t, "t1", 8), newNode(t, "t2", 8), newNode(t, "t3", 8))
		var order []string
		for range 4 {
			a := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
			order = append(order, a.Items[0].Nodes...)
			mustRelease(t, s, a.ID, true)
			time.Sleep(3 * time.Millisecond) // timestamps are milliseconds
		}
		// Equal nodes take turns: the one allocated longest ago goes next.
		if !slices.Equal(order, []string{"t1", "t2", "t3", "t1"}) {
			t.Errorf("picks = %v, want [t1 t2 t3 t1]", order)
		}
	})

	t.Run("SkipsUnavailable", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mnt, cln := newNode(t, "mnt", 8), newNode(t, "cln", 8)
		mnt.State, cln.State = ironpool.NodeMaintenance, ironpool.NodeCleaning
		mustCreate(t, s, mnt, cln, newNode(t, "ok", 32))
		a := mustAllocate(t, s, request("lab1", item("", 1, anyNode())))
		if !slices.Equal(a.Items[0].Nodes, []string{"ok"}) {
			t.Errorf("took %v, want [ok]", a.Items[0].Nodes)
		}
		err := s.Allocate(ctx, request("lab1", item("", 1, anyNode())), false)
		e := wantCode(t, err, ironpool.ECAPACITY)
		if e.Shortfall[0].Matching != 3 || e.Shortfall[0].Free != 0 {
			t.Errorf("shortfall = %+v, want 3 matching, 0 free", e.Shortfall)
		}
	})

	t.Run("Plan", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "s1", 8), newNode(t, "s2", 8), newNode(t, "big", 64, "CUSTOM_GPU"))
		before := takeSnapshot(t, s)
		a := request("lab1", item("small", 2, ironpool.Constraints{CPUs: 8}), item("gpu", 1, ironpool.Constraints{Traits: []string{"CUSTOM_GPU"}}))
		p, err := s.Plan(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Satisfiable {
			t.Error("plan not satisfiable")
		}
		wantPicks := []ironpool.Pick{{Item: 0, Node: "s1"}, {Item: 0, Node: "s2"}, {Item: 1, Node: "big"}}
		if !slices.Equal(p.Picks, wantPicks) {
			t.Errorf("picks = %+v, want %+v", p.Picks, wantPicks)
		}
		if len(p.Capacity) != 2 ||
			p.Capacity[0].Requested != 2 || p.Capacity[0].Matching != 3 || p.Capacity[0].Free != 3 || p.Capacity[0].Flavor != "small" ||
			p.Capacity[1].Requested != 1 || p.Capacity[1].Matching != 1 || p.Capacity[1].Free != 1 {
			t.Errorf("capacity = %+v", p.Capacity)
		}
		if a.ID != "" || a.State != "" {
			t.Errorf("Plan changed the request: id=%q state=%q", a.ID, a.State)
		}
		sameSnapshot(t, s, before, "Plan")

		// What the plan shows is what Allocate then takes.
		got := mustAllocate(t, s, a)
		if !slices.Equal(got.Items[0].Nodes, []string{"s1", "s2"}) || !slices.Equal(got.Items[1].Nodes, []string{"big"}) {
			t.Errorf("allocation took %v / %v, plan said s1 s2 / big", got.Items[0].Nodes, got.Items[1].Nodes)
		}

		before = takeSnapshot(t, s)
		p, err = s.Plan(ctx, request("lab1", item("small", 1, ironpool.Constraints{CPUs: 8})))
		if err != nil {
			t.Fatal(err)
		}
		if p.Satisfiable || len(p.Picks) != 0 {
			t.Errorf("plan on a full pool = %+v, want unsatisfiable with no picks", p)
		}
		if len(p.Capacity) != 1 || p.Capacity[0].Matching != 3 || p.Capacity[0].Free != 0 {
			t.Errorf("capacity = %+v, want 3 matching, 0 free", p.Capacity)
		}
		sameSnapshot(t, s, before, "unsatisfiable Plan")
	})
}

func testQueue(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("Queued", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		x := mustAllocate(t, s, request("x", item("", 1, anyNode())))
		before := takeSnapshot(t, s)
		q := queued("lab1", time.Hour, item("", 1, anyNode()))
		if err := s.Allocate(ctx, q, true); err != nil {
			t.Fatalf("Allocate(queue): %v", err)
		}
		if q.ID == "" || q.State != ironpool.AllocQueued || len(q.Nodes) != 0 {
			t.Fatalf("queued request: id=%q state=%s nodes=%d", q.ID, q.State, len(q.Nodes))
		}
		got, err := s.FindAllocation(ctx, q.ID)
		if err != nil || got.State != ironpool.AllocQueued || !got.WaitUntil.Equal(q.WaitUntil.Truncate(time.Millisecond)) {
			t.Fatalf("FindAllocation = %+v, %v", got, err)
		}
		if n := mustFind(t, s, "n1"); n.AllocationID != x.ID {
			t.Errorf("queueing moved n1 to %q", n.AllocationID)
		}
		if got := countEvents(t, s, "allocation.queued"); got != 1 {
			t.Errorf("allocation.queued events = %d, want 1", got)
		}
		if after := takeSnapshot(t, s); after.Allocations != before.Allocations+1 || after.Events != before.Events+1 {
			t.Errorf("queueing: allocations %d→%d events %d→%d", before.Allocations, after.Allocations, before.Events, after.Events)
		}

		// Nothing frees up: dispatching changes nothing.
		before = takeSnapshot(t, s)
		changed, err := s.DispatchQueue(ctx, time.Now())
		if err != nil || len(changed) != 0 {
			t.Fatalf("DispatchQueue on a full pool = %v, %v", changed, err)
		}
		sameSnapshot(t, s, before, "DispatchQueue on a full pool")

		mustRelease(t, s, x.ID, true)
		changed, err = s.DispatchQueue(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 1 || changed[0].ID != q.ID || changed[0].State != ironpool.AllocActive ||
			len(changed[0].Nodes) != 1 || changed[0].ExpiresAt.IsZero() {
			t.Fatalf("DispatchQueue = %+v, want %s active with 1 node", changed[0], q.ID)
		}
		if n := mustFind(t, s, "n1"); n.AllocationID != q.ID || n.State != ironpool.NodeAllocated || n.Owner != "lab1" {
			t.Errorf("n1 = %s %q %q, want allocated to %s", n.State, n.AllocationID, n.Owner, q.ID)
		}
		got, _ = s.FindAllocation(ctx, q.ID)
		if got.State != ironpool.AllocActive || len(got.Nodes) != 1 || !slices.Equal(got.Items[0].Nodes, []string{"n1"}) {
			t.Errorf("dispatched allocation = %+v", got)
		}
		if d := got.ExpiresAt.Sub(time.Now()); d < 50*time.Minute || d > time.Hour+time.Minute {
			t.Errorf("dispatched lease ends in %s, want about the requested hour from dispatch", d)
		}
	})

	t.Run("FIFO", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		n1, n2 := newNode(t, "n1", 8), newNode(t, "n2", 8)
		mustCreate(t, s, n1, n2)
		x := mustAllocate(t, s, request("x", item("", 2, anyNode())))
		head := queued("head", time.Hour, item("", 2, anyNode()))
		small := queued("small", time.Hour, item("", 1, anyNode()))
		for _, q := range []*ironpool.Allocation{head, small} {
			if err := s.Allocate(ctx, q, true); err != nil || q.State != ironpool.AllocQueued {
				t.Fatalf("Allocate(%s, queue) = %v, state %s", q.Owner, err, q.State)
			}
		}
		mustRelease(t, s, x.ID, false)
		if err := s.FinishCleaning(ctx, n1.ID, ""); err != nil {
			t.Fatal(err)
		}
		// One node is free: enough for "small", not for the head. The head
		// must not be overtaken.
		changed, err := s.DispatchQueue(ctx, time.Now())
		if err != nil || len(changed) != 0 {
			t.Fatalf("DispatchQueue with 1 free = %+v, %v; want nothing (head needs 2)", changed, err)
		}
		if n := mustFind(t, s, "n1"); n.State != ironpool.NodeAvailable {
			t.Errorf("n1 = %s, want still available", n.State)
		}
		if err := s.FinishCleaning(ctx, n2.ID, ""); err != nil {
			t.Fatal(err)
		}
		changed, err = s.DispatchQueue(ctx, time.Now())
		if err != nil || len(changed) != 1 || changed[0].ID != head.ID {
			t.Fatalf("DispatchQueue with 2 free = %+v, %v; want the head only", changed, err)
		}
		if got, _ := s.FindAllocation(ctx, small.ID); got.State != ironpool.AllocQueued {
			t.Errorf("small = %s, want still queued", got.State)
		}
		mustRelease(t, s, head.ID, true)
		changed, err = s.DispatchQueue(ctx, time.Now())
		if err != nil || len(changed) != 1 || changed[0].ID != small.ID || changed[0].State != ironpool.AllocActive {
			t.Fatalf("DispatchQueue after the head left = %+v, %v; want small active", changed, err)
		}
		if got := countEvents(t, s, "allocation.created"); got != 3 {
			t.Errorf("allocation.created events = %d, want 3 (x, head, small)", got)
		}
	})

	t.Run("BehindQueued", func(t *testing.T) {
		// A request that fits now still waits behind earlier ones.
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8))
		mustAllocate(t, s, request("x", item("", 1, anyNode())))
		head := queued("head", time.Hour, item("", 2, anyNode()))
		if err := s.Allocate(ctx, head, true); err != nil || head.State != ironpool.AllocQueued {
			t.Fatalf("head: %v %s", err, head.State)
		}
		late := queued("late", time.Hour, item("", 1, anyNode()))
		if err := s.Allocate(ctx, late, true); err != nil {
			t.Fatal(err)
		}
		if late.State != ironpool.AllocQueued {
			t.Errorf("late request = %s, want queued behind the head", late.State)
		}
		if n := mustFind(t, s, "n2"); n.State != ironpool.NodeAvailable {
			t.Errorf("n2 = %s, want available", n.State)
		}
	})

	t.Run("Deadline", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		mustCreate(t, s, newNode(t, "n1", 8))
		mustAllocate(t, s, request("x", item("", 1, anyNode())))
		q := queued("lab1", time.Minute, item("", 1, anyNode()))
		if err := s.Allocate(ctx, q, true); err != nil {
			t.Fatal(err)
		}
		changed, err := s.DispatchQueue(ctx, q.WaitUntil.Add(-time.Second))
		if err != nil || len(changed) != 0 {
			t.Fatalf("DispatchQueue before the deadline = %+v, %v", changed, err)
		}
		changed, err = s.DispatchQueue(ctx, q.WaitUntil.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(changed) != 1 || changed[0].ID != q.ID || changed[0].State != ironpool.AllocFailed || changed[0].LastError == "" {
			t.Fatalf("DispatchQueue after the deadline = %+v, want %s failed with a reason", changed, q.ID)
		}
		got, _ := s.FindAllocation(ctx, q.ID)
		if got.State != ironpool.AllocFailed || got.LastError == "" {
			t.Errorf("stored = %s %q, want failed with last_error", got.State, got.LastError)
		}
		if n := countEvents(t, s, "allocation.failed"); n != 1 {
			t.Errorf("allocation.failed events = %d, want 1", n)
		}
		// A failed head no longer blocks the queue.
		late := queued("late", time.Hour, item("", 1, anyNode()))
		if err := s.Allocate(ctx, late, true); err != nil {
			t.Fatal(err)
		}
		if live, _ := s.FindAllocations(ctx, ironpool.AllocationFilter{State: ironpool.AllocQueued}); len(live) != 1 || live[0].ID != late.ID {
			t.Errorf("queued = %v, want only %s", live, late.ID)
		}
	})
}
