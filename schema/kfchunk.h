/*
 * kfchunk.h — reading a keyframe_chunk row (store format 7,
 * docs/history-store.md) as binary COPY or a binary FETCH sends it: keys and
 * rows, two text[] of as many elements, rows[i] being row i's vals as the
 * text[] literal array_out writes. The one decoder of chunks in C: the CLI's
 * snapshot fold (replay/fold.c), the row fold of keyframes and sorted
 * snapshots (schema/rowfold.c) read chunks through it, not through the
 * keyframe_row view, whose unnesting cost the server 3x the CPU. Pure: no
 * I/O, no allocation.
 */
#ifndef WALREV_SCHEMA_KFCHUNK_H
#define WALREV_SCHEMA_KFCHUNK_H

#include <stdbool.h>
#include <stdint.h>

/* A value seen through, not terminated: len -1 is SQL NULL. */
typedef struct {
    const char *p;
    int32_t len;
} KfVal;

/* A chunk's two arrays, walked row by row; the pointers are the caller's buffers. */
typedef struct {
    const unsigned char *k, *kend; /* keys' next element; NULL when not keyed */
    const unsigned char *r, *rend; /* rows' next element */
} KfChunk;

/*
 * Start on a chunk: keys (keys_len bytes; NULL when only the rows were asked
 * for) and rows, each a one-dimensional binary text[] (array_send's format).
 * false when either is not.
 */
bool kfchunk_open(KfChunk *c, const unsigned char *keys, int32_t keys_len, const unsigned char *rows,
                  int32_t rows_len);

/*
 * The next row: *key (when keyed) and *row, its literal. 1: a row; 0: both
 * arrays ended together; -1: malformed (an element past its array's end, one
 * array longer than the other).
 */
int kfchunk_next(KfChunk *c, KfVal *key, KfVal *row);

/*
 * vals[1..maxcol] (by col_id; vals[0] unused) from a row's literal p (len
 * bytes) as array_out writes a text[]: {a,"b c",NULL}, or [2:3]={...} for
 * another lower bound. Quoted elements are unescaped in place, so p is the
 * caller's own writable buffer, read once; vals point into it. Elements
 * outside 1..maxcol are dropped; a column with no element is NULL. *lo and
 * *hi (either may be NULL) get the first and last element's index (lo > hi
 * when there is none), for callers that tell a missing element from NULL.
 * false on anything else, a NULL row included.
 */
bool kfchunk_split_row(char *p, int32_t len, KfVal *vals, int maxcol, long *lo, long *hi);

#endif
