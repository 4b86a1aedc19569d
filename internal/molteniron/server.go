// Package molteniron serves Molten Iron's JSON-over-POST protocol on top of
// the pool service, so the stock `molteniron` client and the CI hooks built
// on it switch to ironpool by changing one host:port. Molten Iron nodes are
// ironpool nodes and its allocations are ironpool allocations: the listener
// translates, it keeps no second store. docs/MOLTENIRON.md has the mapping
// and the places where it deliberately does what upstream meant rather
// than what it did.
package molteniron

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
)

// Methods are the protocol's methods, in the order the docs list them.
var Methods = []string{"add_baremetal", "add_keyvalue_pairs", "add_json_blob", "allocate", "release",
	"get_field", "set_field", "status", "status_baremetal", "delete_db"}

// MaxBody bounds a request: upstream's largest column is a 2000-byte blob.
const MaxBody = 1 << 20

// Server answers Molten Iron requests. Every request runs as Actor, which
// the operator configures (the protocol has no authentication), so the
// service's policy table and owner scoping apply and every change is
// recorded as an audit event under that actor.
type Server struct {
	Service *service.Service
	Actor   *ironpool.Actor
	// AllowDeleteDB enables delete_db, which deletes every node that no
	// allocation holds. It is off by default: one stray call would empty
	// the pool.
	AllowDeleteDB bool
	Log           *slog.Logger
}

// reply is a Molten Iron reply: an object whose "status" is also the HTTP
// status.
type reply = Object

// fail is a failure reply in upstream's shape: exactly status and message.
func fail(status int, format string, args ...any) reply {
	return reply{{"status", status}, {"message", fmt.Sprintf(format, args...)}}
}

// okReply is a success reply: status 200 and the method's own keys.
func okReply(extra ...Member) reply { return append(reply{{"status", 200}}, extra...) }

// missing is upstream's reply for an absent request key: Python's KeyError
// text, the key in quotes.
func missing(key string) reply { return fail(400, "'%s'", key) }

// ServeHTTP answers one request. Unlike upstream, which served one request
// at a time and dropped the connection on an unknown method, every request
// runs concurrently and every failure is a JSON reply.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	method := "-"
	var rep reply
	defer func() {
		if v := recover(); v != nil {
			s.log().Error("molteniron: panic", "method", method, "panic", v, "stack", string(debug.Stack()))
			rep = fail(500, "internal error")
		}
		st := statusOf(rep)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		w.Write(EncodeJSON(rep))
		// ERROR is for the server's own failures; a GET answered 501 is
		// the client's mistake and must not page anyone.
		level := slog.LevelInfo
		if st >= 500 && st != http.StatusNotImplemented {
			level = slog.LevelError
		}
		s.log().Log(r.Context(), level, "molteniron", "method", method, "status", st,
			"remote", r.RemoteAddr, "duration", time.Since(start).Round(time.Microsecond))
	}()
	if r.Method != http.MethodPost {
		rep = fail(http.StatusNotImplemented, "Unsupported method ('%s'): Molten Iron requests are POSTs of a JSON object", r.Method)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			rep = fail(http.StatusRequestEntityTooLarge, "request body is over %d bytes", MaxBody)
		} else {
			rep = fail(400, "cannot read the request: %v", err)
		}
		return
	}
	ctx := ironpool.NewContextWithActor(r.Context(), s.Actor)
	method, rep = s.Handle(ctx, body)
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

func statusOf(rep reply) int {
	v, _ := rep.Get("status")
	if st, ok := v.(int); ok && st >= 100 && st <= 599 {
		return st
	}
	return 500
}

// Handle runs one request body and returns the method it named and the
// reply. It is ServeHTTP without HTTP, for tests and embedding.
func (s *Server) Handle(ctx context.Context, body []byte) (string, Object) {
	v, err := Decode(body)
	if err != nil {
		return "-", fail(400, "%s", pythonJSONError(body, err))
	}
	req, isObj := v.(Object)
	if !isObj {
		return "-", fail(400, "the request must be a JSON object with a \"method\" key")
	}
	mv, has := req.Get("method")
	if !has {
		return "-", missing("method")
	}
	method, _ := mv.(string)
	switch method {
	case "add_baremetal":
		return method, s.addBaremetal(ctx, req)
	case "add_keyvalue_pairs":
		return method, s.addKeyValuePairs(ctx, req)
	case "add_json_blob":
		return method, s.addJSONBlob(ctx, req)
	case "allocate":
		return method, s.allocate(ctx, req)
	case "release":
		return method, s.release(ctx, req)
	case "get_field":
		return method, s.getField(ctx, req)
	case "set_field":
		return method, s.setField(ctx, req)
	case "status":
		return method, s.status(ctx, req, false)
	case "status_baremetal":
		return method, s.status(ctx, req, true)
	case "delete_db":
		return method, s.deleteDB(ctx)
	}
	return "-", fail(400, "Unknown method %s; known methods: %s", Repr(mv), strings.Join(Methods, ", "))
}

