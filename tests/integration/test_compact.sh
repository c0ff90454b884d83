#!/usr/bin/env bash
# Compaction (issue 16, P6): `walrev compact` rebuilds the B-tree indexes of
# the history partitions no longer written at fillfactor 100
# ([history] partition_revisions = 10 here), one at a time: the per-object
# index of a partition filled in random key order gets smaller; the newest
# partition's indexes are left as they are; every index stays valid and
# attached to its parent; history, blame, log, snapshot and verify answer
# the same; a second run finds nothing to do; what a failed rebuild left is
# dropped; a compaction already running is refused; bad usage exits 2; and
# [history] compact_interval compacts from the running worker.
source "$(dirname "$0")/lib.sh"
source_db compact_db
OUT=$TEST_TMP
source_conf compact_db <<CONF
[history]
partition_revisions = 10
compact_interval = 0
CONF

q $DB "CREATE TABLE acct (id int PRIMARY KEY, v int NOT NULL)"
W setup >"$OUT/setup.out" 2>&1 || { cat "$OUT/setup.out"; fail setup; }
q $DB "INSERT INTO acct SELECT g, 0 FROM generate_series(1, 1000) g" >/dev/null
# 24 transactions of 400 updates each, rows in a shuffled order: the deltas
# reach the per-object index in random key order, as a live stream's do
for i in $(seq 1 24); do
  q $DB "UPDATE acct SET v = v + 1 WHERE id IN (SELECT g FROM generate_series(1, 1000) g ORDER BY random() LIMIT 400)" >/dev/null
done
run_to "$(current_lsn $DB)" "$OUT/run.log" -c "$OUT/walrev.conf"
N=$(q $DB "$H SELECT max(id) FROM revision")

# the partitions' B-tree indexes: name, full partition?, relfilenode, bytes, reloptions, valid, attached
indexes() {
  q $DB "$H SELECT c.relname, p.hi <= $N + 1, c.relfilenode, pg_relation_size(c.oid), coalesce(c.reloptions::text, '-'),
                  i.indisvalid, EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid)
           FROM history_partitions() p JOIN pg_index i ON i.indrelid = p.part JOIN pg_class c ON c.oid = i.indexrelid
           WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree') ORDER BY p.lo, p.tbl, c.relname"
}
answers() { # what the history says, through the CLI
  W history --table acct --key 7
  W blame --table acct --key 7
  W log --table acct --limit 5
  W snapshot --table acct --at 12 | LC_ALL=C sort
  W snapshot --table acct | LC_ALL=C sort
}
indexes >"$OUT/before.idx"
answers >"$OUT/before.ans" 2>&1 || { cat "$OUT/before.ans"; fail "answers before"; }
FULL=$(awk -F'|' '$2 == "t"' "$OUT/before.idx" | wc -l)
[ "$FULL" -ge 6 ] || fail "expected full partitions with indexes: $(cat "$OUT/before.idx")"

# ---- bad usage ----
run_w extra compact now
expect_eq "compact takes no argument: exit 2" "$rc:$(cat "$OUT/extra.err")" \
  "2:walrev compact: error: compact: unexpected argument now"

# ---- a compaction already running is refused ----
$PSQL -d $DB -c "SELECT pg_advisory_lock(hashtext('walrev compact walrev')), pg_sleep(30)" >/dev/null 2>&1 &
LOCKER=$!
on_exit "kill $LOCKER 2>/dev/null"
advisory_locks() { [ "$(q $DB "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                                 WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '$DB'")" = "$1" ]; }
wait_for 10 advisory_locks 1 || fail "the advisory lock was not taken"
run_w busy compact
expect_eq "a second compaction is refused, nothing done" "$rc:$(cat "$OUT/busy.err")" \
  "1:walrev compact: error: another compaction of this history store is running; nothing done"
kill $LOCKER 2>/dev/null; wait $LOCKER 2>/dev/null || true
q $DB "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND d.datname = '$DB' AND l.pid <> pg_backend_pid()" >/dev/null
wait_for 10 advisory_locks 0 || fail "the advisory lock was not released"

# ---- what a failed rebuild leaves is dropped ----
q $DB "CREATE UNIQUE INDEX CONCURRENTLY object_delta_p11_relid_idx_ccnew ON walrev.object_delta_p11 (relid)" >/dev/null 2>&1 || true
expect_eq "a failed concurrent build left an invalid index" \
  "$(q $DB "SELECT indisvalid FROM pg_index WHERE indexrelid = 'walrev.object_delta_p11_relid_idx_ccnew'::regclass")" f

