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
    event    text NOT NULL,          -- create | alter | drop | seed | unlogged | unpublished
    nspname  text NOT NULL,
    relname  text NOT NULL,
    relkind  text,                   -- r ordinary, p partitioned, f foreign (a member, event unlogged); NULL for drop
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

-- The catalog's state of table t now, as a table_log row (no id; event
-- 'unlogged' for an unlogged table, else NULL), or NULL when t is not logged:
-- tables of the history schema and temporary tables (logical decoding cannot
-- see them) are left out; whether the publication covers it is table_state's
-- to say. Reads the catalog only (see log_table).
CREATE OR REPLACE FUNCTION @schema@.catalog_state(t oid) RETURNS @schema@.table_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    c    record;
    s    @schema@.table_log;
BEGIN
    SELECT cl.oid, n.nspname::text AS nspname, cl.relname::text AS relname, cl.relkind::text AS relkind,
           cl.relpersistence, cl.relispartition, cl.relnamespace
      INTO c FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE cl.oid = t;
    -- Unlogged tables are logged too (event 'unlogged', again when renamed):
    -- logical decoding sees none of their rows, and replay must name them
    -- unlogged under every name they had, not 'unknown table' once renamed
    -- (and an INHERITS parent's snapshot must name an unlogged child).
    -- Foreign tables are logged too (event 'unlogged', relkind 'f'): their
    -- rows live on another server and no change of them ever reaches the
    -- slot, so a parent one is a partition or INHERITS child of must be
    -- named instead of leaving its rows out (PostgreSQL 15 lists a foreign
    -- partition in pg_publication_tables all the same), and its DETACH or
    -- NO INHERIT must be seen to end that.
    IF c.oid IS NULL OR c.relkind NOT IN ('r', 'p', 'f') OR c.relpersistence NOT IN ('p', 'u')
       OR c.nspname = @schema_literal@ THEN
        RETURN NULL;
    END IF;
    s.relid := t;
    s.nspname := c.nspname;
    s.relname := c.relname;
    s.relkind := c.relkind;
    -- Created UNLOGGED, or SET UNLOGGED: logical decoding sees none of its
    -- changes from here on, and replay must say so by name instead of
    -- answering with the rows it had (SET LOGGED logs it again; its history
    -- then begins anew with a baseline).
    s.event := CASE WHEN c.relpersistence = 'u' OR c.relkind = 'f' THEN 'unlogged' END;
    SELECT i.inhparent INTO s.parent FROM pg_inherits i WHERE i.inhrelid = t AND c.relispartition;
    -- INHERITS parents: SELECT * FROM a parent shows its children's rows too
    s.inherits := NULLIF(ARRAY(SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = t AND NOT c.relispartition
                               ORDER BY i.inhseqno), '{}');
    SELECT coalesce(jsonb_agg(jsonb_build_array(a.attnum, a.attname, a.atttypid::bigint, a.atttypmod,
                                                format_type(a.atttypid, a.atttypmod),
                                                coalesce(a.attnum = ANY (pk.indkey::int2[]), false),
                                                a.attgenerated <> '')
                              ORDER BY a.attnum), '[]'::jsonb)
      INTO s.columns
      FROM pg_attribute a
      LEFT JOIN pg_index pk ON pk.indrelid = t AND pk.indisprimary
     WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN s;
END
$fn$;

-- True when the publication is WITH (publish_via_partition_root = true) and
-- t's changes do not arrive under t's own relid: t is a partitioned table,
-- or a partition with an ancestor the publication covers (itself, through
-- its schema, or FOR ALL TABLES). Its changes then arrive under that root,
-- which walrev does not take apart, so t counts as not published: the
-- command that switches the option on logs it 'unpublished' (replay refuses
-- it by name), switching it off again is a rejoin (issue 13).
CREATE OR REPLACE FUNCTION @schema@.via_root(t oid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_publication p
         WHERE p.pubname = @publication@ AND p.pubviaroot
           AND ((SELECT c.relkind FROM pg_class c WHERE c.oid = t) = 'p'
                OR EXISTS (SELECT 1 FROM pg_partition_ancestors(t) a JOIN pg_class ac ON ac.oid = a.relid
                            WHERE a.relid <> t
                              AND (p.puballtables
                                   OR EXISTS (SELECT 1 FROM pg_publication_rel pr
                                               WHERE pr.prpubid = p.oid AND pr.prrelid = a.relid)
                                   OR EXISTS (SELECT 1 FROM pg_publication_namespace pn
                                               WHERE pn.pnpubid = p.oid AND pn.pnnspid = ac.relnamespace)))))
$fn$;

-- True when the publication sends only part of t's changes: it leaves out
-- an action (insert, update, delete or truncate), or lists t or an ancestor
-- with a row filter or a column list. A history built from part of the
-- changes would answer rows the table does not have, so t then counts as
-- not published: the ALTER PUBLICATION that makes it so logs it
-- 'unpublished', and the one that sends all of it again is a rejoin.
CREATE OR REPLACE FUNCTION @schema@.partly_published(t oid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_publication p
         WHERE p.pubname = @publication@
           AND (NOT (p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate)
                OR EXISTS (SELECT 1 FROM pg_publication_rel pr
                            WHERE pr.prpubid = p.oid
                              AND pr.prrelid IN (SELECT t UNION ALL SELECT relid FROM pg_partition_ancestors(t))
                              AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL))))
