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
# A store written before that fix (dbe94a5) still holds such digests, and
# the chain does not cover row_digest: `walrev verify` names them by table
# (and fails), `walrev setup` removes them. Staged here by putting back the
# baseline identities' digests the rekeys deleted, as the old code left them.
source "$(dirname "$0")/lib.sh"
source_db rekey_digest rekeydigest
q $DB "CREATE TABLE ri (id int NOT NULL, v text, w int); CREATE UNIQUE INDEX ri_id ON ri (id);
       INSERT INTO ri SELECT g, 'v' || g, g FROM generate_series(1, 4) g;
       CREATE TABLE kp (id int NOT NULL, v text); ALTER TABLE kp REPLICA IDENTITY FULL;
       INSERT INTO kp VALUES (1, 'a'), (2, 'b'), (3, 'c')"
w_setup
points_from ri kp n                                                             # 0
# the baseline identities' digests, as the rekeys below will delete them
q $DB "COPY (SELECT * FROM walrev.row_digest WHERE relid IN ('ri'::regclass, 'kp'::regclass)) TO STDOUT" >"$TMP/digests"
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

# The store as a walrev before dbe94a5 left it: the deleted identities'
# digests still there (4 of ri's, 3 of kp's baseline rows).
$PSQL -d $DB -c "COPY walrev.row_digest FROM STDIN" <"$TMP/digests"
stale() { q $DB "$H SELECT count(*) FROM row_digest g WHERE g.key LIKE '#%'
                   AND EXISTS (SELECT 1 FROM object_delta d WHERE d.relid = g.relid AND d.key = g.key AND d.op = 'D')"; }
expect_eq "the staged store holds the old digests" "$(stale)" 7
rc=0
W verify >"$TMP/verify.out" 2>&1 || rc=$?
expect_eq "verify fails on stale digests" "$rc" 1
expect_eq "verify names each table, how many and the first" "$(grep '^stale digests' "$TMP/verify.out" | cut -d: -f2-3)" \
  " table public.kp: 3 deleted keyless identities (first #1.1) keep a row digest in walrev.row_digest
 table public.ri: 4 deleted keyless identities (first #1.4) keep a row digest in walrev.row_digest"
grep -q 'history does not verify: 7 row digest(s) of deleted keyless identities are left (a store written before dbe94a5); `walrev setup` removes them' \
  "$TMP/verify.out" || { cat "$TMP/verify.out"; fail "verify's error says how many and the remedy"; }
pass "verify names the stale digests of an older store by table"
w_setup
expect_eq "setup removed them" "$(stale)" 0
expect_eq "and only them" "$(q $DB "$H SELECT count(*) FROM row_digest WHERE relid = 'public.ri'::regclass")" 3
expect_verify "verify passes after setup"
# a row equal to a dead identity's (ri's baseline row 3) is found under its own identity
q $DB "INSERT INTO ri VALUES (3, 'v3', 3)"
q $DB "UPDATE ri SET v = 'v3b' WHERE id = 3"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_like_table "the history of ri equals the table after the mend" ri "$(W snapshot --table ri 2>/dev/null | sort)"
pass "setup mends an older store's stale digests"
