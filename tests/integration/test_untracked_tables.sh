#!/usr/bin/env bash
# Tables walrev cannot or does not track are named, never silent (issues 13.6
# and 13.7). A schema created after setup is tracked from its first row with
# no action by anyone (the schema trigger adds it to the publication);
# unlogged tables are named by setup, run and the replay commands, and
# ALTER TABLE ... SET LOGGED starts the table's history with a baseline;
# with a publication that cannot grow (FOR TABLE), run names each table
# created outside it.
source "$(dirname "$0")/lib.sh"
source_db untracked
OUT=$TEST_TMP
wpid=
kill_at_exit 9 wpid
W() { "$WALREV_BIN" --source "$SRC" --slot untracked "$@"; }

q $DB "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');
       CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text);
       INSERT INTO scratch SELECT g, 's' || g FROM generate_series(1, 50) g;"
w_setup
grep -qF "warning   table public.scratch is UNLOGGED: logical decoding cannot capture it, so walrev cannot track it (ALTER TABLE public.scratch SET LOGGED starts its history with a baseline)" "$OUT/setup.out" ||
  { cat "$OUT/setup.out"; fail "setup names the unlogged table"; }
pass "setup names the unlogged table"

"$WALREV_BIN" --source "$SRC" --slot untracked run 2>"$OUT/run.log" &
wpid=$!
# A schema created after setup: its tables are tracked from their first row.
q $DB "CREATE SCHEMA sales; CREATE TABLE sales.orders (id int PRIMARY KEY, amount numeric);
       INSERT INTO sales.orders VALUES (1, 9.99), (2, 20);"
q $DB "UPDATE sales.orders SET amount = 10 WHERE id = 1"
q $DB "CREATE UNLOGGED TABLE later_scratch (id int)"
# Wait for the worker to hold the last change.
wait_for 30 q_is $DB "$H SELECT count(*) FROM object_delta_arrays WHERE relid = 'sales.orders'::regclass" 3 || true
expect_eq "the new schema's table is in the history from its first row" \
  "$(q $DB "$H SELECT op, key, coalesce(old_values::text, '-'), new_values::text FROM object_delta_arrays
            WHERE relid = 'sales.orders'::regclass ORDER BY revision_id, seq")" \
'I|["1"]|-|{1,9.99}
I|["2"]|-|{2,20}
U|["1"]|{9.99}|{10}'
expect_eq "snapshot of the new schema's table equals it" \
  "$(W snapshot --table sales.orders 2>/dev/null | sort)" "$(q $DB "COPY sales.orders TO STDOUT" | sort)"

for _ in $(seq 1 100); do grep -q "later_scratch is unlogged" "$OUT/run.log" && break; sleep 0.1; done
grep -qF 'table public.scratch is unlogged: logical decoding cannot see its changes, so walrev cannot track it (ALTER TABLE public.scratch SET LOGGED starts its history with a baseline)' "$OUT/run.log" ||
  { cat "$OUT/run.log"; fail "run names the unlogged table at start"; }
grep -qF 'table public.later_scratch is unlogged' "$OUT/run.log" || { cat "$OUT/run.log"; fail "run names an unlogged table created later"; }
pass "run names unlogged tables, at start and when created"

for cmd in "snapshot --table scratch" "history --table scratch --key 1" "blame --table public.scratch --key 1"; do
  rc=0; W $cmd >"$OUT/cmd.out" 2>&1 || rc=$?
  expect_eq "walrev $cmd fails" "$rc" 1
  grep -qF "table public.scratch is unlogged: logical decoding cannot capture it, so walrev has no history of it (ALTER TABLE public.scratch SET LOGGED starts one, with a baseline)" "$OUT/cmd.out" ||
    { cat "$OUT/cmd.out"; fail "walrev $cmd names the unlogged table"; }
done
pass "replay commands say the table is unlogged instead of unknown"

# SET LOGGED: the table joins the publication and gets a baseline.
BEFORE=$(current_lsn $DB)
q $DB "ALTER TABLE scratch SET LOGGED"
for _ in $(seq 1 300); do
  [ "$(q $DB "$H SELECT coalesce((SELECT state FROM backfill WHERE relid = 'public.scratch'::regclass), 'none')")" = done ] && break
  sleep 0.1
