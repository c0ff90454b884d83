#!/usr/bin/env bash
# Every command that connects checks its arguments first: with the history
# store (and the source) unreachable, a wrong argument is still a usage error
# (exit 2, a message naming it, nothing on stdout), not the connection error;
# right arguments reach the connection and fail with it (exit 1). The store
# here is a port nothing listens on, given by --history/--source and by a
# configuration file.
source "$(dirname "$0")/lib.sh"

for v in WALREV_SOURCE WALREV_HISTORY WALREV_SCHEMA WALREV_SLOT WALREV_PUBLICATION WALREV_LOG_LEVEL WALREV_FILE; do
  unset $v
done
DOWN="host=127.0.0.1 port=1 dbname=nowhere connect_timeout=5"
printf '[source]\nconninfo = %s\n\n[history]\nconninfo = %s\n' "$DOWN" "$DOWN" >"$TEST_TMP/down.conf"

# run_down HOW ARGS...: walrev with the store down (HOW: flags or config); $rc, $TEST_TMP/{out,err}
run_down() {
  local how=$1
  shift
  rc=0
  if [ "$how" = flags ]; then
    "$WALREV_BIN" --source "$DOWN" --history "$DOWN" "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || rc=$?
  else
    "$WALREV_BIN" -c "$TEST_TMP/down.conf" "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || rc=$?
  fi
}

# check RC MESSAGE ARGS...: walrev with the store down, by flags and by the
# configuration file in turn: exit RC with MESSAGE on stderr; a usage error
# (2) without a connection attempt and with nothing on stdout
nrun=0
check() {
  local want=$1 msg=$2 how=flags
  shift 2
  [ $((nrun % 2)) = 1 ] && how=config
  nrun=$((nrun + 1))
  run_down $how "$@"
  [ "$rc" = "$want" ] || { cat "$TEST_TMP/err"; fail "walrev $* ($how): exit $rc, expected $want"; }
  grep -qF -- "$msg" "$TEST_TMP/err" || { cat "$TEST_TMP/err"; fail "walrev $*: no '$msg' on stderr"; }
  [ "$want" = 2 ] || return 0
  if grep -q "could not connect" "$TEST_TMP/err"; then fail "walrev $*: connected before it checked its arguments"; fi
  [ ! -s "$TEST_TMP/out" ] || fail "walrev $*: a usage error printed to stdout: $(cat "$TEST_TMP/out")"
}
nusage=0
nrefused=0
# usage MESSAGE ARGS...: a usage error (exit 2) saying MESSAGE
usage() { nusage=$((nusage + 1)); check 2 "$@"; }
# refused WHAT ARGS...: right arguments reach the connection: exit 1, the connection error naming WHAT
refused() { nrefused=$((nrefused + 1)); check 1 "$1: could not connect" "${@:2}"; }

