-- s6_delta_index.sql — bytes per single-column update of object_delta's heap
-- and of candidate per-object indexes, on a table of object_delta's format 6
-- columns (not partitioned: partitions change no entry's width) filled as
-- bench scenario 6 fills the store: a 10,000-row baseline (op S, one revision),
-- then 10 rounds of one-column updates of ids 1..10,000 in order, appended in
-- (revision_id, seq) order with every index present (so each leaf splits as it
-- does under the sink). Prints each relation's growth over the updates per
-- update, then each index built again from the whole table (what a REINDEX of
-- a closed partition would leave), per entry. issue 16, P6
-- (bench/issue16-cost.md, "object_delta: bytes per update, options").
--
--   psql -X -v per=1 -v uuid=0 -f bench/workloads/s6_delta_index.sql   (in a scratch database)
--     per: updates per transaction (1 or 100); uuid: 1 for 36-character uuid keys
--     instead of the integer ids ('["1234"]')
DROP TABLE IF EXISTS s6di_od;
CREATE TABLE s6di_od (
    revision_id bigint NOT NULL, seq integer NOT NULL, relid oid NOT NULL, relversion integer NOT NULL,
    op "char" NOT NULL, key text COLLATE "C", context_no smallint NOT NULL DEFAULT 0,
    col_ids smallint[], old_values text[], new_values text[], attr_flags smallint[],
    old_unknown boolean NOT NULL DEFAULT false, col_id smallint, old_value text, new_value text);
CREATE INDEX s6di_format6 ON s6di_od (relid, key, revision_id, seq);          -- object_delta_object_idx today
CREATE INDEX s6di_no_seq ON s6di_od (relid, key, revision_id);                -- formats 1-5's
CREATE INDEX s6di_hash ON s6di_od (relid, hashtext(key), revision_id);
CREATE INDEX s6di_hash_seq ON s6di_od (relid, hashtext(key), revision_id, seq);
CREATE INDEX s6di_dedup ON s6di_od (relid, key);                              -- posting lists, no order
CREATE FUNCTION pg_temp.s6di_key(i int, as_uuid int) RETURNS text LANGUAGE sql IMMUTABLE AS
    $$ SELECT '["' || CASE WHEN as_uuid = 1 THEN md5(i::text)::uuid::text ELSE i::text END || '"]' $$;
INSERT INTO s6di_od (revision_id, seq, relid, relversion, op, key, col_ids, new_values)
SELECT 1, g, 16384, 1, 'S', pg_temp.s6di_key(g, :uuid), '{1,2,3,4,5,6,7,8,9,10,11,12}', array_fill('x'::text, ARRAY[12])
FROM generate_series(1, 10000) g;
CREATE TEMP TABLE s6di_before AS
    SELECT c.relname, pg_relation_size(c.oid) AS bytes FROM pg_class c WHERE c.relname LIKE 's6di\_%';
INSERT INTO s6di_od (revision_id, seq, relid, relversion, op, key, col_id, old_value, new_value)
SELECT 2 + (r - 1) / :per, 1 + (r - 1) % :per, 16384, 1, 'U', pg_temp.s6di_key(1 + (r - 1) % 10000, :uuid), 3,
       (100 + r)::text, (101 + r)::text
FROM generate_series(1, 100000) r ORDER BY r;
SELECT b.relname AS relation, round((pg_relation_size(b.relname::regclass) - b.bytes) / 100000.0, 1) AS bytes_per_update
FROM s6di_before b ORDER BY 1;
CREATE INDEX s6di_rebuilt_format6 ON s6di_od (relid, key, revision_id, seq);
CREATE INDEX s6di_rebuilt_no_seq ON s6di_od (relid, key, revision_id);
CREATE INDEX s6di_rebuilt_hash_seq ON s6di_od (relid, hashtext(key), revision_id, seq);
SELECT c.relname AS rebuilt, round(pg_relation_size(c.oid) / 110000.0, 1) AS bytes_per_entry
FROM pg_class c WHERE c.relname LIKE 's6di\_rebuilt\_%' ORDER BY 1;
DROP TABLE s6di_od;
