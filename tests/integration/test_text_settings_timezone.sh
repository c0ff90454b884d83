#!/usr/bin/env bash
# A timestamptz prints by the session's TimeZone, and so does everything
# holding one (array, range, multirange, domain, composite): the walsender
# printed it in the worker's zone (PGTZ=Asia/Kolkata here, on a server whose
# default is UTC). `walrev snapshot` prints it again in its own session's
# zone, so it equals a COPY of the table in the reader's environment, byte
# for byte: the server's default, and PGTZ=America/Los_Angeles (PostgreSQL's
# regression harness exports PGTZ=PST8PDT). A timetz carries its own offset
# and other values are given as stored. Keyed and keyless, text, csv, json
# and --into. history, blame and diff print the values in the reader's zone
# too, as a SELECT there does; a value its column's type refuses (the old
# value of a retype) as recorded. big has a keyframe (the
# baseline's) and deltas since: the C fold prints its zoned values again
# (keyframe rows between FETCHes of its chunks, the deltas' values from the
# hash; at the baseline, the keyframe alone), the SQL
# fold (--memory 0) too, and both equal COPY across DST changes, local mean
# time offsets with seconds, BC dates, infinity, in the worker's own zone too.
source "$(dirname "$0")/lib.sh"
source_db text_settings_tz text_settings_tz
unset PGTZ
q $DB "CREATE TYPE stamped AS (at timestamptz, n int);
       CREATE DOMAIN stamp AS timestamptz NOT NULL CHECK (VALUE < '2100-01-01');
       CREATE TABLE t (id int PRIMARY KEY, tz timestamptz, arr timestamptz[], r tstzrange, mr tstzmultirange,
                       c stamped, d stamp, ds stamp[], tt timetz, ts timestamp, note text);
       INSERT INTO t VALUES (1, '2010-01-02 10:00+00', '{2010-01-02 10:00+00,infinity}',
                             '[2010-01-02 10:00+00,2010-01-02 11:00+00)', '{[2010-01-02 10:00+00,2010-01-02 11:00+00)}',
                             ROW('2010-01-02 10:00+00', 1), '2010-01-02 10:00+00', '{2010-07-01 00:00+00}',
                             '10:00+05:30', '2010-01-02 10:00', '2010-01-02 10:00+00');
       CREATE TABLE big (id int PRIMARY KEY, tz timestamptz, arr timestamptz[], r tstzrange, c stamped, d stamp,
                         ds stamp[], tt timetz, n int);
       CREATE FUNCTION big_row(g int) RETURNS big LANGUAGE sql AS \$\$
         SELECT g, v, ARRAY[v, v + interval '6 months'], tstzrange(v, v + interval '1 hour'), ROW(v, g)::stamped,
                least(v, '2099-01-01+00'), ARRAY[least(v, '2099-01-01+00')]::stamp[], '10:00+05:30'::timetz, g
         FROM (SELECT CASE g % 8 WHEN 0 THEN 'infinity'::timestamptz WHEN 1 THEN '-infinity'
                 WHEN 2 THEN '0044-03-15 12:00:00.25+00 BC'::timestamptz + g * interval '1 day'
                 WHEN 3 THEN '1850-01-01 00:00+00'::timestamptz + g * interval '1 hour'
                 WHEN 4 THEN '2010-03-14 08:00+00'::timestamptz + g * interval '1 minute'
                 WHEN 5 THEN '2010-03-14 08:00:00.5+00'::timestamptz + g * interval '1 minute'
                 WHEN 6 THEN '2010-11-07 07:00+00'::timestamptz + g * interval '1 minute'
                 ELSE '1942-09-01 00:00+00'::timestamptz + g * interval '1 day' END) x(v) \$\$;
       INSERT INTO big SELECT (big_row(g)).* FROM generate_series(1, 400) g"
