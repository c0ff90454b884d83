#!/usr/bin/env bash
# End to end for replay: a seeded random workload with actors over two tables
# related by a foreign key (inserts, updates, deletes, a key change, awkward
# text, a truncate, an ADD COLUMN), the true contents dumped after every step
# with the LSN; `walrev run --stop-lsn`; then `walrev snapshot --at LSN` equals
# every dump row for row, `walrev verify` passes, and `walrev rollback --to`
# a middle step leaves the live tables equal to that step's dump.
source "$(dirname "$0")/lib.sh"
source_db replay_e2e
W() { "$WALREV_BIN" --source "$SRC" "$@"; }
OUT=$TEST_TMP
# the insert position: with synchronous_commit=off pg_current_wal_lsn() (the
# write position) can lag behind a commit that already happened
insert_lsn() { q $DB "SELECT pg_current_wal_insert_lsn()"; }

q $DB "CREATE TABLE account (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2));
       CREATE TABLE item (id int PRIMARY KEY, account_id int NOT NULL REFERENCES account(id),
                          qty int, note text);
       CREATE TABLE marker (id int PRIMARY KEY);"
w_setup

RANDOM=20261123
STEPS=${REPLAY_E2E_STEPS:-40}
next_account=1
next_item=1
step_sql() {
  local s=$1 actor="user:u$((RANDOM % 4))" sql=""
  local type=${actor%%:*} id=${actor#*:}
  sql="BEGIN; SELECT walrev.context('{\"actor\":{\"type\":\"$type\",\"id\":\"$id\"},\"description\":\"step $s\"}');"
  local n=$((1 + RANDOM % 3)) i
  for ((i = 0; i < n; i++)); do
    case $((RANDOM % 8)) in
    0|1) sql+="INSERT INTO account VALUES ($next_account, 'owner $next_account', $((RANDOM % 1000)).$((RANDOM % 100)));"
         next_account=$((next_account + 1)) ;;
    2) sql+="UPDATE account SET balance = balance + $((RANDOM % 50)) WHERE id = (SELECT id FROM account ORDER BY md5(id::text || '$s$i') LIMIT 1);" ;;
    3|4) sql+="INSERT INTO item SELECT $next_item, id, $((RANDOM % 10)), CASE $((RANDOM % 4)) WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN E'tab\\there\\nnew \"q\" \\\\ back' ELSE 'größe ✓' END FROM account ORDER BY md5(id::text || '$s$i') LIMIT 1;"
         next_item=$((next_item + 1)) ;;
    5) sql+="UPDATE item SET qty = qty + 1, note = coalesce(note, '') || '+' WHERE id = (SELECT id FROM item ORDER BY md5(id::text || '$s$i') LIMIT 1);" ;;
    6) sql+="DELETE FROM item WHERE id = (SELECT id FROM item ORDER BY md5(id::text || '$s$i') LIMIT 1);" ;;
    7) sql+="DELETE FROM account WHERE id = (SELECT a.id FROM account a WHERE NOT EXISTS (SELECT 1 FROM item i WHERE i.account_id = a.id) ORDER BY md5(a.id::text || '$s$i') LIMIT 1);" ;;
    esac
  done
  case $s in
  12) sql+="UPDATE item SET id = id + 1000 WHERE id = (SELECT min(id) FROM item);" ;;  # a key change
  20) sql+="DELETE FROM item; TRUNCATE item;" ;;
  28) sql+="ALTER TABLE account ADD COLUMN tier text; UPDATE account SET tier = 'gold' WHERE id = (SELECT min(id) FROM account);" ;;
  esac
  STEP_SQL="$sql COMMIT;"  # a global: counters must survive (no subshell)
}

dump() { # dump STEP: sorted COPY text of each table
  for t in account item; do
    q $DB "COPY (SELECT * FROM $t) TO STDOUT" | LC_ALL=C sort >"$OUT/$1.$t"
  done
}

for ((s = 1; s <= STEPS; s++)); do
  step_sql $s
  q $DB "$STEP_SQL" >/dev/null
  insert_lsn >"$OUT/$s.lsn"
  dump $s
done
q $DB "INSERT INTO marker VALUES (1)"  # every recorded LSN now lies inside the history
STOP=$(insert_lsn)
run_to "$STOP" "$OUT/run.log" --source "$SRC"
pass "worker caught up to $STOP"

must "$OUT/verify.out" "verify" W verify
pass "verify: $(cat "$OUT/verify.out")"

check_snapshots() { # check_snapshots FIRST_STEP WHAT
  for ((s = $1; s <= STEPS; s++)); do
    lsn=$(cat "$OUT/$s.lsn")
    for t in account item; do
      W snapshot --at "$lsn" --table $t 2>"$OUT/snap.err" | LC_ALL=C sort >"$OUT/$s.$t.snap" ||
        { cat "$OUT/snap.err"; fail "snapshot $t at step $s ($lsn)"; }
      cmp -s "$OUT/$s.$t" "$OUT/$s.$t.snap" ||
        { diff "$OUT/$s.$t" "$OUT/$s.$t.snap" >&2; fail "$2: snapshot of $t at step $s ($lsn) differs from the true contents"; }
    done
  done
  pass "$2: snapshots at steps $1..$STEPS equal the true table contents row for row"
}
check_snapshots 1 "from deltas"

