/*
 * test_replay.c — replay and audit commands against a hand-computed history
 * (test_replay_fixture.sql written straight into the store) and real live
 * tables with a foreign key: snapshots at every revision with and without
 * keyframes, point resolution and its errors, log/show/history/blame/diff
 * output exactly, and restore/revert/rollback plans, --apply and failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay/replay.h"
#include "tests/support/testsupport.h"

static char conninfo[1024];
static PGconn *conn;

typedef struct {
    int rc;
    char *out;
    char *err;
} Run;

static Run run_cmd(const char *cmd, ...)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = strdup(cmd);
    va_list ap;
    va_start(ap, cmd);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 63) argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    Run r = {0};
    size_t olen, elen;
    FILE *out = open_memstream(&r.out, &olen);
    FILE *err = open_memstream(&r.err, &elen);
    ReplayOptions opts = {.history_conninfo = conninfo, .source_conninfo = conninfo, .schema = "walrev"};
    r.rc = replay_run(cmd, argc, argv, &opts, out, err);
    fclose(out);
    fclose(err);
    for (int i = 0; i < argc; i++) free(argv[i]);
    return r;
}

static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

#define RUN(...) run_cmd(__VA_ARGS__, (const char *)NULL)

static void expect_ok(Run *r)
{
    if (r->rc != 0) fail_msg("command failed (%d): %s", r->rc, r->err);
}

static void expect_error(Run *r, const char *needle)
{
    if (r->rc != 1) fail_msg("expected exit 1, got %d; out: %s err: %s", r->rc, r->out, r->err);
    if (!strstr(r->err, needle)) fail_msg("expected error containing \"%s\", got: %s", needle, r->err);
}

/* A usage error: exit 2, the message on stderr, nothing on stdout. */
static void expect_usage(Run *r, const char *needle)
{
    if (r->rc != 2) fail_msg("expected exit 2, got %d; out: %s err: %s", r->rc, r->out, r->err);
    if (!strstr(r->err, needle)) fail_msg("expected error containing \"%s\", got: %s", needle, r->err);
    if (r->out[0]) fail_msg("a usage error printed to stdout: %s", r->out);
}

/* Lines after the first (a header) sorted, for comparing unordered snapshot output. */
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *sorted_body(const char *text, bool has_header)
{
    char *copy = strdup(text);
    char *lines[4096];
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l && n < 4096; l = strtok_r(NULL, "\n", &save)) lines[n++] = l;
    int start = has_header ? 1 : 0;
    qsort(lines + start, (size_t)(n - start), sizeof(char *), cmp_str);
    size_t cap = strlen(text) + 2;
    char *out = calloc(1, cap);
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(copy);
    return out;
}

static void expect_csv_snapshot(const char *table, const char *at, const char *expected_sorted)
{
    Run r = RUN("snapshot", "--table", table, "--at", at, "--format", "csv");
    expect_ok(&r);
    char *got = sorted_body(r.out, true);
    if (strcmp(got, expected_sorted) != 0)
        fail_msg("snapshot %s at %s:\n--- got\n%s--- expected\n%s", table, at, got, expected_sorted);
    free(got);
    run_free(&r);
}

static void reset_live(void)
{
    ts_exec(conn,
            "TRUNCATE public.orders, public.customer, public.note, public.ctx_log;"
            "INSERT INTO public.note VALUES (3, false, NULL), (4, true, 'again'), (5, false, 'fourth');"
            "INSERT INTO public.customer VALUES (1, 'Anna', 'anna@z'), (3, 'Cy', NULL);"
            "INSERT INTO public.orders VALUES (10, 1, 9.99, 'shipped'), (11, 1, 7.00, 'new'), (12, 3, 1.00, 'new');");
}

static char *load_file(const char *rel)
{
    const char *src = getenv("WALREV_SOURCE_DIR");
    if (!src) fail_msg("WALREV_SOURCE_DIR is not set: run through ctest");
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s", src, rel);
    char *text = ts_read_file(path, NULL);
    if (!text) fail_msg("cannot read %s", path);
    return text;
}

static char *replace_schema(const char *sql)
{
    size_t cap = strlen(sql) * 2 + 1;
    char *out = calloc(1, cap);
    const char *p = sql, *m;
    while ((m = strstr(p, "@schema@")) != NULL) {
        strncat(out, p, (size_t)(m - p));
        strcat(out, "walrev");
        p = m + 8;
    }
    strcat(out, p);
    return out;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(conninfo, sizeof(conninfo), "%s", ts_fresh_database("walrev_replay"));
    conn = ts_connect(conninfo);
    /* store_sql_render is another module's; the DDL file is the same text */
    char *ddl_raw = load_file("schema/sql/history.sql");
    char *ddl = replace_schema(ddl_raw);
    ts_exec(conn, "%s", ddl);
    free(ddl_raw);
    free(ddl);
    char *replay_sql = replay_sql_render("walrev");
    ts_exec(conn, "%s", replay_sql);
    ts_exec(conn, "%s", replay_sql); /* idempotent */
    free(replay_sql);
    char *fixture = load_file("tests/integration/test_replay_fixture.sql");
    ts_exec(conn, "%s", fixture);
    free(fixture);
    /* the live tables and the context function `walrev setup` installs (recording calls here) */
    ts_exec(
        conn,
        "CREATE TABLE public.customer (id integer PRIMARY KEY, name text NOT NULL, email text);"
        "CREATE TABLE public.orders (id integer PRIMARY KEY, customer_id integer NOT NULL "
        "  CONSTRAINT orders_customer_id_fkey REFERENCES public.customer (id), amount numeric(10,2), status text);"
        "CREATE TABLE public.note (id integer PRIMARY KEY, done boolean, content text);"
        "CREATE TABLE public.ctx_log (n serial, context text);"
        "CREATE FUNCTION walrev.context(text) RETURNS void LANGUAGE sql AS "
        "$$ INSERT INTO public.ctx_log (context) VALUES ($1); SELECT pg_logical_emit_message(true, 'walrev', $1); $$;");
    reset_live();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    PQfinish(conn);
    return 0;
}

