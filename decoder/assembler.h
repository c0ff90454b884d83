/*
 * assembler.h — turns pgoutput messages into revisions: one per committed
 * transaction, with the actor contexts of walrev.context() messages, object
 * deltas holding only the columns that changed, exact old values (from the
 * old tuple, the row cache, or the history through its reader), unchanged
 * TOAST values filled in, tracking rules applied, and the checksum chain.
 * It streams: each delta goes to the output as soon as it is built; nothing
 * holds a whole transaction. No I/O of its own, no logging.
 */
#ifndef WALREV_DECODER_ASSEMBLER_H
#define WALREV_DECODER_ASSEMBLER_H

#include "decoder/context.h"
#include "decoder/pgoutput.h"
#include "schema/digest.h"
#include "schema/history_lookup.h"
#include "schema/relcache.h"
#include "schema/revision.h"
#include "schema/tracking.h"

/* Where revisions go (the worker fans out to the sinks). Pointers passed are
 * valid only during the call. Reading the history back is not an output:
 * AssemblerConfig.history. */
typedef struct {
    void *ctx;
    WrStatus (*relation)(void *ctx, const RelationVersion *rv, WrError *err);
    WrStatus (*begin)(void *ctx, const Revision *rev, WrError *err);
    WrStatus (*context)(void *ctx, const Revision *rev, const RevisionContext *c, WrError *err);
    WrStatus (*delta)(void *ctx, const Revision *rev, const ObjectDelta *d, WrError *err);
    WrStatus (*commit)(void *ctx, const Revision *rev, WrError *err);
    /*
     * Under REPLICA IDENTITY FULL pgoutput marks every column as key; a
     * table's object key should still be its primary key when it has one.
     * Set is_key[i] for names[i] in the primary key and *found=true, or leave
     * *found=false (no primary key: the whole row is the key). May be NULL.
     */
    WrStatus (*primary_key)(void *ctx, uint32_t relid, uint16_t ncols, const char *const *names, bool *is_key,
                            bool *found, WrError *err);
    /*
     * The text of values after an ALTER COLUMN ... TYPE rewrote them outside
     * the WAL: each in[i] (text of type from_oid/from_typmod, NULL for SQL
     * NULL) cast to to_oid/to_typmod as the source server casts it, under the
     * DDL session's time zone, into out[i] (malloc'd; NULL for NULL; the
     * caller frees). May be NULL (no source connection: values unknown).
     */
    WrStatus (*convert_values)(void *ctx, uint32_t from_oid, int32_t from_typmod, uint32_t to_oid, int32_t to_typmod,
                               const char *timezone, size_t n, const Value *in, char **out, WrError *err);
    /*
     * Whether a logical message under a "walrev." prefix is walrev's own (a
     * baseline watermark or chunk the worker emitted and awaits, known by a
     * random id only the worker has). Anything else there is recorded as a
     * warning on the revision and never acted on. May be NULL (none is).
     */
    bool (*own_message)(void *ctx, const PgoLogicalMessage *m);
    /*
     * Whether relid is a partitioned table on the source (relkind 'p'; asked
     * once per relid at its first Relation message). pgoutput sends changes
     * under a partitioned table only for a publication WITH
     * (publish_via_partition_root = true): they are its partitions' changes,
     * which the table log then records 'unpublished', so no sink records
     * them; the revision says so in its warnings instead. May be NULL (no
     * catalog: recorded under the root as any table's).
     */
    WrStatus (*partitioned)(void *ctx, uint32_t relid, bool *partitioned, WrError *err);
    /*
     * A DDL capture row went by (info: its JSON, docs/history-store.md), for
     * the worker to say which tables it cannot track (unlogged, not
     * published) and to know which need no baseline (created after tracking
     * began), inside the revision in flight. May be NULL.
     */
    WrStatus (*ddl_captured)(void *ctx, const char *info, size_t len, WrError *err);
    /*
     * A revision a sink already holds under dense ids (the stream restarted
     * behind it to give another sink what that one lacks): its id, parent
     * checksum and checksum there, *found = true, so it is given out under
     * the same id and the chain goes on from the same checksum. *found =
     * false: numbered as usual. Asked at every BEGIN not already durable
     * everywhere, before any change of it (so the output can answer old-image
     * lookups for it as of the revision before), only when ids are dense.
     * May be NULL.
     */
    WrStatus (*known_revision)(void *ctx, uint32_t xid, Lsn commit_lsn, int64_t *id,
                               uint8_t parent[WALREV_CHECKSUM_LEN], uint8_t checksum[WALREV_CHECKSUM_LEN], bool *found,
                               WrError *err);
} AssemblerOutput;

/*
 * walrev's DDL capture table, control_schema.ASSEMBLER_DDL_TABLE on the
 * source (control_schema: the history schema's name), writable only by
 * walrev's role: its rows arrive through the slot like any other but are
 * never history; they are the DDL capture event trigger's column identities
 * and generated columns after each CREATE/ALTER TABLE
 * (docs/history-store.md#relation-versions-and-renames).
 */
