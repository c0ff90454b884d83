/*
 * rowfold.c — see rowfold.h. The COPY layer reassembles binary tuples across
 * messages; the fold itself keeps one key's row as owned copies of its
 * values. A keyframe arrives as its chunks (format 7), each sorted by its
 * first key among the deltas: its rows are held (one chunk at a time) and let
 * out in key order as the stream passes them, so the server sorts a chunk
 * per 64 rows and never unnests them (the keyframe_row view).
 */
#include "schema/rowfold.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "schema/copyread.h"
#include "schema/kfchunk.h"

struct RowFold {
    RowFoldEmit emit;
    void *arg;
    int maxcol;
    char **vals; /* [0..maxcol], owned */
    bool *known; /* [0..maxcol] */
    StrBuf key;
    bool have_key;
    bool present;
    bool based;
    long long rows;
    /* binary COPY stream */
    StrBuf buf;
    size_t pos;
    bool streamed; /* fed a COPY stream: its trailer must come */
    bool header_done;
    bool trailer_seen;
    /* the keyframe chunk being merged: its two arrays copied (the stream's
     * buffer moves), its next row read ahead, and the last key let out */
    StrBuf chunk;
    KfChunk ch;
    KfVal ch_key, ch_row;
    bool ch_has;
    KfVal *split; /* [0..maxcol]: a chunk row's literal split */
};

RowFold *rowfold_create(int maxcol, RowFoldEmit emit, void *arg)
{
    RowFold *f = xcalloc(1, sizeof(*f));
    f->emit = emit;
    f->arg = arg;
    f->maxcol = maxcol > 0 ? maxcol : 0;
    f->vals = xcalloc((size_t)f->maxcol + 1, sizeof(char *));
    f->known = xcalloc((size_t)f->maxcol + 1, sizeof(bool));
    strbuf_init(&f->key);
    strbuf_init(&f->buf);
    strbuf_init(&f->chunk);
    f->split = xcalloc((size_t)f->maxcol + 1, sizeof(KfVal));
    return f;
}

static void row_clear(RowFold *f)
{
    for (int i = 1; i <= f->maxcol; i++) {
        free(f->vals[i]);
        f->vals[i] = NULL;
        f->known[i] = false;
    }
}

void rowfold_destroy(RowFold *f)
{
    if (!f) return;
    row_clear(f);
    free(f->vals);
    free(f->known);
    strbuf_free(&f->key);
    strbuf_free(&f->buf);
    strbuf_free(&f->chunk);
    free(f->split);
    free(f);
}

long long rowfold_rows(const RowFold *f) { return f->rows; }

static void row_set(RowFold *f, int col, const unsigned char *v, int32_t len)
{
    if (col < 1 || col > f->maxcol) return; /* an id no version has: nothing shows it */
    free(f->vals[col]);
    f->vals[col] = len < 0 ? NULL : xstrndup((const char *)v, (size_t)len);
    f->known[col] = true;
}

/* A one-dimensional binary array, walked element by element. */
typedef struct {
    int32_t lbound;
    const unsigned char *next;
    const unsigned char *end;
} BinArray;

static bool array_open(const void *data, size_t len, BinArray *a)
{
    const unsigned char *p = data;
    memset(a, 0, sizeof(*a));
    if (len < 12) return false;
    int32_t ndim = (int32_t)wr_read_u32(p);
    if (ndim == 0) {
        a->next = a->end = p + len;
        return true;
    }
    if (ndim != 1 || len < 20) return false;
    a->lbound = (int32_t)wr_read_u32(p + 16);
    a->next = p + 20;
    a->end = p + len;
    return true;
}

/* Next element (vlen -1 for NULL). *bad set on a malformed array; false at the end. */
static bool array_next(BinArray *a, const unsigned char **v, int32_t *vlen, bool *bad)
{
    if (a->next == a->end) return false;
    if (a->next + 4 > a->end) return !(*bad = true);
    *vlen = (int32_t)wr_read_u32(a->next);
    a->next += 4;
    *v = a->next;
    if (*vlen > 0) {
        if (a->next + *vlen > a->end) return !(*bad = true);
        a->next += *vlen;
    }
    return true;
}

