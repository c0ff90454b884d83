/*
 * test_revision_encoder.c — unit tests of the per-revision state the file and
 * Kafka sinks share (sink/revision_encoder.h): the sticky failure (first one
 * kept, fatal over retriable, returned by every step, cleared only on
 * request), the context check, and messages byte for byte the ones
 * msgpack_codec.c encodes when given the same context and tally by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sink/msgpack_codec.h"
#include "sink/revision_encoder.h"
#include "tests/support/sample_relations.h"
#include "tests/support/unit_main.h"

static RevisionContext CTX = {.no = 2, .actor_type = "user", .actor_id = "7", .description = "approve"};

static void test_sticky_failure(void **state)
{
    (void)state;
    RevisionEncoder e;
    revenc_init(&e, "file sink");
    WrError err = {.status = WR_AGAIN, .msg = "untouched"};
    assert_int_equal(revenc_check(&e, &err), WR_OK);
    assert_int_equal(err.status, WR_AGAIN); /* nothing failed: err left as it was */
    assert_string_equal(err.msg, "untouched");

    /* The first retriable failure is kept; a second retriable one is not. */
    assert_true(revenc_fail(&e, WR_RETRY, "first %d", 1));
    assert_false(revenc_fail(&e, WR_RETRY, "second %d", 2));
    assert_int_equal(revenc_failure(&e), WR_RETRY);
    assert_int_equal(revenc_check(&e, &err), WR_RETRY);
    assert_string_equal(err.msg, "first 1");

    /* A fatal one replaces it, and nothing replaces a fatal one. */
    assert_true(revenc_fail(&e, WR_FATAL, "disk %s", "full"));
    assert_false(revenc_fail(&e, WR_FATAL, "later"));
    assert_false(revenc_fail(&e, WR_RETRY, "later"));
    assert_int_equal(revenc_check(&e, &err), WR_FATAL);
    assert_string_equal(err.msg, "disk full");

    /* Every step returns it and changes nothing. */
    Revision rev = ts_sample_revision(5);
    ObjectDelta d = {.seq = 1, .relver = &ts_items, .op = DELTA_TRUNCATE};
    err = (WrError){0};
    assert_int_equal(revenc_begin(&e, &err), WR_FATAL);
    assert_string_equal(err.msg, "disk full");
    err = (WrError){0};
    assert_int_equal(revenc_context(&e, &CTX, &err), WR_FATAL);
    assert_string_equal(err.msg, "disk full");
    assert_int_equal(e.rev.ctx_no, 0);
    err = (WrError){0};
    assert_int_equal(revenc_check_delta(&e, &rev, &d, &err), WR_FATAL);
    assert_string_equal(err.msg, "disk full");

    revenc_clear_failure(&e);
    assert_int_equal(revenc_failure(&e), WR_OK);
    assert_int_equal(revenc_check(&e, &err), WR_OK);
    assert_int_equal(revenc_begin(&e, &err), WR_OK);
    assert_true(revenc_fail(&e, WR_RETRY, "again"));
    revenc_term(&e);
}

static void test_context_check(void **state)
{
    (void)state;
    RevisionEncoder e;
    revenc_init(&e, "kafka sink");
    Revision rev = ts_sample_revision(9);
    WrError err = {0};
    assert_int_equal(revenc_begin(&e, &err), WR_OK);
    ObjectDelta none = {.seq = 1, .relver = &ts_items, .op = DELTA_TRUNCATE};
    ObjectDelta with2 = {.seq = 2, .relver = &ts_items, .op = DELTA_TRUNCATE, .context_no = 2};
    assert_int_equal(revenc_check_delta(&e, &rev, &none, &err), WR_OK);
    assert_int_equal(revenc_check_delta(&e, &rev, &with2, &err), WR_PROTOCOL);
    assert_string_equal(err.msg, "kafka sink: delta 9.2 refers to context 2 but the context in force is 0");
    assert_int_equal(revenc_failure(&e), WR_OK); /* a refused delta is the caller's error, not sticky */
    assert_int_equal(revenc_context(&e, &CTX, &err), WR_OK);
    assert_int_equal(revenc_check_delta(&e, &rev, &with2, &err), WR_OK);
    /* A new revision has no context in force. */
    assert_int_equal(revenc_begin(&e, &err), WR_OK);
    assert_int_equal(revenc_check_delta(&e, &rev, &with2, &err), WR_PROTOCOL);
    revenc_term(&e);
}

