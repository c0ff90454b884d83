#!/usr/bin/env bash
# revert and restore of rows of a table without a key (issue 13, 12 with
# 13.2): such a row has no key on the live table, and equal rows are
# indistinguishable, so a statement takes exactly one live row whose values
# are the ones the history holds for the row now:
# ... WHERE ctid = (SELECT ctid FROM ONLY t WHERE <each column as the history has it> LIMIT 1).
source "$(dirname "$0")/lib.sh"
source_db keyless_undo klundo
catch_up() { run_to_now "$LOG" --source "$SRC" --slot klundo; }
rows() { q $DB "COPY (SELECT * FROM f) TO STDOUT" | sort | paste -sd' '; }
rev_of() { q $DB "SELECT max(revision_id) FROM walrev.object_delta WHERE relid = 'f'::regclass"; }

q $DB "CREATE TABLE f (a int, b text, j json); ALTER TABLE f REPLICA IDENTITY FULL;
       INSERT INTO f VALUES (1, 'x', '{\"k\": 1}'), (1, 'x', '{\"k\": 1}'), (2, 'y', NULL)"
w_setup
q $DB "UPDATE f SET b = 'z' WHERE ctid = (SELECT ctid FROM f WHERE a = 1 LIMIT 1)"
catch_up; A=$(rev_of)
q $DB "DELETE FROM f WHERE a = 2"
catch_up; B=$(rev_of)
q $DB "INSERT INTO f VALUES (3, 'w', '[]'), (1, 'x', '{\"k\": 1}')"
catch_up; C=$(rev_of)
expect_eq "the table before the reverts" "$(rows)" \
  '1	x	{"k": 1} 1	x	{"k": 1} 1	z	{"k": 1} 3	w	[]'

# without USER and LOGNAME (cron, a systemd unit, env -i) the default actor is
# the account walrev runs as, not cli:unknown
(unset USER LOGNAME; W revert "$C" --apply) >"$TEST_TMP/c.sql" 2>"$TEST_TMP/c.err" || { cat "$TEST_TMP/c.sql" "$TEST_TMP/c.err"; fail "revert $C"; }
expect_eq "revert of two inserts deletes one live row each (one of the two equal rows)" "$(rows)" \
  '1	x	{"k": 1} 1	z	{"k": 1}'
grep -q 'DELETE FROM public.f WHERE ctid = (SELECT ctid FROM ONLY public.f WHERE a::text = .1. AND b::text = .x. AND j::text = .{"k": 1}. LIMIT 1)' "$TEST_TMP/c.sql" ||
  { cat "$TEST_TMP/c.sql"; fail "the plan names the row by its values"; }
pass "the plan names the row by its values, one row"
catch_up
expect_eq "without USER or LOGNAME the undo's actor is the account that ran it" \
  "$(W log --limit 1 --format csv 2>/dev/null | tail -1 | cut -d, -f3-5)" "cli,$(id -un),walrev revert $C"
W revert "$B" --apply >"$TEST_TMP/b.sql" 2>"$TEST_TMP/b.err" || { cat "$TEST_TMP/b.sql" "$TEST_TMP/b.err"; fail "revert $B"; }
catch_up
W revert "$A" --apply >"$TEST_TMP/a.sql" 2>"$TEST_TMP/a.err" || { cat "$TEST_TMP/a.sql" "$TEST_TMP/a.err"; fail "revert $A"; }
catch_up
expect_eq "after reverting all three: the table as it began" "$(rows)" \
  '1	x	{"k": 1} 1	x	{"k": 1} 2	y	\N'
expect_eq "the history agrees" "$(W snapshot --table f 2>/dev/null | sort | paste -sd' ')" "$(rows)"

# change_and_restore SQL OP NAME: SQL changes one row of f (recorded as OP),
# then `restore --apply` brings that row back to the LSN before SQL (kept in
# P; the row's key in K); its plan and errors go to $TEST_TMP/NAME.sql|err.
change_and_restore() {
  P=$(current_lsn $DB)
  q $DB "$1"
  catch_up
  K=$(q $DB "SELECT key FROM walrev.object_delta WHERE relid = 'f'::regclass AND revision_id = $(rev_of) AND op = '$2'")
  W restore --table f --key "$K" --at "$P" --apply >"$TEST_TMP/$3.sql" 2>"$TEST_TMP/$3.err" ||
    { cat "$TEST_TMP/$3.sql" "$TEST_TMP/$3.err"; fail "restore $K ($2)"; }
}

# restore one of two equal rows to an earlier state
change_and_restore "UPDATE f SET b = 'q' WHERE ctid = (SELECT ctid FROM f WHERE a = 1 LIMIT 1)" U r
P_UPDATE=$P
expect_eq "restore of a keyless row by its identity" "$(rows)" '1	x	{"k": 1} 1	x	{"k": 1} 2	y	\N'
# restore of a deleted keyless row: inserted again
change_and_restore "DELETE FROM f WHERE a = 2" D r3
expect_eq "restore of a deleted keyless row inserts it again" "$(rows)" '1	x	{"k": 1} 1	x	{"k": 1} 2	y	\N'
catch_up
# a row the table no longer holds as the history has it: refused, nothing changed
q $DB "UPDATE f SET b = 'behind' WHERE a = 2"
K2=$(q $DB "SELECT key FROM walrev.current_rows('f'::regclass) WHERE vals[1] = '2'")
rc=0; W restore --table f --key "$K2" --at "$P_UPDATE" --apply >"$TEST_TMP/r2.sql" 2>"$TEST_TMP/r2.err" || rc=$?
grep -q "nothing changed: row $K2 of public.f is not in the live table as the history holds it" "$TEST_TMP/r2.err" ||
  { cat "$TEST_TMP/r2.err"; fail "a row changed behind the history's back"; }
expect_eq "a restore whose row the live table does not hold changes nothing (exit 1)" "$rc|$(rows)" \
  '1|1	x	{"k": 1} 1	x	{"k": 1} 2	behind	\N'