static WrStatus emit_current(RowFold *f, WrError *err)
{
    if (!f->have_key || !f->present) return WR_OK;
    f->rows++;
    return f->emit(f->arg, f->key.data, f->key.len, (const char *const *)f->vals, f->known, f->maxcol, f->based, err);
}

/* The row of key from here on: the previous key's row, if another, goes out first. */
static WrStatus begin_key(RowFold *f, const char *key, size_t key_len, WrError *err)
{
    if (f->have_key && key_len == f->key.len && memcmp(key, f->key.data, key_len) == 0) return WR_OK;
    WrStatus st = emit_current(f, err);
    if (st != WR_OK) return st;
    row_clear(f);
    strbuf_reset(&f->key);
    strbuf_append(&f->key, key, key_len);
    f->have_key = true;
    f->present = false;
    f->based = false;
    return WR_OK;
}

WrStatus rowfold_add(RowFold *f, const RowFoldTuple *t, WrError *err)
{
    WrStatus st0 = begin_key(f, t->key, t->key_len, err);
    if (st0 != WR_OK) return st0;
    BinArray ids, vals;
    const unsigned char *v;
    int32_t vlen = 0;
    bool bad = false;
    if (t->from_keyframe) {
        row_clear(f);
        if (!t->vals || !array_open(t->vals, t->vals_len, &vals)) goto malformed;
        for (int32_t idx = vals.lbound; array_next(&vals, &v, &vlen, &bad); idx++) row_set(f, idx, v, vlen);
        if (bad) goto malformed;
        f->present = f->based = true;
        return WR_OK;
    }
    switch (t->op) {
    case 'D':
    case 'T':
        row_clear(f);
        f->present = f->based = false;
        return WR_OK;
    case 'I':
    case 'S':
        row_clear(f); /* an insert is the whole row */
        f->based = true;
        break;
    case 'U': break;
    default: return wr_error_set(err, WR_PROTOCOL, "row fold: unknown delta operation '%c'", t->op);
    }
    f->present = true;
    if (!t->col_ids) return WR_OK; /* no attributes */
    if (!array_open(t->col_ids, t->col_ids_len, &ids)) goto malformed;
    bool have_vals = t->vals && array_open(t->vals, t->vals_len, &vals);
    const unsigned char *iv;
    int32_t ilen;
    while (array_next(&ids, &iv, &ilen, &bad)) {
        if (ilen != 2) goto malformed;
        int col = (int16_t)((iv[0] << 8) | iv[1]);
        if (have_vals && array_next(&vals, &v, &vlen, &bad))
            row_set(f, col, v, vlen);
        else
            row_set(f, col, NULL, -1); /* new_values NULL: every new value is NULL */
        if (bad) goto malformed;
    }
    if (bad) goto malformed;
    return WR_OK;
malformed:
    return wr_error_set(err, WR_PROTOCOL, "row fold: malformed array in a %s of key %.*s",
                        t->from_keyframe ? "keyframe row" : "delta", (int)(t->key_len > 200 ? 200 : t->key_len),
                        t->key);
}

/* Keys in "C" order, as the stream is sorted: bytewise, a prefix first. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static WrStatus chunk_malformed(RowFold *f, WrError *err)
{
    f->ch_has = false;
    return wr_error_set(err, WR_PROTOCOL, "row fold: malformed keyframe chunk at key %.*s",
                        (int)(f->key.len > 200 ? 200 : f->key.len), f->key.len ? f->key.data : "");
}

/* Read the chunk's next row ahead; its key must follow the one before it (prev, NULL: the chunk's first). */
static WrStatus chunk_advance(RowFold *f, const KfVal *prev, WrError *err)
{
    int r = kfchunk_next(&f->ch, &f->ch_key, &f->ch_row);
    f->ch_has = r > 0;
    if (r < 0 || (r > 0 && f->ch_key.len < 0)) return chunk_malformed(f, err);
    if (r > 0 && prev && key_cmp(prev->p, (size_t)prev->len, f->ch_key.p, (size_t)f->ch_key.len) >= 0)
        return chunk_malformed(f, err);
    return WR_OK;
}

/*
 * Let the held chunk's rows out up to key (inclusive when incl: a delta of
 * that key comes after its keyframe row), or all of them (key NULL). Each
 * row's literal is split in the chunk's own buffer (kfchunk_split_row).
 */
