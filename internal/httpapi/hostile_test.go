package httpapi_test

import (
	"context"
	"encoding/json"
	"github.com/ironpool/ironpool/internal/testlog"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ironpool/ironpool/internal/httpapi"
	"github.com/ironpool/ironpool/internal/service"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// problemDoc is the part of a problem document these tests read.
type problemDoc struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func decodeProblem(t *testing.T, hdr http.Header, body []byte) problemDoc {
	t.Helper()
	if ct := hdr.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemDoc
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem document: %s", body)
	}
	return p
}

// TestBodyLimit checks that an oversize body is refused with 413 before it
// is read whole, and that the import route's larger limit is its own.
func TestBodyLimit(t *testing.T) {
	s := startServer(t)
	// 1.5 MiB of valid JSON: over the 1 MiB limit of ordinary routes,
	// under the 64 MiB of import.
	pad := strings.Repeat("x", 1536<<10)
	node := nodeBody("big", "default", "pw")
	node["fields"] = map[string]string{"pad": pad}

	st, hdr, body := s.do(s.admin, "POST", "/v1/nodes", node)
	if st != http.StatusRequestEntityTooLarge {
		t.Fatalf("1.5 MiB node: status %d, want 413: %.200s", st, body)
	}
	if p := decodeProblem(t, hdr, body); p.Code != "too_large" {
		t.Errorf("1.5 MiB node: code %q, want too_large", p.Code)
	}

	st, _, body = s.do(s.admin, "POST", "/v1/nodes/import", map[string]any{"nodes": []any{node}})
	if st == http.StatusRequestEntityTooLarge {
		t.Errorf("1.5 MiB import: 413; import allows 64 MiB")
	} else if st != http.StatusBadRequest {
		t.Errorf("1.5 MiB import: status %d, want 400 (the field value is too long): %.200s", st, body)
	}
}

// TestStringLimits checks that over-long strings are refused with 400
// naming the field, whether huma's schema or the domain validation
// catches them.
func TestStringLimits(t *testing.T) {
	s := startServer(t)
	long := strings.Repeat("a", 10000)
	n, _ := s.node()
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"NodeName", "POST", "/v1/nodes", nodeBody(long, "default", "pw"), "name"},
		{"PoolName", "POST", "/v1/nodes", nodeBody("ok1", long, "pw"), "pool"},
		{"Password", "POST", "/v1/nodes", nodeBody("ok2", "default", long), "bmc.password"},
		{"FieldValue", "POST", "/v1/nodes", withFields(nodeBody("ok3", "default", "pw"), map[string]string{"rack": long}), "fields.rack"},
		{"FieldKey", "POST", "/v1/nodes", withFields(nodeBody("ok4", "default", "pw"), map[string]string{long: "x"}), "fields."},
		{"SetFieldValue", "PATCH", "/v1/nodes/" + n, map[string]any{"set": map[string]string{"fields.rack": long}}, "fields.rack"},
		{"Reason", "PUT", "/v1/nodes/" + n + "/maintenance", map[string]any{"reason": long}, "reason"},
		{"FlavorName", "POST", "/v1/flavors", map[string]any{"name": long}, "name"},
		{"Owner", "POST", "/v1/allocations", allocBody(long, "default"), "owner"},
		{"MetadataValue", "POST", "/v1/allocations", withMeta(allocBody("lab1", "default"), map[string]string{"k": long}), "metadata"},
		{"TokenDescription", "POST", "/v1/tokens", map[string]any{"role": "operator", "description": long}, "description"},
		{"PathName", "GET", "/v1/nodes/" + long[:300], nil, "name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, hdr, body := s.do(s.admin, c.method, c.path, c.body)
			if st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %.300s", st, body)
			}
			// The field is named as the API documents it (huma's
			// "path.name" loses its prefix), and the 10,000-character value
			// is not echoed back.
			p := decodeProblem(t, hdr, body)
			if !strings.HasPrefix(p.Field, c.field) {
				t.Errorf("field %q, want %q: %.300s", p.Field, c.field, body)
			}
			if strings.Contains(string(body), long[:200]) {
				t.Errorf("the refused value is echoed back: %.300s", body)
			}
		})
	}
}

