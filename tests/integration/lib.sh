# lib.sh — shared helpers for shell integration tests. Source it; it expects
# WALREV_TEST_PGDIR (the cluster started by the pg.start fixture) and WALREV_BIN.
#
# Why: each test used to write out its own set-up, run and wait steps, and
# the copies drifted (fixed /tmp logs, unbounded loops, failures that did not
# show the log). A step two tests share lives here, once:
#   set-up     source_db (a fresh database, its conninfo, W), source_conf /
#              kafka_conf / late_tables_conf (walrev.conf), history_cluster,
#              w_setup (`W setup` that must succeed)
#   running    must (a command that must succeed, its output kept and shown
#              on failure), run_w (one that may fail, its output and status
#              kept for the test to check), run_to / run_to_now (the worker to an LSN),
#              worker_start / worker_up (in the background), worker_stop /
#              worker_down / worker_kill
#   waiting    wait_for (poll a check with a bound), q_is (the usual check),
#              wait_alive (wait_for while the worker lives), marker_catch_up /
#              marker_caught_up (the worker has recorded everything so far),
#              stat_settled, slot_idle
#   checking   expect_eq, expect_verify, point / snapshot_points, expect_*
# What they own and clean up: TEST_TMP (this test's directory: removed when it
# passes, kept and named when it fails), the databases' slots (fresh_db drops
# them at exit), a history_cluster (stopped at exit), and whatever the test
# registers with on_exit / kill_at_exit (workers, lockers, mock brokers). A
# background process a test starts without registering it is the test's own.
set -euo pipefail

: "${WALREV_TEST_PGDIR:?run through ctest (pg.start fixture)}"
: "${WALREV_BIN:?run through ctest}"
PGPORT=$(cat "$WALREV_TEST_PGDIR/port")
export PGPORT PGHOST=127.0.0.1 PGUSER=postgres
PSQL="psql -X -q -v ON_ERROR_STOP=1 -At"

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# must OUT WHAT CMD ARG...: run CMD, its stdout and stderr written to the file
# OUT (which the test may read afterwards); when it fails, OUT is shown and
# the test fails with WHAT. The one form of the `CMD >OUT 2>&1 || { cat OUT;
# fail WHAT; }` every test wrote out by hand.
must() {
  local out=$1 what=$2
  shift 2
  "$@" >"$out" 2>&1 || { cat "$out"; fail "$what"; }
}

# w_setup [ARG...]: `W setup ARG...` (W as the test defined it, e.g. by
# source_db) must succeed: its output in $TEST_TMP/setup.out, shown when it
# fails (the check "setup").
w_setup() { must "$TEST_TMP/setup.out" setup W setup "$@"; }

# run_w NAME ARG...: `W ARG...`, which may fail: its stdout in
# $TEST_TMP/NAME.out, its stderr in $TEST_TMP/NAME.err and its exit status in
# rc, for the test to check (a usage error's exit 2 and message, say).
run_w() {
  local name=$1
  shift
  rc=0
  W "$@" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" || rc=$?
}

