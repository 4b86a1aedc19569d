package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ironpool/ironpool"
)

// Bodies and replies. Domain types serve directly where their JSON is the
// contract; wrappers exist where the wire needs strings (durations) or lists.

// NameParam is the {name} path parameter. It and IDParam are exported
// because huma binds parameters only through exported fields: embedded in
// an input struct under an unexported type name, they were silently left
// empty.
type NameParam struct {
	Name string `path:"name" maxLength:"255" doc:"Node name or UUID"`
}

type nodeReply struct{ Body *ironpool.Node }
type nodesReply struct {
	Body struct {
		Nodes []*ironpool.Node `json:"nodes"`
	}
}

type importBody struct {
	Nodes []*ironpool.Node `json:"nodes" maxItems:"100000"`
}

type allocateBody struct {
	Owner    string                 `json:"owner" maxLength:"63"`
	Items    []ironpool.ItemRequest `json:"items" maxItems:"32"`
	Pool     string                 `json:"pool,omitempty" maxLength:"63"`
	TTL      string                 `json:"ttl,omitempty" maxLength:"32" doc:"Lease length, e.g. 4h or 7d"`
	Wait     string                 `json:"wait,omitempty" maxLength:"32" doc:"Queue for up to this long if the pool cannot serve the request now"`
	Mode     ironpool.Mode          `json:"mode,omitempty" maxLength:"16"`
	Metadata map[string]string      `json:"metadata,omitempty"`
	Topology *ironpool.Topology     `json:"topology,omitempty" doc:"Where the request's nodes sit relative to each other, by a node field: spread (at most max_per_value per value) or together (one value), across all items"`
}

func (b *allocateBody) request() (*ironpool.AllocationRequest, error) {
	ttl, err := ironpool.ParseDuration("ttl", b.TTL)
	if err != nil {
		return nil, err
	}
	if b.TTL != "" && ttl == 0 {
		// An explicit zero used to mean "the default" silently.
		return nil, ironpool.FieldErrorf("ttl", "must be positive (got %q); leave it out for the server's default", b.TTL)
	}
	wait, err := ironpool.ParseDuration("wait", b.Wait)
	if err != nil {
		return nil, err
	}
	return &ironpool.AllocationRequest{Owner: b.Owner, Items: b.Items, Pool: b.Pool, TTL: ttl, Wait: wait,
		Mode: b.Mode, Metadata: b.Metadata, Topology: b.Topology}, nil
}

type allocReply struct {
	Status int
	Body   *ironpool.Allocation
}
type allocsReply struct {
	Body struct {
		Allocations []*ironpool.Allocation `json:"allocations"`
	}
}

// IDParam is the {id} path parameter; see NameParam.
type IDParam struct {
	ID string `path:"id" maxLength:"64"`
}

// register adds one operation. Every route goes through here so the
// operation ids, tags and error conversion are uniform.
func register[I, O any](s *Server, method, path, id, summary string, status int, h func(context.Context, *I) (*O, error)) {
	op := huma.Operation{OperationID: id, Method: method, Path: path, Summary: summary, DefaultStatus: status,
		Tags: []string{tagOf(path)}}
	if path == "/v1/nodes/import" {
		op.MaxBodyBytes = MaxImportBytes
		// The body is streamed against its limit by streamImport, which
		// answers the request itself; the handler below documents it.
		op.Middlewares = huma.Middlewares{s.streamImport}
	} else {
		op.MaxBodyBytes = 1 << 20
	}
	huma.Register(s.API, op, func(ctx context.Context, in *I) (*O, error) {
		out, err := h(actx(ctx), in)
		if err != nil {
			return nil, problem(s.Log, err)
		}
		return out, nil
	})
}

func tagOf(path string) string {
	// "/v1/nodes/{name}" → "nodes"; the status routes share one tag.
	switch seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "/"); seg {
	case "nodes", "flavors", "allocations", "reservations", "calendar", "tokens", "events", "admin", "ironic", "usage", "quotas":
		return seg
	}
	return "status"
}

