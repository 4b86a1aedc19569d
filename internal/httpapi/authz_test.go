package httpapi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Callers in the role matrix. A user token acts for owner lab1; "own" cases
// target lab1's things and "foreign" cases lab2's.
const (
	callNone     = "no token"
	callAdmin    = "admin"
	callOperator = "operator"
	callUserOwn  = "user, own owner"
	callUserFor  = "user, foreign owner"
)

var callers = []string{callNone, callAdmin, callOperator, callUserOwn, callUserFor}

// request is one API call a matrix row makes.
type request struct {
	method, path string
	body         any
}

// matrixRow is one operation: how to build a request against fresh
// fixtures for a target owner, and the status each caller must get.
type matrixRow struct {
	op     string // the OpenAPI operationId; variants add a suffix
	setup  func(s *testServer, owner string) request
	expect [5]int // in the order of callers
}

// Expected statuses, in the order of callers.
var (
	everyone200  = [5]int{401, 200, 200, 200, 200}
	staffOnly    = func(ok int) [5]int { return [5]int{401, ok, ok, 403, 403} }
	adminOnly    = func(ok int) [5]int { return [5]int{401, ok, 403, 403, 403} }
	ownersOnly   = func(ok int) [5]int { return [5]int{401, ok, 403, ok, 403} }
	visibleOwner = [5]int{401, 200, 200, 200, 403}
	// ownersNoBackend is ownersOnly(400) where the service checks for an
	// Ironic backend before the owner, so a foreign owner also gets 400
	// on a server without Ironic; the role check still comes first.
	ownersNoBackend = [5]int{401, 400, 403, 400, 400}
)