$fn$;

-- True when the publication covers t: FOR ALL TABLES, or the table or an
-- ancestor, itself or through its schema, is in it.
CREATE OR REPLACE FUNCTION @schema@.covered(t oid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_publication p
         WHERE p.pubname = @publication@
           AND (p.puballtables
                OR EXISTS (SELECT 1 FROM pg_publication_rel pr
                            WHERE pr.prpubid = p.oid
                              AND pr.prrelid IN (SELECT t UNION ALL SELECT relid FROM pg_partition_ancestors(t)))
                OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_class a ON a.relnamespace = pn.pnnspid
                            WHERE pn.pnpubid = p.oid
                              AND a.oid IN (SELECT t UNION ALL SELECT relid FROM pg_partition_ancestors(t)))))
$fn$;

-- catalog_state(t) when the publication covers t, t's changes arrive under
-- t (via_root) and all of them do (partly_published), else NULL.
CREATE OR REPLACE FUNCTION @schema@.table_state(t oid) RETURNS @schema@.table_log
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
BEGIN
    IF @schema@.via_root(t) OR @schema@.partly_published(t) OR NOT @schema@.covered(t) THEN
        RETURN NULL;
    END IF;
    RETURN @schema@.catalog_state(t);
END
$fn$;

-- The tables the publication covers now, as table_state counts them (an
-- ordinary or partitioned table, permanent or unlogged, outside the history
-- schema, that is in the publication itself or through an ancestor or its
-- schema; every table under FOR ALL TABLES; not one via_root or partly_published); '{}' when there is no such
-- publication (dropped or renamed). Reads the catalog only, and locks no
-- table: it runs inside the application's ATTACH, DETACH and SET SCHEMA
-- (note_published, log_tables), whose transaction would hold the locks to
-- its end. pg_partition_tree took an AccessShareLock on every partition of
-- every published partitioned table, so an ATTACH PARTITION waited for DDL
-- on any unrelated partition in another session, or deadlocked with it
-- (PostgreSQL's inherit.sql and updatable_views.sql beside triggers.sql and
-- foreign_key.sql in the parallel schedule: "deadlock detected"). The
-- partitions are read from pg_inherits instead, as pg_partition_tree finds
-- them (a partition detach-pending is no longer one). The publication's own
-- part of via_root and partly_published is read once, here, and the
-- per-table functions asked only where it lets them be true: this runs two
-- or three times in every ALTER PUBLICATION, and asking both of each of 570
-- tables made a call 100 ms where it is 11 ms (medians, FOR ALL TABLES).
CREATE OR REPLACE FUNCTION @schema@.published_now() RETURNS oid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
    -- a publication that leaves out an action sends part of every table
    -- (partly_published): it covers none
    WITH RECURSIVE pub AS (SELECT p.oid, p.puballtables, p.pubviaroot,
                                  EXISTS (SELECT 1 FROM pg_publication_rel pr
                                           WHERE pr.prpubid = p.oid AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL))
                                      AS filtered
                             FROM pg_publication p
                            WHERE p.pubname = @publication@ AND p.pubinsert AND p.pubupdate AND p.pubdelete
                              AND p.pubtruncate),
         direct AS (SELECT pr.prrelid AS o FROM pg_publication_rel pr JOIN pub ON pr.prpubid = pub.oid
                    UNION SELECT c.oid FROM pg_class c JOIN pg_publication_namespace pn ON pn.pnnspid = c.relnamespace
                                   JOIN pub ON pn.pnpubid = pub.oid
                     WHERE c.relkind IN ('r', 'p')
                    UNION SELECT c.oid FROM pg_class c, pub WHERE pub.puballtables AND c.relkind IN ('r', 'p')),
         tree (o) AS (SELECT d.o FROM direct d JOIN pg_class c ON c.oid = d.o AND c.relkind = 'p'
                      UNION SELECT i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.o
                       WHERE NOT i.inhdetachpending),
         covered AS (SELECT d.o FROM direct d UNION SELECT t.o FROM tree t)
    SELECT coalesce(array_agg(c.oid ORDER BY c.oid), '{}')
      FROM pub, covered x JOIN pg_class c ON c.oid = x.o JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u') AND n.nspname <> @schema_literal@
       AND NOT CASE WHEN pub.pubviaroot THEN @schema@.via_root(c.oid) ELSE false END
       AND NOT CASE WHEN pub.filtered THEN @schema@.partly_published(c.oid) ELSE false END
