# standalone.sh — what the stand-alone benches (asof_bench.sh, audit_bench.sh,
# tz_snapshot_bench.sh)
# share (sourced, not run): their arguments, log, the walrev binary they time
# and the database they build their store in, a private PostgreSQL unless they
# are given one. Needs ROOT (the checkout); sets BENCH (the bench's name), N,
# RUNS, WALREV_BIN, CI, PSQL, sql() and PGOPTIONS. A private cluster is
# stopped and removed when the bench exits.

BENCH=$(basename "$0" .sh)
log() { echo "$BENCH: $*" >&2; }

# standalone_args USAGE_END ARGS...: --rows N (into N), --runs R (into RUNS),
# -h/--help (lines 2 to USAGE_END of the bench's header, the usage, then exit
# 0); any other argument goes to the bench's bench_option ARGS..., which sets
# it and TAKE (how many words it took: 1, or 2 with its value) or returns 1
# for an unknown argument (exit 2).
standalone_args() {
  local usage_end=$1
  shift
  while [ $# -gt 0 ]; do
    TAKE=1
    case "$1" in
      --rows) N=${2:?--rows needs a count}; TAKE=2 ;;
      --runs) RUNS=${2:?--runs needs a count}; TAKE=2 ;;
      -h|--help) sed -n "2,${usage_end}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) bench_option "$@" || { echo "$BENCH: unknown argument $1 (see --help)" >&2; exit 2; } ;;
    esac
    shift "$TAKE"
  done
}

# standalone_walrev: WALREV_BIN, else ROOT's build-release/ or build/ binary; exit 1 without one.
standalone_walrev() {
  if [ -z "${WALREV_BIN:-}" ]; then
    for b in "$ROOT/build-release/worker/walrev" "$ROOT/build/worker/walrev"; do [ -x "$b" ] && WALREV_BIN=$b && break; done
  fi
  [ -n "${WALREV_BIN:-}" ] && [ -x "$WALREV_BIN" ] || { echo "$BENCH: no walrev binary: build it or set WALREV_BIN" >&2; exit 1; }
}

# standalone_database NAME CONNINFO: CI is CONNINFO, or (empty) the conninfo of
# a private cluster started now in /tmp/walrev-NAME.*, sized for stores of 10^7 deltas.
standalone_database() {
  CI=$2
  if [ -z "$CI" ]; then
    PRIVATE=$(mktemp -d "/tmp/walrev-$1.XXXXXX")
    log "starting a private PostgreSQL in $PRIVATE"
    bash "$ROOT/tests/support/pgcluster.sh" start "$PRIVATE/pg" "shared_buffers = 1GB" "max_wal_size = 8GB" \
      "work_mem = 64MB" "maintenance_work_mem = 256MB" >&2
    CI="$(cat "$PRIVATE/pg/conninfo")"
    trap 'bash "$ROOT/tests/support/pgcluster.sh" stop "$PRIVATE/pg" >&2; rm -rf "$PRIVATE"' EXIT
    trap 'exit 130' INT TERM  # so the EXIT trap stops the cluster
  fi
  PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At -d "$CI")
  # walrev.no_key_moves: the deltas the benches write move no row between keys
  # (their UPDATEs name no key column), so object_delta's key_move trigger is
  # skipped as for the history sink (docs/history-store.md#key-moves)
  export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning -c walrev.no_key_moves=on"
}

sql() { "${PSQL[@]}" -c "$1"; }

# the SQL that writes a store in bulk (relation_version_sql, revisions_sql, ...)
# shellcheck source=lib/store_fill.sh
source "$(dirname "${BASH_SOURCE[0]}")/store_fill.sh"
