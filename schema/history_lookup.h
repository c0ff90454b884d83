/*
 * history_lookup.h — the read side of the history as the assembler sees it:
 * old row images by object key (one, or a read-ahead batch), rows of tables
 * without a key by their digest, every live row of a table, and the notes a
 * suppressed change leaves so later answers do not come from before it. The
 * history store's reader implements it (sink/history_reader.h); the
 * assembler holds one and never knows where the rows come from. An
 * interface only, no code: decoder/ and sink/ meet here without depending on
 * each other. Every member may be NULL (no history: nothing is known).
 */
#ifndef WALREV_SCHEMA_HISTORY_LOOKUP_H
#define WALREV_SCHEMA_HISTORY_LOOKUP_H

#include "common/common.h"
#include "schema/digest.h"
#include "schema/revision.h"

typedef struct {
    void *ctx;
    /*
     * The latest known image of a row, for old values when the server sends
     * no old tuple. *found=false when unknown. Values are appended to the
     * caller's StrBuf `storage`; image->values and image->unknown (caller-
     * provided arrays of rv->ncols) point into it and stay valid until
     * storage is next modified. Blocks on a round trip.
     */
    WrStatus (*lookup)(void *ctx, const RelationVersion *rv, const char *key, RowImage *image, StrBuf *storage,
                       bool *found, WrError *err);
    /*
     * lookup for many objects of one table in one round trip, as of the same
     * point lookup would answer now. Calls found(arg, key, image) for each key
     * whose image it can give (image valid during the call only) and
     * absent(arg, key) for each key of which it holds no row (lookup would say
     * not found); keys it reports neither way are left to lookup.
     */
    WrStatus (*prefetch)(void *ctx, const RelationVersion *rv, const char *const *keys, int nkeys,
                         void (*found)(void *arg, const char *key, const RowImage *image),
                         void (*absent)(void *arg, const char *key), void *arg, WrError *err);
    /*
     * Tables without a key (docs/history-store.md, "Rows without a key"): a
     * live row of rv's table whose row digest (ObjectDelta.row_digest) is
     * digest and whose key is not among exclude[0..nexclude), as of
     * everything written so far (the open batch included); its key into *key
     * and *found=true. Which of several equal rows is free. exclude is NULL
     * from the stream (the store may then rebuild the table's digests once
     * after a miss) and non-NULL from the backfill (never rebuilds).
     */
    WrStatus (*find_row)(void *ctx, const RelationVersion *rv, const uint8_t digest[DIGEST_LEN],
                         const char *const *exclude, int nexclude, StrBuf *key, bool *found, WrError *err);
    /*
     * A change skipped under a permitted suppression, so later old images are
     * not answered from before it: op and the object's key (for an UPDATE that
     * moved its key, the old key as a DELETE then the new as an INSERT), and
     * for a table without a key the row's digest after it (NULL for DELETE).
     * No values. Inside the revision in flight.
     */
    WrStatus (*note_suppressed)(void *ctx, const RelationVersion *rv, DeltaOp op, const char *key,
                                const uint8_t *row_digest, WrError *err);
    /*
     * Every live row of rv's table as of everything written so far: row(arg,
     * key, image) with image under rv (columns rv has that a row lacks are
     * unknown), valid during the call. The rows are read before the first
     * call, so row may write deltas. Used when a table's key changes.
     */
    WrStatus (*scan_rows)(void *ctx, const RelationVersion *rv,
                          WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err), void *arg,
                          WrError *err);
} HistoryLookup;

#endif