$fn$;

-- ddl_command_start of ALTER PUBLICATION, CREATE PUBLICATION (walrev's, made
-- again after a DROP PUBLICATION: '{}' then, and what it covers rejoins), and
-- of an ALTER TABLE that may
-- take a table out of the publication or bring it back (DETACH or ATTACH
-- PARTITION under a parent the publication names, SET SCHEMA out of or
-- into a published schema): the tables
-- covered before the command, for log_tables (and the DDL capture) at its
-- end, in a transaction-local setting. No read of the table log.
CREATE OR REPLACE FUNCTION @schema@.note_published() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
BEGIN
    IF tg_tag = 'ALTER TABLE' AND current_query() !~* '\m(detach|attach|set\s+schema)\M' THEN
        RETURN;
    END IF;
    PERFORM set_config('walrev.published_before', @schema@.published_now()::text, true);
    PERFORM set_config('walrev.viaroot_before',
                       coalesce((SELECT p.pubviaroot::text FROM pg_publication p WHERE p.pubname = @publication@), ''),
                       true);
    -- walrev's own tables the publication carries (add_own_tables keeps them there)
    PERFORM set_config('walrev.own_published_before',
                       coalesce((SELECT string_agg(pt.tablename, ',') FROM pg_publication_tables pt
                                  WHERE pt.pubname = @publication@ AND pt.schemaname = @schema_literal@), ''), true);
END
$fn$;

-- ddl_command_start of DROP PUBLICATION naming walrev's publication (the
-- user's: walrev never drops it): every table it covers leaves it, logged
-- 'unpublished' here, before the drop, as an ALTER PUBLICATION that left them
-- out would be; a CREATE PUBLICATION of the name later brings those it covers
-- back with their rows (publication_rejoined), so their history is exact
-- again from there, and replay refuses the others by name. Written here and
-- not at the command's end: pgoutput reads the slot's publications again at
-- the first change after the drop, and that change, decoded in a catalog
-- without the publication, would end the stream ("publication ... does not
-- exist"); before the drop the publication is there. (A change made between
-- the drop and the CREATE PUBLICATION ends the stream for good, PostgreSQL 15
-- cannot decode past it: the worker names that and its remedy.) The names
-- are read from the statement (ddl_command_start knows no objects): a
-- DROP PUBLICATION clause whose comma-separated names include ours, quoted
-- or not. A statement that names it otherwise is not seen; its table log
-- then misses the leave, which the worker names (a tracked table left the
-- publication unrecorded).
CREATE OR REPLACE FUNCTION @schema@.note_publication_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    m text[];
    n text;
    ours boolean := false;
    r record;
    s @schema@.table_log;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = @publication@) THEN
        RETURN;
    END IF;
    FOR m IN SELECT regexp_matches(current_query(),
                                   '\mDROP\s+PUBLICATION\s+(?:IF\s+EXISTS\s+)?((?:"(?:[^"]|"")*"|[^;"])*)', 'gi') LOOP
        FOREACH n IN ARRAY regexp_split_to_array(regexp_replace(m[1], '\s+(CASCADE|RESTRICT)\s*$', '', 'i'), ',') LOOP
            n := btrim(n);
            n := CASE WHEN n LIKE '"%"' THEN replace(substr(n, 2, length(n) - 2), '""', '"') ELSE lower(n) END;
            ours := ours OR n = @publication@;
        END LOOP;
    END LOOP;
    IF NOT ours THEN
        RETURN;
    END IF;
    FOR r IN SELECT u.o FROM unnest(@schema@.published_now()) u(o) ORDER BY 1 LOOP
        s := @schema@.catalog_state(r.o);
        CONTINUE WHEN s.relid IS NULL;
        INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
        VALUES (s.relid, 'unpublished', s.nspname, s.relname, s.relkind, s.parent, s.columns, s.inherits);
    END LOOP;
END
$fn$;

