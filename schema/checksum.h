/*
 * checksum.h — the revision checksum chain's canonical encoding (docs/checksums.md).
 * Streaming: a RevisionHasher absorbs contexts and deltas as they arrive and
 * yields the checksum at commit. Every attribute value enters through its own
 * hash — HMAC-SHA-256 under the store's digest_key since format 5, SHA-256
 * before — so an erased value can be replaced by that hash and the chain
 * still verifies, and the hash kept is no personal data without the key.
 */
#ifndef WALREV_SCHEMA_CHECKSUM_H
#define WALREV_SCHEMA_CHECKSUM_H

#include "schema/revision.h"

typedef struct RevisionHasher RevisionHasher;

/* Owned by the caller; destroy accepts NULL. */
RevisionHasher *revhash_create(void);
void revhash_destroy(RevisionHasher *h);
#define WALREV_VALUE_KEY_LEN 32
/*
 * Key attribute values' hashes with HMAC-SHA-256 under key (32 bytes,
 * copied; the store's digest_key), or NULL for the bare SHA-256 of stores
 * before format 5 and of a worker without a history store. Holds until
 * changed; revision metadata, keys and contexts are hashed as before.
 */
void revhash_set_value_key(RevisionHasher *h, const uint8_t *key);
/* Start a revision (resets state). */
void revhash_begin(RevisionHasher *h);
void revhash_add_context(RevisionHasher *h, const RevisionContext *ctx);
/*
 * Add one object delta. value_hashes, when not NULL, supplies precomputed
 * per-value hashes (erased values: 32 bytes, or NULL pointer to hash the value):
 * layout value_hashes[2*i] = old of attr i, [2*i+1] = new of attr i.
 */
void revhash_add_delta(RevisionHasher *h, const ObjectDelta *d, const uint8_t *const *value_hashes);
/*
 * A relation version's digest as it enters the chain (docs/checksums.md):
 * every field the history store keeps of it. Stored with the version, so
 * verify can name a changed row.
 */
void revhash_relation_digest(const RelationVersion *rv, uint8_t out[WALREV_CHECKSUM_LEN]);
/* A relation version this revision covers (any order: sorted by relid, version at finish). */
void revhash_add_relation(RevisionHasher *h, uint32_t relid, int32_t version,
                          const uint8_t digest[WALREV_CHECKSUM_LEN]);
/* Finish: computes rev->checksum from rev->parent_checksum, metadata and what was added. */
void revhash_finish(RevisionHasher *h, Revision *rev);

/* One attribute value's hash as it enters the chain under h's current key
 * (what erasure keeps in erased_value); NULL hashes as the empty string. */
void revhash_attr_value(RevisionHasher *h, const Value *v, uint8_t out[WALREV_CHECKSUM_LEN]);
/* SHA-256 of one value as it enters the chain (NULL -> a distinct tag). */
void revhash_value(const Value *v, uint8_t out[WALREV_CHECKSUM_LEN]);
void checksum_to_hex(const uint8_t sum[WALREV_CHECKSUM_LEN], char out[2 * WALREV_CHECKSUM_LEN + 1]);

#endif
