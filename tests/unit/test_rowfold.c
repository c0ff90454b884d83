/*
 * test_rowfold.c — the row fold: keyframe rows, inserts, updates, deletes and
 * truncates of several keys give the rows snapshot_rows() gives; rows built
 * from updates alone are flagged unbased; a binary COPY stream gives the same
 * rows whatever its chunking, and a cut or malformed stream is an error.
 */
#include "tests/support/testsupport.h"

#include "schema/rowfold.h"

#include <string.h>
#include "tests/support/unit_main.h"

/* ---- building binary arrays and COPY tuples ---- */

static void put32(StrBuf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    strbuf_append(b, (const char *)x, 4);
}

/* text[] with lower bound lb; NULL entries are SQL NULLs. */
static void text_array(StrBuf *b, int lb, int n, const char *const *v)
{
    put32(b, 1);
    put32(b, 1);  /* has nulls */
    put32(b, 25); /* text */
    put32(b, (uint32_t)n);
    put32(b, (uint32_t)lb);
    for (int i = 0; i < n; i++) {
        if (!v[i]) {
            put32(b, 0xffffffffu);
        } else {
            put32(b, (uint32_t)strlen(v[i]));
            strbuf_append_str(b, v[i]);
        }
    }
}

static void int2_array(StrBuf *b, int n, const int *ids)
{
    put32(b, 1);
    put32(b, 0);
    put32(b, 21); /* int2 */
    put32(b, (uint32_t)n);
    put32(b, 1);
    for (int i = 0; i < n; i++) {
        put32(b, 2);
        unsigned char x[2] = {(unsigned char)(ids[i] >> 8), (unsigned char)ids[i]};
        strbuf_append(b, (const char *)x, 2);
    }
}

/* ---- collecting the output ---- */

typedef struct {
    StrBuf out; /* "key:v1|v2|NULL;" per row, "~" before unbased rows */
} Got;

static WrStatus collect(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                        int maxcol, bool based, WrError *err)
{
    (void)err;
    Got *g = arg;
    if (!based) strbuf_append_char(&g->out, '~');
    strbuf_append(&g->out, key, key_len);
    strbuf_append_char(&g->out, ':');
    for (int c = 1; c <= maxcol; c++) {
        if (c > 1) strbuf_append_char(&g->out, '|');
        strbuf_append_str(&g->out, !known[c] ? "?" : vals[c] ? vals[c] : "NULL");
    }
    strbuf_append_char(&g->out, ';');
    return WR_OK;
}

typedef struct {
    const char *key;
    bool kf;
    char op;
    int nids;
    int ids[4];
    int nvals;
    const char *vals[4];
} In;

/* The scenario every test folds: 3 columns. */
static const In scenario[] = {
    {"[\"1\"]", true, ' ', 0, {0}, 3, {"1", "a", "x"}}, /* keyframe row */
    {"[\"1\"]", false, 'U', 1, {2}, 1, {"b"}},          /* update of b */
    {"[\"1\"]", false, 'U', 2, {2, 3}, 2, {"c", NULL}}, /* update to NULL */
    {"[\"2\"]", true, ' ', 0, {0}, 3, {"2", "k", "k"}}, /* keyframe row, then deleted */
    {"[\"2\"]", false, 'D', 0, {0}, 0, {NULL}},
    {"[\"3\"]", false, 'I', 3, {1, 2, 3}, 3, {"3", "i", ""}}, /* insert: '' is not NULL */
    {"[\"4\"]", false, 'U', 1, {3}, 1, {"u"}},                /* updates alone: unbased */
    {"[\"5\"]", false, 'I', 3, {1, 2, 3}, 3, {"5", "p", "q"}},
    {"[\"5\"]", false, 'D', 0, {0}, 0, {NULL}},
    {"[\"5\"]", false, 'I', 2, {1, 2}, 2, {"5", "r"}}, /* re-inserted without column 3 */
};
static const char *const expected = "[\"1\"]:1|c|NULL;[\"3\"]:3|i|;~[\"4\"]:?|?|u;[\"5\"]:5|r|?;";

static void tuple_of(const In *in, StrBuf *ids, StrBuf *vals, RowFoldTuple *t)
{
    strbuf_reset(ids);
    strbuf_reset(vals);
    if (in->nids) int2_array(ids, in->nids, in->ids);
    if (in->nvals) text_array(vals, 1, in->nvals, in->vals);
    *t = (RowFoldTuple){.key = in->key,
                        .key_len = strlen(in->key),
                        .from_keyframe = in->kf,
                        .op = in->op,
                        .col_ids = in->nids ? ids->data : NULL,
                        .col_ids_len = ids->len,
                        .vals = in->nvals ? vals->data : NULL,
                        .vals_len = vals->len};
}