# ---- a usage error per command and kind of check ----
usage "unknown option '--bogus'" snapshot --bogus
usage "missing value for option '--at'" snapshot --at
usage 'invalid point "yesterday" (--at)' snapshot --at yesterday
usage "invalid table name a.b.c" snapshot --table a.b.c
usage "--into and --output-dir exclude each other" snapshot --into s --output-dir /tmp
usage "--target is the database for --into: it needs --into" snapshot --target "dbname=x"
usage "--memory lots: expected MiB" snapshot --memory lots
usage "unknown --format yaml" snapshot --format yaml
usage "--since 4 (revision 4) is after --until 2 (revision 2)" log --since 4 --until 2
usage 'invalid point "xid:abc" (--since)' log --since xid:abc
usage 'invalid point "0/1/2" (--until)' log --until 0/1/2
usage "invalid --actor nocolon: expected TYPE:ID" log --actor nocolon
usage "log takes one --table" log --table a --table b
usage "--key needs --table" log --key 1
usage "invalid --limit -3: expected a count" log --limit -3
usage "log does not take --at" log --at 3
usage "usage: walrev show POINT" show
usage 'invalid point "later" (POINT)' show later
usage "unknown --format xml" show 3 --format xml
usage "history needs --table T and --key K" history --table t
usage "invalid --key [1" history --table t --key "[1"
usage 'invalid table name "t: expected table or schema.table' history --table '"t' --key 1
usage "--since 9 (revision 9) is after --until 1 (revision 1)" history --table t --key 1 --since 9 --until 1
usage "history does not take --actor" history --table t --key 1 --actor user:a
usage "blame needs --table T and --key K" blame --key 1
usage 'invalid point "soon" (--at)' blame --table t --key 1 --at soon
usage "usage: walrev diff POINT1 POINT2" diff 3
usage 'invalid point "x" (POINT2)' diff 3 x
usage "invalid table name a.b.c" diff 1 2 --table a.b.c
usage "invalid branch name Bad" diff main..Bad
usage "usage: walrev restore" restore --table t --key 1
usage "usage: walrev restore" restore --table t --key 1 --at 2 --force
usage 'invalid point "never" (--at)' restore --table t --key 1 --at never
usage "invalid --key []" restore --table t --key "[]" --at 2
usage "--actor walrev:x: the actor type walrev is reserved" restore --table t --key 1 --at 2 --actor walrev:x
usage "usage: walrev revert POINT" revert
usage 'invalid point "tuesday" (POINT)' revert tuesday
usage "usage: walrev revert POINT" revert 3 --columns a
usage "usage: walrev rollback --to POINT" rollback
usage 'invalid point "start" (--to)' rollback --to start
usage "invalid table name a.b.c" rollback --to 1 --table a.b.c
usage "usage: walrev branch create|list|drop" branch
usage "branch: unknown subcommand grow" branch grow
usage "invalid branch name Bad-Name" branch create Bad-Name
usage 'invalid point "then" (--at)' branch create b1 --at then
usage "invalid table name a.b.c" branch create b1 --table a.b.c
usage "unknown --format yaml" branch list --format yaml
usage "invalid branch name main" branch drop main
usage "--actor x: expected TYPE:ID" branch drop b1 --actor x
usage "usage: walrev merge NAME" merge
usage "merge --apply needs --actor TYPE:ID" merge b1 --apply
usage "unknown --format yaml" merge b1 --format yaml
usage "invalid branch name B1" merge B1
usage "review --approve needs --actor TYPE:ID" review b1 --approve
usage "--comment is a note with an approval: it needs --approve" review b1 --comment fine
usage "unknown --format csv: expected markdown or json" review b1 --format csv
usage "erase needs --table T and --key K" erase --table t --reason r
usage "--reason is required" erase --table t --key 1
usage "--wait waits for the worker to erase: it needs --apply" erase --table t --key 1 --reason r --wait 5
usage "invalid --key [1" erase --table t --key "[1" --reason r
usage "invalid table name a.b.c" erase --table a.b.c --key 1 --reason r
usage "prune needs --before POINT" prune
usage 'invalid point "old" (--before)' prune --before old
usage "--export writes the range as it is dropped: it needs --apply" prune --before 5 --export /tmp/x
usage "prune --import DIR takes no other option" prune --import /tmp/x --apply
usage "verify: unexpected argument now" verify now
usage "compact: unexpected argument now" compact now
usage '--wait wants seconds (0..86400), not "x"' verify --against-source --wait x
usage 'invalid table name "a.b.c"' verify --against-source --table a.b.c
usage "invalid table name (expected table or schema.table, quoted as in SQL) 'a.b.c'" baseline --table a.b.c
usage "--max-lag-bytes needs a count" status --max-lag-bytes lots
pass "$nusage wrong arguments: exit 2 naming them, with the store down"

# ---- right arguments: the connection error, exit 1 ----
refused "history store" snapshot --at 3 --table t
refused "history store" log --since 2 --until 4 --actor user:a --table t --key 1 --limit 5
refused "history store" log --since "2026-11-20 10:00:00+00" --until 0/5008
refused "history store" show xid:7
refused "history store" history --table public.t --key '["1"]'
refused "history store" blame --table t --key 1 --at 3
refused "history store" diff 1 2 --table t
refused "history store" diff main..b1
refused "history store" restore --table t --key 1 --at 2
refused "history store" revert 3 --force
refused "history store" rollback --to 2 --table t
refused "history store" branch create b1 --at 2
refused "history store" branch list
refused "history store" branch drop b1
refused "history store" merge b1
refused "history store" review b1
refused "history store" erase --table t --key 1 --reason r
refused "history store" prune --before 5
refused "history store" verify
refused "history store" compact
refused "source" baseline --table t
pass "$nrefused right argument lists: the connection error, exit 1"