// errorReply turns a service error into a reply. Conflicts are 400 as in
// upstream (which answered every failure 400); a shortfall is upstream's
// 404; authorization keeps 401/403 so a script can tell "not allowed" from
// "bad input". Field names are translated back to Molten Iron's.
func errorReply(err error) reply {
	code := ironpool.ErrorCode(err)
	st := ironpool.ErrorStatus(code)
	switch code {
	case ironpool.ECONFLICT:
		st = 400
	case ironpool.ECAPACITY:
		st = 404
	}
	msg := ironpool.ErrorMessage(err)
	var e *ironpool.Error
	if errors.As(err, &e) && e.Field != "" {
		msg = miField(e.Field) + ": " + e.Message
	}
	return fail(st, "%s", msg)
}

// miField names an ironpool request field the way a Molten Iron user knows
// it, from the node field table.
func miField(f string) string {
	for _, nf := range ironpool.NodeFields {
		if nf.MoltenIron != "" && (f == nf.Name || strings.HasPrefix(f, nf.Name+"[")) {
			return nf.MoltenIron
		}
	}
	return f
}

// text reads a string request value. Upstream passed whatever JSON type it
// got to SQL, which stored its text; numbers are taken as their text here
// too, anything else is refused.
func text(req Object, key string) (string, reply) {
	v, has := req.Get(key)
	if !has {
		return "", missing(key)
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case json.Number:
		return pyNumber(t, true), nil
	}
	return "", fail(400, "%s must be a string, not %s", key, Str(v))
}

// required checks keys in the order upstream's handler read them, so the
// first missing one is the one it would have named.
func required(req Object, keys ...string) reply {
	for _, k := range keys {
		if _, has := req.Get(k); !has {
			return missing(k)
		}
	}
	return nil
}

func (s *Server) addBaremetal(ctx context.Context, req Object) reply {
	if rep := required(req, hardwareKeys...); rep != nil {
		return rep
	}
	blob := make(Object, 0, len(hardwareKeys))
	for _, k := range hardwareKeys {
		v, _ := req.Get(k)
		blob = append(blob, Member{k, v})
	}
	return s.add(ctx, req, blob)
}

func (s *Server) addKeyValuePairs(ctx context.Context, req Object) reply {
	v, has := req.Get("args")
	if !has {
		return missing("args")
	}
	args, isList := v.([]any)
	if !isList {
		return fail(400, "args must be a list of \"key=value\" strings")
	}
	blob := Object{}
	for _, a := range args {
		s, _ := a.(string)
		// Upstream stores the text after the first '=' verbatim (quotes
		// included) and skips items without '='.
		if k, val, found := strings.Cut(s, "="); found {
			blob.Set(k, val)
		}
	}
	return s.add(ctx, req, blob)
}

func (s *Server) addJSONBlob(ctx context.Context, req Object) reply {
	raw, rep := text(req, "blob")
	if rep != nil {
		return rep
	}
	v, err := Decode([]byte(raw))
	if err != nil {
		return fail(400, "%s", pythonJSONError([]byte(raw), err))
	}
	blob, isObj := v.(Object)
	if !isObj {
		return fail(400, "blob must be a JSON object (got %s)", truncate(raw, 40))
	}
	return s.add(ctx, req, blob)
}

