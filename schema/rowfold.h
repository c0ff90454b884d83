/*
 * rowfold.h — folds a table's keyframe rows and object deltas, sorted by key
 * and then in commit order, into the rows as they stand after the last delta:
 * the rule of snapshot_rows() (schema/sql/replay.sql) without the executor's
 * per-row cost. A keyframe row is a whole image; I and S replace the image,
 * U overlays its columns, D (and T) ends the row. Memory holds one key's row
 * at a time. Pure: no I/O; callers run rowfold_query's COPY and feed it, or
 * pass tuples they fetched themselves.
 *
 * Used by `walrev snapshot` (replay/fold.c), by the history sink to take
 * keyframes, and by the history sink's old-image lookups.
 */
#ifndef WALREV_SCHEMA_ROWFOLD_H
#define WALREV_SCHEMA_ROWFOLD_H

#include "common/common.h"

/*
 * One row after the fold: vals[c] for column id c in 1..maxcol (vals[0]
 * unused), NULL for SQL NULL; known[c] says whether anything in the input set
 * column c (a column added after the row's last whole image is not known);
 * all valid only during the call. based is false when the row was built from
 * UPDATEs alone, with no keyframe row, INSERT or snapshot under them: its
 * columns are only those the updates touched (a row older than the history,
 * or one an UPDATE moved here from another key).
 */
typedef WrStatus (*RowFoldEmit)(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                                int maxcol, bool based, WrError *err);

/* One input tuple; arrays are in PostgreSQL's binary array format. */
typedef struct {
    const char *key;
    size_t key_len;
    bool from_keyframe;  /* a keyframe row: vals is the whole image */
    char op;             /* deltas: 'I', 'U', 'D', 'S', 'T' */
    const void *col_ids; /* deltas: smallint[]; NULL when the delta has no attributes */
    size_t col_ids_len;
    const void *vals; /* keyframe: text[] image; deltas: text[] new values, NULL if all NULL */
    size_t vals_len;
} RowFoldTuple;

typedef struct RowFold RowFold;

/* maxcol: the highest column id any version of the table has. */
RowFold *rowfold_create(int maxcol, RowFoldEmit emit, void *arg);
void rowfold_destroy(RowFold *f);

/* Add one tuple; a key different from the previous one emits that key's row. */
WrStatus rowfold_add(RowFold *f, const RowFoldTuple *t, WrError *err) WR_MUSTCHECK;

/*
 * Feed bytes of rowfold_query's binary COPY stream (any chunking); tuples are
 * added as they complete. WR_PROTOCOL on a malformed stream.
 */
WrStatus rowfold_feed(RowFold *f, const void *data, size_t len, WrError *err) WR_MUSTCHECK;

/* End of input: emit the last row. With a COPY stream, WR_PROTOCOL unless its trailer was seen. */
WrStatus rowfold_finish(RowFold *f, WrError *err) WR_MUSTCHECK;

/* Rows emitted so far. */
long long rowfold_rows(const RowFold *f);

/*
 * Append to q the COPY (…) TO STDOUT (FORMAT binary) that streams keyframe
 * kf_id's chunks (kf_id NULL: none; each as its first key, its keys and
 * rows, which rowfold_feed splits and merges) and the table's deltas in revisions
 * (from_rev, rev] after position (cut_rev, cut_seq), by key then commit order.
 * schema_q is the quoted history schema; the numbers are SQL literals.
 * max_keys > 0 reads the deltas key by key (table_keys(), for a table that
 * has had at most that many keys: snapshot_plan_by_key said so); 0 reads the
 * revision range.
 */
void rowfold_query(StrBuf *q, const char *schema_q, uint32_t relid, const char *kf_id, const char *from_rev,
                   int64_t rev, const char *cut_rev, const char *cut_seq, int max_keys);

#endif
