package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ironpool/ironpool"
)

// Sync imports the backend's nodes into the pool and refreshes the ones it
// has: properties, traits, MACs, BMC address and username (a password stays
// as it is, since Ironic only shows it masked), provision and power state.
// Nodes the backend reports in maintenance, failed or not available are
// kept out of allocation (pool state maintenance with an "ironic: " reason,
// or error); active nodes of no pool allocation are left out. Nodes the
// pool is working on (held, cleaning, or with pending work) keep their pool
// state: the reconciler owns them.
//
// With several backends each is synced in turn; the result sums them and
// lists each under Endpoints. One that cannot be reached is reported there
// (its nodes keep their state) and does not stop the others.
func (r *Reconciler) Sync(ctx context.Context, includeIgnored bool) (*ironpool.SyncResult, error) {
	if !r.HasBackend() {
		return nil, errNoBackend
	}
	if len(r.Backends) == 1 {
		return r.syncOne(ctx, r.Backends[0], includeIgnored)
	}
	total := &ironpool.SyncResult{Endpoint: strings.Join(r.Endpoints(), " "), Imported: []string{}, Updated: []string{},
		Missing: []string{}, Skipped: []string{}}
	var firstErr error
	for _, b := range r.Backends {
		res, err := r.syncOne(ctx, b, includeIgnored)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			res = &ironpool.SyncResult{Endpoint: b.Endpoint(), Error: ironpool.ErrorMessage(err)}
		}
		total.Endpoints = append(total.Endpoints, *res)
		total.Seen += res.Seen
		total.Unchanged += res.Unchanged
		total.Foreign += res.Foreign
		total.Imported = append(total.Imported, res.Imported...)
		total.Updated = append(total.Updated, res.Updated...)
		total.Missing = append(total.Missing, res.Missing...)
		total.Skipped = append(total.Skipped, res.Skipped...)
		total.Ignored = append(total.Ignored, res.Ignored...)
	}
	if allFailed(total.Endpoints) {
		return total, firstErr
	}
	return total, nil
}

// allFailed reports whether no endpoint could be synced.
func allFailed(rs []ironpool.SyncResult) bool {
	for _, r := range rs {
		if r.Error == "" {
			return false
		}
	}
	return true
}

// syncOne syncs the nodes of one backend.
func (r *Reconciler) syncOne(ctx context.Context, b ironpool.Backend, includeIgnored bool) (*ironpool.SyncResult, error) {
	infos, err := b.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	ignored := map[string]bool{}
	if !includeIgnored {
		if ignored, err = r.Store.IgnoredBackendNodes(ctx); err != nil {
			return nil, err
		}
	}
	pool, err := r.Store.FindNodes(ctx, ironpool.NodeFilter{})
	if err != nil {
		return nil, err
	}
	byBackend := map[string]*ironpool.Node{}
	names := map[string]bool{}
	for _, n := range pool {
		names[n.Name] = true
		if n.IronicUUID != "" {
			byBackend[n.IronicUUID] = n
		}
	}
	res := &ironpool.SyncResult{Endpoint: b.Endpoint(), Seen: len(infos), Imported: []string{}, Updated: []string{},
		Missing: []string{}, Skipped: []string{}}
	seen := map[string]bool{}
	changed := false
	for _, info := range infos {
		seen[info.ID] = true
		cur, ok := byBackend[info.ID]
		if !ok && ignored[info.ID] {
			res.Ignored = append(res.Ignored, info.Name+" ("+info.ID+")")
			continue
		}
		if !ok {
			if info.ProvisionState == "active" || info.TargetProvisionState == "active" {
				res.Foreign++
				continue
			}
			n := poolNode(info, b.Endpoint())
			if names[n.Name] {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): a pool node of that name exists and is not linked to it", n.Name, info.ID))
				continue
			}
			if err := n.Validate(""); err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): %s", n.Name, info.ID, ironpool.ErrorMessage(err)))
				continue
			}
			if err := r.Store.CreateNodes(ctx, []*ironpool.Node{n}); err != nil {
				if ironpool.ErrorCode(err) != ironpool.ECONFLICT && ironpool.ErrorCode(err) != ironpool.EINVALID {
					return res, err
				}
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): %s", n.Name, info.ID, ironpool.ErrorMessage(err)))
				continue
			}
			names[n.Name] = true
			res.Imported = append(res.Imported, n.Name)
			changed = true
			continue
		}
		_, err := r.Store.UpdateNode(ctx, cur.UUID, func(n *ironpool.Node) error {
			before := *n.Clone()
			refresh(n, info, b.Endpoint())
			busy := n.State.Held() || n.State == ironpool.NodeCleaning || n.Pending != ironpool.PendingNone
			operatorMaint := n.State == ironpool.NodeMaintenance && !strings.HasPrefix(n.MaintenanceReason, ironicPrefix)
			if !busy && !operatorMaint {
				n.State, n.MaintenanceReason, n.LastError = syncState(info)
			}
			if err := n.Validate(""); err != nil {
				// Keep the row as it was rather than store what the
				// backend sent if it does not fit ironpool's rules.
				*n = before
			}
			if len(ironpool.DiffNodes(&before, n)) == 0 {
				return errUnchanged
			}
			return nil
		})
		switch {
		case errors.Is(err, errUnchanged):
			res.Unchanged++
		case err != nil:
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (%s): %s", cur.Name, info.ID, ironpool.ErrorMessage(err)))
		default:
			res.Updated = append(res.Updated, cur.Name)
			changed = true
		}
	}
	for u, n := range byBackend {
		if seen[u] || r.backendFor(n) != b || n.Pending == ironpool.PendingRegister {
			continue
		}
		// Not listed is not gone: a sync filter (conductor group, owner)
		// may hide it. Only a node the backend no longer has is missing.
		if _, err := b.GetNode(ctx, u); ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
			continue
		}
		res.Missing = append(res.Missing, n.Name)
		if n.State.Held() || n.State == ironpool.NodeMaintenance {
			continue
		}
		if _, err := r.Store.UpdateNode(ctx, n.UUID, func(n *ironpool.Node) error {
			n.State, n.MaintenanceReason, n.Pending = ironpool.NodeMaintenance, ironicPrefix+"node "+u+" is no longer in Ironic", ironpool.PendingNone
			return nil
		}); err == nil {
			changed = true
		}
	}
	slices.Sort(res.Missing)
	r.mu.Lock()
	r.work.lastSync = r.Now()
	r.mu.Unlock()
	if changed {
		r.changed()
		r.Wake()
	}
	return res, nil
}

