#!/usr/bin/env bash
# Upgrade of a format 2 history store to the current format (5) by `walrev setup`: a history
# is recorded, rewritten into a store made by the format 2 DDL
# (history_format2.sql) as a format 2 worker writes it (every delta in arrays,
# revision.parent_checksum filled); the worker refuses it; setup upgrades it
# in place (twice: idempotent); the old rows keep their form, new
# single-column changes take the scalar form, and verify, snapshots, history
# and the old-image lookup are right across both.
source "$(dirname "$0")/lib.sh"
source_db upgrade_f2
W() { "$WALREV_BIN" --source "$SRC" --slot upgrade_f2 "$@"; }  # its own slot: the cluster is shared
OUT=$TEST_TMP

q $DB "CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), note text)"
w_setup

step=0
do_step() { # do_step SQL: one transaction with an actor, then the true contents and the LSN
  step=$((step + 1))
  q $DB "BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"u$step\"}}'); $1 COMMIT;" >/dev/null
  q $DB "COPY (SELECT * FROM acct) TO STDOUT" | LC_ALL=C sort >"$OUT/$step.acct"
  current_lsn $DB >"$OUT/$step.lsn"
}
catch_up() {
  local stop
  stop=$(current_lsn $DB)
  run_to "$stop" "$OUT/run.log" --source "$SRC" --slot upgrade_f2
}
check_snapshots() { # check_snapshots WHAT
  local s
  for ((s = 1; s <= step; s++)); do
    W snapshot --at "$(cat "$OUT/$s.lsn")" --table acct 2>"$OUT/snap.err" | LC_ALL=C sort >"$OUT/$s.snap" ||
      { cat "$OUT/snap.err"; fail "$1: snapshot at step $s"; }
    cmp -s "$OUT/$s.acct" "$OUT/$s.snap" || { diff "$OUT/$s.acct" "$OUT/$s.snap" >&2; fail "$1: snapshot at step $s"; }
  done
  pass "$1: snapshots at steps 1..$step equal the true contents"
}

# Format 2 era: inserts, single- and multi-column updates, NULLs, a delete.
do_step "INSERT INTO acct SELECT g, 'owner ' || g, g * 10, CASE WHEN g % 2 = 0 THEN 'n' || g END FROM generate_series(1, 6) g;"
do_step "UPDATE acct SET balance = balance + 1 WHERE id = 1;"
do_step "UPDATE acct SET note = NULL WHERE id = 2; UPDATE acct SET note = 'x' WHERE id = 3;"
do_step "UPDATE acct SET owner = 'Ann', balance = 5 WHERE id = 1;"
do_step "DELETE FROM acct WHERE id = 6;"
catch_up
# (without verified and db_user: a format 2 store has no identity columns, so they read f and empty after it)
W history --table acct --key 1 --format csv 2>/dev/null | cut -d, -f1-9 >"$OUT/history1.before" || fail "history before"
n2=$(q $DB "SELECT count(*) FROM walrev.revision")

# The same history as a format 2 store: its DDL, every delta in the arrays,
# the parent checksum stored (the previous revision's, zeros for the first).
q $DB "SET client_min_messages = warning; SET walrev.publish_new_schema = off; CREATE SCHEMA f3;
       CREATE TABLE f3.revision AS SELECT * FROM walrev.revision;
       CREATE TABLE f3.revision_context AS SELECT revision_id, context_no, lsn, actor_type, actor_id, actor, description, meta, raw FROM walrev.revision_context;
       CREATE TABLE f3.relation_version AS SELECT * FROM walrev.relation_version;
       CREATE TABLE f3.object_delta AS SELECT * FROM walrev.object_delta_arrays;
       CREATE TABLE f3.keyframe AS SELECT * FROM walrev.keyframe;
       CREATE TABLE f3.keyframe_row AS SELECT * FROM walrev.keyframe_row;
       CREATE TABLE f3.tracked_table AS SELECT * FROM walrev.tracked_table;
       CREATE TABLE f3.checkpoint AS SELECT * FROM walrev.checkpoint;
       CREATE TABLE f3.backfill AS SELECT relid, nspname, relname, state, request_no, last_key, chunks, rows_read,
           rows_recorded, error, requested_at, started_at, finished_at, updated_at FROM walrev.backfill;
       CREATE UNLOGGED TABLE public.f3_key AS SELECT key FROM walrev.digest_key;
       DROP SCHEMA walrev CASCADE"
