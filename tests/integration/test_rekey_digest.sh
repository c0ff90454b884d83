#!/usr/bin/env bash
# A table without a key that gets one and loses it again (issue 13, found by
# s12-rand trying REPLICA IDENTITY DEFAULT -> USING INDEX -> FULL on a table
# with rows): moving its rows to their keys deletes their keyless identities
# ('#rev.seq') under the keyed version, and those deletes left the
# identities' row digests in place. Back without a key (FULL), an UPDATE or
# DELETE matched its old row to the dead identity's digest: the snapshot
# kept the old row and gained a row of only the changed columns (the UPDATE),
# or kept the deleted row (the DELETE). Each keyless identity's digest must
# go with the identity, whatever the version it is deleted under.
source "$(dirname "$0")/lib.sh"
source_db rekey_digest rekeydigest
q $DB "CREATE TABLE ri (id int NOT NULL, v text, w int); CREATE UNIQUE INDEX ri_id ON ri (id);
       INSERT INTO ri SELECT g, 'v' || g, g FROM generate_series(1, 4) g;
       CREATE TABLE kp (id int NOT NULL, v text); ALTER TABLE kp REPLICA IDENTITY FULL;
       INSERT INTO kp VALUES (1, 'a'), (2, 'b'), (3, 'c')"
w_setup
points_from ri kp n                                                             # 0
# n: rows from the stream, not the baseline
q $DB "CREATE TABLE n (id int NOT NULL, v text); CREATE UNIQUE INDEX n_id ON n (id);
       INSERT INTO n VALUES (1, 'a'), (2, 'b'), (3, 'c')"; point                 # 1
# keyless (DEFAULT) -> keyed by the index -> keyless again under FULL
q $DB "ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_id; ALTER TABLE n REPLICA IDENTITY USING INDEX n_id"; point  # 2
q $DB "UPDATE ri SET v = 'i' WHERE id = 4"; point                                # 3
q $DB "ALTER TABLE ri REPLICA IDENTITY FULL; ALTER TABLE n REPLICA IDENTITY FULL"; point  # 4
q $DB "UPDATE ri SET w = w + 100 WHERE id <= 2; DELETE FROM ri WHERE id = 3;
       UPDATE n SET v = 'b2' WHERE id = 2; DELETE FROM n WHERE id = 1"; point     # 5
# keyless (FULL) -> a primary key -> dropped, FULL again
q $DB "ALTER TABLE kp ADD PRIMARY KEY (id)"; point                               # 6
q $DB "ALTER TABLE kp DROP CONSTRAINT kp_pkey"; point                            # 7
q $DB "UPDATE kp SET v = 'b2' WHERE id = 2; DELETE FROM kp WHERE id = 3"; point  # 8
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
# and once more after a restart: the digests are the store's, not the worker's
q $DB "UPDATE ri SET v = 'again' WHERE id = 1; DELETE FROM kp WHERE id = 1; UPDATE n SET v = 'c2' WHERE id = 3"
point                                                                            # 9
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 29
# a keyless identity ('#rev.seq') is never used again once deleted
expect_eq "no row digest of a deleted keyless identity is left" \
  "$(q $DB "$H SELECT count(*) FROM row_digest g WHERE g.key LIKE '#%'
              AND EXISTS (SELECT 1 FROM object_delta d WHERE d.relid = g.relid AND d.key = g.key AND d.op = 'D')")" 0
expect_verify "verify passes"
pass "keyless identities keep no digest once deleted under a keyed version"
