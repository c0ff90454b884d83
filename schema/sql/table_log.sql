-- walrev's table log, on the SOURCE database (docs/history-store.md#the-table-log).
-- @schema@ is the history schema's name as a quoted identifier, @schema_literal@
-- the same name as a string literal, @publication@ the publication's name as a
-- string literal. Applied by `walrev setup` (superuser: event triggers);
-- every statement is idempotent.
--
-- Why: pgoutput says nothing about a table until its first row change, and
-- never anything about a partitioned table (publish_via_partition_root is
-- false: changes arrive under the leaf partitions). Replay needs to know
-- when a table began to exist (a table created and never written is empty,
-- not unknown) and which partitions made up a partitioned table at each
-- point (ATTACH, DETACH, DROP). Event triggers write that here, in the DDL's
-- own transaction; the table is published, so its rows reach walrev through
-- the slot in WAL order and are recorded like any row (in the checksum
-- chain), and replay reads them through the history store's view
-- table_event. Only walrev writes it: its owner is setup's role, PUBLIC
-- has no privilege on it, and the trigger functions are SECURITY DEFINER.

CREATE TABLE IF NOT EXISTS @schema@.table_log (
    id       bigserial PRIMARY KEY,
    relid    oid NOT NULL,
    event    text NOT NULL,          -- create | alter | drop | seed | unlogged
    nspname  text NOT NULL,
    relname  text NOT NULL,
    relkind  text,                   -- r ordinary, p partitioned; NULL for drop
    parent   oid,                    -- the partition parent, NULL when none
    columns  jsonb                   -- [[attnum, name, type oid, typmod, type, is key, generated], ...]
);
-- INHERITS parents (not partitioning), in the table's inheritance order;
-- NULL when none. Added after the first format: an older log gains it here.
ALTER TABLE @schema@.table_log ADD COLUMN IF NOT EXISTS inherits oid[];
CREATE INDEX IF NOT EXISTS table_log_relid_idx ON @schema@.table_log (relid, id);
REVOKE ALL ON @schema@.table_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE @schema@.table_log_id_seq FROM PUBLIC;

