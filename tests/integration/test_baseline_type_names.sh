#!/usr/bin/env bash
# The baseline's relation versions name their columns' types as the
# stream's do (issue 13): a type not built in is recorded by OID and by
# name ("schema.name", from the Type message pgoutput sends), and only the
# name means anything on another server. setup's baseline recorded the OIDs
# alone (col_type_names all NULL), so with the history store in another
# cluster a snapshot in SQL (--format sql, --into) made the columns of a
# table there at setup `text`, where one created after setup kept its enum,
# domain and composite types; Kafka and the file sink's relation messages
# lacked the names too.
source "$(dirname "$0")/lib.sh"
source_db baseline_type_names baseline_type_names
history_cluster
W() { "$WALREV_BIN" --source "$SRC" --history "$HIST" --slot "$SLOT" "$@"; }

TYPES="CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
       CREATE TYPE pair AS (a int, b text); CREATE SCHEMA s2; CREATE TYPE s2.col AS ENUM ('red', 'blue');"
COLS="id int PRIMARY KEY, m mood, p posint, pr pair, c s2.col, arr mood[], v varchar(5)"
q "$DB" "$TYPES CREATE TABLE before_setup ($COLS);
         INSERT INTO before_setup VALUES (1, 'ok', 3, ROW(1, 'x'), 'red', '{sad,ok}', 'abc')"
w_setup
q "$DB" "CREATE TABLE after_setup ($COLS); INSERT INTO after_setup VALUES (1, 'sad', 4, ROW(2, 'y'), 'blue', '{ok}', 'de')"
run_to_now "$LOG" --source "$SRC" --history "$HIST" --slot "$SLOT"

names() { HQ "SELECT col_type_names::text FROM walrev.relation_version WHERE relname = '$1' ORDER BY version LIMIT 1"; }
expect_eq "the stream's version names the types not built in" "$(names after_setup)" \
  "{NULL,public.mood,public.posint,public.pair,s2.col,public._mood,NULL}"
expect_eq "the baseline's version names them alike" "$(names before_setup)" "$(names after_setup)"

# The same types by name on the history server (other OIDs): a snapshot in
# SQL makes each column of its type there, for both tables.
HQ "$TYPES"
for t in before_setup after_setup; do
  expect_eq "$t in SQL: its columns' types" \
    "$(W snapshot --table "$t" --format sql 2>/dev/null | sed -n '/^CREATE TABLE/,/^);/p' | sed 's/,$//')" \
    "CREATE TABLE public.$t (
    id integer
    m public.mood
    p public.posint
    pr public.pair
    c s2.col
    arr public.mood[]
    v character varying(5)
);"
done
expect_eq "before_setup's rows in SQL" "$(W snapshot --table before_setup --format sql 2>/dev/null | sed -n '/^COPY/,/^\\\\\./p' | sed -n 2p)" \
  "$(printf '1\tok\t3\t(1,x)\tred\t{sad,ok}\tabc')"
pass "the baseline names its columns' types as the stream does"
