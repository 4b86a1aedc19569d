-- +goose Up
-- Values the store keeps about itself. key_check is a known text sealed
-- under the key the data's secrets are sealed with: a server given a key
-- that does not open it refuses to start, instead of failing on the first
-- password it reads.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