-- Erasure requests (`walrev erase --apply`, docs/cli.md#walrev-erase): one row
-- per request, inserted by walrev's role only (PUBLIC has no privilege). Its
-- rows are history like the table log's: the revision that records one is
-- the erase revision (who: its context and the server's view of the session;
-- what: the table, key and columns; why: the reason; never a value), and when
-- the history sink records it, it erases those values from the history
-- before that revision in the same history transaction.
CREATE TABLE IF NOT EXISTS @schema@.erasure_log (
    id           bigserial PRIMARY KEY,
    relid        oid NOT NULL,           -- the table, as the history knows it
    nspname      text NOT NULL,
    relname      text NOT NULL,
    key          text NOT NULL,          -- the object's key, as the history stores it
    col_ids      smallint[] NOT NULL,    -- the columns whose values are erased
    col_names    text[] NOT NULL,
    reason       text NOT NULL,
    requested_by text NOT NULL DEFAULT session_user,
    requested_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON @schema@.erasure_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE @schema@.erasure_log_id_seq FROM PUBLIC;

-- Log table t as it is now when that differs from its last row here (any
-- table the command touched: created, altered, attached or detached).
-- Tables of the history schema, temporary tables (logical
-- decoding cannot see them) and tables the publication does not cover are
-- left out.
CREATE OR REPLACE FUNCTION @schema@.log_table(t oid, tag text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    c    record;
    cur  record;
    last record;
    cols jsonb;
    par  oid;
    inh  oid[];
BEGIN
    SELECT cl.oid, n.nspname::text AS nspname, cl.relname::text AS relname, cl.relkind::text AS relkind,
           cl.relpersistence, cl.relispartition, cl.relnamespace
      INTO c FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE cl.oid = t;
    -- Unlogged tables are logged too (event 'unlogged', again when renamed):
    -- logical decoding sees none of their rows, and replay must name them
    -- unlogged under every name they had, not 'unknown table' once renamed
    -- (and an INHERITS parent's snapshot must name an unlogged child).
    IF c.oid IS NULL OR c.relkind NOT IN ('r', 'p') OR c.relpersistence NOT IN ('p', 'u')
       OR c.nspname = @schema_literal@ THEN
        RETURN;
    END IF;
    -- published: FOR ALL TABLES, or the table or an ancestor (its schema or itself) is in the publication
    IF NOT EXISTS (
        SELECT 1 FROM pg_publication p
         WHERE p.pubname = @publication@
           AND (p.puballtables
                OR EXISTS (SELECT 1 FROM pg_publication_rel pr
                            WHERE pr.prpubid = p.oid
                              AND pr.prrelid IN (SELECT t UNION ALL SELECT relid FROM pg_partition_ancestors(t)))
                OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_class a ON a.relnamespace = pn.pnnspid
                            WHERE pn.pnpubid = p.oid
                              AND a.oid IN (SELECT t UNION ALL SELECT relid FROM pg_partition_ancestors(t))))) THEN
        RETURN;
    END IF;
    SELECT i.inhparent INTO par FROM pg_inherits i WHERE i.inhrelid = t AND c.relispartition;
    -- INHERITS parents: SELECT * FROM a parent shows its children's rows too
    inh := NULLIF(ARRAY(SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = t AND NOT c.relispartition
                        ORDER BY i.inhseqno), '{}');
    SELECT coalesce(jsonb_agg(jsonb_build_array(a.attnum, a.attname, a.atttypid::bigint, a.atttypmod,
                                                format_type(a.atttypid, a.atttypmod),
                                                coalesce(a.attnum = ANY (pk.indkey::int2[]), false),
                                                a.attgenerated <> '')
                              ORDER BY a.attnum), '[]'::jsonb)
      INTO cols
      FROM pg_attribute a
      LEFT JOIN pg_index pk ON pk.indrelid = t AND pk.indisprimary
     WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped;
    SELECT l.* INTO last FROM @schema@.table_log l WHERE l.relid = t ORDER BY l.id DESC LIMIT 1;
    IF c.relpersistence = 'u' THEN
        -- Created UNLOGGED, or SET UNLOGGED: logical decoding sees none of its
        -- changes from here on, and replay must say so by name instead of
        -- answering with the rows it had (SET LOGGED logs it again; its
        -- history then begins anew with a baseline). The table_rewrite
        -- trigger's mark of a persistence change (the DDL capture leaves it
        -- for a table that is unlogged now) is spent here.
        PERFORM set_config('walrev.logged_' || t::text, '', true);
        -- (again when renamed, and when attached or detached: a partitioned
        -- parent's replay must name it while it is a partition)
        IF last.id IS NULL OR last.event NOT IN ('drop', 'unlogged') OR last.inherits IS DISTINCT FROM inh
           OR last.parent IS DISTINCT FROM par
           OR last.nspname IS DISTINCT FROM c.nspname OR last.relname IS DISTINCT FROM c.relname THEN
            INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
            VALUES (t, 'unlogged', c.nspname, c.relname, c.relkind, par, cols, inh);
        END IF;
        RETURN;
    END IF;
    -- A table that predates the log is logged from its first ALTER on (as
    -- 'alter': it existed before): pgoutput describes a table again only with
    -- its next row change, and until then replay takes its columns from here.
    IF last.id IS NOT NULL AND last.event NOT IN ('drop', 'unlogged') AND last.nspname = c.nspname AND last.relname = c.relname
       AND last.relkind = c.relkind AND last.parent IS NOT DISTINCT FROM par AND last.columns = cols
       AND last.inherits IS NOT DISTINCT FROM inh THEN
        RETURN;
    END IF;
    INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
    VALUES (t, CASE WHEN tag = 'seed' THEN 'seed' WHEN last.id IS NULL AND tag LIKE 'CREATE%' THEN 'create'
                    ELSE 'alter' END,
            c.nspname, c.relname, c.relkind, par, cols, inh);
END
$fn$;

-- ddl_command_end: every table a command touched, the tables below it now
-- (partitions and INHERITS children at any depth: a column added, renamed
-- or dropped there reaches them), its INHERITS parents (a parent that gains
-- its first child is logged, so replay knows its columns), and the tables
-- last logged below it (an ATTACH or DETACH names only the parent).
CREATE OR REPLACE FUNCTION @schema@.log_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t oid;
BEGIN
    FOR t IN
        WITH RECURSIVE cmd AS (SELECT DISTINCT objid FROM pg_event_trigger_ddl_commands()
                      WHERE classid = 'pg_class'::regclass AND object_type IN ('table', 'table column')),
             -- ALTER TYPE ... CASCADE changes the columns of the typed tables made OF it
             typed AS (SELECT c.oid FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.reloftype = d.objid
                        WHERE d.classid = 'pg_type'::regclass),
             below (relid) AS (SELECT objid FROM cmd UNION SELECT oid FROM typed
                               UNION SELECT i.inhrelid FROM pg_inherits i JOIN below b ON i.inhparent = b.relid)
        SELECT relid FROM below
        UNION
        SELECT i.inhparent FROM pg_inherits i JOIN cmd ON i.inhrelid = cmd.objid
        UNION
        SELECT l.relid FROM (SELECT DISTINCT ON (relid) relid, parent, inherits, event FROM @schema@.table_log
                              ORDER BY relid, id DESC) l JOIN cmd ON l.parent = cmd.objid OR cmd.objid = ANY (l.inherits)
         WHERE l.event <> 'drop'
        ORDER BY 1
    LOOP
        PERFORM @schema@.log_table(t, tg_tag);
    END LOOP;
END
$fn$;

-- sql_drop: a dropped table that the log knows (its rows leave its parent),
-- and each remaining table whose columns the command dropped: a DROP
-- DOMAIN, TYPE, FUNCTION, COLLATION or TABLE (a row type) ... CASCADE drops
-- columns no ALTER TABLE names, and replay takes a table's columns from
-- here until its next row change (a partitioned table's always).
CREATE OR REPLACE FUNCTION @schema@.log_drops() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    d record;
    t oid;
BEGIN
    -- an ALTER TABLE's own drops are logged at its ddl_command_end (log_tables)
    IF tg_tag <> 'ALTER TABLE' THEN
        FOR t IN SELECT DISTINCT o.objid FROM pg_event_trigger_dropped_objects() o
                  WHERE o.classid = 'pg_class'::regclass AND o.object_type = 'table column' AND NOT o.is_temporary
                  ORDER BY 1 LOOP
            PERFORM @schema@.log_table(t, tg_tag);
        END LOOP;
    END IF;
    FOR d IN SELECT DISTINCT o.objid, o.schema_name, o.object_name FROM pg_event_trigger_dropped_objects() o
              WHERE o.classid = 'pg_class'::regclass AND o.object_type = 'table' AND NOT o.is_temporary
    LOOP
        IF EXISTS (SELECT 1 FROM (SELECT l.event FROM @schema@.table_log l WHERE l.relid = d.objid
                                   ORDER BY l.id DESC LIMIT 1) x WHERE x.event <> 'drop') THEN
            INSERT INTO @schema@.table_log (relid, event, nspname, relname)
            VALUES (d.objid, 'drop', d.schema_name, d.object_name);
        END IF;
    END LOOP;
END
$fn$;

-- The partitioned tables, partitions, INHERITS parents and children, and
-- unlogged tables that exist now (idempotent: a table is logged only when it differs from its
-- last row).
CREATE OR REPLACE FUNCTION @schema@.log_seed() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t oid;
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c
              WHERE c.relkind = 'p' OR c.relispartition
                 OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
                 OR (c.relpersistence = 'u' AND c.relkind IN ('r', 'p'))
              ORDER BY c.oid LOOP
        PERFORM @schema@.log_table(t, 'seed');
    END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION @schema@.log_table(oid, text), @schema@.log_seed() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS walrev_log_tables;
CREATE EVENT TRIGGER walrev_log_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER INDEX', 'ALTER TYPE')
    EXECUTE FUNCTION @schema@.log_tables();
-- CREATE SCHEMA s CREATE TABLE t ... creates its tables under the tag CREATE
-- SCHEMA (PostgreSQL's publication.sql: pubme.t0, never written, was an
-- unknown table). Its own trigger, named to fire after setup's
-- walrev_publish_schema (event triggers fire in name order), which adds the
-- new schema to a FOR TABLES IN SCHEMA publication: log_table logs only
-- what the publication covers.
DROP EVENT TRIGGER IF EXISTS walrev_schema_tables;
CREATE EVENT TRIGGER walrev_schema_tables ON ddl_command_end
    WHEN TAG IN ('CREATE SCHEMA')
    EXECUTE FUNCTION @schema@.log_tables();
DROP EVENT TRIGGER IF EXISTS walrev_log_drops;
CREATE EVENT TRIGGER walrev_log_drops ON sql_drop
    EXECUTE FUNCTION @schema@.log_drops();
