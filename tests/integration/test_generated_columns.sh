#!/usr/bin/env bash
# STORED generated columns (issue 13.3): pgoutput (PostgreSQL 15) never sends
# them, so the relation version keeps their expressions (from the baseline's
# description and the DDL capture) and `walrev snapshot` computes them: its
# output equals `COPY (SELECT * FROM t) TO STDOUT` byte for byte at every
# point, for a table baselined at setup, one created later, a generated
# column added and dropped later, and in --into and --format sql.
source "$(dirname "$0")/lib.sh"
source_db gencols gencols

q $DB "CREATE TABLE item (id int PRIMARY KEY, price numeric(10,2), qty int,
         total numeric(12,2) GENERATED ALWAYS AS (price * qty) STORED,
         name text, label text GENERATED ALWAYS AS (upper(name) || ' x' || qty::text) STORED);
       INSERT INTO item (id, price, qty, name) VALUES (1, 2.50, 4, 'apple'), (2, 0.99, NULL, 'fig');"
w_setup

point=0
mark() { # record the live tables and the position
  point=$((point + 1))
  current_lsn $DB >"$TMP/$point.lsn"
  for t in item later; do
    q $DB "SELECT to_regclass('$t') IS NOT NULL" | grep -q t || continue
    q $DB "COPY (SELECT * FROM $t ORDER BY 1) TO STDOUT" >"$TMP/$point.$t"
  done
}
mark
q $DB "UPDATE item SET qty = 5 WHERE id = 1; INSERT INTO item (id, price, qty, name) VALUES (3, 10, 1, 'kiwi');"
mark
q $DB "CREATE TABLE later (k text PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED);
       INSERT INTO later (k, a) VALUES ('x', 1), ('y', NULL);"
mark
q $DB "ALTER TABLE later ADD COLUMN c text GENERATED ALWAYS AS (k || ':' || coalesce(a, -1)) STORED;
       UPDATE later SET a = 7 WHERE k = 'y';"
mark
q $DB "ALTER TABLE item DROP COLUMN label; UPDATE item SET price = 3 WHERE id = 2; DELETE FROM item WHERE id = 3;"
mark
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_eq "relation versions know the generated columns (names, types, positions, expressions)" \
  "$(q $DB "$H SELECT relname, version, col_names::text, gen_names::text, gen_type_names::text, gen_positions::text,
                   gen_exprs::text FROM relation_version WHERE relname IN ('item', 'later') ORDER BY relname, version")" \
'item|1|{id,price,qty,name}|{total,label}|{"numeric(12,2)",text}|{3,5}|{"(price * (qty)::numeric)","((upper(name) || '"' x'"'::text) || (qty)::text)"}
item|2|{id,price,qty,name}|{total}|{"numeric(12,2)"}|{3}|{"(price * (qty)::numeric)"}
later|1|{k,a}|{b}|{integer}|{2}|{"(a * 2)"}
later|2|{k,a}|{b,c}|{integer,text}|{2,3}|{"(a * 2)","((k || '"':'"'::text) || COALESCE(a, '"'-1'"'::integer))"}'

equal=0 total=0
for ((p = 1; p <= point; p++)); do
  for t in item later; do
    [ -f "$TMP/$p.$t" ] || continue
    total=$((total + 1))
    W snapshot --at "$(cat "$TMP/$p.lsn")" --table "$t" 2>"$TMP/snap.err" | sort >"$TMP/$p.$t.snap" ||
      { cat "$TMP/snap.err"; fail "snapshot of $t at point $p"; }
    sort "$TMP/$p.$t" | cmp -s - "$TMP/$p.$t.snap" ||
      { sort "$TMP/$p.$t" | diff - "$TMP/$p.$t.snap" >&2; fail "snapshot of $t at point $p differs from the table"; }
    equal=$((equal + 1))
  done
done
expect_eq "snapshots equal COPY (SELECT * FROM t) byte for byte at every point (equal/total)" "$equal/$total" "8/8"

must "$TMP/into.out" "--into" W snapshot --table later --into asof_gen
expect_eq "--into holds the generated columns' values" \
  "$(q $DB "COPY (SELECT * FROM asof_gen.later ORDER BY 1) TO STDOUT")" "$(q $DB "COPY (SELECT * FROM later ORDER BY 1) TO STDOUT")"
W snapshot --table item --format sql >"$TMP/item.sql" 2>/dev/null || fail "--format sql"
q $DB "CREATE SCHEMA replayed" >/dev/null
(echo "SET search_path = replayed;"; sed 's/^CREATE TABLE public\./CREATE TABLE /; s/^COPY public\./COPY /' "$TMP/item.sql") |
  $PSQL -d $DB >/dev/null || { cat "$TMP/item.sql"; fail "loading --format sql"; }
expect_eq "--format sql loads to the table's contents, generated columns included" \
  "$(q $DB "COPY (SELECT * FROM replayed.item ORDER BY 1) TO STDOUT")" "$(q $DB "COPY (SELECT * FROM item ORDER BY 1) TO STDOUT")"
expect_verify "verify"
