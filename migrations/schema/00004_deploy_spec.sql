-- +goose Up
-- What a deploy of the allocation writes to its nodes (JSON of
-- ironpool.DeploySpec). Kept with the allocation so that the nodes' pending
-- deploy survives a restart or a leader change: any replica's reconciler
-- can carry it out.
ALTER TABLE allocations ADD COLUMN deploy_spec TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE allocations DROP COLUMN deploy_spec;
