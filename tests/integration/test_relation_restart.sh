#!/usr/bin/env bash
# Relation versions survive every restart (issue 13.1): after DROP COLUMN and
# RENAME COLUMN/TABLE the worker is stopped and started again between the
# DDL and the next change; history, snapshot and the live table agree, no
# version is written twice, and `walrev verify` covers relation versions: a
# changed relation_version row (or one whose checksum was recomputed too)
# fails verify, naming it.
source "$(dirname "$0")/lib.sh"
source_db relrestart
OUT=$TEST_TMP
W() { "$WALREV_BIN" --source "$SRC" --slot relrestart "$@"; }
run_to_now() { W run --stop-lsn "$(current_lsn $DB)" 2>>"$OUT/run.log" || { cat "$OUT/run.log"; fail "run $1"; }; }

# The issue's reproduction: drop a column, change, restart, change again.
q $DB "CREATE TABLE r1 (id int PRIMARY KEY, a text, b text); INSERT INTO r1 VALUES (1, 'a1', 'b1');"
w_setup
q $DB "ALTER TABLE r1 DROP COLUMN a; UPDATE r1 SET b = 'b2' WHERE id = 1;"
run_to_now "after the drop"
q $DB "UPDATE r1 SET b = 'b3' WHERE id = 1;"
run_to_now "after the restart"

expect_eq "history after drop + restart: b changes, a never does" \
  "$(W history --table r1 --key 1 --format csv 2>/dev/null | cut -d, -f1,3,7-9)" \
"revision,op,column,old_value,new_value
1,S,id,,1
1,S,a,,a1
1,S,b,,b1
2,U,b,b1,b2
3,U,b,b2,b3"
expect_eq "snapshot equals the live table" \
  "$(W snapshot --table r1 --format csv 2>/dev/null)" \
  "$(printf 'id,b\n'; q $DB "COPY (SELECT * FROM r1 ORDER BY id) TO STDOUT (FORMAT csv)")"
expect_eq "relation versions: one per shape, each covered by a revision" \
  "$(q $DB "$H SELECT version, col_ids::text, col_names::text, covered_by FROM relation_version
            WHERE relname = 'r1' ORDER BY version")" \
"1|{1,2,3}|{id,a,b}|1
2|{1,3}|{id,b}|2"

# Renames: the column and the table keep their new names across a restart.
q $DB "ALTER TABLE r1 RENAME COLUMN b TO b_renamed; UPDATE r1 SET b_renamed = 'b4' WHERE id = 1;"
run_to_now "after the rename"
q $DB "ALTER TABLE r1 RENAME TO r1_renamed; INSERT INTO r1_renamed VALUES (2, 'x');"
run_to_now "after the table rename"
q $DB "UPDATE r1_renamed SET b_renamed = 'b5' WHERE id = 1; INSERT INTO r1_renamed VALUES (3, 'y');"
run_to_now "after the restart"
expect_eq "renames survive the restart (no revert to the oldest name)" \
  "$(q $DB "$H SELECT version, relname, col_ids::text, col_names::text FROM relation_version
            WHERE relid = 'public.r1_renamed'::regclass ORDER BY version")" \
"1|r1|{1,2,3}|{id,a,b}
2|r1|{1,3}|{id,b}
3|r1|{1,3}|{id,b_renamed}
4|r1_renamed|{1,3}|{id,b_renamed}"
expect_eq "the renamed column's whole history is under its identity" \
  "$(W history --table r1_renamed --key 1 --format csv 2>/dev/null | cut -d, -f1,3,7-9 | tail -n +5)" \
"2,U,b,b1,b2
3,U,b,b2,b3
4,U,b_renamed,b3,b4
6,U,b_renamed,b4,b5"
expect_eq "snapshot equals the live table after renames and restarts" \
  "$(W snapshot --table r1_renamed --format csv 2>/dev/null | sort)" \
  "$( (printf 'id,b_renamed\n'; q $DB "COPY (SELECT * FROM r1_renamed) TO STDOUT (FORMAT csv)") | sort)"

# A DDL alone (no row change after it) shows in snapshots at once: the
# capture makes the version in the DDL's own transaction.
q $DB "ALTER TABLE r1_renamed ADD COLUMN z int"
run_to_now "after ADD COLUMN alone"
expect_eq "a column added, no row changed since: the snapshot has it" \
  "$(W snapshot --table r1_renamed --format csv 2>/dev/null | sort)" \
  "$( (printf 'id,b_renamed,z\n'; q $DB "COPY (SELECT * FROM r1_renamed) TO STDOUT (FORMAT csv)") | sort)"
