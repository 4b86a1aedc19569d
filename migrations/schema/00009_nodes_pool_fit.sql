-- +goose Up
-- nodes_pool_fit is nodes_fit led by the pool. A request for one pool
-- (--pool, as CI jobs and the bench use) read the free nodes of every pool
-- in best-fit order through nodes_fit and dropped those of other pools, so
-- 10,000 free nodes elsewhere tripled its cost (docs/PERFORMANCE.md,
-- "Requests for one pool"). Requests without a pool keep nodes_fit.
CREATE INDEX nodes_pool_fit ON nodes (pool, state, cpus, memory_mb, local_gb, last_allocated_at, id);

-- +goose Down
DROP INDEX nodes_pool_fit;