done
q $DB "UPDATE scratch SET v = 'changed' WHERE id = 7"
for _ in $(seq 1 300); do
  [ "$(q $DB "$H SELECT count(*) FROM object_delta_arrays WHERE relid = 'public.scratch'::regclass AND op = 'U'")" = 1 ] && break
  sleep 0.1
done
expect_eq "after SET LOGGED: a baseline of its 50 rows, then its changes with exact old values" \
  "$(q $DB "$H SELECT op, count(*), coalesce(string_agg(old_values::text, ','), '-') FROM object_delta_arrays
            WHERE relid = 'public.scratch'::regclass GROUP BY op ORDER BY op")" \
'S|50|-
U|1|{s7}'
expect_eq "snapshot of the table once logged equals it" \
  "$(W snapshot --table scratch 2>/dev/null | sort)" "$(q $DB "COPY scratch TO STDOUT" | sort)"
rc=0; W snapshot --at "$BEFORE" --table scratch >"$OUT/before.out" 2>&1 || rc=$?
expect_eq "a snapshot from before SET LOGGED fails" "$rc" 1
grep -q "table scratch was not tracked yet at revision [0-9]*: its history begins at revision [0-9]*; before, logical decoding could not see it (it was unlogged, or outside the publication)" "$OUT/before.out" ||
  { cat "$OUT/before.out"; fail "the snapshot from before SET LOGGED says why"; }
pass "a snapshot from before SET LOGGED says the table was not tracked then"
kill "$wpid"; wait "$wpid" || true; wpid=

# A publication that cannot grow: run names each table created outside it.
DB2=untracked_fixed
fresh_db $DB2
cat >"$OUT/fixed.conf" <<EOC
[source]
tables = public.kept
EOC
q $DB2 "CREATE TABLE kept (id int PRIMARY KEY)"
must "$OUT/setup2.out" "setup with a FOR TABLE publication" \
  "$WALREV_BIN" -c "$OUT/fixed.conf" --source "$(conninfo $DB2)" --slot untracked_fixed setup
q $DB2 "CREATE TABLE outside (id int PRIMARY KEY); INSERT INTO outside VALUES (1); INSERT INTO kept VALUES (1)"
q $DB2 'CREATE SCHEMA "Odd S"; CREATE TABLE "Odd S"."T 1" (id int PRIMARY KEY)'
"$WALREV_BIN" -c "$OUT/fixed.conf" --source "$(conninfo $DB2)" --slot untracked_fixed run --stop-lsn "$(current_lsn $DB2)" \
  2>"$OUT/run2.log" || { cat "$OUT/run2.log"; fail "run with a FOR TABLE publication"; }
grep -qF 'table public.outside is not in publication walrev: walrev does not track it (add it with ALTER PUBLICATION walrev ADD TABLE public.outside, or list it in [source] tables and run walrev setup)' "$OUT/run2.log" ||
  { cat "$OUT/run2.log"; fail "run names the table outside the publication"; }
# the advice is SQL to paste: names that need quotes are quoted
grep -qF 'msg="table \"Odd S\".\"T 1\" is not in publication walrev: walrev does not track it (add it with ALTER PUBLICATION walrev ADD TABLE \"Odd S\".\"T 1\", or list' "$OUT/run2.log" ||
  { cat "$OUT/run2.log"; fail "the table's name is quoted as SQL"; }
pass "run names a table created outside a publication that cannot grow"
# ... but not the copies `snapshot --into` makes: their schema is never tracked, by design
must "$OUT/into.out" "snapshot --into asof_u" \
  "$WALREV_BIN" -c "$OUT/fixed.conf" --source "$(conninfo $DB2)" snapshot --into asof_u
grep -q "rows into asof_u.kept" "$OUT/into.out" || { cat "$OUT/into.out"; fail "--into made no asof_u.kept"; }
"$WALREV_BIN" -c "$OUT/fixed.conf" --source "$(conninfo $DB2)" --slot untracked_fixed run --stop-lsn "$(current_lsn $DB2)" \
  2>"$OUT/run3.log" || { cat "$OUT/run3.log"; fail "run after snapshot --into"; }
expect_eq "no warning for the --into schema's tables" "$(grep -c 'asof_u' "$OUT/run3.log" || true)" 0