/* ---------------------------------------------------------------- snapshots */

/* Each table at revisions around its changes, as `snapshot --format csv`
 * gives it (rows sorted, header first). */
static const struct {
    const char *table, *at, *want;
} SNAPSHOTS[] = {
    {"customer", "1", "id,name,email\n1,Ann,ann@x\n2,Bob,bob@x\n"},
    {"customer", "3", "id,name,email\n1,Ann,ann@y\n2,Bob,bob@x\n"},
    {"customer", "4", "id,name,email\n1,Ann,ann@y\n2,Robert,bob@x\n"},
    {"public.customer", "5", "id,name,email\n1,Ann,ann@y\n2,Robert,bob@x\n3,Cy,\n"},
    {"customer", "9", "id,name,email\n1,Anna,anna@z\n3,Cy,\n"},
    {"orders", "2", "id,customer_id,amount,status\n10,1,9.99,new\n11,2,5.00,new\n"},
    {"orders", "4", "id,customer_id,amount,status\n10,1,9.99,paid\n11,2,6.50,new\n"},
    {"orders", "5", "id,customer_id,amount,status\n10,1,9.99,paid\n"},
    {"orders", "8", "id,customer_id,amount,status\n10,1,9.99,paid\n12,3,1.00,new\n"},
    {"orders", "9", "id,customer_id,amount,status\n10,1,9.99,shipped\n11,1,7.00,new\n12,3,1.00,new\n"},
    /* note: v1 columns before revision 7, v2 (done renamed from flag, content new) after */
    {"note", "1", "id,body,flag\n1,first,t\n2,second,f\n"},
    {"note", "5", "id,body,flag\n1,first,t\n2,second,f\n"},
    {"note", "6", "id,body,flag\n3,third,t\n"},
    {"note", "7", "id,done,content\n3,f,\n4,f,fourth\n"},
    /* note 4 moved to key 5 (UPDATE of id) at 8, on top of the keyframe after 7; 4 inserted again at 9 */
    {"note", "8", "id,done,content\n3,f,\n5,f,fourth\n"},
    {"note", "9", "id,done,content\n3,f,\n4,t,again\n5,f,fourth\n"},
    /* the table did not exist before revision 2 for orders? it did (valid_from 0/1000): empty */
    {"orders", "1", "id,customer_id,amount,status\n"},
};

static void test_snapshot_each_revision(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof SNAPSHOTS / sizeof SNAPSHOTS[0]; i++)
        expect_csv_snapshot(SNAPSHOTS[i].table, SNAPSHOTS[i].at, SNAPSHOTS[i].want);
    /* COPY text, NULL as \N; and the same point by LSN and by time */
    Run r = RUN("snapshot", "--table", "customer", "--at", "0/5008");
    expect_ok(&r);
    char *got = sorted_body(r.out, false);
    assert_string_equal(got, "1\tAnn\tann@y\n2\tRobert\tbob@x\n3\tCy\t\\N\n");
    assert_string_equal(r.err, "resolved 0/5008 to revision 5 (commit 0/5000 at 2026-11-20 10:05:00+00)\n");
    free(got);
    run_free(&r);
    r = RUN("snapshot", "--table", "customer", "--at", "2026-11-20 10:05:59+00");
    expect_ok(&r);
    assert_non_null(strstr(r.err, "to revision 5 "));
    run_free(&r);
    /* the same --table twice is that one table, not two in one COPY stream */
    r = RUN("snapshot", "--table", "customer", "--table", "customer", "--at", "0/5008");
    expect_ok(&r);
    got = sorted_body(r.out, false);
    assert_string_equal(got, "1\tAnn\tann@y\n2\tRobert\tbob@x\n3\tCy\t\\N\n");
    free(got);
    run_free(&r);
}

/* memory: the --memory argument ("0": the server-sorted fold instead of the hash) */
static void collect_all(char *snaps[10][3], const char *memory)
{
    const char *tables[3] = {"customer", "orders", "note"};
    for (int rev = 1; rev <= 9; rev++)
        for (int t = 0; t < 3; t++) {
            char at[8];
            snprintf(at, sizeof(at), "%d", rev);
            Run r = RUN("snapshot", "--table", tables[t], "--at", at, "--memory", memory);
            expect_ok(&r);
            snaps[rev][t] = sorted_body(r.out, false);
            run_free(&r);
        }
}

static void test_snapshot_keyframes_agree(void **state)
{
    (void)state;
    char *with[10][3], *without[10][3], *sorted[10][3];
    collect_all(with, "256");
    collect_all(sorted, "0");
    ts_exec(conn, "CREATE TEMP TABLE kf AS SELECT * FROM walrev.keyframe; CREATE TEMP TABLE kfr AS SELECT * FROM "
                  "walrev.keyframe_row;"
                  "DELETE FROM walrev.keyframe_row; DELETE FROM walrev.keyframe;");
    collect_all(without, "256");
    ts_exec(conn, "INSERT INTO walrev.keyframe SELECT * FROM kf; INSERT INTO walrev.keyframe_row SELECT * FROM kfr;");
    for (int rev = 1; rev <= 9; rev++)
        for (int t = 0; t < 3; t++) {
            if (strcmp(with[rev][t], without[rev][t]) != 0)
                fail_msg("revision %d table %d: keyframe path\n%s differs from delta path\n%s", rev, t, with[rev][t],
                         without[rev][t]);
            if (strcmp(with[rev][t], sorted[rev][t]) != 0)
                fail_msg("revision %d table %d: hashed fold\n%s differs from server-sorted fold\n%s", rev, t,
                         with[rev][t], sorted[rev][t]);
            free(with[rev][t]);
            free(sorted[rev][t]);
            free(without[rev][t]);
        }
}

