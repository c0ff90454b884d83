#!/usr/bin/env bash
# An ALTER TABLE whose rewrite fills in a column's default (found by
# tests/difftest/external.py on PostgreSQL's generated_stored.sql): when the
# same command also adds a STORED generated column, a volatile default or a
# domain with constraints, PostgreSQL rewrites the table and keeps no
# "missing value" for the other columns it adds, so even a constant default
# (ADD COLUMN c int DEFAULT 42) is neither in the WAL nor in the catalog. The
# DDL capture reads what the rows that were there now hold back from the
# table: one value in all of them is exact; differing ones (a volatile
# default over several rows) come as the rows themselves. Before, such a column was
# NULL in every snapshot and so was a generated column computed from it.
source "$(dirname "$0")/lib.sh"
source_db rewrite_fill rewritefill

q $DB "CREATE TABLE g (a int PRIMARY KEY);
       INSERT INTO g VALUES (3), (4);
       CREATE TABLE one (id int PRIMARY KEY);
       INSERT INTO one VALUES (1);
       CREATE TABLE kl (a int);
       INSERT INTO kl VALUES (1), (1), (2);
       CREATE TABLE dn (id int PRIMARY KEY, v text);
       INSERT INTO dn VALUES (1, 'a'), (2, NULL);
       CREATE TABLE dk (a int); ALTER TABLE dk REPLICA IDENTITY FULL;
       INSERT INTO dk VALUES (1), (1), (2);
       CREATE DOMAIN dpos AS int CHECK (VALUE > 0);"
w_setup
point() {
  q $DB "COPY (SELECT * FROM $2) TO STDOUT" | sort >"$TMP/p$1.$2.copy"
  current_lsn $DB >"$TMP/p$1.$2.lsn"
}
# a constant default next to a generated column (which forces the rewrite)
q $DB "ALTER TABLE g ADD COLUMN c int DEFAULT 42, ADD COLUMN x int GENERATED ALWAYS AS (c * 4) STORED,
       ADD COLUMN t text DEFAULT 'tab	and \"q\"'"
point 1 g
# a volatile default over one row: the one value it holds is exact
q $DB "ALTER TABLE one ADD COLUMN r float8 DEFAULT random(), ADD COLUMN k text DEFAULT 'k'"
point 1 one
# a keyless table: the constant default and a generated column
q $DB "ALTER TABLE kl ADD COLUMN c text DEFAULT 'dflt', ADD COLUMN x int GENERATED ALWAYS AS (a + 1) STORED"
point 1 kl
q $DB "INSERT INTO kl (a) VALUES (7); UPDATE g SET a = 5 WHERE a = 4"
point 2 kl
point 2 g
# several rows of a volatile default: the capture sends the rows (test_rewrite_rows.sh)
q $DB "ALTER TABLE g ADD COLUMN r float8 DEFAULT random()"
# a domain with a constraint and no default (found by tests/difftest's
# udt_col, seed 1): the rewrite fills in NULL, which the fill read back as ''
q $DB "ALTER TABLE dn ADD COLUMN d dpos, ADD COLUMN e text DEFAULT 'e'; ALTER TABLE dk ADD COLUMN d dpos"
point 1 dn
point 1 dk
q $DB "DELETE FROM dk WHERE ctid = (SELECT ctid FROM dk WHERE a = 1 LIMIT 1); UPDATE dn SET v = 'b' WHERE id = 2"
point 2 dn
point 2 dk
run_to_now "$LOG" --source "$SRC" --slot rewritefill

for p in "1 g" "1 one" "1 kl" "2 kl" "2 g" "1 dn" "1 dk" "2 dn" "2 dk"; do
  set -- $p
  expect_eq "point $1: snapshot of $2 equals the table" \
    "$(W snapshot --at "$(cat "$TMP/p$1.$2.lsn")" --table "$2" 2>"$TMP/snap.err" | sort)" "$(cat "$TMP/p$1.$2.copy")"
done
expect_eq "the filled values are recorded in the DDL's revision as values (flag 0)" \
  "$(q $DB "SELECT string_agg(od.key || ':' || ad.col_id || ':' || ad.flags || ':' || coalesce(ad.new_value, 'NULL'), ' '
                              ORDER BY od.key, ad.col_id)
            FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
           WHERE od.relid = 'g'::regclass AND od.op = 'U' AND ad.col_id IN (2, 4)")" \
  '["3"]:2:0:42 ["3"]:4:0:tab	and "q" ["4"]:2:0:42 ["4"]:4:0:tab	and "q"'
# Until issue 13's rewrite capture this was asserted unknown (flag 4, with a
# warning): the capture now sends the rows, so each row's value is recorded.
expect_eq "a volatile default over several rows recorded row by row (flag 0), no warning" \
  "$(q $DB "SELECT string_agg(od.key || ':' || ad.flags || ':' || ad.new_value, ' ' ORDER BY od.key)
           FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
           WHERE od.relid = 'g'::regclass AND od.op = 'U' AND ad.col_id = 5")" \
  "$(q $DB "SELECT string_agg(format('[\"%s\"]:0:%s', a, r), ' ' ORDER BY format('[\"%s\"]', a)) FROM g")"
expect_eq "a domain column without a default: NULL in the rows that were there, not ''" \
  "$(W snapshot --at "$(cat "$TMP/p1.dn.lsn")" --table dn --format csv --order key 2>/dev/null)" \
'id,v,d,e
1,a,,e
2,,,e'
expect_eq "... and after, as COPY prints it" \
  "$(W snapshot --at "$(cat "$TMP/p2.dn.lsn")" --table dn 2>/dev/null | sort)" "$(printf '1\ta\t\\N\te\n2\tb\t\\N\te')"
expect_eq "the keyless table: the FULL delete found one of the equal rows" \
  "$(W snapshot --at "$(cat "$TMP/p2.dk.lsn")" --table dk 2>/dev/null | sort | tr '\n' ' ')" '1	\N 2	\N '
expect_eq "the filled NULL is recorded as NULL, not as ''" \
  "$(q $DB "SELECT count(*) FROM walrev.attribute_delta ad JOIN walrev.object_delta od USING (revision_id, seq)
           WHERE od.relid IN ('dn'::regclass, 'dk'::regclass) AND ad.new_value = ''")" "0"
grep -q 'values rewritten outside the WAL are not known' "$LOG" && fail "no value is unknown"
pass "no value is unknown"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
