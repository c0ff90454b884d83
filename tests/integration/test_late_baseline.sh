#!/usr/bin/env bash
# Tables added to the publication after setup get their own baseline while
# the worker runs: existing rows are recorded in chunks (snapshot rows, actor
# walrev:baseline) while a writer keeps changing the table, and the history
# then equals the live table exactly. No row is recorded twice, a change of
# a row the history knew always has exact old values, a worker killed in the
# middle of a backfill resumes it, a table without a primary key is covered,
# and `walrev baseline --table` takes the baseline of a table on request.
source "$(dirname "$0")/lib.sh"
source_db late_src late
wpid=; gpid=
kill_at_exit TERM gpid
kill_at_exit 9 wpid # the last registered goes first
late_tables_conf 250

q $DB "CREATE TABLE base (id int PRIMARY KEY, v text);
       INSERT INTO base SELECT g, 'b' || g FROM generate_series(1, 100) g;
       CREATE TABLE late_t (id int PRIMARY KEY, v text, n int, note text);
       INSERT INTO late_t SELECT g, 'v' || g, g, CASE WHEN g % 5 = 0 THEN NULL WHEN g % 5 = 1 THEN '' ELSE E'tab\\there' END
         FROM generate_series(1, 6000) g;
       CREATE TABLE late_k (at timestamptz, what text);   -- no key
       ALTER TABLE late_k REPLICA IDENTITY FULL;
       INSERT INTO late_k SELECT timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute', 'k' || g
         FROM generate_series(1, 3000) g;
       CREATE TABLE late_r (id bigint PRIMARY KEY, body text);
       INSERT INTO late_r SELECT g, repeat('r', g % 40) FROM generate_series(1, 20000) g;
       CREATE TABLE late_m (id int PRIMARY KEY, v text);
       INSERT INTO late_m SELECT g, 'm' || g FROM generate_series(1, 700) g;"
w_setup

start_worker() {
  worker_up -c "$TMP/walrev.conf" --source "$SRC" --slot $SLOT
}
# Wait until the worker holds everything committed so far: a marker change,
# and the history has it (revisions are durable in commit order).
catch_up() { marker_catch_up base 600; }
wait_state() { # TABLE STATE
  wait_alive 120 backfill_state_is "$1" "$2" && return 0
  tail -20 "$TMP/run.log"; fail "the baseline of $1 did not reach state $2 (it is $(backfill_state "$1"))"
}
# A writer: updates, deletes and inserts of random rows of a table, small transactions.
writer() { # TABLE N KIND
  local t=$1 n=$2 kind=$3
  for i in $(seq 1 "$n"); do
    r=$((RANDOM % 6500 + 1)); r2=$((RANDOM % 6500 + 1))
    case $kind in
      keyed)
        echo "UPDATE $t SET n = n + 1, v = v || '.' WHERE id = $r;"
        [ $((i % 3)) = 0 ] && echo "DELETE FROM $t WHERE id = $r2;"
        [ $((i % 4)) = 0 ] && echo "INSERT INTO $t VALUES (100000 + $i, 'new $i', $i, NULL) ON CONFLICT DO NOTHING;"
        [ $((i % 7)) = 0 ] && echo "BEGIN; UPDATE $t SET note = 'moved' WHERE id = $r2; UPDATE $t SET id = 200000 + $i WHERE id = $r; COMMIT;"
        ;;
      keyless)
        echo "UPDATE $t SET what = what || '+' WHERE what = 'k$((r % 3000 + 1))';"
        [ $((i % 3)) = 0 ] && echo "DELETE FROM $t WHERE what = 'k$((r2 % 3000 + 1))';"
        [ $((i % 4)) = 0 ] && echo "INSERT INTO $t VALUES (now(), 'new $i');"
        ;;
      big)
        echo "UPDATE $t SET body = body || '.' WHERE id = $((RANDOM * 2 % 20000 + 1));"
        [ $((i % 3)) = 0 ] && echo "DELETE FROM $t WHERE id = $((RANDOM * 2 % 20000 + 1));"
        ;;
    esac
    [ $((i % 10)) = 0 ] && echo "SELECT pg_sleep(0.01);"
  done | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null
}
# History equals the live table, row for row.
expect_exact() { # TABLE ORDER
  local want got
  want=$(q $DB "COPY (SELECT * FROM $1 ORDER BY $2) TO STDOUT" | sort)
  got=$(W snapshot --table "$1" 2>/dev/null | sort)
  expect_eq "the history of $1 equals the live table ($(printf '%s\n' "$want" | grep -c .) rows)" "$got" "$want"
}
# No row recorded twice, nothing recorded over what the stream knew, and old
# values unknown only for a row's very first change (one the history never saw).
expect_clean() { # TABLE
  local rel="'public.$1'::regclass"
  # each object's changes in order: n = 1 is the first the history has of it
  local ranked="SELECT op, old_unknown, row_number() OVER (PARTITION BY key ORDER BY revision_id, seq) AS n
                FROM object_delta WHERE relid = $rel"
  expect_eq "$1: no snapshot row for a row the history already held" \
    "$(q $DB "$H SELECT count(*) FROM ($ranked) d WHERE op = 'S' AND n > 1")" 0
  expect_eq "$1: old values are unknown only in a row's first change" \
    "$(q $DB "$H SELECT count(*) FROM ($ranked) d WHERE old_unknown AND n > 1")" 0
  expect_eq "$1: every chunk is a revision of walrev:baseline, and the backfill row counts its rows" \
    "$(q $DB "$H SELECT count(*) FILTER (WHERE r.actor_type || ':' || r.actor_id <> 'walrev:baseline'),
                 sum(r.n_snapshot) = (SELECT rows_recorded FROM backfill WHERE relid = $rel)
          FROM revision r WHERE r.id IN (SELECT revision_id FROM object_delta WHERE relid = $rel AND op = 'S')")" "0|t"
}

