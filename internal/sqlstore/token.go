package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ironpool/ironpool"
)

// CreateToken stores a token (its hash only).
func (s *Store) CreateToken(ctx context.Context, t *ironpool.Token) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.insertToken(ctx, tx, t) })
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, t *ironpool.Token) error {
	t.CreatedAt = s.Now().UTC()
	owners, _ := json.Marshal(t.Owners)
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, hash, role, owners, description, created_at, priority)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, t.ID, t.Hash, string(t.Role), string(owners), t.Description, ms(t.CreatedAt), t.Priority); err != nil {
		if _, ok := s.Dialect.Unique(err); ok {
			return &ironpool.Error{Code: ironpool.ECONFLICT, Field: "id", Message: "token exists already"}
		}
		return err
	}
	return s.insertEvent(ctx, tx, "token.created", "token/"+t.ID, fmt.Sprintf("%s token for %v (priority %d): %s", t.Role, t.Owners, t.Priority, t.Description))
}

// CreateFirstToken stores t only when the tokens table is empty. On
// PostgreSQL the insert takes a table lock first, so two replicas starting
// together cannot both see an empty table.
func (s *Store) CreateFirstToken(ctx context.Context, t *ironpool.Token) (bool, error) {
	created := false
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		created = false
		if s.Dialect.Name == "postgres" {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE tokens IN EXCLUSIVE MODE`); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		created = true
		return s.insertToken(ctx, tx, t)
	})
	return created, err
}

const tokenColumns = `id, hash, role, owners, description, created_at, revoked_at, priority`

func scanToken(sc interface{ Scan(...any) error }) (*ironpool.Token, error) {
	var t ironpool.Token
	var role, owners string
	var created, revoked int64
	if err := sc.Scan(&t.ID, &t.Hash, &role, &owners, &t.Description, &created, &revoked, &t.Priority); err != nil {
		return nil, err
	}
	t.Role = ironpool.Role(role)
	if err := json.Unmarshal([]byte(owners), &t.Owners); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RevokedAt = fromMS(created), fromMS(revoked)
	return &t, nil
}

// FindTokenByHash returns the live token with this hash. It answers from
// the token cache when it can (see tokenCache).
func (s *Store) FindTokenByHash(ctx context.Context, hash string) (*ironpool.Token, error) {
	return s.findTokenCached(ctx, hash)
}

func (s *Store) findTokenByHash(ctx context.Context, hash string) (*ironpool.Token, error) {
	t, err := scanToken(s.R.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1 AND revoked_at = 0`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &ironpool.Error{Code: ironpool.ENOTFOUND, Message: "unknown or revoked token"}
	}
	return t, s.unavailable(err)
}

// FindTokens lists every token, revoked ones included.
func (s *Store) FindTokens(ctx context.Context) ([]*ironpool.Token, error) {
	rows, err := s.R.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*ironpool.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken marks a token revoked; revoking twice is not an error. The
// token cache is emptied both before the revocation commits, so that no
// request starting after this call reaches a cached copy, and after, so that
// a lookup that read the token meanwhile cannot store it; other replicas are
// told through TokenChannel.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	s.InvalidateTokens()
	defer s.InvalidateTokens()
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var revoked int64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM tokens WHERE id = $1`, id).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return &ironpool.Error{Code: ironpool.ENOTFOUND, Field: "id", Message: fmt.Sprintf("no token %q", id)}
		} else if err != nil || revoked != 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2`, ms(s.Now()), id); err != nil {
			return err
		}
		if err := s.announceRevocation(ctx, tx); err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, "token.revoked", "token/"+id, "revoked")
	})
}

// Reseal re-encrypts every BMC password not yet under the sealer's current
// key, in batches of one transaction each: an interrupted run leaves some
// rows under the old key, which stays readable, and the next run finishes
// them without rewriting what is done. A password that does not open is
// skipped and reported: one row under a lost key must not block the others.
func (s *Store) Reseal(ctx context.Context) (ironpool.ResealResult, error) {
	res := ironpool.ResealResult{KeyID: s.Sealer.KeyID(), Skipped: []string{}}
	var after int64
	for {
		n, skipped, last, err := s.resealBatch(ctx, after)
		res.Resealed += n
		res.Skipped = append(res.Skipped, skipped...)
		if err != nil || last == 0 {
			if err == nil {
				err = s.resealKeyCheck(ctx)
			}
			if err == nil {
				summary := fmt.Sprintf("re-encrypted %d secrets under key %s", res.Resealed, res.KeyID)
				if len(res.Skipped) > 0 {
					summary += fmt.Sprintf("; %d did not open and were skipped", len(res.Skipped))
				}
				err = s.AddEvent(ctx, &ironpool.Event{Action: "key.rotated", Subject: "key/" + res.KeyID, Summary: summary})
			}
			return res, err
		}
		after = last
	}
}

// resealKeyCheck moves the key check to the current key once every row is
// done, so the old key can be dropped then, and not before: a server
// started without the old key while rows still need it refuses to start.
func (s *Store) resealKeyCheck(ctx context.Context) error {
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		check, err := s.keyCheck(ctx, tx)
		if err != nil || (check != "" && !s.Sealer.NeedsReseal(check)) {
			return err
		}
		if check != "" {
			if err := s.openKeyCheck(check); err != nil {
				return err
			}
		}
		sealed, err := s.Sealer.Seal(keyCheckPlain, keyCheckAAD)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, keyCheckName, sealed)
		return err
	})
}

func (s *Store) resealBatch(ctx context.Context, after int64) (int, []string, int64, error) {
	n, last := 0, int64(0)
	var skipped []string
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, last, skipped = 0, 0, nil
		rows, err := tx.QueryContext(ctx, `SELECT id, uuid, name, bmc_password FROM nodes WHERE id > $1 ORDER BY id LIMIT 500`, after)
		if err != nil {
			return err
		}
		type row struct {
			id                 int64
			uuid, name, sealed string
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.uuid, &r.name, &r.sealed); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		for _, r := range batch {
			last = r.id
			if !s.Sealer.NeedsReseal(r.sealed) {
				continue // under the current key already (or empty)
			}
			pw, err := s.Sealer.Open(r.sealed, passwordAAD(r.uuid))
			if err != nil {
				skipped = append(skipped, r.name)
				continue
			}
			sealed, err := s.Sealer.Seal(pw, passwordAAD(r.uuid))
			if err != nil {
				return err
			}
			// Compare-and-set: the batch was read without row locks, so a
			// password changed since then (sealed under the current key
			// already) must not be overwritten with the value read before.
			res, err := tx.ExecContext(ctx, `UPDATE nodes SET bmc_password = $1 WHERE id = $2 AND bmc_password = $3`, sealed, r.id, r.sealed)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 1 {
				n++
			}
		}
		return nil
	})
	return n, skipped, last, err
}