/* The comparisons below run twice: pass 0 with the keyframes, pass 1 by the
 * deltas alone. After pass 0 the keyframes go aside into a temp table; after
 * pass 1 they come back, so the next test sees the store as it was. */
static void keyframes_after_pass(int pass)
{
    if (pass == 0)
        ts_exec(conn, "CREATE TEMP TABLE kf_aside AS SELECT * FROM walrev.keyframe; DELETE FROM walrev.keyframe;");
    else
        ts_exec(conn, "INSERT INTO walrev.keyframe SELECT * FROM kf_aside; DROP TABLE kf_aside;");
}

/* What a comparison query printed in PASS: the test fails unless it is the
 * agreement the check expects. */
typedef void (*AgreeCheck)(const char *v, int pass);

/* SQL (one value) run in both passes, with the keyframes and by the deltas
 * alone, its value checked each time; the keyframes are back afterwards. */
static void agree_in_both_passes(const char *sql, AgreeCheck check)
{
    for (int pass = 0; pass < 2; pass++) {
        char *v = ts_query_value(conn, "%s", sql);
        check(v, pass);
        free(v);
        keyframes_after_pass(pass);
    }
}

static void check_row_at(const char *v, int pass)
{
    if (strcmp(v, "0 ") != 0) fail_msg("row_at differs from snapshot_rows (pass %d): %s", pass, v);
}

/* row_at (one object, by its own deltas) agrees with snapshot_rows (the table) everywhere */
static void test_row_at_agrees(void **state)
{
    (void)state;
    const char *norm = "(SELECT array_agg(v[i] ORDER BY i) FROM generate_series(1, 4) i)";
    char sql[2048];
    snprintf(sql, sizeof(sql),
             "WITH keys AS (SELECT DISTINCT relid, key FROM walrev.object_delta WHERE key IS NOT NULL), "
             "cmp AS (SELECT k.relid, k.key, r, "
             "  (SELECT %1$s FROM (SELECT walrev.row_at(k.relid, k.key, r) AS v) x WHERE x.v IS NOT NULL) AS a, "
             "  (SELECT %1$s FROM (SELECT s.vals AS v FROM walrev.snapshot_rows(k.relid, r) s WHERE s.key = k.key) x) "
             "AS b "
             "  FROM keys k, generate_series(1, 9) r) "
             "SELECT count(*) || ' ' || coalesce(string_agg(format('%%s %%s@%%s: %%s vs %%s', relid, key, r, a, b), '; "
             "'), '') "
             "FROM cmp WHERE a IS DISTINCT FROM b",
             norm);
    agree_in_both_passes(sql, check_row_at);
}

/* every (set, revision) pair compared, most of them with rows, none different */
static void check_rows_at(const char *v, int pass)
{
    int n = 0, nonempty = 0, off = 0;
    if (sscanf(v, "%d %d %n", &n, &nonempty, &off) != 2 || n < 50 || nonempty < 20 || v[off] != '\0')
        fail_msg("rows_at differs from snapshot_rows (pass %d): %s", pass, v);
}

/* rows_at (the given keys, each by its own deltas; diff reads the keys it
 * compares this way) agrees with snapshot_rows restricted to those keys, for
 * every table, revision and set of keys (all keys, one key, a key that never
 * existed), with keyframes and without */
static void test_rows_at_agrees(void **state)
{
    (void)state;
    agree_in_both_passes(
        "WITH rels AS (SELECT DISTINCT relid FROM walrev.object_delta), "
        "sets AS (SELECT relid, (SELECT array_agg(DISTINCT key) || ARRAY['[\"no such key\"]'] "
        "                        FROM walrev.object_delta d WHERE d.relid = rels.relid AND key IS NOT NULL) AS "
        "keys "
        "         FROM rels "
        "         UNION ALL SELECT DISTINCT relid, ARRAY[key] FROM walrev.object_delta WHERE key IS NOT NULL), "
        "cmp AS (SELECT s.relid, s.keys, r, "
        "  (SELECT coalesce(string_agg(x.key || '=' || x.vals::text, ';' ORDER BY x.key), '') "
        "   FROM walrev.rows_at(s.relid, s.keys, r) x) AS a, "
        "  (SELECT coalesce(string_agg(x.key || '=' || x.vals::text, ';' ORDER BY x.key), '') "
        "   FROM walrev.snapshot_rows(s.relid, r) x WHERE x.key = ANY (s.keys)) AS b "
        "  FROM sets s, generate_series(1, 9) r) "
        "SELECT count(*) || ' ' || (SELECT count(*) FROM cmp WHERE a <> '') || ' ' || "
        "coalesce(string_agg(format('%s %s@%s: %s vs %s', relid, keys, r, a, b), '; ') "
        "FILTER (WHERE a IS DISTINCT FROM b), '') FROM cmp",
        check_rows_at);
}

