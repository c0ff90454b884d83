#!/usr/bin/env bash
# Output options (issue 17.7), table-driven with exact expected output:
# `snapshot --order key` sorts by the key's value (1, 2, 10; not the text
# order 1, 10, 2) in every format (text, csv, json lines, aligned); aligned
# output shows NULL as --null's text, distinct from the empty string, and
# lines up wide characters by display width; the audit commands take --null;
# a bad --format or --order is a usage error (exit 2).
source "$(dirname "$0")/lib.sh"
source_db output_formats
# its own slot: slot names are cluster-wide, and other tests use the default one
W() { "$WALREV_BIN" --source "$SRC" --slot output_formats "$@"; }
q $DB "CREATE TABLE item (id int PRIMARY KEY, name text)"
w_setup --no-baseline
q $DB "INSERT INTO item VALUES (10, '日本')"
q $DB "INSERT INTO item VALUES (2, NULL)"
q $DB "INSERT INTO item VALUES (1, '')"
run_to_now "$TMP/run.log" --source "$SRC" --slot output_formats

tab=$'\t'
# name | arguments | expected output
cases=(
  "text, by key|--format text --order key|1${tab}
2${tab}\\N
10${tab}日本"
  "csv, by key: NULL empty, empty string quoted|--format csv --order key|id,name
1,\"\"
2,
10,日本"
  "json lines, by key|--format json --order key|{\"id\":\"1\",\"name\":\"\"}
{\"id\":\"2\",\"name\":null}
{\"id\":\"10\",\"name\":\"日本\"}"
  "aligned, by key, --null|--format aligned --order key --null <null>| id |  name
----+-------
 1  | 
 2  | <null>
 10 | 日本
(3 rows)"
  "aligned, by key, NULL empty by default|--format aligned --order key| id | name
----+-----
 1  | 
 2  | 
 10 | 日本
(3 rows)"
)
for c in "${cases[@]}"; do
  name=${c%%|*}; rest=${c#*|}; args=${rest%%|*}; want=${rest#*|}
  # shellcheck disable=SC2086
  got=$(W snapshot --table item $args 2>"$TMP/err") || { cat "$TMP/err"; fail "snapshot $args"; }
  expect_eq "snapshot $name" "$got" "$want"
done

# Without --order the rows are the same set.
got=$(W snapshot --table item --format json | LC_ALL=C sort)
want=$(W snapshot --table item --format json --order key | LC_ALL=C sort)
expect_eq "snapshot --format json without --order: the same rows" "$got" "$want"

# The audit commands: --null shows NULL distinctly; without it, NULL is empty.
must "$TMP/h1" "history --null" W history --table item --key 2 --null NULLX
must "$TMP/h2" history W history --table item --key 2
[ "$(grep -c NULLX "$TMP/h1")" -ge 1 ] || { cat "$TMP/h1"; fail "history --null NULLX shows no NULLX"; }
expect_eq "history without --null has no NULLX" "$(grep -c NULLX "$TMP/h2" || true)" "0"
expect_eq "--null leaves csv alone" "$(W history --table item --key 2 --format csv --null NULLX | grep -c NULLX || true)" "0"

# Usage errors exit 2 and name the value.
for args in "--format xml" "--order name" "--null"; do
  rc=0
  # shellcheck disable=SC2086
  W snapshot --table item $args >"$TMP/u.out" 2>"$TMP/u.err" || rc=$?
  expect_eq "snapshot $args exits 2" "$rc" "2"
done
grep -q 'unknown --order name: expected key' <(W snapshot --table item --order name 2>&1) || fail "--order error message"
rc=0; W log --null >/dev/null 2>&1 || rc=$?
expect_eq "log --null without a value exits 2" "$rc" "2"
q postgres "SELECT pg_drop_replication_slot('output_formats')" >/dev/null
echo "all output format tests passed"
