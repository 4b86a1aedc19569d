package httpapi

import (
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ironpool/ironpool"
)

// enumTypes maps each of the root package's string sets to its values: a
// field of that type carries the enum in the document. The lists are the
// root package's own (the one home of each set, which validation reads
// too); nothing here spells a value.
var enumTypes = map[reflect.Type][]string{
	reflect.TypeFor[ironpool.NodeState]():       strs(ironpool.NodeStates),
	reflect.TypeFor[ironpool.AllocationState](): strs(ironpool.AllocationStates),
	reflect.TypeFor[ironpool.Mode]():            strs(ironpool.Modes),
	reflect.TypeFor[ironpool.Role]():            strs(ironpool.Roles),
	reflect.TypeFor[ironpool.PowerAction]():     strs(ironpool.PowerActions),
	reflect.TypeFor[ironpool.BootDevice]():      strs(ironpool.BootDevices),
	reflect.TypeFor[ironpool.Pending]():         strs(ironpool.PendingWork),
}

// enumParams gives the query parameters that take one of those sets:
// huma keeps no Go type for a parameter, so they are named here by
// operation and parameter, with the values still from the root package.
var enumParams = map[[2]string][]string{
	{"list-nodes", "state"}:       strs(ironpool.NodeStates),
	{"list-allocations", "state"}: strs(ironpool.AllocationStates),
	{"usage", "window"}:           slices.Sorted(maps.Keys(ironpool.UsageWindows)),
}

func strs[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// inputSuffix names the request variant of a schema that is both sent and
// received ("Node" in a reply, "NodeInput" in a request body).
const inputSuffix = "Input"

// exactSchemas makes the document say what the wire does, after every
// route is registered:
//
//   - A response schema lists as required every field the server always
//     writes (the Go field has no omitempty), and stays open to fields a
//     later version adds (no additionalProperties: false), so a strict
//     generated client neither guesses nor breaks.
//   - A request schema stays strict (unknown fields are refused) and
//     requires nothing beyond what huma checks: the service validates and
//     names the field itself. A type used both ways (Node, Flavor) gets a
//     request copy named <Name>Input, since one schema cannot say both.
//   - Fields of the root package's string sets carry their enum; in
//     requests an always-sent field also admits "" (a Go client sends the
//     zero value for "not given", which the service then judges).
//
// Validation is unchanged: request bodies resolve to the Input copies,
// which validate exactly as the shared schema did, and huma never
// validates responses.
func (s *Server) exactSchemas() {
	oapi := s.API.OpenAPI()
	reg := oapi.Components.Schemas
	all := reg.Map()
	typeOf := map[string]reflect.Type{}
	for name := range all {
		if t := reg.TypeFromRef(refPrefix + name); t != nil {
			typeOf[name] = deref(t)
		}
	}
	var reqRoots, respRoots []*huma.Schema
	for _, op := range operations(oapi) {
		if op.RequestBody != nil {
			for _, mt := range op.RequestBody.Content {
				reqRoots = append(reqRoots, mt.Schema)
			}
		}
		for _, r := range op.Responses {
			for _, mt := range r.Content {
				respRoots = append(respRoots, mt.Schema)
			}
		}
		for _, p := range op.Parameters {
			if vals, ok := enumParams[[2]string{op.OperationID, p.Name}]; ok && p.Schema != nil {
				p.Schema.Enum = anys(vals)
				p.Schema.PrecomputeMessages()
			}
		}
	}
	reqSet, respSet := reachable(all, reqRoots), reachable(all, respRoots)
	shared := map[string]bool{}
	for name := range reqSet {
		if respSet[name] {
			shared[name] = true
		}
	}
	for name := range shared {
		all[name+inputSuffix] = deepCopy(all[name])
		typeOf[name+inputSuffix] = typeOf[name]
	}
	rename := func(sc *huma.Schema) {
		walk(sc, func(x *huma.Schema) {
			if name, ok := strings.CutPrefix(x.Ref, refPrefix); ok && shared[name] {
				x.Ref = refPrefix + name + inputSuffix
			}
		})
	}
	for _, root := range reqRoots {
		rename(root)
	}
	for name := range reqSet {
		target := name
		if shared[name] {
			target = name + inputSuffix
		}
		sc := all[target]
		rename(sc)
		describeRequest(sc, typeOf[target])
	}
	for name := range respSet {
		describeResponse(all[name], typeOf[name])
	}
}

const refPrefix = "#/components/schemas/"

// operations lists the document's operations.
func operations(oapi *huma.OpenAPI) []*huma.Operation {
	var out []*huma.Operation
	paths := slices.Sorted(maps.Keys(oapi.Paths))
	for _, p := range paths {
		item := oapi.Paths[p]
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch, item.Head, item.Options} {
			if op != nil {
				out = append(out, op)
			}
		}
	}
	return out
}