// add creates one ironpool node from a Molten Iron add request. Every
// required key is checked before anything is written: upstream inserted the
// node and then failed on a missing allocation_pool, leaving half a node.
func (s *Server) add(ctx context.Context, req Object, blob Object) reply {
	if rep := required(req, "name", "ipmi_ip", "allocation_pool"); rep != nil {
		return rep
	}
	name, rep := text(req, "name")
	if rep != nil {
		return rep
	}
	ip, rep := text(req, "ipmi_ip")
	if rep != nil {
		return rep
	}
	ips, rep := text(req, "allocation_pool")
	if rep != nil {
		return rep
	}
	nodePool := "Default"
	if _, has := req.Get("node_pool"); has {
		if nodePool, rep = text(req, "node_pool"); rep != nil {
			return rep
		}
	}
	if v, has := req.Get("provisioned"); has && v != nil && v != "" {
		return fail(400, "provisioned cannot be preset: ironpool hands nodes to an owner only through allocate")
	}
	preset := "ready"
	if v, has := req.Get("status"); has && v != nil && v != "" {
		if preset, rep = text(req, "status"); rep != nil {
			return rep
		}
	}
	if len(ips) > ironpool.MaxValueLen {
		return fail(400, "allocation_pool is %d characters long; the limit is %d", len(ips), ironpool.MaxValueLen)
	}
	n := &ironpool.Node{Name: mapName(name), Pool: MapPool(nodePool), BMC: ironpool.BMC{Address: bmcAddress(ip)},
		Fields: map[string]string{FieldAllocationPool: ips}}
	if n.Name != name {
		n.Fields[FieldName] = name
	}
	if nodePool != n.Pool {
		n.Fields[FieldNodePool] = nodePool
	}
	if err := setBlob(n, blob); err != nil {
		return fail(400, "%s", err)
	}
	if err := s.Service.CreateNodes(ctx, []*ironpool.Node{n}); err != nil {
		var e *ironpool.Error
		if errors.As(err, &e) && e.Code == ironpool.ECONFLICT && e.Field == "name" {
			return fail(400, "Node already exists")
		}
		return errorReply(err)
	}
	if preset != "ready" {
		// Upstream fixtures add nodes as "used" or "dirty" so that allocate
		// skips them; in ironpool that is maintenance.
		if _, err := s.Service.SetMaintenance(ctx, n.Name, true, statusReason+preset); err != nil {
			return errorReply(err)
		}
	}
	return okReply()
}

// allocate is one ironpool allocation of N nodes of any shape, all or
// nothing, with the server's default lease.
func (s *Server) allocate(ctx context.Context, req Object) reply {
	if rep := required(req, "owner_name", "number_of_nodes", "node_pool"); rep != nil {
		return rep
	}
	owner, rep := text(req, "owner_name")
	if rep != nil {
		return rep
	}
	nv, _ := req.Get("number_of_nodes")
	numText, isInt := intText(nv)
	if !isInt {
		return fail(400, "number_of_nodes must be a whole number, not %s", Repr(nv))
	}
	count, err := strconv.Atoi(numText)
	if err != nil {
		return fail(400, "number_of_nodes %s is out of range", numText)
	}
	nodePool, rep := text(req, "node_pool")
	if rep != nil {
		return rep
	}
	if count <= 0 {
		return okReply(Member{"nodes", Object{}}) // as upstream: nothing asked, nothing taken
	}
	ipPool := ""
	if nodePool != "Default" {
		ipPool = MapPool(nodePool)
	}
	if count > ironpool.MaxCount {
		free, err := s.Service.FindNodes(ctx, ironpool.NodeFilter{Pool: ipPool, State: ironpool.NodeAvailable})
		if err != nil {
			return errorReply(err)
		}
		if len(free) < count {
			return notEnough(len(free), count)
		}
		return fail(400, "number_of_nodes is %d; ironpool allocates at most %d nodes per request", count, ironpool.MaxCount)
	}
	a, err := s.Service.Allocate(ctx, &ironpool.AllocationRequest{
		Owner:    MapOwner(owner),
		Items:    []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{}, Count: count}},
		Pool:     ipPool,
		Metadata: map[string]string{MetaOwner: truncate(owner, ironpool.MaxValueLen), "source": "molteniron"},
	})
	if err != nil {
		var e *ironpool.Error
		if errors.As(err, &e) && e.Code == ironpool.ECAPACITY && len(e.Shortfall) > 0 {
			return notEnough(e.Shortfall[0].Free, count)
		}
		return errorReply(err)
	}
	nodes := slices.Clone(a.Nodes)
	slices.SortFunc(nodes, func(x, y *ironpool.Node) int { return cmp.Compare(x.ID, y.ID) })
	out := make(Object, 0, len(nodes))
	owners := map[string]string{a.ID: owner}
	for _, n := range nodes {
		out = append(out, Member{fmt.Sprintf("node_%d", n.ID), rowOf(n, owners).object()})
	}
	return okReply(Member{"nodes", out})
}

func notEnough(found, requested int) reply {
	return fail(404, "Not enough available nodes found. Found %d, requested %d", found, requested)
}

