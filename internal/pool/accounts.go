package pool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"ironpool"
)

// Sealer encrypts small secrets at rest (the server's keyring); the
// per-allocation BMC passwords are kept with it.
type Sealer interface {
	Seal(plaintext, aad string) (string, error)
	Open(ciphertext, aad string) (string, error)
}

// Node fields that hold an allocation's own BMC account. The password is
// sealed with the server's key, bound to the node and the allocation.
const (
	FieldLeaseAllocation = "bmc_lease_allocation"
	FieldLeaseUser       = "bmc_lease_user"
	FieldLeaseAccount    = "bmc_lease_account"
	FieldLeasePassword   = "bmc_lease_password"
)

var leaseFields = []string{FieldLeaseAllocation, FieldLeaseUser, FieldLeaseAccount, FieldLeasePassword}

// perAllocation reports whether n's pool hands out per-allocation BMC
// accounts (Config.PerAllocationBMC names the pools; "*" is every pool).
func (s *Service) perAllocation(n *ironpool.Node) bool {
	p := s.Config.PerAllocationBMC
	return slices.Contains(p, "*") || slices.Contains(p, n.Pool)
}

func leaseAAD(n *ironpool.Node, allocID string) string {
	return "bmc_lease:" + n.UUID + ":" + allocID
}

const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// leasePassword is 16 characters with upper, lower and digits: within
// IPMI's 16-byte limit and common BMC password policies.
func leasePassword() string {
	for {
		b := make([]byte, 16)
		for i := range b {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(passwordAlphabet))))
			b[i] = passwordAlphabet[n.Int64()]
		}
		p := string(b)
		if strings.ContainsAny(p, "abcdefghijkmnopqrstuvwxyz") && strings.ContainsAny(p, "ABCDEFGHJKLMNPQRSTUVWXYZ") && strings.ContainsAny(p, "23456789") {
			return p
		}
	}
}

// leaseUser is "ipl" and 8 random hex digits: unique per allocation and
// short enough for IPMI's 16-byte user names.
func leaseUser() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "ipl" + hex.EncodeToString(b)
}

type leaseAccount struct {
	node          *ironpool.Node
	user, pw, ref string
	err           error
}

