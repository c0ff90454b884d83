#!/usr/bin/env bash
# walrev never makes an application's DDL fail. Its event triggers write
# walrev.table_log and walrev.ddl_capture inside the DDL's own transaction;
# were they to read those tables too, two SERIALIZABLE transactions doing
# DDL on unrelated tables (or one of them prepared) would each read what the
# other writes, and PostgreSQL would abort one with "could not serialize
# access" where, untracked, both commit. Two psql sessions interleave DDL of
# every kind the capture sees (CREATE TABLE, ADD/DROP COLUMN, CREATE/DROP
# INDEX, REPLICA IDENTITY, SET LOGGED, ALTER TYPE ... USING, ATTACH/DETACH,
# DROP TABLE, PREPARE TRANSACTION) on different tables: first untracked (the
# reference: every transaction commits), then tracked (every one must commit
# too), and the history at a point after each round equals the tables.
source "$(dirname "$0")/lib.sh"
source_db serial_ddl serialddl

# session NAME: a psql session of its own on $DB, fed statements by `send`;
# its output (errors included: it does not stop on them) in $TMP/NAME.out.
declare -A FD
session() {
  mkfifo "$TMP/$1.in"
  psql -X -q -At -v ON_ERROR_STOP=0 -d "$DB" <"$TMP/$1.in" >"$TMP/$1.out" 2>&1 &
  on_exit "kill $! 2>/dev/null"
  exec {fd}>"$TMP/$1.in"
  FD[$1]=$fd
}
# send NAME SQL: SQL in session NAME, and wait until it has run (a marker
# line the session prints after it).
STEP=0
send() {
  STEP=$((STEP + 1))
  printf '%s\n\\echo step %s\n' "$2" "$STEP" >&"${FD[$1]}"
  wait_for 30 grep -qx "step $STEP" "$TMP/$1.out" || { cat "$TMP/$1.out"; fail "session $1 did not run: $2"; }
}

# round PREFIX: the DDL of both sessions, interleaved so that each
# transaction is in progress while the other does its DDL. Tables are named
# PREFIX_a and PREFIX_p (session s1), PREFIX_b and PREFIX_q (s2): each
# session's own, so that untracked no lock or read of one waits on the other.
round() {
  local a=$1_a b=$1_b
  local -a s1=("CREATE TABLE $a (id int PRIMARY KEY, v text, w text); INSERT INTO $a VALUES (1, 'a1', 'x')"
               "ALTER TABLE $a ADD COLUMN n int; INSERT INTO $a VALUES (2, 'a2', 'y', 2)"
               "CREATE INDEX ${a}_v ON $a (v); UPDATE $a SET n = 10 WHERE id = 1"
               "ALTER TABLE $a REPLICA IDENTITY FULL; UPDATE $a SET v = 'a1+' WHERE id = 1"
               "ALTER TABLE $a DROP COLUMN w; DELETE FROM $a WHERE id = 2"
               "ALTER TABLE $a ALTER COLUMN n TYPE text USING 'n' || n; INSERT INTO $a VALUES (3, 'a3', 'n3')"
               "ALTER TABLE ${1}_p DETACH PARTITION ${1}_p1; INSERT INTO ${1}_p1 VALUES (5, 'p1 after')"
               "CREATE UNLOGGED TABLE ${a}_u (id int PRIMARY KEY, v text); INSERT INTO ${a}_u VALUES (1, 'u')"
               "ALTER TABLE ${a}_u SET LOGGED; INSERT INTO ${a}_u VALUES (2, 'u2')")
  local -a s2=("CREATE TABLE $b (id int PRIMARY KEY, v text, w text); INSERT INTO $b VALUES (1, 'b1', 'x')"
               "ALTER TABLE $b ADD COLUMN n int DEFAULT 7; INSERT INTO $b (id, v) VALUES (2, 'b2')"
               "CREATE UNIQUE INDEX ${b}_v ON $b (id, v); UPDATE $b SET n = 20 WHERE id = 1"
               "ALTER TABLE $b ALTER COLUMN v SET NOT NULL, REPLICA IDENTITY USING INDEX ${b}_v; UPDATE $b SET w = 'b' WHERE id = 2"
               "DROP INDEX ${b}_v; ALTER TABLE $b DROP COLUMN w; INSERT INTO $b (id, v) VALUES (3, 'b3')"
               "ALTER TABLE $b REPLICA IDENTITY DEFAULT, ALTER COLUMN v TYPE varchar(20) USING upper(v);
                CREATE TABLE ${b}_c (id int PRIMARY KEY); INSERT INTO ${b}_c VALUES (1), (2); DELETE FROM $b WHERE id = 1"
               "CREATE TABLE ${1}_q2 PARTITION OF ${1}_q FOR VALUES FROM (10) TO (20); INSERT INTO ${1}_q VALUES (15, 'q2')"
               "DROP TABLE ${b}_c; INSERT INTO $b (id, v) VALUES (4, 'b4')"
               "ALTER TABLE $b RENAME COLUMN n TO m; UPDATE $b SET m = 8 WHERE id = 4")
  q "$DB" "CREATE TABLE ${1}_p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
           CREATE TABLE ${1}_p1 PARTITION OF ${1}_p FOR VALUES FROM (0) TO (10); INSERT INTO ${1}_p VALUES (1, 'p1');
           CREATE TABLE ${1}_q (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
           CREATE TABLE ${1}_q1 PARTITION OF ${1}_q FOR VALUES FROM (0) TO (10); INSERT INTO ${1}_q VALUES (1, 'q1')"
  local i
  for ((i = 0; i < ${#s1[@]}; i++)); do
    send s1 "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT count(*) FROM pg_class WHERE false;"
    send s2 "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT count(*) FROM pg_class WHERE false;"
    send s1 "${s1[$i]};"
    send s2 "${s2[$i]};"
    if [ $((i % 3)) = 2 ]; then # one of the two prepared, committed after the other
      send s1 "PREPARE TRANSACTION '${1}_$i';"
      send s2 "COMMIT;"
      send s1 "COMMIT PREPARED '${1}_$i';"
    else
      send s1 "COMMIT;"
      send s2 "COMMIT;"
    fi
    if [ -n "${LSN_VAR:-}" ]; then point; fi
  done
}

session s1
session s2
# 0: untracked, the reference. Every transaction commits.
round plain
for s in s1 s2; do
  grep -q ERROR "$TMP/$s.out" && { cat "$TMP/$s.out"; fail "untracked DDL failed in $s: not a reference"; }
done
pass "untracked: every SERIALIZABLE DDL transaction of both sessions commits"

w_setup
points_from plain_a plain_b
TABLES="t_a t_b t_a_u t_p t_p1 t_q t_b_c"
LSN_VAR=1
round t
for s in s1 s2; do
  grep ERROR "$TMP/$s.out" && { cat "$TMP/$s.out"; fail "tracked DDL failed in $s where untracked it commits"; }
done
pass "tracked: every SERIALIZABLE DDL transaction of both sessions commits ($((STEP)) steps)"
expect_eq "both sessions' tables are as their DDL left them" \
  "$(q "$DB" "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't_a'::regclass AND attnum > 0 AND NOT attisdropped
              UNION ALL SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't_b'::regclass AND attnum > 0 AND NOT attisdropped
              UNION ALL SELECT count(*)::text FROM pg_prepared_xacts")" "id,v,n
id,v,m
0"

run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
# point 8 (after the 8th pair) has t_a_u unlogged: no history to compare
# (replay names it unlogged; test_set_unlogged checks that)
rm "$TEST_TMP/8.t_a_u"
expect_points_equal 48
expect_verify "the chain verifies"
