#!/usr/bin/env bash
# Tables without a primary key are multisets (docs/history-store.md, "Rows
# without a key"): duplicate rows under REPLICA IDENTITY DEFAULT (inserts
# only) and FULL (an UPDATE or DELETE takes exactly one of equal rows), a
# primary key added and dropped later, a column added and dropped, TRUNCATE;
# the worker runs in the background and is stopped once by SIGTERM and once by
# SIGKILL, each restart with a cold row cache. After every step the live
# tables are dumped with COPY; at the end `walrev snapshot --at` each step's
# LSN must equal the dump byte for byte (sorted), and `walrev verify` passes.
source "$(dirname "$0")/lib.sh"
source_db keyless_src
WPID=
kill_at_exit 9 WPID
printf "[worker]\nrow_cache_mb = 1\n[history]\nbatch_max_ms = 5\n" >"$TMP/walrev.ini"
W() { "$WALREV_BIN" -c "$TMP/walrev.ini" --source "$SRC" --slot keyless "$@"; }
TABLES="k f p n ui"

q $DB "CREATE TABLE k (a int, b text);
       CREATE TABLE f (a int, b text); ALTER TABLE f REPLICA IDENTITY FULL;
       CREATE TABLE p (a int NOT NULL, b text); ALTER TABLE p REPLICA IDENTITY FULL;
       CREATE TABLE n (a int PRIMARY KEY, b text); ALTER TABLE n REPLICA IDENTITY NOTHING;
       CREATE TABLE ui (a int NOT NULL, b text); CREATE UNIQUE INDEX ui_a ON ui (a);
       ALTER TABLE ui REPLICA IDENTITY USING INDEX ui_a;
       INSERT INTO n VALUES (1, 'n1'); INSERT INTO ui VALUES (1, 'u1'), (2, 'u2');
       CREATE TABLE marker (id int PRIMARY KEY);
       INSERT INTO k VALUES (1, 'x'), (1, 'x'), (1, 'x'), (2, 'y'), (NULL, NULL), (NULL, NULL);
       INSERT INTO f VALUES (1, 'x'), (1, 'x'), (2, NULL);
       INSERT INTO p VALUES (1, 'a'), (2, 'b'), (3, 'b');"
w_setup

stop_worker() { # SIGTERM: a clean stop, exit status 0
  local rc=0; worker_stop "$WPID" || rc=$?
  [ $rc = 0 ] || { tail -20 "$TMP/run.log"; fail "worker exit status $rc after SIGTERM"; }
}
start_worker() {
  WORKER_OUT="$TMP/run.log" worker_start "$TMP/run.log" -c "$TMP/walrev.ini" --source "$SRC" --slot keyless
  WPID=$WORKER_PID
}
# wait until the history holds marker row N (everything before it is recorded)
caught_up() { marker_caught_up "$WPID" "$TMP/run.log"; }
step=0
run_step() { # run_step SQL...: one step (each SQL its own transaction), then its LSN and the true contents
  step=$((step + 1))
  local sql
  for sql in "$@"; do q $DB "$sql" >/dev/null; done
  current_lsn $DB >"$TMP/$step.lsn"
  for t in $TABLES; do q $DB "COPY (SELECT * FROM $t) TO STDOUT" | LC_ALL=C sort >"$TMP/$step.$t"; done
}
one() { echo "(SELECT ctid FROM $1 WHERE $2 LIMIT 1)"; }  # exactly one of equal rows

start_worker
run_step "INSERT INTO k VALUES (1, 'x'), (3, 'z'), (3, 'z'); INSERT INTO f VALUES (1, 'x');"
run_step "UPDATE f SET b = 'z' WHERE ctid = $(one f "a = 1 AND b = 'x'")" "INSERT INTO n VALUES (2, 'n2')" \
         "UPDATE ui SET b = 'u1+' WHERE a = 1; DELETE FROM ui WHERE a = 2; INSERT INTO ui VALUES (3, 'u3')"
