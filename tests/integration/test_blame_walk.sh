#!/usr/bin/env bash
# blame walks an object's deltas newest first and stops once every column has
# the change that set it (issue 16, P5: 2.9 s at 10^6 versions when it read the
# object's whole history). Its answers must be those of the full read, which
# is blame_full (the function as it was, kept as blame's fallback for a delete
# inside a segment): this test compares both for every key alive at every
# revision of a history with column updates, key changes (chains of them),
# deletes and re-inserts, a truncate, baseline rows, a dropped and an added
# column and NULLs; then it checks that
# blame of an object with thousands of versions reads a handful of deltas
# (index tuples fetched, from pg_stat_user_tables) where the full read reads
# them all, and that history --limit still prints the newest versions.
source "$(dirname "$0")/lib.sh"
source_db blamewalk blamewalk

q $DB "CREATE TABLE t (id int PRIMARY KEY, a int, b text, c text);
       INSERT INTO t SELECT g, g, 'b' || g, NULL FROM generate_series(1, 8) g;"
w_setup

q $DB "UPDATE t SET a = 100 WHERE id = 1;
       UPDATE t SET b = 'x' WHERE id IN (1, 2);"
q $DB "UPDATE t SET id = 20 WHERE id = 2;"                     # a key change
q $DB "UPDATE t SET c = 'c20' WHERE id = 20;"
q $DB "UPDATE t SET id = 21, a = 21 WHERE id = 20;"            # and another: a chain
q $DB "UPDATE t SET b = NULL WHERE id = 21;"
q $DB "DELETE FROM t WHERE id = 3;"
q $DB "INSERT INTO t VALUES (3, 33, 'again', NULL);"           # re-inserted: a new life
q $DB "BEGIN; UPDATE t SET a = a + 1 WHERE id = 4; UPDATE t SET a = a + 1 WHERE id = 4; COMMIT;"
q $DB "ALTER TABLE t ADD COLUMN d int;"
q $DB "UPDATE t SET d = 7 WHERE id = 5;"
q $DB "ALTER TABLE t DROP COLUMN c;"
q $DB "UPDATE t SET b = 'after drop' WHERE id = 6;"
q $DB "TRUNCATE t;"
q $DB "INSERT INTO t VALUES (1, 1, 'new 1', 1), (2, 2, 'new 2', NULL);"
q $DB "UPDATE t SET id = 9 WHERE id = 2;"
q $DB "UPDATE t SET d = 9 WHERE id = 9;"
# one object with thousands of versions, each its own revision
q $DB "INSERT INTO t VALUES (50, 0, 'w0', 0);"
q $DB "DO \$\$ BEGIN FOR i IN 1..3000 LOOP
         IF i % 2 = 0 THEN UPDATE t SET a = i WHERE id = 50; ELSE UPDATE t SET b = 'w' || i WHERE id = 50; END IF;
         COMMIT; END LOOP; END \$\$;"
q_at END "UPDATE t SET d = 1 WHERE id = 50;"
run_to "$END" "$TEST_TMP/run.log" --source "$SRC" --slot blamewalk
NREV=$(q $DB "$H SELECT max(id) FROM revision")
RELID=$(q $DB "SELECT 't'::regclass::oid")


# every key alive at every revision but the long object's (it is compared at a sample of them)
PAIRS=$(q $DB "$H SELECT count(*) FROM generate_series(1, $NREV) r,
                 LATERAL (SELECT s.key FROM snapshot_rows($RELID, r) s) k
               WHERE r < $NREV - 3000 OR r % 29 = 0 OR r >= $NREV - 2")
DIFF=$(q $DB "$H SELECT count(*) FROM generate_series(1, $NREV) r,
                LATERAL (SELECT s.key FROM snapshot_rows($RELID, r) s) k
              WHERE (r < $NREV - 3000 OR r % 29 = 0 OR r >= $NREV - 2)
                AND ARRAY(SELECT b::text FROM blame($RELID, k.key, r) b)
                    IS DISTINCT FROM ARRAY(SELECT b::text FROM walrev.blame_full($RELID, k.key, r) b)")
[ "$PAIRS" -gt 300 ] || fail "only $PAIRS (key, revision) pairs compared"
expect_eq "blame equals the full read for all $PAIRS (key, revision) pairs" "$DIFF" "0"
# a few answers spelled out: the worker records a key change as a delete and an insert
expect_eq "blame of the moved row at the revision before the truncate" \
  "$(q $DB "$H SELECT string_agg(column_name || '=' || coalesce(value, 'NULL') || '@' || coalesce(op::text, ''), ' ' ORDER BY column_name)
             FROM blame($RELID, '[\"21\"]', (SELECT max(revision_id) - 1 FROM object_delta WHERE op = 'T'))")" \
  "a=21@I b=NULL@U d=NULL@ id=21@I"
expect_eq "blame after the truncate starts at the re-insert" \
  "$(q $DB "$H SELECT string_agg(column_name || '=' || coalesce(value, 'NULL') || '@' || coalesce(op::text, ''), ' ' ORDER BY column_name)
             FROM blame($RELID, '[\"9\"]', $NREV)")" \
  "a=2@I b=new 2@I d=9@U id=9@I"
rc=0; OUT=$(q $DB "$H SELECT * FROM blame($RELID, '[\"3\"]', (SELECT min(revision_id) FROM object_delta WHERE op = 'D' AND key = '[\"3\"]'))" 2>&1) || rc=$?
case "$rc:$OUT" in [1-9]:*"no row with key [\"3\"]"*) pass "blame of a deleted row raises" ;; *) fail "blame of a deleted row: $rc $OUT" ;; esac

