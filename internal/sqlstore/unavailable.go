package sqlstore

import (
	"errors"

	"github.com/ironpool/ironpool"
)

// unavailable turns an engine error that means "the database cannot serve
// now" (its disk is full, its connection is gone) into EUNAVAILABLE, so the
// client gets 503 and retries later instead of a 500 that reads like a bug.
// The message says which, and nothing of the driver's text leaves.
func (s *Store) unavailable(err error) error {
	if err == nil || s.Dialect.Unavailable == nil {
		return err
	}
	var e *ironpool.Error
	if errors.As(err, &e) {
		return err
	}
	if msg := s.Dialect.Unavailable(err); msg != "" {
		return &ironpool.Error{Code: ironpool.EUNAVAILABLE, Message: msg, Hint: "retry later; the server's operator can see why in its log"}
	}
	return err
}
