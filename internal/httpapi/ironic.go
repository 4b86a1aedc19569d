package httpapi

import (
	"context"
	"net/http"

	"github.com/ironpool/ironpool"
)

type syncReply struct{ Body *ironpool.SyncResult }
type powerReply struct{ Body *ironpool.PowerResult }

// ironicRoutes are the Ironic backend's operations: sync, register and
// unregister, inspect, power, the adoption pair, and deploy/undeploy of an
// allocation. Each is a thin call into the service, which authorizes it.
func (s *Server) ironicRoutes() {
	svc := s.Service

	register(s, http.MethodPost, "/v1/ironic/sync", "ironic-sync", "Import and refresh Ironic's nodes now", 200,
		func(ctx context.Context, in *struct {
			IncludeIgnored bool `query:"include_ignored" doc:"also import nodes deleted from the pool before (which lifts their ignore mark)"`
		}) (*syncReply, error) {
			r, err := svc.SyncIronic(ctx, in.IncludeIgnored)
			return &syncReply{r}, err
		})
	register(s, http.MethodGet, "/v1/ironic/manageable", "ironic-manageable", "List Ironic nodes that could be adopted", 200,
		func(ctx context.Context, _ *struct{}) (*nodesReply, error) {
			nodes, err := svc.ManageableNodes(ctx)
			out := &nodesReply{}
			out.Body.Nodes = nodes
			return out, err
		})
	register(s, http.MethodPost, "/v1/ironic/adopt", "ironic-adopt", "Adopt an Ironic node into a new allocation of an owner", 201,
		func(ctx context.Context, in *struct {
			Body struct {
				IronicUUID string `json:"ironic_uuid" maxLength:"64"`
				Owner      string `json:"owner" maxLength:"63"`
				Name       string `json:"name,omitempty" maxLength:"63"`
				TTL        string `json:"ttl,omitempty" maxLength:"32"`
				Lease      string `json:"lease,omitempty" enum:"none," doc:"none: the allocation never expires (a production adoption)"`
			}
		}) (*allocReply, error) {
			ttl, err := ironpool.ParseDuration("ttl", in.Body.TTL)
			if err != nil {
				return nil, err
			}
			a, err := svc.AdoptNode(ctx, ironpool.AdoptRequest{IronicUUID: in.Body.IronicUUID, Owner: in.Body.Owner, Name: in.Body.Name,
				TTL: ttl, NoExpiry: in.Body.Lease == "none"})
			return &allocReply{Status: 201, Body: a}, err
		})
	register(s, http.MethodPost, "/v1/nodes/{name}/register", "register-node", "Enroll a pool node into Ironic", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Wait string `query:"wait" maxLength:"32" doc:"How long to wait for the outcome (default 2m)"`
		}) (*nodeReply, error) {
			wait, err := ironpool.ParseDuration("wait", in.Wait)
			if err != nil {
				return nil, err
			}
			n, err := svc.RegisterNode(ctx, in.Name, wait)
			if err != nil {
				return nil, err
			}
			return &nodeReply{n}, nil
		})
	register(s, http.MethodPost, "/v1/nodes/{name}/unregister", "unregister-node", "Delete a node from Ironic; it stays in the pool", 200,
		func(ctx context.Context, in *struct{ NameParam }) (*nodeReply, error) {
			n, err := svc.UnregisterNode(ctx, in.Name)
			return &nodeReply{n}, err
		})
	register(s, http.MethodPost, "/v1/nodes/{name}/inspect", "inspect-node", "Update the node's specs from Ironic's inspection, or from its own BMC when not in Ironic (or with direct)", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Direct bool `query:"direct" doc:"Ask the node's BMC even when the node is in Ironic"`
		}) (*nodeReply, error) {
			n, err := svc.Inspect(ctx, in.Name, in.Direct)
			return &nodeReply{n}, err
		})
	register(s, http.MethodPost, "/v1/nodes/{name}/power", "power-node", "Power a node on or off, reboot it, or read its power state (through Ironic when linked, else its BMC)", 200,
		func(ctx context.Context, in *struct {
			NameParam
			Body struct {
				Action ironpool.PowerAction `json:"action"`
				Direct bool                 `json:"direct,omitempty" doc:"Go to the node's BMC even when the node is in Ironic"`
			}
		}) (*powerReply, error) {
			r, err := svc.Power(ctx, in.Name, ironpool.PowerAction(in.Body.Action), in.Body.Direct)
			return &powerReply{r}, err
		})
	register(s, http.MethodPost, "/v1/allocations/{id}/deploy", "deploy-allocation", "Deploy an image to an allocation's nodes (returns at once; poll the allocation)", 202,
		func(ctx context.Context, in *struct {
			IDParam
			Body struct {
				Image       string `json:"image" maxLength:"1024"`
				Checksum    string `json:"checksum,omitempty" maxLength:"200"`
				ConfigDrive string `json:"config_drive,omitempty" maxLength:"8388608"`
				Timeout     string `json:"timeout,omitempty" maxLength:"32"`
			}
		}) (*allocReply, error) {
			to, err := ironpool.ParseDuration("timeout", in.Body.Timeout)
			if err != nil {
				return nil, err
			}
			a, err := svc.DeployAllocation(ctx, in.ID, ironpool.DeployRequest{Image: in.Body.Image, Checksum: in.Body.Checksum,
				ConfigDrive: in.Body.ConfigDrive, Timeout: to})
			return &allocReply{Status: 202, Body: a}, err
		})
	register(s, http.MethodPost, "/v1/allocations/{id}/undeploy", "undeploy-allocation", "Undeploy an allocation's nodes (returns at once; poll the allocation)", 202,
		func(ctx context.Context, in *struct{ IDParam }) (*allocReply, error) {
			a, err := svc.UndeployAllocation(ctx, in.ID)
			return &allocReply{Status: 202, Body: a}, err
		})
}
