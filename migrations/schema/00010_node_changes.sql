-- +goose Up
-- The free-node index (internal/freeindex) keeps each replica's free nodes
-- in memory. On PostgreSQL every replica must hear of every node another
-- one changed: these statement triggers NOTIFY the changed ids on channel
-- ironpool_nodes ("schema:id,id,..."; "schema:*" past 500 rows, "schema:r"
-- for reservations), delivered when the change commits. SQLite has one
-- writer, whose connection reports changes itself (a pre-update hook), so
-- it has nothing here. The triggers stay quiet unless a replica that keeps
-- the index (postgres.Options.FreeIndex) has set the setting
-- node_notify = on: the index is off by default on PostgreSQL, where it
-- was measured slower (docs/PERFORMANCE.md), and NOTIFY serializes commits.
SELECT 1;
-- +ironpool postgres
-- +goose StatementBegin
CREATE FUNCTION ironpool_nodes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    ids text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM settings WHERE name = 'node_notify' AND value = 'on') THEN
        RETURN NULL;
    END IF;
    SELECT count(*), string_agg(id::text, ',') INTO n, ids FROM (SELECT id FROM changed LIMIT 501) c;
    IF n > 500 THEN
        ids := '*';
    END IF;
    IF n > 0 THEN
        PERFORM pg_notify('ironpool_nodes', current_schema() || ':' || ids);
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION ironpool_reservations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM settings WHERE name = 'node_notify' AND value = 'on') THEN
        PERFORM pg_notify('ironpool_nodes', current_schema() || ':r');
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER nodes_inserted AFTER INSERT ON nodes REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ironpool_nodes_changed();
CREATE TRIGGER nodes_updated AFTER UPDATE ON nodes REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ironpool_nodes_changed();
CREATE TRIGGER nodes_deleted AFTER DELETE ON nodes REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ironpool_nodes_changed();
CREATE TRIGGER reservations_changed AFTER INSERT OR UPDATE OR DELETE ON reservations
    FOR EACH STATEMENT EXECUTE FUNCTION ironpool_reservations_changed();
CREATE TRIGGER reservation_nodes_changed AFTER INSERT OR UPDATE OR DELETE ON reservation_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION ironpool_reservations_changed();
-- +ironpool end

-- +goose Down
SELECT 1;
-- +ironpool postgres
DROP TRIGGER reservation_nodes_changed ON reservation_nodes;
DROP TRIGGER reservations_changed ON reservations;
DROP TRIGGER nodes_deleted ON nodes;
DROP TRIGGER nodes_updated ON nodes;
DROP TRIGGER nodes_inserted ON nodes;
DROP FUNCTION ironpool_reservations_changed();
DROP FUNCTION ironpool_nodes_changed();
-- +ironpool end
