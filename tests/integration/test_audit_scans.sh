#!/usr/bin/env bash
# The audit commands read what they answer and not the whole history (issue
# 16, P5 and Q): `walrev log --actor A --since T1 --until T2` and `walrev
# history --limit N` of a key holding most of a table's changes, on a store of
# 20,000 revisions, read no row of revision or object_delta by a sequential
# scan (pg_stat_user_tables.seq_tup_read: a quarantine check planned as a hash of
# every revision, a time point resolved by sorting every revision before it,
# a key check planned as a sequential scan to the hot key's first change each
# did), and answer as before: resolve_point of a time (windows through the
# BRIN on commit_time, widened until one holds a revision) is the newest
# revision committed at or before it, ties and long gaps included, and log
# lists exactly the actor's revisions of the range. And each of `history`,
# `blame` and `log --since --until` runs two statements (round trips) before its
# own query.
source "$(dirname "$0")/lib.sh"
source_db auditscans auditscans

q $DB "CREATE TABLE t (id int PRIMARY KEY, a int, b text);
       INSERT INTO t SELECT g, g, 'b' || g FROM generate_series(1, 3) g;"
w_setup
RELID=$(q $DB "SELECT 't'::regclass::oid")
BASE=$(q $DB "$H SELECT max(id) FROM revision")
VER=$(q $DB "$H SELECT max(version) FROM relation_version WHERE relid = $RELID")
LSN=$(q $DB "$H SELECT max(end_lsn) FROM revision")

# 20,000 one-update revisions a second apart in 2020 (key 4, not among the
# baseline's, holds 16,200 of them from the 2,001st on; 50 actors), two of them with the same commit time, and the last ten
# 40 days after the others (a gap wider than the widest window)
N=20000
q $DB "$H
  INSERT INTO revision (id, xid, commit_lsn, end_lsn, commit_time, actor_type, actor_id, n_update, checksum)
  SELECT $BASE + g, 100000 + g, '$LSN'::pg_lsn + g * 100, '$LSN'::pg_lsn + g * 100 + 8,
         timestamptz '2020-01-01 00:00:00+00' + (CASE WHEN g = 10001 THEN 10000 ELSE g END) * interval '1 s'
           + CASE WHEN g > $N - 10 THEN interval '40 days' ELSE interval '0' END,
         'user', (g % 50)::text, 1, '\\x00'
  FROM generate_series(1, $N) g;
  INSERT INTO revision_context (revision_id, context_no, lsn, actor_type, actor_id, raw)
  SELECT $BASE + g, 1, '$LSN'::pg_lsn + g * 100, 'user', (g % 50)::text, '{}' FROM generate_series(1, $N) g;
  INSERT INTO object_delta (revision_id, seq, relid, relversion, op, key, context_no, col_id, old_value, new_value)
  SELECT $BASE + g, 1, $RELID, $VER, 'U', '[\"' || CASE WHEN g <= 2000 OR g % 10 = 0 THEN 5 ELSE 4 END || '\"]', 1, 2,
         (g - 1)::text, g::text
  FROM generate_series(1, $N) g;" >/dev/null
for tbl in revision revision_context object_delta; do
  for p in $(q $DB "SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'walrev.$tbl'::regclass"); do
    q $DB "VACUUM ANALYZE $p" >/dev/null
  done
done
[ "$(q $DB "$H SELECT count(DISTINCT commit_time) FROM revision WHERE id IN ($BASE + 10000, $BASE + 10001)")" = 1 ] ||
  fail "the two revisions meant to share a commit time do not"