run_step "DELETE FROM f WHERE ctid = $(one f "a = 1 AND b = 'x'")"
# a primary key added: the same rows go on under their new keys
run_step "ALTER TABLE p ADD PRIMARY KEY (a)" "UPDATE p SET b = 'B' WHERE a = 2"
run_step "UPDATE p SET b = 'C' WHERE a = 3; DELETE FROM p WHERE a = 1;"
caught_up
stop_worker
pass "stopped by SIGTERM"
start_worker
run_step "UPDATE f SET a = a + 10 WHERE a = 1; INSERT INTO k SELECT * FROM k;" "UPDATE ui SET a = 4 WHERE a = 3"
run_step "BEGIN; INSERT INTO f VALUES (7, 'd'), (7, 'd'), (7, 'd'); UPDATE f SET b = 'e' WHERE ctid = $(one f "a = 7"); DELETE FROM f WHERE ctid = $(one f "a = 7 AND b = 'd'"); COMMIT;"
# the primary key dropped: the rows are a multiset again
run_step "ALTER TABLE p DROP CONSTRAINT p_pkey" "INSERT INTO p VALUES (3, 'C')"
run_step "UPDATE p SET b = 'D' WHERE ctid = $(one p "a = 3")"
caught_up
kill -KILL "$WPID"; wait "$WPID" 2>/dev/null || true
pass "killed by SIGKILL"
start_worker
run_step "DELETE FROM f WHERE a = 11 AND b = 'x'; UPDATE f SET b = NULL WHERE a = 2; UPDATE f SET b = 'f' WHERE ctid = $(one f "a = 7 AND b = 'd'")"
run_step "DELETE FROM p WHERE ctid = $(one p "a = 3 AND b = 'C'")" "ALTER TABLE p ADD PRIMARY KEY (a)" \
         "INSERT INTO p VALUES (4, 'E')" "DELETE FROM p WHERE a = 2"
run_step "UPDATE p SET b = 'F' WHERE a = 3"
run_step "ALTER TABLE f ADD COLUMN c int" "UPDATE f SET c = 1 WHERE ctid = $(one f "a = 7 AND b = 'f'")"
run_step "UPDATE f SET c = 2 WHERE a = 2; INSERT INTO f VALUES (7, 'd', NULL), (7, 'd', NULL);"
run_step "UPDATE f SET b = 'g' WHERE ctid = $(one f "a = 7 AND b = 'd' AND c IS NULL")"
# a dropped column changes what a row's digest covers: found after a rebuild
run_step "ALTER TABLE f DROP COLUMN c" "UPDATE f SET b = 'h' WHERE b = 'g'"
run_step "UPDATE f SET b = 'i' WHERE a = 2; DELETE FROM f WHERE ctid = $(one f "a = 7 AND b = 'f'")"
run_step "TRUNCATE f; INSERT INTO f VALUES (5, 't'), (5, 't'); UPDATE f SET b = 'u' WHERE ctid = $(one f "b = 't'")"
run_step "ALTER TABLE k REPLICA IDENTITY FULL" "DELETE FROM k WHERE ctid = $(one k "a = 3")" "UPDATE k SET b = 'w' WHERE a IS NULL"
caught_up
stop_worker
WPID=

n_equal=0 n_total=0
for ((s = 1; s <= step; s++)); do
  lsn=$(cat "$TMP/$s.lsn")
  for t in $TABLES; do
    n_total=$((n_total + 1))
    W snapshot --at "$lsn" --table $t 2>"$TMP/snap.err" | LC_ALL=C sort >"$TMP/$s.$t.snap" ||
      { cat "$TMP/snap.err"; fail "snapshot $t at step $s ($lsn)"; }
    if cmp -s "$TMP/$s.$t" "$TMP/$s.$t.snap"; then
      n_equal=$((n_equal + 1))
    else
      echo "# step $s table $t differs:"; diff "$TMP/$s.$t" "$TMP/$s.$t.snap" >&2 || true
    fi
  done
