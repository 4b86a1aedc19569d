package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ironpool/ironpool"
)

// DeleteNodes removes every named node or none; see ironpool.NodeService.
// `ironpool node delete a b c` used to delete a and b and then stop at c,
// leaving the inventory half changed.
func (s *Store) DeleteNodes(ctx context.Context, names []string) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		seen := map[string]bool{}
		for i, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			if err := s.deleteNode(ctx, tx, name); err != nil {
				var e *ironpool.Error
				if errors.As(err, &e) {
					c := *e
					c.Field = fmt.Sprintf("names[%d]", i)
					return &c
				}
				return err
			}
		}
		return nil
	})
}
