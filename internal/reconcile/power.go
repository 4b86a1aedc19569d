package reconcile

import (
	"context"

	"github.com/ironpool/ironpool"
)

// Power powers a node on or off or reboots it ("on", "off", "reboot"), or
// only reads its power state ("status"), through its backend, and records
// the state the backend reports. The service has validated the action.
func (r *Reconciler) Power(ctx context.Context, name, action string) (*ironpool.PowerResult, error) {
	n, b, err := r.linkedNode(ctx, name)
	if err != nil {
		return nil, err
	}
	if action != "status" {
		if err := b.SetPower(ctx, n.IronicUUID, action); err != nil {
			return nil, err
		}
	}
	ps, err := b.PowerState(ctx, n.IronicUUID)
	if err != nil {
		return nil, err
	}
	out, err := r.Store.UpdateNode(ctx, name, func(cur *ironpool.Node) error {
		if cur.PowerState == ps {
			return errUnchanged
		}
		cur.PowerState = ps
		return nil
	})
	if err == errUnchanged {
		out, err = n, nil
	}
	if err != nil {
		return nil, err
	}
	return &ironpool.PowerResult{Node: out, PowerState: ps}, nil
}
