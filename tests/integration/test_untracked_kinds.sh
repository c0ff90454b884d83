#!/usr/bin/env bash
# Relations that are not tables are named for what they are, never "unknown
# table" (issue 13: a clear named error wherever logical decoding cannot see
# a relation): a materialized view (REFRESH fills it without row changes), a
# view, a sequence and a foreign table meet a user listing relations among
# the tables, and every replay command says what each is and why it has no
# history. A name that is nothing at all stays "unknown table".
source "$(dirname "$0")/lib.sh"
source_db untracked_kinds untracked_kinds

q $DB "CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src VALUES (1, 'one'), (2, 'two');
       CREATE MATERIALIZED VIEW mv AS SELECT * FROM src;
       CREATE VIEW vw AS SELECT * FROM src;
       CREATE SEQUENCE sq;
       CREATE FOREIGN DATA WRAPPER dummy_fdw; CREATE SERVER elsewhere FOREIGN DATA WRAPPER dummy_fdw;
       CREATE FOREIGN TABLE ft (id int) SERVER elsewhere;"
w_setup
q $DB "UPDATE src SET v = 'uno' WHERE id = 1; REFRESH MATERIALIZED VIEW mv; SELECT nextval('sq')" >/dev/null
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_eq "the table itself is answered" "$(W snapshot --table src 2>/dev/null | sort)" "$(q $DB "COPY src TO STDOUT" | sort)"

check() {  # check RELATION WHAT: every replay command fails naming it as WHAT
  local rel=$1 what=$2 cmd rc
  for cmd in "snapshot --table $rel" "snapshot --at $STOP --table $rel" "history --table $rel --key 1" \
             "blame --table $rel --key 1"; do
    rc=0; W $cmd >"$TMP/cmd.out" 2>&1 || rc=$?
    expect_eq "walrev $cmd fails" "$rc" 1
    grep -qF "public.$rel is $what" "$TMP/cmd.out" || { cat "$TMP/cmd.out"; fail "walrev $cmd names $rel as $what"; }
    if grep -q "unknown table" "$TMP/cmd.out"; then cat "$TMP/cmd.out"; fail "walrev $cmd calls $rel unknown"; fi
  done
}
check mv "a materialized view: logical decoding cannot capture it"
check vw "a view: it has no rows of its own"
check sq "a sequence: logical decoding does not capture sequences"
check ft "a foreign table"
pass "materialized views, views, sequences and foreign tables are named for what they are"

rc=0; W snapshot --table nothing_here >"$TMP/cmd.out" 2>&1 || rc=$?
expect_eq "a name that is nothing fails" "$rc" 1
grep -qF 'unknown table "nothing_here": no tracked table public.nothing_here in the history' "$TMP/cmd.out" ||
  { cat "$TMP/cmd.out"; fail "a name that is nothing is an unknown table"; }
pass "a name that is nothing is still an unknown table"
