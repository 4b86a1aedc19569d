-- +goose Up
-- waiter_seen_at is when a client last waited on a queued request (its
-- long-poll began, renewed or ended). A queued request whose waiter is gone
-- longer than the grace period is cancelled, so a CI job killed while
-- queued does not get its nodes served, hours later, to nobody.
ALTER TABLE allocations ADD COLUMN waiter_seen_at BIGINT NOT NULL DEFAULT 0;
