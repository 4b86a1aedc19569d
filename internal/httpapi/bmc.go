package httpapi

import (
	"context"
	"net/http"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
)

type powerReportReply struct{ Body *service.PowerReport }

// bmcRoutes are the direct-BMC operations: power and boot device over
// several nodes, discovery and composition. Credentials for a Redfish
// service travel in the request body, never in the URL, so access logs
// cannot hold them.
func (s *Server) bmcRoutes() {
	svc := s.Service
	register(s, http.MethodPost, "/v1/power", "power-nodes", "Power several nodes (or an allocation's) in parallel; reports per node", 200,
		func(ctx context.Context, in *struct {
			Body struct {
				Nodes      []string             `json:"nodes,omitempty" maxItems:"1000"`
				Allocation string               `json:"allocation,omitempty" maxLength:"64"`
				Action     ironpool.PowerAction `json:"action"`
				Direct     bool                 `json:"direct,omitempty"`
			}
		}) (*powerReportReply, error) {
			r, err := svc.PowerMany(ctx, service.PowerRequest{Nodes: in.Body.Nodes, Allocation: in.Body.Allocation,
				Action: ironpool.PowerAction(in.Body.Action), Direct: in.Body.Direct})
			return &powerReportReply{r}, err
		})
	register(s, http.MethodPost, "/v1/boot-device", "set-boot-device", "Set the boot device of several nodes (or an allocation's) through their BMCs", 200,
		func(ctx context.Context, in *struct {
			Body struct {
				Nodes      []string            `json:"nodes,omitempty" maxItems:"1000"`
				Allocation string              `json:"allocation,omitempty" maxLength:"64"`
				Device     ironpool.BootDevice `json:"device"`
				Once       bool                `json:"once,omitempty" doc:"Only for the next boot"`
			}
		}) (*powerReportReply, error) {
			r, err := svc.SetBootDevice(ctx, service.BootRequest{Nodes: in.Body.Nodes, Allocation: in.Body.Allocation,
				Device: ironpool.BootDevice(in.Body.Device), Once: in.Body.Once})
			return &powerReportReply{r}, err
		})
	register(s, http.MethodPost, "/v1/discover", "discover-nodes", "Enroll every ComputerSystem of a Redfish service as a node (idempotent, all or none)", 200,
		func(ctx context.Context, in *struct{ Body service.DiscoverRequest }) (*struct{ Body *service.DiscoverReport }, error) {
			r, err := svc.Discover(ctx, in.Body)
			return &struct{ Body *service.DiscoverReport }{r}, err
		})
	register(s, http.MethodPost, "/v1/compose/list", "list-composition", "List a Redfish CompositionService's resource zones and blocks", 200,
		func(ctx context.Context, in *struct{ Body service.ServiceRequest }) (*struct{ Body *ironpool.Composition }, error) {
			r, err := svc.Composition(ctx, in.Body)
			return &struct{ Body *ironpool.Composition }{r}, err
		})
	register(s, http.MethodPost, "/v1/compose", "compose-node", "Compose a system from resource blocks and enroll it as a node", 201,
		func(ctx context.Context, in *struct{ Body service.ComposeNodeRequest }) (*nodeReply, error) {
			n, err := svc.ComposeNode(ctx, in.Body)
			return &nodeReply{n}, err
		})
	register(s, http.MethodPost, "/v1/nodes/{name}/decompose", "decompose-node", "Remove a composed node from its CompositionService and from the pool", 200,
		func(ctx context.Context, in *struct{ NameParam }) (*struct{}, error) {
			return &struct{}{}, svc.DecomposeNode(ctx, in.Name)
		})
	register(s, http.MethodGet, "/v1/health/nodes", "list-node-health", "The BMC health check's last result and history per node", 200,
		func(ctx context.Context, _ *struct{}) (*healthReply, error) {
			h, err := svc.NodeHealth(ctx, "")
			out := &healthReply{}
			out.Body.Nodes = h
			return out, err
		})
	register(s, http.MethodGet, "/v1/nodes/{name}/health", "get-node-health", "The BMC health check's last result and history for one node", 200,
		func(ctx context.Context, in *struct{ NameParam }) (*healthReply, error) {
			h, err := svc.NodeHealth(ctx, in.Name)
			out := &healthReply{}
			out.Body.Nodes = h
			return out, err
		})
}

type healthReply struct {
	Body struct {
		Nodes []ironpool.NodeHealth `json:"nodes"`
	}
}
