package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ironpool/ironpool"
)

const nodeColumns = `id, uuid, name, pool, state, cpus, memory_mb, local_gb, cpu_arch, resource_class,
	traits, macs, bmc_address, bmc_username, bmc_password, fields, maintenance_reason, last_error,
	allocation_id, owner, ironic_uuid, ironic_endpoint, managed_by, provision_state, power_state,
	pending, last_allocated_at, created_at, updated_at`

// passwordAAD binds a sealed BMC password to its node and column.
func passwordAAD(nodeUUID string) string { return "nodes/" + nodeUUID + "/bmc_password" }

func joinTraits(t []string) string {
	if len(t) == 0 {
		return ""
	}
	return "," + strings.Join(t, ",") + ","
}

func splitTraits(s string) []string {
	s = strings.Trim(s, ",")
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func scanNode(s *Store, sc interface{ Scan(...any) error }) (*ironpool.Node, error) {
	var n ironpool.Node
	var state, traits, macs, fields, sealed string
	var allocID, ironicUUID sql.NullString
	var lastAlloc, created, updated int64
	if err := sc.Scan(&n.ID, &n.UUID, &n.Name, &n.Pool, &state, &n.CPUs, &n.MemoryMB, &n.LocalGB,
		&n.CPUArch, &n.ResourceClass, &traits, &macs, &n.BMC.Address, &n.BMC.Username, &sealed,
		&fields, &n.MaintenanceReason, &n.LastError, &allocID, &n.Owner, &ironicUUID,
		&n.IronicEndpoint, &n.ManagedBy, &n.ProvisionState, &n.PowerState, &n.Pending,
		&lastAlloc, &created, &updated); err != nil {
		return nil, err
	}
	n.State = ironpool.NodeState(state)
	n.Traits = splitTraits(traits)
	if err := json.Unmarshal([]byte(macs), &n.MACs); err != nil {
		return nil, fmt.Errorf("node %s macs: %w", n.Name, err)
	}
	if err := json.Unmarshal([]byte(fields), &n.Fields); err != nil {
		return nil, fmt.Errorf("node %s fields: %w", n.Name, err)
	}
	// A password that does not open (its key is gone, or the value was
	// damaged) must not make the node unreadable: listing, allocating,
	// deleting it and setting a new password all have to keep working, or
	// the operator could not repair it. The sealed value stays untouched in
	// the row (saveNode keeps it) until a new password replaces it.
	pw, err := s.Sealer.Open(sealed, passwordAAD(n.UUID))
	if err != nil {
		n.BMC.PasswordError = ironpool.ErrorMessage(err)
	}
	n.BMC.Password = pw
	n.AllocationID, n.IronicUUID = allocID.String, ironicUUID.String
	n.LastAllocatedAt, n.CreatedAt, n.UpdatedAt = fromMS(lastAlloc), fromMS(created), fromMS(updated)
	return &n, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// conflict turns a unique violation into ECONFLICT naming the field, using
// prefix to point at the entry ("nodes[3].").
func (s *Store) conflict(err error, prefix string, n *ironpool.Node) error {
	col, ok := s.Dialect.Unique(err)
	if !ok {
		return err
	}
	switch col {
	case "name":
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: prefix + "name", Message: fmt.Sprintf("a node named %q exists already", n.Name)}
	case "mac":
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: prefix + "macs", Message: "a MAC address of this node belongs to another node already"}
	case "uuid":
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: prefix + "uuid", Message: fmt.Sprintf("a node with uuid %s exists already", n.UUID)}
	case "ironic_uuid":
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: prefix + "ironic_uuid", Message: "that Ironic node is in the pool already"}
	}
	return &ironpool.Error{Code: ironpool.ECONFLICT, Field: prefix + col, Message: "is taken already"}
}

