-- +goose Up
-- Quotas cap what one owner, or every owner matching a pattern ("ci-*"),
-- may hold (docs/SCHEDULING.md). Zero in a limit column means "no limit".
-- max_flavor is a JSON object flavor → max nodes; max_node_ms is the
-- node-hours budget in node-milliseconds (exact integers on both engines)
-- over a rolling window of per_ms. The allocation transaction locks the
-- rows of the quotas that apply (FOR UPDATE on PostgreSQL), so replicas
-- allocating for one quota at once are serialized on its row.
CREATE TABLE quotas (
    owner        TEXT PRIMARY KEY,
    max_nodes    INTEGER NOT NULL DEFAULT 0,
    max_flavor   TEXT NOT NULL DEFAULT '{}',
    max_lease_ms BIGINT NOT NULL DEFAULT 0,
    max_node_ms  BIGINT NOT NULL DEFAULT 0,
    per_ms       BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- usage_log is one row per item of an allocation that held nodes: who, which
-- flavor, how many nodes, from when to when (end_ms 0 while it holds
-- them). Node-hours quotas and `ironpool usage` read it; the allocation's
-- own created_at is when it was asked for, which for a queued request is
-- not when it began to hold nodes.
CREATE TABLE usage_log (
    id            @ID@,
    allocation_id TEXT NOT NULL,
    owner         TEXT NOT NULL,
    flavor        TEXT NOT NULL DEFAULT '',
    nodes         INTEGER NOT NULL,
    start_ms      BIGINT NOT NULL,
    end_ms        BIGINT NOT NULL DEFAULT 0
);
-- (allocation_id, end_ms), not allocation_id alone: closing an allocation's
-- open rows (end_ms = 0) must not pick usage_end and walk every live hold
-- (internal/sqlite TestEndUsagePlan).
CREATE INDEX usage_allocation ON usage_log (allocation_id, end_ms);
CREATE INDEX usage_end ON usage_log (end_ms, owner);
CREATE INDEX usage_owner ON usage_log (owner, end_ms);

-- The allocations active at the upgrade hold nodes already: they get
-- their usage rows here (from their allocation.created event, else their
-- creation), so an owner's quota counts them from the first request after
-- the upgrade. Their flavor is not known to SQL ('' : they count against
-- max_nodes and node-hours, not max_flavor); holds that ended before the
-- upgrade are not carried over.
INSERT INTO usage_log (allocation_id, owner, flavor, nodes, start_ms)
SELECT a.id, a.owner, '', COUNT(n.id),
    COALESCE((SELECT MIN(e.time) FROM events e WHERE e.subject = 'allocation/' || a.id
        AND e.action = 'allocation.created'), a.created_at)
FROM allocations a JOIN nodes n ON n.allocation_id = a.id
WHERE a.state = 'active'
GROUP BY a.id, a.owner, a.created_at;

-- priority orders the queue (higher first, then arrival, with aging). A
-- token carries one (0..9, default 5) and every request it makes takes it.
ALTER TABLE tokens ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;
ALTER TABLE allocations ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;

-- +goose Down
ALTER TABLE allocations DROP COLUMN priority;
ALTER TABLE tokens DROP COLUMN priority;
DROP TABLE usage_log;
DROP TABLE quotas;
