package httpapi

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// documentResponses completes every operation's responses in the OpenAPI
// document after the routes are registered, so that a generated client
// knows each problem status as a problem document rather than an unknown
// reply: 400 (bad parameter or body), 401 (no or bad token), 403 (role or
// owner), 404 where the path names a resource, 409 and 413 where a body
// changes state, 500 always. huma's own 422 is dropped: ironpool answers
// validation failures with 400 (see problem.go). A queued allocation's 202
// is documented beside its 201, with the same body.
func (s *Server) documentResponses() {
	oapi := s.API.OpenAPI()
	problemSchema := oapi.Components.Schemas.Schema(reflect.TypeOf(Problem{}), true, "Problem")
	for path, item := range oapi.Paths {
		for method, op := range map[string]*huma.Operation{http.MethodGet: item.Get, http.MethodPost: item.Post,
			http.MethodPut: item.Put, http.MethodPatch: item.Patch, http.MethodDelete: item.Delete} {
			if op == nil {
				continue
			}
			if op.Responses == nil {
				op.Responses = map[string]*huma.Response{}
			}
			delete(op.Responses, "422")
			delete(op.Responses, "default")
			codes := []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusInternalServerError}
			if strings.Contains(path, "{") {
				codes = append(codes, http.StatusNotFound)
			}
			if method != http.MethodGet {
				codes = append(codes, http.StatusConflict)
			}
			if op.RequestBody != nil {
				codes = append(codes, http.StatusRequestEntityTooLarge)
			}
			for _, c := range codes {
				key := strconv.Itoa(c)
				if op.Responses[key] != nil {
					continue
				}
				op.Responses[key] = &huma.Response{Description: http.StatusText(c),
					Content: map[string]*huma.MediaType{"application/problem+json": {Schema: problemSchema}}}
			}
			if op.OperationID == "allocate" && op.Responses["201"] != nil {
				queued := *op.Responses["201"]
				queued.Description = "Queued: the allocation waits for nodes (state queued, no nodes yet)"
				op.Responses["202"] = &queued
			}
		}
	}
}

// schemaName names component schemas for generated clients: huma's name
// for named types, and for an operation's unnamed body ("List-eventsResponse")
// a CamelCase name ending in Reply or Body ("ListEventsReply",
// "CreateTokenBody"), since oapi-codegen generates a <Operation>Response
// type of its own for every operation and the two would collide.
func schemaName(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	if strings.Contains(name, "-") {
		parts := strings.Split(name, "-")
		for i, p := range parts {
			if p != "" {
				parts[i] = strings.ToUpper(p[:1]) + p[1:]
			}
		}
		name = strings.Join(parts, "")
	}
	if base, ok := strings.CutSuffix(name, "Response"); ok {
		name = base + "Reply"
	}
	if base, ok := strings.CutSuffix(name, "Request"); ok && deref(t).Name() == "" {
		name = base + "Body"
	}
	return name
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
