#!/usr/bin/env bash
# REPLICA IDENTITY USING INDEX, then DROP INDEX of that index, then ANALYZE
# (or VACUUM, autovacuum too) before the worker has decoded the changes from
# before the drop (issue 13). With no index left, VACUUM and ANALYZE clear
# pg_class.relhasindex in place (the historic catalog logical decoding reads
# sees that too), and pgoutput's RelationGetIdentityKeyBitmap then marks no
# key column in the Relation message of a transaction that ran while the
# index was there. Taken at its word, that moved every row to a keyless
# identity too early, and the updates and deletes by key before the drop
# missed their rows. A DROP INDEX is no ALTER TABLE: the DDL capture reports
# it on sql_drop for every table whose replica identity index it removed,
# in WAL order, and until such a capture row the version's key stands.
source "$(dirname "$0")/lib.sh"
source_db replident_index_drop ridxdrop

q $DB "CREATE TABLE u (id int NOT NULL, v text);
       CREATE UNIQUE INDEX u_id ON u (id);
       ALTER TABLE u REPLICA IDENTITY USING INDEX u_id;
       INSERT INTO u SELECT g, 'v' || g FROM generate_series(1, 5) g;
       CREATE TABLE o (id int NOT NULL, v text);
       INSERT INTO o VALUES (1, 'o1'), (2, 'o2')"
w_setup
points_from u o                                                                  # 0
q $DB "INSERT INTO u VALUES (6, 'a'), (7, 'b')"; point                           # 1: keyed insert
q $DB "UPDATE u SET v = 'u2' WHERE id = 2; UPDATE u SET id = 70 WHERE id = 7"; point  # 2: updates by key
q $DB "DELETE FROM u WHERE id = 3"; point                                        # 3: delete by key
# o takes USING INDEX after setup (an ALTER TABLE the capture reports)
q $DB "CREATE UNIQUE INDEX o_id ON o (id); ALTER TABLE o REPLICA IDENTITY USING INDEX o_id;
       UPDATE o SET v = 'o2b' WHERE id = 2; CREATE INDEX o_v ON o (v)"; point      # 4
q $DB "DROP INDEX u_id"; point                                                   # 5: u's identity index dropped
q $DB "ANALYZE u"
expect_eq "ANALYZE cleared relhasindex in place (what the walsender then reads)" \
  "$(q $DB "SELECT relhasindex FROM pg_class WHERE oid = 'u'::regclass")" f
q $DB "INSERT INTO u VALUES (6, 'dup'), (8, 'c')"; point                         # 6: keyless now: id 6 twice
# another index of o dropped: o keeps its key; then its identity index goes
q $DB "DROP INDEX o_v; UPDATE o SET v = 'o1b' WHERE id = 1"; point               # 7
q $DB "BEGIN; UPDATE o SET v = 'o1c' WHERE id = 1; DROP INDEX o_id; INSERT INTO o VALUES (1, 'o1dup'); COMMIT"
q $DB "VACUUM o"; point                                                          # 8
# The worker decodes all of it only now, its walsender after the ANALYZE and VACUUM.
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

expect_points_equal 18
expect_rekeyed_once u 4 5 6 2
expect_eq "o: keyless, keyed by its index from the ALTER, keyless again from its DROP INDEX" "$(key_shapes o)" \
  "{f,f} {t,f} {f,f}"
expect_verify "verify passes"

# Without the capture of DROP INDEX (its sql_drop trigger disabled) nothing
# reports the drop but the Relation message itself: a key-less one is then
# the drop, and a second row with the same id stays a row.
q $DB "ALTER EVENT TRIGGER walrev_capture_drop DISABLE"
q $DB "CREATE TABLE u2 (id int NOT NULL, v text); CREATE UNIQUE INDEX u2_id ON u2 (id);
       ALTER TABLE u2 REPLICA IDENTITY USING INDEX u2_id; INSERT INTO u2 VALUES (1, 'one'), (2, 'two')"
points_from u2
q $DB "DROP INDEX u2_id"
q $DB "INSERT INTO u2 VALUES (1, 'dup')"; point
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 2
# (u2's first version is its CREATE TABLE's, keyless until the ALTER in the same transaction)
expect_eq "without the DROP INDEX capture, the key-less Relation message made u2 keyless" "$(key_shapes u2)" \
  "{f,f} {t,f} {f,f}"
q $DB "ALTER EVENT TRIGGER walrev_capture_drop ENABLE"
