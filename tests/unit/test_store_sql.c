/*
 * test_store_sql.c — unit tests for the history store's pure string code:
 * identifier quoting and DDL rendering (schema/store_sql.h), and the COPY /
 * array-literal encoders and binary decoders (sink/copy_format.h). The
 * server-side round trip of these encodings is in test_history_sink.c.
 */
#include "tests/support/testsupport.h"
#include "tests/support/unit_main.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/store_sql.h"
#include "sink/copy_format.h"

static void test_quote_ident(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        {"walrev", "walrev"},
        {"history_2", "history_2"},
        {"_x", "_x"},
        {"My Schema", "\"My Schema\""},
        {"Walrev", "\"Walrev\""},
        {"2abc", "\"2abc\""},
        {"a\"b", "\"a\"\"b\""},
        {"select", "\"select\""},
        {"user", "\"user\""},
        {"", "\"\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *q = store_quote_ident(cases[i].in);
        assert_string_equal(q, cases[i].out);
        free(q);
    }
}

static void test_render(void **state)
{
    (void)state;
    char *sql = store_sql_render("My \"H\"");
    assert_null(strstr(sql, "@schema@"));
    assert_non_null(strstr(sql, "CREATE SCHEMA IF NOT EXISTS \"My \"\"H\"\"\";"));
    assert_non_null(strstr(sql, "CREATE TABLE IF NOT EXISTS \"My \"\"H\"\"\".object_delta ("));
    assert_non_null(strstr(sql, "CREATE TABLE IF NOT EXISTS \"My \"\"H\"\"\".checkpoint ("));
    free(sql);
    sql = store_sql_render("walrev");
    assert_non_null(strstr(sql, "CREATE TABLE IF NOT EXISTS walrev.revision ("));
    assert_non_null(strstr(sql, "INSERT INTO walrev.store_info VALUES ('format_version', '7')"));
    free(sql);
}

#define V(s) ((Value){(s), sizeof(s) - 1})
#define VNULL ((Value){NULL, 0})

static void test_copy_field(void **state)
{
    (void)state;
    StrBuf b;
    strbuf_init(&b);
    copy_append_field(&b, NULL, 0);
    strbuf_append_char(&b, '|');
    copy_append_field(&b, "", 0);
    strbuf_append_char(&b, '|');
    copy_append_field(&b, "a\tb\nc\\d\re", 9);
    assert_string_equal(b.data, "\\N||a\\tb\\nc\\\\d\\re");
    strbuf_reset(&b);
    /* the rest of what the server's COPY TO escapes (CopyAttributeOutText) */
    copy_append_field(&b, "\b\f\v", 3);
    assert_string_equal(b.data, "\\b\\f\\v");
    strbuf_reset(&b);
    copy_append_int(&b, -42);
    strbuf_append_char(&b, ' ');
    int16_t ids[] = {1, -2, 300};
    copy_append_int16_array(&b, ids, 3);
    strbuf_append_char(&b, ' ');
    copy_append_int16_array(&b, ids, 0);
    assert_string_equal(b.data, "-42 {1,-2,300} {}");
    /* Integers and LSNs without printf: every edge as printf writes it. */
    static const int64_t ints[] = {0, 7, -1, 10, 99, -100, 4294967295LL, INT64_MAX, INT64_MIN};
    static const Lsn lsns[] = {0, 0x1, 0x10, 0xABCDEFULL, 0x100000000ULL, 0xFFFFFFFFFFFFFFFFULL, 0x1A2B3C4D5E6F7081ULL};
    char want[64];
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        strbuf_reset(&b);
        copy_append_int(&b, ints[i]);
        snprintf(want, sizeof(want), "%" PRId64, ints[i]);
        assert_string_equal(b.data, want);
    }
    for (size_t i = 0; i < sizeof(lsns) / sizeof(lsns[0]); i++) {
        strbuf_reset(&b);
        copy_append_lsn(&b, lsns[i]);
        snprintf(want, sizeof(want), LSN_FMT, LSN_ARGS(lsns[i]));
        assert_string_equal(b.data, want);
    }
    strbuf_free(&b);
}