static void test_snapshot_sql_and_into(void **state)
{
    (void)state;
    Run r = RUN("snapshot", "--table", "orders", "--at", "4", "--format", "sql");
    expect_ok(&r);
    const char *head = "-- public.orders as of revision 4 (commit 0/4000 at 2026-11-20 10:04:00+00)\n"
                       "CREATE TABLE public.orders (\n    id integer,\n    customer_id integer,\n"
                       "    amount numeric(10,2),\n    status text\n);\n"
                       "COPY public.orders (id, customer_id, amount, status) FROM stdin;\n";
    if (strncmp(r.out, head, strlen(head)) != 0) fail_msg("sql snapshot starts:\n%s", r.out);
    assert_non_null(strstr(r.out, "10\t1\t9.99\tpaid\n"));
    assert_non_null(strstr(r.out, "11\t2\t6.50\tnew\n"));
    assert_non_null(strstr(r.out, "\\.\n"));
    run_free(&r);

    /* several tables in one COPY stream are refused; --into takes them all */
    r = RUN("snapshot", "--at", "7");
    expect_error(&r, "ambiguous");
    run_free(&r);
    ts_exec(conn, "DROP SCHEMA IF EXISTS asof7 CASCADE");
    r = RUN("snapshot", "--at", "7", "--into", "asof7");
    expect_ok(&r);
    run_free(&r);
    char *v = ts_query_value(
        conn, "SELECT string_agg(format('%%s|%%s|%%s', id, done, content), ';' ORDER BY id) FROM asof7.note");
    assert_string_equal(v, "3|f|;4|f|fourth");
    free(v);
    v = ts_query_value(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                             "WHERE attrelid = 'asof7.orders'::regclass AND attname = 'amount'");
    assert_string_equal(v, "numeric(10,2)");
    free(v);
    v = ts_query_value(conn,
                       "SELECT string_agg(format('%%s|%%s|%%s', id, name, coalesce(email, 'NULL')), ';' ORDER BY id) "
                       "FROM asof7.customer");
    assert_string_equal(v, "1|Ann|ann@y;2|Robert|bob@x;3|Cy|NULL");
    free(v);
    /* loading into an existing table is refused, and nothing of the run stays */
    r = RUN("snapshot", "--at", "7", "--into", "asof7");
    expect_error(&r, "already exists");
    run_free(&r);
}

/* ---------------------------------------------------------------- points and errors */

static void test_point_errors(void **state)
{
    (void)state;
    struct {
        const char *point, *msg;
    } cases[] = {
        {"10", "revision 10 is beyond the history: the newest revision is 9"},
        {"0", "revision 0 is before the history: the oldest revision is 1"},
        {"0/A000", "LSN 0/A000 is beyond the history: the newest revision is 9 (end 0/9008)"},
        {"0/1007", "LSN 0/1007 is before the history: the oldest revision is 1 (end 0/1008)"},
        {"2026-11-20 09:00:00+00", "is before the history: the oldest revision is 1"},
        {"2999-01-01 00:00:00+00", "is in the future: the newest revision is 9"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Run r = RUN("snapshot", "--table", "customer", "--at", cases[i].point);
        expect_error(&r, cases[i].msg);
        assert_string_equal(r.out, "");
        run_free(&r);
    }
    /* a point, key or name of the wrong form is a usage error (exit 2, docs/cli.md),
     * not a runtime one like a point beyond the history */
    struct {
        const char *cmd, *opt, *value, *msg;
    } forms[] = {
        {"snapshot", "--at", "yesterday", "invalid point \"yesterday\""},
        {"snapshot", "--at", "2026-13-45 10:00:00+00", "not a timestamp with time zone"},
        {"log", "--since", "xid:abc", "invalid point \"xid:abc\""},
        {"history", "--key", "[1", "invalid --key [1"},
        {"branch", "--actor", "nocolon", "--actor nocolon: expected TYPE:ID"},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        Run r = strcmp(forms[i].cmd, "history") == 0
                    ? RUN("history", "--table", "customer", forms[i].opt, forms[i].value)
                : strcmp(forms[i].cmd, "branch") == 0 ? RUN("branch", "create", "b1", forms[i].opt, forms[i].value)
                                                      : RUN(forms[i].cmd, forms[i].opt, forms[i].value);
        expect_usage(&r, forms[i].msg);
        run_free(&r);
    }
    /* --output-dir names the directory and why, before any table is read */
    Run r = RUN("snapshot", "--output-dir", "/nonexistent-walrev-dir/x");
    expect_error(&r, "--output-dir /nonexistent-walrev-dir/x: No such file or directory (the directory must exist)");
    run_free(&r);
    r = RUN("branch", "create", "Bad-Name");
    expect_usage(&r, "invalid branch name Bad-Name");
    run_free(&r);
    /* the actor type walrev is walrev's own: an undo claiming it would be recorded
     * without an actor, so it is refused before anything is planned or applied */
    r = RUN("restore", "--table", "customer", "--key", "1", "--at", "3", "--apply", "--actor", "walrev:x");
    expect_usage(&r, "--actor walrev:x: the actor type walrev is reserved");
    run_free(&r);
    r = RUN("revert", "3", "--actor", "walrev:x");
    expect_usage(&r, "--actor walrev:x: the actor type walrev is reserved");
    run_free(&r);
    r = RUN("review", "b1", "--approve");
    expect_usage(&r, "review --approve needs --actor TYPE:ID");
    run_free(&r);
    r = RUN("snapshot", "--table", "nosuch", "--at", "3");
    expect_error(&r, "unknown table \"nosuch\"");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "99");
    expect_error(&r, "unknown key [\"99\"] in table customer");
    run_free(&r);
    r = RUN("blame", "--table", "customer", "--key", "2");
    expect_error(&r, "key [\"2\"] of table customer does not exist at revision 9");
    run_free(&r);
    r = RUN("log", "--bogus");
    expect_usage(&r, "bad option");
    run_free(&r);
    /* an option of another command is refused, not ignored */
    r = RUN("history", "--table", "customer", "--key", "1", "--actor", "user:alice");
    expect_usage(&r, "history does not take --actor");
    assert_string_equal(r.out, "");
    run_free(&r);
    r = RUN("blame", "--table", "customer", "--key", "1", "--limit", "1");
    expect_usage(&r, "blame does not take --limit");
    run_free(&r);
    r = RUN("show", "4", "--table", "customer");
    expect_usage(&r, "show does not take --table");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "1", "--limit", "-3");
    expect_usage(&r, "invalid --limit -3: expected a count");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "1", "--since", "99");
    expect_error(&r, "revision 99 is beyond the history");
    run_free(&r);
    /* an inverted range is a mistake, not an empty answer */
    r = RUN("log", "--since", "4", "--until", "2");
    expect_usage(&r, "--since 4 (revision 4) is after --until 2 (revision 2)");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "1", "--since", "5", "--until", "1");
    expect_usage(&r, "--since 5 (revision 5) is after --until 1 (revision 1)");
    run_free(&r);
    r = RUN("diff", "3");
    expect_usage(&r, "usage: walrev diff");
    run_free(&r);
}