-- The tables that rejoined the publication in this command: covered now,
-- not before it (note_published), and last logged as 'unpublished' (they
-- were tracked, left, and logical decoding saw none of their changes
-- since), or never logged at all while the publication was WITH
-- (publish_via_partition_root = true) before the command (a partition
-- created under the option: via_root kept it out of the log). The one read of the table log by a trigger, only in a command
-- that changed what the publication covers, by the log's (relid, id) index
-- for those tables alone. '{}' when the command was not noted.
--
-- A table another transaction has written (it holds a RowExclusiveLock on
-- it: INSERT, UPDATE, DELETE, MERGE; a prepared one too) and not ended
-- cannot rejoin (without_writers true leaves it out; false lists only
-- those): logical decoding reads that transaction's changes in the catalog
-- of when they were made, when the table was out, and sends none of them,
-- and the rejoin's rows, read in this transaction, cannot see them either.
-- log_tables fails the command, naming it (leaving it 'unpublished' instead
-- would not last: the next ALTER TABLE of it, covered, logs it tracked).
-- (Before it took without_writers, it had no argument: that one goes, or a
-- call without one would be ambiguous.)
DROP FUNCTION IF EXISTS @schema@.publication_rejoined();
CREATE OR REPLACE FUNCTION @schema@.publication_rejoined(without_writers boolean DEFAULT true) RETURNS oid[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    before text := current_setting('walrev.published_before', true);
BEGIN
    IF before IS NULL OR before = '' THEN
        RETURN '{}';
    END IF;
    RETURN coalesce((SELECT array_agg(j.o ORDER BY j.o) FROM unnest(@schema@.published_now()) j(o)
                      WHERE j.o <> ALL (before::oid[])
                        AND coalesce((SELECT l.event FROM @schema@.table_log l WHERE l.relid = j.o
                                       ORDER BY l.id DESC LIMIT 1),
                                      -- never logged: a partition (or partitioned table) created
                                      -- while via_root hid it, back now (its rows with it)
                                      CASE WHEN current_setting('walrev.viaroot_before', true) = 'true'
                                                AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = j.o
                                                             AND (c.relispartition OR c.relkind = 'p'))
                                           THEN 'unpublished' END) = 'unpublished'
                        AND without_writers <> EXISTS (SELECT 1 FROM pg_locks l
                                                  WHERE l.locktype = 'relation' AND l.relation = j.o AND l.granted
                                                    AND l.mode = 'RowExclusiveLock'
                                                    AND l.pid IS DISTINCT FROM pg_backend_pid()
                                                    AND l.database = (SELECT d.oid FROM pg_database d
                                                                       WHERE d.datname = current_database()))), '{}');
END
$fn$;

