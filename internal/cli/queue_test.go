package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// apiClient is an admin client of e's server, for queueing requests that no
// CLI waits on.
func (e *env) apiClient() *client.Client {
	e.t.Helper()
	cl, err := client.New(e.m.URL(), e.m.AdminToken, client.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return cl
}

// queue puts a request in the queue through the API and returns its id.
func (e *env) queue(owner, flavor string, count int, wait string) string {
	e.t.Helper()
	a, err := e.apiClient().Allocate(context.Background(), &client.AllocateBody{Owner: owner,
		Items: []ironpool.ItemRequest{{Flavor: flavor, Count: count}}, Wait: wait})
	if err != nil || a.State != ironpool.AllocQueued {
		e.t.Fatalf("queue %s: %v %s", owner, err, a.State)
	}
	return a.ID
}

func (e *env) allocation(id string) *ironpool.Allocation {
	e.t.Helper()
	var a ironpool.Allocation
	e.jsonOf(&a, "allocation", "show", id)
	return &a
}

func (e *env) queuedEvents() int {
	var ev struct{ Events []json0 }
	e.jsonOf(&ev, "events", "--action", "allocation.queued")
	return len(ev.Events)
}

type json0 = map[string]any

// TestQueueAdmission: a request larger than anything the pool could ever
// give is refused at once with exit 3 and the shortfall, never queued; one
// that nodes in maintenance could complete is queued.
func TestQueueAdmission(t *testing.T) {
	e := start(t)
	e.seed()
	start := time.Now()
	_, stderr, code := e.run("allocate", "--owner", "big", "--constraint", "cpus>=1,count=30", "--wait", "3s")
	if code != 3 || !strings.Contains(stderr, "no state of the pool could satisfy") || !strings.Contains(stderr, "asked 30, 20 match in all") {
		t.Fatalf("impossible request: exit %d %s", code, stderr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refusal took %s: it waited instead of refusing", took)
	}
	if n := e.queuedEvents(); n != 0 {
		t.Fatalf("the impossible request was queued (%d allocation.queued events)", n)
	}
	// Compete for the same nodes: two items of 4 large-only nodes from 6.
	_, stderr, code = e.run("allocate", "--owner", "big", "--flavor", "large=4", "--constraint", "cpus>=64,local_gb>=1000,count=4", "--wait", "3s")
	if code != 3 || !strings.Contains(stderr, "compete") {
		t.Errorf("competing items: exit %d %s", code, stderr)
	}
	// Six large nodes exist; with two in maintenance, six may still come back.
	e.ok("node", "maintenance", "n02", "on", "--reason", "disk")
	e.ok("node", "maintenance", "n05", "on", "--reason", "disk")
	id := e.queue("patient", "large", 6, "1m")
	if got := e.allocation(id).State; got != "queued" {
		t.Fatalf("request maintenance nodes could complete is %s", got)
	}
}

// TestQueueDeadlineBehindBlockedHead: the deadline of a request behind a
// blocked head is enforced on time.
func TestQueueDeadlineBehindBlockedHead(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("allocate", "--owner", "holder", "--flavor", "large=6")
	head := e.queue("head", "large", 1, "10m")
	behind := e.queue("behind", "large", 1, "1s")
	deadline := time.Now().Add(4 * time.Second)
	for e.allocation(behind).State == "queued" {
		if time.Now().After(deadline) {
			t.Fatalf("the request behind the head is still queued 3 s after its 1 s deadline")
		}
		time.Sleep(100 * time.Millisecond)
	}
	a := e.allocation(behind)
	if a.State != "failed" || !strings.Contains(a.LastError, "wait deadline passed") {
		t.Errorf("behind = %s %q", a.State, a.LastError)
	}
	if got := e.allocation(head).State; got != "queued" {
		t.Errorf("head = %s, want still queued", got)
	}
}

// TestQueueFirst: freed nodes go to the queue first. A request without
// --wait may not take a node a queued request needs (it used to, and the
// head could starve); it may take nodes no queued request wants.
func TestQueueFirst(t *testing.T) {
	e := start(t)
	e.seed()
	var one, five struct{ ID string }
	e.jsonOf(&one, "allocate", "--owner", "h1", "--flavor", "large=1")
	e.jsonOf(&five, "allocate", "--owner", "h5", "--flavor", "large=5")
	head := e.queue("head", "large", 2, "1m")
	e.ok("release", one.ID) // one large node free; the head needs two
	time.Sleep(300 * time.Millisecond)
	_, stderr, code := e.run("allocate", "--owner", "jumper", "--flavor", "large=1")
	if code != 3 || !strings.Contains(stderr, "1 reserved for queued requests") {
		t.Fatalf("request taking the head's node: exit %d %s", code, stderr)
	}
	e.ok("allocate", "--owner", "small-job", "--flavor", "small=1") // no queued request wants small nodes
	e.ok("release", five.ID)
	deadline := time.Now().Add(5 * time.Second)
	for e.allocation(head).State != "active" {
		if time.Now().After(deadline) {
			t.Fatalf("head not served after the nodes came back: %+v", e.allocation(head))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestQueueAttribution: serving a queued request is recorded as done by
// the token that queued it, not by system(admin).
func TestQueueAttribution(t *testing.T) {
	e := start(t)
	e.seed()
	var holder struct{ ID string }
	e.jsonOf(&holder, "allocate", "--owner", "holder", "--flavor", "large=6")
	var tok struct {
		ID     string `json:"id"`
		Secret string `json:"token"`
	}
	e.jsonOf(&tok, "token", "create", "--role", "user", "--owner", "ci-q")
	user, err := client.New(e.m.URL(), tok.Secret, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := user.Allocate(context.Background(), &client.AllocateBody{Owner: "ci-q", Items: []ironpool.ItemRequest{{Flavor: "large", Count: 1}}, Wait: "1m"})
	if err != nil || a.State != ironpool.AllocQueued {
		t.Fatalf("queue: %v", err)
	}
	e.ok("release", holder.ID)
	if got, err := user.GetAllocation(context.Background(), a.ID, 10*time.Second); err != nil || got.State != ironpool.AllocActive {
		t.Fatalf("not served: %v %+v", err, got)
	}
	var ev struct {
		Events []struct{ Action, Actor, Role string }
	}
	e.jsonOf(&ev, "events", "--subject", "allocation/"+a.ID)
	found := false
	for _, x := range ev.Events {
		if x.Action == "allocation.created" {
			found = true
			if x.Actor != tok.ID || x.Role != "user" {
				t.Errorf("served from the queue by %s(%s), want the requester %s(user)", x.Actor, x.Role, tok.ID)
			}
		}
	}
	if !found {
		t.Fatalf("no allocation.created event: %+v", ev.Events)
	}
}

// TestQueuePosition: `allocation show` and the waiting CLI say where a
// request stands, why it waits and when it will likely be served.
func TestQueuePosition(t *testing.T) {
	e := start(t)
	e.seed()
	var holder ironpool.Allocation
	e.jsonOf(&holder, "allocate", "--owner", "holder", "--flavor", "large=6", "--ttl", "2h")
	first := e.queue("first", "large", 1, "10m")
	second := e.queue("second", "large", 1, "10m")
	a := e.allocation(second)
	q := a.Queue
	if q == nil || q.Position != 2 || q.Length != 2 {
		t.Fatalf("queue info %+v", q)
	}
	for _, want := range []string{"1 request(s) ahead", "large: asked 1, 6 match, 0 free"} {
		if !strings.Contains(q.Reason, want) {
			t.Errorf("reason %q lacks %q", q.Reason, want)
		}
	}
	if !q.EstimatedAt.Equal(holder.ExpiresAt.Truncate(time.Millisecond)) {
		t.Errorf("estimate %v, want the holder's expiry %v", q.EstimatedAt, holder.ExpiresAt)
	}
	table := e.ok("allocation", "show", second)
	for _, want := range []string{"queue_position", "2 of 2", "waiting_because", "estimate"} {
		if !strings.Contains(table, want) {
			t.Errorf("show table lacks %q:\n%s", want, table)
		}
	}
	if e.allocation(first).Queue.Position != 1 {
		t.Errorf("first is not at position 1")
	}
	// The waiting CLI prints the same line.
	s := e.sh(t.TempDir(), "exec ironpool allocate --owner third --flavor large=1 --wait 1m")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.stderr.String(), "position 3 of 3") {
		if time.Now().After(deadline) {
			t.Fatalf("waiting CLI does not show its position: %s", s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(s.stderr.String(), "estimate") {
		t.Errorf("waiting CLI shows no estimate: %s", s.stderr.String())
	}
}