static void test_text_array(void **state)
{
    (void)state;
    Value vals[] = {V("plain"),
                    VNULL,
                    V(""),
                    V("NULL"),
                    V("say \"hi\""),
                    V("back\\slash"),
                    V("line\nbreak\ttab"),
                    V("{a,b}"),
                    V("caf\xc3\xa9"),
                    V(" sp ")};
    size_t n = sizeof(vals) / sizeof(vals[0]);
    StrBuf b;
    strbuf_init(&b);
    pgarray_append_text(&b, vals, n);
    assert_string_equal(b.data, "{\"plain\",NULL,\"\",\"NULL\",\"say \\\"hi\\\"\",\"back\\\\slash\","
                                "\"line\nbreak\ttab\",\"{a,b}\",\"caf\xc3\xa9\",\" sp \"}");
    strbuf_reset(&b);
    copy_append_text_array(&b, vals, n);
    /* The same literal, then COPY-escaped: every \ doubled, LF and TAB as \n \t. */
    assert_string_equal(b.data, "{\"plain\",NULL,\"\",\"NULL\",\"say \\\\\"hi\\\\\"\",\"back\\\\\\\\slash\","
                                "\"line\\nbreak\\ttab\",\"{a,b}\",\"caf\xc3\xa9\",\" sp \"}");
    strbuf_reset(&b);
    copy_append_text_array(&b, vals, 0);
    assert_string_equal(b.data, "{}");
    strbuf_reset(&b);
    Value only_null[] = {VNULL};
    copy_append_text_array(&b, only_null, 1);
    assert_string_equal(b.data, "{NULL}");
    strbuf_free(&b);
}

static void test_bytea(void **state)
{
    (void)state;
    uint8_t in[3] = {0x00, 0xab, 0x7f};
    StrBuf b;
    strbuf_init(&b);
    copy_append_bytea(&b, in, 3);
    assert_string_equal(b.data, "\\\\x00ab7f");
    strbuf_free(&b);
    uint8_t out[3];
    assert_true(bytea_hex_decode("\\x00AB7f", out, 3));
    assert_memory_equal(out, in, 3);
    assert_false(bytea_hex_decode("\\x00ab", out, 3));     /* too short */
    assert_false(bytea_hex_decode("\\x00ab7f00", out, 3)); /* too long */
    assert_false(bytea_hex_decode("\\x00ag7f", out, 3));   /* not hex */
    assert_false(bytea_hex_decode("00ab7f", out, 3));      /* no \x */
    assert_false(bytea_hex_decode(NULL, out, 3));
}

static void put32(StrBuf *b, uint32_t v)
{
    uint8_t x[4];
    wr_write_u32(x, v);
    strbuf_append(b, x, 4);
}

/* The n words of v, each as put32 writes it. */
static void put32_all(StrBuf *b, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) put32(b, v[i]);
}
#define PUT32_ALL(b, ...) put32_all(b, (const uint32_t[]){__VA_ARGS__}, sizeof((const uint32_t[]){__VA_ARGS__}) / 4)

static void test_binary_array(void **state)
{
    (void)state;
    StrBuf b;
    strbuf_init(&b);
    /* text[] '[2:4]={"ab",NULL,""}' as array_send writes it. */
    PUT32_ALL(&b, 1, 1, 25, 3, 2, 2); /* ndim, has nulls, element type, nelems, lbound, length */
    strbuf_append(&b, "ab", 2);
    put32(&b, 0xFFFFFFFFu);
    put32(&b, 0);
    PgBinArray a;
    assert_true(pgbin_array_open(&a, b.data, b.len));
    assert_int_equal(a.nelems, 3);
    assert_int_equal(a.lbound, 2);
    assert_int_equal(a.elemtype, 25);
    Value v;
    assert_true(pgbin_array_next(&a, &v));
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.data, "ab", 2);
    assert_true(pgbin_array_next(&a, &v));
    assert_null(v.data);
    assert_true(pgbin_array_next(&a, &v));
    assert_non_null(v.data);
    assert_int_equal(v.len, 0);
    assert_false(pgbin_array_next(&a, &v)); /* exhausted */

    /* Truncated element: length says 2, one byte left. */
    assert_true(pgbin_array_open(&a, b.data, 25));
    assert_false(pgbin_array_next(&a, &v));
    /* Empty array: ndim 0. */
    strbuf_reset(&b);
    PUT32_ALL(&b, 0, 0, 25);
    assert_true(pgbin_array_open(&a, b.data, b.len));
    assert_int_equal(a.nelems, 0);
    assert_false(pgbin_array_next(&a, &v));
    /* Two dimensions are refused; so is a short header. */
    strbuf_reset(&b);
    PUT32_ALL(&b, 2, 0, 25, 1, 1);
    assert_false(pgbin_array_open(&a, b.data, b.len));
    assert_false(pgbin_array_open(&a, b.data, 8));
    strbuf_free(&b);

    int64_t x;
    assert_true(pgbin_int("\xff\xfe", 2, &x));
    assert_int_equal(x, -2);
    assert_true(pgbin_int("\x00\x00\x01\x00", 4, &x));
    assert_int_equal(x, 256);
    assert_true(pgbin_int("\x00\x00\x00\x01\x00\x00\x00\x00", 8, &x));
    assert_int_equal(x, INT64_C(4294967296));
    assert_false(pgbin_int("\x00\x00\x00", 3, &x));
}

