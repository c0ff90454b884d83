#!/usr/bin/env bash
# End to end for replay: a seeded random workload with actors over two tables
# related by a foreign key (inserts, updates, deletes, a key change, awkward
# text, a truncate, an ADD COLUMN), the true contents dumped after every step
# with the LSN; `walrev run --stop-lsn`; then `walrev snapshot --at LSN` equals
# every dump row for row, `walrev verify` passes, and `walrev rollback --to`
# a middle step leaves the live tables equal to that step's dump.
source "$(dirname "$0")/lib.sh"
DB=replay_e2e
fresh_db $DB
SRC=$(conninfo $DB)
W() { "$WALREV_BIN" --source "$SRC" "$@"; }
OUT=$(mktemp -d)
# the insert position: with synchronous_commit=off pg_current_wal_lsn() (the
# write position) can lag behind a commit that already happened
insert_lsn() { q $DB "SELECT pg_current_wal_insert_lsn()"; }
trap 'rm -rf "$OUT"' EXIT

q $DB "CREATE TABLE account (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2));
       CREATE TABLE item (id int PRIMARY KEY, account_id int NOT NULL REFERENCES account(id),
                          qty int, note text);
       CREATE TABLE marker (id int PRIMARY KEY);"
W setup >"$OUT/setup.out" 2>&1 || { cat "$OUT/setup.out"; fail "setup"; }

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
timeout 300 "$WALREV_BIN" --source "$SRC" run --stop-lsn "$STOP" 2>"$OUT/run.log" || { cat "$OUT/run.log"; fail "run"; }
pass "worker caught up to $STOP"

W verify >"$OUT/verify.out" 2>&1 || { cat "$OUT/verify.out"; fail "verify"; }
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
timeout 120 "$WALREV_BIN" --source "$SRC" run --stop-lsn "$STOP" 2>"$OUT/run2.log" || { cat "$OUT/run2.log"; fail "run 2"; }
expect_eq "the rollback is the newest revision, by its actor" \
  "$(W log --limit 1 --format csv 2>/dev/null | tail -1 | cut -d, -f3-5)" \
  "user,ops,walrev rollback --to $(cat "$OUT/$mid.lsn") --table account --table item --actor user:ops"
