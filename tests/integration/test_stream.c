/*
 * test_stream.c — the replication connection against the throwaway cluster:
 * identify, slot creation (new, existing, exported snapshot), START_REPLICATION
 * with a quoted publication name, receiving and parsing a real transaction,
 * confirming it with a status update, a clean finish, and the error classes of
 * an unreachable server, refused roles and a missing slot.
 */
#include "tests/support/pgo_expect.h"
#include "tests/support/testsupport.h"
#include "tests/support/unit_main.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decoder/pgoutput.h"
#include "decoder/stream.h"

#define DB "walrev_stream_test"
#define SLOT "walrev_stream_slot"
#define PUB "pub'1" /* a quote inside: START_REPLICATION must quote it as a literal */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Next XLogData payload, skipping keepalives; fails the test after 10 s. */
static void receive_xlogdata(ReplStream *s, PgoCopyData *cd)
{
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        const uint8_t *buf;
        size_t len;
        WrError err = {0};
        WrStatus st = repl_stream_receive(s, 500, &buf, &len, &err);
        if (st == WR_AGAIN) continue;
        if (st != WR_OK) fail_msg("receive: %s: %s", wr_status_name(st), err.msg);
        if (pgo_parse_copydata(buf, len, cd, &err) != WR_OK) fail_msg("copydata: %s", err.msg);
        if (cd->kind == PGO_COPY_XLOGDATA) return;
    }
    fail_msg("no XLogData within 10 s");
}

static void expect_text(const PgoTuple *t, int col, const char *want)
{
    PgoTupleIter it;
    PgoValue v;
    pgo_tuple_iter_init(&it, t);
    for (int i = 0; i <= col; i++) assert_true(pgo_tuple_next(&it, &v));
    assert_int_equal(v.kind, PGO_COL_TEXT);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.data, want, v.len);
}

/* A replication connection to a fresh database DB; its conninfo (valid
 * until the next ts_* call) in *conninfo when asked. */
static ReplStream *stream_on_fresh_db(const char **conninfo)
{
    const char *ci = ts_fresh_database(DB);
    if (conninfo) *conninfo = ci;
    ReplStream *s = NULL;
    WrError err = {0};
    assert_int_equal(repl_stream_connect(ci, &s, &err), WR_OK);
    return s;
}

static void test_identify_and_slots(void **state)
{
    (void)state;
    const char *conninfo;
    ReplStream *s = stream_on_fresh_db(&conninfo);
    WrError err = {0};

    ReplSystemInfo info;
    assert_int_equal(repl_stream_identify(s, &info, &err), WR_OK);
    assert_string_equal(info.dbname, DB);
    assert_int_equal(info.timeline, 1);
    assert_true(info.system_id > 0);
    assert_true(info.xlogpos > 0);

    Lsn cp = 0;
    char snap[64] = "x";
    bool exists = true;
    assert_int_equal(repl_stream_create_slot(s, SLOT "_a", false, &cp, snap, sizeof(snap), &exists, &err), WR_OK);
    assert_false(exists);
    assert_true(cp >= info.xlogpos);
    assert_string_equal(snap, ""); /* SNAPSHOT 'nothing' */

    /* The same name again: reported as existing, not as an error. */
    assert_int_equal(repl_stream_create_slot(s, SLOT "_a", false, &cp, snap, sizeof(snap), &exists, &err), WR_OK);
    assert_true(exists);
    repl_stream_destroy(s);

    /* Exported snapshot: usable from a normal connection while the exporter is idle. */
    assert_int_equal(repl_stream_connect(conninfo, &s, &err), WR_OK);
    assert_int_equal(repl_stream_create_slot(s, SLOT "_b", true, &cp, snap, sizeof(snap), &exists, &err), WR_OK);
    assert_false(exists);
    assert_true(strlen(snap) > 0);
    PGconn *conn = ts_connect(conninfo);
    ts_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '%s'; COMMIT", snap);
    repl_stream_destroy(s);

    char *n = ts_query_value(conn,
                             "SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ('%s_a','%s_b') "
                             "AND plugin = 'pgoutput' AND slot_type = 'logical' AND NOT temporary",
                             SLOT, SLOT);
    assert_string_equal(n, "2");
    free(n);
    ts_exec(conn, "SELECT pg_drop_replication_slot('%s_a'), pg_drop_replication_slot('%s_b')", SLOT, SLOT);
    PQfinish(conn);
}

