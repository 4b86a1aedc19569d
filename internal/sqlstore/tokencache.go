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

// TokenChannel is the PostgreSQL channel a revocation (or a flavor's
// deletion) is announced on, inside the transaction that makes it, so
// that every replica drops its cached tokens and flavors when (and only
// when) the change is visible.
const TokenChannel = "ironpool_tokens"

// tokenCache keeps live tokens by hash so that authenticating a request
// costs no query. Only live tokens are cached: an unknown or revoked secret
// is looked up every time, so nothing a revocation removes can linger here
// beyond TokenCacheBound.
type tokenCache = boundCache[*ironpool.Token]

// boundCache keeps rows read from the database, by key, for at most
// TokenCacheBound each, and is emptied at once by invalidate (the writing
// store's own change, or another replica's notification).
//
// gen guards against a lookup that read a row before a change and stores
// it after the invalidation: a lookup stores its result only if no
// invalidation happened since it began.
type boundCache[V any] struct {
	mu      sync.Mutex
	gen     uint64
	entries map[string]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	checked time.Time
}

// maxCachedTokens bounds a cache; past it the cache is emptied, which
// only costs the next lookups a query each.
const maxCachedTokens = 10000

func (c *boundCache[V]) get(key string, now time.Time) (V, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && now.Sub(e.checked) >= 0 && now.Sub(e.checked) < TokenCacheBound {
		return e.v, c.gen, true
	}
	var zero V
	return zero, c.gen, false
}

func (c *boundCache[V]) put(key string, v V, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // invalidated while the lookup ran: the row may be gone
	}
	if c.entries == nil || len(c.entries) >= maxCachedTokens {
		c.entries = map[string]cacheEntry[V]{}
	}
	c.entries[key] = cacheEntry[V]{v: v, checked: now}
}

func (c *boundCache[V]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

// cached reads key through c: a fresh entry, or read (whose result is
// kept if it succeeds); clone copies a value in and out, so callers
// cannot change the cached one.
func cached[V any](c *boundCache[V], key string, clone func(V) V, read func() (V, error)) (V, error) {
	now := time.Now()
	v, gen, ok := c.get(key, now)
	if ok {
		return clone(v), nil
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	c.put(key, clone(v), gen, now)
	return v, nil
}

// InvalidateTokens drops every cached token, so the next request of each
// reads its token again; the revoking store calls it itself (the other
// replicas, InvalidateCaches).
func (s *Store) InvalidateTokens() { s.tokens.invalidate() }

// cloneToken copies t so that callers cannot change the cached value.
func cloneToken(t *ironpool.Token) *ironpool.Token {
	c := *t
	c.Owners = append([]string(nil), t.Owners...)
	return &c
}

// findTokenCached is FindTokenByHash through the cache.
func (s *Store) findTokenCached(ctx context.Context, hash string) (*ironpool.Token, error) {
	return cached(&s.tokens, hash, cloneToken, func() (*ironpool.Token, error) { return s.findTokenByHash(ctx, hash) })
}

// InvalidateCaches drops every cached token and flavor. The server calls
// it when another replica announces a change on TokenChannel, and when its
// listener (re)connects, since notifications sent while it was away are
// lost.
func (s *Store) InvalidateCaches() {
	s.tokens.invalidate()
	s.flavors.invalidate()
}

// announceRevocation, inside the revoking (or flavor-deleting)
// transaction, tells the other replicas to drop their cached tokens and
// flavors once it commits.
func (s *Store) announceRevocation(ctx context.Context, tx *sql.Tx) error {
	if s.Dialect.Name != "postgres" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, '')`, TokenChannel)
	return err
}
