#!/usr/bin/env bash
# Retention (issue 16): the history store partitioned by revision range
# ([history] partition_revisions = 10 here), `walrev prune --before POINT`:
# the plan changes nothing; --apply (with --export) writes a keyframe of every
# table at the cut and the chain anchor, then drops whole partitions; verify
# passes and reports the anchor; a point before the cut is refused by name;
# snapshots at and after the cut equal the table; a tampered kept revision is
# still found; the export loads back (--import) and the whole chain verifies
# again; bad arguments get clear errors and exit codes; [history] retain
# prunes from the running worker while the stream goes on.
source "$(dirname "$0")/lib.sh"
source_db prune_ret
OUT=$TEST_TMP
source_conf prune_ret <<CONF
[history]
partition_revisions = 10
CONF

q $DB "CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance int); CREATE TABLE bag (v text);
       ALTER TABLE bag REPLICA IDENTITY FULL; CREATE TABLE tick (one int PRIMARY KEY, n int); INSERT INTO tick VALUES (1, 0)"
w_setup
expect_eq "setup stores partition_revisions" \
  "$(q $DB "$H SELECT value FROM store_info WHERE key = 'partition_revisions'")" 10

step=0
do_step() { # one transaction (one revision: tick changes in each), then the true contents of both tables
  step=$((step + 1))
  q $DB "BEGIN; UPDATE tick SET n = $step; $1 COMMIT;" >/dev/null
  q $DB "COPY (SELECT * FROM acct) TO STDOUT" | LC_ALL=C sort >"$OUT/$step.acct"
  q $DB "COPY (SELECT * FROM bag) TO STDOUT" | LC_ALL=C sort >"$OUT/$step.bag"
}
do_step "INSERT INTO acct SELECT g, 'o' || g, g FROM generate_series(1, 5) g; INSERT INTO bag VALUES ('a'), ('a'), ('b');"
for i in $(seq 2 34); do
  case $((i % 4)) in
    0) do_step "UPDATE acct SET balance = balance + $i WHERE id = $((i % 5 + 1));" ;;
    1) do_step "INSERT INTO acct VALUES ($((i + 10)), 'n$i', $i); INSERT INTO bag VALUES ('x$i');" ;;
    2) do_step "DELETE FROM acct WHERE id = $((i + 9)); DELETE FROM bag WHERE v = 'x$((i - 1))';" ;;
    3) do_step "UPDATE acct SET owner = 'w$i', balance = NULL WHERE id = $((i % 5 + 1)); UPDATE bag SET v = 'y$i' WHERE v = 'b';" ;;
  esac
done
run_to_now "$OUT/run.log" -c "$OUT/walrev.conf"
N=$(q $DB "$H SELECT max(id) FROM revision")
# the revision of each step: the last ones, in order
for ((s = 1; s <= step; s++)); do echo $((N - step + s)) >"$OUT/$s.rev"; done
expect_eq "one revision per step, ids dense" "$(q $DB "$H SELECT count(*), min(id) FROM revision")" "$N|1"
expect_eq "partitions of 10 revisions, the same for the three tables, made ahead of the ids" \
  "$(q $DB "$H SELECT bool_and(hi - lo = 10), count(DISTINCT (lo, hi)) * 3 = count(*), min(lo),
                 max(hi) > $N FROM history_partitions()")" "t|t|1|t"

# ---- bad arguments ----
run_w noarg prune
expect_eq "prune without --before exits 2" "$rc:$(cat "$OUT/noarg.err")" \
  "2:walrev prune: error: prune needs --before POINT (or --import DIR)"
run_w noapply prune --before 27 --export "$OUT/x"
expect_eq "--export without --apply exits 2" "$rc:$(cat "$OUT/noapply.err")" \
  "2:walrev prune: error: --export writes the range as it is dropped: it needs --apply"
run_w both prune --import "$OUT/x" --before 3
expect_eq "--import with --before exits 2" "$rc:$(cat "$OUT/both.err")" \
  "2:walrev prune: error: prune --import DIR takes no other option"
run_w beyond prune --before 999999
expect_eq "a point beyond the history exits 1" "$rc" 1
grep -q "revision 999999 is beyond the history" "$OUT/beyond.err" || fail "beyond: $(cat "$OUT/beyond.err")"
run_w nothing prune --before 7
expect_eq "nothing to prune before the first boundary" "$rc:$(cat "$OUT/nothing.out")" \
  "0:nothing to prune before revision 7: no whole partition of the history ends at or before it (partitions hold 10 revisions; the oldest revision kept is 1)"