#define ASSEMBLER_DDL_TABLE "ddl_capture"
/*
 * walrev's erasure requests, control_schema.ASSEMBLER_ERASURE_TABLE on the
 * source, writable only by walrev's role (`walrev erase --apply`): history
 * like any table (the erase revision), but its object's cached image is
 * dropped, so the values erased from the store do not come back as the old
 * values of a later change.
 */
#define ASSEMBLER_ERASURE_TABLE "erasure_log"

typedef struct {
    const TrackingRules *rules; /* borrowed; NULL tracks everything */
    size_t row_cache_bytes;     /* 0: default 16 MiB */
    /* The store's secret (copied): keys row digests and, since format 5, the
     * hash each attribute value enters the checksum chain by. NULL: a random
     * one for this process's digests, and values hashed by bare SHA-256. */
    const DigestKey *digest_key;
    /* No sink keeps a position (Kafka only, stdout): a revision's id is its
     * commit LSN as an integer instead of last id + 1, so ids stay unique
     * and increasing across restarts and crashes, and a transaction the slot
     * resends keeps its id (docs/kafka-format.md#revision-ids). */
    bool ids_from_commit_lsn;
    /* The attestation key's pads (64 bytes each, <schema>.context_key on the
     * source), borrowed for the assembler's life; NULL: no context can be
     * attested (recorded unverified). */
    const uint8_t *attest_ipad, *attest_opad;
    /* Strict mode's keys and role bindings (context.h), borrowed for the
     * assembler's life; NULL: strict mode off, actors not checked. */
    const ContextStrict *strict;
    const char *control_schema; /* borrowed; NULL: no DDL capture table */
    /* The source's DDL capture event trigger is installed and enabled (read
     * at start): a primary key then changes only by DDL it reports, and a
     * Relation message marking no key column where the version has one is
     * not taken for a key drop (handle_relation). */
    bool ddl_capture_on;
    /* Besides, its drop capture reports the DROP INDEX of a replica identity
     * index (read at start): under USING INDEX too, a Relation message
     * marking no key column is then no drop of the index by itself. */
    bool index_drop_capture_on;
    /* The assembler's own reader of the history (copied; its ctx borrowed
     * for the assembler's life): old images, read-ahead batches, rows without
     * a key, suppressed changes. NULL, or NULL members: nothing is known
     * (old values unknown, rows without a key get new identities). */
    const HistoryLookup *history;
} AssemblerConfig;

typedef struct Assembler Assembler;

typedef struct {
    uint64_t revisions;
    uint64_t deltas;
    uint64_t skipped_transactions; /* already durable, or nothing tracked */
    uint64_t renumbered;           /* given the id or parent a sink holds them under (known_revision) */
    uint64_t rechecksummed;        /* given the checksum a sink holds them under, which differed */
    uint64_t known_not_assembled;  /* held by a sink, but assembling them again gave nothing (not resent) */
    uint64_t lookups;              /* old images asked of the history store */
    uint64_t lookup_misses;        /* rows the history has never seen */
    uint64_t prefetched;           /* old images read ahead in batches (assembler_prefetch_put) */
    uint64_t cache_hits;
    size_t cache_bytes;
} AssemblerStats;

/* cfg and out are copied. Caller destroys. */
Assembler *assembler_create(const AssemblerConfig *cfg, const AssemblerOutput *out);
void assembler_destroy(Assembler *a);

/* The relation cache. */
RelCache *assembler_relcache(Assembler *a);
/* Its history reader (AssemblerConfig.history), all NULL without one; owned by the assembler. */
const HistoryLookup *assembler_history(const Assembler *a);

/*
 * Restore a version known from the history store (at start-up, after
 * assembler_set_position), exactly as stored: one whose covering revision
 * (rv->revision_id) was never written is covered by the next one. rv is copied.
 */
void assembler_restore_relation(Assembler *a, const RelationVersion *rv, int16_t max_col_id);

/*
 * Where the sinks stand: the last revision id and checksum already durable,
 * and the LSN below which transactions are skipped (their end LSN is durable).
 */
void assembler_set_position(Assembler *a, int64_t last_revision_id, const uint8_t last_checksum[WALREV_CHECKSUM_LEN],
                            Lsn durable_end_lsn);

/*
 * Handle one message. WR_PROTOCOL for sequences the server must not send
 * (change outside a transaction, unknown relation, streaming not requested);
 * otherwise whatever the output returned.
 */
WrStatus assembler_handle(Assembler *a, const PgoMessage *msg, WrError *err) WR_MUSTCHECK;

/*
 * The baseline: one revision of DELTA_SNAPSHOT rows, read from the snapshot
 * exported by the slot's creation, so it meets the stream exactly at
 * consistent_point. begin → relation(s) via assembler_baseline_relation →
 * rows → commit. context_json is recorded as the revision's context.
 */
WrStatus assembler_baseline_begin(Assembler *a, Lsn consistent_point, int64_t time_pg_us, const char *context_json,
                                  WrError *err) WR_MUSTCHECK;
/* A table of the baseline, described from the catalog as pgoutput would (also a
 * backfill chunk's table, inside its revision). */
