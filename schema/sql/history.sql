-- walrev history store, format version 7.
-- @schema@ is replaced by the configured history schema (default walrev).
-- Every statement is idempotent: `walrev setup` runs this file each time.
-- Layout and reasons: docs/history-store.md.
-- Array operators are named OPERATOR(pg_catalog.&&) (and @>, <@): these run
-- under the application's search_path, often in its own database, where an
-- extension such as intarray adds && @> <@ for integer[] and makes the bare
-- ones on smallint[] ambiguous ("operator is not unique", issue 13).

CREATE SCHEMA IF NOT EXISTS @schema@;

CREATE TABLE IF NOT EXISTS @schema@.store_info (
    key   text PRIMARY KEY,
    value text NOT NULL
);
-- Format 2 dropped row_state (format 1's table of current row images, derived
-- data rebuilt from keyframes and deltas instead); nothing else changed, so a
-- format 1 store is upgraded in place. Format 3 (fewer bytes per change,
-- docs/history-store.md) added the scalar form of single-column deltas
-- (object_delta.col_id, old_value, new_value) and dropped
-- revision.parent_checksum (the previous revision's checksum); both are
-- applied to a format 1 or 2 store below, and rows written before keep their
-- form, which every reader accepts (object_delta_arrays). Format 4 added
-- revision_context.raw_sha256 (a context message that text cannot hold
-- exactly is stored sanitised, with the hash of its exact bytes) and the
-- relation_version columns below (the checksum chain covers relation
-- versions; STORED generated columns); versions written before have them NULL.
-- Format 5 keys the hash each attribute value enters the checksum chain by
-- (HMAC-SHA-256 under digest_key instead of SHA-256), so what erasure keeps
-- of a value is no personal data; store_info.keyed_values_from (set below)
-- is the first revision hashed so, and revisions before it keep theirs.
-- Format 6 partitions what grows per revision (revision, revision_context,
-- object_delta) by revision range, so history older than a point is dropped
-- by whole partitions (walrev prune, docs/history-store.md#retention); a
-- format 5 store's tables become the first partition in place (below).
-- Format 7 stores a keyframe's rows packed, up to 64 to a keyframe_chunk row
-- (issue 16, P6); a format 6 store's keyframe_row table is packed in place
-- (below) and keyframe_row becomes a view of the same columns.
INSERT INTO @schema@.store_info VALUES ('format_version', '7')
    ON CONFLICT (key) DO UPDATE SET value = '7' WHERE store_info.value IN ('1', '2', '3', '4', '5', '6');
-- Revisions per partition: walrev setup sets it from [history]
-- partition_revisions (the session setting walrev.partition_revisions);
-- partitions already made keep their bounds.
INSERT INTO @schema@.store_info
    SELECT 'partition_revisions', coalesce(nullif(current_setting('walrev.partition_revisions', true), ''), '1000000')
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
        WHERE nullif(current_setting('walrev.partition_revisions', true), '') IS NOT NULL;
DROP TABLE IF EXISTS @schema@.row_state;

-- One committed transaction. id is dense, in commit order.
CREATE TABLE IF NOT EXISTS @schema@.revision (
    id              bigint PRIMARY KEY,
    xid             bigint NOT NULL,
    commit_lsn      pg_lsn NOT NULL,
    end_lsn         pg_lsn NOT NULL,
    commit_time     timestamptz NOT NULL,
    origin          text,
    gid             text,
    actor_type      text,
    actor_id        text,
    actor           jsonb,
    description     text,
    meta            jsonb,
    n_insert        integer NOT NULL DEFAULT 0,
    n_update        integer NOT NULL DEFAULT 0,
    n_delete        integer NOT NULL DEFAULT 0,
    n_truncate      integer NOT NULL DEFAULT 0,
    n_snapshot      integer NOT NULL DEFAULT 0,
    n_suppressed    integer NOT NULL DEFAULT 0,
    warnings        text,
    checksum        bytea NOT NULL
) PARTITION BY RANGE (id);
-- The first revision whose values enter the chain keyed (format 5): 1 in a
-- new store, the next id in a store upgraded from an earlier format (its
-- worker must be stopped: an older walrev refuses a format 5 store).
INSERT INTO @schema@.store_info
    SELECT 'keyed_values_from', (coalesce(max(id), 0) + 1)::text FROM @schema@.revision
    ON CONFLICT (key) DO NOTHING;
-- The parent checksum (which the chain hashes) is the checksum of revision
-- id - 1, or 32 zero bytes for revision 1: ids are dense, so formats 1 and 2
-- stored the same 33 bytes twice per revision. walrev verify takes it from
-- the previous row.
ALTER TABLE @schema@.revision DROP COLUMN IF EXISTS parent_checksum;
-- end_lsn and commit_time grow with id (commit order), so BRIN answers
-- "the revision at this LSN / time" for a few bytes per thousand revisions
-- where a B-tree costs ~23 bytes per revision.
CREATE INDEX IF NOT EXISTS revision_end_lsn_brin ON @schema@.revision USING brin (end_lsn);
CREATE INDEX IF NOT EXISTS revision_commit_time_brin ON @schema@.revision USING brin (commit_time);

-- Every walrev.context() message of a revision, in order (context_no from 1).
-- Object deltas name the context in force; the revision's actor is context 1.
CREATE TABLE IF NOT EXISTS @schema@.revision_context (
    revision_id bigint NOT NULL,
    context_no  smallint NOT NULL,
    lsn         pg_lsn NOT NULL,
    actor_type  text,
    actor_id    text,
    actor       jsonb,
    description text,
    meta        jsonb,
    raw         text NOT NULL,          -- the message as sent; what the checksum covers
    raw_sha256  bytea,                  -- NULL: raw is exact; else raw is sanitised/bounded and this is
                                        -- SHA-256 of the exact bytes (format 4)
    PRIMARY KEY (revision_id, context_no)
) PARTITION BY RANGE (revision_id);
ALTER TABLE @schema@.revision_context ADD COLUMN IF NOT EXISTS raw_sha256 bytea;
-- Who acted, as the server knows it (docs/history-store.md#who-acted): set
-- when walrev.context() on the source attested the context (a signature
-- only walrev's role can make, checked by the worker); a context any client
-- sent with pg_logical_emit_message has attested = false and these NULL.
-- The revision carries its first context's.
ALTER TABLE @schema@.revision_context ADD COLUMN IF NOT EXISTS attested boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS db_session_user text, ADD COLUMN IF NOT EXISTS db_current_user text,
    ADD COLUMN IF NOT EXISTS application_name text;
ALTER TABLE @schema@.revision ADD COLUMN IF NOT EXISTS attested boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS db_session_user text, ADD COLUMN IF NOT EXISTS db_current_user text,
    ADD COLUMN IF NOT EXISTS application_name text;
-- Strict mode ([actors] in the worker's configuration, docs/configuration.md#actors):
-- whether the actor was vouched for by an application's key or a role
-- binding (NULL: strict mode was off), and how ('key:APP', 'role:ROLE',
-- 'walrev'). Not in the chain: verify checks a true one is possible.
ALTER TABLE @schema@.revision_context ADD COLUMN IF NOT EXISTS actor_verified boolean,
    ADD COLUMN IF NOT EXISTS verified_by text;
ALTER TABLE @schema@.revision ADD COLUMN IF NOT EXISTS actor_verified boolean,
    ADD COLUMN IF NOT EXISTS verified_by text;
CREATE INDEX IF NOT EXISTS revision_context_actor_idx
    ON @schema@.revision_context (actor_type, actor_id, revision_id);

-- Every schema a tracked table has had. col_ids are stable column identities:
-- a renamed column keeps its id, a dropped one's id is never reused.
CREATE TABLE IF NOT EXISTS @schema@.relation_version (
    relid          oid NOT NULL,
    version        integer NOT NULL,
    nspname        text NOT NULL,
    relname        text NOT NULL,
    replident      "char" NOT NULL,
    valid_from     pg_lsn NOT NULL,
    col_ids        smallint[] NOT NULL,
    col_names      text[] NOT NULL,
    col_type_oids  oid[] NOT NULL,
    col_typmods    integer[] NOT NULL,
    col_type_names text[] NOT NULL,
    col_is_key     boolean[] NOT NULL,
    col_track      "char"[] NOT NULL,
    PRIMARY KEY (relid, version)
);
-- Format 4: the revision whose checksum covers the version and the
-- version's own digest (docs/checksums.md; NULL in versions written before),
-- and its STORED generated columns, which pgoutput never sends: names, types
-- (format_type), 0-based positions among all the table's columns, and
-- generation expressions (pg_get_expr); NULL when it has none.
ALTER TABLE @schema@.relation_version ADD COLUMN IF NOT EXISTS covered_by bigint,
    ADD COLUMN IF NOT EXISTS checksum bytea, ADD COLUMN IF NOT EXISTS gen_names text[],
    ADD COLUMN IF NOT EXISTS gen_type_names text[], ADD COLUMN IF NOT EXISTS gen_positions smallint[],
    ADD COLUMN IF NOT EXISTS gen_exprs text[];

-- One row change. Its attribute deltas live in the parallel arrays
-- (col_ids[i], old_values[i], new_values[i], attr_flags[i]), or, when the
-- change has exactly one attribute and its flags are 0 (the common
-- single-column UPDATE), in the scalar form: col_id, old_value, new_value,
-- with the arrays NULL. col_id IS NULL tells the forms apart (a value may be
-- NULL in either). Readers go through the view object_delta_arrays, which
-- shows every row in the array form; the view attribute_delta unnests it.
-- op: I insert, U update, D delete, T truncate, S snapshot (baseline).
CREATE TABLE IF NOT EXISTS @schema@.object_delta (
    revision_id bigint NOT NULL,
    seq         integer NOT NULL,
    relid       oid NOT NULL,
    relversion  integer NOT NULL,
    op          "char" NOT NULL,
    key         text COLLATE "C",
    context_no  smallint NOT NULL DEFAULT 0,
    col_ids     smallint[],
    old_values  text[],
    new_values  text[],
    attr_flags  smallint[],          -- NULL when every flag is 0
    old_unknown boolean NOT NULL DEFAULT false,
    col_id      smallint,            -- scalar form (format 3); NULL: the arrays hold the attributes
    old_value   text,
    new_value   text
) PARTITION BY RANGE (revision_id);
-- Format 3: a format 1 or 2 store gets the scalar columns (at the end, where
-- a new store has them too); its rows stay in the array form.
ALTER TABLE @schema@.object_delta ADD COLUMN IF NOT EXISTS col_id smallint,
    ADD COLUMN IF NOT EXISTS old_value text, ADD COLUMN IF NOT EXISTS new_value text;
-- Append-only in (revision_id, seq) order: BRIN finds one revision's deltas;
-- uniqueness is enforced by the writer (ids are dense, one writer per slot).
CREATE INDEX IF NOT EXISTS object_delta_revision_brin ON @schema@.object_delta USING brin (revision_id)
    WITH (pages_per_range = 32);
-- seq is in the key (format 6): a walk in (revision_id, seq) order, blame's,
-- reads each partition's index in order and stops at its LIMIT; without it
-- the partitions of an object's deltas were appended and all of them sorted.
CREATE INDEX IF NOT EXISTS object_delta_object_idx ON @schema@.object_delta (relid, key, revision_id, seq);
-- Each object's life boundaries (insert, snapshot row, delete): blame finds the
-- change that set a key column (only an object's insert or snapshot row does)
-- without reading every change since; an UPDATE adds no entry here.
CREATE INDEX IF NOT EXISTS object_delta_life_idx ON @schema@.object_delta (relid, key, revision_id)
    WHERE op IN ('I', 'S', 'D');

-- Keyframes: a table's full image as of a revision, so a snapshot at any
-- point (the newest included) and an old image looked up by the history sink
-- start from the nearest keyframe and replay a bounded number of deltas.
CREATE TABLE IF NOT EXISTS @schema@.keyframe (
    id          bigserial PRIMARY KEY,
    relid       oid NOT NULL,
    revision_id bigint NOT NULL,
    n_rows      bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS keyframe_rel_idx ON @schema@.keyframe (relid, revision_id);
-- A keyframe's rows (format 7) are stored packed in keyframe_chunk rows, in
-- key order: keys[i] is row i's key and rows[i] its vals as text (the text[]
-- literal, vals::text), all rows of a chunk of one relversion. Format 6
-- stored a keyframe_row tuple and B-tree entry per row: 376 B per row of the
-- bench's 12-column table, three times issue 16's 120 B per update at
-- keyframe_factor 1. Two plain arrays, not an array of records: a whole
-- keyframe is read by sending each chunk's two arrays (the CLI's fold splits
-- the literals in C), 3x less server CPU than format 6's row per row, where
-- unnesting records cost more than format 6 (bench/issue16-cost.md, s11-kf2).
-- A chunk closes at 64 rows or once its keys and literals reach 6000 bytes
-- (sink/keyframer.c KEYFRAME_CHUNK_ROWS/_BYTES, keyframe_pack below), so with
-- STORAGE MAIN it stays in line, compressed, in its heap page: a keyed lookup
-- reads one heap tuple, no TOAST probe. first_key is the chunk's lowest key:
-- the chunk that can hold key k is the one with the greatest first_key <= k
-- (keyframe_rows_of). keyframe_row, the view below, unnests them.
CREATE TABLE IF NOT EXISTS @schema@.keyframe_chunk (
    keyframe_id bigint NOT NULL,
    first_key   text COLLATE "C" NOT NULL,
    relversion  integer NOT NULL,
    keys        text[] NOT NULL,
    rows        text[] NOT NULL,
    PRIMARY KEY (keyframe_id, first_key)
);
ALTER TABLE @schema@.keyframe_chunk ALTER COLUMN keys SET STORAGE MAIN, ALTER COLUMN rows SET STORAGE MAIN;
-- lz4 where the server has it: a keyed lookup decompresses one chunk, which
-- pglz does ten times slower.
DO $walrev$ BEGIN
    ALTER TABLE @schema@.keyframe_chunk ALTER COLUMN keys SET COMPRESSION lz4, ALTER COLUMN rows SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN NULL;
END $walrev$;

-- Keys compare bytewise (COLLATE "C"): their order means nothing, and under
-- any other collation every B-tree insert, probe and sort by key goes through
-- strcoll and sorts lose abbreviated keys. A store made before is converted
-- here; the views over object_delta are dropped first (ALTER TYPE refuses a
-- column a view uses) and created again below and by replay.sql, in the same
-- transaction. Not CASCADE: a view of the user's on them stops the upgrade
-- with PostgreSQL's error naming it rather than vanishing. The indexes on key
-- are rebuilt; the heap is not rewritten.
DO $walrev$ BEGIN
IF EXISTS (SELECT 1 FROM pg_attribute a
           WHERE a.attrelid IN ('@schema@.object_delta'::regclass, to_regclass('@schema@.keyframe_row'))
             AND a.attname = 'key' AND a.attcollation <> 'pg_catalog."C"'::regcollation) THEN
    DROP VIEW IF EXISTS @schema@.object_history;
    DROP VIEW IF EXISTS @schema@.attribute_delta;
    DROP VIEW IF EXISTS @schema@.object_delta_arrays;
    ALTER TABLE @schema@.object_delta ALTER COLUMN key TYPE text COLLATE "C";
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass('@schema@.keyframe_row') AND c.relkind = 'r') THEN
        ALTER TABLE @schema@.keyframe_row ALTER COLUMN key TYPE text COLLATE "C";
    END IF;
END IF;
END $walrev$;

-- keyframe_pack(src, relid, rev, kf, relversion, keys, relversions, rows):
-- writes the rows that the query src returns (columns keyframe_id, key,
-- relversion, vals as text[] or its literal; it may use $1 relid, $2 rev,
-- $3 kf, $4 relversion and the arrays $5 keys, $6 relversions, $7 literals)
-- as keyframe_chunk rows, closed as the keyframe thread closes them: at 64
-- rows, at 6000 bytes of keys and literals (counted before each row), and
-- where the relversion changes. Returns how many rows it wrote.
CREATE OR REPLACE FUNCTION @schema@.keyframe_pack(p_src text, p_relid oid, p_rev bigint, p_kf bigint,
                                                  p_relversion integer, p_keys text[], p_rvs integer[],
                                                  p_rows text[])
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
        WITH s AS (SELECT x.keyframe_id, x.key COLLATE "C" AS key, x.relversion, x.vals::text AS r FROM (%s) x),
        runs AS (SELECT s.*, CASE WHEN s.relversion IS DISTINCT FROM lag(s.relversion) OVER w THEN 1 ELSE 0 END AS brk
                 FROM s WINDOW w AS (PARTITION BY s.keyframe_id ORDER BY s.key)),
        run AS (SELECT runs.*, sum(runs.brk) OVER (PARTITION BY runs.keyframe_id ORDER BY runs.key) AS run_no FROM runs),
        pos AS (SELECT run.*, row_number() OVER w - 1 AS rn,
                       coalesce(sum(octet_length(run.key) + octet_length(run.r))
                                OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
                FROM run WINDOW w AS (PARTITION BY run.keyframe_id, run.run_no ORDER BY run.key)),
        ins AS (INSERT INTO @schema@.keyframe_chunk (keyframe_id, first_key, relversion, keys, rows)
                SELECT p.keyframe_id, min(p.key), min(p.relversion), array_agg(p.key ORDER BY p.key),
                       array_agg(p.r ORDER BY p.key)
                FROM pos p GROUP BY p.keyframe_id, p.run_no, p.rn / 64, p.before / 6000
                RETURNING cardinality(keys) AS n)
        SELECT coalesce(sum(ins.n), 0) FROM ins$q$, p_src)
    INTO n USING p_relid, p_rev, p_kf, p_relversion, p_keys, p_rvs, p_rows;
    RETURN n;
END
$fn$;
-- Format 6 to 7: a store's keyframe_row table becomes chunks (as the
-- keyframe thread writes them) and is dropped; the view of the same name and
-- columns takes its place. Not CASCADE: a view of the user's on keyframe_row
-- stops the upgrade with PostgreSQL's error naming it.
DO $walrev$ BEGIN
IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass('@schema@.keyframe_row') AND c.relkind = 'r') THEN
    PERFORM @schema@.keyframe_pack('SELECT keyframe_id, key, relversion, vals FROM @schema@.keyframe_row',
                                   NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    DROP TABLE @schema@.keyframe_row;
END IF;
END $walrev$;
-- Every keyframe row, as format 6 stored them (keyframe_id, key, relversion,
-- vals): for reading a keyframe whole in SQL. A keyed lookup reads one chunk
-- through keyframe_rows_of(keyframe_id, key) instead (this view cannot use
-- the key); the CLI's fold reads the chunks' arrays as they are.
CREATE OR REPLACE VIEW @schema@.keyframe_row AS
    SELECT c.keyframe_id, u.key COLLATE "C" AS key, c.relversion, u.r::text[] AS vals
    FROM @schema@.keyframe_chunk c CROSS JOIN LATERAL unnest(c.keys, c.rows) AS u(key, r);
-- Writes to keyframe_row (a repair by hand, a test's forged value, an old
-- export's rows) rewrite the chunk that covers the key: the one with the
-- greatest first_key <= key, or for an insert below them all the keyframe's
-- first chunk. The chunk is deleted and its rows, changed, packed again
-- (keyframe_pack), so a chunk grown past its bounds is split; one left empty
-- is gone. A chunk is written again whole per row: bulk loads pack their
-- rows instead (keyframe_put).
CREATE OR REPLACE FUNCTION @schema@.keyframe_row_write() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    fk  text COLLATE "C";
    rv  integer;
    ks  text[];
    rs  text[];
    src CONSTANT text := 'SELECT $3 AS keyframe_id, u.k AS key, u.v AS relversion, u.r AS vals '
                         'FROM unnest($5, $6, $7) AS u(k, v, r)';
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM @schema@.keyframe_chunk c
        WHERE (c.keyframe_id, c.first_key) = (SELECT x.keyframe_id, x.first_key FROM @schema@.keyframe_chunk x
                                              WHERE x.keyframe_id = OLD.keyframe_id
                                                AND x.first_key <= OLD.key COLLATE "C"
                                              ORDER BY x.first_key DESC LIMIT 1)
        RETURNING c.relversion, c.keys, c.rows INTO rv, ks, rs;
        PERFORM @schema@.keyframe_pack(src, NULL, NULL, OLD.keyframe_id, NULL,
                                       array_agg(u.k ORDER BY u.o), array_agg(rv ORDER BY u.o),
                                       array_agg(u.r ORDER BY u.o))
        FROM unnest(ks, rs) WITH ORDINALITY AS u(k, r, o) WHERE u.k <> OLD.key COLLATE "C"
        HAVING count(*) > 0;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        DELETE FROM @schema@.keyframe_chunk c
        WHERE (c.keyframe_id, c.first_key) = (SELECT x.keyframe_id, x.first_key FROM @schema@.keyframe_chunk x
                                              WHERE x.keyframe_id = NEW.keyframe_id
                                              ORDER BY x.first_key <= NEW.key COLLATE "C" DESC,
                                                       CASE WHEN x.first_key <= NEW.key COLLATE "C"
                                                            THEN x.first_key END DESC, x.first_key
                                              LIMIT 1)
        RETURNING c.relversion, c.keys, c.rows INTO rv, ks, rs;
        IF array_position(ks, NEW.key::text) IS NOT NULL THEN
            RAISE EXCEPTION 'keyframe % already has a row of key %', NEW.keyframe_id, NEW.key
                USING ERRCODE = 'unique_violation';
        END IF;
        PERFORM @schema@.keyframe_pack(src, NULL, NULL, NEW.keyframe_id, NULL,
                                       coalesce(ks, '{}') || NEW.key::text,
                                       array_fill(rv, ARRAY[coalesce(cardinality(ks), 0)]) || NEW.relversion,
                                       coalesce(rs, '{}') || NEW.vals::text);
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$fn$;
DROP TRIGGER IF EXISTS keyframe_row_write ON @schema@.keyframe_row;
CREATE TRIGGER keyframe_row_write INSTEAD OF INSERT OR UPDATE OR DELETE ON @schema@.keyframe_row
    FOR EACH ROW EXECUTE FUNCTION @schema@.keyframe_row_write();
-- keyframe_rows_of(keyframe, key): that keyframe's row of key (none or one),
-- read from the one chunk that can hold it. Inlined into the caller's query.
CREATE OR REPLACE FUNCTION @schema@.keyframe_rows_of(p_kf bigint, p_key text)
RETURNS TABLE (key text, relversion integer, vals text[]) LANGUAGE sql STABLE AS $fn$
    SELECT p_key COLLATE "C", c.relversion, c.rows[c.i]::text[]
    FROM (SELECT c.relversion, c.rows, array_position(c.keys, p_key) AS i FROM @schema@.keyframe_chunk c
          WHERE c.keyframe_id = p_kf AND c.first_key <= p_key COLLATE "C"
          ORDER BY c.first_key DESC LIMIT 1) c
    WHERE c.i IS NOT NULL
$fn$;
-- keyframe_put(keyframe, relversion, rows_sql, relid, rev): writes the rows
-- that the query rows_sql (columns key and vals; $1 relid, $2 rev) returns
-- as keyframe's chunks (keyframe_pack); returns how many rows it wrote.
CREATE OR REPLACE FUNCTION @schema@.keyframe_put(p_kf bigint, p_relversion integer, p_rows text, p_relid oid,
                                                 p_rev bigint)
RETURNS bigint LANGUAGE sql AS $fn$
    SELECT @schema@.keyframe_pack(format('SELECT $3 AS keyframe_id, x.key, $4 AS relversion, x.vals FROM (%s) x',
                                         p_rows), p_relid, p_rev, p_kf, p_relversion, NULL, NULL, NULL)
$fn$;

-- Per tracked table: live rows (rows begun minus rows ended, as counted by the
-- sink) and deltas since the last keyframe, which decide when the next
-- keyframe is taken; a keyframe re-counts live_rows exactly.
CREATE TABLE IF NOT EXISTS @schema@.tracked_table (
    relid                 oid PRIMARY KEY,
    live_rows             bigint NOT NULL DEFAULT 0,
    deltas_since_keyframe bigint NOT NULL DEFAULT 0,
    last_keyframe_id      bigint
);

-- The last revision durably written, per slot; committed with the rows.
CREATE TABLE IF NOT EXISTS @schema@.checkpoint (
    slot_name   text PRIMARY KEY,
    end_lsn     pg_lsn NOT NULL,
    revision_id bigint NOT NULL,
    checksum    bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Quarantine (docs/history-store.md#quarantine): a revision the store
-- refused twice with a data error (SQLSTATE class 22 or 54, pgio's table) is
-- kept whole here as the msgpack messages the file sink writes for it
-- (relations, deltas with their contexts, the revision message:
-- docs/file-format.md), so the stream goes on and nothing is lost. Its
-- revision row is written with quarantined = true and no contexts or deltas;
-- replay does not see its changes, and verify reports it.
CREATE TABLE IF NOT EXISTS @schema@.quarantine (
    revision_id    bigint PRIMARY KEY,
    xid            bigint NOT NULL,
    commit_lsn     pg_lsn NOT NULL,
    end_lsn        pg_lsn NOT NULL,
    sqlstate       text,
    error          text NOT NULL,           -- the store's error the second time
    raw            bytea NOT NULL,          -- its msgpack messages, concatenated
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE @schema@.revision ADD COLUMN IF NOT EXISTS quarantined boolean NOT NULL DEFAULT false;

-- Format 6: revision, revision_context and object_delta are partitioned by
-- revision range (partition_ensure below makes them). A store made before
-- keeps its tables as they are: each is renamed <table>_p1 (its indexes
-- likewise), a partitioned table of the same columns and indexes takes its
-- name, and the old table is attached as its first partition, from the
-- lowest id up to the first partition boundary past its newest revision.
-- Attaching reads each table once to check the bound; nothing is copied and
-- the indexes are kept. The views over them are dropped first (a view
-- follows a renamed table) and made again below and by replay.sql, in the
-- same transaction; not CASCADE, so a view of the user's stops the upgrade
-- with PostgreSQL's error naming it.
DO $walrev$
DECLARE
    t record;
    ix record;
    step bigint := greatest((SELECT value::bigint FROM @schema@.store_info WHERE key = 'partition_revisions'), 1);
    top bigint;
    hi bigint;
BEGIN
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = '@schema@.revision'::regclass) <> 'r' THEN
        RETURN;
    END IF;
    DROP VIEW IF EXISTS @schema@.table_event;
    DROP VIEW IF EXISTS @schema@.object_history;
    DROP VIEW IF EXISTS @schema@.revision_log;
    DROP VIEW IF EXISTS @schema@.attribute_delta;
    DROP VIEW IF EXISTS @schema@.object_delta_arrays;
    top := greatest((SELECT max(id) FROM @schema@.revision), (SELECT max(revision_id) FROM @schema@.revision_context),
                    (SELECT max(revision_id) FROM @schema@.object_delta), 0);
    hi := 1 + greatest(ceil(top::numeric / step)::bigint, 1) * step;
    FOR t IN SELECT * FROM (VALUES ('revision', 'id'), ('revision_context', 'revision_id'),
                                   ('object_delta', 'revision_id')) v(tbl, col) LOOP
        EXECUTE 'ALTER TABLE @schema@.' || t.tbl || ' RENAME TO ' || t.tbl || '_p1';
        FOR ix IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = ('@schema@.' || t.tbl || '_p1')::regclass LOOP
            EXECUTE 'ALTER INDEX @schema@.' || quote_ident(ix.relname) || ' RENAME TO '
                    || quote_ident(left(ix.relname, 59) || '_p1');
        END LOOP;
        EXECUTE 'CREATE TABLE @schema@.' || t.tbl || ' (LIKE @schema@.' || t.tbl || '_p1 INCLUDING DEFAULTS)'
                || ' PARTITION BY RANGE (' || t.col || ')';
    END LOOP;
    ALTER TABLE @schema@.revision ADD PRIMARY KEY (id);
    CREATE INDEX revision_end_lsn_brin ON @schema@.revision USING brin (end_lsn);
    CREATE INDEX revision_commit_time_brin ON @schema@.revision USING brin (commit_time);
    ALTER TABLE @schema@.revision_context ADD PRIMARY KEY (revision_id, context_no);
    CREATE INDEX revision_context_actor_idx ON @schema@.revision_context (actor_type, actor_id, revision_id);
    CREATE INDEX object_delta_revision_brin ON @schema@.object_delta USING brin (revision_id)
        WITH (pages_per_range = 32);
    -- (relid, key, revision_id, seq): attaching builds it on the old table (its
    -- three-column index, of no use then, is dropped below)
    CREATE INDEX object_delta_object_idx ON @schema@.object_delta (relid, key, revision_id, seq);
    CREATE INDEX object_delta_life_idx ON @schema@.object_delta (relid, key, revision_id) WHERE op IN ('I', 'S', 'D');
    FOR t IN SELECT * FROM (VALUES ('revision'), ('revision_context'), ('object_delta')) v(tbl) LOOP
        EXECUTE 'ALTER TABLE @schema@.' || t.tbl || ' ATTACH PARTITION @schema@.' || t.tbl || '_p1'
                || ' FOR VALUES FROM (MINVALUE) TO (' || hi || ')';
    END LOOP;
    DROP INDEX IF EXISTS @schema@.object_delta_object_idx_p1;
END $walrev$;

-- The partitions of the tables that grow per revision, with their revision
-- ranges [lo, hi) (the first one's lower bound, MINVALUE, reads as 1).
CREATE OR REPLACE FUNCTION @schema@.history_partitions()
RETURNS TABLE (tbl text, part regclass, lo bigint, hi bigint) LANGUAGE sql STABLE AS $fn$
    SELECT p.relname::text, c.oid::regclass,
           coalesce(substring(b.b FROM 'FROM \(''(-?[0-9]+)''\)')::bigint, 1),
           substring(b.b FROM 'TO \(''(-?[0-9]+)''\)')::bigint
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS b) b
    WHERE i.inhparent IN ('@schema@.revision'::regclass, '@schema@.revision_context'::regclass,
                          '@schema@.object_delta'::regclass)
    ORDER BY 1, 3
$fn$;

-- Partitions are made ahead of the ids written: this makes sure each of the
-- three tables has partitions up to past p_id + partition_revisions (the one
-- holding p_id and at least the next), each <table>_p<lo> of
-- partition_revisions revisions from where the last one ends, and returns
-- the lowest upper bound among the three tables. The history sink calls it
-- when its ids enter the last partition (outside its batches, with a lock
-- timeout) and, should a batch outrun that, before writing an id no
-- partition holds.
CREATE OR REPLACE FUNCTION @schema@.partition_ensure(p_id bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    step bigint := greatest(coalesce((SELECT value::bigint FROM @schema@.store_info
                                      WHERE key = 'partition_revisions'), 1000000), 1);
    t text;
    hi bigint;
    low bigint;
BEGIN
    FOREACH t IN ARRAY ARRAY['revision', 'revision_context', 'object_delta'] LOOP
        SELECT max(p.hi) INTO hi FROM @schema@.history_partitions() p WHERE p.tbl = t;
        IF hi IS NULL THEN
            EXECUTE 'CREATE TABLE @schema@.' || t || '_p1 PARTITION OF @schema@.' || t
                    || ' FOR VALUES FROM (MINVALUE) TO (' || (1 + step) || ')';
            hi := 1 + step;
        END IF;
        WHILE hi <= p_id + step LOOP
            EXECUTE 'CREATE TABLE @schema@.' || t || '_p' || hi || ' PARTITION OF @schema@.' || t
                    || ' FOR VALUES FROM (' || hi || ') TO (' || (hi + step) || ')';
            hi := hi + step;
        END LOOP;
        low := least(coalesce(low, hi), hi);
    END LOOP;
    RETURN low;
END
$fn$;
SELECT @schema@.partition_ensure(coalesce((SELECT max(id) FROM @schema@.revision), 0) + 1);

-- Statistics of the partitioned tables (docs/history-store.md#statistics).
-- Autovacuum analyzes partitions, never a partitioned table: without
-- statistics of its own the planner guesses its joins (1/200 of the rows
-- for an equality on a column it knows nothing of), and a join of
-- attribute_delta to revision on a time window became a probe of revision
-- per unnested delta (issue 16, Q: 20-23 s for 1.1M deltas where the hash
-- join takes 3 s). analyze_if_grown() analyzes them (and relation_version,
-- a few rows autovacuum's threshold never reaches) once object_delta's
-- partitions hold at least 1 MiB and 4 times the bytes they held at the last
-- time (store_info.analyzed_bytes): a few times over a store's life, each a
-- sample of 30,000 rows per table (0.5 CPU s at 1.1M deltas). True when it
-- analyzed. The keyframe thread calls it after each keyframe.
CREATE OR REPLACE FUNCTION @schema@.analyze_if_grown() RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
    cur  bigint := (SELECT coalesce(sum(pg_catalog.pg_relation_size(i.inhrelid)), 0) FROM pg_catalog.pg_inherits i
                    WHERE i.inhparent = '@schema@.object_delta'::regclass);
    last bigint := (SELECT value::bigint FROM @schema@.store_info WHERE key = 'analyzed_bytes');
BEGIN
    IF cur < 1048576 OR cur < 4 * coalesce(last, 0) THEN
        RETURN false;
    END IF;
    ANALYZE @schema@.revision, @schema@.revision_context, @schema@.object_delta, @schema@.relation_version;
    INSERT INTO @schema@.store_info VALUES ('analyzed_bytes', cur::text)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
    RETURN true;
END
$fn$;

-- object_delta with every row in the array form, whichever form it was
-- written in: what every reader of attributes selects from, so the array
-- parsing of the SQL functions and of the C readers is the same for both.
-- The scalar form becomes one-element arrays under the array form's own
-- conventions (an array whose every value is NULL is NULL). A plain view: the
-- planner flattens it, so conditions on relid, key and revision_id still use
-- object_delta's indexes.
CREATE OR REPLACE VIEW @schema@.object_delta_arrays AS
SELECT d.revision_id, d.seq, d.relid, d.relversion, d.op, d.key, d.context_no,
       CASE WHEN d.col_id IS NULL THEN d.col_ids ELSE ARRAY[d.col_id] END AS col_ids,
       CASE WHEN d.col_id IS NULL THEN d.old_values WHEN d.old_value IS NOT NULL THEN ARRAY[d.old_value] END
           AS old_values,
       CASE WHEN d.col_id IS NULL THEN d.new_values WHEN d.new_value IS NOT NULL THEN ARRAY[d.new_value] END
           AS new_values,
       d.attr_flags, d.old_unknown
FROM @schema@.object_delta d;

-- Key moves (docs/history-store.md#key-moves): an UPDATE recorded under the
-- row's new key with a key column among its attributes moves the row from
-- another key (delta_old_key). The history sink never writes one (it records
-- an UPDATE of a key as a delete and an insert), but histories written in SQL
-- may. Readers that must know whether a row moved away from its key after its
-- last change (row_at, blame) look here instead of reading every delta of the
-- table since that change: this lists every 'U' delta that names a key column
-- of its relation version (or whose version is not known when it is written),
-- a superset of the moves that readers check with delta_old_key. Derived
-- data, like an index: rows whose delta is gone (walrev prune) match nothing.
CREATE TABLE IF NOT EXISTS @schema@.key_move (
    relid       oid NOT NULL,
    revision_id bigint NOT NULL,
    seq         integer NOT NULL,
    key         text COLLATE "C",
    PRIMARY KEY (relid, revision_id, seq)
);
-- Kept by a trigger on object_delta for every writer but the history sink,
-- whose session sets walrev.no_key_moves = on: for its deltas (nearly all of
-- a store's) the trigger's WHEN compares op and, for an UPDATE, reads that
-- setting; nothing else runs.
CREATE OR REPLACE FUNCTION @schema@.key_move_note() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @schema@.relation_version rv
                   WHERE rv.relid = NEW.relid AND rv.version = NEW.relversion)
       OR EXISTS (SELECT 1 FROM @schema@.relation_version rv, unnest(rv.col_ids, rv.col_is_key) AS c(id, is_key)
                  WHERE rv.relid = NEW.relid AND rv.version = NEW.relversion AND c.is_key
                    AND c.id = ANY (CASE WHEN NEW.col_id IS NULL THEN NEW.col_ids ELSE ARRAY[NEW.col_id] END)) THEN
        INSERT INTO @schema@.key_move VALUES (NEW.relid, NEW.revision_id, NEW.seq, NEW.key)
            ON CONFLICT (relid, revision_id, seq) DO UPDATE SET key = EXCLUDED.key;
    END IF;
    RETURN NULL;
END
$fn$;
DO $walrev$ BEGIN
IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '@schema@.object_delta'::regclass
               AND tgname = 'object_delta_key_move' AND tgparentid = 0) THEN
    CREATE TRIGGER object_delta_key_move
        AFTER INSERT OR UPDATE OF op, relid, relversion, key, col_ids, col_id ON @schema@.object_delta
        FOR EACH ROW WHEN (NEW.op = 'U' AND current_setting('walrev.no_key_moves', true) IS DISTINCT FROM 'on')
        EXECUTE FUNCTION @schema@.key_move_note();
END IF;
-- ALWAYS: a session under session_replication_role = replica (a restore, a
-- subscriber) writes deltas too
IF (SELECT tgenabled FROM pg_trigger WHERE tgrelid = '@schema@.object_delta'::regclass
    AND tgname = 'object_delta_key_move' AND tgparentid = 0) <> 'A' THEN
    ALTER TABLE @schema@.object_delta ENABLE ALWAYS TRIGGER object_delta_key_move;
END IF;
-- A store made before the list: its UPDATEs that name a key column, once.
IF NOT EXISTS (SELECT 1 FROM @schema@.store_info WHERE key = 'key_moves_listed') THEN
    INSERT INTO @schema@.key_move
    SELECT d.relid, d.revision_id, d.seq, d.key
    FROM @schema@.object_delta_arrays d
    LEFT JOIN (SELECT rv.relid, rv.version, array_agg(c.id) FILTER (WHERE c.is_key) AS key_ids
               FROM @schema@.relation_version rv, unnest(rv.col_ids, rv.col_is_key) AS c(id, is_key)
               GROUP BY rv.relid, rv.version) kv ON kv.relid = d.relid AND kv.version = d.relversion
    WHERE d.op = 'U' AND (kv.relid IS NULL OR d.col_ids OPERATOR(pg_catalog.&&) kv.key_ids)
    ON CONFLICT DO NOTHING;
    INSERT INTO @schema@.store_info VALUES ('key_moves_listed', 'true');
END IF;
END $walrev$;

-- Tabular view of attribute deltas, one row per column change.
CREATE OR REPLACE VIEW @schema@.attribute_delta AS
SELECT d.revision_id, d.seq, d.relid, d.relversion, d.op, d.key,
       a.col_id, rv.col_names[array_position(rv.col_ids, a.col_id)] AS column_name,
       a.old_value, a.new_value, coalesce(a.flags, 0)::smallint AS flags
FROM @schema@.object_delta_arrays d
CROSS JOIN LATERAL unnest(d.col_ids, d.old_values, d.new_values, d.attr_flags)
     AS a(col_id, old_value, new_value, flags)
JOIN @schema@.relation_version rv ON rv.relid = d.relid AND rv.version = d.relversion;

-- Baselines of tables, one row per table (docs/history-store.md#the-baseline):
-- 'done' for those in the baseline `walrev setup` took, 'skipped' under
-- setup --no-baseline, and the progress of the worker's backfill of a table
-- added to the publication later ('requested' by `walrev baseline --table`,
-- 'running', 'done', 'failed', 'cancelled'). The worker writes a row in the
-- same transaction as the history it describes; last_key is where the next
-- chunk starts ({"filenode":F,"page":P}). request_no counts requests, so a
-- request made while a backfill runs is not overwritten by its progress.
DO $walrev$ BEGIN
IF to_regclass('@schema@.backfill') IS NULL THEN
    CREATE TABLE @schema@.backfill (
        relid         oid PRIMARY KEY,
        nspname       text NOT NULL,
        relname       text NOT NULL,
        state         text NOT NULL CHECK (state IN ('requested', 'running', 'done', 'skipped', 'failed', 'cancelled')),
        request_no    integer NOT NULL DEFAULT 0,
        last_key      text,
        chunks        integer NOT NULL DEFAULT 0,
        rows_read     bigint NOT NULL DEFAULT 0,
        rows_recorded bigint NOT NULL DEFAULT 0,
        error         text,
        requested_at  timestamptz,
        started_at    timestamptz,
        finished_at   timestamptz,
        updated_at    timestamptz NOT NULL DEFAULT now()
    );
    -- A store older than this table: every table it already knows counts as
    -- baselined (run `walrev baseline --table` for one that was not).
    INSERT INTO @schema@.backfill (relid, nspname, relname, state, finished_at)
    SELECT DISTINCT ON (relid) relid, nspname, relname, 'done', now()
    FROM @schema@.relation_version ORDER BY relid, version DESC;
END IF;
END $walrev$;
-- whole_from: the first revision at which the history holds every row of a
-- table the worker baselined because it joined the publication after setup
-- (its stream changes came first); -1 while that baseline has not finished
-- (running, failed or cancelled); NULL where the history held every row from
-- the table's first revision (setup's baseline, a table created while
-- published, a store older than this column). Replay refuses a snapshot of
-- the table at an earlier point rather than answer the stream's rows alone.
ALTER TABLE @schema@.backfill ADD COLUMN IF NOT EXISTS whole_from bigint;

-- Row digests (docs/history-store.md, "Rows without a key" and "Hidden
-- columns"): current state only, rewritten by the worker in the batch that
-- changes it. col_id 0: the identity digest of a live row of a table without
-- a key (a REPLICA IDENTITY FULL change finds its row by it); col_id > 0: a
-- hidden column's keyed digest (a change is recorded exactly when it
-- differs); col_id -1: the row's image in the history is stale (it changed
-- under a suppressing context; digest empty). Digests are HMAC-SHA-256 under
-- digest_key, so they reveal nothing without it.
CREATE TABLE IF NOT EXISTS @schema@.row_digest (
    relid  oid NOT NULL,
    key    text COLLATE "C" NOT NULL,
    col_id smallint NOT NULL,
    digest bytea NOT NULL,
    PRIMARY KEY (relid, key, col_id)
);
CREATE INDEX IF NOT EXISTS row_digest_row_idx ON @schema@.row_digest (relid, digest) WHERE col_id = 0;

-- A keyless identity ('#R.S') is never used again once deleted, and its
-- digests go with its delete (dbe94a5). A store written before kept them
-- when a rekey deleted the identities under a keyed version; a table keyless
-- again then matched a change's old row to a dead identity. `walrev setup`
-- removes them (`walrev verify` names them until then; test_rekey_digest).
DELETE FROM @schema@.row_digest g WHERE g.key LIKE '#%' AND EXISTS (
    SELECT 1 FROM @schema@.object_delta d WHERE d.relid = g.relid AND d.key = g.key AND d.op = 'D');

-- The store's secret for those digests: 32 random bytes made once. Only the
-- worker's role reads it (replay.sql grants readers every table but this).
CREATE TABLE IF NOT EXISTS @schema@.digest_key (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    key bytea NOT NULL CHECK (length(key) = 32)
);
INSERT INTO @schema@.digest_key (key)
    SELECT sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || clock_timestamp()::text, 'UTF8'))
    ON CONFLICT DO NOTHING;
REVOKE ALL ON @schema@.digest_key FROM PUBLIC;

-- The worker's changes to row_digest, in order, one batch at a time: key NULL
-- ends every row of relid (TRUNCATE); col_id -32768 ends the row key (DELETE);
-- digest NULL removes one entry; otherwise the entry is set. Digests in hex.
CREATE OR REPLACE FUNCTION @schema@.row_digest_apply(p_relids oid[], p_keys text[], p_cols smallint[],
                                                     p_digests text[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    i integer;
BEGIN
    -- The common batch (rows inserted or changed, each entry once) in one
    -- statement; anything else entry by entry, in order.
    IF NOT EXISTS (SELECT 1 FROM unnest(p_keys, p_cols, p_digests) AS u(k, c, d)
                   WHERE u.k IS NULL OR u.c = -32768 OR u.d IS NULL)
       AND (SELECT count(*) = count(DISTINCT (u.r, u.k, u.c))
            FROM unnest(p_relids, p_keys, p_cols) AS u(r, k, c)) THEN
        INSERT INTO @schema@.row_digest
        SELECT u.r, u.k, u.c, decode(u.d, 'hex') FROM unnest(p_relids, p_keys, p_cols, p_digests) AS u(r, k, c, d)
        ON CONFLICT (relid, key, col_id) DO UPDATE SET digest = EXCLUDED.digest;
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_relids, 1), 0) LOOP
        IF p_keys[i] IS NULL THEN
            DELETE FROM @schema@.row_digest WHERE relid = p_relids[i];
        ELSIF p_cols[i] = -32768 THEN
            DELETE FROM @schema@.row_digest WHERE relid = p_relids[i] AND key = p_keys[i];
        ELSIF p_digests[i] IS NULL THEN
            DELETE FROM @schema@.row_digest WHERE relid = p_relids[i] AND key = p_keys[i] AND col_id = p_cols[i];
        ELSE
            INSERT INTO @schema@.row_digest VALUES (p_relids[i], p_keys[i], p_cols[i], decode(p_digests[i], 'hex'))
            ON CONFLICT (relid, key, col_id) DO UPDATE SET digest = EXCLUDED.digest;
        END IF;
    END LOOP;
END
$fn$;

-- The worker's state per slot, for `walrev status` (docs/cli.md#walrev-status):
-- written by `walrev run` on a connection of its own when it starts
-- streaming, before it retries, when it fails and when it stops; the last
-- error stays until the next one. Not part of the history (no checksum).
CREATE TABLE IF NOT EXISTS @schema@.worker_state (
    slot_name        text PRIMARY KEY,
    state            text NOT NULL CHECK (state IN ('streaming', 'retrying', 'failed', 'stopped')),
    pid              integer,
    state_at         timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    last_error_class text,
    last_error_at    timestamptz,
    errors           bigint NOT NULL DEFAULT 0
);
-- Each sink's durable position as the worker last recorded it (when its state
-- changes, and every 10 s while it streams): [{"sink": "file",
-- "durable_end_lsn": "0/16B3748"}, ...], and when.
ALTER TABLE @schema@.worker_state ADD COLUMN IF NOT EXISTS sinks jsonb,
    ADD COLUMN IF NOT EXISTS sinks_at timestamptz;

-- GDPR erasure (format 5; docs/history-store.md#erasure-and-walrev-verify).
-- An erased value is NULL in object_delta (flag 8 in attr_flags: the new
-- value, 16: the old one) and its hash as it entered the checksum chain is
-- kept here, so verify recomputes the chain without the value. Since format
-- 5 that hash is HMAC-SHA-256 under digest_key: no personal data without it.
CREATE TABLE IF NOT EXISTS @schema@.erased_value (
    revision_id bigint NOT NULL,
    seq         integer NOT NULL,
    col_id      smallint NOT NULL,
    which       "char" NOT NULL,        -- 'o' old value, 'n' new value
    value_hash  bytea NOT NULL,
    PRIMARY KEY (revision_id, seq, col_id, which)
);
-- One row per erasure applied: the erase revision (the revision that recorded
-- the request's row in the source's erasure_log, which says who, what and why)
-- and what it erased. Derived: verify checks it against that revision.
CREATE TABLE IF NOT EXISTS @schema@.erasure (
    revision_id   bigint NOT NULL,
    relid         oid NOT NULL,
    key           text COLLATE "C" NOT NULL,
    col_ids       smallint[] NOT NULL,
    n_values      bigint NOT NULL,
    n_keyframe_values bigint NOT NULL,
    PRIMARY KEY (revision_id, relid, key)
);
CREATE INDEX IF NOT EXISTS erasure_object_idx ON @schema@.erasure (relid, key);

-- The hash a value entered the chain by (docs/checksums.md): HMAC-SHA-256
-- under digest_key from store_info.keyed_values_from on, bare SHA-256 before.
-- p_ipad/p_opad: the key XOR 0x36/0x5c, zero-padded to 64 bytes (erase_pads).
CREATE OR REPLACE FUNCTION @schema@.erase_value_hash(p_v text, p_keyed boolean, p_ipad bytea, p_opad bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE AS $fn$
    SELECT CASE WHEN p_keyed THEN sha256(p_opad || sha256(p_ipad || convert_to(p_v, 'UTF8')))
                ELSE sha256(convert_to(p_v, 'UTF8')) END
$fn$;

-- Erase the values of columns p_cols of object (p_relid, p_key) from every
-- delta of a revision before p_rev and from every keyframe row, keeping each
-- value's chain hash in erased_value; p_apply false only counts. Returns per
-- column the deltas and values concerned and the keyframe values. Values
-- already erased and NULLs are left alone (nothing to erase), so it can run
-- again. Runs as walrev's role (it reads digest_key).
CREATE OR REPLACE FUNCTION @schema@.erase_apply(p_relid oid, p_key text, p_cols smallint[], p_rev bigint,
                                                p_apply boolean)
RETURNS TABLE (col_id smallint, deltas bigint, delta_values bigint, keyframe_values bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    k bytea;
    ipad bytea;
    opad bytea;
    keyed_from bigint;
    r record;
    i integer;
    j integer;
    c smallint;
    olds text[];
    news text[];
    flags smallint[];
    f integer;
    changed boolean;
    kf_n bigint;
    -- per column of p_cols, by position: deltas, values in deltas, values in keyframes
    nd bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_cols)]);
    nv bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_cols)]);
    nk bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_cols)]);
