/*
 * digest.h — keyed digests (HMAC-SHA-256 under the store's secret) that let
 * walrev recognise a value or a row again without keeping it: a hidden
 * column's value (did it change?) and the whole row of a table without a
 * key (which of the live rows is this?). docs/history-store.md, "Rows
 * without a key" and "Hidden columns". Pure: no I/O; the key comes from the
 * caller (the history store's digest_key table, or random without a store).
 */
#ifndef WALREV_SCHEMA_DIGEST_H
#define WALREV_SCHEMA_DIGEST_H

#include "schema/revision.h"

#define DIGEST_LEN 32
#define DIGEST_KEY_LEN 32

typedef struct {
    uint8_t key[DIGEST_KEY_LEN];
} DigestKey;

/* A random key (getrandom): digests then mean something only to this process. */
void digest_key_random(DigestKey *k);

/* HMAC-SHA-256 of one value; an SQL NULL has a digest of its own. */
void digest_value(const DigestKey *k, const Value *v, uint8_t out[DIGEST_LEN]);

/*
 * The identity digest of a row of a table without a key: over the columns
 * rv tracks with values (TRACK_FULL), each as its name and its text; a NULL
 * or unknown column (unknown may be NULL) contributes nothing, so a nullable
 * column added later does not change the digest of the rows before it. By
 * name, not col_id, so that a version built from the catalog (the backfill's)
 * digests as the stream's does; a rename changes digests, which the store
 * rebuilds once per version when a row is not found.
 */
void digest_row(const DigestKey *k, const RelationVersion *rv, const Value *vals, const uint8_t *unknown,
                uint8_t out[DIGEST_LEN]);

/* Whether rv identifies its rows by a key (some column is_key). */
bool digest_rel_has_key(const RelationVersion *rv);

#endif
