#!/usr/bin/env bash
# The walrev command line: usage errors exit 2 naming the option or command;
# a bad config file exits 2 with FILE:LINE; precedence defaults < file <
# environment < flags, observed through `walrev setup`; `walrev rules`; a
# password on the command line is warned about and never printed.
source "$(dirname "$0")/lib.sh"

OUT=$TEST_TMP
for v in WALREV_SOURCE WALREV_HISTORY WALREV_SCHEMA WALREV_SLOT WALREV_PUBLICATION WALREV_LOG_LEVEL WALREV_FILE; do
  unset $v
done

# walrev as it is, no configuration but what each call names (run_w runs W)
W() { "$WALREV_BIN" "$@"; }
expect_err() { expect_eq "$1" "$(cat "$OUT/$2.err")" "$3"; }

run_w version --version
expect_eq "--version exits 0" "$rc" 0
[[ "$(cat $OUT/version.out)" =~ ^walrev\ [0-9] ]] || fail "--version printed '$(cat $OUT/version.out)'"

# output that cannot be written fails the command (an export cut short by a
# full disk must not exit 0); a reader that went away does not
if [ -w /dev/full ]; then
  rc=0; "$WALREV_BIN" rules >/dev/full 2>"$OUT/full.err" || rc=$?
  expect_eq "rules to a full disk exits 1" "$rc" 1
  expect_err "its message" full "walrev: cannot write the output (standard output): No space left on device"
  rc=0; "$WALREV_BIN" --help >/dev/full 2>"$OUT/full2.err" || rc=$?
  expect_eq "--help to a full disk exits 1" "$rc" 1
fi
rc=0; "$WALREV_BIN" --help | true || rc=$?
expect_eq "--help into a closed pipe exits 0" "$rc" 0

run_w help --help
expect_eq "--help exits 0" "$rc" 0
grep -q "^  setup " $OUT/help.out || fail "--help lists no setup"
grep -q "^  rollback " $OUT/help.out || fail "--help lists no rollback"

run_w none
expect_eq "no command exits 2" "$rc" 2

run_w unknown frobnicate
expect_eq "unknown command exits 2" "$rc" 2
expect_err "unknown command message" unknown "walrev: unknown command 'frobnicate'
Try 'walrev --help'."

run_w badopt run --frob
expect_eq "unknown option exits 2" "$rc" 2
expect_err "unknown option message" badopt "walrev run: unknown option '--frob'
Try 'walrev run --help'."

run_w badshort -x setup
expect_eq "unknown global short option exits 2" "$rc" 2
expect_err "unknown short option message" badshort "walrev: unknown option '-x'
Try 'walrev --help'."

run_w noval run --stop-lsn
expect_eq "missing value exits 2" "$rc" 2
expect_err "missing value message" noval "walrev run: missing value for option '--stop-lsn'
Try 'walrev run --help'."

run_w badlsn --source "dbname=x" run --stop-lsn 12
expect_eq "bad LSN exits 2" "$rc" 2
expect_err "bad LSN message" badlsn "walrev run: --stop-lsn '12' is not an LSN (expected X/X in hex)"

run_w extra rules surplus
expect_eq "stray argument exits 2" "$rc" 2
expect_err "stray argument message" extra "walrev rules: unexpected argument 'surplus'
Try 'walrev rules --help'."

# Without --source, libpq's defaults: here a port nothing listens on.
PGPORT=1 PGDATABASE=nowhere run_w nosource setup --check
expect_eq "setup with libpq's defaults, nothing listening, exits 1" "$rc" 1
grep -qF '127.0.0.1:1/nowhere' $OUT/nosource.err $OUT/nosource.out || { cat $OUT/nosource.err; fail "no attempt at PGPORT"; }
pass "no --source: libpq's defaults (PGPORT) are used"

run_w runhelp run --help
expect_eq "run --help exits 0" "$rc" 0
grep -q -- "--stop-lsn LSN" $OUT/runhelp.out || fail "run --help lacks --stop-lsn"

run_w nosink --source "dbname=x" run --no-history
expect_eq "run with no sink exits 2" "$rc" 2
expect_err "no sink message" nosink "walrev run: nothing to write to: the history store is off and no file or Kafka sink is configured"

# ---- config files ----
printf '[source]\nconninfo = dbname=x\n\n[history]\nbatch_max_ms = soon\n' >$OUT/bad.conf
run_w badconf -c $OUT/bad.conf rules
expect_eq "bad config exits 2" "$rc" 2
expect_err "bad config message" badconf "walrev: $OUT/bad.conf:5: [history] batch_max_ms: 'soon' is not an integer"

