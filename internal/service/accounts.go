package service

import "github.com/ironpool/ironpool"

// perAllocation reports whether n's pool hands out per-allocation BMC
// accounts (Config.PerAllocationBMC names the pools; "*" is every pool).
func (s *Service) perAllocation(n *ironpool.Node) bool {
	return ironpool.InPools(s.Config.PerAllocationBMC, n.Pool)
}

// leaseCredentials puts each node's per-allocation account into the
// handoff in place of the stored credentials. A node of such a pool
// without one (made before the setting) hands out no password at all:
// the stored administrator password is never handed out in this mode.
func (s *Service) leaseCredentials(a *ironpool.Allocation) {
	for i, n := range a.Nodes {
		lease := n.Fields[ironpool.FieldLeaseAllocation] == a.ID && a.ID != ""
		if !lease && !s.perAllocation(n) {
			continue
		}
		c := *n
		c.Fields = maps(n.Fields)
		c.BMC.Username, c.BMC.Password = "", ""
		if lease && s.Secrets != nil {
			if pw, err := s.Secrets.Open(n.Fields[ironpool.FieldLeasePassword], ironpool.LeaseAAD(n, a.ID)); err == nil {
				c.BMC.Username, c.BMC.Password = n.Fields[ironpool.FieldLeaseUser], pw
			}
		}
		delete(c.Fields, ironpool.FieldLeasePassword)
		a.Nodes[i] = &c
	}
}

// accountsPending reports whether an active allocation still waits for the
// per-allocation BMC accounts the reconciler makes when it serves a
// queued request.
func (s *Service) accountsPending(a *ironpool.Allocation) bool {
	if a.State != ironpool.AllocActive || len(s.Config.PerAllocationBMC) == 0 {
		return false
	}
	for _, n := range a.Nodes {
		if s.perAllocation(n) && n.Fields[ironpool.FieldLeaseAllocation] != a.ID {
			return true
		}
	}
	return false
}
