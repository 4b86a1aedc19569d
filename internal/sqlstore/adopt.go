package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironpool/ironpool"
)

// AllocateNodes creates an active allocation holding exactly the given
// nodes; see ironpool.Store. Adoption needs it: the node is chosen by the
// operator (it already runs the owner's workload), so the matcher must not
// pick, and the claim must still be atomic with the allocation row and its
// audit event so a crash never leaves a held node without an allocation.
func (s *Store) AllocateNodes(ctx context.Context, a *ironpool.Allocation, nodeIDs []int64, state ironpool.NodeState) error {
	if err := checkAllocateNodes(nodeIDs, state); err != nil {
		return err
	}
	ttl := a.TTL
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return s.allocateNodes(ctx, tx, a, nodeIDs, state, s.Now().UTC(), ttl)
	})
	if err != nil {
		return err
	}
	return s.loadNodesByID(ctx, a, nodeIDs)
}

// AdoptNode adds n and an active allocation of a.Owner holding it, in one
// transaction with its node.adopted event; see ironpool.Store.
func (s *Store) AdoptNode(ctx context.Context, n *ironpool.Node, a *ironpool.Allocation, state ironpool.NodeState, summary string) error {
	if !state.Held() {
		return ironpool.FieldErrorf("state", "%q is not a state of a held node", state)
	}
	ttl := a.TTL
	if a.ID == "" {
		a.ID = uuid.NewString()
	}
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.Now().UTC()
		if err := s.createNode(ctx, tx, n, "", now); err != nil {
			return err
		}
		if err := s.allocateNodes(ctx, tx, a, []int64{n.ID}, state, now, ttl); err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, "node.adopted", "node/"+n.Name, summary)
	})
	if err != nil {
		return err
	}
	return s.loadNodesByID(ctx, a, []int64{n.ID})
}

func checkAllocateNodes(nodeIDs []int64, state ironpool.NodeState) error {
	if len(nodeIDs) == 0 {
		return ironpool.FieldErrorf("nodes", "at least one node is required")
	}
	if !state.Held() {
		return ironpool.FieldErrorf("state", "%q is not a state of a held node", state)
	}
	return nil
}

// allocateNodes claims exactly nodeIDs for a new allocation a inside tx.
func (s *Store) allocateNodes(ctx context.Context, tx *sql.Tx, a *ironpool.Allocation, nodeIDs []int64, state ironpool.NodeState, now time.Time, ttl time.Duration) error {
	var names []string
	a.CreatedAt, a.ExpiresAt = now, now.Add(ttl)
	if a.ID == "" {
		a.ID = uuid.NewString()
	}
	for _, id := range nodeIDs {
		var name, st string
		var alloc sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT name, state, allocation_id FROM nodes WHERE id = $1 `+s.Dialect.LockWait, id).
			Scan(&name, &st, &alloc)
		if errors.Is(err, sql.ErrNoRows) {
			return &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "nodes", Message: fmt.Sprintf("no node with id %d", id)}
		} else if err != nil {
			return err
		}
		ns := ironpool.NodeState(st)
		if alloc.Valid || ns.Held() || ns == ironpool.NodeCleaning {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "nodes",
				Message: fmt.Sprintf("node %s is %s and cannot join a new allocation", name, ns)}
		}
		names = append(names, name)
	}
	var c ironpool.Constraints
	if len(a.Items) > 0 {
		c = a.Items[0].Constraints
	}
	a.Items = []ironpool.AllocationItem{{Constraints: c, Count: len(names), Nodes: names}}
	if err := s.insertAllocation(ctx, tx, a, ironpool.AllocActive, ttl); err != nil {
		return err
	}
	for _, id := range nodeIDs {
		if _, err := tx.ExecContext(ctx, `UPDATE nodes SET state = $1, allocation_id = $2, owner = $3,
			last_allocated_at = $4, updated_at = $4, pending = '' WHERE id = $5`,
			string(state), a.ID, a.Owner, ms(now), id); err != nil {
			return fmt.Errorf("claim node: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO allocation_nodes (allocation_id, node_id, item) VALUES ($1, $2, 0)`,
			a.ID, id); err != nil {
			return fmt.Errorf("record allocation node: %w", err)
		}
	}
	if err := insertUsage(ctx, tx, a, []int{len(nodeIDs)}, now); err != nil {
		return err
	}
	return s.insertEventAt(ctx, tx, now, "allocation.created", "allocation/"+a.ID,
		fmt.Sprintf("%s took %s without selection (expires %s)", a.Owner, strings.Join(names, ", "), a.ExpiresAt.Format(time.RFC3339)))
}

// loadNodesByID reads an allocation's nodes after commit.
func (s *Store) loadNodesByID(ctx context.Context, a *ironpool.Allocation, nodeIDs []int64) error {
	var ph []string
	var args []any
	for _, id := range nodeIDs {
		args = append(args, id)
		ph = append(ph, fmt.Sprintf("$%d", len(args)))
	}
	var err error
	a.Nodes, err = s.queryNodes(ctx, s.R, `SELECT `+nodeColumns+` FROM nodes WHERE id IN (`+strings.Join(ph, ",")+`) ORDER BY name`, args...)
	return err
}