# Both forms of a delta (docs/history-store.md: a single-column change with no
# flag is stored in object_delta's scalar columns, every other in its arrays)
# give the same answers: every replay answer taken as written, then again with
# every delta that has both forms swapped to the other one.
a() { local rc=0; W "$@" || rc=$?; echo "rc=$rc"; }  # an answer and its exit status
answers() {
  local s k r t
  for s in 5 12 19 21 29 $STEPS; do
    for t in account item; do
      a snapshot --at "$(cat "$OUT/$s.lsn")" --table $t --format csv | LC_ALL=C sort
    done
    a rollback --to "$(cat "$OUT/$s.lsn")" --table account --table item --actor user:ops
  done
  for k in 1 2 3 4 5 6; do
    a history --table account --key $k --format csv
    a blame --table account --key $k --format csv
    a restore --table account --key $k --at "$(cat "$OUT/10.lsn")" --actor user:ops
    a history --table item --key $k --format csv
  done
  for r in 3 7 11 15 23 33; do
    a show $r --format csv
    a revert $r --force --actor user:ops
  done
  a diff 2 "$(cat "$OUT/$STEPS.lsn")" --format csv
  a verify
}
answers >"$OUT/answers.written" 2>/dev/null
n_scalar=$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE col_id IS NOT NULL")
n_array1=$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE cardinality(col_ids) = 1 AND attr_flags IS NULL")
[ "$n_scalar" -gt 0 ] || fail "no delta in the scalar form"
q $DB "UPDATE walrev.object_delta SET
         col_id = CASE WHEN col_id IS NULL THEN col_ids[1] END,
         old_value = CASE WHEN col_id IS NULL THEN old_values[1] END,
         new_value = CASE WHEN col_id IS NULL THEN new_values[1] END,
         col_ids = CASE WHEN col_id IS NOT NULL THEN ARRAY[col_id] END,
         old_values = CASE WHEN col_id IS NOT NULL AND old_value IS NOT NULL THEN ARRAY[old_value] END,
         new_values = CASE WHEN col_id IS NOT NULL AND new_value IS NOT NULL THEN ARRAY[new_value] END
       WHERE col_id IS NOT NULL OR (cardinality(col_ids) = 1 AND attr_flags IS NULL)"
expect_eq "every delta with two forms swapped" \
  "$(q $DB "SELECT count(*) FILTER (WHERE col_id IS NOT NULL), count(*) FILTER (WHERE cardinality(col_ids) = 1 AND attr_flags IS NULL) FROM walrev.object_delta")" \
  "$n_array1|$n_scalar"
answers >"$OUT/answers.swapped" 2>/dev/null
grep -q "^rc=0" "$OUT/answers.written" || fail "no replay answer succeeded"
cmp -s "$OUT/answers.written" "$OUT/answers.swapped" ||
  { diff "$OUT/answers.written" "$OUT/answers.swapped" >&2; fail "the two delta forms give different answers"; }
pass "both delta forms: snapshot, rollback, history, blame, restore, show, revert, diff and verify answer the same ($(wc -l <"$OUT/answers.written") lines, $n_scalar deltas swapped)"
# Keyframes as the sink takes them on big tables (these are too small to get
# one): the image at a revision, copied from a snapshot. Later snapshots must
# start from them and still be exact, across the key change, the truncate and
# the ADD COLUMN.
for s in 8 18 26; do
  q $DB "WITH r AS (SELECT walrev.resolve_point('$(cat "$OUT/$s.lsn")') AS rev),
         t AS (SELECT relid FROM walrev.tracked_table WHERE relid IN ('account'::regclass, 'item'::regclass)),
         k AS (INSERT INTO walrev.keyframe (relid, revision_id, n_rows)
               SELECT t.relid, r.rev, 0 FROM t, r RETURNING id, relid, revision_id)
         INSERT INTO walrev.keyframe_row (keyframe_id, key, relversion, vals)
         SELECT k.id, s.key, 1, s.vals FROM k, walrev.snapshot_rows(k.relid, k.revision_id) s" >/dev/null
done
expect_eq "keyframes recorded" "$(q $DB "SELECT count(*) FROM walrev.keyframe")" "6"
check_snapshots 8 "from keyframes"

# the same through the SQL function a psql user would call
n=$(q $DB "SELECT count(*) FROM walrev.snapshot_rows('item'::regclass, walrev.resolve_point('$(cat "$OUT/15.lsn")'))")
expect_eq "snapshot_rows in SQL counts the rows at step 15" "$n" "$(wc -l <"$OUT/15.item" | tr -d ' ')"

# rollback to step 15 (before the truncate and the ADD COLUMN): live equals that step
mid=15
W rollback --to "$(cat "$OUT/$mid.lsn")" --table account --table item --apply --actor user:ops >"$OUT/rollback.sql" 2>"$OUT/rollback.err" ||
  { cat "$OUT/rollback.err"; fail "rollback"; }
q $DB "COPY (SELECT id, owner, balance FROM account) TO STDOUT" | LC_ALL=C sort >"$OUT/live.account"
q $DB "COPY (SELECT * FROM item) TO STDOUT" | LC_ALL=C sort >"$OUT/live.item"
cmp -s "$OUT/live.account" "$OUT/$mid.account" || { diff "$OUT/$mid.account" "$OUT/live.account" >&2; fail "account after rollback"; }
cmp -s "$OUT/live.item" "$OUT/$mid.item" || { diff "$OUT/$mid.item" "$OUT/live.item" >&2; fail "item after rollback"; }
pass "rollback --to step $mid: live tables equal that step ($(grep -c -E '^(INSERT|UPDATE|DELETE)' "$OUT/rollback.sql") statements)"

# the rollback is itself a revision with its actor once the worker sees it
STOP=$(insert_lsn)
run_to "$STOP" "$OUT/run2.log" --source "$SRC"
expect_eq "the rollback is the newest revision, by its actor" \
  "$(W log --limit 1 --format csv 2>/dev/null | tail -1 | cut -d, -f3-5)" \
  "user,ops,walrev rollback --to $(cat "$OUT/$mid.lsn") --table account --table item --actor user:ops"