# TEST_TMP: a directory of this test's own for logs and scratch files (never a
# fixed /tmp path, which two runs at once would share). Removed when the test
# passes (unless KEEP_TEST_TMP is set), kept and named when it fails.
# Commands for the exit go through
# on_exit, which runs them (the last registered first) before that: a test's own `trap ... EXIT` would
# replace this one.
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/walrev-$(basename "$0" .sh).XXXXXX")
_EXIT_CMDS=()
on_exit() { _EXIT_CMDS+=("$*"); }
_lib_exit() {
  local rc=$? c
  local i
  # last registered first: a worker started after its database goes before the database's slots
  for ((i = ${#_EXIT_CMDS[@]} - 1; i >= 0; i--)); do eval "${_EXIT_CMDS[$i]}" || true; done
  if [ "$rc" = 0 ] && [ -z "${KEEP_TEST_TMP:-}" ]; then rm -rf "$TEST_TMP"; else echo "# files of the test: $TEST_TMP" >&2; fi
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS CMD...: run CMD every 0.1 s until it succeeds; returns 1
# when SECONDS pass first (the caller says what that means: `|| fail ...`).
wait_for() {
  local tenths=$(($1 * 10)) i
  shift
  for ((i = 0; i < tenths; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# q_is DB SQL EXPECTED: true when SQL on DB prints EXPECTED; the check most
# waits poll (`wait_for 30 q_is "$DB" "SELECT ..." t`).
q_is() { [ "$(q "$1" "$2")" = "$3" ]; }

# wait_alive SECONDS CMD...: wait_for, while the worker $wpid lives: when it
# dies first, the end of $TMP/run.log is shown and the test fails ("the
# worker died"); returns 1 when SECONDS pass first.
wait_alive() {
  local seconds=$1
  shift
  wait_for "$seconds" _true_or_worker_alive "$@"
}
_true_or_worker_alive() {
  "$@" && return 0
  kill -0 "$wpid" 2>/dev/null || { tail -40 "$TMP/run.log"; fail "the worker died"; }
  return 1
}

# stat_settled SQL: SQL (a sum of pg_stat_user_tables counters in $DB) once
# two reads 0.2 s apart agree, i.e. other backends' late flushes (an exiting
# one flushes its counters late) are in; prints it. Fails the test after 10 s.
stat_settled() {
  local a b i
  a=$(q "$DB" "$1")
  for i in $(seq 1 50); do
    sleep 0.2
    b=$(q "$DB" "$1")
    [ "$a" = "$b" ] && { echo "$b"; return 0; }
    a=$b
  done
  fail "the counters of '$1' did not settle"
}

# run_to LSN LOG ARG... [-- RUN_ARG...]: `walrev ARG... run --stop-lsn LSN
# RUN_ARG...`, its stderr appended to LOG. When it fails, or outlasts
# RUN_TIMEOUT seconds (default 300), the end of LOG is shown and the test fails.
run_to() {
  local lsn=$1 log=$2 before=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do before+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  if ! timeout "${RUN_TIMEOUT:-300}" "$WALREV_BIN" "${before[@]}" run --stop-lsn "$lsn" "$@" 2>>"$log"; then
    tail -40 "$log" >&2
    fail "walrev run to $lsn"
  fi
}

# start_mock_kafka DIR: librdkafka's mock cluster (one broker) in its own
# process (walrev-mock-kafka: SIGUSR1 takes the brokers down, SIGUSR2 brings
# them back), its log DIR/mock.log; sets MOCK_PID and BROKERS (the bootstrap
# servers). The test stops it (kill "$MOCK_PID") in its cleanup.
start_mock_kafka() {
  : "${WALREV_MOCK_KAFKA:?run through ctest}"
  "$WALREV_MOCK_KAFKA" 1 >"$1/bootstrap" 2>"$1/mock.log" &
  MOCK_PID=$!
  wait_for 5 test -s "$1/bootstrap" || true
  BROKERS=$(head -1 "$1/bootstrap")
  [ -n "$BROKERS" ] || fail "mock cluster did not start"
}

# source_conf SLOT <<CONF ... CONF: $TEST_TMP/walrev.conf written for the
# source $SRC and SLOT ([source] conninfo and slot), then the lines read from
# stdin (more of [source], the other sections); W ARG... runs walrev with
# that file.
source_conf() {
  {
    printf '[source]\nconninfo = %s\nslot = %s\n' "$SRC" "$1"
    cat
  } >"$TEST_TMP/walrev.conf"
  W() { "$WALREV_BIN" -c "$TEST_TMP/walrev.conf" "$@"; }
}

# kafka_conf SLOT PREFIX [LINE...]: librdkafka's mock cluster started
# (start_mock_kafka; mpid is its pid, for the test's cleanup to stop) and
# $TMP/walrev.conf written for it (source_conf): the source $SRC and SLOT,
# [kafka] at the mock's brokers with topic_prefix PREFIX and each LINE; W
# ARG... runs walrev with that file.
kafka_conf() {
  local slot=$1 prefix=$2
  shift 2
  start_mock_kafka "$TMP"
  mpid=$MOCK_PID
  source_conf "$slot" < <(
    printf '[kafka]\nbootstrap.servers = %s\ntopic_prefix = %s\n' "$BROKERS" "$prefix"
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
  )
}

# worker_start LOG ARG...: `walrev ARG... run` in the background, its stderr
# appended to LOG, its stdout appended to WORKER_OUT (default /dev/null); sets
# WORKER_PID. worker_stop [PID] ends it with SIGTERM and returns its exit
# status; worker_kill [PID] ends it with SIGKILL, whatever its status.
worker_start() {
  local log=$1
  shift
  "$WALREV_BIN" "$@" run >>"${WORKER_OUT:-/dev/null}" 2>>"$log" &
  WORKER_PID=$!
}
worker_stop() {
  local pid=${1:-$WORKER_PID} rc=0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  return "$rc"
}
worker_kill() {
  local pid=${1:-$WORKER_PID}
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# worker_up ARG...: worker_start with $TMP/run.log as its log, its pid in wpid
# (what marker_catch_up, expect_clean_stop and worker_down read). worker_down:
# SIGTERM to the worker $wpid, which must exit 0, else the end of $TMP/run.log
# and the test fails; wpid is cleared.
worker_up() {
  worker_start "$TMP/run.log" "$@"
  wpid=$WORKER_PID
}
worker_down() { worker_stop "$wpid" || { tail -20 "$TMP/run.log"; fail "the worker did not stop cleanly"; }; wpid=; }

conninfo() { echo "host=127.0.0.1 port=$PGPORT user=postgres dbname=$1"; }

# fresh_db NAME: drop slots and database of a previous run, create it.
# Its slots are dropped again when the test ends: every test shares the
# fixture cluster's max_replication_slots, and a slot left behind also keeps
# WAL for good.
fresh_db() {
  $PSQL -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$1'" >/dev/null
  $PSQL -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\""
  on_exit "$PSQL -d postgres -c \"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '$1' AND NOT active\" >/dev/null 2>&1"
}

# source_db DB [SLOT]: the test's source database, made afresh (fresh_db).
# Sets DB, SRC (its conninfo), TMP (= TEST_TMP), LOG ($TMP/run.log) and H
# (the history schema on the search path, a prefix for queries of the
# store); with SLOT also SLOT, and W ARG... runs `walrev --source $SRC --slot
# $SLOT ARG...`. A test with a W of its own defines it after this.
source_db() {
  DB=$1
  fresh_db "$DB"
  SRC=$(conninfo "$DB")
  TMP=$TEST_TMP
  LOG=$TMP/run.log
  H="SET search_path = walrev;"
  if [ $# -gt 1 ]; then
    SLOT=$2
    W() { "$WALREV_BIN" --source "$SRC" --slot "$SLOT" "$@"; }
  fi
}

q() { local db=$1; shift; $PSQL -d "$db" -c "$*"; }

# history_cluster: a second cluster in $TMP/hist (another server for the
# history store), stopped when the test ends, with an empty database hist.
# Sets HC (its directory), HPORT, HIST (the store's conninfo) and HQ SQL
# (psql on hist).
history_cluster() {
  HC=$TMP/hist
  on_exit "bash \"$WALREV_SOURCE_DIR/tests/support/pgcluster.sh\" stop \"$HC\" >/dev/null 2>&1 || true"
  bash "$WALREV_SOURCE_DIR/tests/support/pgcluster.sh" start "$HC" >/dev/null || fail "history cluster did not start"
  HPORT=$(cat "$HC/port")
  HIST="host=127.0.0.1 port=$HPORT user=postgres dbname=hist"
  HQ() { $PSQL -h 127.0.0.1 -p "$HPORT" -d hist -c "$1"; }
  $PSQL -h 127.0.0.1 -p "$HPORT" -d postgres -c "CREATE DATABASE hist"
}


# upgrade_by_setup FORMAT: the worker refuses the store of format FORMAT
# (naming it and `walrev setup`), then setup, run twice (it is idempotent),
# upgrades it in place.
upgrade_by_setup() {
  local f=$1
  if W run --stop-lsn "$(current_lsn "$DB")" >"$TMP/refused$f.out" 2>&1; then fail "run on a format $f store"; fi
  grep -q "has format_version $f, this walrev needs 7: run \`walrev setup\`" "$TMP/refused$f.out" ||
    { cat "$TMP/refused$f.out"; fail "the refusal names the format"; }
  pass "the worker refuses a format $f store"
  for i in 1 2; do
    W setup >"$TMP/setup${f}_$i.out" 2>&1 || { cat "$TMP/setup${f}_$i.out"; fail "setup $i on the format $f store"; }
  done
}

# q_at NAME SQL...: q "$DB" SQL, then NAME=current_lsn: the point just after
# the statement, for --at and --stop-lsn.
q_at() {
  local name=$1
  shift
  q "$DB" "$@"
  printf -v "$name" '%s' "$(current_lsn "$DB")"
}

# late_tables_conf CHUNK_ROWS: $TMP/walrev.conf for a FOR TABLE publication
# of public.base alone (so that tables can join it later, each with a
# baseline of its own) read in chunks of CHUNK_ROWS rows; W ARG... runs
# walrev with that file, $SRC and $SLOT.
late_tables_conf() {
  printf '[source]\ntables = public.base\n[worker]\nbackfill_chunk_rows = %s\n' "$1" >"$TMP/walrev.conf"
  W() { "$WALREV_BIN" -c "$TMP/walrev.conf" --source "$SRC" --slot "$SLOT" "$@"; }
}

# backfill_state TABLE: the state of public.TABLE's baseline in the history's
# backfill table ($H), none without a row; backfill_state_is TABLE STATE.
backfill_state() { q "$DB" "$H SELECT coalesce((SELECT state FROM backfill WHERE relid = 'public.$1'::regclass), 'none')"; }
backfill_state_is() { [ "$(backfill_state "$1")" = "$2" ]; }

# expect_whole_from TABLE: WHOLE is backfill.whole_from of public.TABLE (the
# revision from which the history holds all its rows); fails unless it is one.
expect_whole_from() {
  WHOLE=$(q "$DB" "$H SELECT whole_from FROM backfill WHERE relid = 'public.$1'::regclass")
  [ "$WHOLE" -gt 0 ] 2>/dev/null || fail "$1's whole_from is a revision ($WHOLE)"
}

# expect_refused WHAT PATTERN ARG...: `W ARG...` fails (else the test fails:
# "WHAT answered") with output that matches the grep PATTERN (else: "WHAT:
# the refusal does not say PATTERN"), the output shown either way.
expect_refused() {
  local what=$1 pattern=$2 out
  shift 2
  out=$(W "$@" 2>&1) && fail "$what answered: $out"
  grep -q -- "$pattern" <<<"$out" || fail "$what: the refusal does not say '$pattern': $out"
}

# expect_snapshot_refused TABLE POINT WHEN PATTERN WHAT: `W snapshot` of TABLE
# at POINT fails (else: "a snapshot of TABLE WHEN answered") with output that
# matches the grep PATTERN (else the check WHAT fails, showing the output).
expect_snapshot_refused() {
  local out
  out=$(W snapshot --table "$1" --at "$2" 2>&1) && fail "a snapshot of $1 $3 answered: $out"
  grep -q "$4" <<<"$out" || fail "$5: $out"
}

# expect_unpublished TABLE N: walrev refuses TABLE at table-point N (LSN[N]),
# naming its removal from the publication, and the point leaves the
# comparison (snapshot_points skips a table-point without its file).
expect_unpublished() {
  expect_snapshot_refused "$1" "${LSN[$2]}" "at point $2 (out of the publication)" \
    "table $1 is not published at revision [0-9]*: it was removed from the publication in revision [0-9]*" \
    "the refusal of $1 at point $2 names the removal"
  rm -f "$TEST_TMP/$2.$1"
}

# userpub_source NAME: database NAME, slot NAME and $TEST_TMP/walrev.conf for
# a publication the user chose ([source] publication = userpub), which the
# test creates; W runs walrev with that file.
userpub_source() {
  source_db "$1" "$1"
  source_conf "$1" <<<'publication = userpub'
}

# published_now_asks: the tables the history schema walrev's published_now()
# names (sorted, space-separated), then whether it asked via_root and
# partly_published of a table (true or false), in a transaction of its own
# that runs no DDL (the table log's event triggers ask them too):
# "base r r1 r2|false|false". It reads the publication's own part of both
# (publish_via_partition_root; a row filter or column list anywhere in it)
# once, and asks per table only where that lets them be true: every ALTER
# PUBLICATION runs it two or three times (at 570 tables: 100 ms a call asking
# both of each, 11 ms so).
published_now_asks() {
  $PSQL -d "$DB" <<'SQL' | tail -1
SET track_functions = 'all';
BEGIN;
SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '') AS names
  FROM unnest(walrev.published_now()) u(o) JOIN pg_class c ON c.oid = u.o \gset
SELECT :'names' || '|' || EXISTS (SELECT 1 FROM pg_stat_xact_user_functions WHERE schemaname = 'walrev' AND funcname = 'via_root')
       || '|' || EXISTS (SELECT 1 FROM pg_stat_xact_user_functions
                          WHERE schemaname = 'walrev' AND funcname = 'partly_published');
COMMIT;
SQL
}

# expect_like_table WHAT TABLE ROWS: ROWS (walrev's rows of TABLE, sorted, as
# the test read them) equal the source's live rows of TABLE.
expect_like_table() { expect_eq "$1" "$3" "$(q "$DB" "COPY (SELECT * FROM $2) TO STDOUT" | sort)"; }

# kill_at_exit SIGNAL VAR: when the test ends, send SIGNAL to the pid VAR
# holds then (nothing when VAR is empty or the process is gone).
kill_at_exit() { on_exit "[ -z \"\${$2:-}\" ] || kill -$1 \"\$$2\" 2>/dev/null"; }

# marker_catch_up TABLE TENTHS: write the next marker into TABLE's row id = 1
# (UPDATE TABLE SET v = 'marker N'; MARKERS counts them) and wait up to TENTHS
# tenths of a second until the history holds it. Fails with the end of
# $TMP/run.log when the worker ($wpid) dies or the time runs out.
MARKERS=0
marker_catch_up() {
  local table=$1 tenths=$2 i
  MARKERS=$((MARKERS + 1))
  q "$DB" "UPDATE $table SET v = 'marker $MARKERS' WHERE id = 1"
  for ((i = 0; i < tenths; i++)); do
    [ "$(q "$DB" "SET search_path = walrev; SELECT EXISTS (SELECT 1 FROM object_delta_arrays
                  WHERE relid = 'public.$table'::regclass AND 'marker $MARKERS' = ANY (new_values))")" = t ] && return 0
    kill -0 "$wpid" 2>/dev/null || { tail -20 "$TMP/run.log"; fail "the worker died"; }
    sleep 0.1
  done
  tail -20 "$TMP/run.log"
  fail "the worker did not catch up with marker $MARKERS"
}

# marker_caught_up PID LOG: insert the next row into the source's table
# marker (MARKER_ROWS counts them) and wait up to 60 s until the history
# holds it, so that everything before it is recorded. Fails with the end of
# LOG when the worker PID dies or the time runs out.
MARKER_ROWS=0
marker_caught_up() {
  local pid=$1 log=$2 i
  MARKER_ROWS=$((MARKER_ROWS + 1))
  q "$DB" "INSERT INTO marker VALUES ($MARKER_ROWS)"
  for ((i = 0; i < 600; i++)); do
    [ "$(q "$DB" "SELECT count(*) FROM walrev.object_delta WHERE relid = 'marker'::regclass
                  AND key = '[\"$MARKER_ROWS\"]'")" = 1 ] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -30 "$log"; fail "worker died"; }
    sleep 0.1
  done
  tail -30 "$log"
  fail "worker did not catch up to marker $MARKER_ROWS"
}

# churn_writer: random transactions on the source's table w (id 1..200, v
# int) until $TMP/stop-writer exists (at most 100000): pairs of updates that
# keep the sum, and every fifth a delete and an upsert. Run it in the
# background, touch the stop file when done.
churn_writer() {
  local i=0
  while [ ! -e "$TMP/stop-writer" ] && [ $i -lt 100000 ]; do
    i=$((i + 1))
    echo "BEGIN; UPDATE w SET v = v + 1 WHERE id = $((RANDOM % 200 + 1)); UPDATE w SET v = v - 1 WHERE id = $((RANDOM % 200 + 1)); COMMIT;"
    [ $((i % 5)) = 0 ] && echo "DELETE FROM w WHERE id = $((RANDOM % 200 + 1)); INSERT INTO w VALUES ($((RANDOM % 200 + 1)), $i) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v;"
  done | psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
}

# expect_tamper_found WHAT TAMPER UNDO EXPECT: run TAMPER (SQL on the store,
# with $H), expect `W verify` to fail (exit 1) with EXPECT in its output, run UNDO.
expect_tamper_found() {
  local what=$1 tamper=$2 undo=$3 expect=$4 out rc=0
  q "$DB" "$H $tamper" >/dev/null
  out=$(W verify 2>&1) || rc=$?
  q "$DB" "$H $undo" >/dev/null
  [ "$rc" = 1 ] || { echo "$out"; fail "$what: verify exit $rc, expected 1"; }
  case "$out" in *"$expect"*) ;; *) printf 'FAIL: %s\n--- expected to contain\n%s\n--- actual\n%s\n' "$what" "$expect" "$out" >&2; exit 1 ;; esac
  pass "$what: $(echo "$out" | tail -1)"
}

# expect_history_once N VALUE M: the history store's database hist (queried
# with the test's HQ) holds N transactions with changes, each once (xid,
# commit LSN), N rows each once, M of them with VALUE, and dense revision ids.
expect_history_once() {
  local n=$1 value=$2 m=$3
  expect_eq "each transaction recorded exactly once (xid, commit LSN)" \
    "$(HQ hist "SELECT count(*), count(DISTINCT (xid, commit_lsn)) FROM walrev.revision r
                WHERE EXISTS (SELECT 1 FROM walrev.object_delta d WHERE d.revision_id = r.id)")" "$n|$n"
  expect_eq "each row once, with its value" \
    "$(HQ hist "SELECT count(*), count(DISTINCT key), count(*) FILTER (WHERE '$value' = ANY (new_values)) FROM walrev.object_delta_arrays")" \
    "$n|$n|$m"
  expect_eq "revision ids are dense" "$(HQ hist "SELECT max(id) - min(id) + 1 = count(*) FROM walrev.revision")" "t"
}

# slot_idle: true when the slot $SLOT of $DB has no walsender. The walsender
# lets go of it a moment after the worker exits; dropping or advancing an
# active slot fails.
slot_idle() { [ "$(q "$DB" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$SLOT' AND active")" = 0 ]; }

# expect_eq WHAT ACTUAL EXPECTED
# Table-points (a test sets NP=0, LSN=() and TABLES, and defines W): `point`
# records the LSN (LSN[NP]) and the live rows of every table of $TABLES that
# exists, sorted, in $TEST_TMP/NP.TABLE; `snapshot_points` compares walrev's
# snapshot of each at each point with them, byte for byte (failing on the
# first difference), and sets EQUAL to the number compared.
point() {
  LSN[$NP]=$(current_lsn "$DB")
  local t
  for t in $TABLES; do
    if [ "$(q "$DB" "SELECT to_regclass('$t') IS NOT NULL")" = t ]; then
      $PSQL -d "$DB" -c "COPY (SELECT * FROM $t) TO STDOUT" | LC_ALL=C sort >"$TEST_TMP/$NP.$t"
    else
      rm -f "$TEST_TMP/$NP.$t"
    fi
  done
  NP=$((NP + 1))
}
snapshot_points() {
  EQUAL=0
  local i t
  for ((i = 0; i < NP; i++)); do
    for t in $TABLES; do
      [ -f "$TEST_TMP/$i.$t" ] || continue
      W snapshot --at "${LSN[$i]}" --table "$t" 2>"$TEST_TMP/snap.err" | LC_ALL=C sort >"$TEST_TMP/$i.$t.walrev" ||
        { cat "$TEST_TMP/snap.err" >&2; fail "snapshot of $t at point $i"; }
      cmp -s "$TEST_TMP/$i.$t" "$TEST_TMP/$i.$t.walrev" ||
        { diff "$TEST_TMP/$i.$t" "$TEST_TMP/$i.$t.walrev" >&2; fail "snapshot of $t at point $i differs from the live table"; }
      EQUAL=$((EQUAL + 1))
    done
  done
}

# expect_verify WHAT: `W verify` exits 0, else its output is shown and the
# test fails; passes WHAT with the last line verify printed.
expect_verify() {
  W verify >"$TEST_TMP/verify.out" 2>&1 || { cat "$TEST_TMP/verify.out"; fail "$1"; }
  pass "$1: $(tail -1 "$TEST_TMP/verify.out")"
}

# expect_clean_stop WHAT: SIGTERM to the worker $wpid, which must exit with
# status 0 (the check WHAT); wpid is cleared.
expect_clean_stop() {
  local rc=0
  worker_stop "$wpid" || rc=$?
  wpid=
  expect_eq "$1" "$rc" 0
}

# run_to_now LOG ARG... [-- RUN_ARG...]: run_to the current LSN of $DB
# (current_lsn), which is left in STOP.
run_to_now() {
  STOP=$(current_lsn "$DB")
  run_to "$STOP" "$@"
}

# expect_points_equal N: snapshot_points, and all N table-points compared equal.
expect_points_equal() {
  snapshot_points
  expect_eq "table-points equal, byte for byte" "$EQUAL" "$1"
}

# points_from TABLE...: the worker run to now (run_to_now), then the
# table-points counted from 0 again over TABLE... (NP, LSN, TABLES), and point
# 0 taken there.
points_from() {
  run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
  NP=0
  LSN=()
  TABLES="$*"
  point
}

# key_shapes TABLE: col_is_key of each relation version of public.TABLE, in
# version order, space-separated ("{t,f} {f,f}").
key_shapes() {
  q "$DB" "$H SELECT string_agg(v.col_is_key::text, ' ' ORDER BY v.version) FROM relation_version v
            WHERE v.relid = 'public.$1'::regclass"
}

# expect_rekeyed_once TABLE LO HI ROWS DELETES: public.TABLE went from keyed
# (version 1) to keyless (version 2) in a revision committed between the
# table-points LO and HI, which moved its ROWS live rows to keyless
# identities (ROWS deletes and inserts, one revision), and the revisions
# before LO deleted exactly DELETES of its rows.
expect_rekeyed_once() {
  local t=$1 lo=${LSN[$2]} hi=${LSN[$3]} rows=$4 deletes=$5
  local in_window="r.commit_lsn > '$lo'::pg_lsn AND r.commit_lsn <= '$hi'::pg_lsn"
  expect_eq "two versions of $t: keyed, then keyless from the key's drop in its own revision" \
    "$(q "$DB" "$H SELECT v.version, v.col_is_key::text, $in_window
              FROM relation_version v JOIN revision r ON r.id = v.covered_by
              WHERE v.relid = 'public.$t'::regclass ORDER BY 1")" \
    "1|{t,f}|f
2|{f,f}|t"
  expect_eq "$t's rows moved to keyless identities once, in the drop's revision ($rows live rows)" \
    "$(q "$DB" "$H SELECT count(*) FILTER (WHERE d.op = 'D'), count(*) FILTER (WHERE d.op = 'I'),
              count(DISTINCT d.revision_id) FROM object_delta d JOIN revision r ON r.id = d.revision_id
              WHERE d.relid = 'public.$t'::regclass AND $in_window")" "$rows|$rows|1"
  expect_eq "no revision before the drop deletes a row of $t it did not delete" \
    "$(q "$DB" "$H SELECT count(*) FROM object_delta d JOIN revision r ON r.id = d.revision_id
              WHERE d.relid = 'public.$t'::regclass AND d.op = 'D' AND r.commit_lsn <= '$lo'::pg_lsn")" "$deletes"
}

# snapshot_sorted P TABLE [ARG...]: walrev's snapshot (W) of TABLE at the
# table-point P (LSN[P]), its rows sorted bytewise; stderr dropped.
snapshot_sorted() {
  local p=$1 t=$2
  shift 2
  W snapshot --at "${LSN[$p]}" --table "$t" "$@" 2>/dev/null | LC_ALL=C sort
}

expect_eq() {
  if [ "$2" != "$3" ]; then
    printf 'FAIL: %s\n--- expected\n%s\n--- actual\n%s\n' "$1" "$3" "$2" >&2
    exit 1
  fi
  pass "$1"
}

# The insert position, not pg_current_wal_lsn() (the write position): the test
# cluster runs with synchronous_commit=off, so a transaction that just
# committed may not be written yet, and a --stop-lsn taken from the write
# position could stop before it (a flaky empty history under load).
# Wait until the flush position covers it, and use that: it always ends a
# record, so the server's reported WAL end reaches it even when idle.
current_lsn() {
  q "$1" "DO \$\$ DECLARE target pg_lsn := pg_current_wal_insert_lsn(); BEGIN
            FOR i IN 1..500 LOOP EXIT WHEN pg_current_wal_flush_lsn() >= target; PERFORM pg_sleep(0.01); END LOOP;
          END \$\$" >/dev/null
  q "$1" "SELECT pg_current_wal_flush_lsn()"
}
