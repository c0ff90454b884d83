-- walrev replay and audit: SQL views and functions over the history store.
-- @schema@ is replaced by the configured history schema (default walrev).
-- Applied after history.sql; every statement is idempotent. The CLI commands
-- (walrev snapshot/log/show/history/blame/diff) give the same answers as these;
-- docs/replay.md documents each one. Nothing here writes to the store.

-- ---------------------------------------------------------------------------
-- Points in history
-- ---------------------------------------------------------------------------

-- resolve_point(text) -> revision id. A point is a revision id (digits), an
-- LSN (X/X: the state after every transaction whose commit record ends at or
-- before it, i.e. the latest revision with end_lsn <= X) or a timestamp with
-- time zone (the latest revision with commit_time <= it). Raises with a clear
-- message (SQLSTATE 22023) for points before the history, beyond it, or unknown.
CREATE OR REPLACE FUNCTION @schema@.resolve_point(point text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    p       text := btrim(point);
    r       bigint;
    oldest  @schema@.revision;
    newest  @schema@.revision;
    lsn     pg_lsn;
    ts      timestamptz;
    known   pg_lsn;
BEGIN
    SELECT * INTO oldest FROM @schema@.revision ORDER BY id LIMIT 1;
    SELECT * INTO newest FROM @schema@.revision ORDER BY id DESC LIMIT 1;
    IF newest.id IS NULL THEN
        RAISE EXCEPTION 'the history is empty: no revision recorded yet' USING ERRCODE = '22023';
    END IF;
    IF p ~ '^[0-9]+$' THEN
        IF length(p) > 18 THEN
            RAISE EXCEPTION 'revision % is beyond the history: the newest revision is %', p, newest.id
                USING ERRCODE = '22023';
        END IF;
        r := p::bigint;
        IF r > newest.id THEN
            RAISE EXCEPTION 'revision % is beyond the history: the newest revision is %', r, newest.id
                USING ERRCODE = '22023';
        ELSIF r < oldest.id THEN
            RAISE EXCEPTION 'revision % is before the history: the oldest revision is %', r, oldest.id
                USING ERRCODE = '22023';
        ELSIF NOT EXISTS (SELECT 1 FROM @schema@.revision WHERE id = r) THEN
            RAISE EXCEPTION 'unknown revision %', r USING ERRCODE = '22023';
        END IF;
        RETURN r;
    ELSIF p ~ '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$' THEN
        lsn := p::pg_lsn;
        SELECT greatest(newest.end_lsn, max(c.end_lsn)) INTO known FROM @schema@.checkpoint c;
        IF lsn > known THEN
            RAISE EXCEPTION 'LSN % is beyond the history: the newest revision is % (end %)',
                lsn, newest.id, newest.end_lsn USING ERRCODE = '22023';
        END IF;
        SELECT id INTO r FROM @schema@.revision WHERE end_lsn <= lsn ORDER BY end_lsn DESC, id DESC LIMIT 1;
        IF r IS NULL THEN
            RAISE EXCEPTION 'LSN % is before the history: the oldest revision is % (end %)',
                lsn, oldest.id, oldest.end_lsn USING ERRCODE = '22023';
        END IF;
        RETURN r;
    ELSIF p LIKE '%-%' AND p LIKE '%:%' THEN
        BEGIN
            ts := p::timestamptz;
        EXCEPTION WHEN others THEN
            RAISE EXCEPTION 'invalid point "%": not a timestamp with time zone', p USING ERRCODE = '22023';
        END;
        IF ts > now() THEN
            RAISE EXCEPTION 'time % is in the future: the newest revision is % (committed at %)',
                ts, newest.id, newest.commit_time USING ERRCODE = '22023';
        END IF;
        SELECT id INTO r FROM @schema@.revision WHERE commit_time <= ts ORDER BY commit_time DESC, id DESC LIMIT 1;
        IF r IS NULL THEN
            RAISE EXCEPTION 'time % is before the history: the oldest revision is % (committed at %)',
                ts, oldest.id, oldest.commit_time USING ERRCODE = '22023';
        END IF;
        RETURN r;
    END IF;
    RAISE EXCEPTION 'invalid point "%": expected a revision id, an LSN (X/X) or a timestamp with time zone', p
        USING ERRCODE = '22023';
END
$fn$;

-- The relation version in force at revision p_rev: the newest version whose
-- valid_from is at or before the end of that revision. NULL (no row) when the
-- table was not tracked yet.
CREATE OR REPLACE FUNCTION @schema@.relation_at(p_relid oid, p_rev bigint)
RETURNS SETOF @schema@.relation_version LANGUAGE sql STABLE AS $fn$
    SELECT rv.*
    FROM @schema@.relation_version rv
    WHERE rv.relid = p_relid
      AND rv.valid_from <= (SELECT r.end_lsn FROM @schema@.revision r WHERE r.id = p_rev)
    ORDER BY rv.version DESC
    LIMIT 1
$fn$;

-- ---------------------------------------------------------------------------
-- Snapshots
-- ---------------------------------------------------------------------------

-- snapshot_rows(relid, R): every row of the table as it was after revision R,
-- as (key, vals) with vals[col_id]. At the newest revision this is row_state.
-- Otherwise: the latest keyframe at or before R, minus everything before the
-- last truncate in (K, R], with each key touched by a delta in (K, R] rebuilt
-- from its state after its last delete (the keyframe row if none) overlaid
-- with the latest new value per column. Cost: keyframe rows + deltas in (K, R]
-- (read by the object_delta primary key range), never the whole history.
CREATE OR REPLACE FUNCTION @schema@.snapshot_rows(p_relid oid, p_rev bigint)
RETURNS TABLE(key text, vals text[]) LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    newest   bigint;
    kf_id    bigint;
    kf_rev   bigint := 0;
    t_rev    bigint;
    t_seq    integer;
    maxcol   integer;
BEGIN
    SELECT max(id) INTO newest FROM @schema@.revision;
    IF p_rev >= newest THEN
        RETURN QUERY SELECT s.key, s.vals FROM @schema@.row_state s WHERE s.relid = p_relid;
        RETURN;
    END IF;
    SELECT k.id, k.revision_id INTO kf_id, kf_rev
    FROM @schema@.keyframe k
    WHERE k.relid = p_relid AND k.revision_id <= p_rev
    ORDER BY k.revision_id DESC, k.id DESC LIMIT 1;
    kf_rev := coalesce(kf_rev, 0);
    SELECT d.revision_id, d.seq INTO t_rev, t_seq
    FROM @schema@.object_delta d
    WHERE d.revision_id > kf_rev AND d.revision_id <= p_rev AND d.relid = p_relid AND d.op = 'T'
    ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
    IF t_rev IS NOT NULL THEN
        kf_id := NULL;          -- the truncate emptied the table: the keyframe no longer counts
        kf_rev := t_rev - 1;    -- deltas before the truncate inside its revision are cut by t_seq below
    ELSE
        t_rev := 0; t_seq := 0;
    END IF;
    SELECT max(c) INTO maxcol FROM @schema@.relation_version rv, unnest(rv.col_ids) c WHERE rv.relid = p_relid;
    RETURN QUERY
    WITH d AS (
        SELECT od.key, od.op, od.col_ids, od.new_values,
               row_number() OVER (ORDER BY od.revision_id, od.seq) AS ord
        FROM @schema@.object_delta od
        WHERE od.revision_id > kf_rev AND od.revision_id <= p_rev AND od.relid = p_relid
          AND od.op <> 'T' AND od.key IS NOT NULL
          AND (od.revision_id, od.seq) > (t_rev, t_seq)
    ), k AS (
        SELECT d.key,
               max(d.ord) FILTER (WHERE d.op = 'D') AS last_del,
               (array_agg(d.op ORDER BY d.ord DESC))[1] AS last_op
        FROM d GROUP BY d.key
    ), touched AS (
        SELECT k.key, k.last_del, CASE WHEN k.last_del IS NULL THEN kr.vals END AS base
        FROM k LEFT JOIN @schema@.keyframe_row kr ON kr.keyframe_id = kf_id AND kr.key = k.key
        WHERE k.last_op <> 'D'
    ), ov AS (
        SELECT DISTINCT ON (d.key, a.col_id) d.key, a.col_id, a.val
        FROM d JOIN touched t ON t.key = d.key
        CROSS JOIN LATERAL unnest(d.col_ids, d.new_values) AS a(col_id, val)
        WHERE d.ord > coalesce(t.last_del, 0) AND d.op IN ('I', 'U', 'S')
        ORDER BY d.key, a.col_id, d.ord DESC
    )
    SELECT kr.key, kr.vals
    FROM @schema@.keyframe_row kr
    WHERE kr.keyframe_id = kf_id AND NOT EXISTS (SELECT 1 FROM k WHERE k.key = kr.key)
    UNION ALL
    SELECT t.key,
           array_agg(CASE WHEN o.col_id IS NOT NULL THEN o.val ELSE t.base[g.c] END ORDER BY g.c)
    FROM touched t
    CROSS JOIN generate_series(1, coalesce(maxcol, 0)) AS g(c)
    LEFT JOIN ov o ON o.key = t.key AND o.col_id = g.c
    GROUP BY t.key;
END
$fn$;

-- row_at(relid, key, R): one object's vals[col_id] after revision R, NULL when
-- the row did not exist. Reads the object's own deltas through the
-- (relid, key, revision_id) index, the keyframe row and the table's truncates.
CREATE OR REPLACE FUNCTION @schema@.row_at(p_relid oid, p_key text, p_rev bigint)
RETURNS text[] LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    kf_id    bigint;
    kf_rev   bigint := 0;
    t_rev    bigint;
    t_seq    integer;
    base     text[];
    maxcol   integer;
    r_rev    bigint;
    r_seq    integer;
    last_op  "char";
    result   text[];
BEGIN
    SELECT k.id, k.revision_id INTO kf_id, kf_rev
    FROM @schema@.keyframe k
    WHERE k.relid = p_relid AND k.revision_id <= p_rev
    ORDER BY k.revision_id DESC, k.id DESC LIMIT 1;
    kf_rev := coalesce(kf_rev, 0);
    SELECT d.revision_id, d.seq INTO t_rev, t_seq
    FROM @schema@.object_delta d
    WHERE d.relid = p_relid AND d.key IS NULL AND d.op = 'T'
      AND d.revision_id > kf_rev AND d.revision_id <= p_rev
    ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
    IF t_rev IS NULL THEN
        SELECT kr.vals INTO base FROM @schema@.keyframe_row kr WHERE kr.keyframe_id = kf_id AND kr.key = p_key;
        r_rev := kf_rev; r_seq := 2147483647;
    ELSE
        r_rev := t_rev; r_seq := t_seq;
    END IF;
    -- the last delete of the key after the reset point starts it afresh
    SELECT d.revision_id, d.seq INTO t_rev, t_seq
    FROM @schema@.object_delta d
    WHERE d.relid = p_relid AND d.key = p_key AND d.revision_id <= p_rev AND d.op = 'D'
      AND (d.revision_id, d.seq) > (r_rev, r_seq)
    ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
    IF t_rev IS NOT NULL THEN
        base := NULL; r_rev := t_rev; r_seq := t_seq;
    END IF;
    SELECT d.op INTO last_op
    FROM @schema@.object_delta d
    WHERE d.relid = p_relid AND d.key = p_key AND d.revision_id <= p_rev
      AND (d.revision_id, d.seq) > (r_rev, r_seq)
    ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
    IF last_op IS NULL THEN
        RETURN base;            -- untouched since the reset point (NULL after a delete/truncate)
    END IF;
    SELECT max(c) INTO maxcol FROM @schema@.relation_version rv, unnest(rv.col_ids) c WHERE rv.relid = p_relid;
    WITH ov AS (
        SELECT DISTINCT ON (a.col_id) a.col_id, a.val
        FROM @schema@.object_delta d
        CROSS JOIN LATERAL unnest(d.col_ids, d.new_values) AS a(col_id, val)
        WHERE d.relid = p_relid AND d.key = p_key AND d.revision_id <= p_rev
          AND (d.revision_id, d.seq) > (r_rev, r_seq) AND d.op IN ('I', 'U', 'S')
        ORDER BY a.col_id, d.revision_id DESC, d.seq DESC
    )
    SELECT array_agg(CASE WHEN o.col_id IS NOT NULL THEN o.val ELSE base[g.c] END ORDER BY g.c)
    INTO result
    FROM generate_series(1, coalesce(maxcol, 0)) AS g(c) LEFT JOIN ov o ON o.col_id = g.c;
    RETURN result;
END
$fn$;

-- ---------------------------------------------------------------------------
-- Audit
-- ---------------------------------------------------------------------------

-- One row per revision, newest last; filter with WHERE and ORDER BY id DESC.
CREATE OR REPLACE VIEW @schema@.revision_log AS
SELECT r.id AS revision, r.commit_time, r.commit_lsn, r.end_lsn, r.xid,
       r.actor_type, r.actor_id, r.description,
       r.n_insert AS inserts, r.n_update AS updates, r.n_delete AS deletes,
       r.n_truncate AS truncates, r.n_snapshot AS snapshots, r.warnings
FROM @schema@.revision r;

-- One row per attribute change (one row with NULL column for a truncate or a
-- change without attributes), with the table's name at the time and the
-- actor in force for that change (the context before it in its revision).
CREATE OR REPLACE VIEW @schema@.object_history AS
SELECT d.revision_id AS revision, d.seq, r.commit_time, d.relid,
       rv.nspname || '.' || rv.relname AS table_name, d.key, d.op,
       c.actor_type, c.actor_id, c.description,
       a.col_id, rv.col_names[array_position(rv.col_ids, a.col_id)] AS column_name,
       a.old_value, a.new_value, coalesce(a.flags, 0)::smallint AS flags, a.n AS attr_no
FROM @schema@.object_delta d
JOIN @schema@.revision r ON r.id = d.revision_id
JOIN @schema@.relation_version rv ON rv.relid = d.relid AND rv.version = d.relversion
LEFT JOIN @schema@.revision_context c ON c.revision_id = d.revision_id AND c.context_no = d.context_no
LEFT JOIN LATERAL unnest(d.col_ids, d.old_values, d.new_values, d.attr_flags)
     WITH ORDINALITY AS a(col_id, old_value, new_value, flags, n) ON true;

-- blame(relid, key, R default newest): for each column of the version in force
-- at R, the change that last set the value the row has at R. Raises when the
-- row does not exist at R.
CREATE OR REPLACE FUNCTION @schema@.blame(p_relid oid, p_key text, p_rev bigint DEFAULT NULL)
RETURNS TABLE(column_name text, value text, revision bigint, seq integer, op "char",
              commit_time timestamptz, actor_type text, actor_id text, description text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    at_rev  bigint := coalesce(p_rev, (SELECT max(id) FROM @schema@.revision));
    cur     text[];
    rv      @schema@.relation_version;
    r_rev   bigint := 0;
    r_seq   integer := 0;
    x_rev   bigint;
    x_seq   integer;
BEGIN
    cur := @schema@.row_at(p_relid, p_key, at_rev);
    IF cur IS NULL THEN
        RAISE EXCEPTION 'no row with key % in table % at revision %', p_key, p_relid, at_rev
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO rv FROM @schema@.relation_at(p_relid, at_rev);
    -- changes before the row's last delete or the table's last truncate set nothing now visible
    SELECT d.revision_id, d.seq INTO x_rev, x_seq FROM @schema@.object_delta d
    WHERE d.relid = p_relid AND d.key IS NULL AND d.op = 'T' AND d.revision_id <= at_rev
    ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
    IF x_rev IS NOT NULL THEN r_rev := x_rev; r_seq := x_seq; END IF;
    SELECT d.revision_id, d.seq INTO x_rev, x_seq FROM @schema@.object_delta d
    WHERE d.relid = p_relid AND d.key = p_key AND d.op = 'D' AND d.revision_id <= at_rev
    ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
    IF x_rev IS NOT NULL AND (x_rev, x_seq) > (r_rev, r_seq) THEN r_rev := x_rev; r_seq := x_seq; END IF;
    RETURN QUERY
    WITH cols AS (
        SELECT c.col_id, c.name, c.n FROM unnest(rv.col_ids, rv.col_names) WITH ORDINALITY AS c(col_id, name, n)
    ), sets AS (
        SELECT DISTINCT ON (a.col_id) a.col_id, d.revision_id, d.seq, d.op, d.context_no
        FROM @schema@.object_delta d
        CROSS JOIN LATERAL unnest(d.col_ids) AS a(col_id)
        WHERE d.relid = p_relid AND d.key = p_key AND d.revision_id <= at_rev
          AND (d.revision_id, d.seq) > (r_rev, r_seq) AND d.op IN ('I', 'U', 'S')
        ORDER BY a.col_id, d.revision_id DESC, d.seq DESC
    )
    SELECT cols.name, cur[cols.col_id], s.revision_id, s.seq, s.op, r.commit_time,
           ctx.actor_type, ctx.actor_id, ctx.description
    FROM cols
    LEFT JOIN sets s ON s.col_id = cols.col_id
    LEFT JOIN @schema@.revision r ON r.id = s.revision_id
    LEFT JOIN @schema@.revision_context ctx ON ctx.revision_id = s.revision_id AND ctx.context_no = s.context_no
    ORDER BY cols.n;
END
$fn$;

-- diff(r1, r2, relid): net change of each object and column from the state
-- after r1 to the state after r2. change is 'added', 'removed' or 'changed';
-- added/removed rows list every column, changed rows only those that differ.
-- Only keys touched in (r1, r2] are compared, unless a truncate happened there.
CREATE OR REPLACE FUNCTION @schema@.diff(p_r1 bigint, p_r2 bigint, p_relid oid)
RETURNS TABLE(key text, change text, column_name text, old_value text, new_value text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v1 @schema@.relation_version;
    v2 @schema@.relation_version;
    lo bigint := least(p_r1, p_r2);
    hi bigint := greatest(p_r1, p_r2);
    any_truncate boolean;
BEGIN
    SELECT * INTO v1 FROM @schema@.relation_at(p_relid, p_r1);
    SELECT * INTO v2 FROM @schema@.relation_at(p_relid, p_r2);
    SELECT EXISTS (SELECT 1 FROM @schema@.object_delta d
                   WHERE d.revision_id > lo AND d.revision_id <= hi AND d.relid = p_relid AND d.op = 'T')
      INTO any_truncate;
    RETURN QUERY
    WITH touched AS (
        SELECT DISTINCT d.key FROM @schema@.object_delta d
        WHERE d.revision_id > lo AND d.revision_id <= hi AND d.relid = p_relid AND d.key IS NOT NULL
    ), a AS (
        SELECT s.key, s.vals FROM @schema@.snapshot_rows(p_relid, p_r1) s
        WHERE any_truncate OR s.key IN (SELECT t.key FROM touched t)
    ), b AS (
        SELECT s.key, s.vals FROM @schema@.snapshot_rows(p_relid, p_r2) s
        WHERE any_truncate OR s.key IN (SELECT t.key FROM touched t)
    ), cols AS (
        -- columns of either version: a column keeps its col_id across versions
        SELECT c.col_id, min(c.name) FILTER (WHERE c.side = 2) AS name2,
               min(c.name) FILTER (WHERE c.side = 1) AS name1,
               min(c.n + c.side * 10000) AS ord
        FROM (SELECT x.col_id, x.name, x.n, 2 AS side
              FROM unnest(v2.col_ids, v2.col_names) WITH ORDINALITY AS x(col_id, name, n)
              UNION ALL
              SELECT x.col_id, x.name, x.n, 1
              FROM unnest(v1.col_ids, v1.col_names) WITH ORDINALITY AS x(col_id, name, n)) c
        GROUP BY c.col_id
    ), j AS (
        SELECT coalesce(a.key, b.key) AS key,
               CASE WHEN a.key IS NULL THEN 'added' WHEN b.key IS NULL THEN 'removed' ELSE 'changed' END AS change,
               a.vals AS av, b.vals AS bv
        FROM a FULL JOIN b ON a.key = b.key
    )
    SELECT j.key, j.change, coalesce(cols.name2, cols.name1),
           CASE WHEN cols.name1 IS NULL THEN NULL ELSE j.av[cols.col_id] END,
           CASE WHEN cols.name2 IS NULL THEN NULL ELSE j.bv[cols.col_id] END
    FROM j CROSS JOIN cols
    WHERE (j.change = 'added' AND cols.name2 IS NOT NULL)
       OR (j.change = 'removed' AND cols.name1 IS NOT NULL)
       OR (j.change = 'changed' AND
           (CASE WHEN cols.name1 IS NULL THEN NULL ELSE j.av[cols.col_id] END) IS DISTINCT FROM
           (CASE WHEN cols.name2 IS NULL THEN NULL ELSE j.bv[cols.col_id] END))
    ORDER BY j.key, cols.ord;
END
$fn$;

-- revert_conflicts(R): changes by later revisions to an object and column
-- that revision R changed (djangit's rule). A later insert, delete or
-- truncate of the object conflicts with every column.
CREATE OR REPLACE FUNCTION @schema@.revert_conflicts(p_rev bigint)
RETURNS TABLE(relid oid, key text, column_name text, revision bigint, actor_type text, actor_id text)
LANGUAGE sql STABLE AS $fn$
    WITH mine AS (
        SELECT DISTINCT d.relid, d.key, a.col_id
        FROM @schema@.object_delta d
        CROSS JOIN LATERAL unnest(d.col_ids) AS a(col_id)
        WHERE d.revision_id = p_rev AND d.key IS NOT NULL
    ), later AS (
        SELECT m.relid, m.key, m.col_id, l.revision_id, l.context_no
        FROM mine m
        JOIN @schema@.object_delta l ON l.relid = m.relid AND l.key = m.key AND l.revision_id > p_rev
        WHERE l.op IN ('I', 'D', 'S') OR m.col_id = ANY (l.col_ids)
        UNION
        SELECT m.relid, m.key, m.col_id, l.revision_id, l.context_no
        FROM mine m
        JOIN @schema@.object_delta l ON l.relid = m.relid AND l.key IS NULL AND l.op = 'T' AND l.revision_id > p_rev
    )
    SELECT DISTINCT ON (l.relid, l.key, l.col_id)
           l.relid, l.key, nv.col_names[array_position(nv.col_ids, l.col_id)], l.revision_id,
           c.actor_type, c.actor_id
    FROM later l
    LEFT JOIN @schema@.revision_context c ON c.revision_id = l.revision_id AND c.context_no = l.context_no
    CROSS JOIN LATERAL (SELECT v.col_ids, v.col_names FROM @schema@.relation_version v
                        WHERE v.relid = l.relid ORDER BY (l.col_id = ANY (v.col_ids)) DESC, v.version DESC
                        LIMIT 1) nv
    ORDER BY l.relid, l.key, l.col_id, l.revision_id
$fn$;

-- ---------------------------------------------------------------------------
-- A read-only role for auditors and BI tools: can read history, never write.
-- ---------------------------------------------------------------------------
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'walrev_reader') THEN
        CREATE ROLE walrev_reader NOLOGIN;
    END IF;
END
$do$;
GRANT USAGE ON SCHEMA @schema@ TO walrev_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA @schema@ TO walrev_reader;
GRANT EXECUTE ON FUNCTION @schema@.resolve_point(text), @schema@.relation_at(oid, bigint),
    @schema@.snapshot_rows(oid, bigint), @schema@.row_at(oid, text, bigint),
    @schema@.blame(oid, text, bigint), @schema@.diff(bigint, bigint, oid),
    @schema@.revert_conflicts(bigint) TO walrev_reader;