static WrStatus chunk_release(RowFold *f, const char *key, size_t key_len, bool incl, WrError *err)
{
    WrStatus st = WR_OK;
    while (st == WR_OK && f->ch_has) {
        if (key) {
            int c = key_cmp(f->ch_key.p, (size_t)f->ch_key.len, key, key_len);
            if (c > 0 || (c == 0 && !incl)) break;
        }
        KfVal k = f->ch_key, r = f->ch_row;
        if ((st = begin_key(f, k.p, (size_t)k.len, err)) != WR_OK) break;
        row_clear(f);
        long lo, hi;
        char *lit = f->chunk.data + (r.p - f->chunk.data);
        if (!kfchunk_split_row(lit, r.len, f->split, f->maxcol, &lo, &hi)) return chunk_malformed(f, err);
        for (long c = lo > 1 ? lo : 1; c <= hi && c <= f->maxcol; c++)
            row_set(f, (int)c, (const unsigned char *)f->split[c].p, f->split[c].len);
        f->present = f->based = true;
        st = chunk_advance(f, &k, err);
    }
    return st;
}

/*
 * A keyframe chunk whose first key is first: the rows of the one before it
 * all precede it (a keyframe's chunks do not overlap), its own are held
 * until the stream passes them.
 */
static WrStatus chunk_take(RowFold *f, const unsigned char *first, int32_t first_len, const unsigned char *keys,
                           int32_t keys_len, const unsigned char *rows, int32_t rows_len, WrError *err)
{
    WrStatus st = chunk_release(f, (const char *)first, (size_t)first_len, false, err);
    if (st != WR_OK) return st;
    if (f->ch_has) return chunk_malformed(f, err); /* the chunk before it reaches past its first key */
    strbuf_reset(&f->chunk);
    strbuf_append(&f->chunk, keys, (size_t)keys_len);
    strbuf_append(&f->chunk, rows, (size_t)rows_len);
    const unsigned char *d = (const unsigned char *)f->chunk.data;
    if (!kfchunk_open(&f->ch, d, keys_len, d + keys_len, rows_len)) return chunk_malformed(f, err);
    KfVal lowest = {(const char *)first, first_len};
    /* nothing of the chunk may sort before its place in the stream */
    if ((st = chunk_advance(f, NULL, err)) != WR_OK) return st;
    if (f->ch_has && key_cmp(f->ch_key.p, (size_t)f->ch_key.len, lowest.p, (size_t)lowest.len) < 0)
        return chunk_malformed(f, err);
    return WR_OK;
}

#define FIELDS 9

WrStatus rowfold_feed(RowFold *f, const void *data, size_t len, WrError *err)
{
    WrStatus st = WR_OK;
    f->streamed = true;
    strbuf_append(&f->buf, data, len);
    const unsigned char *b = (const unsigned char *)f->buf.data;
    while (st == WR_OK && !f->trailer_seen) {
        size_t avail = f->buf.len - f->pos;
        const unsigned char *p = b + f->pos;
        size_t took;
        if (!f->header_done) {
            int h = copyread_header(p, avail, &took);
            if (h < 0) return wr_error_set(err, WR_PROTOCOL, "row fold: not a binary COPY stream");
            if (h == 0) break;
            f->pos += took;
            f->header_done = true;
            continue;
        }
        if (avail < 2) break;
        int nf = copyread_field_count(p);
        if (nf == -1) {
            f->trailer_seen = true;
            f->pos += 2;
            break;
        }
        if (nf != FIELDS)
            return wr_error_set(err, WR_PROTOCOL, "row fold: %d fields in a COPY row, expected %d", nf, FIELDS);
        /* Only a whole tuple is taken. */
        const unsigned char *fv[FIELDS];
        int32_t fl[FIELDS];
        took = copyread_tuple(p, avail, FIELDS, fv, fl);
        if (took == 0) break;
        f->pos += took;
        /* key, src, revision, seq, op, col_ids, vals, then a chunk's keys and rows */
        if (fl[0] < 0 || fl[1] != 4 || fl[4] != 1)
            return wr_error_set(err, WR_PROTOCOL, "row fold: a COPY row without key, source or operation");
        if (wr_read_u32(fv[1]) == 0) { /* a keyframe chunk, first_key its key */
            if (fl[7] < 0 || fl[8] < 0) return chunk_malformed(f, err);
            st = chunk_take(f, fv[0], fl[0], fv[7], fl[7], fv[8], fl[8], err);
            continue;
        }
        if ((st = chunk_release(f, (const char *)fv[0], (size_t)fl[0], true, err)) != WR_OK) break;
        RowFoldTuple t = {
            .key = (const char *)fv[0],
            .key_len = (size_t)fl[0],
            .from_keyframe = false,
            .op = (char)fv[4][0],
            .col_ids = fl[5] >= 0 ? fv[5] : NULL,
            .col_ids_len = fl[5] >= 0 ? (size_t)fl[5] : 0,
            .vals = fl[6] >= 0 ? fv[6] : NULL,
            .vals_len = fl[6] >= 0 ? (size_t)fl[6] : 0,
        };
        st = rowfold_add(f, &t, err);
    }
    /* Drop what was consumed. */
    if (f->pos > 0) {
        memmove(f->buf.data, f->buf.data + f->pos, f->buf.len - f->pos);
        f->buf.len -= f->pos;
        f->buf.data[f->buf.len] = '\0';
        f->pos = 0;
    }
    return st;
}

