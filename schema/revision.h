/*
 * revision.h — walrev's data model in memory: relation versions, revisions,
 * actor contexts, object deltas and attribute deltas, exactly as the sinks
 * receive them. A revision is streamed: header at BEGIN, contexts and object
 * deltas as they arrive, trailer (end LSN, counts, checksum) at COMMIT, so no
 * sink ever holds a whole transaction. Strings here are borrowed: valid only
 * during the sink call that receives them unless stated otherwise.
 */
#ifndef WALREV_SCHEMA_REVISION_H
#define WALREV_SCHEMA_REVISION_H

#include "common/common.h"

#define WALREV_CHECKSUM_LEN 32

/* How a column is tracked (tracking rules, docs/tracking.md). */
typedef enum {
    TRACK_FULL = 0,  /* values recorded */
    TRACK_UNTRACKED, /* changes ignored: no attribute delta */
    TRACK_HIDDEN     /* the change is recorded, never the values */
} TrackMode;

typedef struct {
    char *name;
    uint32_t type_oid;
    int32_t typmod;
    char *type_name; /* from a Type message for user types, else NULL */
    bool is_key;     /* part of the replica identity key */
    int16_t col_id;  /* stable identity across versions: survives renames, never reused after a drop */
    TrackMode track;
} RelColumn;

/*
 * A STORED generated column. pgoutput never sends them (PostgreSQL 15), so
 * they are not among a version's cols; replay computes them from the
 * expression over the row's other columns (docs/history-store.md).
 */
typedef struct {
    char *name;
    char *type_name;  /* format_type(): what replay casts the expression to */
    int16_t position; /* 0-based place among all the table's columns, in attnum order */
    char *expr;       /* pg_get_expr of the generation expression */
} GenColumn;

/*
 * One schema a tracked table has had. Identity: (relid, version); relid is the
 * source table's OID, stable across RENAME (a dropped and recreated table is a
 * new table). version counts from 1 per relid. Owned by the relation cache;
 * valid for the life of the worker.
 */
typedef struct {
    uint32_t relid;
    int32_t version;
    char *nspname;
    char *relname;
    char replident; /* 'd','n','f','i' */
    Lsn valid_from; /* LSN of the first change written under it (or of its revision) */
    /* The revision whose checksum covers this version (docs/checksums.md): the
     * next one written when the version appeared; 0 = not covered (older stores). */
    int64_t revision_id;
    uint16_t ncols;
    RelColumn *cols;
    uint16_t ngen; /* STORED generated columns, in position order */
    GenColumn *gen;
} RelationVersion;

typedef enum {
    DELTA_INSERT = 'I',
    DELTA_UPDATE = 'U',
    DELTA_DELETE = 'D',
    DELTA_TRUNCATE = 'T',
    DELTA_SNAPSHOT = 'S' /* a row of the baseline */
} DeltaOp;

/* AttributeDelta.flags */
#define ATTR_HIDDEN 0x01      /* hidden column: values withheld */
#define ATTR_OLD_UNKNOWN 0x02 /* the history never saw the row: old value not known */
#define ATTR_NEW_UNKNOWN 0x04 /* unchanged TOAST value the history does not know */

typedef struct {
    const char *data; /* NULL means SQL NULL (or withheld/unknown, see flags) */
    size_t len;
} Value;

typedef struct {
    int16_t col_id; /* stable column identity (RelColumn.col_id), not the position */
    uint8_t flags;
    Value old_value; /* DELTA_UPDATE, DELTA_DELETE */
    Value new_value; /* DELTA_INSERT, DELTA_UPDATE, DELTA_SNAPSHOT */
    /* A hidden column's new value as a keyed digest (schema/digest.h), 32
     * bytes, for stores that must tell a real change from a rewrite after a
     * restart; NULL when not hidden or not known. Never part of the checksum. */
    const uint8_t *digest;
} AttributeDelta;