# ---- compact ----
run_w compact compact
expect_eq "compact exits 0" "$rc" 0
expect_eq "the unfinished rebuild is dropped" "$(q $DB "SELECT to_regclass('walrev.object_delta_p11_relid_idx_ccnew')")" ""
indexes >"$OUT/after.idx"
expect_eq "one line per index of the full partitions, and the total" "$(grep -c '^compacted walrev\.' "$OUT/compact.out")|$(tail -1 "$OUT/compact.out" | cut -d: -f1)" \
  "$FULL|compacted $FULL indexes of the partitions no longer written"
expect_eq "every index of a full partition rebuilt at fillfactor 100, valid and attached" \
  "$(awk -F'|' '$2 == "t" { print $1 "|" $5 "|" $6 "|" $7 }' "$OUT/after.idx" | sort -u | cut -d'|' -f2- | sort -u)" \
  "{fillfactor=100}|t|t"
expect_eq "...each a new file" \
  "$(join -t'|' <(awk -F'|' '$2 == "t" { print $1 "|" $3 }' "$OUT/before.idx" | sort) \
               <(awk -F'|' '$2 == "t" { print $1 "|" $3 }' "$OUT/after.idx" | sort) | awk -F'|' '$2 == $3' | wc -l)" 0
expect_eq "the newest partitions' indexes are left as they were" \
  "$(awk -F'|' '$2 == "f"' "$OUT/after.idx")" "$(awk -F'|' '$2 == "f"' "$OUT/before.idx")"
size_of() { awk -F'|' -v n="$2" '$1 == n { print $4 }' "$1"; }
OBJ=object_delta_p1_relid_key_revision_id_seq_idx
[ "$(size_of "$OUT/after.idx" $OBJ)" -lt "$(size_of "$OUT/before.idx" $OBJ)" ] ||
  fail "the per-object index of partition 1 did not get smaller: $(size_of "$OUT/before.idx" $OBJ) -> $(size_of "$OUT/after.idx" $OBJ)"
expect_eq "its line says so" "$(grep -c "^compacted walrev.$OBJ: $(size_of "$OUT/before.idx" $OBJ) -> $(size_of "$OUT/after.idx" $OBJ) bytes$" "$OUT/compact.out")" 1
answers >"$OUT/after.ans" 2>&1 || { cat "$OUT/after.ans"; fail "answers after"; }
cmp -s "$OUT/before.ans" "$OUT/after.ans" || { diff "$OUT/before.ans" "$OUT/after.ans" >&2; fail "answers changed"; }
W verify >"$OUT/verify.out" 2>&1 || { cat "$OUT/verify.out"; fail "verify after compact"; }
run_w again compact
expect_eq "a second run has nothing to do" "$rc:$(cat "$OUT/again.out")" \
  "0:nothing to compact: every index of the partitions no longer written is rebuilt already"
pass "compact: $FULL indexes rebuilt, $OBJ $(size_of "$OUT/before.idx" $OBJ) -> $(size_of "$OUT/after.idx" $OBJ) bytes; answers unchanged"

# ---- [history] compact_interval in the worker ----
sed -i 's/^compact_interval = 0$/compact_interval = 1/' "$OUT/walrev.conf"
worker_start "$OUT/worker.log" -c "$OUT/walrev.conf"
on_exit '[ -n "${WORKER_PID:-}" ] && kill -KILL "$WORKER_PID" 2>/dev/null'
for i in $(seq 1 25); do q $DB "UPDATE acct SET v = v + 1 WHERE id = $i" >/dev/null; done
M=$((N + 20))
compacted_past() {
  [ "$(q $DB "$H SELECT count(*) > 0 AND bool_and(coalesce('fillfactor=100' = ANY (c.reloptions), false))
                FROM history_partitions() p JOIN pg_index i ON i.indrelid = p.part JOIN pg_class c ON c.oid = i.indexrelid
                WHERE c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
                  AND p.hi <= (SELECT max(id) + 1 FROM revision) AND p.hi > $N + 1")" = t ] &&
    [ "$(q $DB "$H SELECT max(id) >= $M FROM revision")" = t ]
}
wait_for 60 compacted_past || { cat "$OUT/worker.log"; fail "the worker did not compact the partitions it filled"; }
worker_stop || { cat "$OUT/worker.log"; fail "worker stop"; }
grep -q 'msg="history index compacted" index=walrev\.' "$OUT/worker.log" || { cat "$OUT/worker.log"; fail "compaction not logged"; }
W verify >"$OUT/verify2.out" 2>&1 || { cat "$OUT/verify2.out"; fail "verify after the worker compacted"; }
expect_eq "compact_interval: the newest snapshot equals the table" \
  "$(W snapshot --table acct 2>/dev/null | LC_ALL=C sort)" "$(q $DB "COPY (SELECT * FROM acct) TO STDOUT" | LC_ALL=C sort)"
pass "compact_interval: $(grep -c 'msg="history index compacted"' "$OUT/worker.log") index(es) compacted by the worker"
