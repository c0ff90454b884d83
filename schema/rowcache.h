/*
 * rowcache.h — a bounded LRU cache of the latest image of recently changed
 * rows, keyed by (relid, key). It lets the assembler compute exact old values
 * and fill unchanged TOAST values without asking the history store. Values are
 * kept by col_id, so an image survives a new relation version. Memory never
 * exceeds the byte budget given at creation (plus one entry being inserted).
 * Hidden columns' values are never stored: only a SHA-256 of them, to tell
 * whether they changed.
 */
#ifndef WALREV_SCHEMA_ROWCACHE_H
#define WALREV_SCHEMA_ROWCACHE_H

#include "schema/revision.h"

typedef struct RowCache RowCache;

/* The hash of an object (table, key) the cache files it under; also usable for other sets of keys. */
uint64_t rowcache_key_hash(uint32_t relid, const char *key, size_t len);

RowCache *rowcache_create(size_t max_bytes);
void rowcache_destroy(RowCache *c);

/*
 * Fill image (image->values/unknown sized rv->ncols, caller-provided) from the
 * cached row; returns false when not cached. Value pointers stay valid until
 * the next call that modifies the cache. Columns the cached image lacks (added
 * since) are marked unknown. For hidden columns, the value is the stored hash.
 */
bool rowcache_get(RowCache *c, const RelationVersion *rv, const char *key, RowImage *image);

/*
 * Remember that the history store holds no image of the object (a batched
 * lookup found none): rowcache_get misses and rowcache_is_absent says so
 * until the object is put or removed (or evicted, which only loses the hint).
 */
void rowcache_put_absent(RowCache *c, uint32_t relid, const char *key);
bool rowcache_is_absent(RowCache *c, uint32_t relid, const char *key);

/* Whether the object is cached (absent included); neither the LRU order nor the hit counts change. */
bool rowcache_contains(RowCache *c, uint32_t relid, const char *key);

/* Store the image after a change (copied). Hidden columns must already hold their hash. */
void rowcache_put(RowCache *c, const RelationVersion *rv, const char *key, const RowImage *image);
void rowcache_remove(RowCache *c, uint32_t relid, const char *key);
void rowcache_remove_relation(RowCache *c, uint32_t relid);

size_t rowcache_bytes(const RowCache *c);
size_t rowcache_count(const RowCache *c);
uint64_t rowcache_hits(const RowCache *c);
uint64_t rowcache_misses(const RowCache *c);

#endif
