-- +goose Up
-- Backend nodes an operator deleted from the pool. Sync does not import
-- them again (a deleted node stays deleted) until asked to
-- (`ironpool ironic sync --include-ignored`) or until the node is added
-- back some other way (CreateNodes drops the mark).
CREATE TABLE ignored_backend_nodes (
    backend_id TEXT PRIMARY KEY,
    endpoint   TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE ignored_backend_nodes;