WrStatus rowfold_finish(RowFold *f, WrError *err)
{
    if (f->streamed && !f->trailer_seen) return wr_error_set(err, WR_PROTOCOL, "row fold: the COPY stream ended early");
    WrStatus st = chunk_release(f, NULL, 0, false, err);
    if (st == WR_OK) st = emit_current(f, err);
    row_clear(f);
    f->have_key = f->present = false;
    return st;
}

void rowfold_query(StrBuf *q, const char *schema_q, uint32_t relid, const char *kf_id, const char *from_rev,
                   int64_t rev, const char *cut_rev, const char *cut_seq, int max_keys)
{
    /*
     * src 0: the keyframe row (vals indexed by col_id); src 1: a delta at
     * (revision, seq). One sort: by key in "C" order (only equality matters
     * here), keyframe first, then commit order. After a keyframe (or a
     * truncate) the relid test is cast so that only the BRIN on revision_id
     * can serve the range: the planner, without statistics on a young store,
     * took the (relid, key, revision_id) B-tree, which reads every delta the
     * table ever had. Before the table's first keyframe every delta it ever
     * had is wanted, and the B-tree finds just those, where the BRIN range
     * would be the whole store (the baseline of every other table included).
     * A table of few keys is read key by key through the B-tree instead: the
     * BRIN range holds every table's deltas of those revisions.
     */
    bool whole_history = strcmp(from_rev, "0") == 0;
    strbuf_appendf(
        q,
        "COPY (SELECT c.first_key COLLATE \"C\" AS key, 0 AS src, 0::bigint AS rev, 0 AS seq, ' '::\"char\" AS op, "
        "NULL::smallint[] AS ids, NULL::text[] AS vals, c.keys, c.rows "
        "FROM %1$s.keyframe_chunk c WHERE c.keyframe_id = %2$s "
        "UNION ALL "
        "SELECT od.key COLLATE \"C\", 1, od.revision_id, od.seq, od.op, "
        "od.col_ids, od.new_values, NULL, NULL FROM ",
        schema_q, kf_id ? kf_id : "NULL");
    if (max_keys > 0)
        strbuf_appendf(q,
                       "%1$s.table_keys(%2$" PRIu32
                       ", %3$d) t CROSS JOIN LATERAL (SELECT * FROM %1$s.object_delta_arrays d "
                       "WHERE d.relid = %2$" PRIu32 " AND d.key = t.key) od WHERE ",
                       schema_q, relid, max_keys);
    else
        strbuf_appendf(q, "%s.object_delta_arrays od WHERE od.relid%s = %" PRIu32 " AND ", schema_q,
                       whole_history ? "" : "::bigint", relid);
    strbuf_appendf(q,
                   "od.revision_id > %1$s AND od.revision_id <= %2$" PRId64 " "
                   "AND od.op <> 'T' AND od.key IS NOT NULL AND NOT (od.revision_id = %3$s AND od.seq <= %4$s) "
                   "ORDER BY 1, 2, 3, 4) TO STDOUT (FORMAT binary)",
                   from_rev, rev, cut_rev, cut_seq);
}
