package ironpool

// StoreReadiness is what a store reports for /readyz: the schema the
// database has against the one this binary needs, and who holds a
// background lease.
type StoreReadiness struct {
	// Schema is the highest migration applied in the database; Want is the
	// newest this binary carries.
	Schema, Want int64
	// LeaseHolder holds the lease asked about, and LeaseFresh says its
	// expiry is still ahead: some replica is running that loop.
	LeaseHolder string
	LeaseFresh  bool
}
