package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestQuotaCommands drives quota set/list/show/delete and usage through
// the real binary's command tree against a real server: the refusals exit
// 9 and name the quota and the usage; a quota below usage warns.
func TestQuotaCommands(t *testing.T) {
	e := start(t)
	e.seed()
	var st struct {
		Quota struct {
			Owner     string         `json:"owner"`
			MaxNodes  int            `json:"max_nodes"`
			MaxFlavor map[string]int `json:"max_flavor"`
			MaxLease  string         `json:"max_lease"`
		} `json:"quota"`
		Used    struct{ Nodes int } `json:"used"`
		Warning string              `json:"warning"`
	}
	e.jsonOf(&st, "quota", "set", "ci-*", "--max-nodes", "3", "--max-flavor", "large=1", "--max-lease", "2h")
	if st.Quota.Owner != "ci-*" || st.Quota.MaxNodes != 3 || st.Quota.MaxFlavor["large"] != 1 || st.Quota.MaxLease != "2h0m0s" {
		t.Fatalf("quota set -o json = %+v", st)
	}
	var a struct{ ID string }
	e.jsonOf(&a, "allocate", "--owner", "ci-1", "--flavor", "small=2", "--ttl", "1h")
	// ci-1 holds 2 of the 3 nodes: 2 more are over.

	before := e.nodes()
	_, stderr, code := e.run("allocate", "--owner", "ci-2", "--flavor", "small=2")
	if code != 9 || !strings.Contains(stderr, "quota ci-* max_nodes for owner ci-2: allows 3 nodes; 2 held, 2 asked") {
		t.Errorf("over max_nodes: exit %d %s, want 9 naming the quota and usage", code, stderr)
	}
	// Without --ttl the server's default (4h) is shortened to max_lease.
	var short struct {
		Created string `json:"created_at"`
		Expires string `json:"expires_at"`
	}
	e.jsonOf(&short, "allocate", "--owner", "ci-3", "--flavor", "small=1")
	c, _ := time.Parse(time.RFC3339, short.Created)
	x, _ := time.Parse(time.RFC3339, short.Expires)
	if d := x.Sub(c); d < 2*time.Hour-time.Second || d > 2*time.Hour+time.Second {
		t.Errorf("default lease under a 2h max_lease = %s, want 2h", d)
	}
	before = e.nodes()
	_, stderr, code = e.run("allocate", "--owner", "ci-2", "--flavor", "small=1", "--ttl", "3h")
	if code != 9 || !strings.Contains(stderr, "max_lease") {
		t.Errorf("over max_lease: exit %d %s, want 9", code, stderr)
	}
	_, stderr, code = e.run("allocation", "extend", a.ID, "--ttl", "3h")
	if code != 9 || !strings.Contains(stderr, "ttl:") || !strings.Contains(stderr, "max_lease") {
		t.Errorf("extend past max_lease: exit %d %s, want 9 on ttl", code, stderr)
	}
	if after := e.nodes(); len(after) != len(before) || count(after, "allocated") != count(before, "allocated") {
		t.Errorf("refusals changed the nodes: %d allocated before, %d after", count(before, "allocated"), count(after, "allocated"))
	}
	// An owner the pattern does not match is not limited by it.
	e.ok("allocate", "--owner", "cix", "--flavor", "small=4")

	// A quota below usage is stored, with a warning.
	out, stderr, code := e.run("quota", "set", "ci-1", "--max-nodes", "1")
	if code != 0 || !strings.Contains(stderr, "warning: usage is over this quota already (2 nodes held, max_nodes 1)") ||
		!strings.Contains(out, "ci-1") {
		t.Errorf("quota below usage: exit %d\n%s\n%s", code, out, stderr)
	}
	out, _, _ = e.run("quota", "list")
	for _, want := range []string{"OWNER", "ci-*", "ci-1", "large=1 (0 held)", "2h0m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("quota list lacks %q:\n%s", want, out)
		}
	}
	out, _, code = e.run("quota", "show", "ci-*", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "owner: ci-*") || !strings.Contains(out, "nodes: 3") {
		t.Errorf("quota show -o yaml: exit %d\n%s", code, out)
	}
	var rep struct {
		Rows []struct {
			Owner, Flavor string
			Nodes         int
		}
	}
	e.jsonOf(&rep, "usage", "--owner", "ci-1")
	if len(rep.Rows) != 1 || rep.Rows[0].Owner != "ci-1" || rep.Rows[0].Flavor != "small" || rep.Rows[0].Nodes != 2 {
		t.Errorf("usage --owner ci-1 = %+v", rep.Rows)
	}
	out, _, _ = e.run("usage", "--since", "1h")
	if !strings.Contains(out, "NODE_HOURS") || !strings.Contains(out, "cix") {
		t.Errorf("usage table:\n%s", out)
	}
	e.ok("quota", "delete", "ci-1", "ci-*")
	_, stderr, code = e.run("quota", "show", "ci-*")
	if code != 5 {
		t.Errorf("show a deleted quota: exit %d %s, want 5", code, stderr)
	}
	e.ok("allocate", "--owner", "ci-2", "--flavor", "small=2")

	// Tokens: patterns and priorities.
	var tok struct {
		Owners   []string
		Priority int
	}
	e.jsonOf(&tok, "token", "create", "--role", "user", "--owner", "ci-*", "--priority", "8")
	if len(tok.Owners) != 1 || tok.Owners[0] != "ci-*" || tok.Priority != 8 {
		t.Errorf("token create = %+v", tok)
	}
	var evs struct{ Events []struct{ Action string } }
	e.jsonOf(&evs, "events")
	seen := map[string]int{}
	for _, ev := range evs.Events {
		seen[ev.Action]++
	}
	if seen["quota.set"] != 2 || seen["quota.deleted"] != 2 || seen["quota.refused"] != 3 || seen["quota.updated"] != 0 {
		b, _ := json.Marshal(seen)
		t.Errorf("quota events = %s, want 2 set, 2 deleted, 3 refused", b)
	}
}