done
expect_eq "snapshots equal the live tables (equal/total)" "$n_equal/$n_total" "$n_total/$n_total"

# Every row has its own identity: no key holds two live rows, and the last
# step's equal rows are distinct objects.
dups=$(q $DB "SELECT count(*) FROM (SELECT key FROM walrev.current_rows('k'::regclass) GROUP BY key HAVING count(*) > 1) x")
expect_eq "no two live rows of k share an identity" "$dups" 0
expect_eq "k's live identities are synthetic" \
  "$(q $DB "SELECT count(*) FILTER (WHERE key LIKE '#%') || '/' || count(*) FROM walrev.current_rows('k'::regclass)")" \
  "$(q $DB "SELECT count(*) || '/' || count(*) FROM k")"
expect_eq "REPLICA IDENTITY NOTHING with a primary key: rows keyed by it" \
  "$(q $DB "SELECT string_agg(key, ' ' ORDER BY key) FROM walrev.current_rows('n'::regclass)")" '["1"] ["2"]'
expect_eq "REPLICA IDENTITY USING INDEX: rows keyed by the index, exact old values" \
  "$(q $DB "SELECT string_agg(op::text || key || ':' || coalesce(old_values::text, '-'), ' ' ORDER BY revision_id, seq) FROM walrev.object_delta_arrays WHERE relid = 'ui'::regclass AND revision_id > 1")" \
  'U["1"]:{u1} D["2"]:{2,u2} I["3"]:- D["3"]:{3,u3} I["4"]:-'
# after ADD PRIMARY KEY the rows went on under their keys: the update by key found its row
expect_eq "p's update by the new key has exact old values" \
  "$(q $DB "SELECT string_agg(old_value || '>' || new_value, ' ' ORDER BY revision_id) FROM walrev.attribute_delta WHERE relid = 'p'::regclass AND key = '[\"3\"]' AND op = 'U'")" "b>C D>F"
expect_eq "nothing recorded with unknown old values" \
  "$(q $DB "SELECT count(*) FROM walrev.object_delta WHERE old_unknown AND relid IN ('k'::regclass, 'f'::regclass, 'p'::regclass)")" 0
# history and blame answer for a row by its synthetic identity
key=$(q $DB "SELECT key FROM walrev.current_rows('f'::regclass) ORDER BY key LIMIT 1")
must "$TMP/hist.out" "history of row $key" W history --table f --key "$key"
expect_eq "walrev history --key $key: the row's own changes" \
  "$(awk -F'|' 'NR > 2 && NF > 5 { gsub(/ /, ""); print $3 ":" $7 ":" $8 ":" $9 }' "$TMP/hist.out")" \
  "$(q $DB "SELECT op::text || ':' || column_name || ':' || coalesce(old_value, '') || ':' || coalesce(new_value, '')
            FROM walrev.attribute_delta WHERE relid = 'f'::regclass AND key = '$key' ORDER BY revision_id, seq, col_id")"
must "$TMP/blame.out" "blame of row $key" W blame --table f --key "$key"
expect_eq "walrev blame --key $key: the row's values" \
  "$(awk -F'|' 'NR > 2 && NF > 5 { gsub(/ /, ""); print $1 "=" $2 }' "$TMP/blame.out" | paste -sd' ')" \
  "$(q $DB "SELECT 'a=' || vals[1] || ' b=' || vals[2] FROM walrev.current_rows('f'::regclass) WHERE key = '$key'")"
expect_verify "verify"
rebuilt=$(grep -c 'row digests rebuilt' "$TMP/run.log" || true)
[ "$rebuilt" -ge 1 ] || fail "no row digest rebuild after DROP COLUMN"
pass "row digests rebuilt $rebuilt time(s)"
$PSQL -d postgres -c "SELECT pg_drop_replication_slot('keyless')" >/dev/null
