#!/usr/bin/env bash
# An unlogged table renamed later (issue 13.7, difftest seed 110553609): a
# snapshot at a point before the rename, under the name it had then, said
# "unknown table" (the history had no trace of it and the source catalog no
# table of that name any more) instead of naming it unlogged. The table log
# now logs unlogged tables (event 'unlogged', again at each rename), those
# that exist at setup too: every name a table had is named unlogged, even
# after the table is dropped.
source "$(dirname "$0")/lib.sh"
source_db unlogged_rename unlren

q $DB "CREATE UNLOGGED TABLE u_old (id int PRIMARY KEY, v text); INSERT INTO u_old VALUES (1, 'a');
       CREATE TABLE k (id int PRIMARY KEY); INSERT INTO k VALUES (1)"
w_setup
q_at A "CREATE UNLOGGED TABLE n_old (id int); INSERT INTO n_old VALUES (1); INSERT INTO k VALUES (2)"
q_at B "ALTER TABLE u_old RENAME TO u_new; ALTER TABLE n_old RENAME TO n_mid; INSERT INTO k VALUES (3)"
q_at C "ALTER TABLE n_mid RENAME TO n_new; DROP TABLE u_new; INSERT INTO k VALUES (4)"
run_to "$C" "$TEST_TMP/run.log" --source "$SRC" --slot unlren

expect_eq "the table log has every name of each unlogged table" \
  "$(q $DB "SELECT event, relname FROM walrev.table_log WHERE relname ~ '^[un]_' ORDER BY id")" \
"unlogged|u_old
unlogged|n_old
unlogged|u_new
unlogged|n_mid
unlogged|n_new
drop|u_new"

check() { # NAME POINT: the snapshot fails with an error naming NAME unlogged
  local out rc=0
  out=$(W snapshot --at "$2" --table "$1" 2>&1 >/dev/null) || rc=$?
  [ "$rc" = 1 ] || fail "snapshot of $1 at $2 exited $rc: $out"
  # never logged: named as the table log knew it then, schema-qualified
  echo "$out" | grep -qF "table public.$1 is unlogged: logical decoding cannot capture it" || fail "snapshot of $1 at $2: $out"
  pass "$1 at $2 is named unlogged"
}
check u_old "$A" # unlogged at setup, renamed, then dropped
check u_new "$B"
check n_old "$A" # created unlogged after setup, renamed twice
check n_mid "$B"
check n_new "$C"
expect_eq "a logged table beside them answers" "$(W snapshot --at "$B" --table k 2>/dev/null | sort)" "$(printf '1\n2\n3')"
out=$(W snapshot --at "$C" --table nosuch 2>&1) && fail "an unknown table answered"
echo "$out" | grep -q 'unknown table "nosuch"' || fail "unknown table: $out"
pass "a name no table had is still an unknown table"
