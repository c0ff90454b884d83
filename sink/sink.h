/*
 * sink.h — where revisions go: the sink interface and its implementations
 * (history store, file, Kafka). A sink receives each revision streamed in
 * parts and reports the highest commit end-LSN it has made durable; the
 * worker confirms to the slot only the minimum over all sinks. Only writing
 * goes through a sink: the history store's is sink/history_sink.h, reading
 * the history back sink/history_reader.h.
 * Sinks log their own driver-level events; every call returns a status with
 * context.
 */
#ifndef WALREV_SINK_H
#define WALREV_SINK_H

#include "common/common.h"
#include "schema/revision.h"

typedef struct Sink Sink;

/* What a sink already holds: used to resume after a restart. */
typedef struct {
    bool known; /* false: the sink keeps no position (stdout) */
    /* The position was read back from the messages the sink holds (Kafka's
     * last revision message): it says what the sink holds, not how revision
     * ids are numbered (with Kafka alone they stay commit LSNs). */
    bool read_back;
    Lsn durable_end_lsn; /* end LSN of the last durable revision, 0 if none */
    int64_t last_revision_id;
    uint8_t last_checksum[WALREV_CHECKSUM_LEN];
    /* The store's secret for keyed digests (schema/digest.h), when it keeps one. */
    bool has_digest_key;
    uint8_t digest_key[32];
} SinkPosition;

/*
 * Where the baseline of one table stands (the history store's backfill table,
 * docs/history-store.md#the-baseline). Strings are borrowed for the call.
 */
typedef struct {
    uint32_t relid;
    const char *nspname;
    const char *relname;
    const char *state;    /* "running", "done", "skipped", "failed", "cancelled" */
    int32_t request_no;   /* the request this progress answers; a newer request wins */
    const char *last_key; /* where the next chunk starts; NULL when none */
    int32_t chunks;
    int64_t rows_read;     /* rows read from the table */
    int64_t rows_recorded; /* rows recorded as snapshot rows (the others were known) */
    const char *error;     /* why it failed or was cancelled, or NULL */
    /* The row is new and the table's history holds only the stream's rows
     * of it until this baseline is done (backfill.whole_from -1 until then). */
    bool partial_until_done;
} BackfillProgress;

typedef struct {
    const char *name;
    /* Connect/open; fill *pos with what is already durable. */
    WrStatus (*open)(Sink *s, SinkPosition *pos, WrError *err);
    /* A new relation version, before any delta that uses it. */
    WrStatus (*write_relation)(Sink *s, const RelationVersion *rv, WrError *err);
    WrStatus (*begin_revision)(Sink *s, const Revision *rev, WrError *err);
    WrStatus (*write_context)(Sink *s, const Revision *rev, const RevisionContext *ctx, WrError *err);
    WrStatus (*write_delta)(Sink *s, const Revision *rev, const ObjectDelta *delta, WrError *err);
    /* Revision complete: end_lsn, counts and checksum are set. May make it durable. */
    WrStatus (*commit_revision)(Sink *s, const Revision *rev, WrError *err);
    /* Make everything received so far durable; called between revisions only.
     * WR_AGAIN: not yet (asynchronous sinks); durability follows via poll().
     * caught_up: the stream has nothing more to hand over right now, or the
     * caller wants everything durable (a stop): waiting for a disk costs the
     * worker nothing, so a sink that commits asynchronously may make what it
     * committed durable now (the history store with synchronous_commit = auto
     * does when its server has not flushed it by itself). false: the worker
     * is behind, and a sink should not make it wait for a disk. */
    WrStatus (*flush)(Sink *s, bool caught_up, WrError *err);
    /* Serve background work (delivery reports) without blocking; may advance durability. */
    WrStatus (*poll)(Sink *s, WrError *err);
    /* Highest end LSN durable in this sink. */
    Lsn (*durable_lsn)(Sink *s);
    /* At idle the worker flushes every pending sink at once, except one that
     * holds its batch: that one is flushed when wants_flush says so (its
     * batch window passed), so a stream of small transactions costs one
     * commit per window rather than one per lull. */
    bool holds_batch_at_idle;
    /* True when the sink wants a flush soon (buffers full, time passed). now_us
     * is the caller's monotonic clock; a sink times a batch from the first call
     * that sees it open (the worker calls after every message). idle: the
     * stream has nothing more to hand over right now (a sink may wait longer
     * while it is busy: bigger batches catch up faster). */
    bool (*wants_flush)(Sink *s, int64_t now_us, bool idle);
    /* Optional, for a sink that holds its batch at idle: µs from now_us until
     * it wants the worker back at idle (0: now) — its batch falls due
     * (the window wants_flush started), or poll() has durability to ask
     * after — or -1 when nothing is due (no batch, or a revision still open:
     * the stream brings its end). Changes nothing; the worker waits on the
     * stream this long instead of polling. */
    int64_t (*idle_wake_in_us)(Sink *s, int64_t now_us);
    /*
     * Optional (history store): record a table's baseline progress in the open
     * batch, so it becomes durable together with the revisions before it (and
     * the chunk revision it describes, when called inside one). Outside a
     * revision it opens the batch if needed; the next flush commits it.
     */
    WrStatus (*write_backfill)(Sink *s, const BackfillProgress *p, WrError *err);
    /*
     * Optional (history store): at a clean stop, the stream was read to
     * end_lsn and every revision before it is durable here, with nothing after
     * the last one. A store that answers "as of an LSN" notes that it is
     * complete through end_lsn, so `--stop-lsn X` then `snapshot --at X`
     * works even when other databases' WAL lies between the last revision and
     * X. Called between batches only; a batch that holds no revision (opened
     * by a read of the history) is committed first.
     */
    WrStatus (*record_position)(Sink *s, Lsn end_lsn, WrError *err);
    /*
     * Optional (history store with synchronous_commit = off): make what
     * flush() committed durable now, waiting for it. Without it such a sink
     * becomes durable later, as poll() sees its server's WAL flushed.
     * fanout_flush(FANOUT_FLUSH_ALL) calls it when a flush left the sink
     * behind what it was given.
     */
    WrStatus (*sync)(Sink *s, WrError *err);
    /* Abandon what is not yet durable (revision in flight) without making it durable. */
    void (*abort)(Sink *s);
    void (*destroy)(Sink *s);
} SinkOps;

struct Sink {
    const SinkOps *ops;
    void *impl;
};

/* ---- constructors; every sink is freed with sink_destroy (accepts NULL) ---- */

/* The history store sink (its settings, keyframe hold and quarantine) is
 * sink/history_sink.h. */

typedef struct {
    const char *path; /* "-" for stdout */
    bool fsync;       /* fsync at each flush (default true for files) */
} FileSinkConfig;
Sink *sink_file_create(const FileSinkConfig *cfg);

void sink_destroy(Sink *s);

#endif