// TestQuotaBadInput: every malformed quota flag exits non-zero naming the
// flag, before anything is sent, and changes nothing.
func TestQuotaBadInput(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("quota", "set", "keep", "--max-nodes", "2")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"NoLimit", []string{"quota", "set", "lab"}, 2, "max-nodes: a quota needs at least one limit"},
		{"NegativeNodes", []string{"quota", "set", "lab", "--max-nodes", "-1"}, 2, "max-nodes: must not be negative"},
		{"BadPattern", []string{"quota", "set", "ci-?", "--max-nodes", "1"}, 2, "owner: \"ci-?\" must be an owner name or a pattern"},
		{"RegexPattern", []string{"quota", "set", "ci-.*+", "--max-nodes", "1"}, 2, "owner:"},
		{"FlavorNotKV", []string{"quota", "set", "lab", "--max-flavor", "gpu"}, 2, `max-flavor: "gpu" is not NAME=COUNT`},
		{"FlavorZero", []string{"quota", "set", "lab", "--max-flavor", "gpu=0"}, 2, "max-flavor: must be between 1 and 1000000"},
		{"FlavorTwice", []string{"quota", "set", "lab", "--max-flavor", "gpu=1", "--max-flavor", "gpu=2"}, 2, "max-flavor: flavor gpu is given twice"},
		{"BadLease", []string{"quota", "set", "lab", "--max-lease", "forever"}, 2, `max-lease: "forever" is not a duration`},
		{"TinyLease", []string{"quota", "set", "lab", "--max-lease", "5s"}, 2, "max-lease: 5s is under the smallest limit"},
		{"HoursWithoutPer", []string{"quota", "set", "lab", "--max-node-hours", "10"}, 2, "per: is required with max_node_hours"},
		{"PerWithoutHours", []string{"quota", "set", "lab", "--max-nodes", "1", "--per", "1d"}, 2, "per: is only meaningful"},
		{"NegativeHours", []string{"quota", "set", "lab", "--max-node-hours", "-5", "--per", "1d"}, 2, "max-node-hours:"},
		{"OutputTypo", []string{"quota", "set", "lab", "--max-nodes", "1", "-o", "jsno"}, 2, `output: "jsno"`},
		{"NoOwner", []string{"quota", "set", "--max-nodes", "1"}, 1, "usage:"},
		{"DeleteUnknown", []string{"quota", "delete", "nobody"}, 5, `owner: no quota for "nobody"`},
		{"DeleteBadPattern", []string{"quota", "delete", "a?b"}, 2, "owner[0]:"},
		{"ShowUnknown", []string{"quota", "show", "nobody"}, 5, `no quota for "nobody"`},
		{"UsageBadSince", []string{"usage", "--since", "yesterday"}, 2, `since: "yesterday" is neither`},
		{"UsageBadOwner", []string{"usage", "--owner", "bad owner"}, 2, "owner:"},
		{"TokenBadPriority", []string{"token", "create", "--role", "user", "--owner", "x", "--priority", "10"}, 2, "priority: is 10; priorities run from 0 (lowest) to 9"},
		{"TokenBadPattern", []string{"token", "create", "--role", "user", "--owner", "ci-[0-9]"}, 2, "owner[0]:"},
	}
	var quotasBefore json.RawMessage
	e.jsonOf(&quotasBefore, "quota", "list")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.snapshot()
			_, stderr, code := e.run(c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d (%s)", code, c.code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q lacks %q", stderr, c.want)
			}
			if after := e.snapshot(); after != before {
				t.Errorf("state changed:\n%s\n%s", before, after)
			}
		})
	}
	var quotasAfter json.RawMessage
	e.jsonOf(&quotasAfter, "quota", "list")
	if string(quotasAfter) != string(quotasBefore) {
		t.Errorf("quotas changed:\n%s\n%s", quotasBefore, quotasAfter)
	}
}

// TestQueueWaitsForQuota: with --wait, a request its owner's quota does
// not allow yet is queued although nodes are free, says it waits for
// quota, and is served by the background loop once the owner releases.
func TestQueueWaitsForQuota(t *testing.T) {
	e := start(t)
	e.seed()
	e.ok("quota", "set", "lab", "--max-nodes", "1")
	var held struct{ ID string }
	e.jsonOf(&held, "allocate", "--owner", "lab", "--flavor", "small=1")
	id := e.queue("lab", "small", 1, "1m")
	a := e.allocation(id)
	if a.State != "queued" || a.Queue == nil || !strings.HasPrefix(a.Queue.Reason, "waiting for quota: quota lab max_nodes") || a.Queue.Quota == nil {
		t.Fatalf("queued over quota: %+v %+v", a, a.Queue)
	}
	e.ok("release", held.ID)
	deadline := time.Now().Add(15 * time.Second)
	for e.allocation(id).State != "active" {
		if time.Now().After(deadline) {
			t.Fatalf("not served after the release: %+v", e.allocation(id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.ok("release", id)
}
