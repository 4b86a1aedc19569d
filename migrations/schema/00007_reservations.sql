-- +goose Up
-- A reservation books nodes for a future window [start_at, end_at). It
-- names its nodes (reservation_nodes) at booking, so the promise is exact:
-- the booking transaction checks each node against live leases and other
-- pending reservations, cleaning gap included, and allocations leave the
-- nodes alone when their lease would run into the window.
CREATE TABLE reservations (
    seq           @ID@,
    id            TEXT NOT NULL UNIQUE,
    owner         TEXT NOT NULL,
    state         TEXT NOT NULL,
    mode          TEXT NOT NULL,
    pool          TEXT NOT NULL DEFAULT '',
    items         TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    start_at      BIGINT NOT NULL,
    end_at        BIGINT NOT NULL,
    gap_ms        BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    allocation_id TEXT NOT NULL DEFAULT '',
    last_error    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reservations_state ON reservations (state, start_at);
CREATE INDEX reservations_owner ON reservations (owner, state);

-- The nodes a reservation will use; rows stay after it ends, for the record.
CREATE TABLE reservation_nodes (
    reservation_id TEXT NOT NULL,
    node_id        BIGINT NOT NULL,
    item           INTEGER NOT NULL,
    PRIMARY KEY (reservation_id, node_id)
);
CREATE INDEX reservation_nodes_node ON reservation_nodes (node_id);

-- +goose Down
DROP TABLE reservation_nodes;
DROP TABLE reservations;
