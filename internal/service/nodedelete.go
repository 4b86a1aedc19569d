package service

import (
	"context"

	"github.com/ironpool/ironpool"
)

// MaxDeleteNames bounds one multi-node delete.
const MaxDeleteNames = 10000

// DeleteNodes removes several nodes that no allocation holds, all or none.
func (s *Service) DeleteNodes(ctx context.Context, names []string) error {
	if _, err := Authorize(ctx, OpNodeDelete); err != nil {
		return err
	}
	if len(names) == 0 {
		return ironpool.FieldErrorf("names", "at least one node name is required")
	}
	if len(names) > MaxDeleteNames {
		return ironpool.FieldErrorf("names", "has %d entries; the limit is %d", len(names), MaxDeleteNames)
	}
	return s.Store.DeleteNodes(ctx, names)
}
