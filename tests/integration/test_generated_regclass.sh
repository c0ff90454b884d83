#!/usr/bin/env bash
# A generation expression naming a table by an unqualified regclass literal
# ('ref'::regclass) or calling a function of the user's schema (issue 13):
# PostgreSQL stores the table's oid and the function's oid, and pg_get_expr
# writes the names back as the session's search_path makes them visible.
# Snapshots compute the expression on the history server with search_path =
# pg_catalog. The DDL capture deparses with that search_path (everything
# schema-qualified) and was right; the baseline's description of a table
# that predates setup deparsed with the session's, so 'ref'::regclass and
# relnum(...) came back unqualified and every snapshot failed ('relation
# "ref" does not exist', 'function relnum(regclass) does not exist'). Now
# both deparse alike, and the snapshot equals the table whatever
# search_path the table was created under.
source "$(dirname "$0")/lib.sh"
source_db generated_regclass genregclass

q $DB "CREATE SCHEMA s2;
       CREATE TABLE ref (i int); CREATE TABLE s2.ref (i int); CREATE TABLE s2.only2 (i int);
       CREATE FUNCTION relnum(r regclass) RETURNS bigint IMMUTABLE LANGUAGE sql AS 'SELECT r::oid::bigint';
       CREATE TABLE g0 (a int PRIMARY KEY, x bigint GENERATED ALWAYS AS (relnum('ref'::regclass) + a) STORED,
                        y bigint GENERATED ALWAYS AS (('s2.ref'::regclass)::oid::bigint + a) STORED);
       SET search_path = s2, public;
       CREATE TABLE public.g0s (a int PRIMARY KEY, x bigint GENERATED ALWAYS AS (relnum('ref'::regclass) + a) STORED,
                                y bigint GENERATED ALWAYS AS (('only2'::regclass)::oid::bigint + a) STORED);
       RESET search_path;
       INSERT INTO g0 (a) VALUES (1); INSERT INTO g0s (a) VALUES (1)"
w_setup

NP=0
LSN=()
TABLES="g0 g0s g1"
point                                                                          # 0: the baseline
q $DB "SET search_path = s2, public;
       CREATE TABLE public.g1 (a int PRIMARY KEY, x bigint GENERATED ALWAYS AS (relnum('ref'::regclass) + a) STORED,
                               y bigint GENERATED ALWAYS AS (('only2'::regclass)::oid::bigint + a) STORED);
       RESET search_path;
       INSERT INTO g1 (a) VALUES (1); INSERT INTO g0 (a) VALUES (2); INSERT INTO g0s (a) VALUES (2)"; point   # 1
run_to_now "$LOG" --source "$SRC" --slot genregclass

expect_eq "the baseline's expressions are schema-qualified, as the DDL capture's" \
  "$(q $DB "SELECT relname, gen_exprs FROM walrev.relation_version WHERE relname LIKE 'g%' ORDER BY relname")" \
"g0|{\"(public.relnum('public.ref'::regclass) + a)\",\"((('s2.ref'::regclass)::oid)::bigint + a)\"}
g0s|{\"(public.relnum('s2.ref'::regclass) + a)\",\"((('s2.only2'::regclass)::oid)::bigint + a)\"}
g1|{\"(public.relnum('s2.ref'::regclass) + a)\",\"((('s2.only2'::regclass)::oid)::bigint + a)\"}"
expect_points_equal 5
r=$(q $DB "SELECT 'public.ref'::regclass::oid")
s=$(q $DB "SELECT 's2.ref'::regclass::oid")
o=$(q $DB "SELECT 's2.only2'::regclass::oid")
expect_eq "g0: 'ref' is public.ref, as it was where the table was made" \
  "$(W snapshot --table g0 --format csv --order key 2>/dev/null)" \
"a,x,y
1,$((r + 1)),$((s + 1))
2,$((r + 2)),$((s + 2))"
expect_eq "g0s and g1: made under search_path s2, public, 'ref' is s2.ref" \
  "$(W snapshot --table g0s 2>/dev/null | LC_ALL=C sort; W snapshot --table g1 2>/dev/null)" \
"$(printf '1\t%s\t%s\n2\t%s\t%s\n1\t%s\t%s' $((s + 1)) $((o + 1)) $((s + 2)) $((o + 2)) $((s + 1)) $((o + 1)))"
W verify >/dev/null 2>&1 || fail verify
pass "verify passes"
