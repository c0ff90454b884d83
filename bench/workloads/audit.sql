-- audit.sql — the generic row audit trigger that trigger-based history tools
-- boil down to: every INSERT/UPDATE/DELETE writes to_jsonb(OLD)/to_jsonb(NEW)
-- into one audit table. psql variable :tbls is a comma-separated table list.
CREATE TABLE IF NOT EXISTS audit_log (
    id        bigserial PRIMARY KEY,
    tbl       text NOT NULL,
    op        text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    txid      bigint NOT NULL DEFAULT txid_current(),
    who       text NOT NULL DEFAULT current_user,
    old_row   jsonb,
    new_row   jsonb
);
CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (tbl, op, old_row, new_row)
    VALUES (TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;
SELECT format('CREATE TRIGGER audit_row AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION audit_row()', t)
FROM unnest(string_to_array(:'tbls', ',')) t \gexec
