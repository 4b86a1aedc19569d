package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultChannel is the channel ironpool announces store changes on when the
// deployment names no other. Channels are per database, not per schema, so
// two deployments sharing a database should pick different ones (or accept
// waking each other up, which is harmless).
const DefaultChannel = "ironpool_changed"

// Execer is what Notify needs: *sql.DB, *sql.Tx and *sql.Conn all have it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Notify wakes every listener on channel. Run inside a transaction, the
// notification is delivered only if and when that transaction commits, so
// listeners never look for a change that is not visible yet; run on a
// *sql.DB it is delivered at once. Notifications carry no payload: a
// listener re-reads the state it cares about.
func Notify(ctx context.Context, db Execer, channel string) error {
	if _, err := db.ExecContext(ctx, `SELECT pg_notify($1, '')`, channel); err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}

// Listen calls fn for every notification on channel until ctx ends, and
// returns ctx's error then. It holds its own connection (LISTEN needs one
// session for as long as it listens, which a database/sql pool cannot
// promise) and reconnects with backoff whenever the connection is lost.
//
// fn is also called each time the connection is (re)established, because
// notifications sent while it was down are lost: the caller must treat a
// call as "something may have changed, look again", never as "exactly one
// change". fn runs on Listen's goroutine, so it should only signal (a
// non-blocking send on a buffered channel, say) and return. Typical use:
//
//	go postgres.Listen(ctx, dsn, postgres.DefaultChannel, svc.Wake)
func Listen(ctx context.Context, dsn, channel string, fn func()) error {
	return ListenPayload(ctx, dsn, channel, func(string) { fn() })
}

// ListenPayload is Listen for channels whose notifications carry a
// payload: fn receives it, or "" on each (re)connect, when notifications
// may have been lost.
func ListenPayload(ctx context.Context, dsn, channel string, fn func(payload string)) error {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		started := time.Now()
		err := listenOnce(ctx, dsn, channel, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(started) > maxBackoff {
			backoff = minBackoff // it worked for a while: a fresh failure
		}
		// Never the DSN: it may hold a password.
		slog.Warn("postgres listener lost its connection; reconnecting", "channel", channel, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens and delivers notifications until the
// connection fails or ctx ends.
func listenOnce(ctx context.Context, dsn, channel string, fn func(string)) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	fn("") // whatever happened while we were not listening
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