export PGTZ=Asia/Kolkata
w_setup
BASE=$(q $DB "$H SELECT max(id) FROM revision")
# big as of the baseline, in another zone: its keyframe alone (no key asked of its chunks) is printed again too
PGTZ=America/Los_Angeles $PSQL -d "$DB" -c "COPY big TO STDOUT" | LC_ALL=C sort >"$TMP/big_base"
q $DB "CREATE TABLE k (tz timestamptz, r tstzrange, tt timetz);
       INSERT INTO t VALUES (2, '2010-07-01 00:00:00.5+00', NULL, 'empty', '{}', ROW(NULL, 2), '-infinity', '{}',
                             '23:59:59-08', NULL, 'x'),
                            (3, NULL, '{NULL}', '(,2010-01-02 10:00+00]', NULL, NULL, '2010-01-02 10:00+00', NULL,
                             NULL, NULL, NULL);
       UPDATE t SET tz = tz + interval '1 hour', r = tstzrange(lower(r), upper(r) + interval '1 day') WHERE id = 1;
       INSERT INTO k VALUES ('2010-01-02 10:00+00', '[2010-01-02 10:00+00,)', '10:00+05:30'),
                            ('2010-01-02 10:00+00', '[2010-01-02 10:00+00,)', '10:00+05:30'), (NULL, NULL, NULL);
       UPDATE big SET tz = tz + interval '30 minutes', c = ROW((c).at, (c).n + 1) WHERE id % 3 = 0;
       UPDATE big SET arr = NULL, r = 'empty', ds = '{}' WHERE id % 5 = 0;
       DELETE FROM big WHERE id % 7 = 0;
       INSERT INTO big SELECT (big_row(g)).* FROM generate_series(401, 440) g;
       UPDATE big SET tz = '2010-03-14 10:00+00', r = '[2010-11-07 08:59:59.999999+00,2010-11-07 09:00+00]'
         WHERE id IN (4, 404)"
expect_eq "the worker's session prints in its own zone" \
  "$(q $DB "SELECT '2010-01-02 10:00+00'::timestamptz")" '2010-01-02 15:30:00+05:30'
AT=$(current_lsn "$DB")
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
unset PGTZ

N=0
for zone in "" America/Los_Angeles PST8PDT; do
  if [ -n "$zone" ]; then export PGTZ=$zone; else unset PGTZ; fi
  for tab in t k; do
    $PSQL -d "$DB" -c "COPY (SELECT * FROM $tab) TO STDOUT" | LC_ALL=C sort >"$TMP/copy"
    W snapshot --at "$AT" --table "$tab" 2>"$TMP/err" | LC_ALL=C sort >"$TMP/snap" || { cat "$TMP/err"; fail "snapshot $tab"; }
    cmp -s "$TMP/copy" "$TMP/snap" || { diff "$TMP/copy" "$TMP/snap" >&2; fail "snapshot of $tab in zone '$zone' differs from COPY"; }
    $PSQL -d "$DB" -c "COPY (SELECT * FROM $tab) TO STDOUT WITH (FORMAT csv, HEADER)" | LC_ALL=C sort >"$TMP/copy"
    W snapshot --at "$AT" --table "$tab" --format csv 2>"$TMP/err" | LC_ALL=C sort >"$TMP/snap" || { cat "$TMP/err"; fail "csv $tab"; }
    cmp -s "$TMP/copy" "$TMP/snap" || { diff "$TMP/copy" "$TMP/snap" >&2; fail "csv snapshot of $tab in zone '$zone' differs"; }
    N=$((N + 2))
  done
  # json: each value its text, as the reader's session prints it
  W snapshot --at "$AT" --table t --format json 2>"$TMP/err" >"$TMP/json" || { cat "$TMP/err"; fail "json"; }
  python3 - "$TMP/json" >"$TMP/json.tz" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["id"] == "1" or row["id"] == 1:
        print(row["tz"], row["arr"], row["c"], row["tt"], sep="|")
PY
  expect_eq "json in zone '$zone'" "$(cat "$TMP/json.tz")" \
    "$(q $DB "SELECT tz, arr, c, tt FROM t WHERE id = 1")"
  N=$((N + 1))
done
expect_eq "snapshots compared" "$N" 15

expect_eq "big has the baseline's keyframe" \
  "$(q $DB "$H SELECT count(*) FROM keyframe WHERE relid = 'public.big'::regclass")" 1