/* The actor context in force for a change (walrev.context()). Number 0 = none. */
typedef struct {
    int16_t no; /* 1.. within the revision */
    const char *actor_type;
    const char *actor_id;
    const char *actor_json; /* the whole "actor" object as JSON, or NULL */
    const char *description;
    const char *meta_json; /* "meta" as JSON, or NULL */
    const char *raw;       /* the message content exactly as sent (what the checksum covers) */
    size_t raw_len;
    const uint8_t *raw_sha256; /* verify only: SHA-256 of the exact bytes when raw is a sanitised copy */
    Lsn lsn;                   /* where the message was */
    /* Server-attested identity (walrev.context() on the source, verified by
     * the worker; docs/history-store.md#who-acted); NULL unless attested. */
    bool attested;
    const char *session_user;
    const char *current_user; /* NULL also when not a role of session_user */
    const char *application_name;
    /* Strict mode (docs/configuration.md#actors): strict_checked false when
     * it is off; then verified is false and verified_by NULL. verified_by
     * says how the actor was vouched for: "key:APP", "role:ROLE", "walrev". */
    bool strict_checked;
    bool verified;
    const char *verified_by;
} RevisionContext;

typedef struct {
    int64_t id; /* dense, commit order, from 1 */
    uint32_t xid;
    Lsn commit_lsn;      /* LSN of the commit record (Begin.final_lsn) */
    Lsn end_lsn;         /* end of the commit record: what the slot confirms; set at COMMIT */
    int64_t commit_time; /* PostgreSQL µs */
    const char *origin;  /* replication origin name or NULL */
    const char *gid;     /* two-phase GID or NULL */
    /* Set at COMMIT: */
    int64_t n_insert, n_update, n_delete, n_truncate, n_snapshot;
    int64_t n_suppressed; /* changes skipped under a permitted suppression */
    const char *warnings; /* newline-separated, or NULL */
    uint8_t parent_checksum[WALREV_CHECKSUM_LEN];
    uint8_t checksum[WALREV_CHECKSUM_LEN];
    /* The revision's actor is its first context (NULL if none); set as soon as known. */
    const RevisionContext *first_context;
} Revision;

/* One row's values under a relation version: values[i] for relver->cols[i]. */
typedef struct {
    const RelationVersion *relver;
    Value *values;
    uint8_t *unknown; /* per column: 1 when the value is not known (e.g. TOAST never seen) */
} RowImage;

typedef struct {
    int32_t seq; /* ordinal within the revision, from 1 */
    const RelationVersion *relver;
    DeltaOp op;
    const char *key;    /* canonical key text, see docs/history-store.md; NULL for truncate */
    int16_t context_no; /* 0: no context in force */
    uint16_t nattrs;
    const AttributeDelta *attrs;
    bool old_unknown; /* UPDATE/DELETE of a row the history never saw */
    /* The whole row after the change (INSERT/UPDATE/SNAPSHOT), for stores that keep
     * current state; NULL for DELETE/TRUNCATE. Hidden columns are already withheld. */
    const RowImage *after;
    /* A table without a key (no is_key column): the keyed digest of the row
     * after the change (INSERT/UPDATE/SNAPSHOT), 32 bytes, by which a later
     * REPLICA IDENTITY FULL change finds it (docs/history-store.md); NULL
     * otherwise. Never part of the checksum. */
    const uint8_t *row_digest;
    /* A table without a key, UPDATE/DELETE: the digest of the row before the
     * change (which row it was; the backfill matches its unrecorded rows by
     * it). NULL otherwise. Never part of the checksum. */
    const uint8_t *old_row_digest;
    bool old_row_found; /* with old_row_digest: the history held that row (else it got a new identity) */
} ObjectDelta;

/* The new value of column name among d's attribute deltas (borrowed from d),
 * or NULL when d has no such column or its new value is NULL. The sinks read
 * an erasure request's fields this way. */
const Value *revision_delta_new_value(const ObjectDelta *d, const char *name);

/* Free what a RelationVersion built on the heap owns (names, columns,
 * generated columns: the relation cache's, one re-read from the history),
 * not rv itself, and zero it. Any array may be NULL. */
void relation_version_term(RelationVersion *rv);

/* Count one more delta of op in rev's trailer counts (n_insert, ...). */
void revision_count_delta(Revision *rev, DeltaOp op);

#endif