q $DB "ALTER TABLE r1_renamed RENAME COLUMN b_renamed TO b_final"
q $DB "ALTER TABLE r1_renamed DROP COLUMN z"
run_to_now "after RENAME and DROP COLUMN alone"
expect_eq "a column renamed and one dropped, no row changed since: the snapshot follows" \
  "$(W snapshot --table r1_renamed --format csv 2>/dev/null | sort)" \
  "$( (printf 'id,b_final\n'; q $DB "COPY (SELECT * FROM r1_renamed) TO STDOUT (FORMAT csv)") | sort)"

must "$OUT/verify.out" "verify" W verify
pass "verify: $(cat "$OUT/verify.out")"

# Tampering a relation version: its own checksum no longer matches.
q $DB "$H UPDATE relation_version SET col_names = '{id,secret}' WHERE relid = 'public.r1_renamed'::regclass AND version = 3"
if W verify >"$OUT/verify.out" 2>&1; then cat "$OUT/verify.out"; fail "verify passed a changed relation version"; fi
grep -q "revision 4: relation version 3 of public.r1 (relid [0-9]*): stored checksum .* but its row hashes to" \
  "$OUT/verify.out" || { cat "$OUT/verify.out"; fail "verify names the relation version"; }
pass "a changed relation_version row fails verify, named: $(cat "$OUT/verify.out")"

# ... and with its checksum recomputed by the tamperer, the chain still catches it.
cat >"$OUT/digest.py" <<'PY'
import hashlib, struct, sys
def V(x): return b"\0" if x is None else b"\1" + hashlib.sha256(x.encode()).digest()
relid, version, nsp, rel, ri, vf, rid = sys.argv[1:8]
hi, lo = vf.split("/")
cols = [c.split(":") for c in sys.argv[8].split(";")]
e = b"walrev-relation-v1" + struct.pack(">IIs", int(relid), int(version), b"")[:8]
e += V(nsp) + V(rel) + ri.encode() + struct.pack(">QQH", (int(hi, 16) << 32) | int(lo, 16), int(rid), len(cols))
for cid, name, oid, typmod, key, track in cols:
    e += struct.pack(">H", int(cid)) + V(name) + struct.pack(">Ii", int(oid), int(typmod)) + V(None)
    e += bytes([1 if key == "t" else 0]) + track.encode()
e += struct.pack(">H", 0)
print(hashlib.sha256(e).hexdigest())
PY
ROW=$(q $DB "$H SELECT relid, version, nspname, relname, replident, valid_from, covered_by,
                string_agg(concat_ws(':', i, n, o, t, k, tr), ';' ORDER BY ord)
         FROM relation_version, unnest(col_ids, col_names, col_type_oids, col_typmods, col_is_key, col_track)
              WITH ORDINALITY AS u(i, n, o, t, k, tr, ord)
         WHERE relid = 'public.r1_renamed'::regclass AND version = 3
         GROUP BY relid, version, nspname, relname, replident, valid_from, covered_by" | tr '|' ' ')
# shellcheck disable=SC2086
SUM=$(python3 "$OUT/digest.py" $ROW)
q $DB "$H UPDATE relation_version SET checksum = '\\x$SUM' WHERE relid = 'public.r1_renamed'::regclass AND version = 3"
if W verify >"$OUT/verify.out" 2>&1; then cat "$OUT/verify.out"; fail "verify passed a re-signed relation version"; fi
grep -q "revision 4: stored checksum .* but its rows (and relation versions it covers: public.r1 version 3) hash to" \
  "$OUT/verify.out" || { cat "$OUT/verify.out"; fail "verify names the revision covering the version"; }
pass "a changed relation version with a recomputed checksum breaks the chain: $(cat "$OUT/verify.out")"

# A stored version that does not read back stops the start instead of being guessed.
q $DB "$H UPDATE relation_version SET relid = 0 WHERE relid = 'public.r1_renamed'::regclass AND version = 4"
q $DB "UPDATE r1_renamed SET b_final = 'b7' WHERE id = 1"
if W run --stop-lsn "$(current_lsn $DB)" >"$OUT/run3.log" 2>&1; then cat "$OUT/run3.log"; fail "run on a relid 0 version"; fi
grep -q "relation version 4 of relid 0 does not read back (relid)" "$OUT/run3.log" ||
  { cat "$OUT/run3.log"; fail "the refusal names the row"; }
pass "a relation version that does not read back stops the start, named"