/* ---------------------------------------------------------------- audit */

static void expect_out(Run *r, const char *expected)
{
    expect_ok(r);
    if (strcmp(r->out, expected) != 0) fail_msg("--- got\n%s--- expected\n%s", r->out, expected);
}

static void test_log(void **state)
{
    (void)state;
    Run r = RUN("log", "--format", "csv", "--limit", "3");
    expect_out(
        &r, "revision,commit_time,actor_type,actor_id,description,inserts,updates,deletes,truncates,verified,db_user\n"
            "9,2026-11-20 10:09:00+00,user,bob,ship and tidy,2,1,1,0,t,app\n"
            "8,2026-11-20 10:08:00+00,user,alice,rename Ann,1,2,0,0,f,\n"
            "7,2026-11-20 10:07:00+00,user,dave,notes v2,1,1,0,0,f,\n");
    run_free(&r);
    /* a second actor inside revision 4 finds it */
    r = RUN("log", "--actor", "user:carol", "--format", "csv");
    expect_out(
        &r, "revision,commit_time,actor_type,actor_id,description,inserts,updates,deletes,truncates,verified,db_user\n"
            "4,2026-11-20 10:04:00+00,system,billing,billing run,0,2,0,0,f,\n");
    run_free(&r);
    r = RUN("log", "--table", "orders", "--key", "[\"11\"]", "--format", "csv");
    expect_out(
        &r, "revision,commit_time,actor_type,actor_id,description,inserts,updates,deletes,truncates,verified,db_user\n"
            "9,2026-11-20 10:09:00+00,user,bob,ship and tidy,2,1,1,0,t,app\n"
            "5,2026-11-20 10:05:00+00,user,bob,cancel 11,1,0,1,0,f,\n"
            "4,2026-11-20 10:04:00+00,system,billing,billing run,0,2,0,0,f,\n"
            "2,2026-11-20 10:02:00+00,user,bob,orders,2,0,0,0,f,\n");
    run_free(&r);
    r = RUN("log", "--since", "3", "--until", "0/5008", "--format", "json");
    expect_out(
        &r,
        "[\n"
        "{\"revision\":5,\"commit_time\":\"2026-11-20 10:05:00+00\",\"actor_type\":\"user\",\"actor_id\":\"bob\","
        "\"description\":\"cancel "
        "11\",\"inserts\":1,\"updates\":0,\"deletes\":1,\"truncates\":0,\"verified\":false,\"db_user\":null},\n"
        "{\"revision\":4,\"commit_time\":\"2026-11-20 10:04:00+00\",\"actor_type\":\"system\",\"actor_id\":\"billing\","
        "\"description\":\"billing "
        "run\",\"inserts\":0,\"updates\":2,\"deletes\":0,\"truncates\":0,\"verified\":false,\"db_user\":null}\n"
        "]\n");
    run_free(&r);
    r = RUN("log", "--actor", "nobody:0", "--format", "json");
    expect_out(&r, "[]\n");
    run_free(&r);
    /* aligned by default */
    r = RUN("log", "--limit", "1");
    expect_out(&r, " revision |      commit_time       | actor_type | actor_id |  description  | inserts | updates | "
                   "deletes | truncates | verified | db_user\n"
                   "----------+------------------------+------------+----------+---------------+---------+---------+---"
                   "------+-----------+----------+--------\n"
                   "        9 | 2026-11-20 10:09:00+00 | user       | bob      | ship and tidy |       2 |       1 |   "
                   "    1 |         0 | t        | app\n"
                   "(1 row)\n");
    run_free(&r);
}

