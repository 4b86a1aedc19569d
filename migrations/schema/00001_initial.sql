-- +goose Up
CREATE TABLE nodes (
    id                 @ID@,
    uuid               TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL UNIQUE,
    pool               TEXT NOT NULL,
    state              TEXT NOT NULL,
    cpus               INTEGER NOT NULL DEFAULT 0,
    memory_mb          BIGINT NOT NULL DEFAULT 0,
    local_gb           BIGINT NOT NULL DEFAULT 0,
    cpu_arch           TEXT NOT NULL DEFAULT '',
    resource_class     TEXT NOT NULL DEFAULT '',
    -- traits as ",A,B," so a LIKE '%,A,%' filter works on both engines
    traits             TEXT NOT NULL DEFAULT '',
    macs               TEXT NOT NULL DEFAULT '[]',
    bmc_address        TEXT NOT NULL,
    bmc_username       TEXT NOT NULL DEFAULT '',
    -- sealed (AES-256-GCM, key id tagged, bound to uuid and column)
    bmc_password       TEXT NOT NULL DEFAULT '',
    fields             TEXT NOT NULL DEFAULT '{}',
    maintenance_reason TEXT NOT NULL DEFAULT '',
    last_error         TEXT NOT NULL DEFAULT '',
    allocation_id      TEXT,
    owner              TEXT NOT NULL DEFAULT '',
    ironic_uuid        TEXT,
    ironic_endpoint    TEXT NOT NULL DEFAULT '',
    managed_by         TEXT NOT NULL DEFAULT '',
    provision_state    TEXT NOT NULL DEFAULT '',
    power_state        TEXT NOT NULL DEFAULT '',
    pending            TEXT NOT NULL DEFAULT '',
    last_allocated_at  BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- The best-fit scan: free nodes in (cpus, memory, disk, least recently
-- allocated) order, so a candidate query reads only the rows it returns.
CREATE INDEX nodes_fit ON nodes (state, cpus, memory_mb, local_gb, last_allocated_at, id);
CREATE INDEX nodes_allocation ON nodes (allocation_id);
CREATE UNIQUE INDEX nodes_ironic ON nodes (ironic_uuid) WHERE ironic_uuid IS NOT NULL;

-- One row per MAC: the unique key makes a MAC belong to one node only.
CREATE TABLE ports (
    mac     TEXT PRIMARY KEY,
    node_id BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE
);
CREATE INDEX ports_node ON ports (node_id);

CREATE TABLE flavors (
    name           TEXT PRIMARY KEY,
    description    TEXT NOT NULL DEFAULT '',
    cpus           INTEGER NOT NULL DEFAULT 0,
    memory_mb      BIGINT NOT NULL DEFAULT 0,
    local_gb       BIGINT NOT NULL DEFAULT 0,
    cpu_arch       TEXT NOT NULL DEFAULT '',
    resource_class TEXT NOT NULL DEFAULT '',
    traits         TEXT NOT NULL DEFAULT '',
    pool           TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL
);

CREATE TABLE allocations (
    -- seq orders the queue: first come, first served
    seq         @ID@,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    state       TEXT NOT NULL,
    mode        TEXT NOT NULL,
    items       TEXT NOT NULL,
    metadata    TEXT NOT NULL DEFAULT '{}',
    last_error  TEXT NOT NULL DEFAULT '',
    ttl_ms      BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    wait_until  BIGINT NOT NULL DEFAULT 0,
    released_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX allocations_state ON allocations (state, expires_at);
CREATE INDEX allocations_owner ON allocations (owner, state);

-- Which nodes an allocation held, kept after release for the record.
CREATE TABLE allocation_nodes (
    allocation_id TEXT NOT NULL,
    node_id       BIGINT NOT NULL,
    item          INTEGER NOT NULL,
    PRIMARY KEY (allocation_id, node_id)
);
CREATE INDEX allocation_nodes_node ON allocation_nodes (node_id);

CREATE TABLE events (
    id      @ID@,
    time    BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX events_subject ON events (subject, id);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    owners      TEXT NOT NULL DEFAULT '[]',
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);

-- Leases elect the one replica that runs each background loop.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE tokens;
DROP TABLE events;
DROP TABLE allocation_nodes;
DROP TABLE allocations;
DROP TABLE flavors;
DROP TABLE ports;
DROP TABLE nodes;
