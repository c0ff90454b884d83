/*
 * test_readahead.c — the read-ahead queue: messages come out in the order
 * they went in, a drain stops at what the socket holds or at the limits, and
 * a failure met while draining is handed on once, only after every message
 * queued before it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "readahead/readahead.h"
#include "tests/support/unit_main.h"

/* A socket that holds n messages "m0", "m1", ... and then ends as end says. */
typedef struct {
    int n, given;
    WrStatus end;
    char buf[16];
} FakeSocket;

static WrStatus fake_receive(void *arg, const uint8_t **buf, size_t *len, WrError *err)
{
    FakeSocket *s = arg;
    if (s->given == s->n) {
        if (s->end != WR_AGAIN) wr_error_set(err, s->end, "connection lost after %d messages", s->given);
        return s->end;
    }
    int k = snprintf(s->buf, sizeof(s->buf), "m%d", s->given++);
    *buf = (const uint8_t *)s->buf;
    *len = (size_t)k;
    return WR_OK;
}

static void expect_message(ReadAhead *q, const char *want)
{
    const uint8_t *buf = NULL;
    size_t len = 0;
    WrStatus st = WR_FATAL;
    WrError err = {0};
    assert_true(readahead_take(q, &buf, &len, &st, &err));
    assert_int_equal(st, WR_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
}

static void test_order_and_peek(void **state)
{
    (void)state;
    ReadAhead *q = readahead_create();
    readahead_push(q, (const uint8_t *)"first", 5);
    readahead_push(q, (const uint8_t *)"second", 6);
    assert_int_equal(readahead_count(q), 2);
    assert_int_equal(readahead_bytes(q), 11);
    size_t len = 0;
    const uint8_t *p = readahead_peek(q, 1, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(p, "second", 6);
    assert_null(readahead_peek(q, 2, &len));
    expect_message(q, "first");
    expect_message(q, "second");
    const uint8_t *buf;
    WrStatus st = WR_FATAL;
    WrError err = {0};
    assert_false(readahead_take(q, &buf, &len, &st, &err));
    assert_int_equal(st, WR_OK);
    readahead_destroy(q);
}

static void test_drain_stops_at_what_the_socket_holds(void **state)
{
    (void)state;
    ReadAhead *q = readahead_create();
    FakeSocket s = {.n = 3, .end = WR_AGAIN};
    readahead_drain(q, fake_receive, &s, 100, 1 << 20);
    assert_int_equal(readahead_count(q), 3);
    expect_message(q, "m0");
    expect_message(q, "m1");
    expect_message(q, "m2");
    const uint8_t *buf;
    size_t len;
    WrStatus st = WR_FATAL;
    WrError err = {0};
    assert_false(readahead_take(q, &buf, &len, &st, &err)); /* WR_AGAIN is no failure */
    readahead_destroy(q);
}

static void test_drain_stops_at_the_limits(void **state)
{
    (void)state;
    ReadAhead *q = readahead_create();
    FakeSocket s = {.n = 10, .end = WR_AGAIN};
    readahead_drain(q, fake_receive, &s, 4, 1 << 20);
    assert_int_equal(readahead_count(q), 4);
    assert_int_equal(s.given, 4);
    for (int i = 0; i < 4; i++) {
        char want[8];
        snprintf(want, sizeof(want), "m%d", i);
        expect_message(q, want);
    }
    /* bytes, counted from the message received first (as the worker pushes
     * it before draining): "xx" and "m4" (2 each) reach a limit of 4 */
    readahead_push(q, (const uint8_t *)"xx", 2);
    readahead_drain(q, fake_receive, &s, 100, 4);
    assert_int_equal(readahead_count(q), 2);
    assert_int_equal(readahead_bytes(q), 4);
    assert_int_equal(s.given, 5);
    expect_message(q, "xx");
    expect_message(q, "m4");
    readahead_destroy(q);
}

static void test_failure_waits_for_the_messages_before_it(void **state)
{
    (void)state;
    ReadAhead *q = readahead_create();
    FakeSocket s = {.n = 2, .end = WR_RETRY};
    readahead_drain(q, fake_receive, &s, 100, 1 << 20);
    assert_int_equal(readahead_count(q), 2);
    expect_message(q, "m0");
    expect_message(q, "m1");
    const uint8_t *buf = NULL;
    size_t len = 0;
    WrStatus st = WR_OK;
    WrError err = {0};
    assert_true(readahead_take(q, &buf, &len, &st, &err));
    assert_int_equal(st, WR_RETRY);
    assert_string_equal(err.msg, "connection lost after 2 messages");
    /* handed on once */
    st = WR_FATAL;
    assert_false(readahead_take(q, &buf, &len, &st, &err));
    assert_int_equal(st, WR_OK);
    readahead_destroy(q);
}

TS_RUN_TESTS(cmocka_unit_test(test_order_and_peek), cmocka_unit_test(test_drain_stops_at_what_the_socket_holds),
             cmocka_unit_test(test_drain_stops_at_the_limits),
             cmocka_unit_test(test_failure_waits_for_the_messages_before_it))