static void test_show_history_blame_diff(void **state)
{
    (void)state;
    Run r = RUN("show", "4", "--format", "json");
    expect_out(&r,
               "{\"revision\":{\"revision\":4,\"commit_time\":\"2026-11-20 10:04:00+00\",\"commit_lsn\":\"0/4000\","
               "\"end_lsn\":\"0/4008\",\"xid\":704,\"actor_type\":\"system\",\"actor_id\":\"billing\","
               "\"description\":\"billing run\",\"inserts\":0,\"updates\":2,\"deletes\":0,\"truncates\":0,"
               "\"snapshots\":0,\"warnings\":null,\"verified\":false,\"db_user\":null},\"changes\":[\n"
               "{\"seq\":1,\"table\":\"public.orders\",\"op\":\"U\",\"key\":\"[\\\"11\\\"]\",\"actor_type\":\"system\","
               "\"actor_id\":\"billing\",\"column\":\"amount\",\"old_value\":\"5.00\",\"new_value\":\"6.50\","
               "\"verified\":false,\"db_user\":null},\n"
               "{\"seq\":2,\"table\":\"public.customer\",\"op\":\"U\",\"key\":\"[\\\"2\\\"]\",\"actor_type\":\"user\","
               "\"actor_id\":\"carol\",\"column\":\"name\",\"old_value\":\"Bob\",\"new_value\":\"Robert\",\"verified\":"
               "false,\"db_user\":null}]}\n");
    run_free(&r);
    r = RUN("show", "6", "--format", "csv");
    expect_out(&r, "seq,table,op,key,actor_type,actor_id,column,old_value,new_value,verified,db_user\n"
                   "1,public.note,T,,user,alice,,,,f,\n"
                   "2,public.note,I,\"[\"\"3\"\"]\",user,alice,id,,3,f,\n"
                   "2,public.note,I,\"[\"\"3\"\"]\",user,alice,body,,third,f,\n"
                   "2,public.note,I,\"[\"\"3\"\"]\",user,alice,flag,,t,f,\n");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "1", "--format", "csv");
    expect_out(&r,
               "revision,commit_time,op,actor_type,actor_id,description,column,old_value,new_value,verified,db_user\n"
               "1,2026-11-20 10:01:00+00,I,user,alice,seed customers,id,,1,f,\n"
               "1,2026-11-20 10:01:00+00,I,user,alice,seed customers,name,,Ann,f,\n"
               "1,2026-11-20 10:01:00+00,I,user,alice,seed customers,email,,ann@x,f,\n"
               "3,2026-11-20 10:03:00+00,U,user,alice,pay order 10,email,ann@x,ann@y,f,\n"
               "8,2026-11-20 10:08:00+00,U,user,alice,rename Ann,name,Ann,Anna,f,\n"
               "8,2026-11-20 10:08:00+00,U,user,alice,rename Ann,email,ann@y,anna@z,f,\n");
    run_free(&r);
    /* --limit: the newest changes (each with all its columns), still oldest first */
    r = RUN("history", "--table", "customer", "--key", "1", "--limit", "2", "--format", "csv");
    expect_out(&r,
               "revision,commit_time,op,actor_type,actor_id,description,column,old_value,new_value,verified,db_user\n"
               "3,2026-11-20 10:03:00+00,U,user,alice,pay order 10,email,ann@x,ann@y,f,\n"
               "8,2026-11-20 10:08:00+00,U,user,alice,rename Ann,name,Ann,Anna,f,\n"
               "8,2026-11-20 10:08:00+00,U,user,alice,rename Ann,email,ann@y,anna@z,f,\n");
    run_free(&r);
    /* --since P (after the state P) and --until P (up to and including it), as for log */
    r = RUN("history", "--table", "customer", "--key", "1", "--since", "1", "--until", "7", "--format", "csv");
    expect_out(&r,
               "revision,commit_time,op,actor_type,actor_id,description,column,old_value,new_value,verified,db_user\n"
               "3,2026-11-20 10:03:00+00,U,user,alice,pay order 10,email,ann@x,ann@y,f,\n");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "1", "--until", "7", "--limit", "1", "--format", "csv");
    expect_out(&r,
               "revision,commit_time,op,actor_type,actor_id,description,column,old_value,new_value,verified,db_user\n"
               "3,2026-11-20 10:03:00+00,U,user,alice,pay order 10,email,ann@x,ann@y,f,\n");
    run_free(&r);
    r = RUN("history", "--table", "customer", "--key", "1", "--limit", "0", "--format", "csv");
    expect_out(&r,
               "revision,commit_time,op,actor_type,actor_id,description,column,old_value,new_value,verified,db_user\n");
    run_free(&r);
    r = RUN("blame", "--table", "customer", "--key", "1", "--at", "4", "--format", "csv");
    expect_out(&r, "column,value,revision,op,commit_time,actor_type,actor_id,description,verified,db_user\n"
                   "id,1,1,I,2026-11-20 10:01:00+00,user,alice,seed customers,f,\n"
                   "name,Ann,1,I,2026-11-20 10:01:00+00,user,alice,seed customers,f,\n"
                   "email,ann@y,3,U,2026-11-20 10:03:00+00,user,alice,pay order 10,f,\n");
    run_free(&r);
    r = RUN("blame", "--table", "customer", "--key", "2", "--at", "4", "--format", "csv");
    expect_out(&r, "column,value,revision,op,commit_time,actor_type,actor_id,description,verified,db_user\n"
                   "id,2,1,I,2026-11-20 10:01:00+00,user,alice,seed customers,f,\n"
                   "name,Robert,4,U,2026-11-20 10:04:00+00,user,carol,fix name,f,\n"
                   "email,bob@x,1,I,2026-11-20 10:01:00+00,user,alice,seed customers,f,\n");
    run_free(&r);
    /* blame after a re-insert: only the new life counts */
    r = RUN("blame", "--table", "orders", "--key", "11", "--format", "csv");
    expect_out(&r, "column,value,revision,op,commit_time,actor_type,actor_id,description,verified,db_user\n"
                   "id,11,9,I,2026-11-20 10:09:00+00,user,bob,ship and tidy,t,app\n"
                   "customer_id,1,9,I,2026-11-20 10:09:00+00,user,bob,ship and tidy,t,app\n"
                   "amount,7.00,9,I,2026-11-20 10:09:00+00,user,bob,ship and tidy,t,app\n"
                   "status,new,9,I,2026-11-20 10:09:00+00,user,bob,ship and tidy,t,app\n");
    run_free(&r);
    /* blame follows a row moved by an UPDATE of its key back to the old key's insert */
    r = RUN("blame", "--table", "note", "--key", "5", "--format", "csv");
    expect_out(&r, "column,value,revision,op,commit_time,actor_type,actor_id,description,verified,db_user\n"
                   "id,5,8,U,2026-11-20 10:08:00+00,user,alice,rename Ann,f,\n"
                   "done,f,7,I,2026-11-20 10:07:00+00,user,dave,notes v2,f,\n"
                   "content,fourth,7,I,2026-11-20 10:07:00+00,user,dave,notes v2,f,\n");
    run_free(&r);
    r = RUN("blame", "--table", "note", "--key", "4", "--at", "8");
    expect_error(&r, "key [\"4\"] of table note does not exist at revision 8");
    run_free(&r);
    r = RUN("history", "--table", "note", "--key", "5", "--format", "csv");
    expect_out(&r,
               "revision,commit_time,op,actor_type,actor_id,description,column,old_value,new_value,verified,db_user\n"
               "8,2026-11-20 10:08:00+00,U,user,alice,rename Ann,id,4,5,f,\n");
    run_free(&r);
    r = RUN("diff", "4", "9", "--table", "orders", "--table", "customer", "--format", "csv");
    expect_out(&r, "table,key,change,column,old_value,new_value\n"
                   "public.orders,\"[\"\"10\"\"]\",changed,status,paid,shipped\n"
                   "public.orders,\"[\"\"11\"\"]\",changed,customer_id,2,1\n"
                   "public.orders,\"[\"\"11\"\"]\",changed,amount,6.50,7.00\n"
                   "public.orders,\"[\"\"12\"\"]\",added,id,,12\n"
                   "public.orders,\"[\"\"12\"\"]\",added,customer_id,,3\n"
                   "public.orders,\"[\"\"12\"\"]\",added,amount,,1.00\n"
                   "public.orders,\"[\"\"12\"\"]\",added,status,,new\n"
                   "public.customer,\"[\"\"1\"\"]\",changed,name,Ann,Anna\n"
                   "public.customer,\"[\"\"1\"\"]\",changed,email,ann@y,anna@z\n"
                   "public.customer,\"[\"\"2\"\"]\",removed,id,2,\n"
                   "public.customer,\"[\"\"2\"\"]\",removed,name,Robert,\n"
                   "public.customer,\"[\"\"2\"\"]\",removed,email,bob@x,\n"
                   "public.customer,\"[\"\"3\"\"]\",added,id,,3\n"
                   "public.customer,\"[\"\"3\"\"]\",added,name,,Cy\n"
                   "public.customer,\"[\"\"3\"\"]\",added,email,,\n");
    run_free(&r);
    /* across the truncate and the version change of note */
    r = RUN("diff", "5", "7", "--table", "note", "--format", "csv");
    expect_out(&r, "table,key,change,column,old_value,new_value\n"
                   "public.note,\"[\"\"1\"\"]\",removed,id,1,\n"
                   "public.note,\"[\"\"1\"\"]\",removed,body,first,\n"
                   "public.note,\"[\"\"1\"\"]\",removed,done,t,\n"
                   "public.note,\"[\"\"2\"\"]\",removed,id,2,\n"
                   "public.note,\"[\"\"2\"\"]\",removed,body,second,\n"
                   "public.note,\"[\"\"2\"\"]\",removed,done,f,\n"
                   "public.note,\"[\"\"3\"\"]\",added,id,,3\n"
                   "public.note,\"[\"\"3\"\"]\",added,done,,f\n"
                   "public.note,\"[\"\"3\"\"]\",added,content,,\n"
                   "public.note,\"[\"\"4\"\"]\",added,id,,4\n"
                   "public.note,\"[\"\"4\"\"]\",added,done,,f\n"
                   "public.note,\"[\"\"4\"\"]\",added,content,,fourth\n");
    run_free(&r);
}

