package cli_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
	"github.com/ironpool/ironpool/internal/service"
)

// offsetClock is real time moved forward by what the test adds, shared by
// the server's store, service and reconciler (server.Main.Now): windows
// begin and leases run out without sleeping, while timers keep working.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *offsetClock) Add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

type reservationView struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	AllocationID string `json:"allocation_id"`
	Start, End   time.Time
	Items        []struct {
		Nodes []string `json:"nodes"`
	} `json:"items"`
}

// TestReservationEndToEnd books a window through the CLI against a real
// server with a controlled clock, checks that bad bookings and an extend
// that would run into the window are refused without changing anything,
// then moves the clock to the start and sees the reservation become an
// allocation whose nodes are handed off, expiring at the window's end.
func TestReservationEndToEnd(t *testing.T) {
	clk := &offsetClock{}
	e := &env{t: t, m: servertest.Start(t, &server.Main{Now: clk.Now,
		Pool: service.Config{ReservationGap: 10 * time.Minute}})}
	e.seed() // 6 large nodes: n02 n05 n08 n11 n14 n17

	var r reservationView
	e.jsonOf(&r, "reserve", "--owner", "lab1", "--flavor", "large=2", "--start", "+2h", "--end", "+4h")
	if r.ID == "" || r.State != "pending" || len(r.Items) != 1 || len(r.Items[0].Nodes) != 2 {
		t.Fatalf("reserve = %+v, want pending with two named nodes", r)
	}
	reserved := r.Items[0].Nodes

	// Bad bookings: refused before or by the server, nothing changed.
	before := e.snapshot()
	for _, c := range []struct {
		args  []string
		code  int
		field string
	}{
		{[]string{"--flavor", "large=1", "--start", "2020-01-01T00:00:00Z", "--end", "+1h"}, 2, "start"},
		{[]string{"--flavor", "large=1", "--start", "+3h", "--end", "+2h"}, 2, "end"},
		{[]string{"--flavor", "large=1", "--start", "+3h", "--end", "tomorrow"}, 2, "end"},
		{[]string{"--flavor", "nosuch=1", "--start", "+3h", "--end", "+4h"}, 2, "items[0].flavor"},
		{[]string{"--flavor", "large=0", "--start", "+3h", "--end", "+4h"}, 2, "items[0].count"},
		// Six large nodes, two promised from +2h to +4h (and the gap).
		{[]string{"--flavor", "small=1", "--flavor", "large=5", "--start", "+3h", "--end", "+5h"}, 3, "items[1]"},
	} {
		_, errs, code := e.run(append([]string{"reserve", "--owner", "lab2"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.field+": ") {
			t.Errorf("reserve %v: exit %d %q, want exit %d naming %s", c.args, code, errs, c.code, c.field)
		}
		if c.code == 3 && !strings.Contains(errs, "short from") {
			t.Errorf("refusal %q does not name the short interval", errs)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused bookings changed the pool:\n%s\n%s", before, after)
	}

	// A lease ending before the window (and its gap) may use the nodes;
	// extending it into the window is refused, naming the reservation.
	var a struct {
		ID        string    `json:"id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	e.jsonOf(&a, "allocate", "--owner", "lab2", "--flavor", "large=6", "--ttl", "1h")
	_, errs, code := e.run("allocation", "extend", a.ID, "--ttl", "3h")
	if code != 6 || !strings.Contains(errs, r.ID) || !strings.Contains(errs, "ttl: ") {
		t.Errorf("extend into the window: exit %d %q, want 6 naming reservation %s", code, errs, r.ID)
	}
	var still struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	e.jsonOf(&still, "allocation", "show", a.ID)
	if !still.ExpiresAt.Equal(a.ExpiresAt.Truncate(time.Millisecond)) {
		t.Errorf("refused extend moved the expiry from %v to %v", a.ExpiresAt, still.ExpiresAt)
	}
	e.ok("allocation", "extend", a.ID, "--ttl", "90m") // ends 30 min before the window: fine
	e.ok("release", a.ID)

	// The calendar shows the promise: 4 of 6 large nodes free in the window.
	var cal struct {
		Flavors []struct {
			Flavor string `json:"flavor"`
			Total  int    `json:"total"`
			Slots  []struct {
				Start, End time.Time
				Free       int `json:"free"`
			} `json:"slots"`
		} `json:"flavors"`
	}
	e.jsonOf(&cal, "calendar", "--by", "flavor", "--from", "+1h", "--to", "+6h")
	found := false
	for _, f := range cal.Flavors {
		if f.Flavor != "large" {
			continue
		}
		for _, s := range f.Slots {
			if !s.Start.After(r.Start) && s.End.After(r.Start) {
				found = s.Free == 4 && f.Total == 6
			}
		}
	}
	if !found {
		t.Errorf("calendar does not show 4 of 6 large nodes free at the start: %+v", cal.Flavors)
	}
	if out := e.ok("calendar"); !strings.Contains(out, "reservation") || !strings.Contains(out, r.ID) {
		t.Errorf("calendar table does not show the reservation:\n%s", out)
	}

	// The window begins: the reservation becomes lab1's allocation.
	clk.Add(2 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	var got reservationView
	for {
		e.jsonOf(&got, "reservation", "show", r.ID)
		if got.State == "active" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.State != "active" || got.AllocationID == "" {
		t.Fatalf("at the start the reservation is %s (allocation %q), want active", got.State, got.AllocationID)
	}
	var al struct {
		Owner     string    `json:"owner"`
		State     string    `json:"state"`
		ExpiresAt time.Time `json:"expires_at"`
		Nodes     []struct {
			Name string `json:"name"`
			BMC  struct {
				Password string `json:"password"`
			} `json:"bmc"`
		} `json:"nodes"`
	}
	e.jsonOf(&al, "allocation", "show", got.AllocationID)
	if al.Owner != "lab1" || al.State != "active" || !al.ExpiresAt.Equal(r.End) || len(al.Nodes) != 2 {
		t.Fatalf("allocation = %+v, want lab1's, active until %v with 2 nodes", al, r.End)
	}
	for i, n := range al.Nodes {
		if n.Name != reserved[i] || n.BMC.Password != "s3cret-bmc" {
			t.Errorf("handed off %s (password %q), want %s with its BMC password", n.Name, n.BMC.Password, reserved[i])
		}
	}
	env := e.ok("allocation", "show", got.AllocationID, "-o", "env")
	for _, n := range reserved {
		if !strings.Contains(env, n) {
			t.Errorf("env handoff does not name %s:\n%s", n, env)
		}
	}
	var ev struct {
		Events []json.RawMessage `json:"events"`
	}
	e.jsonOf(&ev, "events", "--action", "reservation.started")
	if len(ev.Events) != 1 {
		t.Errorf("reservation.started events = %d, want 1", len(ev.Events))
	}
	if _, errs, code := e.run("reservation", "cancel", r.ID); code != 6 || !strings.Contains(errs, got.AllocationID) {
		t.Errorf("cancel of an active reservation: exit %d %q, want 6 naming its allocation", code, errs)
	}
}