# snapshot_rows() calls, counted (track_functions) in the history's sessions: the C fold makes none
q $DB "ALTER DATABASE $DB SET track_functions = 'pl'"
sql_folds() { q $DB "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'snapshot_rows'"; }
sql_folds_reach() { [ "$(sql_folds)" -ge "$1" ]; }
BEFORE=$(sql_folds)
N=0
for zone in "" America/Los_Angeles PST8PDT Asia/Kolkata; do
  if [ -n "$zone" ]; then export PGTZ=$zone; else unset PGTZ; fi
  for how in fold sql; do
    MEM=(); [ $how = sql ] && MEM=(--memory 0)
    for fmt in text csv; do
      HDR=""; [ $fmt = csv ] && HDR="WITH (FORMAT csv, HEADER)"
      $PSQL -d "$DB" -c "COPY big TO STDOUT $HDR" | LC_ALL=C sort >"$TMP/copy"
      W snapshot --at "$AT" --table big --format $fmt "${MEM[@]}" 2>"$TMP/err" | LC_ALL=C sort >"$TMP/snap" ||
        { cat "$TMP/err"; fail "snapshot big $how $fmt"; }
      cmp -s "$TMP/copy" "$TMP/snap" ||
        { diff "$TMP/copy" "$TMP/snap" >&2; fail "$how $fmt snapshot of big in zone '$zone' differs from COPY"; }
      N=$((N + 1))
    done
  done
done
expect_eq "snapshots of big compared" "$N" 16
PGTZ=America/Los_Angeles W snapshot --at "$BASE" --table big 2>"$TMP/err" | LC_ALL=C sort >"$TMP/snap_base" ||
  { cat "$TMP/err"; fail "snapshot big at the baseline"; }
cmp -s "$TMP/big_base" "$TMP/snap_base" || { diff "$TMP/big_base" "$TMP/snap_base" >&2; fail "big at the baseline differs"; }
OUT=$(W verify 2>&1) || { echo "$OUT"; fail "verify (big's keyframe read from its chunks)"; }
pass "verify: $OUT"
expect_eq "rows of big" "$(wc -l <"$TMP/snap")" "$(q $DB "SELECT count(*) + 1 FROM big")"
unset PGTZ
# the SQL fold ran once per --memory 0 snapshot, the C fold never
wait_for 10 sql_folds_reach $((BEFORE + 8)) || fail "snapshot_rows calls: $(sql_folds), from $BEFORE"
sleep 0.5
expect_eq "snapshot_rows calls: the --memory 0 snapshots' only" "$(sql_folds)" $((BEFORE + 8))
W snapshot --at "$AT" --table t >/dev/null 2>"$TMP/err" || { cat "$TMP/err"; fail "snapshot t"; }
sleep 1
expect_eq "t (no keyframe, deltas only) is folded in C too" "$(sql_folds)" $((BEFORE + 8))

# --into: the loaded table reads as the source does (the text was read in one zone, written in another)
PGTZ=America/Los_Angeles W snapshot --at "$AT" --table t --into asof 2>"$TMP/err" || { cat "$TMP/err"; fail into; }
expect_eq "--into holds the same instants" \
  "$($PSQL -d "$DB" -c "COPY (SELECT * FROM asof.t) TO STDOUT" | LC_ALL=C sort)" \
  "$($PSQL -d "$DB" -c "COPY (SELECT * FROM public.t) TO STDOUT" | LC_ALL=C sort)"