static void test_reader_role(void **state)
{
    (void)state;
    char *v = ts_query_value(conn, "SELECT rolcanlogin::text FROM pg_roles WHERE rolname = 'walrev_reader'");
    assert_string_equal(v, "false");
    free(v);
    ts_exec(conn, "SET ROLE walrev_reader");
    v = ts_query_value(conn, "SELECT count(*) FROM walrev.snapshot_rows(90002, 4)");
    assert_string_equal(v, "2");
    free(v);
    v = ts_query_value(conn, "SELECT count(*) FROM walrev.revision_log");
    assert_string_equal(v, "9");
    free(v);
    PGresult *res = PQexec(conn, "DELETE FROM walrev.revision");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42501");
    PQclear(res);
    ts_exec(conn, "RESET ROLE");
}

/* ---------------------------------------------------------------- undo */

static char *live(const char *table)
{
    return ts_query_value(conn, "SELECT coalesce(string_agg(t::text, ';' ORDER BY t.id), '') FROM public.%s t", table);
}

static void expect_live(const char *table, const char *expected)
{
    char *v = live(table);
    if (strcmp(v, expected) != 0) fail_msg("live %s: got %s, expected %s", table, v, expected);
    free(v);
}

static void test_restore(void **state)
{
    (void)state;
    reset_live();
    /* undelete: plan only by default */
    Run r = RUN("restore", "--table", "customer", "--key", "2", "--at", "4", "--actor", "user:eve");
    expect_out(&r,
               "BEGIN;\n"
               "SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"eve\"},"
               "\"description\":\"walrev restore --table customer --key 2 --at 4 --actor user:eve\"}');\n"
               "INSERT INTO public.customer (id, name, email) VALUES ('2'::integer, 'Robert'::text, 'bob@x'::text);\n"
               "COMMIT;\n");
    run_free(&r);
    expect_live("customer", "(1,Anna,anna@z);(3,Cy,)");
    r = RUN("restore", "--table", "customer", "--key", "2", "--at", "4", "--actor", "user:eve", "--apply");
    expect_ok(&r);
    run_free(&r);
    expect_live("customer", "(1,Anna,anna@z);(2,Robert,bob@x);(3,Cy,)");
    char *v = ts_query_value(conn, "SELECT string_agg(context, ';') FROM public.ctx_log");
    assert_string_equal(v, "{\"actor\":{\"type\":\"user\",\"id\":\"eve\"},"
                           "\"description\":\"walrev restore --table customer --key 2 --at 4 --actor user:eve\"}");
    free(v);
    /* selected columns only, differing ones only */
    r = RUN("restore", "--table", "customer", "--key", "[\"1\"]", "--at", "3", "--columns", "name", "--apply");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "UPDATE public.customer SET name = 'Ann'::text WHERE id = '1'::integer;\n"));
    run_free(&r);
    expect_live("customer", "(1,Ann,anna@z);(2,Robert,bob@x);(3,Cy,)");
    r = RUN("restore", "--table", "customer", "--key", "1", "--at", "3", "--columns", "nosuch");
    expect_error(&r, "unknown column nosuch");
    run_free(&r);
    /* nothing to do */
    r = RUN("restore", "--table", "orders", "--key", "10", "--at", "9");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "nothing to change"));
    run_free(&r);
}

