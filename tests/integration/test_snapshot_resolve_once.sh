#!/usr/bin/env bash
# walrev snapshot resolves each --table name once and reads each table's
# relation version once per invocation (issue 13: every name was resolved
# twice and every version read twice, three times with --into; on the
# regression suite's store each of those statements took 26-57 ms, and the
# comparison of a point's hundreds of tables never finished). Counted, not
# timed: the history functions' calls (track_functions) of one snapshot of
# seven tables, one of them a name dropped and created again, whose table of
# the point is found by reading the other candidate's version too. And the
# table log (the view table_event, a dozen reads a table: 0.13 s each on that
# store) is computed once per snapshot, into the session's copy.
source "$(dirname "$0")/lib.sh"
source_db snapshot_resolve_once resolveonce
q $DB "CREATE TABLE k1 (id int PRIMARY KEY, v text); CREATE TABLE k2 (id int PRIMARY KEY, v text);
       CREATE TABLE k3 (a int, b int, PRIMARY KEY (a, b)); CREATE TABLE k4 (id text PRIMARY KEY, n numeric);
       CREATE TABLE n1 (a int, b text); CREATE TABLE n2 (a int) ;
       CREATE TABLE r (id int PRIMARY KEY, old text)"
w_setup
q $DB "INSERT INTO k1 SELECT g, 'k1 ' || g FROM generate_series(1, 30) g; INSERT INTO k2 VALUES (1, 'one');
       INSERT INTO k3 VALUES (1, 2), (3, 4); INSERT INTO k4 VALUES ('x', 1.5), ('y', NULL);
       INSERT INTO n1 VALUES (1, 'a'), (1, 'a'), (2, NULL); INSERT INTO r VALUES (1, 'before')"
TABLES="k1 k2 k3 k4 n1 n2 r"
NP=0
point
q $DB "UPDATE k1 SET v = 'changed' WHERE id < 10; DROP TABLE r; CREATE TABLE r (id int PRIMARY KEY, new int);
       INSERT INTO r VALUES (2, 22)"
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

# calls NAME: how often the history function NAME ran since the counters were
# reset (walrev's sessions report theirs when they end: waited for)
calls() { q $DB "SELECT calls FROM pg_stat_user_functions WHERE schemaname = 'walrev' AND funcname = '$1'"; }
q postgres "ALTER DATABASE $DB SET track_functions = 'all'"
counted() {
  q $DB "SELECT pg_stat_reset()" >/dev/null
  must "$TMP/snap.out" "$1" W snapshot --at "${LSN[0]}" "${@:2}" --table k1 --table k2 --table k3 --table k4 \
    --table n1 --table n2 --table r
  wait_for 30 test -n "$(calls resolve_table)" || fail "$1: no count of resolve_table's calls"
  sleep 1 # the session's other counts, if they came apart
  RESOLVED=$(calls resolve_table) VERSIONS=$(calls table_at) COMPUTED=$(calls table_event_computed)
}

mkdir "$TMP/out"
counted "snapshot --output-dir of seven tables" --output-dir "$TMP/out"
for t in $TABLES; do
  LC_ALL=C sort "$TMP/out/public.$t.copy" >"$TMP/out/$t.sorted"
  cmp -s "$TMP/0.$t" "$TMP/out/$t.sorted" || { diff "$TMP/0.$t" "$TMP/out/$t.sorted"; fail "$t at the point"; }
done
pass "each of the seven tables as it was at the point (r: the table dropped since)"
expect_eq "--output-dir: one resolution a name" "$RESOLVED" 7
# r's name belongs to the new table now: its version at the point (none yet)
# and the old table's are read to choose, and the old one's is the one used
expect_eq "--output-dir: one relation version a table, two for the name that changed hands" "$VERSIONS" 8
expect_eq "--output-dir: the table log computed once" "$COMPUTED" 1

counted "snapshot --into of seven tables" --into asof
for t in $TABLES; do
  $PSQL -d "$DB" -c "COPY (SELECT * FROM asof.$t) TO STDOUT" | LC_ALL=C sort >"$TMP/into.$t"
  cmp -s "$TMP/0.$t" "$TMP/into.$t" || { diff "$TMP/0.$t" "$TMP/into.$t"; fail "asof.$t"; }
done
pass "--into: each of the seven tables as it was at the point"
expect_eq "--into: one resolution a name" "$RESOLVED" 7
expect_eq "--into: its names read from the versions already read" "$VERSIONS" 8
expect_eq "--into: the table log computed once" "$COMPUTED" 1
pass "snapshot resolves each table once"