-- Log table t as it is now (any table the command touched: created,
-- altered, attached or detached), as event tag when that is 'create' or
-- 'seed', else 'alter' ('unlogged' for an unlogged table).
-- Write-only: the event triggers run inside the application's DDL
-- transaction, and a read of table_log there would make two SERIALIZABLE
-- transactions doing DDL on unrelated tables read what the other writes
-- (PostgreSQL then aborts one with "could not serialize access"). So a row
-- may repeat the table's last one; readers skip those
-- (docs/history-store.md#the-table-log).
CREATE OR REPLACE FUNCTION @schema@.log_table(t oid, tag text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    s @schema@.table_log := @schema@.table_state(t);
BEGIN
    IF s.relid IS NULL THEN
        -- Made while the publication covers it but sends part of its changes
        -- (publish without every action, a row filter or a column list):
        -- logical decoding sends some (its inserts, say), and a history built
        -- from them would answer rows the table does not have, silently. It
        -- is born out ('unpublished', refused by name), and the command that
        -- sends all of it again is a rejoin, with its rows.
        IF tag = 'create' AND @schema@.partly_published(t) AND NOT @schema@.via_root(t) AND @schema@.covered(t) THEN
            s := @schema@.catalog_state(t);
            IF s.relid IS NOT NULL AND s.event IS NULL THEN
                INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
                VALUES (s.relid, 'unpublished', s.nspname, s.relname, s.relkind, s.parent, s.columns, s.inherits);
            END IF;
        END IF;
        RETURN;
    END IF;
    IF s.event = 'unlogged' THEN
        -- The table_rewrite trigger's mark of a persistence change (the DDL
        -- capture leaves it for a table that is unlogged now) is spent here.
        PERFORM set_config('walrev.logged_' || t::text, '', true);
    ELSE
        s.event := CASE WHEN tag IN ('create', 'seed') THEN tag ELSE 'alter' END;
    END IF;
    INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
    VALUES (s.relid, s.event, s.nspname, s.relname, s.relkind, s.parent, s.columns, s.inherits);
END
$fn$;

-- ddl_command_end: every table a command touched, the tables below it now
-- (partitions and INHERITS children at any depth: a column added, renamed
-- or dropped there reaches them), its INHERITS parents (a parent that gains
-- its first child is logged, so replay knows its columns), and the tables a
-- DETACH PARTITION took from it (the command names only the parent). A
-- table the command created is logged as 'create'. Reads the catalog only
-- (log_table says why).
CREATE OR REPLACE FUNCTION @schema@.log_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    r        record;
    s        @schema@.table_log;
    before   text := current_setting('walrev.published_before', true);
    now_pub  oid[];
    rejoined oid[] := '{}';
BEGIN
    -- A command note_published saw begin: the tables it took out of the
    -- publication are logged 'unpublished' (logical decoding sees none of
    -- their changes from here on, and replay refuses them by name until they
    -- rejoin); those it brought back after one are logged below like any
    -- table it touched, which ends that (the DDL capture, which fires first,
    -- has sent their rows: their history begins again here).
    IF before IS NOT NULL AND before <> '' THEN
        rejoined := @schema@.publication_rejoined();
        -- a rejoin no history could follow exactly: the command fails, by name
        FOR r IN SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY 1) AS names
                   FROM unnest(@schema@.publication_rejoined(false)) u(o)
                   JOIN pg_class c ON c.oid = u.o JOIN pg_namespace n ON n.oid = c.relnamespace
                 HAVING count(*) > 0 LOOP
            RAISE EXCEPTION 'walrev: table % cannot rejoin publication % while other transactions have written it and '
                            'not ended: logical decoding would send none of their changes', r.names, @publication@
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Run the command again once they have ended (pg_locks shows their RowExclusiveLock on it).';
        END LOOP;
        -- Tables the log last had below a rejoining table (a partition, an
        -- INHERITS child) that are no longer there: detached (or NO INHERIT)
        -- while both were out, which nothing logged (log_table logs only
        -- what the publication covers). Logged as they are now, or replay
        -- would take them for members still (and refuse the parent for them).
        IF rejoined <> '{}' THEN
            FOR r IN SELECT x.relid AS o, x.parent, x.inherits FROM (
                         SELECT DISTINCT ON (l.relid) l.relid, l.parent, l.inherits FROM @schema@.table_log l
                          WHERE l.relid IN (SELECT l2.relid FROM @schema@.table_log l2
                                             WHERE l2.parent = ANY (rejoined) OR l2.inherits && rejoined)
                          ORDER BY l.relid, l.id DESC) x
                      WHERE (x.parent = ANY (rejoined) OR x.inherits && rejoined) AND x.relid <> ALL (rejoined)
                      ORDER BY 1 LOOP
                s := @schema@.catalog_state(r.o);
                CONTINUE WHEN s.relid IS NULL OR (s.parent, s.inherits) IS NOT DISTINCT FROM (r.parent, r.inherits);
                IF @schema@.table_state(r.o) IS NOT NULL THEN
                    PERFORM @schema@.log_table(r.o, 'alter');
                ELSE
                    INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
                    VALUES (s.relid, coalesce(s.event, 'unpublished'), s.nspname, s.relname, s.relkind, s.parent,
                            s.columns, s.inherits);
                END IF;
            END LOOP;
        END IF;
        PERFORM set_config('walrev.published_before', '', true);
        now_pub := @schema@.published_now();
        FOR r IN SELECT b.o FROM unnest(before::oid[]) b(o) WHERE b.o <> ALL (now_pub) ORDER BY 1 LOOP
            s := @schema@.catalog_state(r.o);
            CONTINUE WHEN s.relid IS NULL;
            INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
            VALUES (s.relid, 'unpublished', s.nspname, s.relname, s.relkind, s.parent, s.columns, s.inherits);
        END LOOP;
    END IF;
    FOR r IN
        WITH RECURSIVE cmd AS (SELECT objid, bool_or(command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO',
                                                                      'CREATE FOREIGN TABLE'))
                                             AS created
                                 FROM pg_event_trigger_ddl_commands()
                                WHERE classid = 'pg_class'::regclass
                                  AND object_type IN ('table', 'table column', 'foreign table', 'foreign table column')
                                GROUP BY objid),
             -- ALTER TYPE ... CASCADE changes the columns of the typed tables made OF it
             typed AS (SELECT c.oid FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.reloftype = d.objid
                        WHERE d.classid = 'pg_type'::regclass),
             -- ALTER SCHEMA ... RENAME TO renames every table in it, and no
             -- row change need follow (PostgreSQL's namespace.sql:
             -- test_ns_schema_renamed.abc was an unknown table)
             renamed AS (SELECT c.oid FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.relnamespace = d.objid
                          WHERE d.classid = 'pg_namespace'::regclass AND d.command_tag = 'ALTER SCHEMA'
                            AND c.relkind IN ('r', 'p')),
             -- ALTER PUBLICATION ... ADD TABLE (or TABLES IN SCHEMA) of a partitioned
             -- table: it and its partitions join the publication, and replay takes the
             -- parent as the union of its partitions only from its log rows on (before,
             -- it was not tracked; issue 13). log_table skips other publications'. A
             -- table of its own needs none: its history begins with its first change
             -- or its baseline (backfill.whole_from).
             joined AS (SELECT c.oid FROM pg_event_trigger_ddl_commands() d
                          JOIN pg_publication_rel pr ON pr.oid = d.objid JOIN pg_class c ON c.oid = pr.prrelid
                         WHERE d.classid = 'pg_publication_rel'::regclass AND c.relkind = 'p'
                        UNION
                        SELECT c.oid FROM pg_event_trigger_ddl_commands() d
                          JOIN pg_publication_namespace pn ON pn.oid = d.objid
                          JOIN pg_class c ON c.relnamespace = pn.pnnspid
                         WHERE d.classid = 'pg_publication_namespace'::regclass AND c.relkind = 'p'),
             below (relid) AS (SELECT objid FROM cmd UNION SELECT oid FROM typed UNION SELECT oid FROM renamed
                               UNION SELECT oid FROM joined
                               UNION SELECT i.inhrelid FROM pg_inherits i JOIN below b ON i.inhparent = b.relid),
             -- A detached partition is no partition now, and this transaction
             -- (or a subtransaction of it) updated its pg_class row: a later
             -- transaction id than the top one's (age <= 0), and locked by
             -- this session, so no other transaction is altering it meanwhile.
             detached AS (SELECT c.oid FROM pg_class c
                           WHERE tg_tag = 'ALTER TABLE'
                             AND EXISTS (SELECT 1 FROM cmd JOIN pg_class p ON p.oid = cmd.objid WHERE p.relkind = 'p')
                             AND c.relkind IN ('r', 'p', 'f') AND NOT c.relispartition AND age(c.xmin) <= 0
                             AND c.oid IN (SELECT l.relation FROM pg_locks l
                                            WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid() AND l.granted
                                              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                                              AND l.mode IN ('ShareUpdateExclusiveLock', 'ShareRowExclusiveLock',
                                                             'ExclusiveLock', 'AccessExclusiveLock')))
        SELECT x.relid, bool_or(x.created) AS created FROM (
            SELECT objid AS relid, created FROM cmd
            UNION ALL SELECT relid, false FROM below
            UNION ALL SELECT i.inhparent, false FROM pg_inherits i JOIN cmd ON i.inhrelid = cmd.objid
            UNION ALL SELECT oid, false FROM detached
            UNION ALL SELECT u, false FROM unnest(rejoined) u) x
        GROUP BY x.relid ORDER BY 1
    LOOP
        PERFORM @schema@.log_table(r.relid, CASE WHEN r.created THEN 'create' ELSE 'alter' END);
    END LOOP;