// release releases every live allocation of the owner.
func (s *Server) release(ctx context.Context, req Object) reply {
	owner, rep := text(req, "owner_name")
	if rep != nil {
		return rep
	}
	out, err := s.Service.ReleaseOwner(ctx, MapOwner(owner))
	if err != nil {
		return errorReply(err)
	}
	if len(out) == 0 {
		return fail(400, "No nodes are owned by %s", owner)
	}
	return okReply()
}

// ownedRows returns the owner's nodes in id order, passwords included when
// the actor may act for the owner (the handoff CI hooks rely on).
func (s *Server) ownedRows(ctx context.Context, owner string) ([]*row, reply) {
	allocs, err := s.Service.FindAllocations(ctx, ironpool.AllocationFilter{Owner: MapOwner(owner), Live: true})
	if err != nil {
		return nil, errorReply(err)
	}
	var rows []*row
	for _, a := range allocs {
		full, err := s.Service.FindAllocation(ctx, a.ID)
		if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, errorReply(err)
		}
		display := full.Metadata[MetaOwner]
		if display == "" {
			display = full.Owner
		}
		for _, n := range full.Nodes {
			rows = append(rows, rowOf(n, map[string]string{full.ID: display}))
		}
	}
	slices.SortFunc(rows, func(x, y *row) int { return cmp.Compare(x.ID, y.ID) })
	return rows, nil
}

func (s *Server) getField(ctx context.Context, req Object) reply {
	if rep := required(req, "owner_name", "field_name"); rep != nil {
		return rep
	}
	owner, rep := text(req, "owner_name")
	if rep != nil {
		return rep
	}
	field, rep := text(req, "field_name")
	if rep != nil {
		return rep
	}
	rows, rep := s.ownedRows(ctx, owner)
	if rep != nil {
		return rep
	}
	if len(rows) == 0 {
		return fail(404, "%s does not own any nodes", owner)
	}
	result := make([]any, 0, len(rows))
	for _, r := range rows {
		v, found := r.column(field)
		if !found {
			v, found = r.Blob.Get(field)
		}
		if !found {
			return fail(400, "field %s does not exist", field)
		}
		result = append(result, Object{{"id", r.ID}, {"field", v}})
	}
	return okReply(Member{"result", result})
}

// pyInt is Python's int() of a set_field value, with its error text.
func pyInt(v any) (json.Number, reply) {
	switch t := v.(type) {
	case json.Number:
		if s, ok := intText(t); ok {
			return json.Number(s), nil
		}
		f, err := t.Float64()
		if err != nil {
			return "", fail(400, "cannot convert float %s to integer", t)
		}
		return json.Number(strconv.FormatInt(int64(f), 10)), nil
	case string:
		s := strings.TrimSpace(strings.ReplaceAll(t, "_", ""))
		s = strings.TrimPrefix(s, "+")
		if x, err := strconv.ParseInt(s, 10, 64); err == nil && s != "" && !strings.HasPrefix(t, "_") {
			return json.Number(strconv.FormatInt(x, 10)), nil
		}
		return "", fail(400, "invalid literal for int() with base 10: %s", Repr(t))
	case bool:
		if t {
			return "1", nil
		}
		return "0", nil
	}
	return "", fail(400, "int() argument must be a string, a bytes-like object or a real number, not '%s'", pyType(v))
}

func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case Object:
		return "dict"
	case []any:
		return "list"
	}
	return "str"
}

// findByID returns the node with Molten Iron id id (ironpool's node id).
func (s *Server) findByID(ctx context.Context, id int64) (*ironpool.Node, error) {
	nodes, err := s.Service.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.ID == id {
			return n, nil
		}
	}
	return nil, nil
}

func (s *Server) setField(ctx context.Context, req Object) reply {
	if rep := required(req, "id", "key", "value", "type"); rep != nil {
		return rep
	}
	idv, _ := req.Get("id")
	key, rep := text(req, "key")
	if rep != nil {
		return rep
	}
	value, _ := req.Get("value")
	typ, rep := text(req, "type")
	if rep != nil {
		return rep
	}
	switch strings.ToLower(strings.ToUpper(typ)) {
	case "string":
	case "int":
		if value, rep = pyInt(value); rep != nil {
			return rep
		}
	default:
		return fail(400, "Python type of %s is not supported!", typ)
	}
	idText := Str(idv)
	id, err := strconv.ParseInt(strings.TrimSpace(idText), 10, 64)
	var n *ironpool.Node
	if err == nil {
		if n, err = s.findByID(ctx, id); err != nil {
			return errorReply(err)
		}
	}
	if n == nil {
		return fail(404, "Node with id of %s does not exist!", idText)
	}
	return s.set(ctx, n, key, value)
}