// matrix is the expected authorization of every API operation. A route
// added to the API without a row here fails TestRoleMatrix, so nobody can
// add an endpoint without deciding who may call it.
var matrix = []matrixRow{
	{"create-node", func(s *testServer, _ string) request {
		return request{"POST", "/v1/nodes", nodeBody(s.name("n"), "default", "pw")}
	}, staffOnly(201)},
	{"import-nodes", func(s *testServer, _ string) request {
		return request{"POST", "/v1/nodes/import", map[string]any{"nodes": []any{nodeBody(s.name("n"), "default", "pw")}}}
	}, staffOnly(201)},
	{"list-nodes", func(s *testServer, _ string) request { return request{"GET", "/v1/nodes", nil} }, everyone200},
	{"get-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"GET", "/v1/nodes/" + n, nil}
	}, everyone200},
	{"get-node?reveal=true", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"GET", "/v1/nodes/" + n + "?reveal=true", nil}
	}, adminOnly(200)},
	{"get-node-field", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"GET", "/v1/nodes/" + n + "/fields/cpus", nil}
	}, everyone200},
	{"update-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"PATCH", "/v1/nodes/" + n, map[string]any{"set": map[string]string{"cpus": "8"}}}
	}, staffOnly(200)},
	{"delete-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"DELETE", "/v1/nodes/" + n, nil}
	}, adminOnly(204)},
	{"delete-nodes", func(s *testServer, _ string) request {
		n1, _ := s.node()
		n2, _ := s.node()
		return request{"POST", "/v1/nodes/delete", map[string]any{"names": []string{n1, n2}}}
	}, adminOnly(204)},
	{"set-maintenance", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"PUT", "/v1/nodes/" + n + "/maintenance", map[string]any{"reason": "fan"}}
	}, staffOnly(200)},
	{"clear-maintenance", func(s *testServer, _ string) request {
		n, _ := s.node()
		s.mustDo(s.admin, "PUT", "/v1/nodes/"+n+"/maintenance", map[string]any{"reason": "fan"}, 200, nil)
		return request{"DELETE", "/v1/nodes/" + n + "/maintenance", nil}
	}, staffOnly(200)},
	{"create-flavor", func(s *testServer, _ string) request {
		return request{"POST", "/v1/flavors", map[string]any{"name": s.name("f"), "cpus": 2}}
	}, staffOnly(201)},
	{"list-flavors", func(s *testServer, _ string) request { return request{"GET", "/v1/flavors", nil} }, everyone200},
	{"get-flavor", func(s *testServer, _ string) request {
		f := s.name("f")
		s.mustDo(s.admin, "POST", "/v1/flavors", map[string]any{"name": f}, 201, nil)
		return request{"GET", "/v1/flavors/" + f, nil}
	}, everyone200},
	{"delete-flavor", func(s *testServer, _ string) request {
		f := s.name("f")
		s.mustDo(s.admin, "POST", "/v1/flavors", map[string]any{"name": f}, 201, nil)
		return request{"DELETE", "/v1/flavors/" + f, nil}
	}, staffOnly(204)},
	{"allocate", func(s *testServer, owner string) request {
		_, pool := s.node()
		return request{"POST", "/v1/allocations", allocBody(owner, pool)}
	}, ownersOnly(201)},
	{"plan-allocation", func(s *testServer, owner string) request {
		_, pool := s.node()
		return request{"POST", "/v1/allocations/plan", allocBody(owner, pool)}
	}, ownersOnly(200)},
	{"list-allocations", func(s *testServer, owner string) request {
		s.allocation(owner)
		return request{"GET", "/v1/allocations?owner=" + owner, nil}
	}, visibleOwner},
	{"get-allocation", func(s *testServer, owner string) request {
		return request{"GET", "/v1/allocations/" + s.allocation(owner), nil}
	}, visibleOwner},
	{"extend-allocation", func(s *testServer, owner string) request {
		return request{"POST", "/v1/allocations/" + s.allocation(owner) + "/extend", map[string]any{"ttl": "2h"}}
	}, ownersOnly(200)},
	{"release-allocation", func(s *testServer, owner string) request {
		return request{"DELETE", "/v1/allocations/" + s.allocation(owner), nil}
	}, ownersOnly(200)},
	{"release-owner", func(s *testServer, owner string) request {
		s.allocation(owner)
		return request{"POST", "/v1/allocations/release", map[string]any{"owner": owner}}
	}, ownersOnly(200)},
	{"reserve", func(s *testServer, owner string) request {
		_, pool := s.node()
		return request{"POST", "/v1/reservations", reserveBody(owner, pool)}
	}, ownersOnly(201)},
	{"list-reservations", func(s *testServer, owner string) request {
		s.reservation(owner)
		return request{"GET", "/v1/reservations?owner=" + owner, nil}
	}, visibleOwner},
	{"get-reservation", func(s *testServer, owner string) request {
		return request{"GET", "/v1/reservations/" + s.reservation(owner), nil}
	}, visibleOwner},
	{"cancel-reservation", func(s *testServer, owner string) request {
		return request{"DELETE", "/v1/reservations/" + s.reservation(owner), nil}
	}, ownersOnly(200)},
	{"calendar", func(s *testServer, _ string) request { return request{"GET", "/v1/calendar?by=flavor", nil} }, everyone200},
	{"status", func(s *testServer, _ string) request { return request{"GET", "/v1/status", nil} }, everyone200},
	{"capacity", func(s *testServer, _ string) request { return request{"GET", "/v1/capacity", nil} }, everyone200},
	{"list-events", func(s *testServer, _ string) request { return request{"GET", "/v1/events", nil} }, staffOnly(200)},
	{"create-token", func(s *testServer, _ string) request {
		return request{"POST", "/v1/tokens", map[string]any{"role": "user", "owners": []string{"lab1"}}}
	}, adminOnly(201)},
	{"list-tokens", func(s *testServer, _ string) request { return request{"GET", "/v1/tokens", nil} }, adminOnly(200)},
	{"revoke-token", func(s *testServer, _ string) request {
		var tok struct {
			ID string `json:"id"`
		}
		s.mustDo(s.admin, "POST", "/v1/tokens", map[string]any{"role": "operator"}, 201, &tok)
		return request{"DELETE", "/v1/tokens/" + tok.ID, nil}
	}, adminOnly(204)},
	{"reseal-secrets", func(s *testServer, _ string) request { return request{"POST", "/v1/admin/reseal", nil} }, adminOnly(200)},

	// The Ironic operations. This server runs without an Ironic backend, so
	// a caller the policy admits gets 400 ("no Ironic backend"): the row
	// still proves everyone else is stopped before that check.
	{"ironic-sync", func(s *testServer, _ string) request { return request{"POST", "/v1/ironic/sync", nil} }, staffOnly(400)},
	{"ironic-manageable", func(s *testServer, _ string) request { return request{"GET", "/v1/ironic/manageable", nil} }, staffOnly(400)},
	{"ironic-adopt", func(s *testServer, owner string) request {
		return request{"POST", "/v1/ironic/adopt", map[string]any{"ironic_uuid": "6f1c2a58-2d7e-4f5e-9a36-6d8c1b7e0a11", "owner": owner}}
	}, adminOnly(400)},
	{"register-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"POST", "/v1/nodes/" + n + "/register", nil}
	}, adminOnly(400)},
	{"unregister-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"POST", "/v1/nodes/" + n + "/unregister", nil}
	}, adminOnly(400)},
	{"inspect-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"POST", "/v1/nodes/" + n + "/inspect", nil}
	}, staffOnly(503)}, // not in Ironic: its BMC (10.0.0.1, never dialled by test servers) is unavailable
	// A user may power the nodes its owners hold (then: 503, the
	// fixture's BMC at 10.0.0.1 is never dialled), never another owner's.
	{"power-node", func(s *testServer, owner string) request {
		return request{"POST", "/v1/nodes/" + s.heldNode(owner) + "/power", map[string]any{"action": "status"}}
	}, [5]int{401, 503, 503, 503, 403}},
	{"power-nodes", func(s *testServer, owner string) request {
		return request{"POST", "/v1/power", map[string]any{"action": "status", "nodes": []string{s.heldNode(owner)}}}
	}, [5]int{401, 200, 200, 200, 403}}, // a per-node report; the node's failure is in it
	{"set-boot-device", func(s *testServer, owner string) request {
		return request{"POST", "/v1/boot-device", map[string]any{"device": "pxe", "nodes": []string{s.heldNode(owner)}}}
	}, [5]int{401, 200, 200, 200, 403}},
	{"discover-nodes", func(s *testServer, _ string) request {
		return request{"POST", "/v1/discover", map[string]any{"url": "redfish+https://10.0.0.1", "username": "u", "password": "p"}}
	}, staffOnly(503)},
	{"list-composition", func(s *testServer, _ string) request {
		return request{"POST", "/v1/compose/list", map[string]any{"url": "redfish+https://10.0.0.1", "username": "u", "password": "p"}}
	}, staffOnly(503)},
	{"compose-node", func(s *testServer, _ string) request {
		return request{"POST", "/v1/compose", map[string]any{"url": "redfish+https://10.0.0.1", "username": "u", "password": "p", "name": s.name("c"), "cpus": 1}}
	}, staffOnly(503)},
	{"list-node-health", func(s *testServer, _ string) request { return request{"GET", "/v1/health/nodes", nil} }, everyone200},
	{"get-node-health", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"GET", "/v1/nodes/" + n + "/health", nil}
	}, everyone200},
	{"decompose-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"POST", "/v1/nodes/" + n + "/decompose", nil}
	}, adminOnly(409)}, // not a composed node
	{"node-history", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"GET", "/v1/nodes/" + n + "/history", nil}
	}, staffOnly(200)},
	{"clean-node", func(s *testServer, _ string) request {
		n, _ := s.node()
		return request{"POST", "/v1/nodes/" + n + "/clean", nil}
	}, staffOnly(409)}, // an available node needs no clean: policy first, then state
	{"whoami", func(s *testServer, _ string) request { return request{"GET", "/v1/whoami", nil} }, everyone200},
	{"usage", func(s *testServer, _ string) request { return request{"GET", "/v1/usage?window=7d", nil} }, staffOnly(200)},
	{"set-quota", func(s *testServer, _ string) request {
		return request{"PUT", "/v1/quotas/" + s.name("q-"), map[string]any{"max_nodes": 3}}
	}, adminOnly(200)},
	{"list-quotas", func(s *testServer, _ string) request { return request{"GET", "/v1/quotas", nil} }, everyone200},
	{"get-quota", func(s *testServer, _ string) request {
		q := s.name("q-") + "-*"
		s.mustDo(s.admin, "PUT", "/v1/quotas/"+q, map[string]any{"max_nodes": 3}, 200, nil)
		return request{"GET", "/v1/quotas/" + q, nil}
	}, everyone200},
	{"delete-quota", func(s *testServer, _ string) request {
		q := s.name("q-")
		s.mustDo(s.admin, "PUT", "/v1/quotas/"+q, map[string]any{"max_lease": "2h"}, 200, nil)
		return request{"DELETE", "/v1/quotas/" + q, nil}
	}, adminOnly(204)},
	{"owner-usage", func(s *testServer, owner string) request {
		s.allocation(owner)
		return request{"GET", "/v1/usage/owners?owner=" + owner, nil}
	}, visibleOwner},
	{"deploy-allocation", func(s *testServer, owner string) request {
		return request{"POST", "/v1/allocations/" + s.allocation(owner) + "/deploy", map[string]any{"image": "http://images/x.qcow2"}}
	}, ownersNoBackend},
	{"undeploy-allocation", func(s *testServer, owner string) request {
		return request{"POST", "/v1/allocations/" + s.allocation(owner) + "/undeploy", nil}
	}, ownersNoBackend},
}