// reachable returns the names of the component schemas roots refer to,
// directly or through other components.
func reachable(all map[string]*huma.Schema, roots []*huma.Schema) map[string]bool {
	seen := map[string]bool{}
	var visit func(*huma.Schema)
	visit = func(sc *huma.Schema) {
		walk(sc, func(x *huma.Schema) {
			name, ok := strings.CutPrefix(x.Ref, refPrefix)
			if !ok || seen[name] || all[name] == nil {
				return
			}
			seen[name] = true
			visit(all[name])
		})
	}
	for _, r := range roots {
		visit(r)
	}
	return seen
}

// walk calls f on sc and every schema nested in it, without following
// references.
func walk(sc *huma.Schema, f func(*huma.Schema)) {
	if sc == nil {
		return
	}
	f(sc)
	for _, name := range slices.Sorted(maps.Keys(sc.Properties)) {
		walk(sc.Properties[name], f)
	}
	walk(sc.Items, f)
	if ap, ok := sc.AdditionalProperties.(*huma.Schema); ok {
		walk(ap, f)
	}
	for _, list := range [][]*huma.Schema{sc.OneOf, sc.AnyOf, sc.AllOf} {
		for _, x := range list {
			walk(x, f)
		}
	}
	walk(sc.Not, f)
}

// deepCopy copies sc and everything nested in it (not what it refers to).
func deepCopy(sc *huma.Schema) *huma.Schema {
	if sc == nil {
		return nil
	}
	c := *sc
	if sc.Properties != nil {
		c.Properties = make(map[string]*huma.Schema, len(sc.Properties))
		for k, v := range sc.Properties {
			c.Properties[k] = deepCopy(v)
		}
	}
	c.Items = deepCopy(sc.Items)
	if ap, ok := sc.AdditionalProperties.(*huma.Schema); ok {
		c.AdditionalProperties = deepCopy(ap)
	}
	cp := func(list []*huma.Schema) []*huma.Schema {
		if list == nil {
			return nil
		}
		out := make([]*huma.Schema, len(list))
		for i, x := range list {
			out[i] = deepCopy(x)
		}
		return out
	}
	c.OneOf, c.AnyOf, c.AllOf = cp(sc.OneOf), cp(sc.AnyOf), cp(sc.AllOf)
	c.Not = deepCopy(sc.Not)
	c.Required = slices.Clone(sc.Required)
	c.PrecomputeMessages()
	return &c
}

// jsonField is one field of a struct as encoding/json writes it.
type jsonField struct {
	name      string
	omitEmpty bool
	typ       reflect.Type
}

// jsonFields lists t's fields as encoding/json sees them, embedded
// structs flattened.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if f.Anonymous && name == "" && deref(f.Type).Kind() == reflect.Struct {
			out = append(out, jsonFields(deref(f.Type))...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		out = append(out, jsonField{name: name, omitEmpty: omit, typ: f.Type})
	}
	return out
}

// setEnums gives each field of a root string set its enum; withEmpty adds
// "" for fields a client always sends.
func setEnums(sc *huma.Schema, t reflect.Type, withEmpty bool) {
	for _, f := range jsonFields(t) {
		prop := sc.Properties[f.name]
		if prop == nil {
			continue
		}
		ft := deref(f.typ)
		target := prop
		if ft.Kind() == reflect.Slice {
			ft, target = deref(ft.Elem()), prop.Items
		}
		vals, ok := enumTypes[ft]
		if !ok || target == nil || target.Ref != "" {
			continue
		}
		if withEmpty && !f.omitEmpty && !slices.Contains(vals, "") {
			vals = append(slices.Clone(vals), "")
		}
		target.Enum = anys(vals)
		target.PrecomputeMessages()
	}
}

func anys(vals []string) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = v
	}
	return out
}

// describeResponse marks the always-written fields required, opens the
// schema to new fields and sets enums. Only the document reads it: huma
// validates no response.
func describeResponse(sc *huma.Schema, t reflect.Type) {
	if sc == nil || sc.Type != huma.TypeObject || t == nil {
		return
	}
	sc.AdditionalProperties = nil
	sc.Required = nil
	for _, f := range jsonFields(t) {
		prop := sc.Properties[f.name]
		if f.omitEmpty || prop == nil {
			continue
		}
		switch f.typ.Kind() {
		case reflect.Pointer, reflect.Interface:
			continue // may be null, which a referenced object schema does not admit
		case reflect.Map:
			if prop.Ref == "" {
				prop.Nullable = true // a nil map is written as null
			}
		}
		sc.Required = append(sc.Required, f.name)
	}
	sort.Strings(sc.Required)
	setEnums(sc, t, false)
}

// describeRequest sets enums on a request schema and leaves it otherwise
// as huma made it (strict, nothing required).
func describeRequest(sc *huma.Schema, t reflect.Type) {
	if sc == nil || sc.Type != huma.TypeObject || t == nil {
		return
	}
	setEnums(sc, t, true)
	sc.PrecomputeMessages()
}
