package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ironpool/ironpool"
)

// tokenPrefix marks ironpool tokens so they are easy to spot in a leaked
// file or a secret scanner's output.
const tokenPrefix = "ipt_"

// HashToken returns the stored form of a token secret. Tokens carry 256
// random bits, so a plain SHA-256 is as strong as a slow hash here.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// NewToken makes a token with a fresh secret (set in Secret, shown once).
// Owners may be names or patterns ("ci-*", see ironpool.MatchOwner);
// priority is the queue priority of the token's requests.
func NewToken(role ironpool.Role, owners []string, description string, priority int) (*ironpool.Token, error) {
	if !role.Valid() {
		return nil, ironpool.FieldErrorf("role", "%q is not a role (want admin, operator or user)", role)
	}
	if role == ironpool.RoleUser && len(owners) == 0 {
		return nil, ironpool.FieldErrorf("owners", "a user token needs at least one owner (or %q for any)", ironpool.AnyOwner)
	}
	for i, o := range owners {
		if o == ironpool.AnyOwner {
			continue
		}
		if err := ironpool.ValidateOwnerPattern(fmt.Sprintf("owners[%d]", i), o); err != nil {
			return nil, err
		}
	}
	if err := ironpool.ValidatePriority("priority", priority); err != nil {
		return nil, err
	}
	if len(description) > ironpool.MaxReasonLen {
		return nil, ironpool.FieldErrorf("description", "is too long (limit %d)", ironpool.MaxReasonLen)
	}
	if err := ironpool.ValidateText("description", description); err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	id := make([]byte, 6)
	rand.Read(id)
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	if owners == nil {
		owners = []string{}
	}
	return &ironpool.Token{ID: "tok-" + hex.EncodeToString(id), Role: role, Owners: owners,
		Description: description, Hash: HashToken(secret), Secret: secret, Priority: priority}, nil
}

// Authenticate maps a bearer token to its actor.
func (s *Service) Authenticate(ctx context.Context, secret string) (*ironpool.Actor, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, &ironpool.Error{Code: ironpool.EUNAUTHORIZED, Message: "authentication required",
			Hint: "set IRONPOOL_TOKEN to an API token"}
	}
	t, err := s.Store.FindTokenByHash(ctx, HashToken(secret))
	if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
		return nil, &ironpool.Error{Code: ironpool.EUNAUTHORIZED, Message: "unknown or revoked token"}
	} else if err != nil {
		return nil, err
	}
	return &ironpool.Actor{TokenID: t.ID, Role: t.Role, Owners: t.Owners, Priority: t.Priority}, nil
}

// CreateToken makes and stores a token; the reply carries the secret once.
func (s *Service) CreateToken(ctx context.Context, role ironpool.Role, owners []string, description string, priority int) (*ironpool.Token, error) {
	if _, err := Authorize(ctx, OpTokenManage); err != nil {
		return nil, err
	}
	t, err := NewToken(role, owners, description, priority)
	if err != nil {
		return nil, err
	}
	if err := s.Store.CreateToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// FindTokens lists tokens (never their secrets).
func (s *Service) FindTokens(ctx context.Context) ([]*ironpool.Token, error) {
	if _, err := Authorize(ctx, OpTokenManage); err != nil {
		return nil, err
	}
	return s.Store.FindTokens(ctx)
}

// RevokeToken revokes a token.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	if _, err := Authorize(ctx, OpTokenManage); err != nil {
		return err
	}
	return s.Store.RevokeToken(ctx, id)
}

// RotateKey re-encrypts every secret under the store's current key and
// names the nodes whose password did not open.
func (s *Service) RotateKey(ctx context.Context) (ironpool.ResealResult, error) {
	if _, err := Authorize(ctx, OpKeyRotate); err != nil {
		return ironpool.ResealResult{}, err
	}
	return s.Store.Reseal(ctx)
}

// Bootstrap creates the first admin token when the database has none and
// returns it (nil when tokens exist already). Only one of several replicas
// starting on one empty database gets it.
func (s *Service) Bootstrap(ctx context.Context) (*ironpool.Token, error) {
	t, err := NewToken(ironpool.RoleAdmin, nil, "bootstrap admin token", ironpool.DefaultPriority)
	if err != nil {
		return nil, err
	}
	ctx = ironpool.NewContextWithActor(ctx, ironpool.System)
	ok, err := s.Store.CreateFirstToken(ctx, t)
	if err != nil || !ok {
		return nil, err
	}
	return t, nil
}