/* The binary COPY writers (object_delta's rows): exact bytes, and arrays
 * read back by the binary array reader (array_recv takes what array_send
 * gives). The server's side of it: test_history_sink, test_old_images. */
static void test_copybin(void **state)
{
    (void)state;
    StrBuf b;
    strbuf_init(&b);
    copybin_header(&b);
    assert_int_equal(b.len, 19);
    assert_memory_equal(b.data, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
    strbuf_reset(&b);
    copybin_row(&b, 15);
    copybin_int8(&b, -2);
    copybin_int4(&b, 258);
    copybin_int2(&b, 7);
    copybin_byte(&b, 'U');
    copybin_null(&b);
    copybin_text(&b, "", 0);
    copybin_text(&b, NULL, 0);
    copybin_text(&b, "a\tb", 3);
    copybin_trailer(&b);
    static const char want[] = "\x00\x0f"
                               "\x00\x00\x00\x08\xff\xff\xff\xff\xff\xff\xff\xfe"
                               "\x00\x00\x00\x04\x00\x00\x01\x02"
                               "\x00\x00\x00\x02\x00\x07"
                               "\x00\x00\x00\x01U"
                               "\xff\xff\xff\xff"
                               "\x00\x00\x00\x00"
                               "\xff\xff\xff\xff"
                               "\x00\x00\x00\x03"
                               "a\tb"
                               "\xff\xff";
    assert_int_equal(b.len, sizeof(want) - 1);
    assert_memory_equal(b.data, want, sizeof(want) - 1);

    /* text[] with a NULL, an empty string and bytes COPY text would escape. */
    strbuf_reset(&b);
    Value vals[4] = {{"x", 1}, {NULL, 0}, {"", 0}, {"\"{\\,\n", 4}};
    copybin_text_array(&b, vals, 4);
    int64_t flen;
    assert_true(pgbin_int(b.data, 4, &flen));
    assert_int_equal(flen, (int64_t)b.len - 4);
    assert_int_equal((unsigned char)b.data[4 + 7], 1); /* hasnull: after the field length and ndim */
    PgBinArray a;
    Value v;
    assert_true(pgbin_array_open(&a, b.data + 4, b.len - 4));
    assert_int_equal(a.nelems, 4);
    assert_int_equal(a.lbound, 1);
    assert_int_equal(a.elemtype, 25);
    for (int i = 0; i < 4; i++) {
        assert_true(pgbin_array_next(&a, &v));
        assert_int_equal(v.data == NULL, vals[i].data == NULL);
        assert_int_equal(v.len, vals[i].len);
        if (v.data) assert_memory_equal(v.data, vals[i].data, v.len);
    }
    assert_false(pgbin_array_next(&a, &v));

    /* smallint[]: no NULL, int2 elements. */
    strbuf_reset(&b);
    int16_t ids[3] = {1, -1, 300};
    copybin_int2_array(&b, ids, 3);
    assert_int_equal(b.len, 4 + 20 + 3 * 6);
    assert_int_equal((unsigned char)b.data[4 + 7], 0);
    assert_true(pgbin_array_open(&a, b.data + 4, b.len - 4));
    assert_int_equal(a.elemtype, 21);
    for (int i = 0; i < 3; i++) {
        int64_t x;
        assert_true(pgbin_array_next(&a, &v));
        assert_true(pgbin_int(v.data, v.len, &x));
        assert_int_equal(x, ids[i]);
    }
    assert_false(pgbin_array_next(&a, &v));
    strbuf_free(&b);
}

TS_RUN_TESTS(cmocka_unit_test(test_quote_ident), cmocka_unit_test(test_render), cmocka_unit_test(test_copy_field),
             cmocka_unit_test(test_text_array), cmocka_unit_test(test_bytea), cmocka_unit_test(test_binary_array),
             cmocka_unit_test(test_copybin))
