package service

import (
	"context"
	"slices"

	"github.com/ironpool/ironpool"
)

// Operations the service performs. Each HTTP route, CLI verb and Molten Iron
// method maps onto one of these, and Policy says which roles may run it.
const (
	OpNodeCreate        = "node.create"
	OpNodeList          = "node.list"
	OpNodeShow          = "node.show"
	OpNodeReveal        = "node.reveal"
	OpNodeUpdate        = "node.update"
	OpNodeDelete        = "node.delete"
	OpNodeMaintenance   = "node.maintenance"
	OpNodePower         = "node.power"
	OpNodeClean         = "node.clean"
	OpNodeInspect       = "node.inspect"
	OpNodeRegister      = "node.register"
	OpNodeAdopt         = "node.adopt"
	OpFlavorCreate      = "flavor.create"
	OpFlavorRead        = "flavor.read"
	OpFlavorDelete      = "flavor.delete"
	OpAllocCreate       = "allocation.create"
	OpAllocRead         = "allocation.read"
	OpAllocExtend       = "allocation.extend"
	OpAllocRelease      = "allocation.release"
	OpAllocDeploy       = "allocation.deploy"
	OpReservationCreate = "reservation.create"
	OpReservationRead   = "reservation.read"
	OpReservationCancel = "reservation.cancel"
	OpCalendarRead      = "calendar.read"
	OpStatus            = "status.read"
	OpEventsRead        = "events.read"
	OpTokenManage       = "token.manage"
	OpQuotaManage       = "quota.manage"
	OpQuotaRead         = "quota.read"
	OpUsageRead         = "usage.read"
	OpKeyRotate         = "key.rotate"
	OpIronicSync        = "ironic.sync"
	OpMoltenIronWipe    = "molteniron.delete_db"
)

var (
	admin    = []ironpool.Role{ironpool.RoleAdmin}
	staff    = []ironpool.Role{ironpool.RoleAdmin, ironpool.RoleOperator}
	everyone = []ironpool.Role{ironpool.RoleAdmin, ironpool.RoleOperator, ironpool.RoleUser}
	owners   = []ironpool.Role{ironpool.RoleAdmin, ironpool.RoleUser}
)

// Policy is the one table of which roles may run each operation. Owner
// scoping (a user acts for its own owners only) is checked on top of it by
// the service methods, which know the owner of what they touch.
var Policy = map[string][]ironpool.Role{
	OpNodeCreate:        staff,
	OpNodeList:          everyone,
	OpNodeShow:          everyone,
	OpNodeReveal:        admin,
	OpNodeUpdate:        staff,
	OpNodeDelete:        admin,
	OpNodeMaintenance:   staff,
	OpNodePower:         everyone, // a user: only nodes its owners hold (PowerNode)
	OpNodeClean:         staff,
	OpNodeInspect:       staff,
	OpNodeRegister:      admin,
	OpNodeAdopt:         admin,
	OpFlavorCreate:      staff,
	OpFlavorRead:        everyone,
	OpFlavorDelete:      staff,
	OpAllocCreate:       owners,
	OpAllocRead:         everyone,
	OpAllocExtend:       owners,
	OpAllocRelease:      owners,
	OpAllocDeploy:       owners,
	OpReservationCreate: owners,
	OpReservationRead:   everyone,
	OpReservationCancel: owners,
	OpCalendarRead:      everyone,
	OpStatus:            everyone,
	OpEventsRead:        staff,
	OpTokenManage:       admin,
	OpQuotaManage:       admin,
	OpQuotaRead:         everyone, // quotas are policy, like flavors: readable by every role
	OpUsageRead:         everyone, // a user: only the owners it acts for (Usage)
	OpKeyRotate:         admin,
	OpIronicSync:        staff,
	OpMoltenIronWipe:    admin,
}

// Authorize checks that the actor in ctx may run op. No actor is
// EUNAUTHORIZED; a role not in the table is EFORBIDDEN.
func Authorize(ctx context.Context, op string) (*ironpool.Actor, error) {
	a := ironpool.ActorFromContext(ctx)
	if a == nil {
		return nil, &ironpool.Error{Code: ironpool.EUNAUTHORIZED, Message: "authentication required",
			Hint: "set IRONPOOL_TOKEN to an API token (see `ironpool token create`)"}
	}
	roles, ok := Policy[op]
	if !ok || !slices.Contains(roles, a.Role) {
		return a, &ironpool.Error{Code: ironpool.EFORBIDDEN, Message: "role " + string(a.Role) + " may not " + op}
	}
	return a, nil
}

// forOwner is Authorize plus the owner check for operations on an owner's
// allocations.
func forOwner(ctx context.Context, op, owner string) (*ironpool.Actor, error) {
	a, err := Authorize(ctx, op)
	if err != nil {
		return a, err
	}
	if !a.CanActFor(owner) {
		return a, &ironpool.Error{Code: ironpool.EFORBIDDEN, Field: "owner",
			Message: "this token may not act for owner " + owner}
	}
	return a, nil
}
