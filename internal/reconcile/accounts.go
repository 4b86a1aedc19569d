package reconcile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/fanout"
)

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

// CheckoutAccounts creates a BMC account for every node of a whose pool
// wants one, in parallel, and records it on the node. If any cannot be
// made, those made are deleted again and the error names the node; the
// caller then refuses the allocation, so all-or-nothing holds.
func (r *Reconciler) CheckoutAccounts(ctx context.Context, a *ironpool.Allocation) error {
	var nodes []*ironpool.Node
	for _, n := range a.Nodes {
		if ironpool.InPools(r.Config.PerAllocationBMC, n.Pool) {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return nil
	}
	if r.Secrets == nil {
		return ironpool.Errorf(ironpool.EINTERNAL, "per-allocation BMC accounts need the server's keyring")
	}
	made := make([]leaseAccount, len(nodes))
	eachNode(nodes, func(i int, n *ironpool.Node) {
		la := leaseAccount{node: n, user: leaseUser(), pw: leasePassword()}
		la.err = ironpool.UseBMC(ctx, r.BMC, n, func(c ironpool.BMCClient) error {
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
		sealed, err := r.Secrets.Seal(la.pw, ironpool.LeaseAAD(la.node, a.ID))
		if err == nil {
			_, err = r.Store.UpdateNode(ctx, la.node.Name, func(n *ironpool.Node) error {
				n.Fields[ironpool.FieldLeaseAllocation], n.Fields[ironpool.FieldLeaseUser] = a.ID, la.user
				n.Fields[ironpool.FieldLeaseAccount], n.Fields[ironpool.FieldLeasePassword] = la.ref, sealed
				return nil
			})
		}
		if err != nil {
			failed = err
			break
		}
		la.node.Fields[ironpool.FieldLeaseAllocation], la.node.Fields[ironpool.FieldLeaseUser] = a.ID, la.user
		la.node.Fields[ironpool.FieldLeaseAccount], la.node.Fields[ironpool.FieldLeasePassword] = la.ref, sealed
	}
	if failed == nil {
		for _, la := range made {
			r.audit(ctx, "node.bmc_account_created", la.node.Name, fmt.Sprintf("BMC account %s for allocation %s", la.user, a.ID))
		}
		return nil
	}
	// Undo: delete every account made, clear what was recorded.
	bg := context.WithoutCancel(ctx)
	for _, la := range made {
		if la.err != nil || la.ref == "" {
			continue
		}
		if err := ironpool.UseBMC(bg, r.BMC, la.node, func(c ironpool.BMCClient) error {
			return c.(ironpool.BMCAccounts).DeleteAccount(bg, la.ref)
		}); err != nil {
			r.Log.Warn("bmc account: undo", "node", la.node.Name, "err", ironpool.ErrorMessage(err))
		}
		_, _ = r.Store.UpdateNode(bg, la.node.Name, func(n *ironpool.Node) error {
			if n.Fields[ironpool.FieldLeaseAllocation] != a.ID {
				return errUnchanged
			}
			for _, k := range ironpool.LeaseFields {
				delete(n.Fields, k)
			}
			return nil
		})
	}
	return &ironpool.Error{Code: ironpool.ErrorCode(failed),
		Message: "cannot create a per-allocation BMC account: " + ironpool.ErrorMessage(failed)}
}

// RefuseCheckout gives back the nodes of an allocation whose accounts
// could not be made: it ends failed, and its nodes are free at once (they
// were never handed out).
func (r *Reconciler) RefuseCheckout(ctx context.Context, a *ironpool.Allocation) {
	if _, err := r.Store.ReleaseAllocations(context.WithoutCancel(ctx), ironpool.ReleaseSelector{ID: a.ID}, ironpool.AllocFailed, true); err != nil {
		r.Log.Warn("bmc account: refuse allocation", "allocation", a.ID, "err", err)
	}
	r.changed()
}

// dropLeaseAccount is the first step of cleaning a released node that
// holds a per-allocation BMC account: the account is deleted before
// anything else. It returns "" when done (or there was none) and the
// reason otherwise, which ends the cleaning in error: a node with a live
// lab account on its BMC is not handed out again.
func (r *Reconciler) dropLeaseAccount(ctx context.Context, n *ironpool.Node) string {
	ref := n.Fields[ironpool.FieldLeaseAccount]
	if ref == "" {
		return ""
	}
	user, alloc := n.Fields[ironpool.FieldLeaseUser], n.Fields[ironpool.FieldLeaseAllocation]
	err := ironpool.UseBMC(ctx, r.BMC, n, func(c ironpool.BMCClient) error {
		acc, ok := c.(ironpool.BMCAccounts)
		if !ok {
			return ironpool.Errorf(ironpool.ECONFLICT, "its BMC cannot delete accounts")
		}
		return acc.DeleteAccount(ctx, ref)
	})
	if err != nil {
		return fmt.Sprintf("BMC account %s of allocation %s could not be deleted: %s", user, alloc, ironpool.ErrorMessage(err))
	}
	_, err = r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
		for _, k := range ironpool.LeaseFields {
			delete(cur.Fields, k)
		}
		return nil
	})
	if err != nil {
		return "BMC account " + user + " deleted, but the node could not be updated: " + ironpool.ErrorMessage(err)
	}
	r.audit(ctx, "node.bmc_account_deleted", n.Name, fmt.Sprintf("BMC account %s of allocation %s", user, alloc))
	return ""
}

// releaseHardware is the hardware step of cleaning a released local node
// in a pool listed in Config.ReleasePowerOff: power off through the BMC
// and, with ReleasePXE, boot from the network next. It returns "" when
// done (or not asked for) and otherwise the reason, which puts the node in
// error: a node whose BMC cannot be driven is not handed out again.
func (r *Reconciler) releaseHardware(ctx context.Context, n *ironpool.Node) string {
	if !ironpool.InPools(r.Config.ReleasePowerOff, n.Pool) {
		return ""
	}
	err := ironpool.UseBMC(ctx, r.BMC, n, func(c ironpool.BMCClient) error {
		if _, err := c.Power(ctx, ironpool.PowerOff); err != nil {
			return err
		}
		if r.Config.ReleasePXE {
			return c.SetBootDevice(ctx, ironpool.BootPXE, true)
		}
		return nil
	})
	if err != nil {
		r.Log.Warn("cleaning: BMC step failed", "node", n.Name, "err", ironpool.ErrorMessage(err))
		return "release power off: " + ironpool.ErrorMessage(err)
	}
	return ""
}

// audit records an event that no store change carries.
func (r *Reconciler) audit(ctx context.Context, action, node, summary string) {
	if err := r.Store.AddEvent(ctx, &ironpool.Event{Action: action, Subject: "node/" + node, Summary: summary}); err != nil {
		r.Log.Warn("audit", "action", action, "node", node, "err", err)
	}
}

// eachNode runs fn over nodes with bounded concurrency, so one slow BMC
// never delays the others beyond its own timeout.
func eachNode(nodes []*ironpool.Node, fn func(i int, n *ironpool.Node)) {
	fanout.Each(nodes, 16, fn)
}