# join_while_writing TABLE ROWS MODE PAUSE: TABLE joins the publication PAUSE
# seconds into a writer's ROWS changes of it (writer MODE); waits until the
# writer is done, the baseline too, and the history has caught up.
join_while_writing() {
  writer "$1" "$2" "$3" &
  gpid=$!
  sleep "$4"
  q $DB "ALTER PUBLICATION walrev ADD TABLE $1"
  wait $gpid
  gpid=
  wait_state "$1" done
  catch_up
}

start_worker

# --- 1. a keyed table joins the publication while a writer changes it ---
join_while_writing late_t 900 keyed 0.3
grep -q 'msg="baseline of a table" table=public.late_t' "$TMP/run.log" || { cat "$TMP/run.log"; fail "no start of the baseline in the log"; }
grep -q 'msg="baseline recorded" table=public.late_t' "$TMP/run.log" || { cat "$TMP/run.log"; fail "no end of the baseline in the log"; }
expect_exact late_t id
expect_clean late_t
chunks=$(q $DB "$H SELECT chunks FROM backfill WHERE relid = 'public.late_t'::regclass")
[ "$chunks" -ge 10 ] || fail "late_t was read in $chunks chunk(s); expected at least 10 of 250 rows"
pass "late_t was read in $chunks chunks"
unknown=$(q $DB "$H SELECT count(*) FROM object_delta WHERE relid = 'public.late_t'::regclass AND old_unknown")
echo "# late_t: $unknown change(s) of rows the writer reached before the backfill did (old values unknown)"

# Now the history knows every row: a change of each has exact old values.
q $DB "UPDATE late_t SET n = n * 2"
catch_up
expect_eq "an update of every row of late_t has every old value" \
  "$(q $DB "$H SELECT count(*), count(*) FILTER (WHERE old_unknown OR 2 = ANY (coalesce(attr_flags, '{}')))
      FROM object_delta WHERE relid = 'public.late_t'::regclass
       AND revision_id = (SELECT max(revision_id) FROM object_delta WHERE relid = 'public.late_t'::regclass)")" \
  "$(q $DB "SELECT count(*) FROM late_t")|0"
expect_exact late_t id

# --- 2. a table without a primary key ---
join_while_writing late_k 300 keyless 0.2
expect_exact late_k "at, what"
expect_clean late_k