END
$fn$;

-- True when the publication sends all of t's changes once t is no
-- partition (after a DETACH): it names t itself or t's schema, or is FOR ALL
-- TABLES, publishes every action, lists t with no row filter or column
-- list, and, for a partitioned t, not WITH (publish_via_partition_root).
CREATE OR REPLACE FUNCTION @schema@.published_alone(t oid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_publication p, pg_class c
         WHERE p.pubname = @publication@ AND c.oid = t
           AND p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate
           AND NOT (p.pubviaroot AND c.relkind = 'p')
           AND (p.puballtables
                OR EXISTS (SELECT 1 FROM pg_publication_namespace pn
                            WHERE pn.pnpubid = p.oid AND pn.pnnspid = c.relnamespace)
                OR EXISTS (SELECT 1 FROM pg_publication_rel pr
                            WHERE pr.prpubid = p.oid AND pr.prrelid = t))
           AND NOT EXISTS (SELECT 1 FROM pg_publication_rel pr
                            WHERE pr.prpubid = p.oid AND pr.prrelid = t
                              AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL)))
$fn$;

-- ddl_command_start of ALTER TABLE: `DETACH PARTITION p CONCURRENTLY` runs in
-- two transactions. The first marks p detach-pending and commits: from then
-- on SELECT from the parent no longer shows p's rows, and nothing of that is
-- in the WAL logical decoding reads. The second (which fires ddl_command_end)
-- waits for older snapshots and may be cancelled, leaving p pending until a
-- `DETACH PARTITION p FINALIZE` (PostgreSQL's detach-partition-concurrently-4
-- isolation spec: the parent's snapshot kept p's rows). So p is logged
-- detached here, in the first transaction: rolled back with it when it fails.
-- The statement is the whole query (PostgreSQL refuses it in a transaction
-- block, so in a multi-statement string). No SET search_path: the name
-- resolves as the command's did; everything here is schema-qualified.
CREATE OR REPLACE FUNCTION @schema@.log_detach_pending() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
DECLARE
    m text[];
    t oid;
    s @schema@.table_log;