static void test_restore_fk_failure(void **state)
{
    (void)state;
    reset_live();
    /* customer 3 did not exist at revision 4: restoring means deleting it, but order 12 needs it */
    Run r = RUN("restore", "--table", "customer", "--key", "3", "--at", "4", "--apply");
    expect_error(&r, "constraint \"orders_customer_id_fkey\" on table orders");
    assert_non_null(strstr(r.err, "nothing changed"));
    run_free(&r);
    expect_live("customer", "(1,Anna,anna@z);(3,Cy,)");
    char *v = ts_query_value(conn, "SELECT count(*) FROM public.ctx_log");
    assert_string_equal(v, "0"); /* the context went with the rolled-back transaction */
    free(v);
}

static void test_revert(void **state)
{
    (void)state;
    reset_live();
    /* revision 3 set customer 1 email and order 10 status; both changed later */
    Run r = RUN("revert", "3");
    expect_error(&r, "revision 3 has 2 conflicting later changes");
    if (!strstr(r.err, "public.customer | [\"1\"]  | email  |              8 | user       | alice"))
        fail_msg("conflicts: %s", r.err);
    assert_non_null(strstr(r.err, "public.orders   | [\"10\"] | status |              9 | user       | bob"));
    assert_string_equal(r.out, "");
    run_free(&r);
    expect_live("orders", "(10,1,9.99,shipped);(11,1,7.00,new);(12,3,1.00,new)");
    r = RUN("revert", "3", "--force", "--apply");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "UPDATE public.orders SET status = 'new'::text WHERE id = '10'::integer;\n"
                                  "UPDATE public.customer SET email = 'ann@x'::text WHERE id = '1'::integer;\n"));
    run_free(&r);
    expect_live("customer", "(1,Anna,ann@x);(3,Cy,)");
    expect_live("orders", "(10,1,9.99,new);(11,1,7.00,new);(12,3,1.00,new)");
    /* the newest revision has no conflicts: inverse in reverse order, FK-safe */
    reset_live();
    r = RUN("revert", "9", "--apply", "--actor", "user:ops");
    expect_out(&r,
               "BEGIN;\n"
               "SELECT walrev.context('{\"actor\":{\"type\":\"user\",\"id\":\"ops\"},"
               "\"description\":\"walrev revert 9 --actor user:ops\"}');\n"
               "DELETE FROM public.note WHERE id = '4'::integer;\n"
               "DELETE FROM public.orders WHERE id = '11'::integer;\n"
               "INSERT INTO public.customer (id, name, email) VALUES ('2'::integer, 'Robert'::text, 'bob@x'::text);\n"
               "UPDATE public.orders SET status = 'paid'::text WHERE id = '10'::integer;\n"
               "COMMIT;\n");
    run_free(&r);
    expect_live("customer", "(1,Anna,anna@z);(2,Robert,bob@x);(3,Cy,)");
    expect_live("orders", "(10,1,9.99,paid);(12,3,1.00,new)");
    expect_live("note", "(3,f,);(5,f,fourth)");
    /* reverting the key change moves the row back */
    r = RUN("revert", "8", "--apply", "--force");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "UPDATE public.note SET id = '4'::integer WHERE id = '5'::integer;\n"));
    run_free(&r);
    expect_live("note", "(3,f,);(4,f,fourth)");
    /* revert of a revision that never was */
    r = RUN("revert", "12");
    expect_error(&r, "revision 12 is beyond the history");
    run_free(&r);
}

static void test_rollback(void **state)
{
    (void)state;
    reset_live();
    Run r = RUN("rollback", "--to", "4", "--table", "orders", "--table", "customer", "--apply");
    /* inserts parents-first, updates, deletes children-first */
    expect_out(&r,
               "BEGIN;\n"
               "SELECT walrev.context('{\"actor\":{\"type\":\"cli\",\"id\":\"tester\"},"
               "\"description\":\"walrev rollback --to 4 --table orders --table customer\"}');\n"
               "INSERT INTO public.customer (id, name, email) VALUES ('2'::integer, 'Robert'::text, 'bob@x'::text);\n"
               "UPDATE public.customer SET name = 'Ann'::text, email = 'ann@y'::text WHERE id = '1'::integer;\n"
               "UPDATE public.orders SET status = 'paid'::text WHERE id = '10'::integer;\n"
               "UPDATE public.orders SET customer_id = '2'::integer, amount = '6.50'::numeric(10,2) WHERE id = "
               "'11'::integer;\n"
               "DELETE FROM public.orders WHERE id = '12'::integer;\n"
               "DELETE FROM public.customer WHERE id = '3'::integer;\n"
               "COMMIT;\n");
    run_free(&r);
    expect_live("customer", "(1,Ann,ann@y);(2,Robert,bob@x)");
    expect_live("orders", "(10,1,9.99,paid);(11,2,6.50,new)");
    /* the live tables equal the snapshot at that point */
    r = RUN("snapshot", "--table", "orders", "--at", "4");
    expect_ok(&r);
    char *snap = sorted_body(r.out, false);
    char *lv = ts_query_value(conn, "SELECT string_agg(format('%%s\t%%s\t%%s\t%%s', id, customer_id, amount, status), "
                                    "E'\\n' ORDER BY id::text) || E'\\n' FROM public.orders");
    assert_string_equal(snap, lv);
    free(snap);
    free(lv);
    run_free(&r);
    r = RUN("rollback", "--to", "9", "--table", "orders");
    expect_out(&r, "-- walrev rollback --to 9 --table orders: nothing to change\n");
    run_free(&r);
}

int main(void)
{
    setenv("USER", "tester", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_each_revision),
        cmocka_unit_test(test_snapshot_keyframes_agree),
        cmocka_unit_test(test_row_at_agrees),
        cmocka_unit_test(test_rows_at_agrees),
        cmocka_unit_test(test_snapshot_sql_and_into),
        cmocka_unit_test(test_point_errors),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_show_history_blame_diff),
        cmocka_unit_test(test_reader_role),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_restore_fk_failure),
        cmocka_unit_test(test_revert),
        cmocka_unit_test(test_rollback),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
