#!/usr/bin/env bash
# walrev's DDL triggers lock no table the application's command does not
# (issue 13, found by PostgreSQL's parallel schedule under external.py:
# inherit.sql's and updatable_views.sql's ATTACH PARTITION ended in
# "deadlock detected" only where walrev was set up). The publication's
# tables, read at the start and end of an ATTACH, DETACH or SET SCHEMA
# (published_now), came from pg_partition_tree, which takes an
# AccessShareLock on every partition of every published partitioned table,
# held to the end of the application's transaction: its ATTACH then waited
# for any other session's DDL on an unrelated partition (here: a lock
# timeout) or deadlocked with it. The history still follows each command.
source "$(dirname "$0")/lib.sh"
source_db ddl_partition_locks ddlpartlocks
q $DB "CREATE TABLE q (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
       CREATE TABLE q1 PARTITION OF q FOR VALUES FROM (0) TO (100);
       CREATE TABLE q2 PARTITION OF q FOR VALUES FROM (100) TO (200);
       CREATE TABLE x (id int PRIMARY KEY, v text) PARTITION BY LIST (id);
       CREATE TABLE x1 PARTITION OF x FOR VALUES IN (1);
       CREATE TABLE x2 (id int PRIMARY KEY, v text);
       CREATE SCHEMA s2;
       INSERT INTO q VALUES (1, 'q1'), (150, 'q2'); INSERT INTO x VALUES (1, 'x1'); INSERT INTO x2 VALUES (2, 'x2')"
w_setup

# another session's DDL on a partition of q, its transaction left open
locker() { q $DB "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'walrev_test_locker'" >/dev/null; }
on_exit locker
PGAPPNAME=walrev_test_locker psql -X -q -d $DB -c "BEGIN; LOCK q1 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT;" \
  >/dev/null 2>&1 &
wait_for 10 q_is $DB "SELECT count(*) FROM pg_locks WHERE relation = 'q1'::regclass AND mode = 'AccessExclusiveLock' AND granted" 1 ||
  fail "the other session did not lock q1"
ddl() { must "$TMP/ddl.out" "$1 while another session holds q1" $PSQL -d $DB -c "SET lock_timeout = '3s'" -c "$2"; }
ddl "ATTACH PARTITION" "ALTER TABLE x ATTACH PARTITION x2 FOR VALUES IN (2)"
ddl "DETACH PARTITION" "ALTER TABLE x DETACH PARTITION x1"
ddl "SET SCHEMA" "ALTER TABLE x1 SET SCHEMA s2"
pass "ATTACH, DETACH and SET SCHEMA do not wait for a lock on an unrelated partition"
# and in a transaction of their own, they hold no lock on it
q $DB "BEGIN; ALTER TABLE x DETACH PARTITION x2;
       CREATE TEMP TABLE held AS SELECT relation::regclass::text AS rel FROM pg_locks
        WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation IN ('q'::regclass, 'q1'::regclass, 'q2'::regclass);
       ALTER TABLE x ATTACH PARTITION x2 FOR VALUES IN (2);
       INSERT INTO held SELECT relation::regclass::text FROM pg_locks
        WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation IN ('q'::regclass, 'q1'::regclass, 'q2'::regclass);
       DO \$\$ BEGIN IF EXISTS (SELECT 1 FROM held) THEN
         RAISE EXCEPTION 'locked: %', (SELECT string_agg(rel, ' ') FROM held); END IF; END \$\$;
       COMMIT" >"$TMP/held.out" 2>&1 || { cat "$TMP/held.out"; fail "a DETACH and an ATTACH of x locked q's tables"; }
pass "no lock on q, q1 or q2 in the transaction of a DETACH and an ATTACH of x"
locker

q $DB "UPDATE x SET v = 'late'; INSERT INTO s2.x1 VALUES (11, 'moved'); UPDATE q SET v = v || '!'"
TABLES="x x2 s2.x1 q q1"
NP=0
point
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 5
pass "the history follows the commands"