# resolve_point of a time: the newest revision committed at or before it, as
# the full sort says; on every kind of point (on a commit, between two, on the
# tie, in the 40-day gap, after the newest)
REF="SELECT id FROM walrev.revision WHERE commit_time <= \$1 ORDER BY commit_time DESC, id DESC LIMIT 1"
q $DB "CREATE OR REPLACE FUNCTION public.ref_point(ts timestamptz) RETURNS bigint LANGUAGE sql AS \$\$ $REF \$\$"
bad=$(q $DB "$H
  WITH pts AS (
    SELECT commit_time + d AS ts FROM revision, unnest(ARRAY[interval '0', interval '0.5 s', interval '-0.5 s']) d
    WHERE id % 997 = 0 OR id IN ($BASE + 10000, $BASE + 10001, $BASE + $N - 10, $BASE + $N - 11, $BASE + $N)
    UNION ALL SELECT commit_time + d FROM revision, unnest(ARRAY[interval '1 minute', interval '2 hours',
                                                              interval '2 days', interval '35 days']) d
    WHERE id = $BASE + $N - 11)
  SELECT count(*) FILTER (WHERE walrev.resolve_point(ts::text) IS DISTINCT FROM public.ref_point(ts)),
         count(*) FROM pts")
[ "${bad%%|*}" = 0 ] || fail "resolve_point differs from the full sort at ${bad%%|*} of ${bad#*|} times"
pass "resolve_point of ${bad#*|} times (on commits, between, a tie, in a 40-day gap) is the full sort's revision"

# rows read by sequential scans of revision's and object_delta's partitions,
# summed (an empty partition is scanned at no cost)
SEQ="SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_user_tables WHERE relid IN
       (SELECT inhrelid FROM pg_inherits WHERE inhparent IN ('walrev.revision'::regclass, 'walrev.object_delta'::regclass))"
# scans CMD...: the rows those partitions' sequential scans read while CMD ran
# (its output in $TEST_TMP/out)
scans() {
  local before after
  before=$(stat_settled "$SEQ") || exit 1
  "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || { cat "$TEST_TMP/err"; fail "$*"; }
  after=$(stat_settled "$SEQ") || exit 1
  echo $((after - before))
}

T1=$(q $DB "$H SELECT commit_time FROM revision WHERE id = $BASE + 2000")
T2=$(q $DB "$H SELECT commit_time FROM revision WHERE id = $BASE + $N")
n=$(scans W log --actor user:7 --since "$T1" --until "$T2" --format csv)
expect_eq "log --actor user:7 over the range: the actor's revisions, newest first" \
  "$(tail -n +2 "$TEST_TMP/out" | cut -d, -f1,3,4 | paste -sd' ')" \
  "$(q $DB "$H SELECT revision_id || ',user,7' FROM revision_context WHERE actor_id = '7'
             AND revision_id > $BASE + 2000 AND revision_id <= $BASE + $N ORDER BY revision_id DESC" | paste -sd' ')"
[ "$n" = 0 ] || fail "log --actor --since --until read $n rows of revision/object_delta sequentially"
pass "log --actor over two time points read no partition sequentially"

# the hot key's newest five changes, oldest first
NEWEST5=$(q $DB "$H SELECT revision_id FROM (SELECT revision_id FROM object_delta WHERE key = '[\"4\"]'
                    ORDER BY revision_id DESC LIMIT 5) x ORDER BY 1" | paste -sd' ')
n=$(scans W history --table t --key 4 --limit 5 --format csv)
expect_eq "history --limit 5 of the hot key: its newest five changes" \
  "$(tail -n +2 "$TEST_TMP/out" | cut -d, -f1 | paste -sd' ')" \
  "$NEWEST5"
[ "$n" = 0 ] || fail "history --limit 5 of a key with 16,200 changes read $n rows sequentially"
pass "history --limit 5 of a key with 16,200 changes read no partition sequentially"

# Statements per command (issue 16, P5 and Q): each is a round trip, and on a
# busy server each waits to be scheduled. `history` and `blame` resolve the
# table, its members, the key's first change and (blame without --at) the
# newest revision in one statement; `log` resolves --since and --until in one.
# Counted from the server's log with log_statement = all on this database: one
# line per simple query string or extended-protocol execute.
LOGF="$WALREV_TEST_PGDIR/server.log"
q $DB "ALTER DATABASE $DB SET log_statement = 'all'" >/dev/null
on_exit "$PSQL -d $DB -c 'ALTER DATABASE $DB RESET log_statement' >/dev/null 2>&1"
# statements PATTERN CMD...: the statements logged by $DB's sessions while CMD
# ran before the first one matching PATTERN (the command's own query; what
# it runs after that, e.g. the reader's time zone, is not counted here)
statements() {
  local from pat=$1
  shift
  from=$(stat -c %s "$LOGF")
  "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || { cat "$TEST_TMP/err" >&2; fail "$*"; }
  # awk reads to the end (no early exit, no grep that finds nothing): under
  # pipefail a writer cut off by SIGPIPE, or grep's status 1, ended the test
  # silently (exit 141, about one run in three)
  tail -c +$((from + 1)) "$LOGF" |
    awk -v p="$pat" '!/LOG:  (statement|execute [^:]*): / || done { next } $0 ~ p { done = 1; next } { n++ } END { print n + 0 }'
}
n=$(statements 'object_history' W history --table t --key 4 --limit 5 --format csv)
expect_eq "history --limit 5 after its statements were merged: the same newest five" \
  "$(tail -n +2 "$TEST_TMP/out" | cut -d, -f1 | paste -sd' ')" "$NEWEST5"
[ "$n" = 2 ] || fail "history --table --key --limit ran $n statements before its history, expected 2 (begin, the object)"
n=$(statements 'blame\(' W blame --table t --key 1 --format csv)
expect_eq "blame of key 1: its baseline row's columns" \
  "$(tail -n +2 "$TEST_TMP/out" | cut -d, -f1-3 | paste -sd' ')" \
  "$(q $DB "$H SELECT string_agg(column_name || ',' || value || ',' || revision, ' ') FROM blame($RELID, '[\"1\"]')")"
[ "$n" = 2 ] || fail "blame --table --key ran $n statements before blame(), expected 2 (begin, the object and newest revision)"
n=$(statements 'revision_log' W log --actor user:7 --since "$T1" --until "$T2" --format csv)
[ "$(tail -n +2 "$TEST_TMP/out" | wc -l)" = "$(q $DB "$H SELECT count(*) FROM revision_context WHERE actor_id = '7'
   AND revision_id > $BASE + 2000 AND revision_id <= $BASE + $N")" ] || fail "log --actor lists other revisions"
[ "$n" = 2 ] || fail "log --actor --since --until ran $n statements before the log, expected 2 (begin, both points)"
pass "history, blame and log --since --until each ran 2 statements before their own query"
