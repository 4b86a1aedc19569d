package server_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/sqlstore"
)

// TestRevokedTokenRefusedOnEveryReplica: a token used on three replicas
// (so each holds it in its token cache) is revoked through one of them.
// Every replica must refuse it well before sqlstore.TokenCacheBound, which
// only the revocation's notification achieves: without it, the replicas
// that did not revoke would accept it until their cached copy is a second
// old.
func TestRevokedTokenRefusedOnEveryReplica(t *testing.T) {
	_, cs := replicas(t, 3)
	ctx := context.Background()
	var tok ironpool.Token
	if _, err := cs[0].Do(ctx, "POST", "/v1/tokens", map[string]any{"role": "operator"}, &tok); err != nil {
		t.Fatal(err)
	}
	users := make([]*client.Client, len(cs))
	for i, c := range cs {
		u, err := client.New(c.BaseURL, tok.Secret, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		users[i] = u
	}
	// Warm every replica's cache just before the revocation, so a cached
	// copy would stay fresh for about a second after it.
	for _, u := range users {
		if _, err := u.ListNodes(ctx, url.Values{}); err != nil {
			t.Fatalf("live token refused on %s: %v", u.BaseURL, err)
		}
	}
	if _, err := cs[0].Do(ctx, "DELETE", "/v1/tokens/"+tok.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// The revoking replica refuses the very next request.
	if _, err := users[0].ListNodes(ctx, url.Values{}); ironpool.ErrorCode(err) != ironpool.EUNAUTHORIZED {
		t.Fatalf("revoking replica: next request got %v, want unauthorized", err)
	}
	// The others refuse as soon as the notification arrives.
	seenEverywhere(t, revoked, users[1:], "the revoked token", func(u *client.Client) error {
		_, err := u.ListNodes(ctx, url.Values{})
		return err
	}, ironpool.EUNAUTHORIZED)
}

// seenEverywhere waits until try, on each of cs, fails with code, and
// fails the test if any still succeeds a quarter of
// sqlstore.TokenCacheBound after since: notifications take milliseconds,
// so a quarter of the bound is far above that and far below the bound
// that covers a lost one.
func seenEverywhere(t *testing.T, since time.Time, cs []*client.Client, what string, try func(*client.Client) error, code string) {
	t.Helper()
	limit := sqlstore.TokenCacheBound / 4
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := try(c)
				if ironpool.ErrorCode(err) == code {
					t.Logf("replica %d refused %s %s after the change", i+1, what, time.Since(since).Round(time.Millisecond))
					return
				}
				if err != nil {
					t.Errorf("replica %d: %v", i+1, err)
					return
				}
				if time.Since(since) > limit {
					t.Errorf("replica %d still accepts %s %s after the change", i+1, what, limit)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// TestDeletedFlavorGoneOnEveryReplica: a flavor read on three replicas
// (so each holds it in its flavor cache) is deleted through one of them;
// each must stop finding it at once, which without the deletion's
// notification the other two would not do for a second.
func TestDeletedFlavorGoneOnEveryReplica(t *testing.T) {
	_, cs := replicas(t, 3)
	ctx := context.Background()
	flavor := map[string]any{"name": "gpu", "cpus": 8, "traits": []string{"CUSTOM_GPU"}}
	if _, err := cs[0].Do(ctx, "POST", "/v1/flavors", flavor, nil); err != nil {
		t.Fatal(err)
	}
	show := func(c *client.Client) error {
		_, err := c.Do(ctx, "GET", "/v1/flavors/gpu", nil, nil)
		return err
	}
	for _, c := range cs {
		if err := show(c); err != nil {
			t.Fatalf("flavor not found on %s: %v", c.BaseURL, err)
		}
	}
	if _, err := cs[0].Do(ctx, "DELETE", "/v1/flavors/gpu", nil, nil); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := show(cs[0]); ironpool.ErrorCode(err) != ironpool.ENOTFOUND {
		t.Fatalf("deleting replica: next read got %v, want not found", err)
	}
	seenEverywhere(t, deleted, cs[1:], "the deleted flavor", show, ironpool.ENOTFOUND)
}

// TestTokenCacheBoundWithoutNotification: two stores on one PostgreSQL
// schema with no listener between them (a lost notification). A token the
// second store has cached is refused there within TokenCacheBound of its
// revocation through the first: the backstop for lost notifications.
func TestTokenCacheBoundWithoutNotification(t *testing.T) {
	dsn := pgtest.Schema(t)
	ring, err := secret.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ironpool.NewContextWithActor(context.Background(), ironpool.System)
	var st [2]*sqlstore.Store
	for i := range st {
		s, err := postgres.Open(ctx, dsn, ring)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st[i] = s
	}
	if err := st[0].CreateToken(ctx, &ironpool.Token{ID: "t1", Role: ironpool.RoleOperator, Owners: []string{}, Hash: "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st[1].FindTokenByHash(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if err := st[0].RevokeToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := st[1].FindTokenByHash(ctx, "h1")
		if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revoked) > sqlstore.TokenCacheBound+100*time.Millisecond {
			t.Fatalf("revoked token still found %s after the revocation; the bound is %s", time.Since(revoked), sqlstore.TokenCacheBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(revoked); waited > sqlstore.TokenCacheBound+100*time.Millisecond {
		t.Fatalf("refused only after %s", waited)
	}
}