printf '[source]\nconninfo = dbname=x\n[worker]\nthreads = 4\n' >$OUT/unknown.conf
run_w unknownkey -c $OUT/unknown.conf rules
expect_eq "unknown key exits 2" "$rc" 2
expect_err "unknown key message" unknownkey "walrev: $OUT/unknown.conf:4: unknown key 'threads' in [worker]"

run_w missingconf -c $OUT/nope.conf rules
expect_eq "missing config exits 2" "$rc" 2
expect_err "missing config message" missingconf "walrev: cannot open config file $OUT/nope.conf: No such file or directory"

WALREV_LOG_LEVEL=shouty "$WALREV_BIN" rules >/dev/null 2>$OUT/envlevel.err && fail "bad WALREV_LOG_LEVEL accepted" || rc=$?
expect_eq "bad environment exits 2" "$rc" 2
expect_err "bad environment message" envlevel "walrev: environment WALREV_LOG_LEVEL: unknown level 'shouty' (error, warn, info or debug)"

cat >$OUT/rules.conf <<'EOF'
[tracking]
exclude = public.audit_*
hidden = public.users.password_hash
hidden = public.users.api_token
untracked = public.users.last_seen
allow_suppress = true
EOF
run_w rules -c $OUT/rules.conf rules
expect_eq "rules exits 0" "$rc" 0
expect_eq "rules listing" "$(cat $OUT/rules.out)" "excluded tables (no history at all):
  public.audit_*
untracked columns (changes ignored):
  public.users.last_seen
hidden columns (changes recorded, values never):
  public.users.password_hash
  public.users.api_token
suppression by context: allowed"

# ---- precedence, seen through the slot setup creates ----
source_db cli_precedence
printf '[source]\nconninfo = host=127.0.0.1 port=1 dbname=wrong\nslot = file_slot\npublication = file_pub\n' >$OUT/prec.conf
# The environment overrides the file (source, publication); the flag overrides both (slot).
WALREV_SOURCE="$SRC" WALREV_SLOT=env_slot WALREV_PUBLICATION=env_pub \
  must "$OUT/prec.out" "precedence setup failed" "$WALREV_BIN" -c $OUT/prec.conf --slot cli_flag_slot setup
grep -qF "created   replication slot cli_flag_slot with a baseline" $OUT/prec.out || { cat $OUT/prec.out; fail "flag did not win for slot"; }
grep -qF "created   publication env_pub " $OUT/prec.out || { cat $OUT/prec.out; fail "environment did not win for publication"; }
pass "flags > environment > file"
# Global options may also follow the command.
"$WALREV_BIN" setup -c $OUT/prec.conf --source "$SRC" --slot cli_flag_slot --publication env_pub >$OUT/after.out 2>&1 \
  || { cat $OUT/after.out; fail "global options after the command"; }
expect_eq "options after the command" "$(tail -1 $OUT/after.out)" "nothing to change: walrev is already set up (0 warning(s))"
$PSQL -d postgres -c "SELECT pg_drop_replication_slot('cli_flag_slot')" >/dev/null

# ---- a password in a flag: warned about, never printed ----
run_w pw --source "host=127.0.0.1 port=1 dbname=x user=u password=Hunter2Secret" setup
expect_eq "unreachable source exits 1" "$rc" 1
grep -qF 'warn msg="password given on the command line: other users can see it in ps; use ~/.pgpass, PGPASSWORD or a service file" option=--source' $OUT/pw.err \
  || { cat $OUT/pw.err; fail "no password warning"; }
if grep -q Hunter2Secret $OUT/pw.out $OUT/pw.err; then fail "password printed"; fi
pass "password warned about and never printed"
# ---- logs: logfmt, and syslog priorities when stderr is the journal ----
: >$OUT/journal.err
JOURNAL_STREAM=$(stat -c '%d:%i' $OUT/journal.err) timeout 10 "$WALREV_BIN" \
  --source "host=127.0.0.1 port=1 dbname=x user=u password=Hunter2Secret" setup >/dev/null 2>>$OUT/journal.err || true
grep -qE '^<4>ts=[0-9T:.-]+Z level=warn msg="password given on the command line' $OUT/journal.err \
  || { cat $OUT/journal.err; fail "no <4> priority on a warning written to the journal"; }
pass "a warning on the journal's stream carries <4>"
JOURNAL_STREAM=1:1 "$WALREV_BIN" --source "host=127.0.0.1 port=1 dbname=x user=u password=Hunter2Secret" setup >/dev/null 2>$OUT/nojournal.err || true
grep -qE '^ts=[0-9T:.-]+Z level=warn msg="password given' $OUT/nojournal.err || { cat $OUT/nojournal.err; fail "logfmt line"; }
if grep -q '^<' $OUT/nojournal.err; then fail "a priority prefix on a stderr that is not the journal"; fi
pass "logfmt lines, no priority when stderr is not the journal"
echo "all cli tests passed"
