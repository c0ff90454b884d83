/*
 * test_pgio.c — the one SQLSTATE table every connection classifies failures
 * by (retry / fatal / data error), and the errors pgio makes without a server:
 * a server that does not answer is retried, a conninfo libpq cannot read is the
 * user's error, a lost connection is retried whatever its SQLSTATE says.
 */
#include "tests/support/testsupport.h"

#include "pgio/pgio.h"

#include <string.h>
#include "tests/support/unit_main.h"

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *code;
        PgioClass want;
    } cases[] = {
        /* retry: the connection, the server's state, conflicts, resources */
        {"08006", PGIO_RETRY},
        {"08001", PGIO_RETRY},
        {"08P01", PGIO_RETRY},
        {"57P01", PGIO_RETRY},
        {"57P02", PGIO_RETRY},
        {"57P03", PGIO_RETRY},
        {"57014", PGIO_RETRY},
        {"25P03", PGIO_RETRY},
        {"40001", PGIO_RETRY},
        {"40P01", PGIO_RETRY},
        {"55P03", PGIO_RETRY},
        {"55006", PGIO_RETRY},
        {"53000", PGIO_RETRY},
        {"53100", PGIO_RETRY},
        {"53200", PGIO_RETRY},
        {"53300", PGIO_RETRY},
        {"58030", PGIO_RETRY},
        /* data: what was sent cannot be stored */
        {"22P05", PGIO_DATA},
        {"22021", PGIO_DATA},
        {"22001", PGIO_DATA},
        {"22P02", PGIO_DATA},
        {"54000", PGIO_DATA},
        {"54001", PGIO_DATA},
        /* fatal: authentication, privileges, objects, syntax, everything unlisted */
        {"28P01", PGIO_FATAL},
        {"28000", PGIO_FATAL},
        {"42501", PGIO_FATAL},
        {"3D000", PGIO_FATAL},
        {"57P04", PGIO_FATAL},
        {"42P01", PGIO_FATAL},
        {"42601", PGIO_FATAL},
        {"23505", PGIO_FATAL},
        {"55000", PGIO_FATAL},
        {"XX000", PGIO_FATAL},
        {"0A000", PGIO_FATAL},
        {"57000", PGIO_FATAL},
        {"40002", PGIO_FATAL},
        {"25P02", PGIO_FATAL},
        {"58P01", PGIO_FATAL},
        /* no server error at all: the connection failed */
        {NULL, PGIO_RETRY},
        {"", PGIO_RETRY},
        {"0800", PGIO_RETRY},
        {"080000", PGIO_RETRY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        PgioClass got = pgio_classify_sqlstate(cases[i].code);
        if (got != cases[i].want)
            fail_msg("SQLSTATE %s: got %s, want %s", cases[i].code ? cases[i].code : "NULL", pgio_class_name(got),
                     pgio_class_name(cases[i].want));
    }
    assert_string_equal(pgio_class_name(PGIO_RETRY), "retry");
    assert_string_equal(pgio_class_name(PGIO_FATAL), "fatal");
    assert_string_equal(pgio_class_name(PGIO_DATA), "data");
}

/* Without a connection every failure is the retryable kind: the statement
 * never reached a server that could have judged it. */
static void test_status_without_connection(void **state)
{
    (void)state;
    assert_int_equal(pgio_status(NULL, "42501"), WR_RETRY);
    assert_int_equal(pgio_status(NULL, NULL), WR_RETRY);

    PGconn *bad = PQconnectdb("host=/nonexistent-walrev-dir port=1 connect_timeout=1");
    assert_int_equal(PQstatus(bad), CONNECTION_BAD);
    assert_int_equal(pgio_status(bad, "28P01"), WR_RETRY);
    WrError err = {0};
    assert_int_equal(pgio_fail(bad, NULL, &err, "reading %s", "things"), WR_RETRY);
    assert_int_equal(err.status, WR_RETRY);
    assert_string_equal(err.sqlstate, "");
    assert_non_null(strstr(err.msg, "reading things failed: SQLSTATE none: "));
    assert_non_null(strstr(err.msg, "/nonexistent-walrev-dir"));
    assert_null(strchr(err.msg, '\n'));
    PQfinish(bad);
}

static void test_connect_errors(void **state)
{
    (void)state;
    PgioOptions o;
    pgio_options_default(&o);
    assert_int_equal(o.connect_timeout_s, 5);
    assert_int_equal(o.keepalives_idle_s, 30);
    assert_int_equal(o.reply_timeout_ms, 10000);
    o.connect_timeout_s = 2;
    pgio_configure(&o);
    assert_int_equal(pgio_options()->connect_timeout_s, 2);

    PgioConnect how = {.what = "history store", .app_name = "walrev-test", .bounded = true};
    PGconn *c = (PGconn *)1;
    WrError err = {0};
    /* Nobody listens there: an outage, retried. */
    assert_int_equal(pgio_connect("host=/nonexistent-walrev-dir port=1 password=s3cret", &how, &c, &err), WR_RETRY);
    assert_null(c);
    assert_non_null(strstr(err.msg, "history store: could not connect: "));
    assert_null(strstr(err.msg, "s3cret"));
    /* libpq cannot read it: the user's error. */
    assert_int_equal(pgio_connect("nosuchkey=1", &how, &c, &err), WR_INVALID);
    assert_null(c);
    assert_non_null(strstr(err.msg, "history store: could not connect: "));
    assert_non_null(strstr(err.msg, "nosuchkey"));
}

static void test_error_text(void **state)
{
    (void)state;
    char msg[64];
    const char *sqlstate = "x";
    pgio_error_text(NULL, NULL, msg, sizeof(msg), &sqlstate);
    assert_null(sqlstate);
    assert_string_equal(msg, "no connection");
}

TS_RUN_TESTS(cmocka_unit_test(test_table), cmocka_unit_test(test_status_without_connection),
             cmocka_unit_test(test_connect_errors), cmocka_unit_test(test_error_text))
