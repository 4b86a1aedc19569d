package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/server"
)

// engines runs body against a server on SQLite and one on the real
// PostgreSQL (skipped, saying why, when IRONPOOL_TEST_POSTGRES is unset).
func engines(t *testing.T, body func(t *testing.T, m *server.Main)) {
	t.Run("SQLite", func(t *testing.T) {
		m := &server.Main{}
		run(t, m)
		body(t, m)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		m := &server.Main{DB: pgtest.Schema(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		run(t, m)
		body(t, m)
	})
}

// rawCall sends a request whose path and query are used exactly as given
// (percent-escapes included), so a NUL or a stray byte reaches the server.
func rawCall(t *testing.T, base, tok, method, rawPath string, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(rawPath, "?")
	req.URL.Opaque = "//" + req.URL.Host + path
	req.URL.RawQuery = query
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// TestHostileParams sends a NUL byte and an invalid UTF-8 byte in every
// path and query parameter of every operation the OpenAPI document lists.
// Each must get 400 naming the parameter, on both engines: PostgreSQL
// used to fail such values with SQLSTATE 22021 and answer 500.
func TestHostileParams(t *testing.T) {
	engines(t, func(t *testing.T, m *server.Main) {
		base, admin := m.URL(), m.AdminToken
		var doc struct {
			Paths map[string]map[string]struct {
				Parameters []struct {
					Name, In string
				} `json:"parameters"`
			} `json:"paths"`
		}
		must(t, base, admin, "GET", "/openapi.json", nil, 200, &doc)
		tried := 0
		for path, ops := range doc.Paths {
			for method, op := range ops {
				for _, p := range op.Parameters {
					if p.In != "path" && p.In != "query" {
						continue
					}
					for _, bad := range []string{"a%00b", "a%FFb"} {
						target := pathParam.ReplaceAllStringFunc(path, func(s string) string {
							if s == "{"+p.Name+"}" && p.In == "path" {
								return bad
							}
							return "x"
						})
						if p.In == "query" {
							target += "?" + p.Name + "=" + bad
						}
						st, body := rawCall(t, base, admin, strings.ToUpper(method), target, "{}")
						var prob struct{ Field string }
						json.Unmarshal(body, &prob)
						if st != 400 || prob.Field != p.Name {
							t.Errorf("%s %s: status %d field %q, want 400 naming %q: %.200s", strings.ToUpper(method), target, st, prob.Field, p.Name, body)
						}
						tried++
					}
				}
			}
		}
		if tried < 28 {
			t.Errorf("only %d parameter probes; the OpenAPI document lists fewer parameters than expected", tried)
		}
	})
}

// TestHostileBodies: body values PostgreSQL cannot store as they are (a
// NUL in text, an integer over int4) are refused by validation with 400
// naming the field, on both engines, and nothing changes.
func TestHostileBodies(t *testing.T) {
	engines(t, func(t *testing.T, m *server.Main) {
		base, admin := m.URL(), m.AdminToken
		must(t, base, admin, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw"), 201, nil)
		big := fmt.Sprint(int64(1) << 31)
		cases := []struct {
			name, method, path, body, field string
		}{
			{"ReasonNUL", "PUT", "/v1/nodes/n1/maintenance", `{"reason": "a\u0000b"}`, "reason"},
			{"FlavorDescriptionNUL", "POST", "/v1/flavors", `{"name": "f1", "description": "a\u0000b"}`, "description"},
			{"TokenDescriptionNUL", "POST", "/v1/tokens", `{"role": "operator", "description": "a\u0000b"}`, "description"},
			{"UsernameNUL", "PATCH", "/v1/nodes/n1", `{"set": {"bmc.username": "a\u0000b"}}`, "bmc.username"},
			{"FlavorCPUs", "POST", "/v1/flavors", `{"name": "f2", "cpus": ` + big + `}`, "cpus"},
			{"NodeCPUs", "PATCH", "/v1/nodes/n1", `{"set": {"cpus": "` + big + `"}}`, "cpus"},
			{"ConstraintCPUs", "POST", "/v1/allocations", `{"owner": "lab1", "items": [{"count": 1, "constraints": {"cpus": ` + big + `}}]}`, "items[0].constraints.cpus"},
			{"PlanCPUs", "POST", "/v1/allocations/plan", `{"owner": "lab1", "items": [{"count": 1, "constraints": {"cpus": ` + big + `}}]}`, "items[0].constraints.cpus"},
			{"ConstraintMemory", "POST", "/v1/allocations", `{"owner": "lab1", "items": [{"count": 1, "constraints": {"memory_mb": 9223372036854775807}}]}`, "items[0].constraints.memory_mb"},
		}
		for _, c := range cases {
			st, body := rawCall(t, base, admin, c.method, c.path, c.body)
			var prob struct{ Field string }
			json.Unmarshal(body, &prob)
			if st != 400 || prob.Field != c.field {
				t.Errorf("%s: status %d field %q, want 400 naming %q: %.200s", c.name, st, prob.Field, c.field, body)
			}
		}
		var nodes struct{ Nodes []struct{ State string } }
		must(t, base, admin, "GET", "/v1/nodes", nil, 200, &nodes)
		if len(nodes.Nodes) != 1 || nodes.Nodes[0].State != "available" {
			t.Errorf("after refused requests: %+v, want n1 available", nodes.Nodes)
		}
		var flavors struct{ Flavors []any }
		must(t, base, admin, "GET", "/v1/flavors", nil, 200, &flavors)
		if len(flavors.Flavors) != 0 {
			t.Errorf("refused flavors were created: %v", flavors.Flavors)
		}
	})
}

// TestCleanOutputNotText: a failing clean command whose output holds a NUL
// and invalid UTF-8 still puts the node in error with a readable
// last_error, on both engines (PostgreSQL refused such text, and the node
// stayed in cleaning).
func TestCleanOutputNotText(t *testing.T) {
	for _, db := range []string{"SQLite", "PostgreSQL"} {
		t.Run(db, func(t *testing.T) {
			m := &server.Main{}
			if db == "PostgreSQL" {
				m.DB = pgtest.Schema(t)
			}
			m.Background.CleanCommand = []string{"sh", "-c", `printf 'bad\000output\377'; exit 3`}
			m.Background.LoopInterval = 50 * time.Millisecond
			run(t, m)
			base, admin := m.URL(), m.AdminToken
			must(t, base, admin, "POST", "/v1/nodes", nodeJSON("n1", "default", "pw"), 201, nil)
			var a struct{ ID string }
			must(t, base, admin, "POST", "/v1/allocations", allocJSON("lab1", "default"), 201, &a)
			must(t, base, admin, "DELETE", "/v1/allocations/"+a.ID, nil, 200, nil)
			deadline := time.Now().Add(10 * time.Second)
			var n struct {
				State     string `json:"state"`
				LastError string `json:"last_error"`
			}
			for time.Now().Before(deadline) {
				must(t, base, admin, "GET", "/v1/nodes/n1", nil, 200, &n)
				if n.State != "cleaning" {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if n.State != "error" || !strings.Contains(n.LastError, "badoutput") {
				t.Errorf("node after a failed clean: state %q last_error %q; want error with the output", n.State, n.LastError)
			}
		})
	}
}
