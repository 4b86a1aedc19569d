package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOwnerPatternToken: a user token for "ci-*" acts for every owner the
// pattern matches, and for no other, on every route that takes an owner or
// an owner's allocation: allocate, plan, show, list (with and without an
// owner filter), extend, release by id and by owner, and the usage report.
// 'ci-*' matches "ci-" followed by anything (ci-1, ci-nightly-7), not
// "ci", "cix" or "CI-1" (names are case-sensitive).
func TestOwnerPatternToken(t *testing.T) {
	s := startServer(t)
	ci := s.token("user", "ci-*")
	for _, o := range []string{"ci-1", "ci-nightly-7", "ci-"} {
		_, pool := s.node()
		s.mustDo(ci, "POST", "/v1/allocations", allocBody(o, pool), 201, nil)
		_, pool = s.node()
		s.mustDo(ci, "POST", "/v1/allocations/plan", allocBody(o, pool), 200, nil)
	}
	foreign := []string{"ci", "cix", "CI-1", "xci-1", "lab1"}
	for _, o := range foreign {
		_, pool := s.node()
		if st, _, body := s.do(ci, "POST", "/v1/allocations", allocBody(o, pool)); st != 403 || !strings.Contains(string(body), `"field":"owner"`) {
			t.Errorf("allocate for %s with a ci-* token: %d %s, want 403 naming owner", o, st, body)
		}
		if st, _, _ := s.do(ci, "POST", "/v1/allocations/plan", allocBody(o, pool)); st != 403 {
			t.Errorf("plan for %s with a ci-* token: %d, want 403", o, st)
		}
	}
	mine, theirs := s.allocation("ci-2"), s.allocation("cix")
	for _, c := range []struct {
		method, path string
		body         any
		own, other   int
	}{
		{"GET", "/v1/allocations/%s", nil, 200, 403},
		{"POST", "/v1/allocations/%s/extend", map[string]any{"ttl": "2h"}, 200, 403},
		{"DELETE", "/v1/allocations/%s", nil, 200, 403},
	} {
		for _, x := range []struct {
			id   string
			want int
		}{{mine, c.own}, {theirs, c.other}} {
			path := strings.Replace(c.path, "%s", x.id, 1)
			if st, _, body := s.do(ci, c.method, path, c.body); st != x.want {
				t.Errorf("%s %s with a ci-* token: %d, want %d: %s", c.method, path, st, x.want, body)
			}
		}
	}
	s.allocation("cix")
	s.allocation("ci-3")
	if st, _, _ := s.do(ci, "POST", "/v1/allocations/release", map[string]any{"owner": "cix"}); st != 403 {
		t.Errorf("release-owner cix with a ci-* token: %d, want 403", st)
	}
	s.mustDo(ci, "POST", "/v1/allocations/release", map[string]any{"owner": "ci-3"}, 200, nil)
	if st, _, _ := s.do(ci, "GET", "/v1/allocations?owner=cix", nil); st != 403 {
		t.Errorf("list ?owner=cix with a ci-* token: %d, want 403", st)
	}
	var list struct {
		Allocations []struct {
			Owner string `json:"owner"`
		} `json:"allocations"`
	}
	s.mustDo(ci, "GET", "/v1/allocations", nil, 200, &list)
	seen := map[string]bool{}
	for _, a := range list.Allocations {
		seen[a.Owner] = true
		if !strings.HasPrefix(a.Owner, "ci-") {
			t.Errorf("a ci-* token listed %s's allocation", a.Owner)
		}
	}
	if !seen["ci-1"] || !seen["ci-nightly-7"] || !seen["ci-2"] {
		t.Errorf("a ci-* token listed owners %v, want ci-1, ci-nightly-7 and ci-2 among them", seen)
	}
	if st, _, _ := s.do(ci, "GET", "/v1/usage/owners?owner=cix", nil); st != 403 {
		t.Errorf("usage ?owner=cix with a ci-* token: %d, want 403", st)
	}
	var rep struct {
		Rows []struct {
			Owner string `json:"owner"`
		} `json:"rows"`
	}
	s.mustDo(ci, "GET", "/v1/usage/owners", nil, 200, &rep)
	if len(rep.Rows) == 0 {
		t.Error("usage for a ci-* token is empty; it should show the ci-* owners")
	}
	for _, r := range rep.Rows {
		if !strings.HasPrefix(r.Owner, "ci-") {
			t.Errorf("usage for a ci-* token shows %s", r.Owner)
		}
	}
	// Reservations are listed through the same pattern: a ci-* token sees
	// ci-5's booking and not cix's.
	s.reservation("ci-5")
	s.reservation("cix")
	var res struct {
		Reservations []struct {
			Owner string `json:"owner"`
		} `json:"reservations"`
	}
	s.mustDo(ci, "GET", "/v1/reservations", nil, 200, &res)
	if len(res.Reservations) != 1 || res.Reservations[0].Owner != "ci-5" {
		t.Errorf("a ci-* token lists reservations %+v, want ci-5's alone", res.Reservations)
	}
	// The audit log is for staff: a pattern token gets no further there.
	if st, _, _ := s.do(ci, "GET", "/v1/events", nil); st != 403 {
		t.Errorf("events with a ci-* token: %d, want 403", st)
	}
	// Patterns are validated: '*' is the only wildcard.
	for _, bad := range []string{"ci-?", "ci-[0-9]", "ci/*", "-*", "ci-.*+"} {
		st, _, body := s.do(s.admin, "POST", "/v1/tokens", map[string]any{"role": "user", "owners": []string{bad}})
		var p struct{ Field string }
		json.Unmarshal(body, &p)
		if st != 400 || p.Field != "owners[0]" {
			t.Errorf("token for owner %q: %d %s, want 400 naming owners[0]", bad, st, body)
		}
	}
}

// TestTokenPriorityCarried: a request carries its token's priority (the
// queue orders by it); a token created without one has the default, 5.
func TestTokenPriorityCarried(t *testing.T) {
	s := startServer(t)
	var tok struct {
		Token    string `json:"token"`
		Priority int    `json:"priority"`
	}
	s.mustDo(s.admin, "POST", "/v1/tokens", map[string]any{"role": "user", "owners": []string{"rel-*"}, "priority": 8}, 201, &tok)
	if tok.Priority != 8 {
		t.Fatalf("token priority = %d, want 8", tok.Priority)
	}
	for _, c := range []struct {
		token string
		want  int
	}{{tok.Token, 8}, {s.user, 5}} {
		owner := "rel-1"
		if c.token == s.user {
			owner = "lab1"
		}
		_, pool := s.node()
		var a struct{ Priority int }
		s.mustDo(c.token, "POST", "/v1/allocations", allocBody(owner, pool), 201, &a)
		if a.Priority != c.want {
			t.Errorf("allocation for %s: priority %d, want %d", owner, a.Priority, c.want)
		}
	}
	for _, bad := range []int{-1, 10} {
		st, _, body := s.do(s.admin, "POST", "/v1/tokens", map[string]any{"role": "user", "owners": []string{"x"}, "priority": bad})
		if st != 400 || !strings.Contains(string(body), `"field":"priority"`) {
			t.Errorf("priority %d: %d %s, want 400 naming priority", bad, st, body)
		}
	}
}