// errNoBackend is returned by workflows on a reconciler without a backend;
// the service checks first and answers with a hint, so users never see it.
var errNoBackend = &ironpool.Error{Code: ironpool.EINVALID, Message: "this ironpool server is not connected to an Ironic"}

// periodicSync runs one sync for the loop. A failure is logged once per
// attempt and the next attempt waits a full interval, so a down backend is
// not hammered by list requests.
func (r *Reconciler) periodicSync(ctx context.Context) {
	res, err := r.Sync(ctx, false)
	r.mu.Lock()
	r.work.syncing = false
	if err != nil {
		r.work.lastSync = r.Now()
	}
	r.mu.Unlock()
	switch {
	case err != nil && ctx.Err() == nil:
		r.Log.Warn("ironic sync", "err", err)
	case err == nil && (len(res.Imported) > 0 || len(res.Updated) > 0 || len(res.Missing) > 0):
		r.Log.Info("ironic sync", "imported", len(res.Imported), "updated", len(res.Updated), "missing", len(res.Missing))
	}
}

// syncState is the pool state of a backend node that the pool is not
// working on: available only when the backend would let it be used.
func syncState(info ironpool.BackendNode) (ironpool.NodeState, string, string) {
	switch {
	case info.Maintenance:
		reason := info.MaintenanceReason
		if reason == "" {
			reason = "in maintenance"
		}
		return ironpool.NodeMaintenance, ironicPrefix + reason, ""
	case strings.HasSuffix(info.ProvisionState, "failed") || info.ProvisionState == "error":
		le := info.LastError
		if le == "" {
			le = "provision state " + info.ProvisionState
		}
		return ironpool.NodeError, "", ironicPrefix + le
	case info.InstanceUUID != "":
		// Another consumer of the same Ironic holds it (an Ironic
		// allocation, or Nova's instance): not ours to hand out.
		return ironpool.NodeMaintenance, ironicPrefix + "taken by another consumer (instance_uuid " + info.InstanceUUID + ")", ""
	case info.ProvisionState == "available" && info.TargetProvisionState == "":
		return ironpool.NodeAvailable, "", ""
	case info.ProvisionState == "active":
		return ironpool.NodeMaintenance, ironicPrefix + "active outside ironpool", ""
	}
	return ironpool.NodeMaintenance, ironicPrefix + "provision state " + info.ProvisionState, ""
}