BEGIN
    m := pg_catalog.regexp_match(pg_catalog.current_query(),
                                 '\mDETACH\s+PARTITION\s+(.+?)\s+CONCURRENTLY\s*;?\s*$', 'is');
    IF m IS NULL THEN
        RETURN;
    END IF;
    -- PostgreSQL 15's to_regclass raises on what is not a name alone (a
    -- comment before CONCURRENTLY, say): that must not fail the user's
    -- command; its ddl_command_end logs the detach when it completes
    BEGIN
        t := pg_catalog.to_regclass(m[1]);
    EXCEPTION WHEN OTHERS THEN
        RETURN;
    END;
    IF t IS NULL THEN
        RETURN;
    END IF;
    s := @schema@.table_state(t);
    IF s.relid IS NULL OR s.parent IS NULL OR s.event IS NOT NULL THEN
        RETURN;  -- not published, no partition, or unlogged: nothing changes for replay
    END IF;
    -- Published through its parent alone, p leaves the publication with the
    -- detach: logged 'unpublished' (as log_tables does for a DETACH in one
    -- transaction, whose note_published setting the second transaction of
    -- this one would not see), so replay refuses it from here until it rejoins.
    INSERT INTO @schema@.table_log (relid, event, nspname, relname, relkind, parent, columns, inherits)
    VALUES (s.relid, CASE WHEN @schema@.published_alone(t) THEN 'alter' ELSE 'unpublished' END,
            s.nspname, s.relname, s.relkind, NULL, s.columns, s.inherits);
END
$fn$;

-- sql_drop: every dropped table (its rows leave its parent; readers skip
-- the drop of one the log never knew), and each remaining table whose columns the command dropped: a DROP
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
    -- every dropped table: whether the log knew it is for readers to tell
    -- (log_table: no read of table_log here)
    FOR d IN SELECT DISTINCT o.objid, o.schema_name, o.object_name FROM pg_event_trigger_dropped_objects() o
              WHERE o.classid = 'pg_class'::regclass AND o.object_type IN ('table', 'foreign table') AND NOT o.is_temporary
                AND o.schema_name <> @schema_literal@
              ORDER BY 1
    LOOP
        INSERT INTO @schema@.table_log (relid, event, nspname, relname)
        VALUES (d.objid, 'drop', d.schema_name, d.object_name);
    END LOOP;
END
$fn$;

-- The partitioned tables, partitions, INHERITS parents and children, and
-- unlogged tables that exist now, each unless its last row here says the
-- same (idempotent). Setup's own transaction: it may read the log.
CREATE OR REPLACE FUNCTION @schema@.log_seed() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t    oid;
    s    @schema@.table_log;
    last @schema@.table_log;
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c
              WHERE c.relkind = 'p' OR c.relispartition
                 OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
                 OR (c.relpersistence = 'u' AND c.relkind IN ('r', 'p'))
              ORDER BY c.oid LOOP
        s := @schema@.table_state(t);
        CONTINUE WHEN s.relid IS NULL;
        SELECT l.* INTO last FROM @schema@.table_log l WHERE l.relid = t ORDER BY l.id DESC LIMIT 1;
        -- the rule readers apply to repeated rows (replay.sql, table_event_rows)
        CONTINUE WHEN last.id IS NOT NULL AND CASE
            WHEN s.event = 'unlogged' THEN last.event = 'unlogged'
                 AND (last.nspname, last.relname, last.parent, last.inherits)
                     IS NOT DISTINCT FROM (s.nspname, s.relname, s.parent, s.inherits)
            ELSE last.event NOT IN ('drop', 'unlogged', 'unpublished')
                 AND (last.nspname, last.relname, last.relkind, last.parent, last.columns, last.inherits)
                     IS NOT DISTINCT FROM (s.nspname, s.relname, s.relkind, s.parent, s.columns, s.inherits) END;
        PERFORM @schema@.log_table(t, 'seed');
    END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION @schema@.via_root(oid), @schema@.covered(oid), @schema@.table_state(oid), @schema@.catalog_state(oid), @schema@.log_table(oid, text),
    @schema@.log_seed(), @schema@.published_now(), @schema@.publication_rejoined(boolean), @schema@.note_publication_drop() FROM PUBLIC;

-- Each ENABLE ALWAYS: a session under session_replication_role = replica
-- still writes WAL the slot decodes, so its DDL is logged too (PostgreSQL's
-- event_trigger.sql: tables created so were unknown tables).
DROP EVENT TRIGGER IF EXISTS walrev_log_tables;
CREATE EVENT TRIGGER walrev_log_tables ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER INDEX', 'ALTER TYPE',
                 'ALTER PUBLICATION', 'CREATE PUBLICATION', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE')
    EXECUTE FUNCTION @schema@.log_tables();
ALTER EVENT TRIGGER walrev_log_tables ENABLE ALWAYS;
-- CREATE SCHEMA s CREATE TABLE t ... creates its tables under the tag CREATE
-- SCHEMA, ALTER SCHEMA s RENAME TO renames them (PostgreSQL's publication.sql: pubme.t0, never written, was an
-- unknown table). Its own trigger, named to fire after setup's
-- walrev_publish_schema (event triggers fire in name order), which adds the
-- new schema to a FOR TABLES IN SCHEMA publication: log_table logs only
-- what the publication covers.
DROP EVENT TRIGGER IF EXISTS walrev_schema_tables;
CREATE EVENT TRIGGER walrev_schema_tables ON ddl_command_end
    WHEN TAG IN ('CREATE SCHEMA', 'ALTER SCHEMA')
    EXECUTE FUNCTION @schema@.log_tables();