# ---- the plan ----
ND=$(q $DB "$H SELECT count(*) FROM object_delta WHERE revision_id < 21")
NC=$(q $DB "$H SELECT count(*) FROM revision_context WHERE revision_id < 21")
run_w plan prune --before 27
expect_eq "plan exits 0" "$rc" 0
expect_eq "plan: the cut rounded down to a boundary, what goes, what stays" \
  "$(sed -n '1p;$p' "$OUT/plan.out"; grep '^drops\|^keeps' "$OUT/plan.out")" \
  "prune before revision 27: rounded down to revision 21, the partition boundary at or before it (partitions hold 10 revisions)
dry run: nothing changed (--apply prunes)
drops revisions 1 to 20: 20 revisions, $NC contexts, $ND deltas, $(q $DB "$H SELECT sum(pg_total_relation_size(part)) FROM history_partitions() WHERE hi <= 21") bytes in 6 partitions
keeps revisions 21 to $N; first writes a keyframe of every table as of revision 20 and the anchor (its checksum), so verify proves every revision kept"
expect_eq "plan: one line per partition" "$(awk 'NR > 2 && $1 ~ /^(revision|revision_context|object_delta)$/ { print $1, $2, $3, $4 }' "$OUT/plan.out")" \
  "object_delta walrev.object_delta_p1 1-10 $(q $DB "$H SELECT count(*) FROM object_delta WHERE revision_id < 11")
revision walrev.revision_p1 1-10 10
revision_context walrev.revision_context_p1 1-10 $(q $DB "$H SELECT count(*) FROM revision_context WHERE revision_id < 11")
object_delta walrev.object_delta_p11 11-20 $(q $DB "$H SELECT count(*) FROM object_delta WHERE revision_id BETWEEN 11 AND 20")
revision walrev.revision_p11 11-20 10
revision_context walrev.revision_context_p11 11-20 $(q $DB "$H SELECT count(*) FROM revision_context WHERE revision_id BETWEEN 11 AND 20")"
expect_eq "the plan changed nothing" "$(q $DB "$H SELECT (SELECT count(*) FROM revision), (SELECT count(*) FROM prune)")" "$N|0"

# ---- apply, with export ----
ANCHOR=$(q $DB "$H SELECT encode(checksum, 'hex') FROM revision WHERE id = 20")
must "$OUT/verify0.out" "verify before pruning" W verify
# a keyframe of every table the history has (acct, bag and walrev's own table log)
NK=$(q $DB "$H SELECT count(DISTINCT relid) FROM relation_version")
run_w apply prune --before 27 --apply --export "$OUT/exp"
expect_eq "apply exits 0" "$rc" 0
expect_eq "apply says what it did" "$(tail -1 "$OUT/apply.out")" \
  "pruned: 6 partitions dropped; history before revision 21 is gone, $NK keyframes as of revision 20 and the anchor written; exported to $OUT/exp"
expect_eq "revisions 1-20 gone, the anchor is revision 20's checksum, keyframes at 20 of both tables" \
  "$(q $DB "$H SELECT (SELECT min(id) FROM revision), (SELECT count(*) FROM revision),
                 (SELECT encode(anchor, 'hex') FROM prune WHERE before_id = 21),
                 (SELECT string_agg(relid::regclass::text || ':' || n_rows, ' ' ORDER BY relid::regclass::text)
                  FROM keyframe WHERE revision_id = 20 AND relid IN ('public.acct'::regclass, 'public.bag'::regclass)),
                 (SELECT count(*) FROM keyframe WHERE revision_id < 20),
                 (SELECT min(lo) FROM history_partitions())")" \
  "21|$((N - 20))|$ANCHOR|public.acct:$(wc -l <"$OUT/20.acct" | tr -d ' ') public.bag:$(wc -l <"$OUT/20.bag" | tr -d ' ')|0|21"
ON=$(q $DB "$H SELECT pruned_at::date FROM prune")
must "$OUT/verify1.out" "verify after pruning" W verify
expect_eq "verify after prune passes and reports the anchor" "$(cat "$OUT/verify1.out")" \
  "anchor: history before revision 21 was pruned on $ON; the chain is verified from revision 21 on, starting from the anchor ${ANCHOR:0:16}… (the checksum of revision 20)
verified $((N - 20)) revisions: the checksum chain holds, and the contexts, actors, keyframes and baseline records agree with it"

# a point before the cut is refused by name: a revision, an LSN, a time
run_w before5 snapshot --table acct --at 5
expect_eq "snapshot at revision 5 is refused" "$rc:$(grep -c . "$OUT/before5.out" || true)" "1:0"
expect_eq "...by name" "$(cat "$OUT/before5.err")" \
  "walrev snapshot: error: history before revision 21 was pruned on $ON (walrev prune): revision 5 is gone; the oldest revision kept is 21"