/* The next XLogData's message, parsed. */
static void next_message(ReplStream *s, PgoParser *parser, PgoCopyData *cd, PgoMessage *m)
{
    WrError err = {0};
    receive_xlogdata(s, cd);
    assert_int_equal(pgo_parse_message(parser, cd->payload, cd->payload_len, m, &err), WR_OK);
}

/* Nothing more: a timed wait returns WR_AGAIN (keepalives aside) after about the timeout. */
static void expect_quiet(ReplStream *s)
{
    WrError err = {0};
    PgoCopyData cd;
    int64_t t0 = mono_ms();
    for (;;) {
        const uint8_t *buf;
        size_t len;
        WrStatus st = repl_stream_receive(s, 300, &buf, &len, &err);
        if (st == WR_AGAIN) break;
        assert_int_equal(st, WR_OK);
        assert_int_equal(pgo_parse_copydata(buf, len, &cd, &err), WR_OK);
        assert_int_equal(cd.kind, PGO_COPY_KEEPALIVE);
    }
    assert_true(mono_ms() - t0 >= 250);
}

/* The slot's confirmed_flush_lsn reaches exactly lsn (the stream kept read meanwhile). */
static void expect_confirmed(PGconn *conn, ReplStream *s, Lsn lsn)
{
    WrError err = {0};
    char want[32];
    snprintf(want, sizeof(want), LSN_FMT, LSN_ARGS(lsn));
    char *got = NULL;
    for (int i = 0; i < 50; i++) {
        free(got);
        got = ts_query_value(conn, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '%s'", SLOT);
        if (got && strcmp(got, want) == 0) break;
        const uint8_t *buf;
        size_t len;
        WrStatus st = repl_stream_receive(s, 100, &buf, &len, &err);
        assert_true(st == WR_OK || st == WR_AGAIN);
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* A fresh database DB, its conninfo copied into ci (ts_* reuse their
 * buffer) and an admin connection to it, which the caller PQfinish()es. */
static PGconn *connect_fresh(char *ci, size_t size)
{
    snprintf(ci, size, "%s", ts_fresh_database(DB));
    return ts_connect(ci);
}

static void test_stream_transaction(void **state)
{
    (void)state;
    char ci[1024];
    PGconn *conn = connect_fresh(ci, sizeof(ci));
    ts_exec(conn,
            "CREATE TABLE item (id int PRIMARY KEY, name text, qty int);"
            "CREATE PUBLICATION \"%s\" FOR TABLE item",
            PUB);

    ReplStream *s = NULL;
    WrError err = {0};
    assert_int_equal(repl_stream_connect(ci, &s, &err), WR_OK);
    assert_true(repl_stream_socket(s) >= 0);
    Lsn cp;
    bool exists;
    assert_int_equal(repl_stream_create_slot(s, SLOT, false, &cp, NULL, 0, &exists, &err), WR_OK);
    assert_false(exists);

    ts_exec(conn, "BEGIN; INSERT INTO item VALUES (1, 'apple', 3), (2, 'it''s', NULL); COMMIT");

    assert_int_equal(repl_stream_start(s, SLOT, 0, 1, PUB, NULL, &err), WR_OK);

    PgoParser parser;
    pgo_parser_init(&parser, 1, false);
    PgoCopyData cd;
    PgoMessage m;
    uint32_t relid = 0;

    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_BEGIN);
    uint32_t xid = m.u.begin.xid;
    Lsn final_lsn = m.u.begin.final_lsn;
    assert_true(xid > 0);
    assert_true(final_lsn > cp);

    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_RELATION);
    assert_string_equal(m.u.relation.nspname, "public");
    assert_string_equal(m.u.relation.relname, "item");
    assert_int_equal(m.u.relation.replident, 'd');
    assert_int_equal(m.u.relation.ncols, 3);
    relid = m.u.relation.relid;
    PgoRelColumnIter rit;
    pgo_relation_iter_init(&rit, &m.u.relation);
    assert_int_equal(ts_expect_column(&rit, "id", 23).flags, 1);
    assert_int_equal(ts_expect_column(&rit, "name", 25).flags, 0);

    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_INSERT);
    assert_int_equal(m.u.change.relid, relid);
    assert_int_equal(m.u.change.new_tuple.ncols, 3);
    expect_text(&m.u.change.new_tuple, 0, "1");
    expect_text(&m.u.change.new_tuple, 1, "apple");
    expect_text(&m.u.change.new_tuple, 2, "3");

    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_INSERT);
    expect_text(&m.u.change.new_tuple, 0, "2");
    expect_text(&m.u.change.new_tuple, 1, "it's");
    PgoTupleIter tit;
    PgoValue v;
    pgo_tuple_iter_init(&tit, &m.u.change.new_tuple);
    for (int i = 0; i < 3; i++) assert_true(pgo_tuple_next(&tit, &v));
    assert_int_equal(v.kind, PGO_COL_NULL);

    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_COMMIT);
    assert_int_equal(m.u.commit.commit_lsn, final_lsn);
    assert_true(m.u.commit.end_lsn > m.u.commit.commit_lsn);
    Lsn end_lsn = m.u.commit.end_lsn;
    assert_int_equal(cd.wal_start, end_lsn); /* the Commit's XLogData header carries end_lsn */

    /* Nothing more. */
    expect_quiet(s);

    /* Confirm the commit; the slot's confirmed_flush_lsn moves to exactly end_lsn. */
    assert_int_equal(repl_stream_send_status(s, end_lsn, end_lsn, end_lsn, false, &err), WR_OK);
    expect_confirmed(conn, s, end_lsn);

    assert_int_equal(repl_stream_finish(s, &err), WR_OK);
    /* After finish the connection takes commands again, and receive says the stream is over. */
    const uint8_t *buf;
    size_t len;
    assert_int_equal(repl_stream_receive(s, 0, &buf, &len, &err), WR_DONE);
    ReplSystemInfo info;
    assert_int_equal(repl_stream_identify(s, &info, &err), WR_OK);
    assert_string_equal(info.dbname, DB);
    repl_stream_destroy(s);

    /* Restart from the slot: the confirmed transaction is not sent again; a new one is. */
    ts_exec(conn, "UPDATE item SET qty = 4 WHERE id = 1");
    assert_int_equal(repl_stream_connect(ci, &s, &err), WR_OK);
    assert_int_equal(repl_stream_start(s, SLOT, 0, 1, PUB, NULL, &err), WR_OK);
    pgo_parser_init(&parser, 1, false);
    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_BEGIN);
    assert_true(m.u.begin.xid != xid);
    assert_true(m.u.begin.final_lsn > end_lsn);
    next_message(s, &parser, &cd, &m); /* Relation again: new walsender session */
    assert_int_equal(m.type, PGO_MSG_RELATION);
    next_message(s, &parser, &cd, &m);
    assert_int_equal(m.type, PGO_MSG_UPDATE);
    assert_int_equal(m.u.change.old_kind, 0);
    expect_text(&m.u.change.new_tuple, 2, "4");
    /* Destroy without finish (a crash-like exit) must not leak or hang. */
    repl_stream_destroy(s);

    ts_exec(conn,
            "SELECT pg_drop_replication_slot('%s') FROM pg_replication_slots WHERE slot_name = '%s' AND NOT active",
            SLOT, SLOT);
    PQfinish(conn);
}