// TestRoleMatrix walks every API operation (taken from the server's own
// OpenAPI document) for every caller and asserts the status: 401 without a
// token, 403 for a role the policy excludes or an owner the token may not
// act for, success otherwise. It then checks docs/SECURITY.md shows the
// same table (IRONPOOL_UPDATE_DOCS=1 rewrites it).
func TestRoleMatrix(t *testing.T) {
	s := startServer(t)

	// Every operation the API serves must have a row, and every row an
	// operation: the table cannot drift from the routes.
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	s.mustDo("", "GET", "/openapi.json", nil, 200, &doc)
	served := map[string]string{}
	for path, methods := range doc.Paths {
		for method, op := range methods {
			served[op.OperationID] = strings.ToUpper(method) + " " + path
		}
	}
	rows := map[string]bool{}
	for _, r := range matrix {
		rows[strings.Split(r.op, "?")[0]] = true
	}
	for id, route := range served {
		if !rows[id] {
			t.Errorf("operation %s (%s) has no row in the role matrix; add one", id, route)
		}
	}
	for id := range rows {
		if _, ok := served[id]; !ok {
			t.Errorf("role matrix row %s names no operation the API serves", id)
		}
	}

	tokens := map[string]string{callNone: "", callAdmin: s.admin, callOperator: s.operator,
		callUserOwn: s.user, callUserFor: s.user}
	got := map[string][5]int{}
	for _, r := range matrix {
		var row [5]int
		for i, c := range callers {
			owner := "lab1"
			if c == callUserFor {
				owner = "lab2"
			}
			req := r.setup(s, owner)
			st, hdr, body := s.do(tokens[c], req.method, req.path, req.body)
			row[i] = st
			if st != r.expect[i] {
				t.Errorf("%s (%s %s) as %s: status %d, want %d: %s", r.op, req.method, req.path, c, st, r.expect[i], body)
			}
			if (st == 401 || st == 403) && hdr.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s as %s: %d with Content-Type %q, want application/problem+json", r.op, c, st, hdr.Get("Content-Type"))
			}
		}
		got[r.op] = row
	}
	if t.Failed() {
		return
	}
	checkDocTable(t, renderMatrix(got, served))
}