# csv_cols FIELD=VALUE... -- FIELD...: of the CSV on stdin (header first), the
# rows whose fields have those values, their FIELDs joined by '|', a line each
csv_cols() {
  python3 -c '
import csv, sys
args = sys.argv[1:]
sep = args.index("--")
conds = [a.split("=", 1) for a in args[:sep]]
for row in csv.DictReader(sys.stdin):
    if all(row[k] == v for k, v in conds):
        print("|".join(row[o] for o in args[sep + 1:]))' "$@"
}
# history, blame and diff: the values in the reader's zone, as a SELECT there prints them
for zone in "" America/Los_Angeles Asia/Kolkata; do
  if [ -n "$zone" ]; then export PGTZ=$zone; else unset PGTZ; fi
  W history --table t --key 1 --format csv >"$TMP/h" 2>"$TMP/err" || { cat "$TMP/err"; fail "history t 1"; }
  expect_eq "history of t 1 in zone '$zone'" "$(csv_cols op=U column=tz -- old_value new_value <"$TMP/h")" \
    "$(q $DB "SELECT (tz - interval '1 hour')::text || '|' || tz::text FROM t WHERE id = 1")"
  W history --table big --key 3 --format csv >"$TMP/h" 2>"$TMP/err" || { cat "$TMP/err"; fail "history big 3"; }
  expect_eq "history of big 3 (local mean time, a composite) in zone '$zone'" \
    "$(csv_cols op=U column=tz -- old_value new_value <"$TMP/h"; csv_cols op=U column=c -- old_value new_value <"$TMP/h")" \
    "$(q $DB "SELECT (tz - interval '30 minutes')::text || '|' || tz::text FROM big WHERE id = 3"
       q $DB "SELECT ROW((c).at, (c).n - 1)::stamped::text || '|' || c::text FROM big WHERE id = 3")"
  W blame --table t --key 1 --format csv >"$TMP/b" 2>"$TMP/err" || { cat "$TMP/err"; fail "blame t 1"; }
  expect_eq "blame of t 1 in zone '$zone'" \
    "$(for c in tz arr r mr c d ds tt ts note; do csv_cols column=$c -- value <"$TMP/b"; done)" \
    "$(q $DB "SELECT concat_ws(E'\n', tz, arr, r, mr, c, d, ds, tt, ts, note) FROM t WHERE id = 1")"
  W diff "$BASE" "$AT" --table t --format csv >"$TMP/d" 2>"$TMP/err" || { cat "$TMP/err"; fail "diff t"; }
  expect_eq "diff of t in zone '$zone'" \
    "$(csv_cols 'key=["1"]' column=tz -- old_value new_value <"$TMP/d"; csv_cols 'key=["3"]' column=r -- new_value <"$TMP/d")" \
    "$(q $DB "SELECT (tz - interval '1 hour')::text || '|' || tz::text FROM t WHERE id = 1"
       q $DB "SELECT r FROM t WHERE id = 3")"
done
unset PGTZ

# A CHECK added since NOT VALID: an old value in an array of the domain still
# prints (through timestamptz[], not stamp[], whose elements would be checked)
q $DB "ALTER DOMAIN stamp ADD CONSTRAINT later CHECK (VALUE > '2011-01-01') NOT VALID"
$PSQL -d "$DB" -c "COPY t TO STDOUT" | LC_ALL=C sort >"$TMP/copy"
for how in fold sql; do
  MEM=(); [ $how = sql ] && MEM=(--memory 0)
  W snapshot --at "$AT" --table t "${MEM[@]}" 2>"$TMP/err" | LC_ALL=C sort >"$TMP/snap" ||
    { cat "$TMP/err"; fail "$how snapshot of t after the domain's new CHECK"; }
  cmp -s "$TMP/copy" "$TMP/snap" || { diff "$TMP/copy" "$TMP/snap" >&2; fail "$how snapshot of t differs"; }
  pass "$how snapshot of t with a stamp[] value the domain's new CHECK refuses"
done

# A retype: the restated rows' old values are text of the type before; one the
# new type refuses ('x') prints as recorded, the new values in the reader's zone
export PGTZ=Asia/Kolkata
q $DB "ALTER DOMAIN stamp DROP CONSTRAINT later;
       ALTER TABLE t ALTER COLUMN note TYPE timestamptz USING CASE WHEN note = 'x' THEN NULL ELSE note::timestamptz END"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
unset PGTZ
W history --table t --key 2 --format csv >"$TMP/h" 2>"$TMP/err" || { cat "$TMP/err"; fail "history t 2"; }
expect_eq "history of t 2's retyped note" "$(csv_cols column=note -- op old_value new_value <"$TMP/h" | tail -1)" "U|x|"
W history --table t --key 1 --format csv >"$TMP/h" 2>"$TMP/err" || { cat "$TMP/err"; fail "history t 1"; }
expect_eq "history of t 1's retyped note: the new value in the reader's zone" \
  "$(csv_cols column=note -- new_value <"$TMP/h" | tail -1)" "$(q $DB "SELECT note FROM t WHERE id = 1")"
