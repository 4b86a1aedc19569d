-- +goose Up
-- topology is an allocation request's topology constraint as JSON ('' for
-- none), kept so that a queued request is served under the constraint it
-- was made with.
ALTER TABLE allocations ADD COLUMN topology TEXT NOT NULL DEFAULT '';
