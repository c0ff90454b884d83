# store_fill.sh — SQL with which the benches that write a history store in
# bulk (asof_bench.sh, audit_bench.sh, compact_p5.sh) build it as the history
# sink would, written once here (sourced, not run): the store's SQL of a
# checkout and a run of synthetic revisions. Each function prints SQL for the
# caller's psql; nothing here connects. Needs ROOT (the checkout).

# schema_sql FILE SCHEMA [DIR]: schema/sql/FILE.sql of the checkout DIR
# (default ROOT) with @schema@ replaced by SCHEMA.
schema_sql() { sed "s/@schema@/$2/g" "${3:-$ROOT}/schema/sql/$1.sql"; }

# store_sql SCHEMA: ROOT's history store DDL, then its replay SQL, for SCHEMA.
store_sql() { schema_sql history "$1"; schema_sql replay "$1"; }

# relation_version_sql SCHEMA TABLE REPLIDENT: version 1 of public.TABLE in
# SCHEMA, valid from 0/1, its columns as the catalog has them now (the
# primary key's marked as the key, none tracked), replica identity REPLIDENT
# ('d' or 'f'). The table must exist.
relation_version_sql() {
  cat <<SQL
INSERT INTO $1.relation_version (relid, version, nspname, relname, replident, valid_from, col_ids, col_names,
    col_type_oids, col_typmods, col_type_names, col_is_key, col_track)
SELECT a.attrelid, 1, 'public', '$2', '$3', '0/1', array_agg(a.attnum ORDER BY a.attnum),
       array_agg(a.attname::text ORDER BY a.attnum), array_agg(a.atttypid ORDER BY a.attnum),
       array_agg(a.atttypmod ORDER BY a.attnum), array_agg(NULL::text ORDER BY a.attnum),
       array_agg(coalesce(a.attnum = ANY (pk.indkey), false) ORDER BY a.attnum), array_agg('f'::"char" ORDER BY a.attnum)
FROM pg_attribute a LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
WHERE a.attrelid = 'public.$2'::regclass AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY a.attrelid;
SQL
}

# revisions_sql SCHEMA LAST: revisions 1 to LAST in SCHEMA, one a second from
# 2026-01-01 00:00:01 UTC, commit LSN 0/10 + 1000 x id, by actor user:(id % 7),
# one update each, a revision_context row each (a dummy checksum: verify is
# not what these benches time).
revisions_sql() {
  cat <<SQL
INSERT INTO $1.revision (id, xid, commit_lsn, end_lsn, commit_time, actor_type, actor_id, n_update, checksum)
SELECT r, r, '0/10'::pg_lsn + r * 1000, '0/10'::pg_lsn + r * 1000 + 8,
       timestamptz '2026-01-01 00:00:00+00' + r * interval '1 second', 'user', (r % 7)::text, 1, '\\x00'
FROM generate_series(1, $2) r;
INSERT INTO $1.revision_context (revision_id, context_no, lsn, actor_type, actor_id, raw)
SELECT id, 1, commit_lsn, actor_type, actor_id, '{}' FROM $1.revision;
SQL
}
