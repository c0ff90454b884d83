/*
 * history_sink.h — the history store sink, its writing side: revisions,
 * contexts and object deltas into the store's tables with COPY, one
 * transaction per batch that also carries the checkpoint row, so a crash
 * never loses or duplicates a revision (docs/history-store.md). Its reading
 * side, on the same connection and inside the same open batch, is
 * sink/history_reader.h; keyframes are taken by sink/keyframer.h.
 *
 * Ownership: sink_history_create returns a Sink the caller owns and frees
 * with sink_destroy; the config's strings are copied. Revisions, deltas and
 * relation versions handed to the SinkOps are borrowed for the call. The
 * sink owns its connection, its COPY buffers and its keyframe thread.
 * Errors: every SinkOps call returns WR_RETRY when the connection is lost
 * or the server's SQLSTATE is one that passes (pgio's table), WR_FATAL
 * otherwise, with the SQLSTATE and the server's first line in err. Either
 * leaves the batch unusable until the sink is aborted: what was not durable
 * is sent again by the next session. A data error (pgio's class PGIO_DATA)
 * is kept for sink_history_failure and quarantine. The sink logs its own
 * driver-level events, never the conninfo.
 * Blocking: open, flush and sync wait on the store; the write calls wait
 * only when they open a batch or send a full COPY buffer.
 */
#ifndef WALREV_SINK_HISTORY_SINK_H
#define WALREV_SINK_HISTORY_SINK_H

#include "sink/sink.h"

/* How the history store's batches commit ([history] synchronous_commit,
 * docs/history-store.md#writing). Asynchronously (synchronous_commit = off on
 * the session), a batch is visible at COMMIT and counts as durable, for the
 * slot, only once the store's server has flushed its WAL past the commit. */
typedef enum {
    /* Asynchronously; and when the server has not flushed a commit by itself
     * one flush poll (20 ms) later and the worker is caught up (flush's
     * caught_up), the worker flushes it (one small synchronous transaction):
     * on a busy server its other commits flush the batch within a few ms, on
     * a quiet one the WAL writer would only after wal_writer_delay. */
    HISTORY_COMMIT_AUTO,
    HISTORY_COMMIT_OFF, /* asynchronously; flushed only by the server (or at a stop) */
    HISTORY_COMMIT_ON,  /* synchronously: a WAL flush per batch */
} HistoryCommit;

typedef struct {
    const char *conninfo;    /* libpq conninfo of the history store */
    const char *schema;      /* history schema, default "walrev" */
    const char *slot_name;   /* checkpoint key */
    int batch_max_revisions; /* commit after this many revisions (default 2000) */
    int batch_max_ms;        /* or after this long (default 20 ms: bounds commit-to-durable lag); at idle also
                              * after 4 × the last commit's duration since it (history_sink.c, the pace) */
    size_t buffer_bytes;     /* COPY buffer per table before sending (default 256 KiB) */
    double keyframe_factor;  /* keyframe when deltas since the last exceed factor × live rows, at least 1000 (default 1) */
    HistoryCommit commit; /* how batches commit (default HISTORY_COMMIT_AUTO) */
} HistorySinkConfig;
Sink *sink_history_create(const HistorySinkConfig *cfg);
/* Wait until the keyframes asked for so far are taken (or failed), the hold
 * released: a stop at --stop-lsn, tests. */
void sink_history_wait_keyframes(Sink *s);
/* behind: the worker is catching up with the source; keyframes wait, each
 * table's up to KEYFRAME_DEFER_MAX thresholds of deltas (keyframer.h).
 * false: the ones that waited are taken. */
void sink_history_hold_keyframes(Sink *s, bool behind);
/*
 * Old images (lookup_row, prefetch_rows, scan_rows) answer as of revision_id
 * instead of what the store received last; 0: as usual again. For a stream
 * restarted behind the store to give another sink a revision the store
 * holds: its old values are those before it, not the store's newest.
 */
void sink_history_lookup_as_of(Sink *s, int64_t revision_id);

/*
 * Data errors and quarantine (docs/history-store.md#quarantine). After a
 * failed session: whether the history store's failure was a data error
 * (pgio's class PGIO_DATA), and which revisions its open batch held
 * (first_id..last_id; the last begun commits at last_commit_lsn).
 */
typedef struct {
    int64_t first_id, last_id;
    Lsn last_commit_lsn;
    uint32_t last_xid;
    char sqlstate[6];
    char error[512];
} HistoryFailure;
bool sink_history_failure(Sink *s, HistoryFailure *f);
/* Since open: the COPY statements run and the buffers sent through them (a
 * table's buffers share one COPY until another statement needs the
 * connection); counts for tests and the debug log. Non-blocking. */
void sink_history_copy_counts(Sink *s, int64_t *statements, int64_t *chunks);
/* Commit every revision that commits at or before until in a batch of its own
 * (to find the one a data error comes from); 0: batches as usual. */
void sink_history_isolate(Sink *s, Lsn until);
/* Store the revision committing at commit_lsn quarantined (raw msgpack in
 * walrev.quarantine, its revision row flagged) with this error; once. */
void sink_history_quarantine(Sink *s, Lsn commit_lsn, const char *sqlstate, const char *error);

#endif
