package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/ironpool/ironpool"
)

// Cleaning: a released node owes PendingClean until it is fit to be
// handed out again. A local node runs the configured clean command, in one
// of CleanWorkers parallel workers; a backend node has its checkout undone
// and the backend's own cleaning run (manage → provide).

// cleanLocal runs the clean command for one released local node and ends
// its cleaning: available when the command exits 0, error otherwise. An
// error ending the cleaning is returned, so the node is retried.
func (r *Reconciler) cleanLocal(ctx context.Context, n *ironpool.Node) error {
	msg := r.dropLeaseAccount(ctx, n)
	if msg == "" {
		msg = r.releaseHardware(ctx, n)
	}
	if msg == "" && len(r.Config.CleanCommand) > 0 {
		msg = r.runClean(ctx, n)
	}
	if ctx.Err() != nil {
		return ctx.Err() // stopped under the command: it runs again after restart
	}
	return r.finishCleaning(ctx, n, msg)
}

// finishCleaning ends n's cleaning (available when msg is empty, error
// otherwise) and records how long it took: from the node's last change,
// which is its release into cleaning unless a retry wrote last_error since.
func (r *Reconciler) finishCleaning(ctx context.Context, n *ironpool.Node, msg string) error {
	if err := r.Store.FinishCleaning(ctx, n.ID, msg); err != nil {
		return err
	}
	r.Metrics.CleaningDone(r.Now().Sub(n.UpdatedAt), msg != "")
	return nil
}

// runClean runs the cleaning command for one node and returns "" on success
// or the reason it failed. The node's details go in the environment; the
// password is passed too, since wiping a machine usually needs its BMC.
func (r *Reconciler) runClean(ctx context.Context, n *ironpool.Node) string {
	ctx, cancel := context.WithTimeout(ctx, r.Config.CleanTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Config.CleanCommand[0], r.Config.CleanCommand[1:]...)
	cmd.Env = append(os.Environ(),
		"IRONPOOL_NODE_NAME="+n.Name,
		"IRONPOOL_NODE_UUID="+n.UUID,
		"IRONPOOL_BMC_ADDRESS="+n.BMC.Address,
		"IRONPOOL_BMC_USERNAME="+n.BMC.Username,
		"IRONPOOL_BMC_PASSWORD="+n.BMC.Password,
		"IRONPOOL_MACS="+strings.Join(n.MACs, ","))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(out.String())
		if len(tail) > 200 {
			tail = tail[len(tail)-200:]
		}
		// The command's output is anyone's bytes, and the cut above may
		// split a character: last_error is text, which PostgreSQL refuses
		// with a NUL or invalid UTF-8 in it (and the node would then stay
		// in cleaning for ever).
		tail = strings.ToValidUTF8(strings.ReplaceAll(tail, "\x00", ""), "?")
		r.Log.Warn("cleaning failed", "node", n.Name, "err", err)
		return fmt.Sprintf("clean command: %v: %s", err, tail)
	}
	return ""
}

