#!/usr/bin/env bash
# Every command, table-driven (issue 17.1): `--help` answers with no database
# and no configuration and exits 0; it equals the command's block in
# docs/cli.md; an unknown option, a missing value and a global option's bad
# value exit 2 whether the global option comes before or after the command.
# Then, against the cluster (17.2, 17.8): no conninfo at all means libpq's
# defaults (PGDATABASE...), --source after a replay command is honoured, usage
# errors of replay commands exit 2 with a database configured, --table takes
# SQL-quoted names, and a history schema named by a reserved word (order)
# works for setup, run and replay.
source "$(dirname "$0")/lib.sh"

OUT=$TEST_TMP
for v in WALREV_SOURCE WALREV_HISTORY WALREV_SCHEMA WALREV_SLOT WALREV_PUBLICATION WALREV_LOG_LEVEL WALREV_FILE; do
  unset $v
done
DOCS=${WALREV_SOURCE_DIR:?}/docs/cli.md
COMMANDS="setup run status rules baseline tail verify snapshot log show history blame diff restore revert rollback branch merge review erase prune compact"

# walrev as it is, no configuration but what each call names (run_w runs W)
W() { "$WALREV_BIN" "$@"; }
# the fenced block right after the heading "## `walrev CMD`" (or ###) in docs/cli.md
doc_block() {
  awk -v h="\`walrev $1\`" '
    /^#+ / { sub(/^#+ /, ""); want = ($0 == h); next }
    want && /^```/ { if (inblock) exit; inblock = 1; next }
    inblock { print }' "$DOCS"
}

ncmd=0
for cmd in $COMMANDS; do
  ncmd=$((ncmd + 1))
  # no database anywhere: libpq would find nothing (PGHOST points nowhere)
  ( export PGHOST=/nonexistent PGPORT=1
    run_w "$cmd.help" "$cmd" --help
    echo "$rc" >"$OUT/$cmd.help.rc" )
  expect_eq "$cmd --help exits 0" "$(cat "$OUT/$cmd.help.rc")" 0
  expect_eq "$cmd --help writes nothing to stderr" "$(cat "$OUT/$cmd.help.err")" ""
  head -1 "$OUT/$cmd.help.out" | grep -q "^usage: walrev \[global options\] $cmd" \
    || fail "$cmd --help starts: $(head -1 "$OUT/$cmd.help.out")"
  run_w "$cmd.help2" --help "$cmd"
  expect_eq "walrev --help $cmd is $cmd --help" "$(cat "$OUT/$cmd.help2.out")" "$(cat "$OUT/$cmd.help.out")"
  run_w "$cmd.h" "$cmd" -h
  expect_eq "$cmd -h is $cmd --help" "$(cat "$OUT/$cmd.h.out")" "$(cat "$OUT/$cmd.help.out")"
  expect_eq "docs/cli.md holds $cmd --help verbatim" "$(doc_block "$cmd")" "$(cat "$OUT/$cmd.help.out")"

  run_w "$cmd.bad" "$cmd" --no-such-option
  expect_eq "$cmd --no-such-option exits 2" "$rc" 2
  expect_eq "$cmd --no-such-option message" "$(cat "$OUT/$cmd.bad.err")" "walrev $cmd: unknown option '--no-such-option'
Try 'walrev $cmd --help'."
  expect_eq "$cmd --no-such-option prints nothing on stdout" "$(cat "$OUT/$cmd.bad.out")" ""

  run_w "$cmd.noval" "$cmd" --schema
  expect_eq "$cmd --schema without a value exits 2" "$rc" 2
  expect_eq "$cmd missing value message" "$(head -1 "$OUT/$cmd.noval.err")" "walrev $cmd: missing value for option '--schema'"

  # a global option after the command is honoured: its file is read (and missing)
  run_w "$cmd.after" "$cmd" -c "$OUT/missing.conf"
  expect_eq "$cmd -c FILE after the command exits 2" "$rc" 2
  expect_eq "$cmd -c FILE after the command is read" "$(cat "$OUT/$cmd.after.err")" \
    "walrev: cannot open config file $OUT/missing.conf: No such file or directory"
  run_w "$cmd.before" -c "$OUT/missing.conf" "$cmd"
  expect_eq "-c FILE before $cmd exits 2" "$rc" 2
  run_w "$cmd.afterlong" "$cmd" --slot=Not-Valid
  expect_eq "$cmd --slot=BAD after the command exits 2" "$rc" 2
  expect_eq "$cmd --slot=BAD message" "$(cat "$OUT/$cmd.afterlong.err")" \
    "walrev: option --slot: [source] slot: slot name 'Not-Valid' is not valid: use 1-63 lower-case letters, digits or _"
done
expect_eq "commands covered" "$ncmd" 22
# every command the top-level help lists is in the table above
listed=$("$WALREV_BIN" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' | sort | tr '\n' ' ')
expect_eq "the table covers every listed command" "$listed" "$(echo $COMMANDS | tr ' ' '\n' | sort | tr '\n' ' ')"

# tail: short options keep their values; a global -v among them is taken out
run_w tailshort tail -vF table --max-messages=1 -f /dev/null
expect_eq "tail -vF table -f /dev/null exits 0" "$rc" 0

# ---- against the cluster ----
DB=cli_env_only
fresh_db $DB
q $DB "CREATE SCHEMA \"My Schema\"; CREATE TABLE \"My Schema\".\"Tab \"\"q\"\"\" (id int PRIMARY KEY, v text);
       CREATE TABLE plain (id int PRIMARY KEY, v text)"
# Only libpq's environment says where the database is: no --source, no WALREV_SOURCE.
export PGDATABASE=$DB WALREV_SLOT=cli_env_only
run_w setup setup --schema order
expect_eq "setup with libpq's defaults and --schema order exits 0" "$rc" 0
grep -qF "created   history store" "$OUT/setup.out" || { cat "$OUT/setup.out" "$OUT/setup.err"; fail "setup made no history store"; }
q $DB "INSERT INTO \"My Schema\".\"Tab \"\"q\"\"\" VALUES (1, 'one'), (2, NULL); INSERT INTO plain VALUES (7, 'seven')"
LSN=$(q $DB "SELECT pg_current_wal_insert_lsn()")
wal_flushed() { [ "$(q $DB "SELECT pg_current_wal_flush_lsn() >= '$LSN'")" = t ]; }  # asked again on every try
wait_for 30 wal_flushed || fail "WAL not flushed"
run_to "$LSN" "$OUT/run.log" --schema order
expect_eq "the inserts' revision in schema \"order\"" "$(q $DB 'SELECT n_insert FROM "order".revision ORDER BY id DESC LIMIT 1')" 3

run_w snap snapshot --schema order --table '"My Schema"."Tab ""q"""'
expect_eq "snapshot of a quoted table name, libpq's defaults, exits 0" "$rc" 0
expect_eq "snapshot rows" "$(sort "$OUT/snap.out")" "1	one
2	\\N"
run_w snapcase --schema order snapshot --table PLAIN
expect_eq "a bare name is folded to lower case" "$(cat "$OUT/snapcase.out")" "7	seven"
run_w snapbadname --schema order snapshot --table '"My Schema'
expect_eq "an unterminated quoted name is a usage error" "$rc" 2
grep -qF 'invalid table name "My Schema' "$OUT/snapbadname.err" || fail "bad name message: $(cat "$OUT/snapbadname.err")"

# xid:N is a point wherever a point is (17.9): the inserts' transaction, as 32-bit xid and as txid_current()
XID=$(q $DB 'SELECT xid FROM "order".revision ORDER BY id DESC LIMIT 1')
REV=$(q $DB 'SELECT id FROM "order".revision ORDER BY id DESC LIMIT 1')
run_w xid --schema order snapshot --table plain --at "xid:$XID"
expect_eq "snapshot --at xid:N" "$rc:$(cat "$OUT/xid.out")" "0:7	seven"
grep -qF "resolved xid:$XID to revision $REV " "$OUT/xid.err" || fail "xid not resolved to $REV: $(cat "$OUT/xid.err")"
run_w xid64 --schema order log --until "xid:$((XID + (3 << 32)))" --limit 1 --format csv
expect_eq "log --until xid:(epoch<<32|xid)" "$rc:$(sed -n 2p "$OUT/xid64.out" | cut -d, -f1)" "0:$REV"
run_w xidnone --schema order show "xid:$((XID + 100000))"
expect_eq "an xid the history lacks exits 1" "$rc" 1
grep -qF "no revision of transaction $((XID + 100000)) in the history" "$OUT/xidnone.err" || fail "xid message: $(cat "$OUT/xidnone.err")"

# --source after the command wins over libpq's environment (which names a database that does not exist)
PGDATABASE=no_such_db run_w after snapshot --table plain --source "$(conninfo $DB)" --schema order
expect_eq "--source after snapshot is honoured" "$rc:$(cat "$OUT/after.out")" "0:7	seven"
PGDATABASE=no_such_db run_w nosrc --schema order snapshot --table plain
expect_eq "without it the environment's database is used (and missing)" "$rc" 1
grep -qF 'no_such_db' "$OUT/nosrc.err" || fail "no_such_db not tried: $(cat "$OUT/nosrc.err")"

# usage errors with a database configured: exit 2, not 1
for args in "show" "show 1 2" "log --limit x" "history --table plain" "diff 1" "revert" "rollback" \
            "restore --table plain" "snapshot --format yaml" "log --format yaml" "blame --table plain --key 7 --limit 1" \
            "erase --table plain --key 7" "erase --key 7 --reason r" "erase --table plain --key 7 --reason r --wait x" \
            "erase --table plain --key 7 --reason r --actor walrev:me" "erase --table plain --key 7 --reason r extra"; do
  # shellcheck disable=SC2086
  run_w usage --schema order $args
  expect_eq "walrev $args exits 2" "$rc" 2
  expect_eq "walrev $args prints nothing on stdout" "$(cat "$OUT/usage.out")" ""
done
# a runtime error stays 1
run_w unknownkey --schema order history --table plain --key 99
expect_eq "an unknown key exits 1" "$rc" 1
run_w verify --schema order verify
expect_eq "verify with libpq's defaults and schema order exits 0" "$rc" 0
$PSQL -d postgres -c "SELECT pg_drop_replication_slot('cli_env_only')" >/dev/null
echo "all cli help tests passed"
