/*
 * fuzz_copy_read.c — libFuzzer target for what walrev reads back from the
 * history store: the binary COPY stream of keyframe rows and deltas
 * (rowfold_feed, used by snapshot, keyframes and old-image lookups), the
 * binary arrays inside it (pgbin_array_*), and COPY text fields
 * (copy_text_unescape, the baseline's reader). The first input byte picks
 * the chunk size the stream is fed in: tuples must come out the same however
 * the CopyData messages cut them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "schema/rowfold.h"
#include "sink/copy_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint64_t sum;
    long long rows;
} Seen;

static WrStatus emit(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known, int maxcol,
                     bool based, WrError *err)
{
    (void)err;
    Seen *s = arg;
    s->rows++;
    for (size_t i = 0; i < key_len; i++) s->sum = s->sum * 31 + (unsigned char)key[i];
    for (int c = 1; c <= maxcol; c++) {
        if (!known[c]) continue;
        s->sum = s->sum * 7 + (vals[c] ? strlen(vals[c]) + 1 : 0);
    }
    s->sum += based;
    return WR_OK;
}

/* Fold the stream fed in chunks of chunk bytes; returns the status, fills seen. */
static WrStatus fold(const uint8_t *p, size_t n, size_t chunk, int maxcol, Seen *seen)
{
    memset(seen, 0, sizeof(*seen));
    RowFold *f = rowfold_create(maxcol, emit, seen);
    WrError err;
    WrStatus st = WR_OK;
    for (size_t off = 0; st == WR_OK && off < n; off += chunk) {
        size_t len = n - off < chunk ? n - off : chunk;
        uint8_t *piece = malloc(len); /* exactly sized per chunk */
        memcpy(piece, p + off, len);
        st = rowfold_feed(f, piece, len, &err);
        free(piece);
    }
    if (st == WR_OK) st = rowfold_finish(f, &err);
    if (st != WR_OK && strlen(err.msg) == 0) abort();
    if (rowfold_rows(f) != seen->rows) abort();
    rowfold_destroy(f);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t chunk = (size_t)data[0] + 1;
    int maxcol = data[1] % 16 + 1;
    const uint8_t *p = data + 2;
    size_t n = size - 2;

    Seen whole, pieces;
    WrStatus a = fold(p, n, n ? n : 1, maxcol, &whole);
    WrStatus b = fold(p, n, chunk, maxcol, &pieces);
    if (a != b) abort();
    if (a == WR_OK && (whole.rows != pieces.rows || whole.sum != pieces.sum)) abort();

    /* The same bytes as one binary array, and as one COPY text field. */
    char *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    PgBinArray arr;
    if (pgbin_array_open(&arr, copy, n)) {
        Value v;
        size_t count = 0;
        while (pgbin_array_next(&arr, &v)) {
            if (v.data && v.len > n) abort();
            count++;
        }
        (void)count;
    }
    size_t m = copy_text_unescape(copy, n);
    if (m > n) abort();
    free(copy);
    return 0;
}
