#!/usr/bin/env bash
# A snapshot of a table with STORED generated columns, at a point when it
# had a column of a type, domain or enum dropped since (DROP … CASCADE
# dropped the column later; issue 13, difftest seed 1 with the USING INDEX
# workload: public.gl_8 at 3 points, "type public.cp6 does not exist"). The
# generated columns are computed on the history server over the row's
# columns, each cast to its type: a type that exists no more is given as
# text (an expression that used the column went with the type).
source "$(dirname "$0")/lib.sh"
source_db generated_dropped_type gendroptype

q $DB "CREATE TYPE cp AS (x int, y text);
       CREATE DOMAIN dm AS int CHECK (VALUE > 0);
       CREATE TYPE en AS ENUM ('a', 'b');
       CREATE TABLE g (id int PRIMARY KEY, a int, gg int GENERATED ALWAYS AS (a * 2) STORED, c cp, d dm, e en);
       CREATE TABLE gl (a int, gg text GENERATED ALWAYS AS (a::text || '!') STORED, c cp);
       INSERT INTO g (id, a, c, d, e) VALUES (1, 10, '(1,x)', 5, 'a'), (2, NULL, NULL, NULL, 'b');
       INSERT INTO gl (a, c) VALUES (1, '(2,\"y z\")'), (1, '(2,\"y z\")')"
w_setup
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"

NP=0
LSN=()
TABLES="g gl"
point                                                                              # 0: the baseline
q $DB "INSERT INTO g (id, a, c, d, e) VALUES (3, 7, '(,)', 9, 'b'); UPDATE g SET a = 11 WHERE id = 1;
       INSERT INTO gl (a, c) VALUES (3, '(3,)')"; point                            # 1
q $DB "DROP TYPE cp CASCADE"; point                                                # 2: c gone from both
q $DB "DROP DOMAIN dm CASCADE; INSERT INTO g (id, a, e) VALUES (4, 1, 'a')"; point # 3: d gone
q $DB "DROP TYPE en CASCADE; INSERT INTO gl (a) VALUES (5)"; point                 # 4: e gone
run_to_now "$LOG" --source "$SRC" --slot "$SLOT"
expect_points_equal 10
expect_eq "point 1 of g: the generated column over the row's columns, those of dropped types too" \
  "$(snapshot_sorted 1 g)" "1	11	22	(1,x)	5	a
2	\N	\N	\N	\N	b
3	7	14	(,)	9	b"
