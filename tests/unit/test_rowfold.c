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

/* A row as "key:v1|v2|null_text;" ("?" an unknown column), "~" before an unbased one. */
static WrStatus collect_as(Got *g, const char *key, size_t key_len, const char *const *vals, const bool *known,
                           int maxcol, bool based, const char *null_text)
{
    if (!based) strbuf_append_char(&g->out, '~');
    strbuf_append(&g->out, key, key_len);
    strbuf_append_char(&g->out, ':');
    for (int c = 1; c <= maxcol; c++) {
        if (c > 1) strbuf_append_char(&g->out, '|');
        strbuf_append_str(&g->out, !known[c] ? "?" : vals[c] ? vals[c] : null_text);
    }
    strbuf_append_char(&g->out, ';');
    return WR_OK;
}

static WrStatus collect(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                        int maxcol, bool based, WrError *err)
{
    (void)err;
    return collect_as(arg, key, key_len, vals, known, maxcol, based, "NULL");
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

/* A field of a COPY tuple: its length and bytes, -1 for NULL. */
static void field(StrBuf *s, const StrBuf *v)
{
    if (!v) {
        put32(s, 0xffffffffu);
        return;
    }
    put32(s, (uint32_t)v->len);
    strbuf_append(s, v->data, v->len);
}

static void copy_header(StrBuf *s)
{
    strbuf_append(s, "PGCOPY\n\377\r\n\0", 11);
    put32(s, 0);
    put32(s, 0);
}

/*
 * One tuple of rowfold_query's stream: key, src, revision, seq, op, col_ids,
 * vals, then a keyframe chunk's keys and rows (src 0: key is its first key).
 */
static void copy_tuple(StrBuf *s, const char *key, int src, uint32_t rev, char op, const StrBuf *ids,
                       const StrBuf *vals, const StrBuf *keys, const StrBuf *rows)
{
    strbuf_append(s, "\0\11", 2);
    put32(s, (uint32_t)strlen(key));
    strbuf_append_str(s, key);
    put32(s, 4);
    put32(s, (uint32_t)src);
    put32(s, 8);
    put32(s, 0);
    put32(s, rev);
    put32(s, 4);
    put32(s, 1); /* seq */
    put32(s, 1);
    strbuf_append_char(s, op);
    field(s, ids);
    field(s, vals);
    field(s, keys);
    field(s, rows);
}

/* A keyframe chunk's text[] literal of vals, as array_out writes it (every element quoted: array_in's equal). */
static void literal_of(StrBuf *b, int n, const char *const *v)
{
    strbuf_append_char(b, '{');
    for (int i = 0; i < n; i++) {
        if (i) strbuf_append_char(b, ',');
        if (!v[i]) {
            strbuf_append_str(b, "NULL");
            continue;
        }
        strbuf_append_char(b, '"');
        for (const char *c = v[i]; *c; c++) {
            if (*c == '"' || *c == '\\') strbuf_append_char(b, '\\');
            strbuf_append_char(b, *c);
        }
        strbuf_append_char(b, '"');
    }
    strbuf_append_char(b, '}');
}

/* The scenario as rowfold_query's binary COPY stream: each keyframe row a chunk of one row. */
static void copy_stream(StrBuf *s)
{
    copy_header(s);
    StrBuf ids, vals, keys, rows, lit;
    strbuf_init(&ids);
    strbuf_init(&vals);
    strbuf_init(&keys);
    strbuf_init(&rows);
    strbuf_init(&lit);
    for (size_t i = 0; i < sizeof(scenario) / sizeof(scenario[0]); i++) {
        const In *in = &scenario[i];
        strbuf_reset(&ids);
        strbuf_reset(&vals);
        if (in->kf) {
            strbuf_reset(&keys);
            strbuf_reset(&rows);
            strbuf_reset(&lit);
            literal_of(&lit, in->nvals, in->vals);
            const char *k[1] = {in->key}, *r[1] = {lit.data};
            text_array(&keys, 1, 1, k);
            text_array(&rows, 1, 1, r);
            copy_tuple(s, in->key, 0, 0, ' ', NULL, NULL, &keys, &rows);
            continue;
        }
        if (in->nids) int2_array(&ids, in->nids, in->ids);
        if (in->nvals) text_array(&vals, 1, in->nvals, in->vals);
        copy_tuple(s, in->key, 1, (uint32_t)i, in->op, in->nids ? &ids : NULL, in->nvals ? &vals : NULL, NULL, NULL);
    }
    strbuf_append(s, "\377\377", 2);
    strbuf_free(&ids);
    strbuf_free(&vals);
    strbuf_free(&keys);
    strbuf_free(&rows);
    strbuf_free(&lit);
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

/* As collect, SQL NULL as \\N: so that the string "NULL" is told from it. */
static WrStatus collect_n(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                          int maxcol, bool based, WrError *err)
{
    (void)err;
    return collect_as(arg, key, key_len, vals, known, maxcol, based, "\\N");
}

/* A chunk tuple: keys[i] and the literal rows[i] as two text[]s. */
static void chunk_tuple(StrBuf *s, const char *first, int n, const char *const *keys, const char *const *rows)
{
    StrBuf k, r;
    strbuf_init(&k);
    strbuf_init(&r);
    text_array(&k, 1, n, keys);
    text_array(&r, 1, n, rows);
    copy_tuple(s, first, 0, 0, ' ', NULL, NULL, &k, &r);
    strbuf_free(&k);
    strbuf_free(&r);
}

static void delta_tuple(StrBuf *s, const char *key, uint32_t rev, char op, int n, const int *ids,
                        const char *const *vals)
{
    StrBuf i, v;
    strbuf_init(&i);
    strbuf_init(&v);
    if (n) int2_array(&i, n, ids);
    if (n) text_array(&v, 1, n, vals);
    copy_tuple(s, key, 1, rev, op, n ? &i : NULL, n ? &v : NULL, NULL, NULL);
    strbuf_free(&i);
    strbuf_free(&v);
}

/* Fold stream s (fed in pieces of 5 bytes) into g; the status of the fold. */
static WrStatus fold_stream(const StrBuf *s, Got *g, WrError *err)
{
    RowFold *f = rowfold_create(3, collect_n, g);
    WrStatus st = WR_OK;
    for (size_t off = 0; off < s->len && st == WR_OK; off += 5)
        st = rowfold_feed(f, s->data + off, s->len - off < 5 ? s->len - off : 5, err);
    if (st == WR_OK) st = rowfold_finish(f, err);
    rowfold_destroy(f);
    return st;
}

/*
 * Keyframe chunks of several rows, sorted among the deltas by their first
 * key, come out merged in key order with the deltas of their keys after
 * them; their literals are read as array_in reads them: quoted elements
 * unescaped, a quoted "NULL" a string, unquoted NULL a NULL, [2:3]= a lower
 * bound (column 1 then unknown), a short row's last columns unknown.
 */
static void test_chunks_merged(void **state)
{
    (void)state;
    StrBuf s;
    strbuf_init(&s);
    copy_header(&s);
    const char *ka[3] = {"a", "c", "e"};
    const char *ra[3] = {"{\"x y\",\"q\\\"uote\",NULL}", "[2:3]={2,3}", "{\"NULL\",\"\"}"};
    chunk_tuple(&s, "a", 3, ka, ra);
    const int i123[3] = {1, 2, 3}, i1[1] = {1}, i3[1] = {3};
    const char *vb[3] = {"B1", "B2", "B3"}, *vc[1] = {"C1"}, *vd[1] = {"D"}, *vh[1] = {"H"};
    delta_tuple(&s, "b", 5, 'I', 3, i123, vb);
    delta_tuple(&s, "c", 6, 'U', 1, i1, vc);
    delta_tuple(&s, "d", 7, 'U', 1, i3, vd);
    const char *kf[2] = {"f", "g"};
    const char *rf[2] = {"{1,2,3}", "{g,null,\"back\\\\slash\"}"};
    chunk_tuple(&s, "f", 2, kf, rf);
    delta_tuple(&s, "g", 8, 'D', 0, NULL, NULL);
    delta_tuple(&s, "h", 9, 'I', 1, i1, vh);
    strbuf_append(&s, "\377\377", 2);
    Got g;
    strbuf_init(&g.out);
    WrError err;
    assert_int_equal(fold_stream(&s, &g, &err), WR_OK);
    assert_string_equal(g.out.data, "a:x y|q\"uote|\\N;b:B1|B2|B3;c:C1|2|3;~d:?|?|D;e:NULL||?;f:1|2|3;h:H|?|?;");
    strbuf_free(&g.out);
    strbuf_free(&s);
}

/* A chunk out of order with the stream, or not as array_out writes, is refused, never misread. */
static void test_bad_chunks(void **state)
{
    (void)state;
    static const struct {
        const char *first;
        int n;
        const char *keys[2], *rows[2];
        const char *then; /* a second chunk's first key (its one row of that key), or NULL */
    } bad[] = {
        {"a", 2, {"c", "b"}, {"{1}", "{2}"}, NULL},        /* keys not ascending */
        {"b", 1, {"a"}, {"{1}"}, NULL},                    /* a key below the chunk's first */
        {"a", 2, {"a", "z"}, {"{1}", "{2}"}, "m"},         /* overlapping the next chunk */
        {"a", 2, {"a", "m"}, {"{1}", "{2}"}, "m"},         /* its last key the next chunk's first */
        {"a", 1, {"a"}, {"{\"unterminated}"}, NULL},       /* a literal cut short */
        {"a", 1, {"a"}, {"{1,2"}, NULL},                   /* no closing brace */
        {"a", 1, {"a"}, {"{1}x"}, NULL},                   /* bytes after it */
        {"a", 1, {"a"}, {NULL}, NULL},                     /* a NULL row */
    };
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        StrBuf s;
        strbuf_init(&s);
        copy_header(&s);
        chunk_tuple(&s, bad[b].first, bad[b].n, bad[b].keys, bad[b].rows);
        if (bad[b].then) {
            const char *k[1] = {bad[b].then}, *r[1] = {"{3}"};
            chunk_tuple(&s, bad[b].then, 1, k, r);
        }
        strbuf_append(&s, "\377\377", 2);
        Got g;
        strbuf_init(&g.out);
        WrError err;
        assert_int_equal(fold_stream(&s, &g, &err), WR_PROTOCOL);
        assert_non_null(strstr(err.msg, "malformed keyframe chunk"));
        strbuf_free(&g.out);
        strbuf_free(&s);
    }
    /* keys and rows of different lengths */
    StrBuf s, k, r;
    strbuf_init(&s);
    strbuf_init(&k);
    strbuf_init(&r);
    copy_header(&s);
    const char *keys[2] = {"a", "b"}, *rows[1] = {"{1}"};
    text_array(&k, 1, 2, keys);
    text_array(&r, 1, 1, rows);
    copy_tuple(&s, "a", 0, 0, ' ', NULL, NULL, &k, &r);
    strbuf_append(&s, "\377\377", 2);
    Got g;
    strbuf_init(&g.out);
    WrError err;
    assert_int_equal(fold_stream(&s, &g, &err), WR_PROTOCOL);
    strbuf_free(&g.out);
    strbuf_free(&s);
    strbuf_free(&k);
    strbuf_free(&r);
}

TS_RUN_TESTS(cmocka_unit_test(test_tuples), cmocka_unit_test(test_copy_stream_any_chunking),
             cmocka_unit_test(test_bad_streams), cmocka_unit_test(test_chunks_merged),
             cmocka_unit_test(test_bad_chunks))
