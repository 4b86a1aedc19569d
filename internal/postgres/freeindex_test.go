package postgres_test

import (
	"context"
	"testing"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/postgres"
	"github.com/ironpool/ironpool/internal/postgres/pgtest"
	"github.com/ironpool/ironpool/internal/storetest"
	"github.com/ironpool/ironpool/internal/storetest/opener"
)

// TestFreeIndexReplicas runs one random history over three replicas of one
// schema at once: each replica's index hears of the others' writes only
// through the triggers' notifications, and after every round each must
// equal the database. A replica opened after the history must build the
// same index. (The index is off by default on PostgreSQL; this is the
// test of the mode that turns it on.)
func TestFreeIndexReplicas(t *testing.T) {
	dsn := pgtest.Schema(t)
	sealer := opener.MustSealer(t)
	var stores []ironpool.Store
	for range 3 {
		s, err := postgres.OpenWith(context.Background(), dsn, sealer, postgres.Options{FreeIndex: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	storetest.FreeIndexHistory(t, stores, 7, 10)
	late, err := postgres.OpenWith(context.Background(), dsn, sealer, postgres.Options{FreeIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := late.CheckFreeIndex(context.Background(), nil); err != nil {
		t.Fatalf("replica opened after the history: %v", err)
	}
}

// TestStoreWithFreeIndex runs the whole contract suite on PostgreSQL with
// the free-node index on (Options.FreeIndex), the mode TestStore does not
// cover. It is what catches a pick claimed without its row lock: a
// booking committed while the claim waited was then not seen
// (Reservations/ConcurrentHolds).
func TestStoreWithFreeIndex(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, openWith(postgres.Options{FreeIndex: true}))
}