# An UPDATE recorded under its new key (as older stores and the SQL functions
# allow): blame follows the row back through a chain of them, 1 -> 2 -> 3, in
# a table of its own written here (revisions after the worker's).
M=424242
q $DB "$H INSERT INTO relation_version (relid, version, nspname, relname, replident, valid_from, col_ids, col_names,
          col_type_oids, col_typmods, col_type_names, col_is_key, col_track)
        VALUES ($M, 1, 'public', 'moved', 'd', '0/1', '{1,2,3}', '{id,b,c}', '{23,25,25}', '{-1,-1,-1}',
                '{NULL,NULL,NULL}', '{t,f,f}', '{f,f,f}');
        INSERT INTO revision (id, xid, commit_lsn, end_lsn, commit_time, checksum)
        SELECT $NREV + g, 1, 'F/0'::pg_lsn + g, 'F/0'::pg_lsn + g, now(), '\\x00' FROM generate_series(1, 7) g;
        INSERT INTO object_delta (revision_id, seq, relid, relversion, op, key, col_ids, old_values, new_values)
        VALUES ($NREV + 1, 1, $M, 1, 'I', '[\"1\"]', '{1,2,3}', NULL, '{1,b1,c1}'),
               ($NREV + 2, 1, $M, 1, 'U', '[\"1\"]', '{2}', '{b1}', '{b2}'),
               ($NREV + 3, 1, $M, 1, 'U', '[\"2\"]', '{1}', '{1}', '{2}'),
               ($NREV + 4, 1, $M, 1, 'U', '[\"2\"]', '{3}', '{c1}', '{c4}'),
               ($NREV + 5, 1, $M, 1, 'U', '[\"3\"]', '{1,3}', '{2,c4}', '{3,c5}'),
               ($NREV + 6, 1, $M, 1, 'U', '[\"3\"]', '{2}', '{b2}', '{b6}'),
               ($NREV + 6, 2, $M, 1, 'I', '[\"1\"]', '{1,2,3}', NULL, '{1,new,new}');"
