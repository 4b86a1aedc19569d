-- +goose Up
-- waiter_seen_at is when a client last waited on a queued request (its
-- long-poll began, renewed or ended). A queued request whose waiter is gone
-- longer than the grace period is cancelled, so a CI job killed while
-- queued does not get its nodes served, hours later, to nobody.
ALTER TABLE allocations ADD COLUMN waiter_seen_at BIGINT NOT NULL DEFAULT 0;

-- requested_by and requested_role name the token that queued a request, so
-- that the events of serving it later (by the background loop) are
-- attributed to the requester, not to the system.
ALTER TABLE allocations ADD COLUMN requested_by TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN requested_role TEXT NOT NULL DEFAULT '';
