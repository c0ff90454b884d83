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

/* take() hands on one item with status want: the message text (WR_OK) or a
 * failure whose error message is text. The status starts as another value,
 * so that a take() that leaves it alone fails. */
static void expect_taken(ReadAhead *q, WrStatus want, const char *text)
{
    const uint8_t *buf = NULL;
    size_t len = 0;
    WrStatus st = want == WR_OK ? WR_FATAL : WR_OK;
    WrError err = {0};
    assert_true(readahead_take(q, &buf, &len, &st, &err));
    assert_int_equal(st, want);
    if (want != WR_OK) {
        assert_string_equal(err.msg, text);
        return;
    }
    assert_int_equal(len, strlen(text));
    assert_memory_equal(buf, text, len);
}

static void expect_message(ReadAhead *q, const char *want) { expect_taken(q, WR_OK, want); }

/* The next n messages are the socket's "m<first>", "m<first+1>", ... */
static void expect_numbered(ReadAhead *q, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char want[16];
        snprintf(want, sizeof(want), "m%d", i);
        expect_message(q, want);
    }
}

/* The queue has nothing to hand on; returns the status take() left
 * (WR_FATAL when it left it alone). */
static WrStatus expect_nothing(ReadAhead *q)
{
    const uint8_t *buf;
    size_t len;
    WrStatus st = WR_FATAL;
    WrError err = {0};
    assert_false(readahead_take(q, &buf, &len, &st, &err));
    return st;
}

/* Drain s without limits: exactly its n messages come out, in order. */
static void expect_drained_whole(ReadAhead *q, FakeSocket *s, int n)
{
    readahead_drain(q, fake_receive, s, 100, 1 << 20);
    assert_int_equal(readahead_count(q), n);
    expect_numbered(q, 0, n);
}

/* A fixture: an empty queue in *state, destroyed after the test. */
static int queue_setup(void **state)
{
    *state = readahead_create();
    return 0;
}

static int queue_teardown(void **state)
{
    readahead_destroy(*state);
    return 0;
}

static void test_order_and_peek(void **state)
{
    ReadAhead *q = *state;
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
    assert_int_equal(expect_nothing(q), WR_OK);
}

static void test_drain_stops_at_what_the_socket_holds(void **state)
{
    ReadAhead *q = *state;
    FakeSocket s = {.n = 3, .end = WR_AGAIN};
    expect_drained_whole(q, &s, 3);
    (void)expect_nothing(q); /* WR_AGAIN is no failure */
}

static void test_drain_stops_at_the_limits(void **state)
{
    ReadAhead *q = *state;
    FakeSocket s = {.n = 10, .end = WR_AGAIN};
    readahead_drain(q, fake_receive, &s, 4, 1 << 20);
    assert_int_equal(readahead_count(q), 4);
    assert_int_equal(s.given, 4);
    expect_numbered(q, 0, 4);
    /* bytes, counted from the message received first (as the worker pushes
     * it before draining): "xx" and "m4" (2 each) reach a limit of 4 */
    readahead_push(q, (const uint8_t *)"xx", 2);
    readahead_drain(q, fake_receive, &s, 100, 4);
    assert_int_equal(readahead_count(q), 2);
    assert_int_equal(readahead_bytes(q), 4);
    assert_int_equal(s.given, 5);
    expect_message(q, "xx");
    expect_numbered(q, 4, 1);
}

static void test_failure_waits_for_the_messages_before_it(void **state)
{
    ReadAhead *q = *state;
    FakeSocket s = {.n = 2, .end = WR_RETRY};
    expect_drained_whole(q, &s, 2);
    expect_taken(q, WR_RETRY, "connection lost after 2 messages");
    /* handed on once */
    assert_int_equal(expect_nothing(q), WR_OK);
}

#define QUEUE_TEST(f) cmocka_unit_test_setup_teardown(f, queue_setup, queue_teardown)
TS_RUN_TESTS(QUEUE_TEST(test_order_and_peek), QUEUE_TEST(test_drain_stops_at_what_the_socket_holds),
             QUEUE_TEST(test_drain_stops_at_the_limits), QUEUE_TEST(test_failure_waits_for_the_messages_before_it))
