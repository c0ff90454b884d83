#!/usr/bin/env bash
# A primary key dropped, then ANALYZE (or VACUUM, autovacuum too) before the
# worker has decoded the changes from before the drop (issue 13, difftest seed
# 6 --steps 800: public.ki_1 re-keyed as keyless 128 transactions before its
# DROP CONSTRAINT, two rows doubled at five points). VACUUM and ANALYZE clear
# pg_class.relhasindex in place (not transactionally, so the historic catalog
# logical decoding reads sees it too), and pgoutput's
# RelationGetIdentityKeyBitmap returns no key at all when relhasindex is
# false: a walsender that (re)builds the table's relcache entry then marks no
# key column in the Relation message of a transaction that ran while the key
# was there. The worker took that for a key drop there and moved every row to
# a keyless identity; the key updates and deletes after it missed their rows.
# A key changes only by DDL, which the DDL capture reports in WAL order: with
# no capture row for the table since its version, the version's key stands.
source "$(dirname "$0")/lib.sh"
source_db key_drop_analyze keydropan

q $DB "CREATE TABLE k (id int PRIMARY KEY, v text);
       INSERT INTO k SELECT g, 'v' || g FROM generate_series(1, 5) g"
w_setup
points_from k                                                                    # 0
q $DB "INSERT INTO k VALUES (6, 'a'), (7, 'b')"; point                           # 1: keyed insert
q $DB "UPDATE k SET v = 'u2' WHERE id = 2; UPDATE k SET id = 70 WHERE id = 7"; point  # 2: updates by key
q $DB "DELETE FROM k WHERE id = 3"; point                                        # 3: delete by key
q $DB "ALTER TABLE k DROP CONSTRAINT k_pkey"; point                              # 4: the key dropped
q $DB "ANALYZE k"
expect_eq "ANALYZE cleared relhasindex in place (what the walsender then reads)" \
  "$(q $DB "SELECT relhasindex FROM pg_class WHERE oid = 'k'::regclass")" f
q $DB "INSERT INTO k VALUES (6, 'dup'), (8, 'c')"; point                         # 5: keyless now: id 6 twice
# The worker decodes all of it only now, its walsender after the ANALYZE.
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_points_equal 6
expect_rekeyed_once k 3 4 6 2
expect_verify "verify passes"

# Without the DDL capture (setup without superuser, or its trigger disabled)
# nothing reports a DROP CONSTRAINT but the Relation message itself: a key-less
# one is then a key drop, and a second row with the same id stays a row.
q $DB "ALTER EVENT TRIGGER walrev_capture_ddl DISABLE"
q $DB "CREATE TABLE k2 (id int PRIMARY KEY, v text); INSERT INTO k2 VALUES (1, 'one'), (2, 'two')"
points_from k2
q $DB "ALTER TABLE k2 DROP CONSTRAINT k2_pkey"
q $DB "INSERT INTO k2 VALUES (1, 'dup')"; point
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 2
expect_eq "without the capture, the key-less Relation message made k2 keyless" "$(key_shapes k2)" "{t,f} {f,f}"
q $DB "ALTER EVENT TRIGGER walrev_capture_ddl ENABLE"

# The key added by DDL in the same transaction as an update by it, dropped
# later, then ANALYZE before the worker decodes any of it: the Relation
# message of that update comes after the ADD PRIMARY KEY's capture row, and
# marks no key all the same; the capture's version (keyed) stands.
q $DB "CREATE TABLE k3 (id int NOT NULL, v text); INSERT INTO k3 VALUES (1, 'a'), (2, 'b')"
points_from k3
q $DB "BEGIN; ALTER TABLE k3 ADD PRIMARY KEY (id); UPDATE k3 SET v = 'b2' WHERE id = 2; COMMIT"; point
q $DB "ALTER TABLE k3 DROP CONSTRAINT k3_pkey"
q $DB "ANALYZE k3"
q $DB "INSERT INTO k3 VALUES (2, 'dup')"; point
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 3
expect_eq "k3: keyless, keyed from the ADD PRIMARY KEY, keyless from the DROP CONSTRAINT" "$(key_shapes k3)" \
  "{f,f} {t,f} {f,f}"