// CreateNodes inserts nodes, all or none.
func (s *Store) CreateNodes(ctx context.Context, nodes []*ironpool.Node) error {
	now := s.Now().UTC()
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for i, n := range nodes {
			prefix := ""
			if len(nodes) > 1 {
				prefix = fmt.Sprintf("nodes[%d].", i)
			}
			if err := s.createNode(ctx, tx, n, prefix, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// createNode inserts n with its node.created event.
func (s *Store) createNode(ctx context.Context, tx *sql.Tx, n *ironpool.Node, prefix string, now time.Time) error {
	if n.UUID == "" {
		n.UUID = uuid.NewString()
	}
	if n.State == "" {
		n.State = ironpool.NodeAvailable
	}
	n.CreatedAt, n.UpdatedAt = now, now
	if err := s.insertNode(ctx, tx, n, prefix); err != nil {
		return err
	}
	if n.IronicUUID != "" {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ignored_backend_nodes WHERE backend_id = $1`, n.IronicUUID); err != nil {
			return err
		}
	}
	return s.insertEvent(ctx, tx, "node.created", "node/"+n.Name,
		fmt.Sprintf("added %s in pool %s (%d cpus, %d MB, %d GB, %s)", n.Name, n.Pool, n.CPUs, n.MemoryMB, n.LocalGB, n.CPUArch))
}

func (s *Store) insertNode(ctx context.Context, tx *sql.Tx, n *ironpool.Node, prefix string) error {
	vals, err := s.nodeValues(n)
	if err != nil {
		return err
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO nodes (`+insertColumns+`)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28)
		RETURNING id`, vals...).Scan(&n.ID)
	if err != nil {
		return s.conflict(err, prefix, n)
	}
	return s.insertPorts(ctx, tx, n, prefix)
}

func (s *Store) insertPorts(ctx context.Context, tx *sql.Tx, n *ironpool.Node, prefix string) error {
	for i, mac := range n.MACs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ports (mac, node_id) VALUES ($1, $2)`, mac, n.ID); err != nil {
			if _, ok := s.Dialect.Unique(err); ok {
				return &ironpool.Error{Code: ironpool.ECONFLICT, Field: fmt.Sprintf("%smacs[%d]", prefix, i),
					Message: fmt.Sprintf("MAC %s belongs to another node already", mac)}
			}
			return err
		}
	}
	return nil
}

// FindNode returns a node by name or UUID.
func (s *Store) FindNode(ctx context.Context, name string) (*ironpool.Node, error) {
	n, err := s.findNode(ctx, s.R, name, "")
	return n, s.unavailable(err)
}

func (s *Store) findNode(ctx context.Context, q querier, name, lock string) (*ironpool.Node, error) {
	row := q.QueryRowContext(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE name = $1 OR uuid = $1 `+lock, name)
	n, err := scanNode(s, row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "name", Message: fmt.Sprintf("no node named %q", name)}
	}
	return n, err
}

// FindNodes lists nodes matching f, by name.
func (s *Store) FindNodes(ctx context.Context, f ironpool.NodeFilter) ([]*ironpool.Node, error) {
	var w filter
	if f.Pool != "" {
		w.add("pool = $%d", f.Pool)
	}
	if f.State != "" {
		w.add("state = $%d", string(f.State))
	}
	if f.Owner != "" {
		w.add("owner = $%d", f.Owner)
	}
	if f.Allocation != "" {
		w.add("allocation_id = $%d", f.Allocation)
	}
	if f.Flavor != nil {
		cond, a := constraintSQL(f.Flavor, len(w.args))
		w.raw(cond, a...)
	}
	q := `SELECT ` + nodeColumns + ` FROM nodes` + w.sql() + " ORDER BY name"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	nodes, err := s.queryNodes(ctx, s.R, q, w.args...)
	return nodes, s.unavailable(err)
}

func (s *Store) queryNodes(ctx context.Context, q querier, query string, args ...any) ([]*ironpool.Node, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query nodes: %w", err)
	}
	defer rows.Close()
	return s.scanNodes(rows)
}

