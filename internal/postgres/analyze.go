package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Planner statistics. PostgreSQL plans a statement from the statistics
// ANALYZE gathers, and autovacuum is what usually runs ANALYZE. Without
// them the planner guesses, and its guesses are wrong for ironpool's hot
// statements: measured on a fresh pool with autovacuum off (as on the CI
// machine), the batch's claim scanned every available node through
// nodes_fit instead of looking each one up by id, and the release read
// the whole nodes table for the nodes of its allocations, which halved
// the allocation rate (docs/PERFORMANCE.md, "Planner statistics").
// Autovacuum, where it is on, looks at a table once a minute, so a new
// or freshly imported pool runs its first minute unplanned too.
//
// So every replica checks, every analyzeEvery, what PostgreSQL's own
// analyze rule would do, and runs ANALYZE on the tables that need it:
//   - a table never analyzed, with rows written since it was created,
//     at once, whether or not autovacuum is on;
//   - with autovacuum off, a table whose writes since its last ANALYZE
//     exceed autovacuum's default threshold (50 rows and a tenth of the
//     table), at most once per analyzeGap, autovacuum's own pace.
//
// An advisory lock lets one replica at a time do it.
const (
	analyzeEvery = time.Second
	analyzeGap   = time.Minute
)

// analyzer is the state of one replica's statistics upkeep.
type analyzer struct {
	db     *sql.DB
	schema string
	lock   int64
	// autovacuum is read once, at start: it is a server setting.
	autovacuum bool
	// ran counts the tables analyzed, for tests.
	ran func(table string)
}

// startAnalyzer runs the upkeep until the returned stop is called.
func startAnalyzer(db *sql.DB, schema string, ran func(string)) (stop func(), err error) {
	a := &analyzer{db: db, schema: schema, lock: lockID("ironpool/analyze/" + schema), ran: ran}
	var av string
	if err := db.QueryRow(`SELECT current_setting('autovacuum')`).Scan(&av); err != nil {
		return nil, fmt.Errorf("read autovacuum: %w", err)
	}
	a.autovacuum = av == "on"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(analyzeEvery)
		defer t.Stop()
		for {
			// A failed pass (a database restarting) is tried again at
			// the next tick; nothing depends on it but speed.
			_ = a.pass(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }, nil
}

// pass analyzes the tables of the schema that need it, under the
// schema's advisory lock (another replica holding it does this pass).
func (a *analyzer) pass(ctx context.Context) error {
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var got bool
	if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, a.lock).Scan(&got); err != nil || !got {
		return err
	}
	// n_mod_since_analyze counts rows inserted, updated and deleted since
	// the last ANALYZE of either kind; the cumulative statistics reach
	// this view within about a second of each writer's commit.
	rows, err := tx.QueryContext(ctx, `SELECT relname, n_mod_since_analyze, n_live_tup,
			COALESCE(EXTRACT(EPOCH FROM now() - GREATEST(last_analyze, last_autoanalyze)), -1)
		FROM pg_stat_user_tables WHERE schemaname = $1`, a.schema)
	if err != nil {
		return err
	}
	var due []string
	for rows.Next() {
		var name string
		var mods, live int64
		var age float64
		if err := rows.Scan(&name, &mods, &live, &age); err != nil {
			rows.Close()
			return err
		}
		if a.due(mods, live, age) {
			due = append(due, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range due {
		if _, err := tx.ExecContext(ctx, `ANALYZE `+pgx.Identifier{a.schema, name}.Sanitize()); err != nil {
			return fmt.Errorf("analyze %s: %w", name, err)
		}
		if a.ran != nil {
			a.ran(name)
		}
	}
	return tx.Commit()
}

// due applies the rule above to one table: mods written since its last
// ANALYZE, live rows, and the seconds since that ANALYZE (negative:
// never analyzed).
func (a *analyzer) due(mods, live int64, age float64) bool {
	if mods == 0 {
		return false
	}
	if age < 0 {
		return true
	}
	return !a.autovacuum && age >= analyzeGap.Seconds() && mods > 50+live/10
}
