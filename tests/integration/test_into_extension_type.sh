#!/usr/bin/env bash
# snapshot --into a database that lacks an extension's types (issue 13,
# extension-defined columns): columns of hstore and citext are made as text
# there, with their values, and walrev says so by name for each (a warning on
# stderr) instead of changing the table's shape silently; into the source
# database, which has the extensions, the columns keep their types and no
# warning is given.
source "$(dirname "$0")/lib.sh"
source_db into_ext into_ext
fresh_db into_ext_target

# old: there before setup (its baseline records the hstore column by oid and
# by name, as the stream does); doc: created after, its types recorded by
# name by the DDL capture
q $DB "CREATE EXTENSION hstore; CREATE EXTENSION citext;
       CREATE TABLE old (id int PRIMARY KEY, attrs hstore); INSERT INTO old VALUES (1, 'k=>v')"
w_setup
q $DB "CREATE TABLE doc (id int PRIMARY KEY, attrs hstore, tag citext, n int)"
q $DB "INSERT INTO doc VALUES (1, 'a=>1, b=>\"x y\"', 'Red', 5), (2, NULL, 'blue', NULL)"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

W snapshot --table doc --into asof --target "$(conninfo into_ext_target)" >"$TMP/into.out" 2>"$TMP/into.err" ||
  { cat "$TMP/into.err"; fail "snapshot --into a database without hstore and citext"; }
expect_eq "each column made as text is named" "$(grep '^warning' "$TMP/into.err")" \
"warning: public.doc: column attrs has type public.hstore, which the --into target does not have: made as text
warning: public.doc: column tag has type public.citext, which the --into target does not have: made as text"
W snapshot --table old --into asof --target "$(conninfo into_ext_target)" >"$TMP/old.out" 2>"$TMP/old.err" ||
  { cat "$TMP/old.err"; fail "snapshot --into of a baseline table"; }
expect_eq "a baseline's column is named with its type's name" "$(grep '^warning' "$TMP/old.err")" \
  "warning: public.old: column attrs has type public.hstore, which the --into target does not have: made as text"
expect_eq "the columns there are text" \
  "$(q into_ext_target "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                        FROM pg_attribute WHERE attrelid = 'asof.doc'::regclass AND attnum > 0")" \
  "id integer, attrs text, tag text, n integer"
expect_eq "with the values' text" "$(q into_ext_target "SELECT * FROM asof.doc ORDER BY id")" \
'1|"a"=>"1", "b"=>"x y"|Red|5
2||blue|'

W snapshot --table doc --into asof >"$TMP/same.out" 2>"$TMP/same.err" ||
  { cat "$TMP/same.err"; fail "snapshot --into the source database"; }
expect_eq "into a database with the extensions: no warning" "$(grep -c '^warning' "$TMP/same.err")" "0"
expect_eq "the columns keep their types" \
  "$(q $DB "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = 'asof.doc'::regclass AND attnum > 0")" \
  "id integer, attrs hstore, tag citext, n integer"
expect_eq "and equal the table" "$(q $DB "SELECT * FROM asof.doc EXCEPT SELECT * FROM doc")" ""
pass "snapshot --into: extension types kept where they exist, made as text by name where not"
