package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ironpool/ironpool"
)

// keyCheckName and keyCheckAAD name the sealed key check in settings; the
// plaintext is fixed, so opening it proves the key is the data's key.
const (
	keyCheckName  = "key_check"
	keyCheckAAD   = "settings/key_check"
	keyCheckPlain = "ironpool key check v1"
)

// CheckKey verifies the sealer against the data; see ironpool.Store.
func (s *Store) CheckKey(ctx context.Context, record bool) error {
	check, err := s.keyCheck(ctx, s.W)
	if err != nil {
		return err
	}
	if check != "" {
		return s.openKeyCheck(check)
	}
	// A database written before key checks existed: the key must open at
	// least one stored password, else it is not the data's key.
	if err := s.opensAnySecret(ctx); err != nil {
		return err
	}
	if !record {
		return nil
	}
	sealed, err := s.Sealer.Seal(keyCheckPlain, keyCheckAAD)
	if err != nil {
		return err
	}
	// Replicas starting together on one empty database race here: the
	// first check stored wins, and every other replica must open it.
	if _, err := s.W.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		keyCheckName, sealed); err != nil {
		return fmt.Errorf("store key check: %w", err)
	}
	if check, err = s.keyCheck(ctx, s.W); err != nil {
		return err
	}
	return s.openKeyCheck(check)
}

func (s *Store) keyCheck(ctx context.Context, q querier) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, keyCheckName).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("read key check: %w", err)
	}
	return v, nil
}

func (s *Store) openKeyCheck(check string) error {
	plain, err := s.Sealer.Open(check, keyCheckAAD)
	if err == nil && plain == keyCheckPlain {
		return nil
	}
	return wrongKey(s.Sealer.KeyID(), sealedKeyID(check))
}

// opensAnySecret succeeds when no password is stored or the sealer opens
// one of them. One is enough: a row under a key since dropped must not stop
// the server, which reports such rows instead (node show, reseal).
func (s *Store) opensAnySecret(ctx context.Context) error {
	rows, err := s.W.QueryContext(ctx, `SELECT uuid, bmc_password FROM nodes WHERE bmc_password <> '' ORDER BY id`)
	if err != nil {
		return fmt.Errorf("read sealed secrets: %w", err)
	}
	defer rows.Close()
	first := ""
	for rows.Next() {
		var uuid, sealed string
		if err := rows.Scan(&uuid, &sealed); err != nil {
			return err
		}
		if _, err := s.Sealer.Open(sealed, passwordAAD(uuid)); err == nil {
			return nil
		}
		if first == "" {
			first = sealed
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if first == "" {
		return nil
	}
	return wrongKey(s.Sealer.KeyID(), sealedKeyID(first))
}

// sealedKeyID reads the key id tag of a sealed value ("v1:<id>:…") without
// opening it, so the refusal can say which key the data needs.
func sealedKeyID(sealed string) string {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != "v1" || len(parts[1]) != 16 {
		return "unknown"
	}
	return parts[1]
}

func wrongKey(have, want string) error {
	return (&ironpool.Error{Code: ironpool.EINVALID, Field: "secret-key-file",
		Message: fmt.Sprintf("the secret key (id %s) does not open this database's secrets, which are sealed under key %s", have, want)}).
		WithHint("start with the key file whose id is " + want + " (as --secret-key-file, or as --old-secret-key-file during a rotation); see docs/SECURITY.md, \"Recovering a lost or wrong key\"")
}