// TestNamePatterns checks that names, field keys and owners outside the
// documented patterns are refused with 400 naming the field.
func TestNamePatterns(t *testing.T) {
	s := startServer(t)
	cases := []struct {
		name  string
		path  string
		body  any
		field string
	}{
		{"NodeSpace", "/v1/nodes", nodeBody("bad name", "default", "pw"), "name"},
		{"NodeSlash", "/v1/nodes", nodeBody("../etc", "default", "pw"), "name"},
		{"NodeLeadingDash", "/v1/nodes", nodeBody("-rf", "default", "pw"), "name"},
		{"NodeNewline", "/v1/nodes", nodeBody("n1\nINFO forged log line", "default", "pw"), "name"},
		{"PoolUnicode", "/v1/nodes", nodeBody("n1", "pööl", "pw"), "pool"},
		{"FieldKeyDigit", "/v1/nodes", withFields(nodeBody("n2", "default", "pw"), map[string]string{"1rack": "x"}), "fields.1rack"},
		{"FieldKeySpace", "/v1/nodes", withFields(nodeBody("n3", "default", "pw"), map[string]string{"ra ck": "x"}), "fields.ra ck"},
		{"FlavorSemicolon", "/v1/flavors", map[string]any{"name": "f;drop"}, "name"},
		{"Owner", "/v1/allocations", allocBody("lab 1", "default"), "owner"},
		{"MetadataKey", "/v1/allocations", withMeta(allocBody("lab1", "default"), map[string]string{"$where": "x"}), "metadata"},
		{"TokenOwner", "/v1/tokens", map[string]any{"role": "user", "owners": []string{"a b"}}, "owners[0]"},
		{"BMCCredentials", "/v1/nodes", map[string]any{"name": "n4", "bmc": map[string]any{"address": "ipmi://root:calvin@10.0.0.1"}}, "bmc.address"},
		{"BMCScheme", "/v1/nodes", map[string]any{"name": "n5", "bmc": map[string]any{"address": "file:///etc/passwd"}}, "bmc.address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, hdr, body := s.do(s.admin, "POST", c.path, c.body)
			if st != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %.300s", st, body)
			}
			if p := decodeProblem(t, hdr, body); p.Field != c.field {
				t.Errorf("field %q, want %q: %s", p.Field, c.field, body)
			}
		})
	}
}

func withFields(n map[string]any, f map[string]string) map[string]any { n["fields"] = f; return n }
func withMeta(a map[string]any, m map[string]string) map[string]any   { a["metadata"] = m; return a }

// TestPanicRecovered checks that a panicking handler answers a bare 500
// problem with nothing of the panic in it, that the panic and its stack
// are logged for the operator, and that the server keeps serving.
func TestPanicRecovered(t *testing.T) {
	store, _ := opener.MustOpenSQLite(t)
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	api := httpapi.New(service.New(store, service.Config{}, log), log)
	huma.Register(api.API, huma.Operation{OperationID: "test-panic", Method: "GET", Path: "/v1/test/panic"},
		func(ctx context.Context, in *struct{}) (*struct{}, error) {
			panic("db password is hunter2 at /srv/secret")
		})
	srv := httptest.NewServer(api)
	defer srv.Close()

	resp, body := send(t, mustRequest(t, "GET", srv.URL+"/v1/test/panic"))
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	p := decodeProblem(t, resp.Header, body)
	if p.Detail != "internal error" || strings.Contains(string(body), "hunter2") || strings.Contains(string(body), "goroutine") {
		t.Errorf("the 500 reply tells the client about the panic: %s", body)
	}
	out := logs.String()
	if !strings.Contains(out, "hunter2") || !strings.Contains(out, "goroutine") {
		t.Errorf("the panic and its stack are not in the log:\n%s", out)
	}
	if resp, _ := send(t, mustRequest(t, "GET", srv.URL+"/healthz")); resp.StatusCode != 200 {
		t.Errorf("after a panic /healthz answers %d", resp.StatusCode)
	}
}