// set writes one column or blob key of n. Columns that ironpool derives
// from allocations (status aside) cannot be written: a script that set
// provisioned by hand would hand a node out behind the allocator's back.
func (s *Server) set(ctx context.Context, n *ironpool.Node, key string, value any) reply {
	str := Str(value)
	assign := map[string]string{}
	switch key {
	case "id", "provisioned", "timestamp", "blob", "allocation_pool":
		return fail(400, "field %s is kept by ironpool and cannot be set; allocate and release change it", key)
	case "status":
		return s.setStatus(ctx, n, str)
	case "name":
		mapped := mapName(str)
		assign["name"] = mapped
		if mapped != str {
			assign["fields."+FieldName] = str
		} else if _, has := n.Fields[FieldName]; has {
			assign["fields."+FieldName] = ""
		}
	case "ipmi_ip":
		assign["bmc.address"] = bmcAddress(str)
	case "node_pool":
		mapped := MapPool(str)
		assign["pool"] = mapped
		if mapped != str {
			assign["fields."+FieldNodePool] = str
		} else if _, has := n.Fields[FieldNodePool]; has {
			assign["fields."+FieldNodePool] = ""
		}
	default:
		keys := blobKeys(n)
		i := slices.IndexFunc(keys, func(k blobKey) bool { return k.Key == key })
		if i < 0 {
			if _, isField := n.Fields[key]; !isField || strings.HasPrefix(key, "mi.") {
				return fail(400, "field %s does not exist", key)
			}
			keys = append(keys, blobKey{Key: key})
			i = len(keys) - 1
		}
		want := n.Clone()
		bk, err := putBlob(want, key, value)
		if err != nil {
			return fail(400, "%s", err)
		}
		keys = slices.Clone(keys)
		keys[i] = bk
		setBlobKeys(want, keys)
		assign = ironpool.NodeAssignments(n, want)
	}
	if len(assign) == 0 {
		return okReply()
	}
	if _, err := s.Service.SetFields(ctx, n.Name, assign); err != nil {
		var e *ironpool.Error
		if errors.As(err, &e) && e.Code == ironpool.ECONFLICT && e.Field == "name" {
			return fail(400, "Node already exists")
		}
		return errorReply(err)
	}
	return okReply()
}

// setStatus maps a status write onto maintenance: "ready" puts the node
// back in service, anything else takes a free node out with a reason that
// reads back as the status (upstream's "used" meant exactly that:
// allocate skips it).
func (s *Server) setStatus(ctx context.Context, n *ironpool.Node, st string) reply {
	if st == status(n) {
		return okReply()
	}
	var err error
	switch {
	case n.State.Held() || n.AllocationID != "":
		return fail(400, "node %d is allocated to %s; release it instead of setting its status", n.ID, n.Owner)
	case st == "ready":
		_, err = s.Service.SetMaintenance(ctx, n.Name, false, "")
	default:
		_, err = s.Service.SetMaintenance(ctx, n.Name, true, statusReason+st)
	}
	if err != nil {
		return errorReply(err)
	}
	return okReply()
}

// deleteDB deletes every node no allocation holds, when the operator
// enabled it. Held nodes stay with their owners (ironpool never deletes an
// allocated node); upstream dropped both tables, or hung trying.
func (s *Server) deleteDB(ctx context.Context) reply {
	if !s.AllowDeleteDB {
		return fail(403, "delete_db is disabled on this server: it would delete every node in the pool (start `ironpool serve` with --molteniron-allow-delete-db to enable it)")
	}
	if _, err := service.Authorize(ctx, service.OpMoltenIronWipe); err != nil {
		return errorReply(err)
	}
	nodes, err := s.Service.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return errorReply(err)
	}
	deleted, kept := 0, 0
	for _, n := range nodes {
		if n.AllocationID != "" || n.State.Held() {
			kept++
			continue
		}
		err := s.Service.DeleteNode(ctx, n.Name)
		switch ironpool.ErrorCode(err) {
		case "":
			deleted++
		case ironpool.ECONFLICT:
			kept++ // allocated since we listed it
		case ironpool.ENOTFOUND:
		default:
			return errorReply(err)
		}
	}
	s.log().Warn("molteniron delete_db", "deleted", deleted, "kept_allocated", kept, "actor", s.Actor.TokenID)
	return okReply()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