static void test_unreachable_is_retry(void **state)
{
    (void)state;
    /* Port 1 on loopback: nothing listens there, the connection is refused. */
    ReplStream *s = (ReplStream *)&s; /* must be reset to NULL */
    WrError err = {0};
    WrStatus st = repl_stream_connect(
        "host=127.0.0.1 port=1 user=postgres dbname=x password=s3cr3tpw connect_timeout=5", &s, &err);
    assert_int_equal(st, WR_RETRY);
    assert_int_equal(err.status, WR_RETRY);
    assert_null(s);
    assert_non_null(strstr(err.msg, "127.0.0.1:1/x"));
    assert_null(strstr(err.msg, "s3cr3tpw"));

    /* A conninfo libpq cannot parse is the user's mistake. */
    st = repl_stream_connect("host=127.0.0.1 port=1 nosuchkeyword=1", &s, &err);
    assert_int_equal(st, WR_INVALID);
    assert_null(s);
}

static void test_refused_roles_are_fatal(void **state)
{
    (void)state;
    char ci[1024];
    PGconn *conn = connect_fresh(ci, sizeof(ci));
    ts_exec(conn, "DROP ROLE IF EXISTS walrev_nologin; CREATE ROLE walrev_nologin NOLOGIN;"
                  "DROP ROLE IF EXISTS walrev_norepl; CREATE ROLE walrev_norepl LOGIN NOREPLICATION");
    PQfinish(conn);

    ReplStream *s = NULL;
    WrError err = {0};
    char bad[1200];
    /* 28000: the role may not log in. The password given must not show up anywhere. */
    snprintf(bad, sizeof(bad), "%s user=walrev_nologin password=hunter2pw", ci);
    assert_int_equal(repl_stream_connect(bad, &s, &err), WR_FATAL);
    assert_null(s);
    assert_null(strstr(err.msg, "hunter2pw"));
    assert_non_null(strstr(err.msg, "/" DB));

    /* 42501: may log in but not start a walsender. */
    snprintf(bad, sizeof(bad), "%s user=walrev_norepl", ci);
    assert_int_equal(repl_stream_connect(bad, &s, &err), WR_FATAL);
    assert_null(s);

    /* 3D000: no such database. */
    snprintf(bad, sizeof(bad), "%s dbname=walrev_no_such_db", ci);
    assert_int_equal(repl_stream_connect(bad, &s, &err), WR_FATAL);
    assert_non_null(strstr(err.msg, "walrev_no_such_db"));

    conn = ts_connect(ci);
    ts_exec(conn, "DROP ROLE walrev_nologin; DROP ROLE walrev_norepl");
    PQfinish(conn);
}

