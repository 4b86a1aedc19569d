package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/servertest"
)

type docSchema struct {
	Type                 any                   `json:"type"`
	Ref                  string                `json:"$ref"`
	Required             []string              `json:"required"`
	Enum                 []string              `json:"enum"`
	AdditionalProperties any                   `json:"additionalProperties"`
	Properties           map[string]*docSchema `json:"properties"`
	Items                *docSchema            `json:"items"`
}

type docMedia struct {
	Schema *docSchema `json:"schema"`
}

type openAPIDoc struct {
	Info struct {
		Version string `json:"version"`
		License *struct {
			Name string `json:"name"`
			URL  string `json:"url"`
		} `json:"license"`
	} `json:"info"`
	Paths map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Parameters  []struct {
			Name   string     `json:"name"`
			Schema *docSchema `json:"schema"`
		} `json:"parameters"`
		RequestBody *struct {
			Content map[string]docMedia `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]docMedia `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]*docSchema `json:"schemas"`
	} `json:"components"`
}

func fetchDoc(t *testing.T, path string) *openAPIDoc {
	t.Helper()
	m := servertest.Start(t, nil)
	resp, err := http.Get(m.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc openAPIDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return &doc
}

// closure returns the component schemas the roots refer to, directly or
// through others.
func closure(doc *openAPIDoc, roots []*docSchema) map[string]bool {
	seen := map[string]bool{}
	var visit func(*docSchema)
	visit = func(s *docSchema) {
		if s == nil {
			return
		}
		if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok && !seen[name] {
			seen[name] = true
			visit(doc.Components.Schemas[name])
		}
		for _, p := range s.Properties {
			visit(p)
		}
		visit(s.Items)
	}
	for _, r := range roots {
		visit(r)
	}
	return seen
}

// TestOpenAPIExact checks that /openapi.json (and its 3.0 rendering) says
// what the wire does: no response schema is closed to new fields; the
// fields a reply always carries are required (an allocation's id and
// state, a node's name and state); every field and parameter of the root
// package's string sets (node and allocation states, modes, roles, power
// actions, boot devices) carries exactly that set as its enum; a schema
// used both ways has a request copy that requires nothing; and the info
// names the licence and version.
func TestOpenAPIExact(t *testing.T) {
	for _, path := range []string{"/openapi.json", "/openapi-3.0.json"} {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			doc := fetchDoc(t, path)
			if l := doc.Info.License; l == nil || l.Name != "Apache-2.0" || l.URL == "" {
				t.Errorf("info.license = %+v, want Apache-2.0 with its URL", l)
			}
			if doc.Info.Version == "" {
				t.Error("info.version is empty")
			}
			var req, resp []*docSchema
			params := map[string]*docSchema{}
			for _, item := range doc.Paths {
				for _, op := range item {
					if op.RequestBody != nil {
						for _, mt := range op.RequestBody.Content {
							req = append(req, mt.Schema)
						}
					}
					for _, r := range op.Responses {
						for _, mt := range r.Content {
							resp = append(resp, mt.Schema)
						}
					}
					for _, p := range op.Parameters {
						params[op.OperationID+"."+p.Name] = p.Schema
					}
				}
			}
			respSet, reqSet := closure(doc, resp), closure(doc, req)
			if len(respSet) < 20 {
				t.Fatalf("only %d response schemas found", len(respSet))
			}
			for name := range respSet {
				if ap, ok := doc.Components.Schemas[name].AdditionalProperties.(bool); ok && !ap {
					t.Errorf("response schema %s is closed (additionalProperties: false)", name)
				}
				if reqSet[name] {
					t.Errorf("schema %s is used by both requests and responses (want a %sInput copy)", name, name)
				}
			}
			for name := range reqSet {
				if r := doc.Components.Schemas[name].Required; len(r) > 0 {
					t.Errorf("request schema %s requires %v: the service validates and names the field itself", name, r)
				}
			}
			required := map[string][]string{
				"Allocation": {"id", "owner", "state", "mode", "created_at", "items"},
				"Node":       {"id", "name", "uuid", "pool", "state", "bmc"},
				"Token":      {"id", "role", "created_at"},
				"Problem":    {"status", "code"},
				"Event":      {"id", "time", "action", "actor"},
				"StateCount": {"pool", "state", "count"},
			}
			for name, fields := range required {
				s := doc.Components.Schemas[name]
				if s == nil {
					t.Errorf("no schema %s", name)
					continue
				}
				for _, f := range fields {
					if !slices.Contains(s.Required, f) {
						t.Errorf("%s.%s is always sent but not required (required: %v)", name, f, s.Required)
					}
				}
			}
			want := func(vals ...string) []string { return vals }
			strs := func(xs any) []string {
				var out []string
				switch v := xs.(type) {
				case []ironpool.NodeState:
					for _, x := range v {
						out = append(out, string(x))
					}
				case []ironpool.AllocationState:
					for _, x := range v {
						out = append(out, string(x))
					}
				case []ironpool.Mode:
					for _, x := range v {
						out = append(out, string(x))
					}
				case []ironpool.Role:
					for _, x := range v {
						out = append(out, string(x))
					}
				case []ironpool.PowerAction:
					for _, x := range v {
						out = append(out, string(x))
					}
				case []ironpool.BootDevice:
					for _, x := range v {
						out = append(out, string(x))
					}
				}
				return out
			}
			enums := map[string][]string{
				"Node.state":               strs(ironpool.NodeStates),
				"StateCount.state":         strs(ironpool.NodeStates),
				"Allocation.state":         strs(ironpool.AllocationStates),
				"Tenancy.state":            strs(ironpool.AllocationStates),
				"Allocation.mode":          strs(ironpool.Modes),
				"AllocateBody.mode":        strs(ironpool.Modes),
				"Token.role":               strs(ironpool.Roles),
				"Identity.role":            strs(ironpool.Roles),
				"Event.role":               strs(ironpool.Roles),
				"CreateTokenBody.role":     append(strs(ironpool.Roles), ""),
				"PowerNodeBody.action":     append(strs(ironpool.PowerActions), ""),
				"SetBootDeviceBody.device": append(strs(ironpool.BootDevices), ""),
				"NodeInput.state":          append(strs(ironpool.NodeStates), ""),
			}
			for key, vals := range enums {
				name, field, _ := strings.Cut(key, ".")
				s := doc.Components.Schemas[name]
				if s == nil || s.Properties[field] == nil {
					t.Errorf("no field %s", key)
					continue
				}
				if got := s.Properties[field].Enum; !slices.Equal(got, vals) {
					t.Errorf("%s enum = %q, want %q", key, got, vals)
				}
			}
			for key, vals := range map[string][]string{
				"list-nodes.state":       strs(ironpool.NodeStates),
				"list-allocations.state": strs(ironpool.AllocationStates),
				"usage.window":           want("24h", "7d"),
			} {
				if p := params[key]; p == nil || !slices.Equal(p.Enum, vals) {
					t.Errorf("parameter %s: %+v, want enum %q", key, p, vals)
				}
			}
		})
	}
}