ALTER EVENT TRIGGER walrev_schema_tables ENABLE ALWAYS;
DROP EVENT TRIGGER IF EXISTS walrev_log_drops;
CREATE EVENT TRIGGER walrev_log_drops ON sql_drop
    EXECUTE FUNCTION @schema@.log_drops();
ALTER EVENT TRIGGER walrev_log_drops ENABLE ALWAYS;
DROP EVENT TRIGGER IF EXISTS walrev_log_detach_pending;
CREATE EVENT TRIGGER walrev_log_detach_pending ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION @schema@.log_detach_pending();
ALTER EVENT TRIGGER walrev_log_detach_pending ENABLE ALWAYS;
-- ALTER PUBLICATION (and an ALTER TABLE that may take a table out of it):
-- what the publication covered before the command, for log_tables.
DROP EVENT TRIGGER IF EXISTS walrev_note_published;
CREATE EVENT TRIGGER walrev_note_published ON ddl_command_start
    WHEN TAG IN ('ALTER PUBLICATION', 'CREATE PUBLICATION', 'ALTER TABLE')
    EXECUTE FUNCTION @schema@.note_published();
ALTER EVENT TRIGGER walrev_note_published ENABLE ALWAYS;
DROP EVENT TRIGGER IF EXISTS walrev_note_publication_drop;
CREATE EVENT TRIGGER walrev_note_publication_drop ON ddl_command_start
    WHEN TAG IN ('DROP PUBLICATION')
    EXECUTE FUNCTION @schema@.note_publication_drop();
ALTER EVENT TRIGGER walrev_note_publication_drop ENABLE ALWAYS;
-- An ALTER PUBLICATION ... SET TABLE (or DROP TABLE) that leaves out
-- walrev's own tables it carried before (setup added them; note_published
-- noted them): the table log, the erasure log and the DDL capture must go
-- on reaching the slot, or nothing of what
-- the command did to the user's tables (the 'unpublished' rows above, a
-- rejoin's rows) would. They are added back at once, in the command's
-- transaction, before the other triggers write (event triggers fire in
-- name order: walrev_add_own_tables before walrev_capture_ddl and
-- walrev_log_tables). Nothing under FOR ALL TABLES or without the publication.
-- A CREATE PUBLICATION of walrev's name (the user made it again after a DROP
-- PUBLICATION) gets all three: they were there before the drop (setup put
-- them there), and the rejoin's rows must reach the slot through them;
-- setup's own CREATE PUBLICATION is left alone (it adds them, naming each).
CREATE OR REPLACE FUNCTION @schema@.add_own_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
    t      text;
    noted  text;
    before text[] := string_to_array(current_setting('walrev.own_published_before', true), ',');
BEGIN
    PERFORM set_config('walrev.own_published_before', '', true);
    IF NOT EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = @publication@ AND NOT p.puballtables) THEN
        RETURN;
    END IF;
    IF tg_tag = 'CREATE PUBLICATION' THEN
        -- setup's own (it adds them itself, naming each)
        IF current_setting('walrev.setup_publication', true) = 'on' THEN
            RETURN;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() d JOIN pg_publication p ON p.oid = d.objid
                        WHERE d.classid = 'pg_publication'::regclass AND p.pubname = @publication@) THEN
            RETURN;
        END IF;
        before := ARRAY['table_log', 'erasure_log', 'ddl_capture'];
    END IF;
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = @schema_literal@ AND c.relname IN ('table_log', 'erasure_log', 'ddl_capture')
                AND c.relname = ANY (before) AND c.relkind = 'r'
                AND NOT EXISTS (SELECT 1 FROM pg_publication_tables pt WHERE pt.pubname = @publication@
                                   AND pt.schemaname = n.nspname AND pt.tablename = c.relname)
              ORDER BY 1 LOOP
        -- the nested command's own note_published and log_tables would
        -- spend this command's note (what the publication covered before it)
        noted := current_setting('walrev.published_before', true);
        EXECUTE format('ALTER PUBLICATION %I ADD TABLE %I.%I', @publication@, @schema_literal@, t);
        PERFORM set_config('walrev.published_before', coalesce(noted, ''), true);
        RAISE WARNING 'walrev: table %.% added back to publication %: walrev needs it there', @schema_literal@, t,
            @publication@;
    END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION @schema@.note_published(), @schema@.add_own_tables() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS walrev_add_own_tables;
CREATE EVENT TRIGGER walrev_add_own_tables ON ddl_command_end
    WHEN TAG IN ('ALTER PUBLICATION', 'CREATE PUBLICATION')
    EXECUTE FUNCTION @schema@.add_own_tables();
ALTER EVENT TRIGGER walrev_add_own_tables ENABLE ALWAYS;
