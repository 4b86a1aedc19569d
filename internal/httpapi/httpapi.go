// Package httpapi serves ironpool's REST API under /v1 with huma: the
// OpenAPI 3.1 document at /openapi.json, RFC 9457 problems for every error,
// bearer-token authentication, /healthz and /metrics. Handlers are thin:
// they translate between HTTP and the pool service, which validates and
// authorizes.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/dashboard"
	"github.com/ironpool/ironpool/internal/metrics"
	"github.com/ironpool/ironpool/internal/service"
)

// Version is the API version shown in the OpenAPI document.
const Version = "1.0.0"

// Server is the HTTP front of one pool service.
type Server struct {
	Service *service.Service
	Log     *slog.Logger
	API     huma.API
	Mux     *http.ServeMux
	// Metrics is the registry /metrics serves: the service's when it has
	// one (so the request path's counters are in it), else a new one.
	Metrics *metrics.Metrics
	// MetricsNeedToken makes /metrics answer only to an admin or operator
	// token (serve --metrics-token-required).
	MetricsNeedToken bool
	// Lag reports the reconciler's lag for ironpool_reconciler_lag_seconds;
	// nil reports 0.
	Lag func() time.Duration
}

// New builds the API over svc.
func New(svc *service.Service, log *slog.Logger) *Server {
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("ironpool", Version)
	// Apache-2.0, the OpenStack ecosystem's licence (see LICENSE, README).
	cfg.Info.License = &huma.License{Name: "Apache-2.0", URL: "https://www.apache.org/licenses/LICENSE-2.0"}
	cfg.Info.Description = "Bare-metal pool manager: inventory, all-or-nothing multi-flavor allocation, leases, release with cleaning."
	cfg.FieldsOptionalByDefault = true
	// The dashboard serves its own API viewer at /docs, from embedded
	// files: huma's default page loads its viewer from a CDN.
	cfg.DocsPath = ""
	cfg.CreateHooks = nil // no $schema links in bodies: clients get plain JSON
	cfg.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", schemaName)
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "An ironpool API token (ipt_…)."},
	}
	cfg.Security = []map[string][]string{{"bearer": {}}}
	cfg.Transformers = append(cfg.Transformers, addRequestID)
	// Relative: a client generated from the document talks to the server
	// it fetched the document from.
	cfg.Servers = []*huma.Server{{URL: "/", Description: "the ironpool server this document was fetched from"}}
	api := humago.New(mux, cfg)
	s := &Server{Service: svc, Log: log, API: api, Mux: mux, Metrics: svc.Metrics}
	if s.Metrics == nil {
		s.Metrics = metrics.New()
	}
	s.registerPoolMetrics()
	api.UseMiddleware(s.authenticate, s.checkParams)
	s.routes()
	s.documentResponses()
	s.exactSchemas()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", s.serveMetrics(s.Metrics.Registry))
	dashboard.Register(mux)
	return s
}

// ServeHTTP adds a request id, panic recovery, metrics and the access log
// around the mux. A panic is logged with its stack and answered as a bare
// 500: no detail leaves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	r, ri := withRequestInfo(w, r)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.Log.Error("panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()), "request_id", ri.id)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"status":500,"title":"Internal Server Error","detail":"internal error","code":"internal","request_id":"` + ri.id + `"}`))
			s.accessLog(r, ri, "", http.StatusInternalServerError, time.Since(start))
		}
	}()
	pattern, status := s.observe(w, r, s.Mux)
	s.accessLog(r, ri, pattern, status, time.Since(start))
}

type actorKey struct{}

// authenticate resolves the bearer token to an actor. Requests without a
// token pass through with no actor: the service's policy answers 401 for
// operations that need one. A token that is present but wrong is 401 here.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	h := ctx.Header("Authorization")
	if h == "" {
		next(ctx)
		return
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		huma.WriteErr(s.API, ctx, http.StatusUnauthorized, "Authorization must be 'Bearer <token>'")
		return
	}
	actor, err := s.Service.Authenticate(ctx.Context(), secret)
	if err != nil {
		p := problem(s.Log, err).(huma.StatusError)
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="ironpool"`)
		huma.WriteErr(s.API, ctx, p.GetStatus(), p.Error())
		return
	}
	if ri := requestInfo(ctx.Context()); ri != nil {
		ri.tokenID, ri.role = actor.TokenID, string(actor.Role)
	}
	next(huma.WithValue(ctx, actorKey{}, actor))
}

// checkParams refuses a path or query parameter holding a NUL byte or
// invalid UTF-8 with 400 naming it, before any handler runs: PostgreSQL
// fails such a value with an error (SQLSTATE 22021) where SQLite just finds
// nothing, and both engines must answer alike.
func (s *Server) checkParams(ctx huma.Context, next func(huma.Context)) {
	for _, p := range ctx.Operation().Parameters {
		var v string
		switch p.In {
		case "path":
			v = ctx.Param(p.Name)
		case "query":
			v = ctx.Query(p.Name)
		default:
			continue
		}
		if err := ironpool.ValidateText(p.Name, v); err != nil {
			writeProblem(ctx, problem(s.Log, err))
			return
		}
	}
	next(ctx)
}

// actx returns the request context carrying the actor for the service.
func actx(ctx context.Context) context.Context {
	if a, ok := ctx.Value(actorKey{}).(*ironpool.Actor); ok {
		return ironpool.NewContextWithActor(ctx, a)
	}
	return ctx
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2e9)
	defer cancel()
	if err := s.Service.Health(ctx); err != nil {
		s.Log.Warn("healthz", "err", err)
		http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	leader := "false"
	if s.Service.Leader() {
		leader = "true"
	}
	w.Write([]byte(`{"status":"ok","leader":` + leader + `}`))
}