static void test_tuples(void **state)
{
    (void)state;
    Got g;
    strbuf_init(&g.out);
    RowFold *f = rowfold_create(3, collect, &g);
    StrBuf ids, vals;
    strbuf_init(&ids);
    strbuf_init(&vals);
    WrError err;
    for (size_t i = 0; i < sizeof(scenario) / sizeof(scenario[0]); i++) {
        RowFoldTuple t;
        tuple_of(&scenario[i], &ids, &vals, &t);
        assert_int_equal(rowfold_add(f, &t, &err), WR_OK);
    }
    assert_int_equal(rowfold_finish(f, &err), WR_OK);
    assert_string_equal(g.out.data, expected);
    assert_int_equal(rowfold_rows(f), 4);
    rowfold_destroy(f);
    strbuf_free(&ids);
    strbuf_free(&vals);
    strbuf_free(&g.out);
}

/* The scenario as rowfold_query's binary COPY stream. */
static void copy_stream(StrBuf *s)
{
    strbuf_append(s, "PGCOPY\n\377\r\n\0", 11);
    put32(s, 0);
    put32(s, 0);
    StrBuf ids, vals;
    strbuf_init(&ids);
    strbuf_init(&vals);
    for (size_t i = 0; i < sizeof(scenario) / sizeof(scenario[0]); i++) {
        const In *in = &scenario[i];
        strbuf_append(s, "\0\7", 2);
        put32(s, (uint32_t)strlen(in->key));
        strbuf_append_str(s, in->key);
        put32(s, 4);
        put32(s, in->kf ? 0 : 1);
        put32(s, 8);
        put32(s, 0);
        put32(s, (uint32_t)i); /* revision */
        put32(s, 4);
        put32(s, 1); /* seq */
        put32(s, 1);
        strbuf_append_char(s, in->op);
        strbuf_reset(&ids);
        strbuf_reset(&vals);
        if (in->nids) {
            int2_array(&ids, in->nids, in->ids);
            put32(s, (uint32_t)ids.len);
            strbuf_append(s, ids.data, ids.len);
        } else {
            put32(s, 0xffffffffu);
        }
        if (in->nvals) {
            text_array(&vals, 1, in->nvals, in->vals);
            put32(s, (uint32_t)vals.len);
            strbuf_append(s, vals.data, vals.len);
        } else {
            put32(s, 0xffffffffu);
        }
    }
    strbuf_append(s, "\377\377", 2);
    strbuf_free(&ids);
    strbuf_free(&vals);
}

static void test_copy_stream_any_chunking(void **state)
{
    (void)state;
    StrBuf s;
    strbuf_init(&s);
    copy_stream(&s);
    static const size_t chunks[] = {1, 2, 3, 7, 64, 1 << 20};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        Got g;
        strbuf_init(&g.out);
        RowFold *f = rowfold_create(3, collect, &g);
        WrError err;
        for (size_t off = 0; off < s.len; off += chunks[c]) {
            size_t n = s.len - off < chunks[c] ? s.len - off : chunks[c];
            assert_int_equal(rowfold_feed(f, s.data + off, n, &err), WR_OK);
        }
        assert_int_equal(rowfold_finish(f, &err), WR_OK);
        assert_string_equal(g.out.data, expected);
        rowfold_destroy(f);
        strbuf_free(&g.out);
    }
    strbuf_free(&s);
}

static void test_bad_streams(void **state)
{
    (void)state;
    StrBuf s;
    strbuf_init(&s);
    copy_stream(&s);
    WrError err;
    /* every cut before the trailer is an error at finish (or at once) */
    for (size_t cut = 1; cut < s.len; cut += 5) {
        Got g;
        strbuf_init(&g.out);
        RowFold *f = rowfold_create(3, collect, &g);
        WrStatus st = rowfold_feed(f, s.data, cut, &err);
        if (st == WR_OK) st = rowfold_finish(f, &err);
        assert_int_equal(st, WR_PROTOCOL);
        rowfold_destroy(f);
        strbuf_free(&g.out);
    }
    /* not a COPY stream */
    RowFold *f = rowfold_create(3, collect, NULL);
    assert_int_equal(rowfold_feed(f, "PGCOPY\nxxxxxxxxxxxxxxxxxxxx", 27, &err), WR_PROTOCOL);
    rowfold_destroy(f);
    /* a malformed array: the element length runs past the array */
    StrBuf ids, vals;
    strbuf_init(&ids);
    strbuf_init(&vals);
    RowFoldTuple t;
    tuple_of(&scenario[1], &ids, &vals, &t);
    t.vals_len -= 1;
    Got g;
    strbuf_init(&g.out);
    f = rowfold_create(3, collect, &g);
    assert_int_equal(rowfold_add(f, &t, &err), WR_PROTOCOL);
    assert_non_null(strstr(err.msg, "malformed array"));
    t.vals_len += 1;
    t.op = 'X';
    assert_int_equal(rowfold_add(f, &t, &err), WR_PROTOCOL);
    rowfold_destroy(f);
    strbuf_free(&g.out);
    strbuf_free(&ids);
    strbuf_free(&vals);
    strbuf_free(&s);
}

TS_RUN_TESTS(cmocka_unit_test(test_tuples), cmocka_unit_test(test_copy_stream_any_chunking),
             cmocka_unit_test(test_bad_streams))