sed 's/@schema@/walrev/g' "$(dirname "$0")/history_format2.sql" | $PSQL -d $DB >/dev/null
q $DB "SET client_min_messages = warning;
       INSERT INTO walrev.relation_version SELECT relid, version, nspname, relname, replident, valid_from, col_ids,
           col_names, col_type_oids, col_typmods, col_type_names, col_is_key, col_track FROM f3.relation_version;
       CREATE UNLOGGED TABLE public.f3_rv_chain AS SELECT relid, version, covered_by, checksum FROM f3.relation_version;
       INSERT INTO walrev.revision (id, xid, commit_lsn, end_lsn, commit_time, origin, gid, actor_type, actor_id,
           actor, description, meta, n_insert, n_update, n_delete, n_truncate, n_snapshot, n_suppressed, warnings,
           parent_checksum, checksum)
       SELECT id, xid, commit_lsn, end_lsn, commit_time, origin, gid, actor_type, actor_id, actor, description,
           meta, n_insert, n_update, n_delete, n_truncate, n_snapshot, n_suppressed, warnings,
           coalesce(lag(checksum) OVER (ORDER BY id), decode(repeat('00', 32), 'hex')), checksum FROM f3.revision;
       INSERT INTO walrev.revision_context SELECT * FROM f3.revision_context;
       INSERT INTO walrev.object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_ids,
           old_values, new_values, attr_flags, old_unknown)
       SELECT revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values,
           attr_flags, old_unknown FROM f3.object_delta;
       INSERT INTO walrev.keyframe SELECT * FROM f3.keyframe;
       INSERT INTO walrev.keyframe_row SELECT * FROM f3.keyframe_row;
       INSERT INTO walrev.tracked_table SELECT * FROM f3.tracked_table;
       INSERT INTO walrev.checkpoint SELECT * FROM f3.checkpoint;
       DELETE FROM walrev.backfill; INSERT INTO walrev.backfill SELECT * FROM f3.backfill;
       DROP SCHEMA f3 CASCADE"
expect_eq "a format 2 store with single-column deltas in arrays" \
  "$(q $DB "$H SELECT value, (SELECT count(*) FROM object_delta WHERE cardinality(col_ids) = 1) > 0,
                     (SELECT count(*) FROM revision) FROM store_info WHERE key = 'format_version'")" "2|t|$n2"

# The worker refuses it until setup has upgraded it.
upgrade_by_setup 2
expect_eq "setup (twice) upgrades in place: format 5, parent_checksum gone, scalar columns and raw_sha256 added, rows kept, values keyed from the next revision" \
  "$(q $DB "$H SELECT value,
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'walrev.revision'::regclass AND attname = 'parent_checksum' AND NOT attisdropped),
       (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'walrev.object_delta'::regclass
          AND attname IN ('col_id', 'old_value', 'new_value') AND NOT attisdropped),
       (SELECT count(*) FROM revision), (SELECT count(*) FROM object_delta WHERE col_id IS NOT NULL),
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'walrev.revision_context'::regclass AND attname = 'raw_sha256' AND NOT attisdropped)
       , (SELECT value FROM store_info WHERE key = 'keyed_values_from')
     FROM store_info WHERE key = 'format_version'")" "7|0|col_id,old_value,new_value|$n2|0|1|$((n2 + 1))"