static void assert_bytes(const StrBuf *got, const StrBuf *want)
{
    assert_int_equal(got->len, want->len);
    assert_memory_equal(got->data, want->data, want->len);
}

/* A revision of three deltas over two tables, the middle one under a context. */
static void test_messages_as_the_codec_encodes_them(void **state)
{
    (void)state;
    RevisionEncoder e;
    revenc_init(&e, "file sink");
    Revision rev = ts_sample_revision(12);
    AttributeDelta a1[] = {{.col_id = 1, .new_value = {"1", 1}}, {.col_id = 2, .new_value = {"pen", 3}}};
    AttributeDelta a3[] = {{.col_id = 2, .old_value = {"9.50", 4}, .new_value = {"10", 2}}};
    ObjectDelta d1 = {.seq = 1, .relver = &ts_items, .op = DELTA_INSERT, .key = "[\"1\"]", .nattrs = 2, .attrs = a1};
    ObjectDelta d2 = {.seq = 2, .relver = &ts_items, .op = DELTA_DELETE, .key = "[\"1\"]", .context_no = 2};
    ObjectDelta d3 = {.seq = 3, .relver = &ts_orders, .op = DELTA_UPDATE, .key = "[\"4\"]", .nattrs = 1, .attrs = a3};

    StrBuf want, packed;
    strbuf_init(&want);
    strbuf_init(&packed);
    mpc_encode_context(&packed, &CTX);
    WrError err = {0};

    revenc_encode_relation(&e, &ts_orders);
    mpc_encode_relation(&want, &ts_orders);
    assert_bytes(&e.msg, &want);

    assert_int_equal(revenc_begin(&e, &err), WR_OK);
    revenc_encode_delta(&e, &rev, &d1);
    strbuf_reset(&want);
    mpc_encode_delta(&want, &rev, &d1, NULL, 0);
    assert_bytes(&e.msg, &want); /* only this message: the relation before it is gone */

    assert_int_equal(revenc_context(&e, &CTX, &err), WR_OK);
    revenc_encode_delta(&e, &rev, &d2);
    strbuf_reset(&want);
    mpc_encode_delta(&want, &rev, &d2, packed.data, packed.len);
    assert_bytes(&e.msg, &want);

    revenc_encode_delta(&e, &rev, &d3); /* context_no 0: nil even with a context in force */
    strbuf_reset(&want);
    mpc_encode_delta(&want, &rev, &d3, NULL, 0);
    assert_bytes(&e.msg, &want);

    revenc_encode_revision(&e, &rev);
    MpcTableCount tables[] = {{"public", "items", 2}, {"sales", "orders", 1}};
    strbuf_reset(&want);
    mpc_encode_revision(&want, &rev, tables, 2);
    assert_bytes(&e.msg, &want);

    /* The next revision's tally starts empty. */
    Revision next = ts_sample_revision(13);
    assert_int_equal(revenc_begin(&e, &err), WR_OK);
    revenc_encode_revision(&e, &next);
    strbuf_reset(&want);
    mpc_encode_revision(&want, &next, NULL, 0);
    assert_bytes(&e.msg, &want);

    strbuf_free(&want);
    strbuf_free(&packed);
    revenc_term(&e);
}

/* A zeroed encoder (a sink whose creation failed early) is released without harm. */
static void test_term_zeroed(void **state)
{
    (void)state;
    RevisionEncoder e;
    memset(&e, 0, sizeof e);
    revenc_term(&e);
    assert_null(e.msg.data);
}

TS_RUN_TESTS(cmocka_unit_test(test_sticky_failure), cmocka_unit_test(test_context_check),
             cmocka_unit_test(test_messages_as_the_codec_encodes_them), cmocka_unit_test(test_term_zeroed))
