#!/usr/bin/env bash
# regenerate.sh — re-record the golden fixtures from a real PostgreSQL and
# rewrite their .expected files. Starts a private cluster (pgcluster.sh) with
# logical_decoding_work_mem = 64kB so the streaming fixture streams, runs
# walrev-capture once per fixtures/NAME.sql in a fresh database, then asks the
# golden test binary to write fixtures/NAME.expected from the decoder's output.
#
#   tests/golden/regenerate.sh                  re-capture every fixture, then .expected
#   tests/golden/regenerate.sh NAME...          re-capture only these fixtures
#   tests/golden/regenerate.sh --expected-only  only rewrite .expected (no server needed)
# BUILD_DIR (default build-golden) is configured and built if needed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build-golden}
case "$build" in /*) ;; *) build=$root/$build ;; esac

expected_only=0
names=()
for a in "$@"; do
  case "$a" in
    --expected-only) expected_only=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) names+=("$a") ;;
  esac
done

cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j"$(nproc)" --target walrev-capture golden_test_golden >/dev/null

if [ "$expected_only" = 0 ]; then
  if [ ${#names[@]} -eq 0 ]; then
    for f in "$here"/fixtures/*.sql; do names+=("$(basename "$f" .sql)"); done
  fi
  pgdir=$(mktemp -d /tmp/walrev-golden.XXXXXX)
  trap 'bash "$root/tests/support/pgcluster.sh" stop "$pgdir/pg" >/dev/null; rm -rf "$pgdir"' EXIT
  bash "$root/tests/support/pgcluster.sh" start "$pgdir/pg" "logical_decoding_work_mem = 64kB" >/dev/null
  admin=$(bash "$root/tests/support/pgcluster.sh" conninfo "$pgdir/pg" postgres)
  echo "capturing from: $(psql -X -q -A -t -v ON_ERROR_STOP=1 "$admin" -c "SELECT version()")"
  for name in "${names[@]}"; do
    [ -f "$here/fixtures/$name.sql" ] || { echo "no fixture workload $here/fixtures/$name.sql" >&2; exit 1; }
    db="golden_$name"
    psql -X -q -v ON_ERROR_STOP=1 "$admin" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$db\"" -c "CREATE DATABASE \"$db\""
    "$build/tools/walrev-capture" --source "$(bash "$root/tests/support/pgcluster.sh" conninfo "$pgdir/pg" "$db")" \
      --slot "golden_$name" --publication golden --workload "$here/fixtures/$name.sql" \
      --out "$here/fixtures/$name.bin"
  done
fi

"$build/tests/golden_test_golden" "$here" --regenerate
du -ch "$here"/fixtures/*.bin "$here"/fixtures/*.expected | tail -1 | sed 's/^/fixtures total: /'