// scanNodes reads rows of nodeColumns.
func (s *Store) scanNodes(rows Rows) ([]*ironpool.Node, error) {
	out := []*ironpool.Node{}
	for rows.Next() {
		n, err := scanNode(s, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// constraintSQL renders c as WHERE conditions numbered after n existing args.
func constraintSQL(c *ironpool.Constraints, n int) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, n+len(args)))
	}
	if c.CPUs > 0 {
		add("cpus >= $%d", c.CPUs)
	}
	if c.MemoryMB > 0 {
		add("memory_mb >= $%d", c.MemoryMB)
	}
	if c.LocalGB > 0 {
		add("local_gb >= $%d", c.LocalGB)
	}
	if c.CPUArch != "" {
		add("cpu_arch = $%d", c.CPUArch)
	}
	if c.ResourceClass != "" {
		add("resource_class = $%d", c.ResourceClass)
	}
	if c.Pool != "" {
		add("pool = $%d", c.Pool)
	}
	for _, t := range c.Traits {
		add(`traits LIKE $%d ESCAPE '\'`, "%,"+likeEscaper.Replace(t)+",%")
	}
	return where, args
}

// likeEscaper quotes LIKE's wildcards in a trait, so that `_` in CUSTOM_GPU
// matches only `_` and not any one character (CUSTOMXGPU). The traits
// column is ",A,B," and a trait holds no comma, so the escaped pattern
// "%,T,%" matches exactly the nodes that carry T.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// UpdateNode is a read-modify-write of one node inside one transaction.
func (s *Store) UpdateNode(ctx context.Context, name string, fn func(*ironpool.Node) error) (*ironpool.Node, error) {
	var out *ironpool.Node
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		old, err := s.findNode(ctx, tx, name, s.Dialect.LockWait)
		if err != nil {
			return err
		}
		n := *old.Clone()
		if err := fn(&n); err != nil {
			return err
		}
		n.ID, n.UUID, n.CreatedAt = old.ID, old.UUID, old.CreatedAt
		n.UpdatedAt = s.Now().UTC()
		if err := s.saveNode(ctx, tx, &n, old); err != nil {
			return err
		}
		changed := ironpool.DiffNodes(old, &n)
		if len(changed) == 0 {
			out = &n
			return nil
		}
		action := "node.updated"
		if old.State != n.State && (n.State == ironpool.NodeMaintenance || old.State == ironpool.NodeMaintenance) {
			action = "node.maintenance"
		}
		summary := "changed " + strings.Join(changed, ", ")
		if old.State == ironpool.NodeError && n.State == ironpool.NodeCleaning {
			// An operator asked for the clean to run again (POST .../clean).
			action, summary = "node.clean", "error → cleaning: cleaned again after: "+old.LastError
		}
		if action == "node.maintenance" {
			summary = fmt.Sprintf("%s → %s", old.State, n.State)
			if n.MaintenanceReason != "" {
				summary += ": " + n.MaintenanceReason
			}
		}
		out = &n
		return s.insertEvent(ctx, tx, action, "node/"+n.Name, summary)
	})
	return out, err
}

