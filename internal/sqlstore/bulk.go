package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ironpool/ironpool"
)

// bulkRows is how many nodes one multi-row INSERT carries: 400 rows of 28
// columns is 11,200 parameters, under both SQLite's limit (32,766) and
// PostgreSQL's (65,535), and large enough that the per-statement cost
// vanishes against the per-row one.
const bulkRows = 400

// insertColumns are the columns insertNode and BulkCreateNodes write, in the
// order of nodeValues.
const insertColumns = `uuid, name, pool, state, cpus, memory_mb, local_gb,
	cpu_arch, resource_class, traits, macs, bmc_address, bmc_username, bmc_password, fields,
	maintenance_reason, last_error, allocation_id, owner, ironic_uuid, ironic_endpoint, managed_by,
	provision_state, power_state, pending, last_allocated_at, created_at, updated_at`

// BulkCreateNodes inserts many new nodes in one transaction, all or none,
// with multi-row INSERTs. It exists for seeding large pools (a benchmark's
// million nodes, a first import): CreateNodes runs two statements per node
// and writes one node.created event each, which at a million nodes takes
// minutes; this writes one statement per 400 nodes (plus one for their
// MACs) and one node.bulk_created event per call.
//
// The nodes must be valid (Node.Validate) and new: they are inserted as
// available, with fresh time-ordered UUIDs where none is set. A name, UUID or MAC that
// is taken fails the whole call with ECONFLICT naming the column, not the
// entry, since one statement covers many nodes. The caller bounds the
// transaction's size by the slice it passes (a few tens of thousands of
// nodes per call keeps memory and the WAL small).
func (s *Store) BulkCreateNodes(ctx context.Context, nodes []*ironpool.Node) error {
	if len(nodes) == 0 {
		return nil
	}
	now := s.Now().UTC()
	for _, n := range nodes {
		if n.UUID == "" {
			// Time-ordered (version 7), so a million inserts append to the
			// uuid index instead of scattering over it: with random
			// UUIDs, once the index outgrows SQLite's page cache every
			// insert reads a page from disk.
			u, err := uuid.NewV7()
			if err != nil {
				return err
			}
			n.UUID = u.String()
		}
		n.State = ironpool.NodeAvailable
		n.CreatedAt, n.UpdatedAt = now, now
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for start := 0; start < len(nodes); start += bulkRows {
			if err := s.insertNodeRows(ctx, tx, nodes[start:min(len(nodes), start+bulkRows)]); err != nil {
				return err
			}
		}
		pools := map[string]int{}
		for _, n := range nodes {
			pools[n.Pool]++
		}
		var parts []string
		for p, k := range pools {
			parts = append(parts, fmt.Sprintf("%d in pool %s", k, p))
		}
		return s.insertEvent(ctx, tx, "node.bulk_created", "node/"+nodes[0].Name,
			fmt.Sprintf("bulk-added %d nodes (%s), %s … %s", len(nodes), strings.Join(parts, ", "), nodes[0].Name, nodes[len(nodes)-1].Name))
	})
}

// insertNodeRows inserts one batch of nodes with one statement, sets their
// IDs from RETURNING (matched by UUID, since neither engine promises the
// order of returned rows), then inserts their ports with one more.
func (s *Store) insertNodeRows(ctx context.Context, tx *sql.Tx, batch []*ironpool.Node) error {
	var q strings.Builder
	q.WriteString("INSERT INTO nodes (" + insertColumns + ") VALUES ")
	args := make([]any, 0, len(batch)*28)
	byUUID := make(map[string]*ironpool.Node, len(batch))
	for i, n := range batch {
		vals, err := s.nodeValues(n)
		if err != nil {
			return err
		}
		if i > 0 {
			q.WriteByte(',')
		}
		s.placeholders(&q, len(args), len(vals))
		args = append(args, vals...)
		byUUID[n.UUID] = n
	}
	q.WriteString(" RETURNING id, uuid")
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return s.bulkConflict(err)
	}
	for rows.Next() {
		var id int64
		var u string
		if err := rows.Scan(&id, &u); err != nil {
			rows.Close()
			return err
		}
		if n := byUUID[u]; n != nil {
			n.ID = id
		}
	}
	if err := rows.Close(); err != nil {
		return s.bulkConflict(err)
	}
	if err := rows.Err(); err != nil {
		return s.bulkConflict(err)
	}
	q.Reset()
	args = args[:0]
	q.WriteString("INSERT INTO ports (mac, node_id) VALUES ")
	for _, n := range batch {
		for _, mac := range n.MACs {
			if len(args) > 0 {
				q.WriteByte(',')
			}
			s.placeholders(&q, len(args), 2)
			args = append(args, mac, n.ID)
		}
	}
	if len(args) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return s.bulkConflict(err)
	}
	return nil
}

// nodeValues are n's values for insertColumns, the password sealed.
func (s *Store) nodeValues(n *ironpool.Node) ([]any, error) {
	sealed, err := s.Sealer.Seal(n.BMC.Password, passwordAAD(n.UUID))
	if err != nil {
		return nil, err
	}
	macs, _ := json.Marshal(n.MACs)
	fields, _ := json.Marshal(n.Fields)
	return []any{n.UUID, n.Name, n.Pool, string(n.State), n.CPUs, n.MemoryMB, n.LocalGB, n.CPUArch, n.ResourceClass,
		joinTraits(n.Traits), string(macs), n.BMC.Address, n.BMC.Username, sealed, string(fields),
		n.MaintenanceReason, n.LastError, nullable(n.AllocationID), n.Owner, nullable(n.IronicUUID),
		n.IronicEndpoint, n.ManagedBy, n.ProvisionState, n.PowerState, string(n.Pending),
		ms(n.LastAllocatedAt), ms(n.CreatedAt), ms(n.UpdatedAt)}, nil
}

// placeholders writes "($first+1,…,$first+k)", or "(?,…,?)" on SQLite:
// there a numbered parameter has a name, and the driver looks every
// parameter's name up in a list as long as the statement's parameters
// (quadratic: 92% of a bulk insert's time with $N), while anonymous ones
// have none.
func (s *Store) placeholders(q *strings.Builder, first, k int) {
	q.WriteByte('(')
	for j := 1; j <= k; j++ {
		if j > 1 {
			q.WriteByte(',')
		}
		if s.Dialect.Name == "sqlite" {
			q.WriteByte('?')
		} else {
			q.WriteByte('$')
			q.WriteString(strconv.Itoa(first + j))
		}
	}
	q.WriteByte(')')
}

// bulkConflict turns a unique violation into ECONFLICT naming the column;
// which of the batch's nodes collided is not known.
func (s *Store) bulkConflict(err error) error {
	if col, ok := s.Dialect.Unique(err); ok {
		return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "nodes",
			Message: fmt.Sprintf("a %s of one of the nodes is taken already (bulk insert: all or none)", col)}
	}
	return err
}