func (s *Server) routes() {
	svc := s.Service

	register(s, http.MethodPost, "/v1/nodes", "create-node", "Add one node", 201,
		func(ctx context.Context, in *struct{ Body *ironpool.Node }) (*nodeReply, error) {
			if in.Body == nil {
				return nil, ironpool.FieldErrorf("body", "a node is required")
			}
			if err := svc.CreateNodes(ctx, []*ironpool.Node{in.Body}); err != nil {
				return nil, err
			}
			return &nodeReply{in.Body.Redacted()}, nil
		})
	register(s, http.MethodPost, "/v1/nodes/import", "import-nodes", "Add many nodes, all or none", 201,
		func(ctx context.Context, in *struct{ Body importBody }) (*nodesReply, error) {
			if err := svc.CreateNodes(ctx, in.Body.Nodes); err != nil {
				return nil, err
			}
			out := &nodesReply{}
			for _, n := range in.Body.Nodes {
				out.Body.Nodes = append(out.Body.Nodes, n.Redacted())
			}
			return out, nil
		})
	register(s, http.MethodGet, "/v1/nodes", "list-nodes", "List nodes", 200,
		func(ctx context.Context, in *struct {
			Pool       string `query:"pool" maxLength:"63"`
			State      string `query:"state" maxLength:"32"`
			Owner      string `query:"owner" maxLength:"63"`
			Flavor     string `query:"flavor" maxLength:"63"`
			Allocation string `query:"allocation" maxLength:"64"`
		}) (*nodesReply, error) {
			if in.State != "" {
				if err := ironpool.NodeState(in.State).Check("state"); err != nil {
					return nil, err
				}
			}
			f := ironpool.NodeFilter{Pool: in.Pool, State: ironpool.NodeState(in.State), Owner: in.Owner, Allocation: in.Allocation}
			if in.Flavor != "" {
				fl, err := svc.FindFlavor(ctx, in.Flavor)
				if err != nil {
					return nil, err
				}
				f.Flavor = &fl.Constraints
			}
			nodes, err := svc.FindNodes(ctx, f)
			if err != nil {
				return nil, err
			}
			out := &nodesReply{}
			out.Body.Nodes = nodes
			return out, nil
		})
	register(s, http.MethodGet, "/v1/nodes/{name}", "get-node", "Show one node", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Reveal bool `query:"reveal" doc:"Include the BMC password (admin only)"`
		}) (*nodeReply, error) {
			n, err := svc.FindNode(ctx, in.Name, in.Reveal)
			return &nodeReply{n}, err
		})
	register(s, http.MethodGet, "/v1/nodes/{name}/fields/{field}", "get-node-field", "Read one node field", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Field string `path:"field" maxLength:"80"`
		}) (*struct {
			Body struct {
				Field string `json:"field"`
				Value string `json:"value"`
			}
		}, error) {
			v, err := svc.GetField(ctx, in.Name, in.Field)
			out := &struct {
				Body struct {
					Field string `json:"field"`
					Value string `json:"value"`
				}
			}{}
			out.Body.Field, out.Body.Value = in.Field, v
			return out, err
		})
	register(s, http.MethodPatch, "/v1/nodes/{name}", "update-node", "Set node fields (FIELD: VALUE; fields.KEY for free-form)", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Body struct {
				Set map[string]string `json:"set"`
			}
		}) (*nodeReply, error) {
			n, err := svc.SetFields(ctx, in.Name, in.Body.Set)
			return &nodeReply{n}, err
		})
	register(s, http.MethodPost, "/v1/nodes/delete", "delete-nodes", "Delete several nodes, all or none (refused while any is allocated)", 204,
		func(ctx context.Context, in *struct {
			Body struct {
				Names []string `json:"names" maxItems:"10000"`
			}
		}) (*struct{}, error) {
			return nil, svc.DeleteNodes(ctx, in.Body.Names)
		})
	register(s, http.MethodDelete, "/v1/nodes/{name}", "delete-node", "Delete a node (refused while allocated)", 204,
		func(ctx context.Context, in *NameParam) (*struct{}, error) {
			return nil, svc.DeleteNode(ctx, in.Name)
		})
	register(s, http.MethodPut, "/v1/nodes/{name}/maintenance", "set-maintenance", "Put a node into maintenance", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Body struct {
				Reason string `json:"reason" maxLength:"255"`
			}
		}) (*nodeReply, error) {
			n, err := svc.SetMaintenance(ctx, in.Name, true, in.Body.Reason)
			return &nodeReply{n}, err
		})
	register(s, http.MethodDelete, "/v1/nodes/{name}/maintenance", "clear-maintenance", "Take a node out of maintenance", 200,
		func(ctx context.Context, in *NameParam) (*nodeReply, error) {
			n, err := svc.SetMaintenance(ctx, in.Name, false, "")
			return &nodeReply{n}, err
		})

	register(s, http.MethodPost, "/v1/flavors", "create-flavor", "Create a flavor", 201,
		func(ctx context.Context, in *struct{ Body *ironpool.Flavor }) (*struct{ Body *ironpool.Flavor }, error) {
			if in.Body == nil {
				return nil, ironpool.FieldErrorf("body", "a flavor is required")
			}
			err := svc.CreateFlavor(ctx, in.Body)
			return &struct{ Body *ironpool.Flavor }{in.Body}, err
		})
	register(s, http.MethodGet, "/v1/flavors", "list-flavors", "List flavors", 200,
		func(ctx context.Context, in *struct{}) (*struct {
			Body struct {
				Flavors []*ironpool.Flavor `json:"flavors"`
			}
		}, error) {
			f, err := svc.FindFlavors(ctx)
			out := &struct {
				Body struct {
					Flavors []*ironpool.Flavor `json:"flavors"`
				}
			}{}
			out.Body.Flavors = f
			return out, err
		})
	register(s, http.MethodGet, "/v1/flavors/{name}", "get-flavor", "Show a flavor", 200,
		func(ctx context.Context, in *struct {
			Name string `path:"name" maxLength:"63"`
		}) (*struct{ Body *ironpool.Flavor }, error) {
			f, err := svc.FindFlavor(ctx, in.Name)
			return &struct{ Body *ironpool.Flavor }{f}, err
		})
	register(s, http.MethodDelete, "/v1/flavors/{name}", "delete-flavor", "Delete a flavor", 204,
		func(ctx context.Context, in *struct {
			Name string `path:"name" maxLength:"63"`
		}) (*struct{}, error) {
			return nil, svc.DeleteFlavor(ctx, in.Name)
		})

	register(s, http.MethodPost, "/v1/allocations", "allocate", "Allocate nodes: every item or nothing", 201,
		func(ctx context.Context, in *struct{ Body allocateBody }) (*allocReply, error) {
			req, err := in.Body.request()
			if err != nil {
				return nil, err
			}
			a, err := svc.Allocate(ctx, req)
			if err != nil {
				return nil, err
			}
			status := http.StatusCreated
			if a.State == ironpool.AllocQueued {
				status = http.StatusAccepted
				a = svc.WithQueueInfo(ctx, a)
			}
			return &allocReply{Status: status, Body: a}, nil
		})
	register(s, http.MethodPost, "/v1/allocations/plan", "plan-allocation", "Dry run: what an allocation would take now", 200,
		func(ctx context.Context, in *struct{ Body allocateBody }) (*struct{ Body *ironpool.Plan }, error) {
			req, err := in.Body.request()
			if err != nil {
				return nil, err
			}
			p, err := svc.PlanAllocation(ctx, req)
			return &struct{ Body *ironpool.Plan }{p}, err
		})
	register(s, http.MethodGet, "/v1/allocations", "list-allocations", "List allocations", 200,
		func(ctx context.Context, in *struct {
			Owner string `query:"owner" maxLength:"63"`
			State string `query:"state" maxLength:"16"`
			Live  bool   `query:"live" doc:"Only queued and active allocations"`
			Limit int    `query:"limit" minimum:"0" maximum:"10000"`
		}) (*allocsReply, error) {
			if in.State != "" {
				if err := ironpool.AllocationState(in.State).Check("state"); err != nil {
					return nil, err
				}
			}
			a, err := svc.FindAllocations(ctx, ironpool.AllocationFilter{Owner: in.Owner,
				State: ironpool.AllocationState(in.State), Live: in.Live, Limit: in.Limit})
			out := &allocsReply{}
			out.Body.Allocations = a
			return out, err
		})
	register(s, http.MethodGet, "/v1/allocations/{id}", "get-allocation", "Show an allocation; ?wait= long-polls while it is queued", 200,
		func(ctx context.Context, in *struct {
			IDParam
			Wait string `query:"wait" maxLength:"32"`
		}) (*allocReply, error) {
			wait, err := ironpool.ParseDuration("wait", in.Wait)
			if err != nil {
				return nil, err
			}
			if wait > 5*time.Minute {
				wait = 5 * time.Minute
			}
			a, err := svc.WatchAllocation(ctx, in.ID, wait)
			return &allocReply{Status: 200, Body: a}, err
		})
	register(s, http.MethodPost, "/v1/allocations/{id}/extend", "extend-allocation", "Renew a lease to now + ttl", 200,
		func(ctx context.Context, in *struct {
			IDParam
			Body struct {
				TTL string `json:"ttl" maxLength:"32"`
			}
		}) (*allocReply, error) {
			ttl, err := ironpool.ParseDuration("ttl", in.Body.TTL)
			if err != nil {
				return nil, err
			}
			a, err := svc.ExtendAllocation(ctx, in.ID, ttl)
			return &allocReply{Status: 200, Body: a}, err
		})
	register(s, http.MethodDelete, "/v1/allocations/{id}", "release-allocation", "Release an allocation (idempotent)", 200,
		func(ctx context.Context, in *IDParam) (*allocReply, error) {
			a, err := svc.ReleaseAllocation(ctx, in.ID)
			return &allocReply{Status: 200, Body: a}, err
		})
	register(s, http.MethodPost, "/v1/allocations/release", "release-owner", "Release every allocation of an owner", 200,
		func(ctx context.Context, in *struct {
			Body struct {
				Owner string `json:"owner" maxLength:"63"`
			}
		}) (*allocsReply, error) {
			a, err := svc.ReleaseOwner(ctx, in.Body.Owner)
			out := &allocsReply{}
			out.Body.Allocations = a
			return out, err
		})

	register(s, http.MethodGet, "/v1/status", "status", "Pool summary", 200,
		func(ctx context.Context, in *struct{}) (*struct{ Body *ironpool.Status }, error) {
			st, err := svc.Status(ctx)
			return &struct{ Body *ironpool.Status }{st}, err
		})
	register(s, http.MethodGet, "/v1/capacity", "capacity", "Free and total nodes per flavor and pool", 200,
		func(ctx context.Context, in *struct{}) (*struct {
			Body struct {
				Capacity []ironpool.CapacityRow `json:"capacity"`
			}
		}, error) {
			c, err := svc.Capacity(ctx)
			out := &struct {
				Body struct {
					Capacity []ironpool.CapacityRow `json:"capacity"`
				}
			}{}
			out.Body.Capacity = c
			return out, err
		})
	register(s, http.MethodGet, "/v1/events", "list-events", "Read the audit log", 200,
		func(ctx context.Context, in *struct {
			After   int64  `query:"after" minimum:"0"`
			Since   string `query:"since" maxLength:"40" doc:"RFC 3339 time or a duration ago (e.g. 1h)"`
			Subject string `query:"subject" maxLength:"128"`
			Action  string `query:"action" maxLength:"64"`
			Limit   int    `query:"limit" minimum:"0" maximum:"10000"`
			Tail    int    `query:"tail" minimum:"0" maximum:"10000" doc:"Only the newest N matching events (still oldest first)"`
		}) (*struct {
			Body struct {
				Events []*ironpool.Event `json:"events"`
			}
		}, error) {
			f := ironpool.EventFilter{AfterID: in.After, Subject: in.Subject, Action: in.Action, Limit: in.Limit, Tail: in.Tail}
			if in.Since != "" {
				if t, err := time.Parse(time.RFC3339, in.Since); err == nil {
					f.Since = t
				} else if d, err := ironpool.ParseDuration("since", in.Since); err == nil {
					f.Since = svc.Now().Add(-d)
				} else {
					return nil, ironpool.FieldErrorf("since", "%q is neither an RFC 3339 time nor a duration", in.Since)
				}
			}
			ev, err := svc.FindEvents(ctx, f)
			out := &struct {
				Body struct {
					Events []*ironpool.Event `json:"events"`
				}
			}{}
			out.Body.Events = ev
			if out.Body.Events == nil {
				out.Body.Events = []*ironpool.Event{}
			}
			return out, err
		})

	register(s, http.MethodPost, "/v1/tokens", "create-token", "Create an API token (the secret is shown once)", 201,
		func(ctx context.Context, in *struct {
			Body struct {
				Role        ironpool.Role `json:"role" maxLength:"16"`
				Owners      []string      `json:"owners,omitempty" maxItems:"256" doc:"Owner names or patterns ('ci-*': '*' matches any run of name characters)"`
				Description string        `json:"description,omitempty" maxLength:"255"`
				Priority    *int          `json:"priority,omitempty" doc:"Queue priority of the token's requests, 0 (lowest) to 9; default 5"`
			}
		}) (*struct{ Body *ironpool.Token }, error) {
			prio := ironpool.DefaultPriority
			if in.Body.Priority != nil {
				prio = *in.Body.Priority
			}
			t, err := svc.CreateToken(ctx, in.Body.Role, in.Body.Owners, in.Body.Description, prio)
			return &struct{ Body *ironpool.Token }{t}, err
		})
	register(s, http.MethodGet, "/v1/tokens", "list-tokens", "List tokens", 200,
		func(ctx context.Context, in *struct{}) (*struct {
			Body struct {
				Tokens []*ironpool.Token `json:"tokens"`
			}
		}, error) {
			t, err := svc.FindTokens(ctx)
			out := &struct {
				Body struct {
					Tokens []*ironpool.Token `json:"tokens"`
				}
			}{}
			out.Body.Tokens = t
			return out, err
		})
	register(s, http.MethodDelete, "/v1/tokens/{id}", "revoke-token", "Revoke a token", 204,
		func(ctx context.Context, in *IDParam) (*struct{}, error) {
			return nil, svc.RevokeToken(ctx, in.ID)
		})
	register(s, http.MethodPost, "/v1/admin/reseal", "reseal-secrets", "Re-encrypt every secret under the current key", 200,
		func(ctx context.Context, in *struct{}) (*struct{ Body ironpool.ResealResult }, error) {
			res, err := svc.RotateKey(ctx)
			return &struct{ Body ironpool.ResealResult }{res}, err
		})
	s.reservationRoutes()
	s.ironicRoutes()
	s.bmcRoutes()
	s.consoleRoutes()
	s.quotaRoutes()
}
