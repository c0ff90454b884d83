/*
 * relcache.h — the relation cache: the current RelationVersion of every
 * table seen on the stream, keyed by OID. A Relation message that differs
 * from the cached version (names, types, typmods, key, replica identity)
 * makes a new version; an identical one (sent after any relcache
 * invalidation) changes nothing. Column identities (col_id) carry over by
 * name and are never reused. Versions are owned by the cache for its life.
 */
#ifndef WALREV_SCHEMA_RELCACHE_H
#define WALREV_SCHEMA_RELCACHE_H

#include "schema/revision.h"
#include "schema/tracking.h"

typedef struct RelCache RelCache;

/* A column as described by a Relation message. */
typedef struct {
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
    bool is_key;
} RelColumnIn;

/* rules is borrowed and may be NULL (track everything). */
RelCache *relcache_create(const TrackingRules *rules);
void relcache_destroy(RelCache *c);

/*
 * Apply a Relation message. Returns the version now in force (owned by the
 * cache); *is_new is true when it is a new version the sinks must be told of.
 * A new version records revision_id: the revision whose checksum covers it.
 */
const RelationVersion *relcache_apply(RelCache *c, uint32_t relid, const char *nspname, const char *relname,
                                      char replident, uint16_t ncols, const RelColumnIn *cols, Lsn lsn,
                                      int64_t revision_id, bool *is_new);

/* The version in force for relid, or NULL if none was seen. */
const RelationVersion *relcache_lookup(const RelCache *c, uint32_t relid);

/* Remember a Type message: the name user types are shown with. */
void relcache_set_type_name(RelCache *c, uint32_t type_oid, const char *nspname, const char *typname);

/*
 * Restore a version known from the history store (at start-up), so that the
 * server's re-sent Relation messages are recognised as unchanged. max_col_id
 * is the highest col_id ever used for relid. rv is copied.
 */
void relcache_restore(RelCache *c, const RelationVersion *rv, int16_t max_col_id);

/*
 * Column identities from the source catalog: after DDL (the walrev.ddl
 * message of the event trigger, in WAL order) or at start-up. The next
 * Relation message for relid takes col_id = attnum for these names, so a
 * RENAME COLUMN keeps its history and a DROP+ADD of the same name does not.
 * names[i] has attnums[i]; copied.
 */
void relcache_set_attnums(RelCache *c, uint32_t relid, int n, const char *const *names, const int16_t *attnums);

/*
 * The table's STORED generated columns from the source catalog (the DDL
 * capture, or the baseline's description): the next version takes them,
 * and a Relation message that differs only in them still makes one (pgoutput
 * never sends generated columns). gen is copied.
 */
void relcache_set_generated(RelCache *c, uint32_t relid, uint16_t n, const GenColumn *gen);

/*
 * What the source catalog said a relation is, asked once per relid (a
 * relation's kind never changes). A partitioned table has no rows of its
 * own: pgoutput sends changes under one only for a publication WITH
 * (publish_via_partition_root = true), whose partitions walrev then counts
 * as unpublished (docs/history-store.md#publish_via_partition_root).
 */
typedef enum {
    RELCACHE_KIND_UNKNOWN = 0, /* not asked yet (or no catalog to ask) */
    RELCACHE_KIND_TABLE,       /* anything with rows of its own */
    RELCACHE_KIND_PARTITIONED  /* relkind 'p' */
} RelKindKnown;
void relcache_set_kind(RelCache *c, uint32_t relid, RelKindKnown kind);
RelKindKnown relcache_kind(const RelCache *c, uint32_t relid);

/* Whether the table is excluded by the tracking rules. */
bool relcache_is_excluded(const RelCache *c, const RelationVersion *rv);

#endif
