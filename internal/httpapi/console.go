package httpapi

import (
	"context"
	"net/http"

	"github.com/ironpool/ironpool"
)

// consoleRoutes are what the dashboard needs beyond the plain lists: a
// node's history, the pool's usage over time, and re-running a failed
// clean. Each is a thin call into the service, which authorizes it.
func (s *Server) consoleRoutes() {
	svc := s.Service

	register(s, http.MethodGet, "/v1/nodes/{name}/history", "node-history",
		"A node's history from the audit log, newest first, paged", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Before int64 `query:"before" minimum:"0" doc:"Only events with ids below this (next_before of the previous page)"`
			Limit  int   `query:"limit" minimum:"0" maximum:"1000" doc:"Events per page (default 50)"`
		}) (*struct{ Body *ironpool.NodeHistory }, error) {
			h, err := svc.NodeHistory(ctx, in.Name, in.Before, in.Limit)
			return &struct{ Body *ironpool.NodeHistory }{h}, err
		})
	register(s, http.MethodPost, "/v1/nodes/{name}/clean", "clean-node",
		"Clean a node in error again (operator or admin)", 200,
		func(ctx context.Context, in *NameParam) (*nodeReply, error) {
			n, err := svc.CleanNode(ctx, in.Name)
			return &nodeReply{n}, err
		})
	register(s, http.MethodGet, "/v1/whoami", "whoami",
		"The calling token's role and owners, and the operations its role may run", 200,
		func(ctx context.Context, _ *struct{}) (*struct{ Body *ironpool.Identity }, error) {
			id, err := svc.WhoAmI(ctx)
			return &struct{ Body *ironpool.Identity }{id}, err
		})
	register(s, http.MethodGet, "/v1/usage", "usage",
		"Allocated, free and maintenance nodes per pool over time, and node-hours per owner", 200,
		func(ctx context.Context, in *struct {
			Window string `query:"window" maxLength:"8" doc:"24h (hourly steps) or 7d (6-hour steps)"`
		}) (*struct{ Body *ironpool.Usage }, error) {
			u, err := svc.Usage(ctx, in.Window)
			return &struct{ Body *ironpool.Usage }{u}, err
		})
}