// renderMatrix formats the observed statuses as the Markdown table that
// docs/SECURITY.md carries.
func renderMatrix(got map[string][5]int, served map[string]string) string {
	var b strings.Builder
	b.WriteString("| Operation | Route | " + strings.Join(callers, " | ") + " |\n")
	b.WriteString("|---|---|" + strings.Repeat("---|", len(callers)) + "\n")
	for _, r := range matrix {
		id, variant, _ := strings.Cut(r.op, "?")
		route := served[id]
		if variant != "" {
			route += "?" + variant
		}
		cells := make([]string, len(callers))
		for i, st := range got[r.op] {
			cells[i] = fmt.Sprint(st)
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", id, route, strings.Join(cells, " | "))
	}
	return b.String()
}

const (
	docBegin = "<!-- role-matrix:begin (generated by TestRoleMatrix; IRONPOOL_UPDATE_DOCS=1 go test ./internal/httpapi -run TestRoleMatrix) -->\n"
	docEnd   = "<!-- role-matrix:end -->"
)

// checkDocTable compares the table in docs/SECURITY.md with the observed
// one, or rewrites it when IRONPOOL_UPDATE_DOCS=1.
func checkDocTable(t *testing.T, table string) {
	t.Helper()
	path := filepath.Join("..", "..", "docs", "SECURITY.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("docs/SECURITY.md: %v", err)
	}
	doc := string(data)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("docs/SECURITY.md has no role-matrix markers")
	}
	current := doc[i+len(docBegin) : j]
	if current == table {
		return
	}
	if os.Getenv("IRONPOOL_UPDATE_DOCS") == "1" {
		doc = doc[:i+len(docBegin)] + table + doc[j:]
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/SECURITY.md's role matrix is out of date; run IRONPOOL_UPDATE_DOCS=1 go test ./internal/httpapi -run TestRoleMatrix\nwant:\n%s", table)
}

// TestBadTokens checks that a token that is unknown, revoked or not sent as
// a bearer token is refused with 401 as a problem document, even for
// operations everyone may run.
func TestBadTokens(t *testing.T) {
	s := startServer(t)
	var tok struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	s.mustDo(s.admin, "POST", "/v1/tokens", map[string]any{"role": "operator"}, 201, &tok)
	s.mustDo(tok.Token, "GET", "/v1/status", nil, 200, nil)
	s.mustDo(s.admin, "DELETE", "/v1/tokens/"+tok.ID, nil, 204, nil)

	cases := map[string]string{
		"Revoked":   "Bearer " + tok.Token,
		"Wrong":     "Bearer ipt_" + strings.Repeat("A", 43),
		"Truncated": "Bearer " + s.admin[:len(s.admin)-1],
		"NotBearer": "Basic " + s.admin,
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/status", "/v1/nodes", "/v1/tokens"} {
				req := mustRequest(t, "GET", s.m.URL()+path)
				req.Header.Set("Authorization", h)
				resp, body := send(t, req)
				if resp.StatusCode != 401 {
					t.Errorf("GET %s: status %d, want 401: %s", path, resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("GET %s: Content-Type %q, want application/problem+json", path, ct)
				}
				var p struct {
					Status int    `json:"status"`
					Code   string `json:"code"`
				}
				if err := json.Unmarshal(body, &p); err != nil || p.Status != 401 {
					t.Errorf("GET %s: body is not a 401 problem: %s", path, body)
				}
			}
		})
	}
	// Authentication comes before validation: without a token, a deploy
	// with no image is 401, not a 400 that describes the request's fields.
	t.Run("NoTokenBeforeValidation", func(t *testing.T) {
		id := s.allocation("lab1")
		if st, _, body := s.do("", "POST", "/v1/allocations/"+id+"/deploy", map[string]any{"image": ""}); st != 401 {
			t.Errorf("deploy without a token or an image: %d, want 401: %s", st, body)
		}
		if st, _, body := s.do(s.operator, "POST", "/v1/allocations/"+id+"/deploy", map[string]any{"image": ""}); st != 403 {
			t.Errorf("deploy by an operator without an image: %d, want 403: %s", st, body)
		}
	})
	t.Run("Forbidden", func(t *testing.T) {
		st, hdr, body := s.do(s.user, "GET", "/v1/tokens", nil)
		if st != 403 || hdr.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), `"forbidden"`) {
			t.Errorf("user listing tokens: %d %q %s, want a 403 forbidden problem", st, hdr.Get("Content-Type"), body)
		}
	})
}