// cleanBackend returns a released node to the backend's pool: it clears
// the maintenance, lessee and reservation a checkout set (only those: a
// reservation is removed by the name ironpool gave it), undeploys a node the owner
// deployed, then manage → provide, so the backend runs its cleaning; the
// pool node is available only when the backend reports it available. A
// failed clean leaves the node in error with the backend's last_error.
func (r *Reconciler) cleanBackend(ctx context.Context, n *ironpool.Node) error {
	b := r.backendFor(n)
	if b == nil {
		return nil
	}
	// A per-allocation BMC account goes first, as for a local node.
	if msg := r.dropLeaseAccount(ctx, n); msg != "" {
		return r.finishClean(ctx, b, n, msg)
	}
	fail := func(err error) error {
		if retryable(err) {
			r.notePending(ctx, n, ironpool.PendingClean, err)
			return err
		}
		var se *ironpool.BackendStateError
		if errors.As(err, &se) && r.wasInterrupted(n) {
			// The backend failed the step because it was stopped under
			// it; try the whole step again rather than blame the node.
			r.notePending(ctx, n, ironpool.PendingClean, err)
			return err
		}
		return r.finishClean(ctx, b, n, errText(err))
	}
	info, err := b.GetNode(ctx, n.IronicUUID)
	if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
		return r.finishClean(ctx, b, n, "ironic: node "+n.IronicUUID+" is no longer in Ironic")
	} else if err != nil {
		return fail(err)
	}
	if info.Maintenance {
		if info.MaintenanceReason != "" && !strings.HasPrefix(info.MaintenanceReason, handoffPrefix) {
			// Someone else put it in maintenance (the lab, an operator):
			// not ours to undo. The node still owes its clean and waits,
			// so it never returns to the pool uncleaned when the
			// maintenance is lifted; the reason is on the node meanwhile.
			err := &ironpool.Error{Code: ironpool.ECONFLICT, Message: "waiting: in maintenance in Ironic: " + info.MaintenanceReason}
			r.notePending(ctx, n, ironpool.PendingClean, err)
			return err
		}
		if err := b.ClearMaintenance(ctx, n.IronicUUID); err != nil {
			return fail(err)
		}
	}
	if info.Lessee != "" {
		if err := b.SetLessee(ctx, n.IronicUUID, ""); err != nil {
			return fail(err)
		}
	}
	if t := info.TargetProvisionState; t != "" {
		// A step is under way (ours, interrupted, or the backend's own):
		// let it finish before asking for the next one.
		if info, err = b.WaitForProvisionState(ctx, n.IronicUUID, t, 0); err != nil && retryable(err) {
			return fail(err)
		}
		if info, err = b.GetNode(ctx, n.IronicUUID); err != nil {
			return fail(err)
		}
	}
	if info.ProvisionState != "active" {
		// Our reservation goes before Ironic cleans, so the node is not
		// held by a name nobody uses; an active node's goes with undeploy.
		if err := b.Unreserve(ctx, reservationName(n)); err != nil {
			return fail(err)
		}
		// A failed or interrupted deploy leaves instance_info and an
		// instance_uuid behind, which would keep the node from anyone.
		if err := b.ClearInstance(ctx, n.IronicUUID); err != nil {
			return fail(err)
		}
	}
	switch info.ProvisionState {
	case "active", "deploy failed":
		err = b.Undeploy(ctx, n.IronicUUID)
		if err == nil {
			err = b.Unreserve(ctx, reservationName(n))
		}
	case "available":
		if err = b.Manage(ctx, n.IronicUUID); err == nil {
			err = b.Provide(ctx, n.IronicUUID)
		}
	case "clean failed":
		if !r.wasInterrupted(n) {
			// Failed without an interruption of ours: the backend's verdict.
			return r.finishClean(ctx, b, n, ironicPrefix+info.LastError)
		}
		fallthrough
	case "enroll", "manageable", "inspect failed":
		if err = b.Manage(ctx, n.IronicUUID); err == nil {
			err = b.Provide(ctx, n.IronicUUID)
		}
	default:
		err = &ironpool.BackendStateError{Node: n.IronicUUID, State: info.ProvisionState, Want: "available", LastError: info.LastError}
	}
	if err != nil {
		return fail(err)
	}
	return r.finishClean(ctx, b, n, "")
}

// finishClean records the backend's view of the node and ends its
// cleaning: available when msg is empty, error with msg otherwise.
func (r *Reconciler) finishClean(ctx context.Context, b ironpool.Backend, n *ironpool.Node, msg string) error {
	if info, err := b.GetNode(ctx, n.IronicUUID); err == nil {
		_, _ = r.Store.UpdateNode(ctx, n.UUID, func(cur *ironpool.Node) error {
			if cur.Pending != ironpool.PendingClean {
				return errUnchanged
			}
			cur.ProvisionState, cur.PowerState = info.ProvisionState, info.PowerState
			return nil
		})
	}
	if err := r.finishCleaning(ctx, n, msg); err != nil {
		return err
	}
	if msg != "" {
		r.Log.Warn("ironic cleaning failed", "node", n.Name, "err", msg)
	}
	return nil
}