WrStatus assembler_baseline_relation(Assembler *a, uint32_t relid, const char *nspname, const char *relname,
                                     char replident, uint16_t ncols, const RelColumnIn *cols, const int16_t *attnums,
                                     const RelationVersion **rv_out, WrError *err) WR_MUSTCHECK;
/* One existing row; vals[i] for rv->cols[i] (data NULL = SQL NULL). Also a
 * backfill chunk's row, inside its revision: the caller has made sure the
 * history does not hold it. */
WrStatus assembler_baseline_row(Assembler *a, const RelationVersion *rv, const Value *vals, WrError *err) WR_MUSTCHECK;
WrStatus assembler_baseline_commit(Assembler *a, WrError *err) WR_MUSTCHECK;

/*
 * A row of a gap revision (worker/gap.h), inside a revision begun with
 * assembler_baseline_begin, rv from assembler_baseline_relation:
 * DELTA_INSERT, a row the history lacks (vals); DELTA_UPDATE, a row whose
 * values differ (vals: every tracked column that differs from the history's
 * image is recorded, its old value flagged unknown); DELTA_DELETE, a row the
 * history holds and the table lacks (key; old values unknown);
 * DELTA_TRUNCATE, every row of rv's table (vals and key unused).
 */
WrStatus assembler_gap_row(Assembler *a, const RelationVersion *rv, DeltaOp op, const char *key, const Value *vals,
                           WrError *err) WR_MUSTCHECK;

/*
 * The backfill of a table added later (worker/backfill.h). Its chunk arrives
 * as a transactional "walrev.backfill" message, which the assembler takes as
 * the context of that transaction's revision; the worker then adds the rows
 * with assembler_baseline_relation and assembler_baseline_row.
 */
/* The object key of a row under rv (docs/history-store.md); pure. */
void assembler_row_key(const RelationVersion *rv, const Value *vals, StrBuf *key);
/* Whether the history holds key already: the row cache, then the history reader. rv
 * may come from another relation cache (only relid and columns are used). */
WrStatus assembler_row_known(Assembler *a, const RelationVersion *rv, const char *key, bool *known,
                             WrError *err) WR_MUSTCHECK;
/*
 * The backfill's test for a row of a table without a key (multiset): a
 * live row with vals' digest whose key is not in exclude, as the history
 * reader's find_row answers; its key into *key. The caller adds each key
 * it was given to exclude, so n equal rows are matched to n distinct rows.
 */
WrStatus assembler_keyless_known(Assembler *a, const RelationVersion *rv, const Value *vals, const char *const *exclude,
                                 int nexclude, StrBuf *key, bool *known, WrError *err) WR_MUSTCHECK;
/* The identity digest of a row of a table without a key (schema/digest.h), under the store's key. */
void assembler_row_digest(const Assembler *a, const RelationVersion *rv, const Value *vals, uint8_t out[DIGEST_LEN]);
/* The key the last assembler_baseline_row recorded its row under; valid until the next change. */
const char *assembler_last_row_key(const Assembler *a);
/*
 * Read-ahead of old images (the worker batches lookups it sees coming).
 * Messages not yet handled are shown to assembler_prefetch_scan in stream
 * order, after everything handled so far; it says whether handling the
 * message would ask the history reader for an old image: an UPDATE or DELETE without
 * the full old row, of a tracked table, in a transaction not already durable,
 * of an object not in the row cache. Then *rv and key are set. For an INSERT
 * it returns false but sets *rv, key and *inserted: handling it will cache the
 * row, so a later change of that key in the run needs no lookup. A Relation
 * message or a walrev DDL message sets scan->stop: later changes may use a
 * relation version not known yet, so nothing after it is answered.
 * assembler_prefetch_put caches an image fetched for such an object, unless
 * the cache holds the object already; handling the message then finds it
 * there. Neither changes what the assembler emits.
 */
typedef struct {
    bool started;  /* set by the first call */
    bool skipping; /* inside a transaction that is already durable */
    bool stop;
} AssemblerScan;
bool assembler_prefetch_scan(Assembler *a, AssemblerScan *scan, const PgoMessage *msg, const RelationVersion **rv,
                             StrBuf *key, bool *inserted);
void assembler_prefetch_put(Assembler *a, const RelationVersion *rv, const char *key, const RowImage *image);
/* The history holds no row of the object: its change then needs no lookup (unless it is cached by then). */
void assembler_prefetch_absent(Assembler *a, uint32_t relid, const char *key);

/* A revision is begun and being emitted (not skipped as already durable). */
bool assembler_in_revision(const Assembler *a);

/* Inside BEGIN..COMMIT? */
bool assembler_in_transaction(const Assembler *a);
/* Drop the transaction in flight (connection lost): the server will resend it. */
void assembler_abandon(Assembler *a);
/* End LSN of the last COMMIT handled (emitted or skipped). */
Lsn assembler_last_end_lsn(const Assembler *a);
int64_t assembler_last_revision_id(const Assembler *a);
void assembler_stats(const Assembler *a, AssemblerStats *out);

#endif
