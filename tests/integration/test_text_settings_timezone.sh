#!/usr/bin/env bash
# A timestamptz prints by the session's TimeZone, and so does everything
# holding one (array, range, multirange, domain, composite): the walsender
# printed it in the worker's zone (PGTZ=Asia/Kolkata here, on a server whose
# default is UTC). `walrev snapshot` prints it again in its own session's
# zone, so it equals a COPY of the table in the reader's environment, byte
# for byte: the server's default, and PGTZ=America/Los_Angeles (PostgreSQL's
# regression harness exports PGTZ=PST8PDT). A timetz carries its own offset
# and other values are given as stored. Keyed and keyless, text, csv, json
# and --into; history prints the stored text.
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
                             '10:00+05:30', '2010-01-02 10:00', '2010-01-02 10:00+00')"
export PGTZ=Asia/Kolkata
W setup >"$TMP/setup.out" 2>&1 || { cat "$TMP/setup.out"; fail setup; }
q $DB "CREATE TABLE k (tz timestamptz, r tstzrange, tt timetz);
       INSERT INTO t VALUES (2, '2010-07-01 00:00:00.5+00', NULL, 'empty', '{}', ROW(NULL, 2), '-infinity', '{}',
                             '23:59:59-08', NULL, 'x'),
                            (3, NULL, '{NULL}', '(,2010-01-02 10:00+00]', NULL, NULL, '2010-01-02 10:00+00', NULL,
                             NULL, NULL, NULL);
       UPDATE t SET tz = tz + interval '1 hour', r = tstzrange(lower(r), upper(r) + interval '1 day') WHERE id = 1;
       INSERT INTO k VALUES ('2010-01-02 10:00+00', '[2010-01-02 10:00+00,)', '10:00+05:30'),
                            ('2010-01-02 10:00+00', '[2010-01-02 10:00+00,)', '10:00+05:30'), (NULL, NULL, NULL)"
expect_eq "the worker's session prints in its own zone" \
  "$(q $DB "SELECT '2010-01-02 10:00+00'::timestamptz")" '2010-01-02 15:30:00+05:30'
AT=$(current_lsn "$DB")
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
unset PGTZ
# history, blame and diff print what was recorded: the worker's zone's text
grep -q '2010-01-02 16:30:00+05:30' <(W history --table t --key 1 --format csv 2>&1) ||
  fail "history of t 1 does not print the recorded text"

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

# --into: the loaded table reads as the source does (the text was read in one zone, written in another)
PGTZ=America/Los_Angeles W snapshot --at "$AT" --table t --into asof 2>"$TMP/err" || { cat "$TMP/err"; fail into; }
expect_eq "--into holds the same instants" \
  "$($PSQL -d "$DB" -c "COPY (SELECT * FROM asof.t) TO STDOUT" | LC_ALL=C sort)" \
  "$($PSQL -d "$DB" -c "COPY (SELECT * FROM public.t) TO STDOUT" | LC_ALL=C sort)"