// saveNode writes every column of n; ports are rewritten when MACs changed.
func (s *Store) saveNode(ctx context.Context, tx *sql.Tx, n, old *ironpool.Node) error {
	// A password that did not open and was not set again keeps its sealed
	// value: rewriting it would destroy a secret that restoring the old
	// key could still recover. $28 says whether to write column 13.
	keepSealed := old.BMC.PasswordError != "" && n.BMC.PasswordError != "" && n.BMC.Password == ""
	sealed, err := s.Sealer.Seal(n.BMC.Password, passwordAAD(n.UUID))
	if err != nil {
		return err
	}
	macs, _ := json.Marshal(n.MACs)
	fields, _ := json.Marshal(n.Fields)
	_, err = tx.ExecContext(ctx, `UPDATE nodes SET name=$1, pool=$2, state=$3, cpus=$4, memory_mb=$5,
		local_gb=$6, cpu_arch=$7, resource_class=$8, traits=$9, macs=$10, bmc_address=$11,
		bmc_username=$12, bmc_password=CASE WHEN $28 = 1 THEN bmc_password ELSE $13 END, fields=$14, maintenance_reason=$15, last_error=$16,
		allocation_id=$17, owner=$18, ironic_uuid=$19, ironic_endpoint=$20, managed_by=$21,
		provision_state=$22, power_state=$23, pending=$24, last_allocated_at=$25, updated_at=$26
		WHERE id=$27`,
		n.Name, n.Pool, string(n.State), n.CPUs, n.MemoryMB, n.LocalGB, n.CPUArch, n.ResourceClass,
		joinTraits(n.Traits), string(macs), n.BMC.Address, n.BMC.Username, sealed, string(fields),
		n.MaintenanceReason, n.LastError, nullable(n.AllocationID), n.Owner, nullable(n.IronicUUID),
		n.IronicEndpoint, n.ManagedBy, n.ProvisionState, n.PowerState, string(n.Pending),
		ms(n.LastAllocatedAt), ms(n.UpdatedAt), n.ID, boolInt(keepSealed))
	if err != nil {
		return s.conflict(err, "", n)
	}
	if !slices.Equal(n.MACs, old.MACs) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM ports WHERE node_id = $1`, n.ID); err != nil {
			return err
		}
		return s.insertPorts(ctx, tx, n, "")
	}
	return nil
}

// boolInt spells a flag as an integer, which both engines compare alike.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DeleteNode removes a node unless an allocation holds it.
func (s *Store) DeleteNode(ctx context.Context, name string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.deleteNode(ctx, tx, name) })
}

// deleteNode is DeleteNode inside tx; DeleteNodes calls it per name.
func (s *Store) deleteNode(ctx context.Context, tx *sql.Tx, name string) error {
	n, err := s.findNode(ctx, tx, name, s.Dialect.LockWait)
	if err != nil {
		return err
	}
	if n.AllocationID != "" || n.State.Held() {
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "name",
			Message: fmt.Sprintf("node %s is allocated to %s (allocation %s)", n.Name, n.Owner, n.AllocationID),
			Hint:    "release the allocation first: ironpool release " + n.AllocationID}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ports WHERE node_id = $1`, n.ID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE id = $1`, n.ID); err != nil {
		return err
	}
	if n.IronicUUID != "" {
		// A deleted backend node stays deleted: sync must not bring it
		// back on its next pass.
		if _, err := tx.ExecContext(ctx, `INSERT INTO ignored_backend_nodes (backend_id, endpoint, name, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (backend_id) DO NOTHING`,
			n.IronicUUID, n.IronicEndpoint, n.Name, ms(s.Now())); err != nil {
			return err
		}
	}
	return s.insertEvent(ctx, tx, "node.deleted", "node/"+n.Name, "deleted "+n.Name)
}

// FinishCleaning ends a node's cleaning.
func (s *Store) FinishCleaning(ctx context.Context, nodeID int64, errMsg string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		state, summary := ironpool.NodeAvailable, "cleaned; available"
		if errMsg != "" {
			state, summary = ironpool.NodeError, "cleaning failed: "+errMsg
		}
		var name string
		err := tx.QueryRowContext(ctx, `UPDATE nodes SET state = $1, last_error = $2, pending = '', updated_at = $3
			WHERE id = $4 AND state = $5 RETURNING name`,
			string(state), errMsg, ms(s.Now()), nodeID, string(ironpool.NodeCleaning)).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // not cleaning any more: someone else finished it
		} else if err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, "node.cleaned", "node/"+name, summary)
	})
}

// IgnoredBackendNodes returns the backend ids of nodes deleted from the
// pool; see ironpool.Store.
func (s *Store) IgnoredBackendNodes(ctx context.Context) (map[string]bool, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT backend_id FROM ignored_backend_nodes`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}
