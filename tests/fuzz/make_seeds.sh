#!/usr/bin/env bash
# make_seeds.sh — regenerates the seeds of the fuzz targets that read bytes
# walrev gets back from outside, from a real run (checked in; rerun after a
# format change):
#   seeds/fuzz_msgpack/    a file-sink file (every message type, several
#                          tables and types, contexts) and its first messages
#   seeds/fuzz_copy_read/  rowfold_query's binary COPY of a real history store
#                          (keyframe rows and deltas), behind the target's two
#                          header bytes (chunk size, highest column id)
# Starts its own throwaway PostgreSQL (tests/support/pgcluster.sh) and stops it.
# Usage: make_seeds.sh BUILD_DIR   (a build with bin walrev and tools)
set -euo pipefail
build=$(cd "${1:?usage: make_seeds.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
seeds=$src/tests/fuzz/seeds
tmp=$(mktemp -d /tmp/walrev-seeds.XXXXXX)
cleanup() { bash "$src/tests/support/pgcluster.sh" stop "$tmp/pg" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
bash "$src/tests/support/pgcluster.sh" start "$tmp/pg" >/dev/null
port=$(cat "$tmp/pg/port")
psql="psql -X -q -v ON_ERROR_STOP=1 -At -h 127.0.0.1 -p $port -U postgres -d seeds"
psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE seeds"
$psql -c "CREATE TABLE item (id int PRIMARY KEY, name text, qty int, price numeric, tags text[], doc jsonb,
                             at timestamptz, raw bytea, ok boolean)"
$psql -c "CREATE TABLE note (k text PRIMARY KEY, body text)"
$psql -c "INSERT INTO item SELECT g, 'item ' || g, g, g * 1.5, ARRAY['a', 'b\"c'], '{\"x\": 1}', '2024-01-01', '\\x00ff', g % 2 = 0
          FROM generate_series(1, 5) g"
cat >"$tmp/walrev.conf" <<CONF
[source]
conninfo = host=127.0.0.1 port=$port user=postgres dbname=seeds
slot = seeds
[history]
keyframe_factor = 1
[file]
path = $tmp/changes.mp
CONF
W() { "$build/worker/walrev" -c "$tmp/walrev.conf" "$@"; }
W setup >/dev/null
$psql <<'SQL'
BEGIN; SELECT walrev.context('{"actor":{"type":"user","id":"7"},"description":"approve invoice","meta":{"t":[1,2]}}');
UPDATE item SET qty = qty + 1, name = NULL WHERE id <= 3; INSERT INTO note VALUES ('tab\there', E'line\nbreak \\ back'); COMMIT;
DELETE FROM item WHERE id = 5;
UPDATE item SET tags = ARRAY[NULL, 'x'], doc = '{"deep": {"a": [true, null]}}', raw = '\xdeadbeef' WHERE id = 1;
INSERT INTO item (id, name) VALUES (6, repeat('long ', 200));
UPDATE note SET k = 'moved' WHERE k = 'tab	here';
TRUNCATE note;
SQL
lsn=$($psql -c "SELECT pg_current_wal_insert_lsn()")
W run --stop-lsn "$lsn" 2>/dev/null
# keyframes of the item table, so the COPY carries keyframe rows too
W run --stop-lsn "$lsn" 2>/dev/null

mkdir -p "$seeds/fuzz_msgpack" "$seeds/fuzz_copy_read"
cp "$tmp/changes.mp" "$seeds/fuzz_msgpack/file_sink_stream.mp"
python3 - "$tmp/changes.mp" "$seeds/fuzz_msgpack" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
# one seed per message: msgpack is self-delimiting, so cut with a tiny skipper
def skip(b, i):
    t = b[i]
    if t <= 0x7f or t >= 0xe0 or t in (0xc0, 0xc2, 0xc3): return i + 1
    if 0x80 <= t <= 0x8f:
        i += 1
        for _ in range((t & 0x0f) * 2): i = skip(b, i)
        return i
    if 0x90 <= t <= 0x9f:
        i += 1
        for _ in range(t & 0x0f): i = skip(b, i)
        return i
    if 0xa0 <= t <= 0xbf: return i + 1 + (t & 0x1f)
    fixed = {0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8, 0xca: 4, 0xcb: 8}
    if t in fixed: return i + 1 + fixed[t]
    lens = {0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}
    if t in lens:
        n = int.from_bytes(b[i + 1:i + 1 + lens[t]], "big")
        return i + 1 + lens[t] + n
    cont = {0xdc: (2, 1), 0xdd: (4, 1), 0xde: (2, 2), 0xdf: (4, 2)}
    if t in cont:
        w, k = cont[t]
        n = int.from_bytes(b[i + 1:i + 1 + w], "big")
        i += 1 + w
        for _ in range(n * k): i = skip(b, i)
        return i
    raise ValueError("type 0x%02x" % t)
i = n = 0
while i < len(data):
    j = skip(data, i)
    open("%s/message_%02d.mp" % (sys.argv[2], n), "wb").write(data[i:j])
    i, n = j, n + 1
print("msgpack seeds:", n + 1)
PY
relid=$($psql -c "SELECT 'item'::regclass::oid")
maxcol=$($psql -c "SELECT max(x) FROM walrev.relation_version, unnest(col_ids) x WHERE relid = $relid")
kf=$($psql -c "SELECT coalesce(max(id)::text, 'NULL') FROM walrev.keyframe WHERE relid = $relid")
rev=$($psql -c "SELECT max(id) FROM walrev.revision")
# rowfold_query's COPY (schema/rowfold.c) with and without the keyframe (its chunks, format 7).
for k in NULL "$kf"; do
  q="COPY (SELECT c.first_key COLLATE \"C\" AS key, 0 AS src, 0::bigint AS rev, 0 AS seq, ' '::\"char\" AS op,
        NULL::smallint[] AS ids, NULL::text[] AS vals, c.keys, c.rows FROM walrev.keyframe_chunk c WHERE c.keyframe_id = $k
      UNION ALL SELECT od.key COLLATE \"C\", 1, od.revision_id, od.seq, od.op, od.col_ids, od.new_values, NULL, NULL
        FROM walrev.object_delta_arrays od WHERE od.relid = $relid AND od.revision_id > 0 AND od.revision_id <= $rev
        AND od.op <> 'T' AND od.key IS NOT NULL ORDER BY 1, 2, 3, 4) TO STDOUT (FORMAT binary)"
  for chunk in 0 7 255; do
    { printf "\\x$(printf %02x $chunk)\\x$(printf %02x $((maxcol - 1)))"; $psql -c "$q"; } \
      >"$seeds/fuzz_copy_read/item_kf${k}_chunk$chunk.bin"
  done
done
echo "seeds written under $seeds"
