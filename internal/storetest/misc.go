package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/secret"
)

func testEvents(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		if err := s.AddEvent(ctx, &ironpool.Event{Action: "power.on", Subject: "node/n1", Summary: "powered on"}); err != nil {
			t.Fatal(err)
		}
		// Without an actor in the context, events are the system's.
		if err := s.AddEvent(context.Background(), &ironpool.Event{Action: "power.off", Subject: "node/n2", Summary: "powered off"}); err != nil {
			t.Fatal(err)
		}
		ev := events(t, s, "")
		if len(ev) != 2 {
			t.Fatalf("events = %+v, want 2", ev)
		}
		if e := ev[0]; e.Action != "power.on" || e.Subject != "node/n1" || e.Summary != "powered on" ||
			e.Actor != testActor.TokenID || e.Role != ironpool.RoleAdmin || e.Time.IsZero() || e.ID == 0 {
			t.Errorf("event = %+v", e)
		}
		if e := ev[1]; e.Actor != ironpool.System.TokenID || e.ID <= ev[0].ID {
			t.Errorf("second event = %+v, want the system actor and a larger id", e)
		}
	})

	t.Run("Filter", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		for i := range 6 {
			action := []string{"a.one", "a.two"}[i%2]
			subject := fmt.Sprintf("node/n%d", i%3)
			if err := s.AddEvent(ctx, &ironpool.Event{Action: action, Subject: subject, Summary: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		all := events(t, s, "")
		summaries := func(ev []*ironpool.Event) string {
			var out []string
			for _, e := range ev {
				out = append(out, e.Summary)
			}
			return strings.Join(out, ",")
		}
		for _, tc := range []struct {
			name string
			f    ironpool.EventFilter
			want string
		}{
			{"All", ironpool.EventFilter{}, "0,1,2,3,4,5"},
			{"AfterID", ironpool.EventFilter{AfterID: all[2].ID}, "3,4,5"},
			{"AfterLast", ironpool.EventFilter{AfterID: all[5].ID}, ""},
			{"Subject", ironpool.EventFilter{Subject: "node/n1"}, "1,4"},
			{"Action", ironpool.EventFilter{Action: "a.two"}, "1,3,5"},
			{"SubjectAndAction", ironpool.EventFilter{Subject: "node/n0", Action: "a.one"}, "0"},
			{"AfterIDAndAction", ironpool.EventFilter{AfterID: all[1].ID, Action: "a.one"}, "2,4"},
			{"Limit", ironpool.EventFilter{Limit: 2}, "0,1"},
			{"Tail", ironpool.EventFilter{Tail: 2}, "4,5"},
			{"TailOfAction", ironpool.EventFilter{Tail: 2, Action: "a.one"}, "2,4"},
			{"TailLongerThanAll", ironpool.EventFilter{Tail: 50}, "0,1,2,3,4,5"},
			{"Since", ironpool.EventFilter{Since: time.Now().Add(time.Hour)}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ev, err := s.FindEvents(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if got := summaries(ev); got != tc.want {
					t.Errorf("FindEvents(%+v) = %q, want %q", tc.f, got, tc.want)
				}
			})
		}
	})
}

func testTokens(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		tok := &ironpool.Token{ID: "t1", Role: ironpool.RoleUser, Owners: []string{"lab1", "lab2"}, Description: "CI", Hash: "hash-1"}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindTokenByHash(ctx, "hash-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != "t1" || got.Role != ironpool.RoleUser || !slices.Equal(got.Owners, tok.Owners) ||
			got.Description != "CI" || got.CreatedAt.IsZero() || !got.RevokedAt.IsZero() {
			t.Errorf("FindTokenByHash = %+v", got)
		}
		_, err = s.FindTokenByHash(ctx, "hash-unknown")
		wantCode(t, err, ironpool.ENOTFOUND)
		if err := s.CreateToken(ctx, &ironpool.Token{ID: "t2", Role: ironpool.RoleAdmin, Owners: []string{}, Hash: "hash-2"}); err != nil {
			t.Fatal(err)
		}
		list, err := s.FindTokens(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("FindTokens = %v, %v", list, err)
		}
		if n := countEvents(t, s, "token.created"); n != 2 {
			t.Errorf("token.created events = %d, want 2", n)
		}
		for _, e := range events(t, s, "") {
			if strings.Contains(e.Summary, "hash-") {
				t.Errorf("event leaks a token hash: %q", e.Summary)
			}
		}
	})

	t.Run("ErrDuplicate", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		if err := s.CreateToken(ctx, &ironpool.Token{ID: "t1", Role: ironpool.RoleUser, Hash: "h1"}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.CreateToken(ctx, &ironpool.Token{ID: "t1", Role: ironpool.RoleUser, Hash: "h2"}), ironpool.ECONFLICT)
		wantCode(t, s.CreateToken(ctx, &ironpool.Token{ID: "t2", Role: ironpool.RoleUser, Hash: "h1"}), ironpool.ECONFLICT)
		if list, _ := s.FindTokens(ctx); len(list) != 1 {
			t.Errorf("tokens = %d, want 1", len(list))
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		if err := s.CreateToken(ctx, &ironpool.Token{ID: "t1", Role: ironpool.RoleUser, Hash: "h1"}); err != nil {
			t.Fatal(err)
		}
		// Looked up first, as every request does: a store that caches
		// tokens holds t1 now, and the revocation must still refuse the
		// very next lookup (not one after the cache's bound).
		for range 2 {
			if _, err := s.FindTokenByHash(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeToken(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		_, err := s.FindTokenByHash(ctx, "h1")
		wantCode(t, err, ironpool.ENOTFOUND)
		list, _ := s.FindTokens(ctx)
		if len(list) != 1 || list[0].RevokedAt.IsZero() {
			t.Errorf("FindTokens = %+v, want t1 listed as revoked", list)
		}
		// Revoking twice is not an error and records nothing new.
		before := countEvents(t, s, "")
		if err := s.RevokeToken(ctx, "t1"); err != nil {
			t.Errorf("second revoke: %v", err)
		}
		if after := countEvents(t, s, ""); after != before {
			t.Errorf("second revoke wrote %d events", after-before)
		}
		if n := countEvents(t, s, "token.revoked"); n != 1 {
			t.Errorf("token.revoked events = %d, want 1", n)
		}
		wantCode(t, s.RevokeToken(ctx, "t-unknown"), ironpool.ENOTFOUND)
	})

	t.Run("CreateFirstToken", func(t *testing.T) {
		s := open(t)
		ctx := ctxFor(t)
		// Replicas starting together race here: exactly one must win.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.CreateFirstToken(ctx, &ironpool.Token{ID: fmt.Sprintf("first-%d", i), Role: ironpool.RoleAdmin,
					Owners: []string{ironpool.AnyOwner}, Hash: fmt.Sprintf("h-%d", i)})
				if err != nil {
					t.Errorf("CreateFirstToken: %v", err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d CreateFirstToken calls won, want exactly 1", wins)
		}
		ok, err := s.CreateFirstToken(ctx, &ironpool.Token{ID: "late", Role: ironpool.RoleAdmin, Hash: "h-late"})
		if err != nil || ok {
			t.Errorf("CreateFirstToken on a store with a token = %v, %v; want false", ok, err)
		}
		if list, _ := s.FindTokens(ctx); len(list) != 1 {
			t.Errorf("tokens = %d, want 1", len(list))
		}
		if n := countEvents(t, s, "token.created"); n != 1 {
			t.Errorf("token.created events = %d, want 1", n)
		}
	})
}

func testTryLease(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	c := withClock(t, s)
	ctx := ctxFor(t)
	try := func(name, holder string, want bool) {
		t.Helper()
		got, err := s.TryLease(ctx, name, holder, 10*time.Second)
		if err != nil {
			t.Fatalf("TryLease(%s, %s): %v", name, holder, err)
		}
		if got != want {
			t.Errorf("TryLease(%s, %s) at %s = %v, want %v", name, holder, c.Now().Format(time.TimeOnly), got, want)
		}
	}
	try("reaper", "a", true)
	try("reaper", "b", false)
	try("queue", "b", true) // leases are independent
	c.Add(8 * time.Second)
	try("reaper", "a", true) // renews: now good until +18s
	c.Add(8 * time.Second)
	try("reaper", "b", false) // a's renewal still holds
	c.Add(3 * time.Second)
	try("reaper", "b", true) // expired: b takes over
	try("reaper", "a", false)
	try("queue", "a", true) // b never renewed it
	try("queue", "b", false)
	// Giving a lease up hands it over at once, long before its expiry;
	// giving up a lease one does not hold changes nothing.
	if err := s.ReleaseLease(ctx, "queue", "b"); err != nil {
		t.Fatal(err)
	}
	try("queue", "b", false)
	if err := s.ReleaseLease(ctx, "queue", "a"); err != nil {
		t.Fatal(err)
	}
	try("queue", "b", true)
}

func testSecrets(t *testing.T, open func(t *testing.T) ironpool.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		db := rawDB(t, s)
		ctx := ctxFor(t)
		n := newNode(t, "n1", 8)
		n.BMC.Password = "Zebra-Quartz-8127!"
		empty := newNode(t, "n2", 8)
		empty.BMC.Password = ""
		mustCreate(t, s, n, empty)
		if got := mustFind(t, s, "n1").BMC.Password; got != "Zebra-Quartz-8127!" {
			t.Errorf("password = %q, want it back", got)
		}
		if got := mustFind(t, s, "n2").BMC.Password; got != "" {
			t.Errorf("empty password = %q", got)
		}
		raw := rawPasswords(t, db)
		if raw["n1"] == "" || strings.Contains(raw["n1"], "Zebra-Quartz-8127!") {
			t.Errorf("stored password = %q, want it sealed", raw["n1"])
		}
		if _, err := s.UpdateNode(ctx, "n1", func(n *ironpool.Node) error { n.BMC.Password = "Otter-Basalt-3355?"; return nil }); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "n1").BMC.Password; got != "Otter-Basalt-3355?" {
			t.Errorf("updated password = %q", got)
		}
		if raw := rawPasswords(t, db); strings.Contains(raw["n1"], "Otter-Basalt-3355?") {
			t.Errorf("updated password stored in clear: %q", raw["n1"])
		}
		// A sealed value is bound to its node: copied to another row it does not open.
		if _, err := db.ExecContext(ctx, `UPDATE nodes SET bmc_password = $1 WHERE name = $2`, rawPasswords(t, db)["n1"], "n2"); err != nil {
			t.Fatal(err)
		}
		if got := mustFind(t, s, "n2"); got.BMC.Password != "" || got.BMC.PasswordError == "" {
			t.Errorf("a password copied from n1 to n2: password %q, password_error %q; want it unopened and reported",
				got.BMC.Password, got.BMC.PasswordError)
		}
	})

	t.Run("Reseal", func(t *testing.T) {
		s := open(t)
		db := rawDB(t, s)
		setter, ok := s.(SealerSetter)
		if !ok {
			t.Skipf("skipped: %T does not implement storetest.SealerSetter, so the key cannot be rotated", s)
		}
		ctx := ctxFor(t)
		oldKey, newKey := mustKey(t), mustKey(t)
		setter.SetSealer(mustRing(t, oldKey))
		var nodes []*ironpool.Node
		for i := range 5 {
			n := newNode(t, fmt.Sprintf("n%d", i), 8)
			n.BMC.Password = fmt.Sprintf("Secret-%d-Walrus", i)
			nodes = append(nodes, n)
		}
		nodes[4].BMC.Password = "" // nothing to seal
		mustCreate(t, s, nodes...)
		before := rawPasswords(t, db)

		ring := mustRing(t, newKey, oldKey)
		setter.SetSealer(ring)
		res, err := s.Reseal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.KeyID != ring.KeyID() {
			t.Errorf("Reseal reports key %q, want the current key %q", res.KeyID, ring.KeyID())
		}
		if res.Resealed != 4 || len(res.Skipped) != 0 {
			t.Errorf("Reseal = %+v, want 4 rewritten and none skipped", res)
		}
		after := rawPasswords(t, db)
		for _, nd := range nodes {
			b, a := before[nd.Name], after[nd.Name]
			if nd.BMC.Password == "" {
				if a != "" {
					t.Errorf("%s: empty password became %q", nd.Name, a)
				}
				continue
			}
			if a == b {
				t.Errorf("%s: stored value unchanged by Reseal", nd.Name)
			}
			if ring.NeedsReseal(a) {
				t.Errorf("%s: still sealed under the old key", nd.Name)
			}
			if strings.Contains(a, nd.BMC.Password) {
				t.Errorf("%s: password stored in clear", nd.Name)
			}
		}
		// The old key can go now: every password opens with the new one alone.
		setter.SetSealer(mustRing(t, newKey))
		for _, nd := range nodes {
			if got := mustFind(t, s, nd.Name).BMC.Password; got != nd.BMC.Password {
				t.Errorf("%s: password = %q after rotation, want %q", nd.Name, got, nd.BMC.Password)
			}
		}
		if n := countEvents(t, s, "key.rotated"); n != 1 {
			t.Errorf("key.rotated events = %d, want 1", n)
		}
		// Running it again (after an interruption, say) is harmless.
		if res, err := s.Reseal(ctx); err != nil || res.Resealed != 0 {
			t.Errorf("second Reseal = %+v (err %v), want 0 rewritten: all are under the current key", res, err)
		}
		for _, nd := range nodes {
			if got := mustFind(t, s, nd.Name).BMC.Password; got != nd.BMC.Password {
				t.Errorf("%s: password = %q after a second Reseal, want %q", nd.Name, got, nd.BMC.Password)
			}
		}
	})
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := secret.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testResealRacesPasswordChanges rotates the key while every node's
// password is being changed. Reseal must never write back a password it
// read before a change committed: every acknowledged change survives.
func testResealRacesPasswordChanges(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	setter, ok := s.(SealerSetter)
	if !ok {
		t.Skipf("skipped: %T does not implement storetest.SealerSetter, so the key cannot be rotated", s)
	}
	ctx := ctxFor(t)
	oldKey, newKey := mustKey(t), mustKey(t)
	setter.SetSealer(mustRing(t, oldKey))
	const count = 150
	nodes := numberedNodes(t, "n%03d", count, 8)
	mustCreate(t, s, nodes...)
	setter.SetSealer(mustRing(t, newKey, oldKey))

	var wg sync.WaitGroup
	errs := make(chan error, count+1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.Reseal(ctx); err != nil {
			errs <- fmt.Errorf("reseal: %w", err)
		}
	}()
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < count; i += workers {
				name := nodes[i].Name
				if _, err := s.UpdateNode(ctx, name, func(n *ironpool.Node) error {
					n.BMC.Password = "changed-" + name
					return nil
				}); err != nil {
					errs <- fmt.Errorf("set %s: %w", name, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	lost := 0
	for _, n := range nodes {
		if got := mustFind(t, s, n.Name).BMC.Password; got != "changed-"+n.Name {
			lost++
			t.Errorf("%s: password %q after an acknowledged change to %q", n.Name, got, "changed-"+n.Name)
		}
	}
	if lost > 0 {
		t.Errorf("reseal reverted %d of %d acknowledged password changes", lost, count)
	}
}

func mustRing(t *testing.T, current []byte, old ...[]byte) *secret.Keyring {
	t.Helper()
	k, err := secret.New(current, old...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawPasswords reads nodes.bmc_password as stored, by node name.
func rawPasswords(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT name, bmc_password FROM nodes`)
	if err != nil {
		t.Fatalf("read raw passwords: %v", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, sealed string
		if err := rows.Scan(&name, &sealed); err != nil {
			t.Fatal(err)
		}
		out[name] = sealed
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func testStatus(t *testing.T, open func(t *testing.T) ironpool.Store) {
	s := open(t)
	ctx := ctxFor(t)
	if err := s.CreateFlavor(ctx, &ironpool.Flavor{Name: "big", Constraints: ironpool.Constraints{CPUs: 32}}); err != nil {
		t.Fatal(err)
	}
	lab := newNode(t, "l1", 64)
	lab.Pool = "lab"
	mnt := newNode(t, "m1", 8)
	mnt.State = ironpool.NodeMaintenance
	mustCreate(t, s, newNode(t, "n1", 8), newNode(t, "n2", 8), newNode(t, "n3", 32), lab, mnt)
	a := request("lab1", item("", 2, ironpool.Constraints{Pool: ironpool.DefaultPool}))
	a.TTL = 30 * time.Minute
	mustAllocate(t, s, a)
	far := request("lab2", item("", 1, ironpool.Constraints{Pool: "lab"}))
	far.TTL = 3 * time.Hour
	mustAllocate(t, s, far)
	if err := s.Allocate(ctx, queued("lab3", time.Hour, item("", 5, anyNode())), true); err != nil {
		t.Fatal(err)
	}

	st, err := s.Status(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantNodes := []ironpool.StateCount{
		{Pool: "default", State: ironpool.NodeAllocated, Count: 2},
		{Pool: "default", State: ironpool.NodeAvailable, Count: 1},
		{Pool: "default", State: ironpool.NodeMaintenance, Count: 1},
		{Pool: "lab", State: ironpool.NodeAllocated, Count: 1},
	}
	if !slices.Equal(st.Nodes, wantNodes) {
		t.Errorf("status nodes = %+v, want %+v", st.Nodes, wantNodes)
	}
	wantOwners := []ironpool.OwnerCount{{Owner: "lab1", Allocations: 1, Nodes: 2}, {Owner: "lab2", Allocations: 1, Nodes: 1}}
	if !slices.Equal(st.Owners, wantOwners) {
		t.Errorf("status owners = %+v, want %+v", st.Owners, wantOwners)
	}
	if st.Queued != 1 {
		t.Errorf("queued = %d, want 1", st.Queued)
	}
	if len(st.Expiring) != 1 || st.Expiring[0].ID != a.ID {
		t.Errorf("expiring = %+v, want only %s (the lease ending within the hour), not %s", st.Expiring, a.ID, far.ID)
	}

	capa, err := s.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCap := []ironpool.CapacityRow{
		{Flavor: "any", Pool: "default", Free: 1, Total: 4},
		{Flavor: "any", Pool: "lab", Free: 0, Total: 1},
		{Flavor: "big", Pool: "default", Free: 1, Total: 1},
		{Flavor: "big", Pool: "lab", Free: 0, Total: 1},
	}
	if !slices.Equal(capa, wantCap) {
		t.Errorf("capacity = %+v, want %+v", capa, wantCap)
	}
	if !slices.Equal(st.Capacity, wantCap) {
		t.Errorf("status capacity = %+v, want %+v", st.Capacity, wantCap)
	}
}