// checkoutAccounts creates a BMC account for every node of a whose pool
// wants one, in parallel, and records it on the node. If any cannot be
// made, those made are deleted again and the error names the node; the
// caller then refuses the allocation, so all-or-nothing holds.
func (s *Service) checkoutAccounts(ctx context.Context, a *ironpool.Allocation) error {
	var nodes []*ironpool.Node
	for _, n := range a.Nodes {
		if s.perAllocation(n) {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	if s.Secrets == nil {
		return ironpool.Errorf(ironpool.EINTERNAL, "per-allocation BMC accounts need the server's keyring")
	}
	made := make([]leaseAccount, len(nodes))
	eachNode(nodes, func(i int, n *ironpool.Node) {
		la := leaseAccount{node: n, user: leaseUser(), pw: leasePassword()}
		la.err = s.withBMC(ctx, n, func(c ironpool.BMCClient) error {
			acc, ok := c.(ironpool.BMCAccounts)
			if !ok {
				return ironpool.Errorf(ironpool.ECONFLICT, "its BMC cannot hold per-allocation accounts")
			}
			var err error
			la.ref, err = acc.CreateAccount(ctx, la.user, la.pw)
			return err
		})
		made[i] = la
	})
	var failed error
	for _, la := range made {
		if la.err != nil && failed == nil {
			failed = la.err
		}
	}
	for i := 0; failed == nil && i < len(made); i++ {
		la := made[i]
		sealed, err := s.Secrets.Seal(la.pw, leaseAAD(la.node, a.ID))
		if err == nil {
			_, err = s.Store.UpdateNode(ctx, la.node.Name, func(n *ironpool.Node) error {
				n.Fields[FieldLeaseAllocation], n.Fields[FieldLeaseUser] = a.ID, la.user
				n.Fields[FieldLeaseAccount], n.Fields[FieldLeasePassword] = la.ref, sealed
				return nil
			})
		}
		if err != nil {
			failed = err
			break
		}
		la.node.Fields[FieldLeaseAllocation], la.node.Fields[FieldLeaseUser] = a.ID, la.user
		la.node.Fields[FieldLeaseAccount], la.node.Fields[FieldLeasePassword] = la.ref, sealed
	}
	if failed == nil {
		for _, la := range made {
			s.audit(ctx, "node.bmc_account_created", la.node.Name, fmt.Sprintf("BMC account %s for allocation %s", la.user, a.ID))
		}
		return nil
	}
	// Undo: delete every account made, clear what was recorded.
	bg := context.WithoutCancel(ctx)
	for _, la := range made {
		if la.err != nil || la.ref == "" {
			continue
		}
		if err := s.withBMC(bg, la.node, func(c ironpool.BMCClient) error {
			return c.(ironpool.BMCAccounts).DeleteAccount(bg, la.ref)
		}); err != nil {
			s.Log.Warn("bmc account: undo", "node", la.node.Name, "err", ironpool.ErrorMessage(err))
		}
		_, _ = s.Store.UpdateNode(bg, la.node.Name, func(n *ironpool.Node) error {
			if n.Fields[FieldLeaseAllocation] != a.ID {
				return errUnchanged
			}
			for _, k := range leaseFields {
				delete(n.Fields, k)
			}
			return nil
		})
	}
	return &ironpool.Error{Code: ironpool.ErrorCode(failed),
		Message: "cannot create a per-allocation BMC account: " + ironpool.ErrorMessage(failed)}
}

// refuseCheckout gives back the nodes of an allocation whose accounts
// could not be made: it ends failed, and its nodes are free at once (they
// were never handed out).
func (s *Service) refuseCheckout(ctx context.Context, a *ironpool.Allocation) {
	if _, err := s.Store.ReleaseAllocations(context.WithoutCancel(ctx), ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocFailed, true); err != nil {
		s.Log.Warn("bmc account: refuse allocation", "allocation", a.ID, "err", err)
	}
	s.notify()
}

// releaseAccounts deletes the per-allocation accounts of the allocations
// ids before they are released, and returns the nodes where that failed
// with the reason: those must not go back to the pool with a live account
// on their BMC.
func (s *Service) releaseAccounts(ctx context.Context, ids []string) map[string]string {
	failed := map[string]string{}
	if len(s.Config.PerAllocationBMC) == 0 {
		return failed // releases stay one store call when the mode is off
	}
	for _, id := range ids {
		a, err := s.Store.FindAllocation(ctx, id)
		if err != nil {
			continue
		}
		var nodes []*ironpool.Node
		for _, n := range a.Nodes {
			if n.Fields[FieldLeaseAllocation] == id {
				nodes = append(nodes, n)
			}
		}
		errs := make([]error, len(nodes))
		eachNode(nodes, func(i int, n *ironpool.Node) {
			errs[i] = s.withBMC(ctx, n, func(c ironpool.BMCClient) error {
				acc, ok := c.(ironpool.BMCAccounts)
				if !ok {
					return ironpool.Errorf(ironpool.ECONFLICT, "its BMC cannot delete accounts")
				}
				return acc.DeleteAccount(ctx, n.Fields[FieldLeaseAccount])
			})
		})
		for i, n := range nodes {
			if errs[i] != nil {
				failed[n.Name] = fmt.Sprintf("BMC account %s of allocation %s could not be deleted: %s", n.Fields[FieldLeaseUser], id, ironpool.ErrorMessage(errs[i]))
				continue
			}
			_, _ = s.Store.UpdateNode(ctx, n.Name, func(n *ironpool.Node) error {
				for _, k := range leaseFields {
					delete(n.Fields, k)
				}
				return nil
			})
			s.audit(ctx, "node.bmc_account_deleted", n.Name, fmt.Sprintf("BMC account %s of allocation %s", n.Fields[FieldLeaseUser], id))
		}
	}
	return failed
}

// markAccountFailures puts nodes whose lease account survived into error
// with the reason, once their allocation is released.
func (s *Service) markAccountFailures(ctx context.Context, failed map[string]string) {
	for name, why := range failed {
		_, err := s.Store.UpdateNode(context.WithoutCancel(ctx), name, func(n *ironpool.Node) error {
			if n.State.Held() {
				return errUnchanged
			}
			n.State, n.LastError = ironpool.NodeError, why
			return nil
		})
		if err != nil && err != errUnchanged {
			s.Log.Warn("bmc account: mark node", "node", name, "err", err)
		}
	}
	if len(failed) > 0 {
		s.notify()
	}
}

// leaseCredentials puts each node's per-allocation account into the
// handoff in place of the stored credentials. A node of such a pool
// without one (made before the setting) hands out no password at all:
// the stored administrator password is never handed out in this mode.
func (s *Service) leaseCredentials(a *ironpool.Allocation) {
	for i, n := range a.Nodes {
		lease := n.Fields[FieldLeaseAllocation] == a.ID && a.ID != ""
		if !lease && !s.perAllocation(n) {
			continue
		}
		c := *n
		c.Fields = maps(n.Fields)
		c.BMC.Username, c.BMC.Password = "", ""
		if lease && s.Secrets != nil {
			if pw, err := s.Secrets.Open(n.Fields[FieldLeasePassword], leaseAAD(n, a.ID)); err == nil {
				c.BMC.Username, c.BMC.Password = n.Fields[FieldLeaseUser], pw
			}
		}
		delete(c.Fields, FieldLeasePassword)
		a.Nodes[i] = &c
	}
}
