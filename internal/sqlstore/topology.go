package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/alloc"
)

// This file serves topology requests (ironpool.Topology): the nodes' groups
// are their values of one node field, read from the fields column.
//
// Cost: a plain request reads Need(counts) rows per item through the
// nodes_fit index. A topology request reads every matching free node that
// has the key (the fields column is JSON, not indexed by key on both
// engines); the matcher keeps the best alloc.GroupNeed of them per item and
// value, which is what keeps the answer exact: the best-fit prefix of a list
// may all sit in one rack. Best fit under a topology is the least sum of
// the nodes' positions in best-fit order among the nodes read (the free
// nodes that match some item and have the key). On PostgreSQL the rows read are locked as plain
// candidates are.

// fieldsLike is the LIKE pattern that every fields column holding key
// matches. Field keys are letters, digits and _ . : - (ValidateFieldKey),
// which JSON writes as they are; '_' is a LIKE wildcard, which only widens
// the match, and each row is checked exactly after decoding.
func fieldsLike(key string) string { return `%"` + key + `":%` }

// groupOf returns the node's value of key from its fields column, "" when
// it has none (or an empty one).
func groupOf(fields, key string) string {
	var m map[string]string
	if json.Unmarshal([]byte(fields), &m) != nil {
		return ""
	}
	return m[key]
}

