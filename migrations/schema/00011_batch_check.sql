-- +goose Up
-- A PostgreSQL batch (internal/sqlstore, batch.go) sends its writes and
-- its COMMIT in one round trip, so a check on what a write did cannot wait
-- for Go: ironpool_check fails the statement, and so the transaction,
-- when ok is false, with message as the error. SQLite runs no batches.
SELECT 1;
-- +ironpool postgres
-- +goose StatementBegin
CREATE FUNCTION ironpool_check(ok boolean, message text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ok THEN
        RAISE EXCEPTION '%', message USING ERRCODE = 'check_violation';
    END IF;
    RETURN true;
END $$;
-- +goose StatementEnd
-- +ironpool end

-- +goose Down
SELECT 1;
-- +ironpool postgres
DROP FUNCTION ironpool_check(boolean, text);
-- +ironpool end
