package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestUniqueColumn checks the constraint → column table against the names
// PostgreSQL gives the schema's constraints; it needs no server.
func TestUniqueColumn(t *testing.T) {
	for _, tc := range []struct {
		constraint, table, want string
	}{
		{"nodes_name_key", "nodes", "name"},
		{"nodes_uuid_key", "nodes", "uuid"},
		{"nodes_ironic", "nodes", "ironic_uuid"},
		{"ports_pkey", "ports", "mac"},
		{"flavors_pkey", "flavors", "name"},
		{"tokens_hash_key", "tokens", "hash"},
		{"allocations_id_key", "allocations", "id"},
		{"widgets_colour_key", "widgets", "colour"}, // not in the table: derived
	} {
		err := fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505", ConstraintName: tc.constraint, TableName: tc.table})
		col, ok := uniqueColumn(err)
		if !ok || col != tc.want {
			t.Errorf("uniqueColumn(%s) = %q, %v; want %q", tc.constraint, col, ok, tc.want)
		}
	}
	for _, err := range []error{nil, errors.New("unique"), &pgconn.PgError{Code: "23503", ConstraintName: "ports_node_id_fkey"}} {
		if col, ok := uniqueColumn(err); ok {
			t.Errorf("uniqueColumn(%v) = %q, true; want false", err, col)
		}
	}
}

// TestRetryable checks that only the conflicts PostgreSQL resolves by
// aborting a transaction are retried.
func TestRetryable(t *testing.T) {
	for code, want := range map[string]bool{"40001": true, "40P01": true, "23505": false, "57014": false} {
		if got := retryable(fmt.Errorf("tx: %w", &pgconn.PgError{Code: code})); got != want {
			t.Errorf("retryable(%s) = %v, want %v", code, got, want)
		}
	}
	if retryable(errors.New("connection reset")) {
		t.Error("a plain error is retryable")
	}
}
