#!/usr/bin/env bash
# keyframe_read_bench.sh — CPU of the readers of a whole keyframe, binary A
# against binary B on one store (the store format is the same): the row fold
# of the previous keyframe's chunks with the deltas since (what the keyframe
# thread runs before it writes a keyframe; `snapshot --memory 0` runs the same
# stream and fold, and is what is timed here), verify (its keyframe check
# rebuilds each keyframe and compares), and the snapshot of a table with a
# timestamptz column (its keyframe read between batches of values printed
# again). Server CPU: the growth of the postmaster's cutime + cstime around
# the command (its backends exit and are reaped into it; 10 ms ticks); client
# CPU: the command's user + sys. Rounds interleave A B, then B A, ...; the
# report gives medians and ranges. Also keyed probes of the keyframe
# (keyframe_rows_of, 20,000 per round in a DO loop, backend CPU per probe).
#
#   bench/keyframe_read_bench.sh A_WALREV B_WALREV [ROWS] [ROUNDS]
#     ROWS: rows of the big table (default 1000000); the zoned one has ROWS / 5
#   KFRB_DIR=dir   the private cluster's directory (default /tmp/kfrb.PID; removed at the end)
set -euo pipefail
A=$(realpath "${1:?usage: keyframe_read_bench.sh A_WALREV B_WALREV [ROWS] [ROUNDS]}")
B=$(realpath "${2:?usage}")
ROWS=${3:-1000000}
ROUNDS=${4:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${KFRB_DIR:-/tmp/kfrb.$$}
PGC="bash $ROOT/tests/support/pgcluster.sh"
$PGC start "$DIR" "shared_buffers = 512MB" "default_toast_compression = lz4" "max_wal_size = 4GB" >&2
trap '$PGC stop "$DIR" >&2 || true; rm -rf "$DIR"' EXIT
PORT=$(cat "$DIR/port")
SRC="host=127.0.0.1 port=$PORT user=postgres dbname=kfrb"
P() { psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p "$PORT" -U postgres -d kfrb -c "$*"; }
psql -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE kfrb" >/dev/null
P "CREATE TABLE big (id int PRIMARY KEY, n int, t text, x numeric);
   INSERT INTO big SELECT g, g % 1000, md5(g::text), g * 1.5 FROM generate_series(1, $ROWS) g;
   CREATE TABLE zt (id int PRIMARY KEY, at timestamptz, t text);
   INSERT INTO zt SELECT g, '2010-03-14 08:00+00'::timestamptz + g * interval '7 minutes', md5(g::text)
     FROM generate_series(1, $ROWS / 5) g; ANALYZE"
CONF=$DIR/walrev.conf
printf '[source]\nconninfo = %s\nslot = kfrb\n' "$SRC" >"$CONF"
echo "keyframe_read_bench: setup (baseline keyframes of $ROWS and $((ROWS / 5)) rows)" >&2
"$B" -c "$CONF" setup >&2
P "UPDATE big SET n = n + 1 WHERE id % 10 = 0; UPDATE zt SET t = t || 'x' WHERE id % 10 = 0"
END=$(P "SELECT pg_current_wal_insert_lsn()")
"$B" -c "$CONF" run --stop-lsn "$END" >"$DIR/run.log" 2>&1
echo "keyframe_read_bench: $(P "SELECT count(*) || ' keyframes, ' || sum(n_rows) || ' rows' FROM walrev.keyframe")" >&2

server_ticks() { awk '{ print $16 + $17 }' "/proc/$(head -1 "$DIR/data/postmaster.pid")/stat"; }
# measure BIN ARGS...: "server_s client_s" of one run (output discarded)
measure() {
  local bin=$1 s0 s1 c
  shift
  s0=$(server_ticks)
  if ! /usr/bin/time -o "$DIR/time" -f '%U %S' "$bin" -c "$CONF" "$@" >/dev/null 2>"$DIR/cmd.err"; then
    cat "$DIR/cmd.err" >&2
    exit 1
  fi
  c=$(tail -1 "$DIR/time")
  sleep 0.3 # the backend's exit reaped
  s1=$(server_ticks)
  echo "$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", (b - a) / 100 }') $(echo "$c" | awk '{ printf "%.2f", $1 + $2 }')"
}
stats() { sort -g | awk '{ v[NR] = $1 } END { printf "%.2f (%.2f–%.2f)", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'; }
probe() {
  P "DO \$\$ DECLARE t0 float8; t1 float8; s text; kf bigint; r record; BEGIN
       SELECT id INTO kf FROM walrev.keyframe WHERE relid = 'big'::regclass ORDER BY id LIMIT 1;
       s := pg_read_file('/proc/self/stat'); t0 := split_part(split_part(s, ') ', 2), ' ', 12)::float8 + split_part(split_part(s, ') ', 2), ' ', 13)::float8;
       FOR i IN 1..20000 LOOP
         SELECT * INTO r FROM walrev.keyframe_rows_of(kf, format('[\"%s\"]', 1 + (i * 7919) % $ROWS));
       END LOOP;
       s := pg_read_file('/proc/self/stat'); t1 := split_part(split_part(s, ') ', 2), ' ', 12)::float8 + split_part(split_part(s, ') ', 2), ' ', 13)::float8;
       RAISE NOTICE '%', (t1 - t0) / 100;
     END \$\$" 2>&1 | sed -n 's/.*NOTICE: *//p'
}
declare -A R
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="A B"; else order="B A"; fi
  for who in $order; do
    if [ $who = A ]; then bin=$A; else bin=$B; fi
    R[$who.fold]+="$(measure "$bin" snapshot --table big --memory 0)"$'\n'
    R[$who.zoned]+="$(measure "$bin" snapshot --table zt)"$'\n'
    R[$who.verify]+="$(measure "$bin" verify)"$'\n'
  done
  R[probe]+="$(probe)"$'\n'
  echo "keyframe_read_bench: round $r of $ROUNDS" >&2
done
echo "| $ROWS-row table, $ROUNDS interleaved rounds | A server CPU s | B server CPU s | A client CPU s | B client CPU s |"
echo "| --- | ---: | ---: | ---: | ---: |"
for m in fold zoned verify; do
  printf '| %s | %s | %s | %s | %s |\n' "$m" \
    "$(printf '%s' "${R[A.$m]}" | awk 'NF { print $1 }' | stats)" "$(printf '%s' "${R[B.$m]}" | awk 'NF { print $1 }' | stats)" \
    "$(printf '%s' "${R[A.$m]}" | awk 'NF { print $2 }' | stats)" "$(printf '%s' "${R[B.$m]}" | awk 'NF { print $2 }' | stats)"
done
echo
echo "keyframe_rows_of: 20,000 probes per round, backend CPU s: $(printf '%s' "${R[probe]}" | awk 'NF' | stats)"