MPAIRS=$(q $DB "$H SELECT count(*) FROM generate_series($NREV + 1, $NREV + 6) r,
                  LATERAL (SELECT s.key FROM snapshot_rows($M, r) s) k")
MDIFF=$(q $DB "$H SELECT count(*) FROM generate_series($NREV + 1, $NREV + 6) r,
                 LATERAL (SELECT s.key FROM snapshot_rows($M, r) s) k
               WHERE ARRAY(SELECT b::text FROM blame($M, k.key, r) b)
                     IS DISTINCT FROM ARRAY(SELECT b::text FROM walrev.blame_full($M, k.key, r) b)")
expect_eq "moved rows: blame equals the full read for all $MPAIRS (key, revision) pairs" "$MDIFF:$MPAIRS" "0:7"
expect_eq "blame of the row moved 1 -> 2 -> 3" \
  "$(q $DB "$H SELECT string_agg(column_name || '=' || value || '@' || (revision - $NREV), ' ' ORDER BY column_name)
             FROM blame($M, '[\"3\"]', $NREV + 6)")" "b=b6@6 c=c5@5 id=3@5"
expect_eq "blame of key 2 before its move (b set under key 1)" \
  "$(q $DB "$H SELECT string_agg(column_name || '=' || value || '@' || (revision - $NREV), ' ' ORDER BY column_name)
             FROM blame($M, '[\"2\"]', $NREV + 4)")" "b=b2@2 c=c4@4 id=2@3"
expect_eq "blame of key 1 inserted again: its new life only" \
  "$(q $DB "$H SELECT string_agg(column_name || '=' || value || '@' || (revision - $NREV), ' ' ORDER BY column_name)
             FROM blame($M, '[\"1\"]', $NREV + 6)")" "b=new@6 c=new@6 id=1@6"

# the walk reads a handful of the long object's 3,002 deltas, the full read all of them
# fetched FUNCTION: object_delta's index tuples fetched by one blame. The counters
# of other backends (an exiting one flushes its own late) must have settled
# first; the blame and both reads then share one session, its counters
# flushed by pg_stat_force_next_flush() before the second read.
# (object_delta is partitioned, store format 6: its partitions' counters, summed)
IDX="SELECT coalesce(sum(idx_tup_fetch), 0) FROM pg_stat_user_tables WHERE relid = 'walrev.object_delta'::regclass
     OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'walrev.object_delta'::regclass)"
fetched() {
  stat_settled "$IDX" >/dev/null || exit 1
  local out
  out=$($PSQL -d $DB -c "$IDX" -c "$H SELECT count(*) FROM $1($RELID, '[\"50\"]', $NREV)" \
                -c "SELECT pg_stat_force_next_flush()" -c "SELECT 1" -c "$IDX" | grep -v '^$')
  # lines: before, the blame's row count, 1, after
  echo $(( $(echo "$out" | sed -n 4p) - $(echo "$out" | sed -n 1p) ))
}
NEW=$(fetched walrev.blame)
OLD=$(fetched walrev.blame_full)
[ "$OLD" -ge 3000 ] || fail "the full read fetched $OLD deltas, expected every one of 3,002"
[ "$NEW" -le 200 ] || fail "blame of the 3,002-version object fetched $NEW deltas (the full read $OLD)"
pass "blame of a 3,002-version object fetched $NEW index tuples of object_delta (the full read $OLD)"
expect_eq "walrev blame of it" "$(W blame --table t --key 50 --format csv 2>/dev/null | cut -d, -f1-4)" \
"column,value,revision,op
id,50,$(q $DB "$H SELECT min(revision_id) FROM object_delta WHERE key = '[\"50\"]'"),I
a,3000,$((NREV - 1)),U
b,w2999,$((NREV - 2)),U
d,1,$NREV,U"
expect_eq "history --limit 3 of it: the newest three versions, oldest first" \
  "$(W history --table t --key 50 --limit 3 --format csv 2>/dev/null | cut -d, -f1,3,7,9 | tail -n +2)" \
  "$((NREV - 2)),U,b,w2999
$((NREV - 1)),U,a,3000
$NREV,U,d,1"

# blame of an object last changed long ago: whether an UPDATE recorded under
# another key moved the row away since comes from key_move (the moves the
# history holds: none the worker wrote, 7 written above), not from a read of
# every delta of the table since its last change (object 50's 3,002 here).
READ="SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) FROM pg_stat_user_tables
      WHERE relid = 'walrev.object_delta'::regclass
         OR relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'walrev.object_delta'::regclass)"
stat_settled "$READ" >/dev/null || exit 1
OUT9=$($PSQL -d $DB -c "$READ" -c "$H SELECT string_agg(column_name || '=' || coalesce(value, 'NULL'), ' ' ORDER BY column_name)
                                   FROM blame($RELID, '[\"9\"]', $NREV)" \
             -c "SELECT pg_stat_force_next_flush()" -c "SELECT 1" -c "$READ" | grep -v '^$')
expect_eq "blame of key 9, last changed before object 50's 3,002 versions" "$(echo "$OUT9" | sed -n 2p)" \
  "a=2 b=new 2 d=9 id=9"
N9=$(( $(echo "$OUT9" | sed -n 4p) - $(echo "$OUT9" | sed -n 1p) ))
[ "$N9" -le 50 ] || fail "blame of key 9 read $N9 rows of object_delta (the deltas since its last change: > 3,000)"
pass "blame of key 9 read $N9 rows of object_delta"
expect_eq "key_move lists the UPDATEs written in SQL that name a key column, none of the worker's" \
  "$(q $DB "$H SELECT string_agg((revision_id - $NREV) || ':' || key, ' ' ORDER BY revision_id) FROM key_move")" \
  "3:[\"2\"] 5:[\"3\"]"
# a store made before the list: setup lists its moves once (the same ones)
q $DB "$H DELETE FROM key_move; DELETE FROM store_info WHERE key = 'key_moves_listed'" >/dev/null
must "$TEST_TMP/setup2.out" "setup over a store without key_move" W setup
expect_eq "setup lists the moves of a store made before key_move" \
  "$(q $DB "$H SELECT string_agg((revision_id - $NREV) || ':' || key, ' ' ORDER BY revision_id) FROM key_move")" \
  "3:[\"2\"] 5:[\"3\"]"
