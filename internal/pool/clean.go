package pool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"ironpool"
)

// cleanNodes runs the cleaning command for local nodes waiting in cleaning
// and returns how many it finished. Nodes linked to Ironic are cleaned by
// Ironic, driven by the reconciler, not here.
func (s *Service) cleanNodes(ctx context.Context) int {
	nodes, err := s.Store.FindNodes(ctx, ironpool.NodeFilter{State: ironpool.NodeCleaning, Limit: 100})
	if err != nil {
		s.Log.Warn("cleaner", "err", err)
		return 0
	}
	done := 0
	for _, n := range nodes {
		if n.IronicUUID != "" || n.Pending != "clean" {
			continue
		}
		msg := s.releaseHardware(ctx, n)
		if msg == "" && len(s.Config.CleanCommand) > 0 {
			msg = s.runClean(ctx, n)
		}
		if err := s.Store.FinishCleaning(ctx, n.ID, msg); err != nil {
			s.Log.Warn("cleaner: finish", "node", n.Name, "err", err)
			continue
		}
		done++
	}
	return done
}

// runClean runs the cleaning command for one node and returns "" on success
// or the reason it failed. The node's details go in the environment; the
// password is passed too, since wiping a machine usually needs its BMC.
func (s *Service) runClean(ctx context.Context, n *ironpool.Node) string {
	ctx, cancel := context.WithTimeout(ctx, s.Config.CleanTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Config.CleanCommand[0], s.Config.CleanCommand[1:]...)
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
		s.Log.Warn("cleaning failed", "node", n.Name, "err", err)
		return fmt.Sprintf("clean command: %v: %s", err, tail)
	}
	return ""
}
