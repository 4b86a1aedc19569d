package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// filter builds the WHERE clause of a list query, numbering its
// placeholders as it goes, so every list (nodes, allocations,
// reservations) renders its conditions one way.
type filter struct {
	where []string
	args  []any
}

// add appends cond, whose one %d is replaced by v's placeholder number.
func (f *filter) add(cond string, v any) {
	f.args = append(f.args, v)
	f.where = append(f.where, fmt.Sprintf(cond, len(f.args)))
}

// raw appends conditions rendered elsewhere with their arguments (they
// must be numbered after the arguments already here).
func (f *filter) raw(where []string, args ...any) {
	f.where, f.args = append(f.where, where...), append(f.args, args...)
}

// sql is " WHERE …" or "" when there is no condition.
func (f *filter) sql() string {
	if len(f.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.where, " AND ")
}

// ownedBy narrows f to the rows of table whose owner is one of owners,
// names or patterns (a user token's owners). It reports false when they
// cover no owner at all, so the list is empty without a query.
func (s *Store) ownedBy(ctx context.Context, f *filter, table string, owners []string) (bool, error) {
	if len(owners) == 0 {
		return false, nil
	}
	names, err := s.expandOwners(ctx, table, owners)
	if err != nil || len(names) == 0 {
		return false, err
	}
	var ph []string
	for _, o := range names {
		f.args = append(f.args, o)
		ph = append(ph, fmt.Sprintf("$%d", len(f.args)))
	}
	f.where = append(f.where, "owner IN ("+strings.Join(ph, ",")+")")
	return true, nil
}

// listLimit bounds a list: n when it is in (0, 10000], else 10000.
func listLimit(n int) int {
	if n <= 0 || n > 10000 {
		return 10000
	}
	return n
}

// ownerList is what the allocation and reservation lists filter on.
type ownerList struct {
	table, id, owner, state string
	owners                  []string // nil: any owner; else names or patterns
	live                    string   // the live states, quoted, when only live rows are wanted
}

// listFilter renders l; false means it matches nothing (no owner to see).
func (s *Store) listFilter(ctx context.Context, l ownerList) (*filter, bool, error) {
	w := &filter{}
	if l.id != "" {
		w.add("id = $%d", l.id)
	}
	if l.owner != "" {
		w.add("owner = $%d", l.owner)
	}
	if l.owners != nil {
		if ok, err := s.ownedBy(ctx, w, l.table, l.owners); !ok {
			return nil, false, err
		}
	}
	if l.state != "" {
		w.add("state = $%d", l.state)
	}
	if l.live != "" {
		w.raw([]string{"state IN (" + l.live + ")"})
	}
	return w, true, nil
}