# --- 3. the worker is killed in the middle of a backfill ---
q $DB "ALTER PUBLICATION walrev ADD TABLE late_r"
writer late_r 400 big & gpid=$!
for _ in $(seq 1 600); do
  [ "$(q $DB "$H SELECT coalesce((SELECT chunks FROM backfill WHERE relid = 'public.late_r'::regclass AND state = 'running'), 0)")" -ge 4 ] && break
  sleep 0.05
done
[ "$(backfill_state late_r)" = running ] || fail "late_r was not being backfilled when the worker was to be killed ($(backfill_state late_r))"
worker_kill "$wpid"
killed_at=$(q $DB "$H SELECT chunks FROM backfill WHERE relid = 'public.late_r'::regclass")
pass "worker killed with the baseline of late_r at chunk $killed_at"
start_worker
wait $gpid; gpid=
wait_state late_r done
catch_up
grep -q 'msg="resuming an interrupted baseline" table=public.late_r' "$TMP/run.log" || { cat "$TMP/run.log"; fail "the resumption is not in the log"; }
expect_exact late_r id
expect_clean late_r

# --- 4. a table marked without a baseline, then requested with walrev baseline ---
q $DB "INSERT INTO walrev.backfill (relid, nspname, relname, state) VALUES ('late_m'::regclass, 'public', 'late_m', 'skipped');
       ALTER PUBLICATION walrev ADD TABLE late_m;
       UPDATE late_m SET v = 'changed' WHERE id = 1"
catch_up
expect_eq "a table marked skipped gets no baseline by itself" \
  "$(W snapshot --table late_m 2>/dev/null)" "1	changed"
must "$TMP/request.out" "walrev baseline --table" W baseline --table late_m
grep -q "requested baseline of public.late_m" "$TMP/request.out" || { cat "$TMP/request.out"; fail "no confirmation of the request"; }
grep -Eq "^ public\.late_m +\| requested +\| " "$TMP/request.out" || { cat "$TMP/request.out"; fail "the request is not in the states listed"; }
wait_state late_m done
catch_up
expect_exact late_m id
expect_clean late_m
rc=0; W baseline --table no_such_table >"$TMP/bad.out" 2>&1 || rc=$?
expect_eq "walrev baseline of a missing table exits 1" "$rc" 1
grep -q "table no_such_table does not exist" "$TMP/bad.out" || { cat "$TMP/bad.out"; fail "no message for a missing table"; }
# with one good and one missing table, none is requested (late_k stays done)
rc=0; W baseline --table late_k --table no_such_table >"$TMP/bad2.out" 2>&1 || rc=$?
expect_eq "walrev baseline of a good and a missing table exits 1" "$rc" 1
grep -q "no baseline requested" "$TMP/bad2.out" || { cat "$TMP/bad2.out"; fail "no word that nothing was requested"; }
expect_eq "... and requests neither" "$(grep -c 'requested baseline of' "$TMP/bad2.out")" 0
must "$TMP/states.out" "walrev baseline" W baseline --format csv
STATES="public.base done
public.late_k done
public.late_m done
public.late_r done
public.late_t done"
expect_eq "walrev baseline lists every table's state (csv)" "$(awk -F, 'NR > 1 { print $1, $2 }' "$TMP/states.out")" "$STATES"
expect_eq "walrev baseline's csv header" "$(head -1 "$TMP/states.out")" "table,state,chunks,rows_read,rows_recorded,updated,error"
expect_eq "walrev baseline --format json: the same states, counts as numbers" \
  "$(W baseline --format json | jq -r '.[] | "\(.table) \(.state)"')" "$STATES"
expect_eq "walrev baseline --format json: rows_read is a number" \
  "$(W baseline --format json | jq -r '[.[] | .rows_read | type] | unique | join(",")')" "number"
must "$TMP/aligned.out" "walrev baseline (aligned)" W baseline
expect_eq "walrev baseline (aligned): header, rule, 5 rows, count" "$(sed -n '1p;$p' "$TMP/aligned.out" | sed 's/  */ /g')" \
" table | state | chunks | rows_read | rows_recorded | updated | error
(5 rows)"
expect_eq "walrev baseline --null marks the tables without an error" \
  "$(W baseline --null '<none>' | grep -c '| <none>$')" "5"

expect_verify "verify passes"
kill "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=
q $DB "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
