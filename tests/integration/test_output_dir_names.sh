#!/usr/bin/env bash
# snapshot --output-dir with names a file name cannot hold as they are (issue
# 13, found by s12-rand feeding external.py's batched comparison odd names):
# "a.b"."c" and "a"."b.c" were both DIR/a.b.c.copy, the second silently
# replacing the first, and a '/' in a name made a path into a directory that
# is not there, failing the whole snapshot. '%', '/' and '.' inside a name
# are written %25, %2F and %2E; other names are as they were.
source "$(dirname "$0")/lib.sh"
source_db output_dir_names outdirnames
q $DB "CREATE SCHEMA \"a.b\"; CREATE SCHEMA a;
       CREATE TABLE \"a.b\".c (id int PRIMARY KEY, v text);
       CREATE TABLE a.\"b.c\" (id int PRIMARY KEY, v text);
       CREATE TABLE \"x/y\" (id int PRIMARY KEY, v text);
       CREATE TABLE \"p.c\" (id int PRIMARY KEY, v text);
       CREATE TABLE \"p%2Ec\" (id int PRIMARY KEY, v text);
       CREATE TABLE plain (id int PRIMARY KEY, v text)"
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
q $DB "INSERT INTO \"a.b\".c VALUES (1, 'dot schema'); INSERT INTO a.\"b.c\" VALUES (2, 'dot table');
       INSERT INTO \"x/y\" VALUES (3, 'slash'); INSERT INTO \"p.c\" VALUES (4, 'p.c');
       INSERT INTO \"p%2Ec\" VALUES (5, 'percent'); INSERT INTO plain VALUES (6, 'plain')"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
mkdir "$TMP/all" "$TMP/named"
W snapshot --output-dir "$TMP/all" >"$TMP/all.out" 2>&1 || { cat "$TMP/all.out"; fail "snapshot --output-dir of every table"; }
expect_eq "one file per table, none shared, none outside DIR" "$(cd "$TMP/all" && ls | LC_ALL=C sort)" \
"a%2Eb.c.copy
a.b%2Ec.copy
public.p%252Ec.copy
public.p%2Ec.copy
public.plain.copy
public.x%2Fy.copy"
for f in "a%2Eb.c:1	dot schema" "a.b%2Ec:2	dot table" "public.x%2Fy:3	slash" "public.p%2Ec:4	p.c" \
         "public.p%252Ec:5	percent" "public.plain:6	plain"; do
  expect_eq "${f%%:*}.copy holds its table's rows" "$(cat "$TMP/all/${f%%:*}.copy")" "${f#*:}"
done
W snapshot --output-dir "$TMP/named" --table '"a.b".c' --table 'a."b.c"' --table '"x/y"' >"$TMP/named.out" 2>&1 ||
  { cat "$TMP/named.out"; fail "snapshot --output-dir of named tables"; }
expect_eq "named tables: the same files" "$(cd "$TMP/named" && ls | LC_ALL=C sort)" \
"a%2Eb.c.copy
a.b%2Ec.copy
public.x%2Fy.copy"
pass "snapshot --output-dir names every table's file apart"