run_w beforelsn snapshot --table acct --at 0/1
expect_eq "an LSN before the cut is refused" "$rc" 1
grep -q "history before revision 21 was pruned on $ON (walrev prune): LSN 0/1 is before it" "$OUT/beforelsn.err" ||
  fail "LSN refusal: $(cat "$OUT/beforelsn.err")"
run_w beforets snapshot --table acct --at '2000-01-01 00:00:00+00'
grep -q "history before revision 21 was pruned on $ON (walrev prune): time 2000-01-01" "$OUT/beforets.err" ||
  fail "time refusal: $(cat "$OUT/beforets.err")"
check_snapshots() { # WHAT FIRST_STEP
  local s n=0 t
  for ((s = $2; s <= step; s++)); do
    for t in acct bag; do
      W snapshot --at "$(cat "$OUT/$s.rev")" --table $t 2>"$OUT/snap.err" | LC_ALL=C sort >"$OUT/$s.$t.snap" ||
        { cat "$OUT/snap.err"; fail "$1: snapshot of $t at step $s"; }
      cmp -s "$OUT/$s.$t" "$OUT/$s.$t.snap" || { diff "$OUT/$s.$t" "$OUT/$s.$t.snap" >&2; fail "$1: $t at step $s"; }
      n=$((n + 1))
    done
  done
  pass "$1: $n snapshots (revisions $(cat "$OUT/$2.rev") to $N) equal the tables"
}
FIRST_KEPT=$((21 - (N - step)))
check_snapshots "after prune, at and after the cut" "$FIRST_KEPT"

# tampering with a kept revision is still found
FLIP="UPDATE revision SET checksum = set_byte(checksum, 0, get_byte(checksum, 0) # 1) WHERE id = 25"
q $DB "$H $FLIP"
run_w tamper verify
expect_eq "verify after changing revision 25 exits 1" "$rc" 1
grep -q "revision 25" "$OUT/tamper.err" || fail "tamper: $(cat "$OUT/tamper.err")"
q $DB "$H $FLIP"

# ---- the export and its import ----
expect_eq "the export's manifest: format, range, anchor, rows per file" \
  "$(python3 -c "import json; m=json.load(open('$OUT/exp/manifest.json')); print(m['walrev_prune_export'], m['store_format'], m['from_revision'], m['before_revision'], m['anchor']); print(' '.join(f['file'] + ':' + str(f['rows']) for f in m['files'] if f['table'] == 'revision'))")" \
  "1 7 1 21 $ANCHOR
revision_p1.csv:10 revision_p11.csv:10"
ls "$OUT/exp" | LC_ALL=C sort | tr '\n' ' ' >"$OUT/exp.ls"
expect_eq "the export's files" "$(cat "$OUT/exp.ls")" \
  "erased_value.csv erasure.csv keyframe.csv keyframe_chunk.csv manifest.json object_delta_p1.csv object_delta_p11.csv quarantine.csv revision_context_p1.csv revision_context_p11.csv revision_p1.csv revision_p11.csv "
expect_eq "the export holds every pruned revision" "$(cat "$OUT/exp/revision_p1.csv" "$OUT/exp/revision_p11.csv" | wc -l | tr -d ' ')" 20
cp -r "$OUT/exp" "$OUT/bad"
sed -i '1s/^1,/1,/; 1s/,/;/' "$OUT/bad/revision_p1.csv"
run_w badimport prune --import "$OUT/bad"
expect_eq "a damaged export is refused, nothing imported" "$rc:$(q $DB "$H SELECT min(id) FROM revision")" "1:21"
grep -q "bad/revision_p1.csv: SHA-256 .*, the manifest says .*: nothing was imported" "$OUT/badimport.err" ||
  fail "damaged export: $(cat "$OUT/badimport.err")"
run_w import prune --import "$OUT/exp"
expect_eq "import exits 0" "$rc:$(cat "$OUT/import.out")" \
  "0:imported revisions 1 to 20 from $OUT/exp (11 files); the history is whole again from revision 1 (walrev verify proves it)"
must "$OUT/verify2.out" "verify after the import" W verify
expect_eq "the whole chain verifies again, no anchor" "$(cat "$OUT/verify2.out")" \
  "verified $N revisions: the checksum chain holds, and the contexts, actors, keyframes and baseline records agree with it"
check_snapshots "after the import, from the first step" 1
run_w again prune --import "$OUT/exp"
expect_eq "importing twice is refused" "$rc" 1
grep -q "the store was not pruned: nothing was imported" "$OUT/again.err" || fail "import twice: $(cat "$OUT/again.err")"

