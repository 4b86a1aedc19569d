package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
)

// TokenCacheBound is how long a token read from the database is trusted
// without reading it again. It bounds how long a revocation can go unseen
// on a replica that missed the revocation's notification (a PostgreSQL
// listener that lost its connection); within one process, and on replicas
// that hear the notification, a revocation takes effect at once.
const TokenCacheBound = time.Second

// TokenChannel is the PostgreSQL channel a revocation is announced on,
// inside the revoking transaction, so that every replica drops its cached
// tokens when (and only when) the revocation is visible.
const TokenChannel = "ironpool_tokens"

// tokenCache keeps live tokens by hash so that authenticating a request
// costs no query. Only live tokens are cached: an unknown or revoked secret
// is looked up every time, so nothing a revocation removes can linger here
// beyond TokenCacheBound.
//
// gen guards against a lookup that read a token before a revocation and
// stores it after the invalidation: a lookup stores its result only if no
// invalidation happened since it began.
type tokenCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]tokenEntry
}

type tokenEntry struct {
	t       *ironpool.Token
	checked time.Time
}

// maxCachedTokens bounds the cache; past it the cache is emptied, which
// only costs the next lookups a query each.
const maxCachedTokens = 10000

func (c *tokenCache) get(hash string, now time.Time) (*ironpool.Token, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if ok && now.Sub(e.checked) >= 0 && now.Sub(e.checked) < TokenCacheBound {
		return e.t, c.gen, true
	}
	return nil, c.gen, false
}

func (c *tokenCache) put(hash string, t *ironpool.Token, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // invalidated while the lookup ran: the token may be revoked
	}
	if c.entries == nil || len(c.entries) >= maxCachedTokens {
		c.entries = map[string]tokenEntry{}
	}
	c.entries[hash] = tokenEntry{t: t, checked: now}
}

func (c *tokenCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

// InvalidateTokens drops every cached token, so the next request of each
// reads its token again. The revoking store calls it itself; the server
// calls it when another replica announces a revocation on TokenChannel,
// and when its listener (re)connects, since notifications sent while it
// was away are lost.
func (s *Store) InvalidateTokens() { s.tokens.invalidate() }

// cloneToken copies t so that callers cannot change the cached value.
func cloneToken(t *ironpool.Token) *ironpool.Token {
	c := *t
	c.Owners = append([]string(nil), t.Owners...)
	return &c
}

// findTokenCached is FindTokenByHash through the cache.
func (s *Store) findTokenCached(ctx context.Context, hash string) (*ironpool.Token, error) {
	now := time.Now()
	if t, _, ok := s.tokens.get(hash, now); ok {
		return cloneToken(t), nil
	}
	_, gen, _ := s.tokens.get(hash, now)
	t, err := s.findTokenByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	s.tokens.put(hash, cloneToken(t), gen, now)
	return t, nil
}

// announceRevocation, inside the revoking transaction, tells the other
// replicas to drop their cached tokens once it commits.
func (s *Store) announceRevocation(ctx context.Context, tx *sql.Tx) error {
	if s.Dialect.Name != "postgres" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, '')`, TokenChannel)
	return err
}
