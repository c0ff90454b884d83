-- walrev replay and audit: SQL views and functions over the history store.
-- @schema@ is replaced by the configured history schema (default walrev).
-- Applied after history.sql; every statement is idempotent. The CLI commands
-- (walrev snapshot/log/show/history/blame/diff) give the same answers as these;
-- docs/replay.md documents each one. Nothing here writes to the store.
-- Array operators are named OPERATOR(pg_catalog.&&) (and @>, <@): these run
-- under the application's search_path, often in its own database, where an
-- extension such as intarray adds && @> <@ for integer[] and makes the bare
-- ones on smallint[] ambiguous ("operator is not unique", issue 13).

-- ---------------------------------------------------------------------------
-- Points in history
-- ---------------------------------------------------------------------------

-- point_before(cut, cut_at, what, oldest): the error for a point (what: "LSN
-- 0/1A2B3C8", "time ...") before the history kept: before the cut of a
-- pruned history (walrev prune), else before its first revision (oldest:
-- that revision as the message names it).
CREATE OR REPLACE FUNCTION @schema@.point_before(p_cut bigint, p_cut_at timestamptz, p_what text, p_oldest text)
RETURNS void LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF p_cut IS NOT NULL THEN
        RAISE EXCEPTION 'history before revision % was pruned on % (walrev prune): % is before it; the oldest revision kept is %',
            p_cut, p_cut_at::date, p_what, p_oldest USING ERRCODE = '22023';
    END IF;
    RAISE EXCEPTION '% is before the history: the oldest revision is %', p_what, p_oldest USING ERRCODE = '22023';
END
$fn$;

-- A point given as an LSN or a time that resolved to revision p_rev, where
-- the next revision is a gap (docs/history-store.md#gaps): the history is
-- exact up to the gap's from_lsn and again from the gap revision on, but
-- what the tables held in between was never seen. Such a point is refused
-- by name rather than answered as of p_rev, which would be silently wrong
-- wherever the unseen changes fell before it. An LSN at or before from_lsn
-- is exact; a time is exact only at p_rev's own commit time (the time of
-- from_lsn is not recorded).
CREATE OR REPLACE FUNCTION @schema@.refuse_gap_point(p_rev bigint, p_lsn pg_lsn, p_ts timestamptz, p_what text)
RETURNS void LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    g      @schema@.revision;
    prev   @schema@.revision;
    from_t text;
BEGIN
    IF p_rev IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO g FROM @schema@.revision WHERE id = p_rev + 1 AND actor_type = 'walrev' AND actor_id = 'gap';
    IF g.id IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO prev FROM @schema@.revision WHERE id = p_rev;
    from_t := g.meta->'gap'->>'from_lsn';
    IF from_t !~ '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$' THEN
        from_t := prev.end_lsn::text;
    END IF;
    IF p_lsn IS NOT NULL AND p_lsn <= from_t::pg_lsn THEN
        RETURN;
    END IF;
    IF p_ts IS NOT NULL AND p_ts <= prev.commit_time THEN
        RETURN;
    END IF;
    RAISE EXCEPTION '% falls inside gap revision %: changes between % and % were never seen (%), so what the tables held in between is unknown; the history knows them up to % (revision %, committed at %) and from revision % (end %) on',
        p_what, g.id, from_t, coalesce(g.meta->'gap'->>'to_lsn', g.end_lsn::text), coalesce(g.meta->'gap'->>'kind', '?'),
        from_t, prev.id, prev.commit_time, g.id, g.end_lsn USING ERRCODE = '22023';
END
$fn$;

-- resolve_bound(text) -> revision id. A point is a revision id (digits), an
-- LSN (X/X: the state after every transaction whose commit record ends at or
-- before it, i.e. the latest revision with end_lsn <= X) or a timestamp with
-- time zone (the latest revision with commit_time <= it) or xid:N (the
-- revision of transaction N; a 64-bit txid_current() value is taken modulo
-- 2^32, and after a wraparound the newest such revision). Raises with a clear
-- message (SQLSTATE 22023) for points before the history, beyond it, or unknown.
CREATE OR REPLACE FUNCTION @schema@.resolve_bound(point text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    p       text := btrim(point);
    r       bigint;
    oldest  @schema@.revision;
    newest  @schema@.revision;
    lsn     pg_lsn;
    ts      timestamptz;
    known   pg_lsn;
    cut     bigint;
    cut_at  timestamptz;
    win     interval;
BEGIN
    -- history pruned (walrev prune): points before the cut are refused by name
    SELECT pr.before_id, pr.pruned_at INTO cut, cut_at FROM @schema@.prune pr ORDER BY pr.before_id DESC LIMIT 1;
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
        IF r < cut THEN
            RAISE EXCEPTION 'history before revision % was pruned on % (walrev prune): revision % is gone; the oldest revision kept is %',
                cut, cut_at::date, r, cut USING ERRCODE = '22023';
        ELSIF r > newest.id THEN
            RAISE EXCEPTION 'revision % is beyond the history: the newest revision is %', r, newest.id
                USING ERRCODE = '22023';
        ELSIF r < oldest.id THEN
            RAISE EXCEPTION 'revision % is before the history: the oldest revision is %', r, oldest.id
                USING ERRCODE = '22023';
        ELSIF NOT EXISTS (SELECT 1 FROM @schema@.revision WHERE id = r) THEN
            RAISE EXCEPTION 'unknown revision %', r USING ERRCODE = '22023';
        END IF;
        RETURN r;
    ELSIF p ~* '^xid:[0-9]{1,20}$' THEN
        SELECT id INTO r FROM @schema@.revision
        WHERE xid = (substr(p, 5)::numeric % 4294967296)::bigint ORDER BY id DESC LIMIT 1;
        IF r IS NULL THEN
            RAISE EXCEPTION 'no revision of transaction % in the history', substr(p, 5) USING ERRCODE = '22023';
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
            PERFORM @schema@.point_before(cut, cut_at, 'LSN ' || lsn, oldest.id || ' (end ' || oldest.end_lsn || ')');
        END IF;
        RETURN r;
    ELSIF p LIKE '%-%' AND p LIKE '%:%' THEN
        BEGIN
            ts := p::timestamptz;
        EXCEPTION WHEN others THEN
            -- 22007 (invalid_datetime_format): a point of the wrong form, which
            -- the CLI reports as a usage error (exit 2), not a runtime one
            RAISE EXCEPTION 'invalid point "%": not a timestamp with time zone', p USING ERRCODE = '22007';
        END;
        IF ts > now() THEN
            RAISE EXCEPTION 'time % is in the future: the newest revision is % (committed at %)',
                ts, newest.id, newest.commit_time USING ERRCODE = '22023';
        END IF;
        -- the newest revision committed at or before ts: a window ending at ts that
        -- holds any revision holds it, so windows found through the BRIN on
        -- commit_time, widened until one does, read a few ranges where the whole
        -- history before ts was read and sorted (issue 16, Q: `log --until`)
        FOREACH win IN ARRAY ARRAY['1 minute', '1 hour', '1 day', '31 days']::interval[] LOOP
            SELECT id INTO r FROM @schema@.revision WHERE commit_time <= ts AND commit_time >= ts - win
            ORDER BY commit_time DESC, id DESC LIMIT 1;
            EXIT WHEN r IS NOT NULL;
        END LOOP;
        IF r IS NULL THEN
            SELECT id INTO r FROM @schema@.revision WHERE commit_time <= ts ORDER BY commit_time DESC, id DESC LIMIT 1;
        END IF;
        IF r IS NULL THEN
            PERFORM @schema@.point_before(cut, cut_at, 'time ' || ts,
                                          oldest.id || ' (committed at ' || oldest.commit_time || ')');
        END IF;
        RETURN r;
    END IF;
    RAISE EXCEPTION 'invalid point "%": expected a revision id, an LSN (X/X) or a timestamp with time zone', p
        USING ERRCODE = '22P02'; -- invalid_text_representation: a usage error for the CLI
END
$fn$;

-- resolve_point(text): resolve_bound's revision as a state of the tables,
-- so an LSN or a time inside a gap is refused (refuse_gap_point): snapshot,
-- blame, diff, restore, revert and branch ask for states. Ranges and
-- listings (log and history --since/--until, show, prune --before) take
-- resolve_bound's revision as it is: a bound inside a gap lists what the
-- history holds.
CREATE OR REPLACE FUNCTION @schema@.resolve_point(point text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    r bigint := @schema@.resolve_bound(point);
    p text := btrim(point);
BEGIN
    IF p ~ '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$' THEN
        PERFORM @schema@.refuse_gap_point(r, p::pg_lsn, NULL, 'LSN ' || p);
    ELSIF p LIKE '%-%' AND p LIKE '%:%' THEN
        PERFORM @schema@.refuse_gap_point(r, NULL, p::timestamptz, 'time ' || p::timestamptz);
    END IF;
    RETURN r;
END
$fn$;

-- The relation version in force at revision p_rev: the newest version whose
-- valid_from is at or before the end of that revision. A table with no
-- recorded change yet at p_rev (its first version starts later) gets its
-- first version: it was empty then, as far as the history knows.
CREATE OR REPLACE FUNCTION @schema@.relation_at(p_relid oid, p_rev bigint)
RETURNS SETOF @schema@.relation_version LANGUAGE sql STABLE AS $fn$
    SELECT rv.*
    FROM @schema@.relation_version rv
    CROSS JOIN (SELECT r.end_lsn FROM @schema@.revision r WHERE r.id = p_rev) r
    WHERE rv.relid = p_relid
    ORDER BY (rv.valid_from <= r.end_lsn) DESC,
             CASE WHEN rv.valid_from <= r.end_lsn THEN rv.version END DESC, rv.version
    LIMIT 1
$fn$;

-- ---------------------------------------------------------------------------
-- Snapshots
-- ---------------------------------------------------------------------------

-- delta_old_key(...): for an UPDATE that changed a key column, the key the row
-- had before (the history sink records such an UPDATE under the new key); NULL
-- when no key column changed. Same JSON form as the sink's keys (docs/replay.md
-- notes the one difference: \b and \f inside key values).
CREATE OR REPLACE FUNCTION @schema@.delta_old_key(p_relid oid, p_version integer, p_key text,
    p_col_ids smallint[], p_old text[], p_new text[], p_flags smallint[], p_old_unknown boolean)
RETURNS text LANGUAGE sql STABLE COST 1000 AS $fn$
    WITH kc AS (
        SELECT c.col_id, (row_number() OVER (ORDER BY c.n) - 1)::integer AS kpos
        FROM @schema@.relation_version rv,
             unnest(rv.col_ids, rv.col_is_key) WITH ORDINALITY AS c(col_id, is_key, n)
        WHERE rv.relid = p_relid AND rv.version = p_version AND c.is_key
    ), v AS (
        SELECT kc.kpos, (p_key::json ->> kc.kpos) AS cur, p_old[a.i] AS old,
               (a.i IS NOT NULL AND NOT p_old_unknown AND coalesce(p_flags[a.i], 0) & 3 = 0
                AND p_old[a.i] IS DISTINCT FROM p_new[a.i]) AS changed
        FROM kc
        LEFT JOIN LATERAL (SELECT s.i FROM generate_subscripts(p_col_ids, 1) AS s(i)
                           WHERE p_col_ids[s.i] = kc.col_id LIMIT 1) a ON true
    )
    SELECT CASE WHEN bool_or(v.changed) THEN
        '[' || string_agg(coalesce(to_json(CASE WHEN v.changed THEN v.old ELSE v.cur END)::text, 'null'),
                          ',' ORDER BY v.kpos) || ']'
    END
    FROM v
$fn$;

-- Key columns (col_ids) of every version of a table.
CREATE OR REPLACE FUNCTION @schema@.key_columns(p_relid oid)
RETURNS TABLE(version integer, key_ids smallint[]) LANGUAGE sql STABLE AS $fn$
    SELECT rv.version, coalesce(array_agg(c.col_id) FILTER (WHERE c.is_key), '{}')
    FROM @schema@.relation_version rv, unnest(rv.col_ids, rv.col_is_key) AS c(col_id, is_key)
    WHERE rv.relid = p_relid
    GROUP BY rv.version
$fn$;

-- keyframe_at(relid, R): the latest keyframe of the table at or before R
-- (no row: none), where a snapshot at R starts unless a truncate came since.
-- walrev verify sets walrev.keyframe_below to a keyframe's id, and asks at
-- that keyframe's revision, to rebuild its image without it (from the
-- keyframes before it and the deltas), so a keyframe_row changed after the
-- fact is found; unset for everyone else. "Before" is in (revision, id)
-- order, not id order: walrev prune writes its keyframes at the cut after
-- the worker may have taken later ones (larger revision, smaller id).
CREATE OR REPLACE FUNCTION @schema@.keyframe_at(p_relid oid, p_rev bigint)
RETURNS TABLE(keyframe_id bigint, revision_id bigint) LANGUAGE sql STABLE AS $fn$
    SELECT k.id, k.revision_id
    FROM @schema@.keyframe k
    WHERE k.relid = p_relid AND k.revision_id <= p_rev
      AND (k.revision_id < p_rev
           OR k.id < coalesce(nullif(current_setting('walrev.keyframe_below', true), '')::bigint,
                              9223372036854775807))
    ORDER BY k.revision_id DESC, k.id DESC LIMIT 1
$fn$;

-- snapshot_plan(relid, R): where a snapshot at R starts. keyframe_id: the
-- keyframe to start from (NULL: empty); the deltas to apply are those of the
-- table in revisions (from_rev, R] at positions after (cut_rev, cut_seq) (the
-- last truncate, else (0, 0)); key_changes: whether an UPDATE in there changed
-- a key column (rows then move between keys, which only snapshot_rows' general
-- path handles). Callers cut the truncate's revision with
-- NOT (revision_id = cut_rev AND seq <= cut_seq) next to the revision range,
-- not with a row comparison, which no index of object_delta can use.
-- The truncate and the key changes come from one aggregate over the range, not
-- EXISTS or ORDER BY ... LIMIT 1: for those the planner costs a sequential scan
-- that stops at the first match as cheaper than the range, and with no match
-- (the common case) it then reads the table's whole history.
CREATE OR REPLACE FUNCTION @schema@.snapshot_plan(p_relid oid, p_rev bigint)
RETURNS TABLE(keyframe_id bigint, from_rev bigint, cut_rev bigint, cut_seq integer, key_changes boolean)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN QUERY SELECT p.keyframe_id, p.from_rev, p.cut_rev, p.cut_seq, p.key_changes
                 FROM @schema@.snapshot_plan_by_key(p_relid, p_rev, 0) p;
END
$fn$;

-- table_keys(relid, max): the keys the table has ever had (their deltas' keys),
-- found by skipping through the (relid, key, revision_id) B-tree one key at a
-- time, so the cost is the number of keys, not of deltas; at most max + 1
-- (a caller that gets more than max takes another path).
CREATE OR REPLACE FUNCTION @schema@.table_keys(p_relid oid, p_max integer)
RETURNS TABLE(key text) LANGUAGE sql STABLE AS $fn$
    WITH RECURSIVE k(key, n) AS (
        (SELECT od.key, 1 FROM @schema@.object_delta od
         WHERE od.relid = p_relid AND od.key IS NOT NULL ORDER BY od.key LIMIT 1)
        UNION ALL
        SELECT (SELECT od.key FROM @schema@.object_delta od
                WHERE od.relid = p_relid AND od.key > k.key ORDER BY od.key LIMIT 1), k.n + 1
        FROM k WHERE k.key IS NOT NULL AND k.n <= p_max
    )
    SELECT k.key FROM k WHERE k.key IS NOT NULL
$fn$;

-- snapshot_plan_by_key(relid, R, max_keys): snapshot_plan, read key by key for
-- a table of at most max_keys keys ever (0: never). Its deltas then come
-- through the B-tree (table_keys, then each key's deltas since the keyframe)
-- instead of the BRIN range of revisions, which holds every table's deltas
-- since the keyframe: a small, busy table next to large ones is keyframed for
-- the cost of its own deltas. by_key says the key path was taken (it needs a
-- keyframe and no more keys than max_keys).
CREATE OR REPLACE FUNCTION @schema@.snapshot_plan_by_key(p_relid oid, p_rev bigint, p_max_keys integer)
RETURNS TABLE(keyframe_id bigint, from_rev bigint, cut_rev bigint, cut_seq integer, key_changes boolean,
              by_key boolean)
LANGUAGE plpgsql STABLE SET jit = off AS $fn$
DECLARE
    kf_id  bigint;
    kf_rev bigint;
    last_t bigint[];
    last_k bigint[];
    key_ids smallint[];
    deltas text;
BEGIN
    -- key columns of any version: delta_old_key itself reads the delta's version
    SELECT coalesce(array_agg(DISTINCT c.col_id), '{}') INTO key_ids
    FROM @schema@.relation_version rv, unnest(rv.col_ids, rv.col_is_key) AS c(col_id, is_key)
    WHERE rv.relid = p_relid AND c.is_key;
    SELECT k.keyframe_id, k.revision_id INTO kf_id, kf_rev FROM @schema@.keyframe_at(p_relid, p_rev) k;
    kf_rev := coalesce(kf_rev, 0);
    by_key := false;
    IF kf_id IS NOT NULL AND p_max_keys > 0 THEN
        SELECT count(*) <= p_max_keys INTO by_key FROM @schema@.table_keys(p_relid, p_max_keys);
    END IF;
    IF by_key THEN
        deltas := '@schema@.table_keys($1, $5) t CROSS JOIN LATERAL (SELECT * FROM @schema@.object_delta_arrays d '
                  'WHERE d.relid = $1 AND d.key = t.key) od WHERE true';
    ELSE
        -- After a keyframe, relid::bigint: the revision range goes to the BRIN, never to the
        -- (relid, key, revision_id) B-tree, which would read every delta of the table (the
        -- planner's pick without statistics). Before the first keyframe the whole history of
        -- the table is wanted: the B-tree finds it where the BRIN range is the whole store.
        deltas := format('@schema@.object_delta_arrays od WHERE od.relid%s = $1',
                         CASE WHEN kf_rev = 0 THEN '' ELSE '::bigint' END);
    END IF;
    EXECUTE format($q$
    SELECT max(ARRAY[od.revision_id, od.seq]) FILTER (WHERE od.op = 'T'),
           max(ARRAY[od.revision_id, od.seq]) FILTER (
               WHERE od.op = 'U'
                 -- CASE: the planner would otherwise call delta_old_key on every delta
                 AND CASE WHEN od.col_ids OPERATOR(pg_catalog.&&) $4
                          THEN @schema@.delta_old_key($1, od.relversion, od.key, od.col_ids, od.old_values,
                                                      od.new_values, od.attr_flags, od.old_unknown) <> od.key
                          ELSE false END)
    FROM %s AND od.revision_id > $2 AND od.revision_id <= $3 AND od.op IN ('T', 'U')
    $q$, deltas)
    INTO last_t, last_k USING p_relid, kf_rev, p_rev, key_ids, p_max_keys;
    IF by_key THEN
        -- truncates have no key: the B-tree finds them under key IS NULL
        SELECT max(ARRAY[od.revision_id, od.seq]) INTO last_t
        FROM @schema@.object_delta od
        WHERE od.relid = p_relid AND od.key IS NULL AND od.op = 'T' AND od.revision_id > kf_rev
          AND od.revision_id <= p_rev;
    END IF;
    keyframe_id := kf_id; from_rev := kf_rev; cut_rev := 0; cut_seq := 0;
    IF last_t IS NOT NULL THEN
        keyframe_id := NULL;            -- the truncate emptied the table: the keyframe no longer counts
        from_rev := last_t[1] - 1;      -- deltas before the truncate inside its revision are cut by cut_seq
        cut_rev := last_t[1]; cut_seq := last_t[2];
    END IF;
    -- only a key change after the truncate moves a row that the snapshot still holds
    key_changes := last_k IS NOT NULL AND (last_t IS NULL OR last_k > last_t);
    RETURN NEXT;
END
$fn$;

-- max_col_id(relid): the highest column id any version of the table used (0
-- for none): the length of a vals array the folds below build.
CREATE OR REPLACE FUNCTION @schema@.max_col_id(p_relid oid) RETURNS integer
LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(max(c), 0) FROM @schema@.relation_version rv, unnest(rv.col_ids) c WHERE rv.relid = p_relid
$fn$;

-- fold_query(relid, deltas, unchanged, keys): the text of the fold without
-- key changes that snapshot_rows and rows_at run, for a table of relid's
-- columns. deltas is the query of the deltas to fold (key COLLATE "C", op,
-- col_ids, new_values, ord in (revision_id, seq) order); unchanged the query
-- of the keyframe rows no delta touched (it may read the CTE pk of the keys
-- the deltas touch); keys, when given, a CTE k both may read. Each key
-- touched is rebuilt from its keyframe row (none after its last delete) with
-- the latest new value per column, by hash joins and aggregates alone. The
-- caller's parameters: $6 the keyframe id, the others its deltas'.
CREATE OR REPLACE FUNCTION @schema@.fold_query(p_relid oid, p_deltas text, p_unchanged text,
    p_keys text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    cols text;
BEGIN
    SELECT string_agg(format('CASE WHEN o.ids OPERATOR(pg_catalog.@>) ARRAY[%1$s::smallint] THEN o.vs[array_position(o.ids, %1$s::smallint)] '
                             'ELSE kr.vals[%1$s] END', c), ', ' ORDER BY c)
      INTO cols FROM generate_series(1, @schema@.max_col_id(p_relid)) c;
    RETURN format($q$
    WITH %s d AS (%s
    ), pk AS (
        SELECT d.key, max(d.ord) AS last_ord, max(d.ord) FILTER (WHERE d.op = 'D') AS last_del
        FROM d GROUP BY d.key
    ), live AS (
        SELECT pk.key, pk.last_del FROM pk JOIN d ON d.key = pk.key AND d.ord = pk.last_ord
        WHERE d.op <> 'D'
    ), attrs AS MATERIALIZED (
        SELECT d.key, a.col_id, a.val, d.ord
        FROM d JOIN live ON live.key = d.key
        CROSS JOIN LATERAL unnest(d.col_ids, d.new_values) AS a(col_id, val)
        WHERE d.ord > coalesce(live.last_del, 0) AND d.op IN ('I', 'U', 'S')
    ), latest AS (
        SELECT attrs.key, attrs.col_id, max(attrs.ord) AS ord FROM attrs GROUP BY attrs.key, attrs.col_id
    ), o AS (
        SELECT a.key, array_agg(a.col_id) AS ids, array_agg(a.val) AS vs
        FROM attrs a JOIN latest l ON l.key = a.key AND l.col_id = a.col_id AND l.ord = a.ord
        GROUP BY a.key
    )
    %s
    UNION ALL
    SELECT live.key::text, ARRAY[%s]::text[]
    FROM live
    LEFT JOIN o ON o.key = live.key
    %s
    $q$, CASE WHEN p_keys IS NOT NULL THEN format('k AS (%s),', p_keys) ELSE '' END, p_deltas, p_unchanged,
         coalesce(cols, 'NULL'),
         -- keyed (rows_at): each key's one keyframe chunk; else the keyframe whole, hash-joined
         CASE WHEN p_keys IS NOT NULL
              THEN 'LEFT JOIN LATERAL @schema@.keyframe_rows_of($6, live.key) kr ON live.last_del IS NULL'
              ELSE 'LEFT JOIN @schema@.keyframe_row kr ON kr.keyframe_id = $6 AND kr.key COLLATE "C" = live.key
         AND live.last_del IS NULL' END);
END
$fn$;

-- snapshot_rows(relid, R): every row of the table as it was after revision R,
-- as (key, vals) with vals[col_id], at any revision including the newest:
-- the latest keyframe at or before R, minus everything before the
-- last truncate in (K, R], and each key touched by a delta in (K, R] rebuilt:
-- from its state after its last delete (the keyframe row if none), overlaid
-- with the latest new value per column. An UPDATE that changed the key moves
-- the row: it deletes the old key and the new key inherits the old key's
-- image (followed recursively through chains of key changes). Cost: keyframe
-- rows + deltas in (K, R], read by the object_delta primary key range.
-- The CTEs hide their sizes from the planner (it guesses 200 keys), and a
-- nested loop over hundreds of thousands of deltas never ends: every join
-- here is a bulk join, so nested loops are off inside the function (and JIT,
-- which the resulting cost estimates would trigger for nothing).
CREATE OR REPLACE FUNCTION @schema@.snapshot_rows(p_relid oid, p_rev bigint)
RETURNS TABLE(key text, vals text[]) LANGUAGE plpgsql STABLE
SET enable_nestloop = off SET jit = off AS $fn$
DECLARE
    moves    boolean;
    kf_id    bigint;
    kf_rev   bigint := 0;
    t_rev    bigint;
    t_seq    integer;
    maxcol   integer;
BEGIN
    SELECT p.keyframe_id, p.from_rev, p.cut_rev, p.cut_seq, p.key_changes
      INTO kf_id, kf_rev, t_rev, t_seq, moves
      FROM @schema@.snapshot_plan(p_relid, p_rev) p;
    maxcol := @schema@.max_col_id(p_relid);
    -- Without key changes the rows are rebuilt by hash joins and aggregates alone.
    IF NOT moves THEN
        RETURN QUERY EXECUTE @schema@.fold_query(p_relid, $q$
            SELECT od.key COLLATE "C" AS key, od.op, od.col_ids, od.new_values,
                   row_number() OVER (ORDER BY od.revision_id, od.seq) AS ord
            FROM @schema@.object_delta_arrays od
            WHERE od.revision_id > $2 AND od.revision_id <= $3 AND od.relid::bigint = $1
              AND od.op <> 'T' AND od.key IS NOT NULL AND NOT (od.revision_id = $4 AND od.seq <= $5)
        $q$, $q$
        SELECT kr.key::text, kr.vals FROM @schema@.keyframe_row kr
        WHERE kr.keyframe_id = $6 AND NOT EXISTS (SELECT 1 FROM pk WHERE pk.key = kr.key COLLATE "C")
        $q$)
        USING p_relid, kf_rev, p_rev, t_rev, t_seq, kf_id;
        RETURN;
    END IF;
    RETURN QUERY
    WITH RECURSIVE kv AS (
        SELECT * FROM @schema@.key_columns(p_relid)
    ), d0 AS (
        SELECT od.key, od.op, od.col_ids, od.new_values,
               CASE WHEN od.op = 'U' AND od.col_ids OPERATOR(pg_catalog.&&) kv.key_ids
                    THEN @schema@.delta_old_key(p_relid, od.relversion, od.key, od.col_ids, od.old_values,
                                                od.new_values, od.attr_flags, od.old_unknown) END AS old_key,
               row_number() OVER (ORDER BY od.revision_id, od.seq) AS ord
        FROM @schema@.object_delta_arrays od
        JOIN kv ON kv.version = od.relversion
        WHERE od.revision_id > kf_rev AND od.revision_id <= p_rev AND od.relid::bigint = p_relid
          AND od.op <> 'T' AND od.key IS NOT NULL
          AND NOT (od.revision_id = t_rev AND od.seq <= t_seq)
    ), d AS (
        -- a key change becomes a delete of the old key and a move-in ('M') of the new one
        SELECT d0.key, d0.op, d0.col_ids, d0.new_values, d0.ord, NULL::text AS src
        FROM d0 WHERE d0.old_key IS NULL OR d0.old_key = d0.key
        UNION ALL
        SELECT d0.old_key, 'D'::"char", NULL, NULL, d0.ord, NULL FROM d0 WHERE d0.old_key <> d0.key
        UNION ALL
        SELECT d0.key, 'M'::"char", d0.col_ids, d0.new_values, d0.ord, d0.old_key FROM d0 WHERE d0.old_key <> d0.key
    ), resets AS (
        SELECT d.key, d.ord, d.op, d.src,
               lag(d.ord) OVER w AS prev_ord, lag(d.op) OVER w AS prev_op, lag(d.src) OVER w AS prev_src
        FROM d WHERE d.op IN ('D', 'M')
        WINDOW w AS (PARTITION BY d.key ORDER BY d.ord)
    ), k AS (
        SELECT d.key, (array_agg(d.op ORDER BY d.ord DESC))[1] AS last_op FROM d GROUP BY d.key
    ), lr AS (
        SELECT DISTINCT ON (r.key) r.key, r.ord, r.op, r.src FROM resets r ORDER BY r.key, r.ord DESC
    ), chain AS (
        -- per live key, the segments of its life back to a delete, an insert or the keyframe:
        -- (cur, [lo, hi)) in delta order; a segment that starts with 'M' continues in its source key
        SELECT k.key AS root, k.key AS cur, coalesce(lr.ord, 0) AS lo, NULL::bigint AS hi,
               lr.op AS lo_op, lr.src AS lo_src, 0 AS depth
        FROM k LEFT JOIN lr ON lr.key = k.key
        WHERE k.last_op <> 'D'
        UNION ALL
        SELECT c.root, c.lo_src, coalesce(r.prev_ord, 0), c.lo, r.prev_op, r.prev_src, c.depth + 1
        FROM chain c JOIN resets r ON r.key = c.lo_src AND r.ord = c.lo AND r.op = 'D'
        WHERE c.lo_op = 'M' AND c.depth < 100000
    ), ov AS (
        SELECT DISTINCT ON (c.root, a.col_id) c.root, a.col_id, a.val
        FROM chain c
        JOIN d ON d.key = c.cur AND d.ord >= c.lo AND (c.hi IS NULL OR d.ord < c.hi)
              AND d.op IN ('I', 'U', 'S', 'M')
        CROSS JOIN LATERAL unnest(d.col_ids, d.new_values) AS a(col_id, val)
        ORDER BY c.root, a.col_id, d.ord DESC
    ), base AS (
        SELECT c.root, kr.vals
        FROM chain c JOIN @schema@.keyframe_row kr ON kr.keyframe_id = kf_id AND kr.key = c.cur
        WHERE c.lo_op IS NULL
    )
    SELECT kr.key, kr.vals
    FROM @schema@.keyframe_row kr
    WHERE kr.keyframe_id = kf_id AND NOT EXISTS (SELECT 1 FROM k WHERE k.key = kr.key)
    UNION ALL
    SELECT t.key,
           array_agg(CASE WHEN o.col_id IS NOT NULL THEN o.val ELSE b.vals[g.c] END ORDER BY g.c)
    FROM (SELECT k.key FROM k WHERE k.last_op <> 'D') t
    LEFT JOIN base b ON b.root = t.key
    CROSS JOIN generate_series(1, coalesce(maxcol, 0)) AS g(c)
    LEFT JOIN ov o ON o.root = t.key AND o.col_id = g.c
    GROUP BY t.key;
END
$fn$;

-- rows_at(relid, keys, R): the rows among keys that exist after revision R,
-- as (key, vals), the same as snapshot_rows(relid, R) restricted to those keys
-- but read key by key: each key's keyframe row and its deltas since through
-- the (relid, key, revision_id) B-tree, so the cost is that of the keys, not
-- of the table and every delta since its keyframe (diff of two points 1,000
-- revisions apart at 10^7 deltas of a 1M-row table folded the whole table
-- twice: over 90 s). When an UPDATE in the range changed a key (rows move
-- between keys) or there are more than 50,000 keys, it is snapshot_rows,
-- filtered.
CREATE OR REPLACE FUNCTION @schema@.rows_at(p_relid oid, p_keys text[], p_rev bigint)
RETURNS TABLE(key text, vals text[]) LANGUAGE plpgsql STABLE SET jit = off AS $fn$
DECLARE
    plan     record; -- snapshot_plan's: the keyframe, the deltas after it, any key change among them
BEGIN
    SELECT * INTO plan FROM @schema@.snapshot_plan(p_relid, p_rev);
    IF plan.key_changes OR cardinality(p_keys) > 50000 THEN
        RETURN QUERY SELECT s.key, s.vals FROM @schema@.snapshot_rows(p_relid, p_rev) s
                     WHERE s.key = ANY (p_keys);
        RETURN;
    END IF;
    -- snapshot_rows' fold without key changes, over the keys' own deltas
    RETURN QUERY EXECUTE @schema@.fold_query(p_relid, $q$
        SELECT od.key COLLATE "C" AS key, od.op, od.col_ids, od.new_values,
               row_number() OVER (ORDER BY od.revision_id, od.seq) AS ord
        FROM k CROSS JOIN LATERAL (
            SELECT * FROM @schema@.object_delta_arrays x
            WHERE x.relid = $1 AND x.key = k.key AND x.revision_id > $2 AND x.revision_id <= $3
              AND x.op <> 'T' AND NOT (x.revision_id = $4 AND x.seq <= $5)) od
    $q$, $q$
    SELECT kr.key::text, kr.vals FROM k
    CROSS JOIN LATERAL @schema@.keyframe_rows_of($6, k.key) kr
    WHERE NOT EXISTS (SELECT 1 FROM pk WHERE pk.key = k.key)
    $q$, $q$
        SELECT DISTINCT u.key COLLATE "C" AS key FROM unnest($7::text[]) AS u(key) WHERE u.key IS NOT NULL
    $q$)
    USING p_relid, plan.from_rev, p_rev, plan.cut_rev, plan.cut_seq, plan.keyframe_id, p_keys;
END
$fn$;

-- current_rows(relid): every row of the table after the newest revision, as
-- (key, vals) with vals[col_id] (snapshot_rows at the newest revision).
CREATE OR REPLACE FUNCTION @schema@.current_rows(p_relid oid)
RETURNS TABLE(key text, vals text[]) LANGUAGE sql STABLE AS $fn$
    SELECT s.key, s.vals FROM @schema@.snapshot_rows(p_relid, (SELECT max(r.id) FROM @schema@.revision r)) s
$fn$;

-- moved_away(relid, key, (rev, seq), R): whether an UPDATE after position
-- (rev, seq) and at or before revision R, recorded under another key, moved
-- the row away from key (delta_old_key of it is key). The candidates come from
-- key_move (every UPDATE naming a key column, docs/history-store.md#key-moves),
-- each checked against its delta as before: the cost is the table's key moves
-- in the range, not its deltas (an object last changed 10^6 revisions ago
-- read all of them: 1.2 s). plpgsql: its statement's plan is kept for the
-- session, where a SQL function's body is planned again at every call.
CREATE OR REPLACE FUNCTION @schema@.moved_away(p_relid oid, p_key text, p_rev bigint, p_seq integer, p_at bigint)
RETURNS boolean LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN EXISTS (
        SELECT 1
        FROM @schema@.key_move m
        JOIN @schema@.object_delta_arrays d
             ON d.relid = m.relid AND d.key = m.key AND d.revision_id = m.revision_id AND d.seq = m.seq
        JOIN @schema@.key_columns(p_relid) kv ON kv.version = d.relversion
        WHERE m.relid = p_relid AND m.revision_id >= p_rev AND (m.revision_id, m.seq) > (p_rev, p_seq)
          AND m.revision_id <= p_at AND m.key <> p_key AND d.op = 'U'
          AND CASE WHEN d.col_ids OPERATOR(pg_catalog.&&) kv.key_ids
                   THEN @schema@.delta_old_key(p_relid, d.relversion, d.key, d.col_ids, d.old_values, d.new_values,
                                               d.attr_flags, d.old_unknown) = p_key
                   ELSE false END);
END
$fn$;

-- lineage(relid, key, before (rev, seq), use_keyframe): the segments of one
-- object's life before that position, newest first: seg_key's deltas in the
-- open interval (lo, hi) make up its image, on top of keyframe base_keyframe's
-- row of seg_key when set. The walk goes back through the key's own deltas
-- (object_delta_object_idx) to its insert, delete, the table's truncate or the
-- keyframe; an UPDATE that moved the row from another key continues there.
-- No rows: the object did not exist just before that position.
CREATE OR REPLACE FUNCTION @schema@.lineage(p_relid oid, p_key text, p_rev bigint, p_seq integer,
                                            p_use_keyframe boolean)
RETURNS TABLE(seg_no integer, seg_key text, lo_rev bigint, lo_seq integer, hi_rev bigint, hi_seq integer,
              base_keyframe bigint)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    cur     text := p_key;
    h_rev   bigint := p_rev;
    h_seq   integer := p_seq;
    n       integer := 0;
    kf_id   bigint;
    kf_rev  bigint;
    f_rev   bigint;
    f_seq   integer;
    t_rev   bigint;
    t_seq   integer;
    rec     record;
    moved   boolean;
    okey    text;
BEGIN
    LOOP
        n := n + 1;
        kf_id := NULL; kf_rev := NULL;
        IF p_use_keyframe THEN
            -- a keyframe taken after revision K holds all of K: usable when K < h_rev
            SELECT k.id, k.revision_id INTO kf_id, kf_rev FROM @schema@.keyframe k
            WHERE k.relid = p_relid AND k.revision_id < h_rev
            ORDER BY k.revision_id DESC, k.id DESC LIMIT 1;
        END IF;
        IF kf_rev IS NULL THEN
            f_rev := 0; f_seq := 0;
        ELSE
            f_rev := kf_rev; f_seq := 2147483647;
        END IF;
        t_rev := NULL;
        SELECT d.revision_id, d.seq INTO t_rev, t_seq FROM @schema@.object_delta d
        WHERE d.relid = p_relid AND d.key IS NULL AND d.op = 'T'
          AND (d.revision_id, d.seq) > (f_rev, f_seq) AND (d.revision_id, d.seq) < (h_rev, h_seq)
        ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
        IF t_rev IS NOT NULL THEN
            f_rev := t_rev; f_seq := t_seq; kf_id := NULL;
        END IF;
        moved := false;
        FOR rec IN
            SELECT d.revision_id, d.seq, d.op, d.relversion, d.col_ids, d.old_values, d.new_values,
                   d.attr_flags, d.old_unknown, (d.op = 'U' AND d.col_ids OPERATOR(pg_catalog.&&) kv.key_ids) AS touches_key
            FROM @schema@.object_delta_arrays d
            JOIN @schema@.key_columns(p_relid) kv ON kv.version = d.relversion
            WHERE d.relid = p_relid AND d.key = cur
              AND (d.revision_id, d.seq) > (f_rev, f_seq) AND (d.revision_id, d.seq) < (h_rev, h_seq)
            ORDER BY d.revision_id DESC, d.seq DESC
        LOOP
            IF rec.op = 'D' THEN
                RETURN;
            ELSIF rec.op IN ('I', 'S') THEN
                seg_no := n; seg_key := cur; lo_rev := rec.revision_id; lo_seq := rec.seq - 1;
                hi_rev := h_rev; hi_seq := h_seq; base_keyframe := NULL;
                RETURN NEXT;
                RETURN;
            ELSIF rec.touches_key THEN
                okey := @schema@.delta_old_key(p_relid, rec.relversion, cur, rec.col_ids, rec.old_values,
                                               rec.new_values, rec.attr_flags, rec.old_unknown);
                IF okey IS NOT NULL AND okey <> cur THEN
                    seg_no := n; seg_key := cur; lo_rev := rec.revision_id; lo_seq := rec.seq - 1;
                    hi_rev := h_rev; hi_seq := h_seq; base_keyframe := NULL;
                    RETURN NEXT;
                    cur := okey; h_rev := rec.revision_id; h_seq := rec.seq;
                    moved := true;
                    EXIT;
                END IF;
            END IF;
        END LOOP;
        IF NOT moved THEN
            seg_no := n; seg_key := cur; lo_rev := f_rev; lo_seq := f_seq;
            hi_rev := h_rev; hi_seq := h_seq; base_keyframe := kf_id;
            RETURN NEXT;
            RETURN;
        END IF;
        IF n >= 100000 THEN
            RETURN;
        END IF;
    END LOOP;
END
$fn$;

-- lineage_image(relid, segments of lineage(), keyframe row): the image the
-- segments' deltas build on top of the keyframe row (NULL: neither in the
-- keyframe nor written since). The latest new value of each column wins.
CREATE OR REPLACE FUNCTION @schema@.lineage_image(p_relid oid, keys text[], lo_revs bigint[],
    lo_seqs integer[], hi_revs bigint[], hi_seqs integer[], base text[])
RETURNS text[] LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    maxcol   integer;
    result   text[];
BEGIN
    maxcol := @schema@.max_col_id(p_relid);
    WITH ov AS (
        SELECT DISTINCT ON (a.col_id) a.col_id, a.val
        FROM unnest(keys, lo_revs, lo_seqs, hi_revs, hi_seqs) AS s(k, lr, ls, hr, hs)
        JOIN @schema@.object_delta_arrays d ON d.relid = p_relid AND d.key = s.k
             AND (d.revision_id, d.seq) > (s.lr, s.ls) AND (d.revision_id, d.seq) < (s.hr, s.hs)
        CROSS JOIN LATERAL unnest(d.col_ids, d.new_values) AS a(col_id, val)
        WHERE d.op IN ('I', 'U', 'S')
        ORDER BY a.col_id, d.revision_id DESC, d.seq DESC
    )
    SELECT CASE WHEN base IS NOT NULL OR count(o.col_id) > 0 THEN
               array_agg(CASE WHEN o.col_id IS NOT NULL THEN o.val ELSE base[g.c] END ORDER BY g.c) END
    INTO result
    FROM generate_series(1, coalesce(maxcol, 0)) AS g(c) LEFT JOIN ov o ON o.col_id = g.c;
    RETURN result;
END
$fn$;

-- lineage_parts(relid, key, R): lineage() of the object just after revision
-- R as parallel arrays (newest segment first) and the keyframe row its oldest
-- segment starts from; keys is NULL when the object did not exist then.
CREATE OR REPLACE FUNCTION @schema@.lineage_parts(p_relid oid, p_key text, p_rev bigint,
    OUT keys text[], OUT lo_revs bigint[], OUT lo_seqs integer[], OUT hi_revs bigint[], OUT hi_seqs integer[],
    OUT base text[])
LANGUAGE sql STABLE AS $fn$
    SELECT x.keys, x.lo_revs, x.lo_seqs, x.hi_revs, x.hi_seqs,
           (SELECT kr.vals FROM @schema@.keyframe_rows_of(x.kf, x.base_key) kr)
    FROM (SELECT array_agg(l.seg_key ORDER BY l.seg_no) AS keys, array_agg(l.lo_rev ORDER BY l.seg_no) AS lo_revs,
                 array_agg(l.lo_seq ORDER BY l.seg_no) AS lo_seqs, array_agg(l.hi_rev ORDER BY l.seg_no) AS hi_revs,
                 array_agg(l.hi_seq ORDER BY l.seg_no) AS hi_seqs, max(l.base_keyframe) AS kf,
                 (array_agg(l.seg_key ORDER BY l.seg_no DESC))[1] AS base_key
          FROM @schema@.lineage(p_relid, p_key, p_rev + 1, 0, true) l) x
$fn$;

-- lineage_row(relid, key, R, check_moved): one object's vals[col_id] after
-- revision R from its lineage (the nearest keyframe, then its deltas), NULL
-- when it did not exist then; with check_moved also NULL when a later UPDATE
-- moved the row to another key before R (a scan bounded by the object's last
-- change). object_image and row_at below are its two uses.
CREATE OR REPLACE FUNCTION @schema@.lineage_row(p_relid oid, p_key text, p_rev bigint, p_check_moved boolean)
RETURNS text[] LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    keys     text[];
    lo_revs  bigint[];
    lo_seqs  integer[];
    hi_revs  bigint[];
    hi_seqs  integer[];
    base     text[];
    e_rev    bigint;
    e_seq    integer;
BEGIN
    SELECT p.keys, p.lo_revs, p.lo_seqs, p.hi_revs, p.hi_seqs, p.base
      INTO keys, lo_revs, lo_seqs, hi_revs, hi_seqs, base
      FROM @schema@.lineage_parts(p_relid, p_key, p_rev) p;
    IF keys IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_check_moved THEN
        -- moved away to another key after its last own change?
        SELECT d.revision_id, d.seq INTO e_rev, e_seq FROM @schema@.object_delta d
        WHERE d.relid = p_relid AND d.key = p_key
          AND (d.revision_id, d.seq) > (lo_revs[1], lo_seqs[1]) AND d.revision_id <= p_rev
        ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1;
        IF e_rev IS NULL THEN
            e_rev := lo_revs[1]; e_seq := lo_seqs[1];
        END IF;
        IF @schema@.moved_away(p_relid, p_key, e_rev, e_seq, p_rev) THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN @schema@.lineage_image(p_relid, keys, lo_revs, lo_seqs, hi_revs, hi_seqs, base);
END
$fn$;

-- object_image(relid, key, R): the image after revision R of an object known
-- to exist then under that key (the history sink's old images: the source
-- has just changed that row). Unlike row_at it does not check whether a later
-- UPDATE moved the row to another key, a scan of the table's deltas since the
-- object's last change that the sink has no use for.
CREATE OR REPLACE FUNCTION @schema@.object_image(p_relid oid, p_key text, p_rev bigint)
RETURNS text[] LANGUAGE sql STABLE AS $fn$
    SELECT @schema@.lineage_row(p_relid, p_key, p_rev, false)
$fn$;

-- row_at(relid, key, R): one object's vals[col_id] after revision R, NULL when
-- the row did not exist: the object's lineage from the nearest keyframe, then
-- a check that no later UPDATE moved the row to another key before R.
CREATE OR REPLACE FUNCTION @schema@.row_at(p_relid oid, p_key text, p_rev bigint)
RETURNS text[] LANGUAGE sql STABLE AS $fn$
    SELECT @schema@.lineage_row(p_relid, p_key, p_rev, true)
$fn$;

-- ---------------------------------------------------------------------------
-- Audit
-- ---------------------------------------------------------------------------

-- One row per revision, newest last; filter with WHERE and ORDER BY id DESC.
CREATE OR REPLACE VIEW @schema@.revision_log AS
SELECT r.id AS revision, r.commit_time, r.commit_lsn, r.end_lsn, r.xid,
       r.actor_type, r.actor_id, r.description,
       r.n_insert AS inserts, r.n_update AS updates, r.n_delete AS deletes,
       r.n_truncate AS truncates, r.n_snapshot AS snapshots, r.warnings,
       -- who acted as the server knows it (docs/history-store.md#who-acted): verified is
       -- strict mode's verdict on the actor (signed or role-bound) when it was on, else
       -- true only for a context attested by walrev.context() on the source
       coalesce(r.actor_verified, r.attested) AS verified, r.db_session_user AS db_user
FROM @schema@.revision r;

-- One row per attribute change (one row with NULL column for a truncate or a
-- change without attributes), with the table's name at the time and the
-- actor in force for that change (the context before it in its revision).
CREATE OR REPLACE VIEW @schema@.object_history AS
SELECT d.revision_id AS revision, d.seq, r.commit_time, d.relid,
       rv.nspname || '.' || rv.relname AS table_name, d.key, d.op,
       c.actor_type, c.actor_id, c.description,
       a.col_id, rv.col_names[array_position(rv.col_ids, a.col_id)] AS column_name,
       -- an erased value (walrev erase: flag 16 old, 8 new) reads as <erased>, never as NULL
       CASE WHEN a.old_value IS NULL AND coalesce(a.flags, 0) & 16 <> 0 THEN '<erased>' ELSE a.old_value END
           AS old_value,
       CASE WHEN a.new_value IS NULL AND coalesce(a.flags, 0) & 8 <> 0 THEN '<erased>' ELSE a.new_value END
           AS new_value,
       coalesce(a.flags, 0)::smallint AS flags, a.n AS attr_no,
       coalesce(c.actor_verified, c.attested) AS verified, c.db_session_user AS db_user
FROM @schema@.object_delta_arrays d
JOIN @schema@.revision r ON r.id = d.revision_id
JOIN @schema@.relation_version rv ON rv.relid = d.relid AND rv.version = d.relversion
LEFT JOIN @schema@.revision_context c ON c.revision_id = d.revision_id AND c.context_no = d.context_no
LEFT JOIN LATERAL unnest(d.col_ids, d.old_values, d.new_values, d.attr_flags)
     WITH ORDINALITY AS a(col_id, old_value, new_value, flags, n) ON true;

-- erased_at(relid, key, column, R): whether the value column has in object
-- key at R was erased (walrev erase): the change that last set it at or
-- before R carries flag 8 (new value erased) for it. Readers call it for a
-- NULL only, and only for tables with a row in erasure.
CREATE OR REPLACE FUNCTION @schema@.erased_at(p_relid oid, p_key text, p_col text, p_rev bigint)
RETURNS boolean LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM @schema@.erasure e WHERE e.relid = p_relid AND e.key = p_key)
       AND coalesce((
           SELECT coalesce(a.f, 0) & 8 <> 0
           FROM @schema@.object_delta_arrays d
           CROSS JOIN LATERAL unnest(d.col_ids, d.attr_flags) AS a(c, f)
           WHERE d.relid = p_relid AND d.key = p_key AND d.revision_id <= p_rev AND d.op IN ('I', 'U', 'S')
             AND a.c IN (SELECT u.id FROM @schema@.relation_version rv,
                                unnest(rv.col_ids, rv.col_names) AS u(id, name)
                         WHERE rv.relid = p_relid AND u.name = p_col)
           ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1), false)
$fn$;

-- blame_present(relid, key, R, cur): the row cur blame found for key at R,
-- or the error blame raises when there is none.
CREATE OR REPLACE FUNCTION @schema@.blame_present(p_relid oid, p_key text, p_rev bigint, p_cur text[])
RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    IF p_cur IS NULL THEN
        RAISE EXCEPTION 'no row with key % in table % at revision %', p_key, p_relid, p_rev
            USING ERRCODE = '22023';
    END IF;
    RETURN p_cur;
END
$fn$;

-- blame_rows(rv, cur, changes): blame's answer, in rv's column order: each
-- column's value in row cur (vals[col_id]) and the change that set it, given
-- as parallel arrays of (col_id, revision, seq, op, context_no, flags); a
-- column without one has NULLs there.
CREATE OR REPLACE FUNCTION @schema@.blame_rows(rv @schema@.relation_version, cur text[], s_col smallint[],
    s_rev bigint[], s_seq integer[], s_op "char"[], s_ctx smallint[], s_flags smallint[])
RETURNS TABLE(column_name text, value text, revision bigint, seq integer, op "char",
              commit_time timestamptz, actor_type text, actor_id text, description text)
LANGUAGE sql STABLE AS $fn$
    WITH cols AS (
        SELECT c.col_id, c.name, c.n FROM unnest(rv.col_ids, rv.col_names) WITH ORDINALITY AS c(col_id, name, n)
    ), sets AS (
        SELECT * FROM unnest(s_col, s_rev, s_seq, s_op, s_ctx, s_flags)
                      AS x(col_id, revision_id, seq, op, context_no, flags)
    )
    SELECT cols.name,
           -- the change that set it erased it since (walrev erase): <erased>, not NULL
           CASE WHEN cur[cols.col_id] IS NULL AND coalesce(s.flags, 0) & 8 <> 0 THEN '<erased>'
                ELSE cur[cols.col_id] END,
           s.revision_id, s.seq, s.op, r.commit_time,
           ctx.actor_type, ctx.actor_id, ctx.description
    FROM cols
    LEFT JOIN sets s ON s.col_id = cols.col_id
    LEFT JOIN @schema@.revision r ON r.id = s.revision_id
    LEFT JOIN @schema@.revision_context ctx ON ctx.revision_id = s.revision_id AND ctx.context_no = s.context_no
    ORDER BY cols.n
$fn$;

-- blame_full(relid, key, R): blame by reading every change of the object
-- (lineage() without keyframes, then the newest change of each column): what
-- blame() does for a history it cannot walk (a delete inside a segment).
-- Custom plans: object_delta is partitioned (format 6), and a generic plan
-- appends the partitions and sorts every delta of the object.
CREATE OR REPLACE FUNCTION @schema@.blame_full(p_relid oid, p_key text, p_rev bigint DEFAULT NULL)
RETURNS TABLE(column_name text, value text, revision bigint, seq integer, op "char",
              commit_time timestamptz, actor_type text, actor_id text, description text)
LANGUAGE sql STABLE SET plan_cache_mode = force_custom_plan AS $fn$
    -- the row first: a key without a row at R is the error, before its changes are read
    WITH at AS (
        SELECT x.rev, @schema@.blame_present(p_relid, p_key, x.rev, @schema@.row_at(p_relid, p_key, x.rev)) AS cur
        FROM (SELECT coalesce(p_rev, (SELECT max(id) FROM @schema@.revision)) AS rev) x
    ), sets AS (
        SELECT DISTINCT ON (a.col_id) a.col_id, d.revision_id, d.seq, d.op, d.context_no, a.flags
        FROM at CROSS JOIN LATERAL @schema@.lineage(p_relid, p_key, at.rev + 1, 0, false) s
        JOIN @schema@.object_delta_arrays d ON d.relid = p_relid AND d.key = s.seg_key
             AND (d.revision_id, d.seq) > (s.lo_rev, s.lo_seq) AND (d.revision_id, d.seq) < (s.hi_rev, s.hi_seq)
        CROSS JOIN LATERAL unnest(d.col_ids, d.attr_flags) AS a(col_id, flags)
        WHERE d.op IN ('I', 'U', 'S')
        ORDER BY a.col_id, d.revision_id DESC, d.seq DESC
    ), g AS (
        SELECT array_agg(col_id) AS c, array_agg(revision_id) AS r, array_agg(seq) AS s, array_agg(op) AS o,
               array_agg(context_no) AS x, array_agg(flags) AS f
        FROM sets
    )
    SELECT b.* FROM at CROSS JOIN g CROSS JOIN LATERAL @schema@.blame_rows(
        (SELECT rv FROM @schema@.relation_at(p_relid, at.rev) rv), at.cur, g.c, g.r, g.s, g.o, g.x, g.f) b
$fn$;

-- blame(relid, key, R default newest): for each column of the version in force
-- at R, the change that last set the value the row has at R, following the
-- row back through key-changing UPDATEs (keyframes carry no authorship, so
-- this reads the object's own deltas). Raises when the row does not exist at R.
-- The object's deltas are walked newest first through object_delta_object_idx
-- (a cursor: rows are fetched as the loop asks for them) and the walk stops as
-- soon as every column has its change, or at the object's insert or snapshot
-- row: the cost is the changes since each column was last set, not the
-- object's whole history (10^6 versions: 2.9 s when it read them all). The
-- segments are lineage()'s without keyframes: a key-changing UPDATE belongs to
-- the newer key's segment and the walk goes on under the old key before it; a
-- truncate of the table ends a segment's walk, a delete ends the object.
CREATE OR REPLACE FUNCTION @schema@.blame(p_relid oid, p_key text, p_rev bigint DEFAULT NULL)
RETURNS TABLE(column_name text, value text, revision bigint, seq integer, op "char",
              commit_time timestamptz, actor_type text, actor_id text, description text)
-- custom plans: object_delta is partitioned (format 6), and a generic plan of the
-- walk's pages appends the partitions and sorts every delta of the object
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    at_rev  bigint := coalesce(p_rev, (SELECT max(id) FROM @schema@.revision));
    cur     text[];
    rv      @schema@.relation_version;
    want    smallint[];       -- columns of the version at R still without their change
    key_any smallint[];       -- key columns of any version (delta_old_key checks the delta's own)
    key_at  smallint[];       -- key columns of the version at R
    s_col   smallint[] := '{}';
    s_rev   bigint[] := '{}';
    s_seq   integer[] := '{}';
    s_op    "char"[] := '{}';
    s_ctx   smallint[] := '{}';
    s_flags smallint[] := '{}';
    s_val   text[] := '{}';
    no_jump boolean := false;
    jumped  boolean := false;   -- the page starts at the insert or snapshot row the key columns come from
    born    boolean := false;   -- the walk reached the object's insert or snapshot row
    e_rev   bigint;
    e_seq   integer;
    k       text := p_key;
    h_rev   bigint;
    h_seq   integer := 0;
    f_rev   bigint;
    f_seq   integer;
    n       integer := 0;
    rec     record;
    i       integer;
    okey    text;
    new_seg boolean;
    got     integer;
    page    constant integer := 64;
    done    boolean := false;
BEGIN
    SELECT * INTO rv FROM @schema@.relation_at(p_relid, at_rev);
    want := rv.col_ids;
    SELECT coalesce(array_agg(c.id) FILTER (WHERE c.is_key), '{}') INTO key_at
    FROM unnest(rv.col_ids, rv.col_is_key) AS c(id, is_key);
    SELECT coalesce(array_agg(DISTINCT c.id), '{}') INTO key_any
    FROM @schema@.key_columns(p_relid) kc, unnest(kc.key_ids) AS c(id);
    h_rev := at_rev + 1;
    new_seg := true;
    WHILE NOT done AND coalesce(cardinality(want), 0) > 0 LOOP
        IF new_seg THEN
            n := n + 1;
            EXIT WHEN n > 100000;
            -- the last truncate of the table before this segment's end bounds its walk
            SELECT d.revision_id, d.seq INTO f_rev, f_seq FROM @schema@.object_delta d
            WHERE d.relid = p_relid AND d.key IS NULL AND d.op = 'T'
              AND (d.revision_id, d.seq) < (h_rev, h_seq)
            ORDER BY d.relid DESC, d.key DESC, d.revision_id DESC, d.seq DESC LIMIT 1;
            IF NOT FOUND THEN
                f_rev := 0; f_seq := 0;
            END IF;
            new_seg := false;
        END IF;
        -- Only key columns left to place: in a store the worker wrote they are set by
        -- the object's insert or snapshot row alone (an UPDATE of a key is recorded
        -- as a delete and an insert), so its newest life boundary before the walk's
        -- position is the answer, found through object_delta_life_idx instead of
        -- every change since (the key column of an object of 10^6 versions).
        IF want OPERATOR(pg_catalog.<@) key_at AND NOT no_jump THEN
            SELECT d.revision_id, d.seq, d.op INTO rec
            FROM @schema@.object_delta_arrays d
            WHERE d.relid = p_relid AND d.key = k AND d.op IN ('I', 'S', 'D')
              AND d.revision_id >= f_rev AND d.revision_id <= h_rev
              AND (d.revision_id, d.seq) > (f_rev, f_seq) AND (d.revision_id, d.seq) < (h_rev, h_seq)
            ORDER BY d.relid DESC, d.key DESC, d.revision_id DESC, d.seq DESC LIMIT 1;
            IF NOT FOUND OR rec.op = 'D' THEN
                -- the object began before the segment (moved here, or before history): walk on
                no_jump := true;
            ELSE
                -- the page below starts at that insert or snapshot row, takes its
                -- columns and ends the walk there (not the object's last change)
                h_rev := rec.revision_id; h_seq := rec.seq + 1;
                jumped := true;
            END IF;
        END IF;
        -- a page of the segment's deltas, newest first, before (h_rev, h_seq): LIMIT
        -- keeps the plan a backward scan of the index that stops early
        got := 0;
        FOR rec IN
            SELECT d.revision_id, d.seq, d.op, d.context_no, d.relversion, d.col_ids, d.old_values,
                   d.new_values, d.attr_flags, d.old_unknown,
                   (d.op = 'U' AND d.col_ids OPERATOR(pg_catalog.&&) key_any) AS touches_key
            FROM @schema@.object_delta_arrays d
            WHERE d.relid = p_relid AND d.key = k AND d.revision_id >= f_rev AND d.revision_id <= h_rev
              AND (d.revision_id, d.seq) > (f_rev, f_seq) AND (d.revision_id, d.seq) < (h_rev, h_seq)
            ORDER BY d.relid DESC, d.key DESC, d.revision_id DESC, d.seq DESC
            LIMIT page
        LOOP
            got := got + 1;
            IF rec.op = 'D' THEN
                IF n = 1 AND e_rev IS NULL THEN
                    -- deleted before R
                    RAISE EXCEPTION 'no row with key % in table % at revision %', p_key, p_relid, at_rev
                        USING ERRCODE = '22023';
                END IF;
                -- a delete inside a segment (no insert after it): only a history not written by
                -- the worker has one; blame_full reads such a history as before
                RETURN QUERY SELECT * FROM @schema@.blame_full(p_relid, p_key, at_rev);
                RETURN;
            END IF;
            IF rec.op IN ('I', 'U', 'S') THEN
                FOR i IN 1 .. coalesce(cardinality(rec.col_ids), 0) LOOP
                    IF rec.col_ids[i] = ANY (want) THEN
                        want := array_remove(want, rec.col_ids[i]);
                        s_col := s_col || rec.col_ids[i]; s_rev := s_rev || rec.revision_id;
                        s_seq := s_seq || rec.seq; s_op := s_op || rec.op; s_ctx := s_ctx || rec.context_no;
                        s_flags := s_flags || rec.attr_flags[i]; s_val := s_val || rec.new_values[i];
                    END IF;
                END LOOP;
            END IF;
            IF e_rev IS NULL AND NOT jumped THEN
                e_rev := rec.revision_id; e_seq := rec.seq;   -- the object's last change at or before R
            END IF;
            -- the insert (or snapshot row) began the object: nothing before it counts
            IF rec.op IN ('I', 'S') OR cardinality(want) = 0 THEN
                born := rec.op IN ('I', 'S') OR born;
                done := true;
                EXIT;
            END IF;
            h_rev := rec.revision_id; h_seq := rec.seq;
            IF rec.touches_key THEN
                okey := @schema@.delta_old_key(p_relid, rec.relversion, k, rec.col_ids, rec.old_values,
                                               rec.new_values, rec.attr_flags, rec.old_unknown);
                IF okey IS NOT NULL AND okey <> k THEN
                    -- the row came from okey: go on there, before this change
                    k := okey;
                    new_seg := true;
                    EXIT;
                END IF;
            END IF;
        END LOOP;
        -- a short page without a move: the segment's start (history's, or a truncate's)
        IF NOT done AND NOT new_seg AND got < page THEN
            done := true;
        END IF;
    END LOOP;
    -- The row at R: the value each column's change set, when the walk reached the
    -- object's insert or every column's change; otherwise (its start lies before
    -- the history kept, a truncate or a delete ended the walk) row_at says, from
    -- the keyframe. Either way a row moved away by an UPDATE of its key after its
    -- last change does not exist at R (row_at's check, bounded by that change).
    IF (born OR cardinality(want) = 0) AND e_rev IS NOT NULL THEN
        SELECT array_agg(x.v ORDER BY x.c) INTO cur
        FROM (SELECT g.c, (SELECT u.v FROM unnest(s_col, s_val) AS u(c, v) WHERE u.c = g.c) AS v
              FROM generate_series(1, (SELECT max(c) FROM @schema@.relation_version rv2, unnest(rv2.col_ids) c
                                       WHERE rv2.relid = p_relid)) AS g(c)) x;
        IF @schema@.moved_away(p_relid, p_key, e_rev, e_seq, at_rev) THEN
            cur := NULL;
        END IF;
    ELSE
        cur := @schema@.row_at(p_relid, p_key, at_rev);
    END IF;
    RETURN QUERY SELECT * FROM @schema@.blame_rows(rv, @schema@.blame_present(p_relid, p_key, at_rev, cur),
                                                   s_col, s_rev, s_seq, s_op, s_ctx, s_flags);
END
$fn$;

-- diff(r1, r2, relid): net change of each object and column from the state
-- after r1 to the state after r2. change is 'added', 'removed' or 'changed';
-- added/removed rows list every column, changed rows only those that differ.
-- Only keys touched in (r1, r2] are compared, unless a truncate happened there.
-- A table dropped by a point (the table log's last event of it by then is its
-- drop, which writes no delta) has no rows there: dropped between
-- the two, its rows at the earlier one are all 'removed'; created and dropped
-- between them, or dropped by both, it has no change.
CREATE OR REPLACE FUNCTION @schema@.diff(p_r1 bigint, p_r2 bigint, p_relid oid)
RETURNS TABLE(key text, change text, column_name text, old_value text, new_value text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    v1 @schema@.relation_version;
    v2 @schema@.relation_version;
    lo bigint := least(p_r1, p_r2);
    hi bigint := greatest(p_r1, p_r2);
    any_truncate boolean;
    gone1 boolean;
    gone2 boolean;
    touched text[];
BEGIN
    -- one read of the table log for both points (table_event is not cheap)
    SELECT coalesce((array_agg(e.event ORDER BY e.revision_id DESC, e.seq DESC)
                     FILTER (WHERE e.revision_id <= p_r1))[1] = 'drop', false),
           coalesce((array_agg(e.event ORDER BY e.revision_id DESC, e.seq DESC)
                     FILTER (WHERE e.revision_id <= p_r2))[1] = 'drop', false)
      INTO gone1, gone2
      FROM @schema@.table_event e WHERE e.relid = p_relid AND e.revision_id <= hi;
    IF gone1 AND gone2 THEN
        RETURN;
    END IF;
    SELECT * INTO v1 FROM @schema@.relation_at(p_relid, p_r1);
    SELECT * INTO v2 FROM @schema@.relation_at(p_relid, p_r2);
    -- count, not EXISTS: for EXISTS the planner may pick a sequential scan that
    -- stops at the first match, and with none it reads the whole history
    SELECT count(*) > 0 FROM @schema@.object_delta d
    WHERE d.revision_id > lo AND d.revision_id <= hi AND d.relid::bigint = p_relid AND d.op = 'T'
      INTO any_truncate;
    -- dropped at one point: every row of the other side differs, not only the keys touched
    any_truncate := any_truncate OR gone1 OR gone2;
    IF NOT any_truncate THEN
        SELECT array_agg(DISTINCT d.key) INTO touched FROM @schema@.object_delta d
        WHERE d.revision_id > lo AND d.revision_id <= hi AND d.relid::bigint = p_relid AND d.key IS NOT NULL;
        touched := coalesce(touched, '{}');
    END IF;
    RETURN QUERY
    WITH a AS (
        -- only the touched keys, each read by itself (rows_at), unless a truncate emptied the table
        -- (or a drop: none on the side it was dropped by)
        SELECT s.key, s.vals FROM @schema@.snapshot_rows(p_relid, p_r1) s WHERE any_truncate AND NOT gone1
        UNION ALL
        SELECT s.key, s.vals FROM @schema@.rows_at(p_relid, touched, p_r1) s WHERE NOT any_truncate
    ), b AS (
        SELECT s.key, s.vals FROM @schema@.snapshot_rows(p_relid, p_r2) s WHERE any_truncate AND NOT gone2
        UNION ALL
        SELECT s.key, s.vals FROM @schema@.rows_at(p_relid, touched, p_r2) s WHERE NOT any_truncate
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
        FROM @schema@.object_delta_arrays d
        CROSS JOIN LATERAL unnest(d.col_ids) AS a(col_id)
        WHERE d.revision_id = p_rev AND d.key IS NOT NULL
    ), later AS (
        SELECT m.relid, m.key, m.col_id, l.revision_id, l.context_no
        FROM mine m
        JOIN @schema@.object_delta_arrays l ON l.relid = m.relid AND l.key = m.key AND l.revision_id > p_rev
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
-- Tables over time: existence and partitions (docs/history-store.md#the-table-log)
-- ---------------------------------------------------------------------------

-- table_event: the rows of the source's table log (<schema>.table_log, written
-- by walrev's event triggers in each DDL's own transaction) as the history
-- recorded them: an ordinary tracked table, so every row is in the checksum
-- chain at its position in commit order. One row per logged state of a table:
-- event create|alter|seed|drop, its name, relkind (r, p), partition parent,
-- columns ([[attnum, name, type oid, typmod, type, is key], ...]) and
-- INHERITS parents (NULL: none, or a table log older than that column).
-- A view over a function: the table log's relid is looked up first and put
-- into the query as a constant, so the planner reads its few deltas through
-- object_delta's (relid, key, revision_id) index. As a join to
-- relation_version it hash-joined every I/S delta of the store (a sequential
-- scan: 1.5 s at 10^6 deltas, several per `walrev diff`, each resolve_table).
-- Each field's position among the table log's columns is found once per
-- relation version (p, kept from being pulled up by OFFSET 0), not by eight
-- subqueries per logged row: those cost 30 ms per call at 200 rows, and one
-- snapshot reads table_event five times.
-- The event triggers only write (they run in the application's DDL
-- transaction, where a read of the log would make concurrent SERIALIZABLE
-- DDL fail): a row may repeat its table's last state, and a drop may name a
-- table the log never knew. Those rows are left out here, by the rule the
-- triggers applied when they still read the log, so every reader sees what
-- it always saw: a row is kept when its table has none before it, or the
-- one before differs (for 'unlogged': not unlogged, or another name, parent
-- or INHERITS parents; for a drop: not a drop, or, with none before it, the
-- table has a relation version: a table there at setup and never altered,
-- which only setup's baseline and the stream knew, is dropped all the same
-- (before, its drop was left out and it answered with its rows after it);
-- a drop of a table walrev never recorded stays out; otherwise:
-- a drop or unlogged, or another name, kind, parent, columns or INHERITS
-- parents). A row left out equals the one before in all the rule reads, so
-- comparing with the row just before is comparing with the last one kept.
-- Compared as the history holds them, as text (jsonb's and oid[]'s text
-- forms are canonical), and cast only for the rows kept: casting every row
-- first cost twice the time.
CREATE OR REPLACE FUNCTION @schema@.table_event_computed()
RETURNS TABLE(revision_id bigint, seq integer, relid oid, event text, nspname text, relname text, relkind text,
              parent oid, columns jsonb, inherits oid[])
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    rels oid[];
BEGIN
    SELECT array_agg(DISTINCT rv.relid) INTO rels FROM @schema@.relation_version rv
    WHERE rv.relname = 'table_log'
      AND rv.nspname = (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE c.oid = '@schema@.revision'::regclass);
    IF rels IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
SELECT e.revision_id, e.seq, e.relid::oid, e.event, e.nspname, e.relname, e.relkind, e.parent::oid, e.columns::jsonb,
       e.inherits::oid[]
FROM (SELECT x.*, lag(x.event) OVER w AS p_event,
             lag(ROW(x.nspname, x.relname, x.parent, x.inherits)) OVER w AS p_named,
             lag(ROW(x.relkind, x.columns)) OVER w AS p_shape
      FROM (
SELECT d.revision_id, d.seq,
       d.new_values[array_position(d.col_ids, p.c[1])], d.new_values[array_position(d.col_ids, p.c[2])],
       d.new_values[array_position(d.col_ids, p.c[3])], d.new_values[array_position(d.col_ids, p.c[4])],
       d.new_values[array_position(d.col_ids, p.c[5])], d.new_values[array_position(d.col_ids, p.c[6])],
       d.new_values[array_position(d.col_ids, p.c[7])], d.new_values[array_position(d.col_ids, p.c[8])]
FROM (SELECT rv.relid, rv.version,
             ARRAY(SELECT rv.col_ids[array_position(rv.col_names, n.name)]
                   FROM unnest(ARRAY['relid', 'event', 'nspname', 'relname', 'relkind', 'parent', 'columns',
                                     'inherits'])
                        WITH ORDINALITY AS n(name, i) ORDER BY n.i) AS c
      FROM @schema@.relation_version rv
      WHERE rv.relname = 'table_log'
        AND rv.nspname = (SELECT n.nspname FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE c.oid = '@schema@.revision'::regclass)
        AND rv.relid = ANY (%1$L::oid[])
      OFFSET 0) p
JOIN @schema@.object_delta_arrays d ON d.relid = p.relid AND d.relversion = p.version
WHERE d.op IN ('I', 'S') AND d.relid = ANY (%1$L::oid[])
      ) AS x(revision_id, seq, relid, event, nspname, relname, relkind, parent, columns, inherits)
      WINDOW w AS (PARTITION BY x.relid ORDER BY x.revision_id, x.seq)) e
WHERE CASE WHEN e.event = 'drop' THEN coalesce(e.p_event <> 'drop',
                                                 EXISTS (SELECT 1 FROM @schema@.relation_version v WHERE v.relid = e.relid::oid))
           WHEN e.p_event IS NULL THEN true
           WHEN e.event = 'unlogged' THEN e.p_event <> 'unlogged'
                OR e.p_named IS DISTINCT FROM ROW(e.nspname, e.relname, e.parent, e.inherits)
           -- out of the publication, detached (or NO INHERIT) from a parent that
           -- rejoins: its membership ends there (log_tables)
           WHEN e.event = 'unpublished' THEN e.p_event <> 'unpublished'
                OR e.p_named IS DISTINCT FROM ROW(e.nspname, e.relname, e.parent, e.inherits)
           -- a creation is kept after the 'alter' of a command nested in the
           -- CREATE (an application's ddl_command_end trigger that fires before
           -- walrev_log_tables): the table was born here, not joined
           ELSE e.p_event IN ('drop', 'unlogged', 'unpublished')
                OR (e.event = 'create' AND e.p_event <> 'create')
                OR e.p_named IS DISTINCT FROM ROW(e.nspname, e.relname, e.parent, e.inherits)
                OR e.p_shape IS DISTINCT FROM ROW(e.relkind, e.columns) END
    $q$, rels);
END
$fn$;

-- The table log as table_event_computed() gives it; from the session's
-- copy (pg_temp.walrev_table_event) when the transaction made one of this
-- store's (walrev.table_event_copy, transaction-local: `walrev snapshot`,
-- replay/query.c). Each reader of table_event computes it anew otherwise,
-- and a snapshot reads it about 9 times a table: on the store of
-- PostgreSQL's regression suite (8,628 table-log rows) 0.13 s each, the
-- whole of a 40-table snapshot's 48 s.
CREATE OR REPLACE FUNCTION @schema@.table_event_rows()
RETURNS TABLE(revision_id bigint, seq integer, relid oid, event text, nspname text, relname text, relkind text,
              parent oid, columns jsonb, inherits oid[])
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF current_setting('walrev.table_event_copy', true) = $s$@schema@$s$ THEN
        RETURN QUERY EXECUTE 'SELECT * FROM pg_temp.walrev_table_event';
    ELSE
        RETURN QUERY SELECT * FROM @schema@.table_event_computed();
    END IF;
END
$fn$;

CREATE OR REPLACE VIEW @schema@.table_event AS
SELECT e.revision_id, e.seq, e.relid, e.event, e.nspname, e.relname, e.relkind, e.parent, e.columns, e.inherits
FROM @schema@.table_event_rows() e;

-- The position of change (rev, seq) as one number, for intervals of changes.
CREATE OR REPLACE FUNCTION @schema@.change_pos(p_rev bigint, p_seq integer) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $fn$ SELECT p_rev::numeric * 4294967296 + p_seq $fn$;

-- member_intervals(parent): every table below a partitioned table or an
-- INHERITS parent, at any depth, with the changes during which it was below
-- it: [lo, hi) as change_pos values (hi 'Infinity': still is). A table
-- leaves at its next logged state with another parent (DETACH, NO INHERIT),
-- or at its drop; a sub-partitioned table's partitions (an INHERITS child's
-- children) belong to the parent only while it does. A table that is not
-- partitioned holds rows of its own: it is its own member throughout
-- (lo 0), so SELECT * FROM it (its rows and its children's) is the union
-- of its members' rows.
CREATE OR REPLACE FUNCTION @schema@.member_intervals(p_relid oid)
RETURNS TABLE (relid oid, relkind text, lo numeric, hi numeric)
LANGUAGE sql STABLE AS $fn$
    WITH RECURSIVE ev AS MATERIALIZED (
        -- a seed (setup's own rows) holds from the start of its revision: a
        -- baseline's rows may precede the table log's in it
        SELECT e.relid, e.relkind, e.parent, e.inherits, e.event,
               @schema@.change_pos(e.revision_id, CASE WHEN e.event = 'seed' THEN 0 ELSE e.seq END) AS pos,
               coalesce(lead(@schema@.change_pos(e.revision_id, e.seq))
                        OVER (PARTITION BY e.relid ORDER BY e.revision_id, e.seq), 'Infinity') AS next_pos
        FROM @schema@.table_event e
    ), iv AS MATERIALIZED (
        -- one edge per parent: the partition parent, or each INHERITS parent
        SELECT ev.relid, ev.relkind, p.parent, ev.pos, ev.next_pos
        FROM ev CROSS JOIN LATERAL unnest(array_remove(ARRAY[ev.parent], NULL) || coalesce(ev.inherits, '{}'))
             AS p(parent)
        WHERE ev.event <> 'drop'
    ), tree (relid, relkind, lo, hi) AS (
        SELECT iv.relid, iv.relkind, iv.pos, iv.next_pos FROM iv WHERE iv.parent = p_relid
        UNION ALL
        SELECT c.relid, c.relkind, greatest(c.pos, t.lo), least(c.next_pos, t.hi)
        FROM tree t JOIN iv c ON c.parent = t.relid
        WHERE greatest(c.pos, t.lo) < least(c.next_pos, t.hi)
    )
    SELECT * FROM tree
    UNION ALL
    SELECT p_relid, 'r', 0, 'Infinity'
    WHERE NOT EXISTS (SELECT 1 FROM @schema@.table_event e WHERE e.relid = p_relid AND e.relkind = 'p')
$fn$;

-- Was this table an INHERITS parent at any point (its rows are then its own
-- and its children's)?
CREATE OR REPLACE FUNCTION @schema@.is_inherit_parent(p_relid oid) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM @schema@.table_event e WHERE p_relid = ANY (e.inherits))
$fn$;

-- The leaf partitions of a partitioned table in the state after revision p_rev.
CREATE OR REPLACE FUNCTION @schema@.members_at(p_relid oid, p_rev bigint)
RETURNS SETOF oid LANGUAGE sql STABLE AS $fn$
    SELECT DISTINCT m.relid FROM @schema@.member_intervals(p_relid) m
    WHERE m.relkind = 'r' AND m.lo < @schema@.change_pos(p_rev + 1, 0) AND m.hi >= @schema@.change_pos(p_rev + 1, 0)
    ORDER BY 1
$fn$;

-- members_logged(parent, R1, R2): raises an error naming a table below a
-- partitioned table or an INHERITS parent (at any depth) that was unlogged
-- while below it in the state after some revision from R1 to R2 (R1 = R2:
-- one point). Logical decoding sees none of its rows, so the parent's rows
-- (SELECT * FROM it includes them) and its history would be silently
-- incomplete. A partition made LOGGED again (its rows then come as a
-- baseline) or detached no longer counts from there. Named schema-qualified,
-- with the revision from which it counts and its direct parent.
CREATE OR REPLACE FUNCTION @schema@.members_logged(p_relid oid, p_from bigint, p_to bigint) RETURNS void
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    u   record;
    pn  text;
    dn  text;
BEGIN
    SELECT x.relid, x.nspname, x.relname, x.parent, x.inherits, x.event, x.relkind,
           greatest(floor(x.lo / 4294967296)::bigint, p_from) AS rev
      INTO u
      FROM (SELECT e.relid, e.nspname, e.relname, e.parent, e.inherits, e.event, e.relkind, greatest(m.lo, e.lo) AS lo
              FROM @schema@.member_intervals(p_relid) m
              JOIN (SELECT v.relid, v.event, v.nspname, v.relname, v.parent, v.inherits, v.relkind,
                           @schema@.change_pos(v.revision_id, v.seq) AS lo,
                           coalesce(lead(@schema@.change_pos(v.revision_id, v.seq))
                                    OVER (PARTITION BY v.relid ORDER BY v.revision_id, v.seq), 'Infinity') AS hi
                      FROM @schema@.table_event v WHERE v.relid IN (SELECT i.relid FROM @schema@.member_intervals(p_relid) i)) e
                ON e.relid = m.relid AND e.event IN ('unlogged', 'unpublished')
             WHERE m.relkind IN ('r', 'f') AND m.relid <> p_relid
               AND greatest(m.lo, e.lo) < least(m.hi, e.hi)
               AND greatest(m.lo, e.lo) < @schema@.change_pos(p_to + 1, 0)
               AND least(m.hi, e.hi) >= @schema@.change_pos(p_from + 1, 0)) x
     ORDER BY x.lo LIMIT 1;
    IF u.relid IS NULL THEN
        RETURN;
    END IF;
    -- names as of then: the asked-for parent's, and the direct parent's
    SELECT quote_ident(e.nspname) || '.' || quote_ident(e.relname) INTO pn FROM @schema@.table_event e
     WHERE e.relid = p_relid AND e.event <> 'drop' AND e.revision_id <= greatest(u.rev, p_to)
     ORDER BY e.revision_id DESC, e.seq DESC LIMIT 1;
    SELECT quote_ident(e.nspname) || '.' || quote_ident(e.relname) INTO dn FROM @schema@.table_event e
     WHERE e.relid = coalesce(u.parent, u.inherits[1]) AND e.event <> 'drop' AND e.revision_id <= greatest(u.rev, p_to)
     ORDER BY e.revision_id DESC, e.seq DESC LIMIT 1;
    pn := coalesce(pn, p_relid::text);
    dn := coalesce(dn, pn);
    IF u.event = 'unpublished' THEN
        RAISE EXCEPTION 'table %.% is a % % and is not published at revision %: it was removed from the publication, and logical decoding sees none of its changes since, so walrev cannot know the rows of % (adding it back to the publication starts its history again, with its rows then)',
            quote_ident(u.nspname), quote_ident(u.relname), CASE WHEN u.parent IS NOT NULL THEN 'partition of' ELSE 'child of' END,
            dn, u.rev, pn
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF u.relkind = 'f' THEN
        RAISE EXCEPTION 'table %.% is a foreign table and a % % at revision %: its rows live on another server, where logical decoding here cannot see them, so walrev cannot know the rows of % (SELECT * FROM it includes them; %)',
            quote_ident(u.nspname), quote_ident(u.relname), CASE WHEN u.parent IS NOT NULL THEN 'partition of' ELSE 'child of' END,
            dn, u.rev, pn, CASE WHEN u.parent IS NOT NULL THEN 'DETACH PARTITION leaves it out' ELSE 'NO INHERIT leaves it out' END
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF u.parent IS NOT NULL THEN
        RAISE EXCEPTION 'table %.% is a partition of % and is unlogged at revision %: logical decoding cannot see its rows, so walrev cannot know the rows of % (SELECT * FROM it includes them; ALTER TABLE %.% SET LOGGED starts its history with a baseline, DETACH PARTITION leaves it out)',
            quote_ident(u.nspname), quote_ident(u.relname), dn, u.rev, pn, quote_ident(u.nspname), quote_ident(u.relname)
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RAISE EXCEPTION 'table %.% inherits from % and is unlogged at revision %: logical decoding cannot see its rows, so walrev cannot know the rows of % (SELECT * FROM it includes them; ALTER TABLE %.% SET LOGGED starts its history with a baseline)',
        quote_ident(u.nspname), quote_ident(u.relname), dn, u.rev, pn, quote_ident(u.nspname), quote_ident(u.relname)
        USING ERRCODE = 'object_not_in_prerequisite_state';
END
$fn$;

-- table_at(relid, R): what replay takes a table to be after revision R.
-- state 'ok' with the columns of then (col_ids: the relation version's, or
-- for a partitioned table the ordinal position, which parent_rows' vals
-- follow), 'not_yet' when the table log shows it was created after R
-- (created_rev), 'dropped' when the table was dropped by R (created_rev:
-- the drop's revision), or no row when the history knows nothing of it.
CREATE OR REPLACE FUNCTION @schema@.table_at(p_relid oid, p_rev bigint)
RETURNS TABLE (state text, relkind text, created_rev bigint, version integer, nspname text, relname text,
               col_ids smallint[], col_names text[], col_type_oids oid[], col_typmods integer[],
               col_type_names text[], col_is_key boolean[])
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    ev      record;
    first_ev record;
    prev    record;
    rv      @schema@.relation_version;
    nxt     @schema@.relation_version;
    end_lsn pg_lsn := (SELECT r.end_lsn FROM @schema@.revision r WHERE r.id = p_rev);
    ev_names text[];
    ev_oids  oid[];
    ev_mods  integer[];
    max_id   integer;
BEGIN
    SELECT e.* INTO ev FROM @schema@.table_event e
    WHERE e.relid = p_relid AND e.revision_id <= p_rev ORDER BY e.revision_id DESC, e.seq DESC LIMIT 1;
    SELECT x.* INTO rv FROM @schema@.relation_at(p_relid, p_rev) x;
    -- made UNLOGGED, or taken out of the publication, by then: logical
    -- decoding has seen none of its changes since (created_rev: the revision
    -- of the SET UNLOGGED or the ALTER PUBLICATION)
    IF ev.relid IS NOT NULL AND ev.event IN ('unlogged', 'unpublished') THEN
        RETURN QUERY SELECT ev.event, ev.relkind, ev.revision_id, 0, ev.nspname, ev.relname,
                            NULL::smallint[], NULL::text[], NULL::oid[], NULL::integer[], NULL::text[], NULL::boolean[];
        RETURN;
    END IF;
    -- An ALTER TABLE (columns added, dropped, renamed or retyped; the table
    -- renamed) after the relation version in force began: pgoutput describes
    -- a table again only with its next row change, so until then its columns
    -- are the table log's. STORED generated columns are left out here as
    -- they are from relation versions. Column identities: those of the
    -- version the next change brought when it has exactly these columns, else
    -- by attnum through the table log's last state that matches the version
    -- in force (a rename keeps its values), else by name; a column added
    -- since has no values yet (an identity no version uses).
    IF ev.relid IS NOT NULL AND ev.event <> 'drop' AND ev.relkind = 'r' AND rv.relid IS NOT NULL
       AND rv.valid_from <= end_lsn
       AND (SELECT r.end_lsn FROM @schema@.revision r WHERE r.id = ev.revision_id) > rv.valid_from THEN
        SELECT array_agg(c.c->>1 ORDER BY c.n), array_agg((c.c->>2)::oid ORDER BY c.n),
               array_agg((c.c->>3)::integer ORDER BY c.n)
          INTO ev_names, ev_oids, ev_mods
          FROM jsonb_array_elements(ev.columns) WITH ORDINALITY AS c(c, n)
         WHERE NOT coalesce((c.c->>6)::boolean, false);
        IF coalesce(ev_names, '{}') IS DISTINCT FROM rv.col_names OR coalesce(ev_oids, '{}') IS DISTINCT FROM rv.col_type_oids
           OR coalesce(ev_mods, '{}') IS DISTINCT FROM rv.col_typmods THEN
            SELECT x.* INTO nxt FROM @schema@.relation_version x
             WHERE x.relid = p_relid AND x.valid_from > end_lsn ORDER BY x.version LIMIT 1;
            IF nxt.relid IS NOT NULL AND nxt.col_names = coalesce(ev_names, '{}')
               AND nxt.col_type_oids = coalesce(ev_oids, '{}') AND nxt.col_typmods = coalesce(ev_mods, '{}') THEN
                RETURN QUERY SELECT 'ok', 'r', NULL::bigint, nxt.version, ev.nspname, ev.relname, nxt.col_ids,
                                    nxt.col_names, nxt.col_type_oids, nxt.col_typmods, nxt.col_type_names, nxt.col_is_key;
                RETURN;
            END IF;
            SELECT p.* INTO prev FROM @schema@.table_event p
             WHERE p.relid = p_relid AND p.event <> 'drop'
               AND (p.revision_id, p.seq) < (ev.revision_id, ev.seq)
               AND (SELECT coalesce(array_agg(pc.c->>1 ORDER BY pc.n), '{}')
                      FROM jsonb_array_elements(p.columns) WITH ORDINALITY AS pc(c, n)
                     WHERE NOT coalesce((pc.c->>6)::boolean, false)) = rv.col_names
             ORDER BY p.revision_id DESC, p.seq DESC LIMIT 1;
            SELECT max(i) INTO max_id FROM @schema@.relation_version x, unnest(x.col_ids) AS i WHERE x.relid = p_relid;
            RETURN QUERY
            SELECT 'ok', 'r', NULL::bigint, rv.version, ev.nspname, ev.relname,
                   coalesce(array_agg(coalesce(
                       CASE WHEN prev.relid IS NOT NULL THEN
                           rv.col_ids[array_position(rv.col_names,
                               (SELECT pc.c->>1 FROM jsonb_array_elements(prev.columns) AS pc(c)
                                 WHERE (pc.c->>0)::integer = (c.c->>0)::integer))]
                       ELSE rv.col_ids[array_position(rv.col_names, c.c->>1)] END,
                       (coalesce(max_id, 0) + c.n)::smallint) ORDER BY c.n), '{}'),
                   coalesce(array_agg(c.c->>1 ORDER BY c.n), '{}'), coalesce(array_agg((c.c->>2)::oid ORDER BY c.n), '{}'),
                   coalesce(array_agg((c.c->>3)::integer ORDER BY c.n), '{}'),
                   coalesce(array_agg(c.c->>4 ORDER BY c.n), '{}'),
                   coalesce(array_agg((c.c->>5)::boolean ORDER BY c.n), '{}')
              FROM jsonb_array_elements(ev.columns) WITH ORDINALITY AS c(c, n)
             WHERE NOT coalesce((c.c->>6)::boolean, false);
            RETURN;
        ELSIF ev.relname IS DISTINCT FROM rv.relname OR ev.nspname IS DISTINCT FROM rv.nspname THEN
            RETURN QUERY SELECT 'ok', 'r', NULL::bigint, rv.version, ev.nspname, ev.relname, rv.col_ids, rv.col_names,
                                rv.col_type_oids, rv.col_typmods, rv.col_type_names, rv.col_is_key;
            RETURN;
        END IF;
    END IF;
    IF ev.relid IS NOT NULL AND ev.event <> 'drop' AND (ev.relkind = 'p' OR rv.relid IS NULL OR rv.valid_from > end_lsn) THEN
        RETURN QUERY
        SELECT 'ok', ev.relkind, NULL::bigint, 0, ev.nspname, ev.relname,
               coalesce(array_agg(CASE WHEN ev.relkind = 'p' THEN c.n ELSE (c.c->>0)::int END::smallint
                                  ORDER BY c.n), '{}'),
               coalesce(array_agg(c.c->>1 ORDER BY c.n), '{}'), coalesce(array_agg((c.c->>2)::oid ORDER BY c.n), '{}'),
               coalesce(array_agg((c.c->>3)::int ORDER BY c.n), '{}'), coalesce(array_agg(c.c->>4 ORDER BY c.n), '{}'),
               coalesce(array_agg((c.c->>5)::boolean ORDER BY c.n), '{}')
        FROM jsonb_array_elements(ev.columns) WITH ORDINALITY AS c(c, n);
        RETURN;
    END IF;
    IF ev.relid IS NOT NULL AND ev.event = 'drop' THEN
        -- dropped by then (created_rev: the drop), whatever rows it had: the
        -- table was not there at R, as it is not for a SELECT then
        RETURN QUERY SELECT 'dropped', NULL::text, ev.revision_id, 0, ev.nspname, ev.relname,
                            NULL::smallint[], NULL::text[], NULL::oid[], NULL::integer[], NULL::text[], NULL::boolean[];
        RETURN;
    END IF;
    IF rv.relid IS NOT NULL AND (rv.valid_from <= end_lsn OR ev.relid IS NOT NULL) THEN
        RETURN QUERY SELECT 'ok', 'r', NULL::bigint, rv.version, rv.nspname, rv.relname, rv.col_ids, rv.col_names,
                            rv.col_type_oids, rv.col_typmods, rv.col_type_names, rv.col_is_key;
        RETURN;
    END IF;
    SELECT e.* INTO first_ev FROM @schema@.table_event e
    WHERE e.relid = p_relid AND e.event IN ('create', 'seed') ORDER BY e.revision_id, e.seq LIMIT 1;
    IF first_ev.relid IS NOT NULL AND first_ev.revision_id > p_rev THEN
        RETURN QUERY SELECT 'not_yet', first_ev.relkind, first_ev.revision_id, 0, first_ev.nspname, first_ev.relname,
                            NULL::smallint[], NULL::text[], NULL::oid[], NULL::integer[], NULL::text[], NULL::boolean[];
        RETURN;
    END IF;
    IF rv.relid IS NOT NULL AND first_ev.relid IS NULL AND rv.valid_from > end_lsn THEN
        -- its history begins after R and the table log never saw it created: it was not
        -- tracked at R (unlogged, or outside the publication); created_rev: where its history begins
        RETURN QUERY SELECT 'untracked', 'r', (SELECT min(r.id) FROM @schema@.revision r WHERE r.end_lsn >= rv.valid_from),
                            rv.version, rv.nspname, rv.relname, NULL::smallint[], NULL::text[], NULL::oid[],
                            NULL::integer[], NULL::text[], NULL::boolean[];
        RETURN;
    END IF;
    IF first_ev.relid IS NULL AND rv.relid IS NULL THEN
        -- no relation version at all, and the table log first saw it after R
        -- (SET LOGGED on an unlogged table, its baseline not yet recorded):
        -- not tracked at R either
        SELECT e.* INTO prev FROM @schema@.table_event e
        WHERE e.relid = p_relid ORDER BY e.revision_id, e.seq LIMIT 1;
        IF prev.relid IS NOT NULL AND prev.revision_id > p_rev THEN
            RETURN QUERY SELECT 'untracked', prev.relkind, prev.revision_id, 0, prev.nspname, prev.relname,
                                NULL::smallint[], NULL::text[], NULL::oid[], NULL::integer[], NULL::text[],
                                NULL::boolean[];
            RETURN;
        END IF;
    END IF;
    IF rv.relid IS NOT NULL THEN
        -- no change recorded yet at R: its first version, and no rows
        RETURN QUERY SELECT 'ok', 'r', NULL::bigint, rv.version, rv.nspname, rv.relname, rv.col_ids, rv.col_names,
                            rv.col_type_oids, rv.col_typmods, rv.col_type_names, rv.col_is_key;
    END IF;
END
$fn$;

-- The columns of a table in the table log after revision p_rev (NULL: none).
CREATE OR REPLACE FUNCTION @schema@.logged_columns(p_relid oid, p_rev bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT e.columns FROM @schema@.table_event e
    WHERE e.relid = p_relid AND e.revision_id <= p_rev AND e.event <> 'drop'
    ORDER BY e.revision_id DESC, e.seq DESC LIMIT 1
$fn$;

-- leaf_key(parent, leaf, key): a key in the parent's form (its key columns
-- in its column order) in the form the leaf records it (the leaf's key
-- columns in the leaf's column order, which may differ: a table attached
-- as a partition keeps its own column order). Unchanged when the two agree
-- or cannot be matched by name.
CREATE OR REPLACE FUNCTION @schema@.leaf_key(p_parent oid, p_leaf oid, p_key text) RETURNS text
LANGUAGE sql STABLE AS $fn$
    WITH pk AS (SELECT x.c->>1 AS name, row_number() OVER (ORDER BY x.n) AS i
                FROM jsonb_array_elements(@schema@.logged_columns(p_parent, (SELECT max(id) FROM @schema@.revision)))
                     WITH ORDINALITY AS x(c, n)
                WHERE (x.c->>5)::boolean),
         lv AS (SELECT rv.col_names, rv.col_is_key FROM @schema@.relation_version rv
                WHERE rv.relid = p_leaf ORDER BY rv.version DESC LIMIT 1),
         lk AS (SELECT y.name, row_number() OVER (ORDER BY y.n) AS i
                FROM lv CROSS JOIN LATERAL unnest(lv.col_names, lv.col_is_key) WITH ORDINALITY AS y(name, is_key, n)
                WHERE y.is_key),
         el AS (SELECT e.e, e.i FROM json_array_elements(p_key::json) WITH ORDINALITY AS e(e, i)),
         m AS (SELECT el.e, lk.i FROM lk JOIN pk ON pk.name = lk.name JOIN el ON el.i = pk.i)
    SELECT CASE WHEN (SELECT count(*) FROM m) = (SELECT count(*) FROM pk)
                 AND (SELECT count(*) FROM m) = (SELECT count(*) FROM lk) AND (SELECT count(*) FROM m) > 0
                THEN (SELECT '[' || string_agg(m.e::text, ',' ORDER BY m.i) || ']' FROM m)
                ELSE p_key END
$fn$;

-- parent_rows(parent, R): a partitioned table after revision R, the union of
-- the rows of its leaf partitions then, each row's vals in the parent's
-- column order (matched by name: a partition may order its columns
-- differently) and its key in the parent's form (the parent's key columns
-- in its order; the partition's own key when the parent has none), with
-- the partition it is in. An INHERITS parent (not partitioned): its own
-- rows and its children's, each with the key its own table gives it (the
-- children need not have the parent's key, and share no key space).
CREATE OR REPLACE FUNCTION @schema@.parent_rows(p_relid oid, p_rev bigint)
RETURNS TABLE (relid oid, key text, vals text[])
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    pcols jsonb := @schema@.logged_columns(p_relid, p_rev);
    part  boolean := EXISTS (SELECT 1 FROM @schema@.table_event e WHERE e.relid = p_relid AND e.relkind = 'p');
    m     oid;
    rv    @schema@.relation_version;
    map   smallint[];
    keyn  integer[];
BEGIN
    IF pcols IS NULL THEN
        RETURN;
    END IF;
    PERFORM @schema@.members_logged(p_relid, p_rev, p_rev);
    keyn := ARRAY(SELECT c.n FROM jsonb_array_elements(pcols) WITH ORDINALITY AS c(c, n)
                  WHERE (c.c->>5)::boolean ORDER BY c.n);
    FOR m IN SELECT x FROM @schema@.members_at(p_relid, p_rev) x LOOP
        SELECT v.* INTO rv FROM @schema@.relation_at(m, p_rev) v;
        CONTINUE WHEN rv.relid IS NULL; -- nothing recorded of it: no rows
        map := ARRAY(SELECT rv.col_ids[array_position(rv.col_names, c.c->>1)]
                     FROM jsonb_array_elements(pcols) WITH ORDINALITY AS c(c, n) ORDER BY c.n);
        RETURN QUERY
        SELECT m, CASE WHEN cardinality(keyn) = 0 OR NOT part THEN r.key
                       ELSE '[' || (SELECT string_agg(coalesce(to_json(r.vals[k])::text, 'null'), ',' ORDER BY k)
                                    FROM unnest(keyn) AS k) || ']' END,
               r.vals
        FROM (SELECT s.key, ARRAY(SELECT s.vals[u.id] FROM unnest(map) WITH ORDINALITY AS u(id, n) ORDER BY u.n) AS vals
              FROM @schema@.snapshot_rows(m, p_rev) s) r;
    END LOOP;
END
$fn$;

-- inherit_rows(parent, R): what SELECT * FROM an INHERITS parent showed
-- after revision R: its own rows and those of every table below it then (at
-- any depth, following INHERIT and NO INHERIT), each row's vals indexed by
-- the parent's column identities of then (table_at's col_ids, as
-- snapshot_rows' are), its columns matched by name (a child's own columns
-- are left out, as SELECT * FROM the parent leaves them out). A child that
-- logical decoding cannot see (unlogged) is an error naming it: the parent's
-- rows would be wrong without it.
CREATE OR REPLACE FUNCTION @schema@.inherit_rows(p_relid oid, p_rev bigint)
RETURNS TABLE (relid oid, key text, vals text[])
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    pt   record;
    ct   record;
    m    oid;
    map  smallint[];
    nmax integer;
BEGIN
    SELECT t.* INTO pt FROM @schema@.table_at(p_relid, p_rev) t;
    IF pt.state IS DISTINCT FROM 'ok' THEN
        RETURN;
    END IF;
    PERFORM @schema@.members_logged(p_relid, p_rev, p_rev);
    RETURN QUERY SELECT p_relid, s.key, s.vals FROM @schema@.snapshot_rows(p_relid, p_rev) s;
    nmax := coalesce((SELECT max(i) FROM unnest(pt.col_ids) AS i), 0);
    FOR m IN SELECT x FROM @schema@.members_at(p_relid, p_rev) x WHERE x <> p_relid LOOP
        SELECT t.* INTO ct FROM @schema@.table_at(m, p_rev) t;
        CONTINUE WHEN ct.state IS DISTINCT FROM 'ok';
        map := ARRAY(SELECT ct.col_ids[array_position(ct.col_names, pt.col_names[array_position(pt.col_ids, i::smallint)])]
                     FROM generate_series(1, nmax) AS i ORDER BY i);
        RETURN QUERY
        SELECT m, s.key, ARRAY(SELECT s.vals[u.id] FROM unnest(map) WITH ORDINALITY AS u(id, n) ORDER BY u.n)
        FROM @schema@.snapshot_rows(m, p_rev) s;
    END LOOP;
END
$fn$;

-- parent_diff(r1, r2, parent): diff() for a partitioned table, over the
-- union of its partitions at each point (a row that moved between
-- partitions is one row; columns are matched by name), and for an INHERITS
-- parent over its rows and its children's (a row is one row in its own
-- table: an UPDATE never moves a row between them).
CREATE OR REPLACE FUNCTION @schema@.parent_diff(p_r1 bigint, p_r2 bigint, p_relid oid)
RETURNS TABLE(key text, change text, column_name text, old_value text, new_value text)
LANGUAGE sql STABLE AS $fn$
    WITH c1 AS (SELECT x.c->>1 AS name, x.n FROM jsonb_array_elements(@schema@.logged_columns(p_relid, p_r1))
                     WITH ORDINALITY AS x(c, n)),
         c2 AS (SELECT x.c->>1 AS name, x.n FROM jsonb_array_elements(@schema@.logged_columns(p_relid, p_r2))
                     WITH ORDINALITY AS x(c, n)),
         cols AS (SELECT coalesce(c2.name, c1.name) AS name, c1.n AS n1, c2.n AS n2,
                         coalesce(c2.n, 100000 + c1.n) AS ord
                  FROM c1 FULL JOIN c2 ON c1.name = c2.name),
         a AS (SELECT r.relid, r.key, r.vals FROM @schema@.parent_rows(p_relid, p_r1) r),
         b AS (SELECT r.relid, r.key, r.vals FROM @schema@.parent_rows(p_relid, p_r2) r),
         j AS (SELECT coalesce(a.key, b.key) AS key,
                      CASE WHEN a.key IS NULL THEN 'added' WHEN b.key IS NULL THEN 'removed' ELSE 'changed' END AS change,
                      a.vals AS av, b.vals AS bv
               FROM a FULL JOIN b ON a.key = b.key
                    AND (a.relid = b.relid
                         OR EXISTS (SELECT 1 FROM @schema@.table_event e WHERE e.relid = p_relid AND e.relkind = 'p')))
    SELECT j.key, j.change, cols.name, j.av[cols.n1], j.bv[cols.n2]
    FROM j CROSS JOIN cols
    WHERE (j.change = 'added' AND cols.n2 IS NOT NULL)
       OR (j.change = 'removed' AND cols.n1 IS NOT NULL)
       OR (j.change = 'changed' AND j.av[cols.n1] IS DISTINCT FROM j.bv[cols.n2])
    ORDER BY j.key, cols.ord
$fn$;

-- resolve_table(schema, name): the table that had that name last, in the
-- relation versions or the table log (a table never written, a partitioned
-- table). NULL when none did.
CREATE OR REPLACE FUNCTION @schema@.resolve_table(p_nspname text, p_relname text) RETURNS oid
LANGUAGE sql STABLE AS $fn$
    SELECT x.relid FROM (
        SELECT rv.relid, rv.valid_from AS at, 1 AS pri FROM @schema@.relation_version rv
        WHERE rv.nspname = p_nspname AND rv.relname = p_relname
        UNION ALL
        SELECT e.relid, r.commit_lsn, 0 FROM @schema@.table_event e JOIN @schema@.revision r ON r.id = e.revision_id
        WHERE e.nspname = p_nspname AND e.relname = p_relname AND e.event <> 'drop'
    ) x ORDER BY x.at DESC, x.pri DESC LIMIT 1
$fn$;

-- ---------------------------------------------------------------------------
-- A read-only role for auditors and BI tools: can read history, never write.
-- ---------------------------------------------------------------------------
-- Roles are the cluster's: a setup of another database may create it at the
-- same moment (its check passed too), and CREATE ROLE then fails on the
-- catalog's unique index; the role exists either way.
DO $do$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'walrev_reader') THEN
        CREATE ROLE walrev_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$do$;
GRANT USAGE ON SCHEMA @schema@ TO walrev_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA @schema@ TO walrev_reader;
-- Readers see digests, never the key they are made with.
REVOKE ALL ON @schema@.digest_key FROM walrev_reader;
GRANT EXECUTE ON FUNCTION @schema@.resolve_point(text), @schema@.resolve_bound(text), @schema@.point_before(bigint, timestamptz, text, text),
    @schema@.refuse_gap_point(bigint, pg_lsn, timestamptz, text), @schema@.relation_at(oid, bigint),
    @schema@.snapshot_rows(oid, bigint), @schema@.row_at(oid, text, bigint), @schema@.current_rows(oid),
    @schema@.object_image(oid, text, bigint), @schema@.lineage_row(oid, text, bigint, boolean),
    @schema@.lineage_parts(oid, text, bigint),
    @schema@.lineage_image(oid, text[], bigint[], integer[], bigint[], integer[], text[]),
    @schema@.delta_old_key(oid, integer, text, smallint[], text[], text[], smallint[], boolean),
    @schema@.key_columns(oid), @schema@.moved_away(oid, text, bigint, integer, bigint),
    @schema@.lineage(oid, text, bigint, integer, boolean),
    @schema@.snapshot_plan(oid, bigint), @schema@.keyframe_at(oid, bigint),
    @schema@.table_keys(oid, integer), @schema@.snapshot_plan_by_key(oid, bigint, integer),
    @schema@.blame(oid, text, bigint), @schema@.blame_full(oid, text, bigint),
    @schema@.blame_present(oid, text, bigint, text[]),
    @schema@.blame_rows(@schema@.relation_version, text[], smallint[], bigint[], integer[], "char"[], smallint[],
                        smallint[]), @schema@.diff(bigint, bigint, oid),
    @schema@.revert_conflicts(bigint), @schema@.change_pos(bigint, integer), @schema@.member_intervals(oid),
    @schema@.members_at(oid, bigint), @schema@.members_logged(oid, bigint, bigint), @schema@.table_at(oid, bigint), @schema@.logged_columns(oid, bigint),
    @schema@.parent_rows(oid, bigint), @schema@.parent_diff(bigint, bigint, oid),
    @schema@.inherit_rows(oid, bigint), @schema@.is_inherit_parent(oid),
    @schema@.resolve_table(text, text), @schema@.leaf_key(oid, oid, text),
    @schema@.erased_at(oid, text, text, bigint) TO walrev_reader;