# ---- an export made by a format 6 store (keyframes a row per line, keyframe_row.csv) loads too ----
run_w apply6 prune --before 27 --apply --export "$OUT/exp6"
expect_eq "pruned again" "$rc" 0
# the same export as format 6 wrote it: the chunks unnested into keyframe_row's columns
KC=$(python3 -c "import json; m=json.load(open('$OUT/exp6/manifest.json')); print([f['columns'] for f in m['files'] if f['table'] == 'keyframe_chunk'][0])")
$PSQL -d $DB -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TEMP TABLE kc AS SELECT $KC FROM walrev.keyframe_chunk WITH NO DATA;
\copy kc ($KC) FROM '$OUT/exp6/keyframe_chunk.csv' (FORMAT csv)
\copy (SELECT kc.keyframe_id, u.key, kc.relversion, u.r::text[] FROM kc, unnest(kc.keys, kc.rows) AS u(key, r)) TO '$OUT/exp6/keyframe_row.csv' (FORMAT csv)
SQL
rm "$OUT/exp6/keyframe_chunk.csv"
python3 - "$OUT/exp6" <<'PY'
import hashlib, json, sys
d = sys.argv[1]
m = json.load(open(d + '/manifest.json'))
data = open(d + '/keyframe_row.csv', 'rb').read()
m['store_format'] = '6'
m['files'] = [f for f in m['files'] if f['table'] != 'keyframe_chunk'] + [{
    'file': 'keyframe_row.csv', 'table': 'keyframe_row', 'columns': 'keyframe_id, key, relversion, vals',
    'rows': data.count(b'\n'), 'sha256': hashlib.sha256(data).hexdigest()}]
json.dump(m, open(d + '/manifest.json', 'w'))
PY
run_w import6 prune --import "$OUT/exp6"
expect_eq "a format 6 export imports" "$rc:$(cat "$OUT/import6.out" "$OUT/import6.err")" \
  "0:imported revisions 1 to 20 from $OUT/exp6 (11 files); the history is whole again from revision 1 (walrev verify proves it)"
must "$OUT/verify6.out" "verify after the format 6 import" W verify
expect_eq "the whole chain verifies again after the format 6 import" "$(cat "$OUT/verify6.out")" \
  "verified $N revisions: the checksum chain holds, and the contexts, actors, keyframes and baseline records agree with it"
check_snapshots "after the format 6 import, from the first step" 1

# ---- [history] retain in the worker ----
cat >>"$OUT/walrev.conf" <<CONF
retain = 2 seconds
retain_interval = 1
CONF
sleep 3
worker_start "$OUT/retain.log" -c "$OUT/walrev.conf"
on_exit '[ -n "${WORKER_PID:-}" ] && kill -KILL "$WORKER_PID" 2>/dev/null'
for i in $(seq 1 12); do q $DB "UPDATE acct SET balance = $i WHERE id = 2"; done
pruned_far() { [ "$(q $DB "$H SELECT coalesce(max(before_id), 0) >= 31 FROM prune")" = t ]; }
wait_for 60 pruned_far || { cat "$OUT/retain.log"; fail "the worker did not prune"; }
q $DB "UPDATE acct SET balance = 99 WHERE id = 2"
# (the worker writes its store in this database: the WAL moves on past the update)
caught_up() { [ "$(q $DB "$H SELECT new_value FROM object_delta WHERE relid = 'public.acct'::regclass
                              ORDER BY revision_id DESC, seq DESC LIMIT 1")" = 99 ]; }
wait_for 60 caught_up || { cat "$OUT/retain.log"; fail "the stream stopped"; }
worker_stop || { cat "$OUT/retain.log"; fail "worker stop"; }
grep -q 'msg="history pruned" before_revision=' "$OUT/retain.log" || { cat "$OUT/retain.log"; fail "prune not logged"; }
expect_eq "the store's partitions made by the worker are not warned about as untracked tables" \
  "$(grep -c 'is not in publication' "$OUT/retain.log" || true)|$([ "$(grep -c 'msg="history partition made"' "$OUT/retain.log")" -ge 1 ] && echo made)" "0|made"
expect_eq "retain: the stream went on, the newest snapshot equals the table" \
  "$(W snapshot --table acct 2>/dev/null | LC_ALL=C sort)" "$(q $DB "COPY (SELECT * FROM acct) TO STDOUT" | LC_ALL=C sort)"
must "$OUT/verify3.out" "verify after the worker pruned" W verify
grep -q "^anchor: history before revision" "$OUT/verify3.out" || fail "verify3: $(cat "$OUT/verify3.out")"
pass "retain: $(grep -c 'msg="history pruned"' "$OUT/retain.log") prune(s) by the worker; $(tail -1 "$OUT/verify3.out")"