BEGIN
    IF p_apply THEN
        SELECT d.key INTO k FROM @schema@.digest_key d;
        IF k IS NULL OR length(k) <> 32 THEN
            RAISE EXCEPTION 'erase: @schema@.digest_key must hold one 32-byte key' USING ERRCODE = '22023';
        END IF;
        ipad := decode(repeat('36', 64), 'hex');
        opad := decode(repeat('5c', 64), 'hex');
        FOR i IN 0 .. 31 LOOP
            ipad := set_byte(ipad, i, get_byte(k, i) # 54);
            opad := set_byte(opad, i, get_byte(k, i) # 92);
        END LOOP;
        SELECT s.value::bigint INTO keyed_from FROM @schema@.store_info s WHERE s.key = 'keyed_values_from';
        keyed_from := coalesce(keyed_from, 9223372036854775807);
    END IF;
    FOR r IN SELECT d.revision_id, d.seq, d.col_ids, d.old_values, d.new_values, d.attr_flags,
                    (od.col_id IS NOT NULL) AS scalar
             FROM @schema@.object_delta_arrays d
             JOIN @schema@.object_delta od ON od.revision_id = d.revision_id AND od.seq = d.seq
             WHERE d.relid = p_relid AND d.key = p_key AND d.revision_id < p_rev AND d.col_ids OPERATOR(pg_catalog.&&) p_cols
             ORDER BY d.revision_id, d.seq LOOP
        olds := coalesce(r.old_values, array_fill(NULL::text, ARRAY[cardinality(r.col_ids)]));
        news := coalesce(r.new_values, array_fill(NULL::text, ARRAY[cardinality(r.col_ids)]));
        flags := coalesce(r.attr_flags, array_fill(0::smallint, ARRAY[cardinality(r.col_ids)]));
        changed := false;
        FOR i IN 1 .. cardinality(r.col_ids) LOOP
            c := r.col_ids[i];
            j := array_position(p_cols, c);
            CONTINUE WHEN j IS NULL;
            nd[j] := nd[j] + 1;
            f := coalesce(flags[i], 0);
            IF olds[i] IS NOT NULL OR news[i] IS NOT NULL THEN
                nv[j] := nv[j] + (olds[i] IS NOT NULL)::int + (news[i] IS NOT NULL)::int;
                IF p_apply THEN
                    -- the old value ('o', attr_flags bit 16) and the new one ('n', bit 8), each kept as its hash
                    INSERT INTO @schema@.erased_value
                    SELECT r.revision_id, r.seq, c, s.which,
                           @schema@.erase_value_hash(s.v, r.revision_id >= keyed_from, ipad, opad)
                    FROM (VALUES ('o', olds[i]), ('n', news[i])) AS s(which, v) WHERE s.v IS NOT NULL;
                    f := f | CASE WHEN olds[i] IS NOT NULL THEN 16 ELSE 0 END
                           | CASE WHEN news[i] IS NOT NULL THEN 8 ELSE 0 END;
                    olds[i] := NULL;
                    news[i] := NULL;
                END IF;
                changed := true;
            END IF;
            flags[i] := f;
        END LOOP;
        IF changed AND p_apply THEN
            IF r.scalar THEN
                -- the scalar form keeps its column; attr_flags says which value was erased
                UPDATE @schema@.object_delta od SET old_value = olds[1], new_value = news[1], attr_flags = flags
                WHERE od.revision_id = r.revision_id AND od.seq = r.seq;
            ELSE
                UPDATE @schema@.object_delta od
                SET old_values = CASE WHEN EXISTS (SELECT 1 FROM unnest(olds) v WHERE v IS NOT NULL) THEN olds END,
                    new_values = CASE WHEN EXISTS (SELECT 1 FROM unnest(news) v WHERE v IS NOT NULL) THEN news END,
                    attr_flags = flags
                WHERE od.revision_id = r.revision_id AND od.seq = r.seq;
            END IF;
        END IF;
    END LOOP;
    -- Keyframe rows hold whole images, indexed by column id.
    FOR j IN 1 .. cardinality(p_cols) LOOP
        c := p_cols[j];
        SELECT count(*) INTO kf_n FROM @schema@.keyframe kf
            CROSS JOIN LATERAL @schema@.keyframe_rows_of(kf.id, p_key) kr
        WHERE kf.relid = p_relid AND kr.vals[c] IS NOT NULL;
        nk[j] := kf_n;
        IF p_apply AND kf_n > 0 THEN
            -- the key's literal is rewritten inside its chunk (format 7), the others kept as they are
            UPDATE @schema@.keyframe_chunk ch
            SET rows[x.i] = (x.v[1:c - 1] || NULL::text || x.v[c + 1:])::text
            FROM (SELECT kc.keyframe_id, kc.first_key, kc.i, kc.rows[kc.i]::text[] AS v
                  FROM @schema@.keyframe kf
                  CROSS JOIN LATERAL (SELECT y.keyframe_id, y.first_key, y.rows, array_position(y.keys, p_key) AS i
                                      FROM @schema@.keyframe_chunk y
                                      WHERE y.keyframe_id = kf.id AND y.first_key <= p_key COLLATE "C"
                                      ORDER BY y.first_key DESC LIMIT 1) kc
                  WHERE kf.relid = p_relid) x
            WHERE ch.keyframe_id = x.keyframe_id AND ch.first_key = x.first_key AND x.i IS NOT NULL
              AND x.v[c] IS NOT NULL;
        END IF;
    END LOOP;
    IF p_apply THEN
        INSERT INTO @schema@.erasure VALUES (p_rev, p_relid, p_key, p_cols,
            (SELECT coalesce(sum(x), 0) FROM unnest(nv) x), (SELECT coalesce(sum(x), 0) FROM unnest(nk) x))
        ON CONFLICT ON CONSTRAINT erasure_pkey DO UPDATE
            SET n_values = erasure.n_values + EXCLUDED.n_values,
                n_keyframe_values = erasure.n_keyframe_values + EXCLUDED.n_keyframe_values;
    END IF;
    RETURN QUERY SELECT u.c, u.d, u.v, u.k FROM unnest(p_cols, nd, nv, nk) AS u(c, d, v, k) ORDER BY 1;
END
$fn$;
REVOKE ALL ON FUNCTION @schema@.erase_apply(oid, text, smallint[], bigint, boolean) FROM PUBLIC;

-- Retention (docs/history-store.md#retention): one row per `walrev prune
-- --apply` (or [history] retain): revisions below before_id were dropped
-- with their partitions; anchor is the checksum of revision before_id - 1,
-- the parent `walrev verify` starts the chain from, and keyframes as of
-- before_id - 1 hold every table at the cut. `walrev prune --import` of the
-- exported range deletes its row again.
CREATE TABLE IF NOT EXISTS @schema@.prune (
    before_id    bigint PRIMARY KEY,
    anchor       bytea NOT NULL,
    anchor_lsn   pg_lsn NOT NULL,           -- end LSN of revision before_id - 1
    anchor_time  timestamptz NOT NULL,      -- its commit time
    pruned_at    timestamptz NOT NULL DEFAULT now(),
    revisions    bigint NOT NULL,
    deltas       bigint NOT NULL,
    bytes        bigint NOT NULL,
    keyframes    integer NOT NULL,
    exported_to  text
);

-- The cut for "history before revision p_before": the highest partition
-- boundary at or below it above the current cut (whole partitions only);
-- NULL when no whole partition lies below.
CREATE OR REPLACE FUNCTION @schema@.prune_cut(p_before bigint) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
    SELECT max(p.hi) FROM @schema@.history_partitions() p
    WHERE p.tbl = 'revision' AND p.hi <= p_before
      AND p.hi > coalesce((SELECT max(before_id) FROM @schema@.prune), 1)
$fn$;

-- What pruning below p_cut drops: each partition wholly below it, its rows
-- and bytes (table, indexes, TOAST).
CREATE OR REPLACE FUNCTION @schema@.prune_plan(p_cut bigint)
RETURNS TABLE (tbl text, part regclass, lo bigint, hi bigint, n_rows bigint, bytes bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    p record;
    n bigint;
BEGIN
    FOR p IN SELECT * FROM @schema@.history_partitions() h WHERE h.hi <= p_cut ORDER BY h.lo, h.tbl LOOP
        EXECUTE 'SELECT count(*) FROM ' || p.part::text INTO n;
        RETURN QUERY SELECT p.tbl, p.part, p.lo, p.hi, n, pg_total_relation_size(p.part);
    END LOOP;
END
$fn$;

-- Drop the history below p_cut (a partition boundary, prune_cut): first a
-- keyframe as of p_cut - 1 of every table the history had then, and the
-- anchor (revision p_cut - 1's checksum); then the keyframes, erasures and
-- quarantined revisions before it, and the partitions. One transaction: run
-- it under a lock_timeout (dropping a partition locks its parent).
CREATE OR REPLACE FUNCTION @schema@.prune_apply(p_cut bigint, p_exported_to text)
RETURNS TABLE (tbl text, part text, lo bigint, hi bigint, n_rows bigint, bytes bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    a @schema@.revision;
    t record;
    v integer;
    kf bigint;
    n bigint;
    nk integer := 0;
    plan record;
    tot_rev bigint := 0;
    tot_delta bigint := 0;
    tot_bytes bigint := 0;
BEGIN
    IF p_cut IS NULL OR p_cut NOT IN (SELECT h.hi FROM @schema@.history_partitions() h WHERE h.tbl = 'revision') THEN
        RAISE EXCEPTION 'prune: % is not a partition boundary of the history', p_cut USING ERRCODE = '22023';
    END IF;
    SELECT * INTO a FROM @schema@.revision r WHERE r.id = p_cut - 1;
    IF a.id IS NULL THEN
        RAISE EXCEPTION 'prune: revision % (the anchor before the cut) is not in the history', p_cut - 1
            USING ERRCODE = '22023';
    END IF;
    FOR t IN SELECT DISTINCT rv.relid FROM @schema@.relation_version rv ORDER BY 1 LOOP
        SELECT x.version INTO v FROM @schema@.relation_at(t.relid, p_cut - 1) x;
        CONTINUE WHEN v IS NULL
            OR EXISTS (SELECT 1 FROM @schema@.keyframe k WHERE k.relid = t.relid AND k.revision_id = p_cut - 1);
        INSERT INTO @schema@.keyframe (relid, revision_id, n_rows) VALUES (t.relid, p_cut - 1, 0) RETURNING id INTO kf;
        -- folded from the keyframes before this one (keyframe_at must not start from it)
        PERFORM set_config('walrev.keyframe_below', kf::text, true);
        SELECT @schema@.keyframe_put(kf, v, 'SELECT s.key, s.vals FROM @schema@.snapshot_rows($1, $2) s',
                                     t.relid, p_cut - 1) INTO n;
        PERFORM set_config('walrev.keyframe_below', '', true);
        UPDATE @schema@.keyframe SET n_rows = n WHERE id = kf;
        nk := nk + 1;
    END LOOP;
    DELETE FROM @schema@.keyframe_chunk kc USING @schema@.keyframe k
        WHERE k.id = kc.keyframe_id AND k.revision_id < p_cut - 1;
    DELETE FROM @schema@.keyframe k WHERE k.revision_id < p_cut - 1;
    DELETE FROM @schema@.erased_value e WHERE e.revision_id < p_cut;
    DELETE FROM @schema@.erasure e WHERE e.revision_id < p_cut;
    DELETE FROM @schema@.quarantine q WHERE q.revision_id < p_cut;
    FOR plan IN SELECT * FROM @schema@.prune_plan(p_cut) LOOP
        IF plan.tbl = 'revision' THEN tot_rev := tot_rev + plan.n_rows; END IF;
        IF plan.tbl = 'object_delta' THEN tot_delta := tot_delta + plan.n_rows; END IF;
        tot_bytes := tot_bytes + plan.bytes;
        tbl := plan.tbl; part := plan.part::text; lo := plan.lo; hi := plan.hi; n_rows := plan.n_rows; bytes := plan.bytes;
        RETURN NEXT;
        EXECUTE 'DROP TABLE ' || plan.part::text;
    END LOOP;
    INSERT INTO @schema@.prune (before_id, anchor, anchor_lsn, anchor_time, revisions, deltas, bytes, keyframes,
                                exported_to)
    VALUES (p_cut, a.checksum, a.end_lsn, a.commit_time, tot_rev, tot_delta, tot_bytes, nk, p_exported_to);
END
$fn$;

-- [history] retain, the worker's round (replay/retain.c): prune below the
-- highest partition boundary whose first revision committed at least p_keep
-- ago (commit times grow with ids, so only boundaries are looked up). One
-- row (the cut, partitions dropped, keyframes written) when it pruned, none
-- when nothing is old enough.
CREATE OR REPLACE FUNCTION @schema@.prune_retain(p_keep interval)
RETURNS TABLE (cut bigint, partitions bigint, keyframes integer) LANGUAGE plpgsql AS $fn$
DECLARE
    c bigint;
    n bigint;
BEGIN
    SELECT max(h.hi) INTO c FROM @schema@.history_partitions() h JOIN @schema@.revision v ON v.id = h.hi
    WHERE h.tbl = 'revision' AND v.commit_time <= now() - p_keep
      AND h.hi > coalesce((SELECT max(pr.before_id) FROM @schema@.prune pr), 1);
    IF c IS NULL THEN
        RETURN;
    END IF;
    SELECT count(*) INTO n FROM @schema@.prune_apply(c, NULL);
    RETURN QUERY SELECT c, n, (SELECT pr.keyframes FROM @schema@.prune pr WHERE pr.before_id = c);
END
$fn$;
