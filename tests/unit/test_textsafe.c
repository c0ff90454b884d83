/*
 * test_textsafe.c — text from the WAL made storable (common/textsafe.h) and
 * context bounds (decoder/context.h): NUL and ill-formed UTF-8 replaced,
 * bounds cut at whole characters, the reserved actor type refused, exact
 * input left exact.
 */
#include "tests/support/testsupport.h"

#include "common/textsafe.h"
#include "decoder/context.h"

#include <string.h>
#include "tests/support/unit_main.h"

static void expect_sanitized(const char *in, size_t len, size_t max, const char *out, unsigned bits)
{
    StrBuf b;
    strbuf_init(&b);
    assert_int_equal(text_sanitize(&b, in, len, max), bits);
    assert_int_equal(b.len, strlen(out));
    assert_memory_equal(b.data, out, b.len);
    strbuf_free(&b);
}

static void test_sanitize(void **state)
{
    (void)state;
    expect_sanitized("plain", 5, SIZE_MAX, "plain", 0);
    expect_sanitized("a\0b", 3, SIZE_MAX,
                     "a\xEF\xBF\xBD"
                     "b",
                     TEXT_HAD_NUL);
    expect_sanitized("\xff}", 2, SIZE_MAX, "\xEF\xBF\xBD}", TEXT_HAD_INVALID);
    /* surrogate U+D800 and overlong '/' are ill-formed, as PostgreSQL says */
    expect_sanitized("\xED\xA0\x80", 3, SIZE_MAX, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", TEXT_HAD_INVALID);
    expect_sanitized("\xC0\xAF", 2, SIZE_MAX, "\xEF\xBF\xBD\xEF\xBF\xBD", TEXT_HAD_INVALID);
    /* a truncated 3-byte character at the end */
    expect_sanitized("x\xE2\x82", 3, SIZE_MAX, "x\xEF\xBF\xBD\xEF\xBF\xBD", TEXT_HAD_INVALID);
    /* cut before a whole character: "é" is 2 bytes */
    expect_sanitized("ab\xC3\xA9", 4, 3, "ab", TEXT_CUT);
    expect_sanitized("ab\xC3\xA9", 4, 4, "ab\xC3\xA9", 0);
    expect_sanitized("\0\0", 2, 4, "\xEF\xBF\xBD", TEXT_HAD_NUL | TEXT_CUT);
    assert_true(text_is_safe("\xE2\x82\xAC", 3));
    assert_false(text_is_safe("a\0", 2));
    assert_false(text_is_safe("\xF4\x90\x80\x80", 4)); /* above U+10FFFF */
}

static void parse(ParsedContext *c, const char *json, unsigned flags, StrBuf *w)
{
    strbuf_reset(w);
    context_parse(c, json, strlen(json), flags, NULL, w);
}

static void test_context_bounds(void **state)
{
    (void)state;
    ParsedContext c;
    context_init(&c);
    StrBuf w;
    strbuf_init(&w);

    parse(&c, "{\"actor\":{\"type\":\"x\",\"id\":\"a\\u0000b\"},\"description\":\"d\\u0000e\"}", 0, &w);
    assert_string_equal(c.actor_id.data, "a\xEF\xBF\xBD"
                                         "b");
    assert_string_equal(c.actor_json.data, "{\"id\":\"a\xEF\xBF\xBD"
                                           "b\",\"type\":\"x\"}");
    assert_string_equal(c.description.data, "d\xEF\xBF\xBD"
                                            "e");
    assert_string_equal(w.data, "context: NUL characters in actor replaced by U+FFFD\n"
                                "context: NUL characters in description replaced by U+FFFD\n");

    StrBuf long_id;
    strbuf_init(&long_id);
    strbuf_append_str(&long_id, "{\"actor\":{\"type\":\"x\",\"id\":\"");
    for (int i = 0; i < 700; i++) strbuf_append_str(&long_id, "\xC3\xA9"); /* 1400 bytes */
    strbuf_append_str(&long_id, "\"}}");
    parse(&c, long_id.data, 0, &w);
    assert_int_equal(c.actor_id.len, CONTEXT_ACTOR_ID_MAX);
    assert_string_equal(w.data, "context: actor.id of 1400 bytes cut to 512 bytes\n");
    strbuf_free(&long_id);

    parse(&c, "{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"}}", 0, &w);
    assert_false(c.has_actor_type);
    assert_false(c.has_actor_id);
    assert_false(c.has_actor_json);
    assert_string_equal(w.data, "context: actor type \"walrev\" is reserved for walrev itself; actor not recorded\n");
    parse(&c, "{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"}}", CONTEXT_TRUSTED, &w);
    assert_string_equal(c.actor_type.data, "walrev");
    assert_int_equal(w.len, 0);

    /* an empty actor type or id is none (log --actor could not ask for it), with a warning */
    parse(&c, "{\"actor\":{\"type\":\"\",\"id\":\"x\"}}", 0, &w);
    assert_false(c.has_actor_type);
    assert_true(c.has_actor_id);
    assert_string_equal(w.data, "context: actor.type is empty: recorded without a type\n");
    parse(&c, "{\"actor\":{\"type\":\"user\",\"id\":\"\"}}", 0, &w);
    assert_true(c.has_actor_type);
    assert_false(c.has_actor_id);
    assert_string_equal(w.data, "context: actor.id is empty: recorded without an id\n");

    /* NUL bytes in the message itself: nothing applied, a warning */
    strbuf_reset(&w);
    context_parse(&c, "{\0}", 3, 0, NULL, &w);
    assert_false(c.has_actor_type || c.has_description || c.has_meta);
    assert_non_null(strstr(w.data, "not valid UTF-8 text"));

    context_term(&c);
    strbuf_free(&w);
}

TS_RUN_TESTS(cmocka_unit_test(test_sanitize), cmocka_unit_test(test_context_bounds))