// checkTopologyKey refuses a topology key that no node has, in any state:
// a typo (--spread rak) would otherwise read as "no capacity" and, queued,
// wait for ever.
func (s *Store) checkTopologyKey(ctx context.Context, q querier, t *ironpool.Topology) error {
	rows, err := q.QueryContext(ctx, `SELECT fields FROM nodes WHERE fields LIKE $1`, fieldsLike(t.Key()))
	if err != nil {
		return fmt.Errorf("topology key: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			return err
		}
		if groupOf(f, t.Key()) != "" {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return (&ironpool.Error{Code: ironpool.EINVALID, Field: t.Field(),
		Message: fmt.Sprintf("no node has field %q, so no node can be placed by it", t.Key())}).
		WithHint("set it on the nodes first, e.g. `ironpool node set NODE " + t.Key() + "=VALUE`")
}

// groupCandidates reads the nodes matching c that have key, best fit
// first, and returns them with their values. Free nodes only (with the reachability and exclusion rules
// of candidates), or with anyState every node, for admission.
func (s *Store) groupCandidates(ctx context.Context, q querier, c *ironpool.Constraints, key string, anyState bool, lock string, ex ...excluder) ([]candidate, []string, error) {
	args := []any{fieldsLike(key)}
	where := []string{"fields LIKE $1"}
	if !anyState {
		args = append(args, string(ironpool.NodeAvailable))
		where = append(where, "state = $2")
	}
	w, a := constraintSQL(c, len(args))
	where, args = append(where, w...), append(args, a...)
	if !anyState {
		w, a = s.reachableSQL(nil, nil, len(args))
		where, args = append(where, w...), append(args, a...)
		for _, e := range ex {
			if cond, a := e.render(len(args)); cond != "" {
				where, args = append(where, cond), append(args, a...)
			}
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT id, name, cpus, memory_mb, local_gb, last_allocated_at, fields FROM nodes
		WHERE `+strings.Join(where, " AND ")+` ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id `+lock, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("topology candidates: %w", err)
	}
	defer rows.Close()
	var out []candidate
	var groups []string
	for rows.Next() {
		var n candidate
		var fields string
		if err := rows.Scan(&n.id, &n.name, &n.cpus, &n.memoryMB, &n.localGB, &n.last, &fields); err != nil {
			return nil, nil, err
		}
		g := groupOf(fields, key)
		if g == "" {
			continue
		}
		out, groups = append(out, n), append(groups, g)
	}
	return out, groups, rows.Err()
}

// matchTopology is match for a request with a topology (anyState: over
// every node, for admission). It returns the matcher's result too, whose
// shortfall a refusal names.
func (s *Store) matchTopology(ctx context.Context, q querier, a *ironpool.Allocation, lock string, anyState bool, ex ...excluder) ([][]candidate, alloc.Result, error) {
	t := a.Topology.Normalized()
	topo := alloc.Topology{MaxPerGroup: t.MaxPerValue, Together: t.Together != ""}
	counts := make([]int, len(a.Items))
	for i, it := range a.Items {
		counts[i] = it.Count
	}
	lists := make([][]candidate, len(a.Items))
	group := map[int64]string{}
	for i := range a.Items {
		l, g, err := s.groupCandidates(ctx, q, &a.Items[i].Constraints, t.Key(), anyState, lock, ex...)
		if err != nil {
			return nil, alloc.Result{}, err
		}
		lists[i] = l
		for j, n := range l {
			group[n.id] = g[j]
		}
	}
	// Ranks are positions among every node read, not among a prefix: under
	// a topology the cheapest assignment depends on the ranks' values, not
	// only their order, so they must not depend on how much was read.
	// MatchTopology itself keeps only GroupNeed per item and value.
	cands, byID := rankLists(lists)
	res := alloc.MatchTopology(counts, cands, group, topo)
	if !res.OK {
		return nil, res, nil
	}
	out := make([][]candidate, len(res.Picks))
	for i, ids := range res.Picks {
		for _, id := range ids {
			out[i] = append(out[i], byID[id])
		}
	}
	return out, res, nil
}

// rankLists turns per-item candidate lists into the matcher's, one rank per
// node in best-fit order, and indexes the candidates by id.
func rankLists(lists [][]candidate) ([][]alloc.Candidate, map[int64]candidate) {
	byID := map[int64]candidate{}
	for _, l := range lists {
		for _, n := range l {
			byID[n.id] = n
		}
	}
	all := make([]candidate, 0, len(byID))
	for _, n := range byID {
		all = append(all, n)
	}
	slices.SortFunc(all, candidate.less)
	rank := make(map[int64]int64, len(all))
	for i, n := range all {
		rank[n.id] = int64(i)
	}
	cands := make([][]alloc.Candidate, len(lists))
	for i, l := range lists {
		for _, n := range l {
			cands[i] = append(cands[i], alloc.Candidate{ID: n.id, Rank: rank[n.id]})
		}
	}
	return cands, byID
}

// topologyShort says which topology constraint the nodes cannot meet and by
// how much: "no 3 free nodes in distinct rack values: at most 2 can be
// placed". what is "free" or "" (admission counts nodes in any state).
func topologyShort(a *ironpool.Allocation, res alloc.Result, what string) string {
	t := a.Topology.Normalized()
	k := 0
	for _, it := range a.Items {
		k += it.Count
	}
	nodes := fmt.Sprintf("%d %s nodes", k, what)
	if what == "" {
		nodes = fmt.Sprintf("%d nodes", k)
	}
	switch {
	case t.Together != "" && res.Placed == 0:
		return fmt.Sprintf("together %s: no %s node with field %s matches the items", t.Together, cmp.Or(what, "existing"), t.Together)
	case t.Together != "":
		return fmt.Sprintf("together %s: no single %s value holds %s for the items; the most one holds is %d (%s=%s)",
			t.Together, t.Together, nodes, res.Placed, t.Together, res.BestGroup)
	case t.MaxPerValue == 1:
		return fmt.Sprintf("spread %s: no %s in distinct %s values; at most %d can be placed", t.Spread, nodes, t.Spread, res.Placed)
	}
	return fmt.Sprintf("spread %s:%d: no %s with at most %d per %s value; at most %d can be placed",
		t.Spread, t.MaxPerValue, nodes, t.MaxPerValue, t.Spread, res.Placed)
}

// topologyError is the refusal of a topology request that the free nodes
// (those it may take, ex left out) cannot serve.
func (s *Store) topologyError(ctx context.Context, q querier, a *ironpool.Allocation, ex exclusion) error {
	sf, err := s.reservedShortfall(ctx, q, a, ex)
	if err != nil {
		return err
	}
	_, res, err := s.matchTopology(ctx, q, a, "", false, ex)
	if err != nil {
		return err
	}
	e := capacityError(sf)
	if res.OK {
		return e // the nodes moved between the two reads: the counts say why
	}
	e.Field = a.Topology.Field()
	e.Message = topologyShort(a, res, "free") + " (" + strings.TrimSuffix(strings.TrimPrefix(e.Message, "not enough free nodes ("), ")") + ")"
	return e
}

// admitTopology is admit for a topology request: refused when no state of
// the pool, every node counted whatever its state, could meet the items
// and the topology at once.
func (s *Store) admitTopology(ctx context.Context, q querier, a *ironpool.Allocation) error {
	_, res, err := s.matchTopology(ctx, q, a, "", true)
	if err != nil || res.OK {
		return err
	}
	sf, err := s.shortfall(ctx, q, a)
	if err != nil {
		return err
	}
	return &ironpool.Error{Code: ironpool.ECAPACITY, Field: a.Topology.Field(), Shortfall: sf,
		Message: "no state of the pool could satisfy this request: " + topologyShort(a, res, ""),
		Hint:    "it was not queued: it would wait forever; ask for fewer nodes, a looser topology, or set the field on more nodes"}
}

// waitFailure is the last_error of a queued request whose wait ran out:
// the per-item counts, led by the topology constraint the free nodes do
// not meet when the request has one and that is what is short.
func (s *Store) waitFailure(ctx context.Context, q querier, a *ironpool.Allocation) (string, error) {
	sf, err := s.shortfall(ctx, q, a)
	if err != nil {
		return "", err
	}
	msg := capacityError(sf).Message
	if a.Topology != nil {
		_, res, err := s.matchTopology(ctx, q, a, "", false)
		if err != nil {
			return "", err
		}
		if !res.OK {
			msg = topologyShort(a, res, "free") + "; " + msg
		}
	}
	return "wait deadline passed: " + msg, nil
}