expect_eq "format 6: revision, revision_context and object_delta partitioned; the old tables attached in place as their first partition, the next made ahead" \
  "$(q $DB "$H SELECT string_agg(c.relname || ':' || c.relkind::text, ' ' ORDER BY c.relname) FROM pg_class c
     WHERE c.oid IN ('walrev.revision'::regclass, 'walrev.revision_context'::regclass, 'walrev.object_delta'::regclass)")
   $(q $DB "$H SELECT string_agg(tbl || ':' || part::text || ':' || lo || '-' || hi, ' ' ORDER BY tbl, lo) FROM history_partitions()")
   $(q $DB "$H SELECT count(*) FROM ONLY revision_p1")" \
  "object_delta:p revision:p revision_context:p
   object_delta:object_delta_p1:1-1000001 object_delta:object_delta_p1000001:1000001-2000001 revision:revision_p1:1-1000001 revision:revision_p1000001:1000001-2000001 revision_context:revision_context_p1:1-1000001 revision_context:revision_context_p1000001:1000001-2000001
   $n2"
expect_eq "the old tables' indexes are the partitions' (renamed, not rebuilt) and the parents have theirs" \
  "$(q $DB "$H SELECT string_agg(indexrelid::regclass::text, ' ' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = 'revision_p1'::regclass")" \
  "revision_commit_time_brin_p1 revision_end_lsn_brin_p1 revision_pkey_p1"
expect_eq "object_delta_p1: its BRIN and life index kept, the object index rebuilt with seq (the three-column one dropped)" \
  "$(q $DB "$H SELECT string_agg(indexrelid::regclass::text || '(' || pg_get_indexdef(indexrelid, 0, true) || ')', ' ' ORDER BY indexrelid::regclass::text)
     FROM pg_index WHERE indrelid = 'object_delta_p1'::regclass")" \
  "$(echo object_delta_life_idx_p1'(CREATE INDEX object_delta_life_idx_p1 ON object_delta_p1 USING btree (relid, key, revision_id) WHERE op = ANY (ARRAY['"'"'I'"'"'::"char", '"'"'S'"'"'::"char", '"'"'D'"'"'::"char"]))' \
         object_delta_p1_relid_key_revision_id_seq_idx'(CREATE INDEX object_delta_p1_relid_key_revision_id_seq_idx ON object_delta_p1 USING btree (relid, key, revision_id, seq))' \
         object_delta_revision_brin_p1"(CREATE INDEX object_delta_revision_brin_p1 ON object_delta_p1 USING brin (revision_id) WITH (pages_per_range='32'))")"
# This history was recorded by a format 4 worker, whose chain covers the
# relation versions; a format 2 store has no columns for that, so they come
# back from the copy once setup has added them (kept in an unlogged table,
# which no publication carries).
# Likewise its values entered the chain keyed by its store's secret (format
# 5) from revision 1; the boundary setup set for a real upgrade (the next
# revision) is checked above, and test_history_sink's v_mixed verifies a
# chain hashed bare before it and keyed after.
q $DB "UPDATE walrev.relation_version r SET covered_by = c.covered_by, checksum = c.checksum
       FROM public.f3_rv_chain c WHERE c.relid = r.relid AND c.version = r.version; DROP TABLE public.f3_rv_chain;
       UPDATE walrev.digest_key SET key = (SELECT key FROM public.f3_key); DROP TABLE public.f3_key;
       UPDATE walrev.store_info SET value = '1' WHERE key = 'keyed_values_from'"
must "$OUT/verify.out" "verify after the upgrade" W verify
pass "verify after the upgrade: $(cat "$OUT/verify.out")"
check_snapshots "after the upgrade"
expect_eq "history of a key as before the upgrade" \
  "$(W history --table acct --key 1 --format csv 2>/dev/null | cut -d, -f1-9)" "$(cat "$OUT/history1.before")"

# Format 3 era: the rows written before are looked up for old images
# (a new worker: its row cache is empty), single-column changes are scalar.
do_step "UPDATE acct SET balance = balance + 2 WHERE id = 1; UPDATE acct SET note = 'y' WHERE id = 2;"
do_step "UPDATE acct SET note = NULL WHERE id = 4; UPDATE acct SET owner = 'Bo', note = 'z' WHERE id = 5;"
do_step "UPDATE acct SET balance = NULL WHERE id = 3; DELETE FROM acct WHERE id = 2;"
do_step "INSERT INTO acct VALUES (7, 'owner 7', 70, NULL); UPDATE acct SET balance = 1 WHERE id = 7;"
catch_up
expect_eq "new single-column updates in the scalar form, the rest in arrays" \
  "$(q $DB "$H SELECT string_agg(concat_ws(':', key, op, coalesce(col_id::text, col_ids::text), coalesce(old_value, '-'), coalesce(new_value, '-')), ' ' ORDER BY revision_id, seq)
     FROM object_delta WHERE revision_id > $n2 AND relid = 'public.acct'::regclass")" \
  '["1"]:U:3:5.00:7.00 ["2"]:U:4:-:y ["4"]:U:4:n4:- ["5"]:U:{2,4}:-:- ["3"]:U:3:30.00:- ["2"]:D:{1,2,3,4}:-:- ["7"]:I:{1,2,3,4}:-:- ["7"]:U:3:70.00:1.00'
expect_eq "every old value of a new delta is the value the row had before" \
  "$(q $DB "$H SELECT count(*) FILTER (WHERE coalesce(d.old_values, array_fill(NULL::text, ARRAY[cardinality(d.col_ids)]))
                                        IS DISTINCT FROM (SELECT array_agg((row_at(d.relid, d.key, d.revision_id - 1))[c] ORDER BY o)
                                                          FROM unnest(d.col_ids) WITH ORDINALITY u(c, o))), count(*)
     FROM object_delta_arrays d WHERE d.revision_id > $n2 AND d.op IN ('U', 'D')
      AND NOT EXISTS (SELECT 1 FROM object_delta i WHERE i.revision_id = d.revision_id AND i.key = d.key AND i.op = 'I')")" "0|6"
must "$OUT/verify.out" "verify across both formats" W verify
expect_eq "verify across both formats" "$(cat "$OUT/verify.out")" "$(W verify 2>&1)"
n3=$(q $DB "SELECT count(*) FROM walrev.revision")
grep -q "$n3" "$OUT/verify.out" || { cat "$OUT/verify.out"; fail "verify checked every revision ($n3)"; }
check_snapshots "across both formats"

# Tampering is still found: a format 2 revision's checksum, a scalar value.
q $DB "UPDATE walrev.revision SET checksum = set_byte(checksum, 0, get_byte(checksum, 0) # 1) WHERE id = 3"
if W verify >"$OUT/bad.out" 2>&1; then fail "verify after changing revision 3's checksum"; fi
grep -q "revision 3" "$OUT/bad.out" || { cat "$OUT/bad.out"; fail "verify names revision 3"; }
q $DB "UPDATE walrev.revision SET checksum = set_byte(checksum, 0, get_byte(checksum, 0) # 1) WHERE id = 3"
# acct's first new delta (setup's own table_log rows may come before it)
r1=$(q $DB "SELECT min(revision_id) FROM walrev.object_delta WHERE revision_id > $n2 AND relid = 'public.acct'::regclass")
q $DB "UPDATE walrev.object_delta SET new_value = '9.00' WHERE revision_id = $r1 AND seq = 1 AND col_id IS NOT NULL"
if W verify >"$OUT/bad.out" 2>&1; then fail "verify after changing a scalar new value"; fi
grep -q "revision $r1" "$OUT/bad.out" || { cat "$OUT/bad.out"; fail "verify names revision $r1"; }
pass "verify finds a changed checksum of a format 2 revision and a changed scalar value"