static void test_missing_slot_is_fatal(void **state)
{
    (void)state;
    ReplStream *s = stream_on_fresh_db(NULL);
    WrError err = {0};
    assert_int_equal(repl_stream_start(s, "walrev_no_such_slot", 0, 1, "p", NULL, &err), WR_FATAL);
    assert_int_equal(err.status, WR_FATAL);
    assert_non_null(strstr(err.msg, "\"walrev_no_such_slot\""));
    assert_non_null(strstr(err.msg, "42704"));

    /* Argument checks happen before anything is sent. */
    assert_int_equal(repl_stream_start(s, "x", 0, 9, "p", NULL, &err), WR_INVALID);
    assert_non_null(strstr(err.msg, "proto_version 9"));
    assert_int_equal(repl_stream_start(s, "x", 0, 1, "", NULL, &err), WR_INVALID);
    Lsn cp;
    bool exists;
    assert_int_equal(repl_stream_create_slot(s, "", false, &cp, NULL, 0, &exists, &err), WR_INVALID);

    /* Slot names the server would reject are refused before sending. */
    assert_int_equal(repl_stream_create_slot(s, "Bad\"Name", false, &cp, NULL, 0, &exists, &err), WR_INVALID);
    assert_non_null(strstr(err.msg, "slot name \"Bad\"Name\""));
    assert_int_equal(repl_stream_start(s, "UPPER", 0, 1, "p", NULL, &err), WR_INVALID);
    assert_non_null(strstr(err.msg, "\"UPPER\""));

    /* A publication the server does not know is fatal (42704) once decoding needs it; here the
     * option itself is fine, so use a bad option value instead: 22023 invalid parameter. */
    assert_int_equal(repl_stream_create_slot(s, "walrev_stream_opt", false, &cp, NULL, 0, &exists, &err), WR_OK);
    assert_int_equal(repl_stream_start(s, "walrev_stream_opt", 0, 1, "p", "\"binary\" 'maybe'", &err), WR_FATAL);
    assert_non_null(strstr(err.msg, "walrev_stream_opt"));

    /* Not streaming: status updates are refused without touching the server. */
    assert_int_equal(repl_stream_send_status(s, 1, 1, 1, false, &err), WR_FATAL);
    assert_int_equal(repl_stream_finish(s, &err), WR_OK);
    repl_stream_destroy(s);
    repl_stream_destroy(NULL);

    PGconn *conn = ts_connect(ts_conninfo(DB));
    ts_exec(conn, "SELECT pg_drop_replication_slot('walrev_stream_opt')");
    PQfinish(conn);
}

TS_RUN_TESTS(cmocka_unit_test(test_identify_and_slots), cmocka_unit_test(test_stream_transaction),
             cmocka_unit_test(test_unreachable_is_retry), cmocka_unit_test(test_refused_roles_are_fatal),
             cmocka_unit_test(test_missing_slot_is_fatal))
