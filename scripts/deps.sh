#!/usr/bin/env bash
# deps.sh — install everything walrev needs to build, test, demo and
# benchmark, from Debian packages. Idempotent and fast: when every package is
# already installed it only checks (dpkg-query) and exits. Runs apt-get as
# root, or through sudo otherwise. Quiet: one line saying what it installs and
# a summary; apt's own output goes to a log file (WALREV_DEPS_LOG, default
# $TMPDIR/walrev-deps.log), whose end is shown only when apt fails.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libpq-dev postgresql-15 postgresql-contrib postgresql-15-wal2json postgresql-15-periods
  librdkafka-dev libmsgpack-dev libcmocka-dev libjansson-dev libinih-dev libssl-dev libmicrohttpd-dev
  kcat gnuplot-nox python3-msgpack python3-psycopg2 python3-confluent-kafka valgrind systemd jq prometheus
  pandoc lintian dpkg-dev man-db
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages installed"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "deps: missing ${missing[*]} and not root (no sudo): install them first" >&2
  exit 1
fi

log=${WALREV_DEPS_LOG:-${TMPDIR:-/tmp}/walrev-deps.log}
echo "deps: installing ${#missing[@]} package(s): ${missing[*]} (apt log: $log)"
start=$SECONDS
if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
       "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
     >"$log" 2>&1; then
  echo "deps: apt-get failed; the end of $log:" >&2
  tail -20 "$log" >&2
  exit 1
fi
echo "deps: installed ${#missing[@]} package(s) in $((SECONDS - start)) s; all ${#packages[@]} present"
