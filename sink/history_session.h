/*
 * history_session.h — private to sink/: the history store's session as its
 * two halves share it. The writer (history_sink.c: batch, COPY, checkpoint,
 * keyframes, row digests) owns the connection and the open batch; the reader
 * (history_reader.c: old images, read-ahead batches, rows without a key)
 * reads on the same connection inside that batch, so what the batch has not
 * committed yet counts too. What both use is history_session.c: errors, one
 * statement, the transaction, the COPY in flight, the Bloom filter of keys
 * still unsent, the queue of row-digest changes. Nothing outside sink/
 * includes this; the public sides are sink/sink.h and sink/history_reader.h.
 *
 * Errors: every hsession_* call that talks to the server fails through
 * hsession_fail: WR_RETRY when the connection is lost, WR_FATAL otherwise,
 * and either leaves the batch unusable until the sink is aborted. Nothing
 * here logs.
 */
#ifndef WALREV_SINK_HISTORY_SESSION_H
#define WALREV_SINK_HISTORY_SESSION_H

#include <stdio.h>

#include <libpq-fe.h>

#include "schema/digest.h"
#include "sink/fanout.h"
#include "sink/history_reader.h"
#include "sink/keyframer.h"
#include "sink/history_sink.h"
#include "sink/sink.h"

/* The COPY buffers, one per destination table; sent one at a time. */
enum { TB_CONTEXT, TB_REVISION, TB_DELTA, TB_COUNT };

typedef struct {
    uint32_t relid;
    int32_t version;
    bool committed; /* false while only in the open batch */
} RelSeen;

/* Per table touched by the open batch: what tracked_table learns at commit. */
typedef struct {
    uint32_t relid;
    int64_t deltas;
    int64_t live_change; /* rows begun minus rows ended since the batch began (or the truncate) */
    int64_t snapshots;   /* snapshot rows (a baseline or a backfill chunk) in the batch */
} RelCount;

typedef struct HistorySink HistorySink;

/* The reader's handle (sink/history_reader.h): a view of its sink. */
struct HistoryReader {
    HistorySink *h;
    bool (*skips_current)(void *arg); /* see history_reader_set_gate; NULL: never */
    void *skips_arg;
};

struct HistorySink {
    char *conninfo;
    char *schema;
    char *qschema;
    char *slot_name;
    int batch_max_revisions;
    int batch_max_ms;
    double keyframe_factor;
    size_t buffer_bytes;

    PGconn *conn;
    bool broken; /* connection lost: only destroy is useful */
    bool failed; /* an error left the batch unusable until abort() */
    WrStatus failed_status;

    char *copy_sql[TB_COUNT];
    char *table_name[TB_COUNT]; /* for messages: walrev.object_delta */
    StrBuf buf[TB_COUNT];

    /* Open batch. */
    bool in_tx;
    bool in_revision;
    int64_t cur_id;
    int64_t batch_timer_us; /* when wants_flush first saw the open batch (caller's clock); 0: not yet */
    /* The idle pace (history_sink.c, batch_due): when wants_flush last asked
     * for a commit (caller's clock; 0: none yet), and how long the last batch
     * commit took (its COPY tail, bookkeeping and COMMIT; 0: none yet). */
    int64_t commit_asked_us;
    int64_t last_commit_us;
    int batch_revisions;
    int64_t batch_last_id;
    Lsn batch_end_lsn;
    uint8_t batch_checksum[WALREV_CHECKSUM_LEN];
    /* A COPY whose data is sent (or the batch's BEGIN) but whose result is
     * not read yet: the server ingests it while the worker goes on decoding
     * (await_copy before any other use of the connection). */
    bool copy_pending;
    char copy_pending_what[128];
    /* The table (TB_*) whose COPY is still open, -1: none. A table's
     * buffers go into one COPY, chunk after chunk as they fill, until
     * another statement or another table needs the connection
     * (hsession_await_copy ends it): one statement's set-up on the server
     * (slots, indexes, partition routing) per run of chunks instead of per
     * chunk, and the worker never waits for the server to finish a chunk
     * before sending the next. */
    int copy_open;
    int64_t copy_statements, copy_chunks; /* since open: COPY statements, buffers sent (sink_history_copy_counts) */
    RelCount *counts;
    size_t ncounts, capcounts;
    KeyframeRequest *kf_due; /* keyframes the batch made due, asked for once it commits */
    size_t nkf_due, capkf_due;
    Keyframer *keyframer; /* started at open */
    /* Keys of the deltas still in the unsent COPY buffer, as a Bloom filter:
     * a lookup sends the buffer first only when its key may be in it, not
     * once per lookup (a COPY round trip each). */
    uint8_t *unsent_keys;
    bool unsent_keys_dirty;

    /* Committed state (visible in the store; durable once flushed). */
    int64_t next_id_base; /* last revision id received (batch included) */
    int64_t lookup_as_of; /* > 0: lookups answer as of this revision (sink_history_lookup_as_of) */
    int64_t durable_id;   /* last revision committed */
    Lsn durable;          /* end LSN of the last revision committed (or the recorded position) */
    /* How batches commit (sink.h). An asynchronous commit waits for the
     * server's WAL flush (fanout.h); flushed is what durable_lsn reports,
     * never past it. */
    HistoryCommit commit;
    FanoutAwait await;
    Lsn flushed;
    int64_t flush_polled_us; /* when poll last asked the server for its flush position */
    /* The oldest commit still waiting for the flush (its server position)
     * and when it was first seen waiting: with HISTORY_COMMIT_AUTO, one that
     * a poll FLUSH_POLL_US later still finds unflushed is flushed by the
     * worker when it is caught up (the server flushes nothing by itself). */
    Lsn waiting_for;
    int64_t waiting_since_us;

    RelSeen *rels;
    size_t nrels, caprels;

    /* row_digest changes not yet applied (row_digest_apply's four arrays, as
     * array literals): applied before any read of row_digest or the images,
     * and before the batch commits. */
    StrBuf dg[4];
    int dg_n;
    /* Tables with a stale-image mark (col_id -1) somewhere: their lookups
     * read row_digest first. */
    uint32_t *marked;
    size_t nmarked, capmarked;
    /* Tables without a key whose row digests were rebuilt this session, and
     * under which version (find_row rebuilds once after a miss). */
    RelSeen *redigested;
    size_t nredigested, capredigested;
    DigestKey dkey; /* digest_key, read at open */
    /* Erasure requests (rows of the source's <schema>.erasure_log) recorded
     * in the open batch, as erase_apply's arguments: applied once every
     * delta of the batch is sent, before it commits, so the erase revision
     * and the erasure are durable together (docs/history-store.md#erasure). */
    StrBuf erase_args; /* relid \t key \t col_ids \t revision \n ... (history_sink.c) */
    int n_erase;

    /* Data errors and quarantine (history_quarantine.c, docs/history-store.md#quarantine). */
    bool data_failed;     /* the last failure was a data error (pgio: PGIO_DATA) */
    char data_error[512]; /* its message */
    char data_sqlstate[6];
    Lsn cur_commit_lsn; /* the revision begun last */
    uint32_t cur_xid;
    Lsn isolate_until;      /* revisions committing at or before this are committed one per batch */
    Lsn quarantine_lsn;     /* the revision committing at this LSN is stored quarantined; 0: none */
    char *quarantine_error; /* why (the store's error the second time) */
    char quarantine_sqlstate[6];
    bool quarantining;             /* the revision in flight is the quarantined one */
    FILE *qraw;                    /* its msgpack messages, spooled (bounded memory) */
    void *qmpc;                    /* its MpcRevision (msgpack_codec.h) */
    const char *inject_data_error; /* WALREV_TEST_INJECT_DATA_ERROR: see history_quarantine.c */

    /* Partitions (history_partition.c): ids below part_until have one; each holds part_step. */
    int64_t part_until;
    int64_t part_step;

    HistoryReader reader; /* its reading side; reader.h == this */

    /* Scratch. */
    Value *vals;
    size_t vals_cap;
    int16_t *ints; /* scratch: a delta's col_ids or attr_flags */
    size_t ints_cap;
    StrBuf tmp;
};

/* ---- row digests (docs/history-store.md, "Rows without a key") ---- */
#define DG_END_ROW (-32768) /* row_digest_apply: the row ended */
#define DG_STALE (-1)       /* col_id of the stale-image mark */
#define DG_APPLY_AT 20000   /* queued changes applied in one statement at most */

/* ---- partitions (history_partition.c) ---- */

/* Before revision id is begun: make the next partition when id has entered the
 * last one (outside a batch, giving up on a lock timeout: asked again later),
 * and at once when no partition holds id. */
WrStatus hpart_before_revision(HistorySink *h, int64_t id, WrError *err) WR_MUSTCHECK;

/* ---- the session (history_session.c) ---- */

/* Classify a failed libpq call, fill err, mark the batch unusable (see above). */
WrStatus hsession_fail(HistorySink *h, const PGresult *res, WrError *err, const char *what);
/* WR_OK when the session may be used: open, connected, no earlier error. */
WrStatus hsession_check_usable(HistorySink *h, WrError *err, const char *what) WR_MUSTCHECK;
/* Run a statement (text parameters) after any COPY in flight; *out (when not NULL) gets the result, caller clears. */
WrStatus hsession_run(HistorySink *h, const char *sql, int nparams, const char *const *params, const char *what,
                      PGresult **out, WrError *err) WR_MUSTCHECK;
/* One statement of hsession_pipeline: SQL with text parameters, or the
 * statement prepared under name (hsession_prepare) when name is set. */
typedef struct {
    const char *sql;
    const char *name; /* prepared on this connection: no parse or plan per run */
    int nparams;
    const char *const *params;
    const char *what; /* for the error: "writing walrev.checkpoint" */
    bool keep;        /* hand its result over in res (the caller clears it) */
    PGresult *res;    /* out: its result when keep and every statement succeeded, else NULL */
    bool ok;          /* out: it succeeded (a COMMIT may have, though a later statement failed) */
} HsessionStmt;
/* Run s[0..n) in order in one round trip (libpq's pipeline mode) after any
 * COPY in flight. The first failure is returned as hsession_run's would be
 * (the server skips the statements after it); WR_OK only when all succeeded.
 * Blocks until every result is in. */
WrStatus hsession_pipeline(HistorySink *h, HsessionStmt *s, int n, WrError *err) WR_MUSTCHECK;
/* Prepare sql as name on the session's connection (at open; generic plans,
 * plan_cache_mode). */
WrStatus hsession_prepare(HistorySink *h, const char *name, const char *sql, int nparams, WrError *err) WR_MUSTCHECK;
/* Open the batch's transaction if none is open: BEGIN is sent, its result read before the next statement. */
WrStatus hsession_ensure_tx(HistorySink *h, WrError *err) WR_MUSTCHECK;
/* Read the result of the COPY sent last, if any. */
WrStatus hsession_await_copy(HistorySink *h, WrError *err);
/* Send one table's COPY buffer (TB_*) into that table's open COPY, or a
 * new one (ending another table's); the COPY ends, and its result is read,
 * at the next hsession_await_copy. Blocks only while the socket is full. */
WrStatus hsession_send_buffer(HistorySink *h, int t, WrError *err) WR_MUSTCHECK;
/* Send every COPY buffer, in the order the tables' keys need. */
WrStatus hsession_send_all(HistorySink *h, WrError *err) WR_MUSTCHECK;
/* v as one element of a text[] literal, quoted. */
void hsession_append_array_element(StrBuf *b, const char *v);
/* v[0..n) as a text[] literal: {"a","b"}. */
void hsession_append_text_array(StrBuf *b, const char *const *v, int n);
bool hsession_rel_has_hidden(const RelationVersion *rv);
/* Tables with a stale-image mark (col_id DG_STALE) somewhere. */
bool hsession_rel_marked(const HistorySink *h, uint32_t relid);
void hsession_rel_mark(HistorySink *h, uint32_t relid);
/* Queue one row_digest change: key NULL ends the table's rows, col DG_END_ROW
 * the row's, digest NULL removes the entry, len 0 is the stale mark. */
void hsession_dg_queue(HistorySink *h, uint32_t relid, const char *key, int col, const uint8_t *digest, size_t len);
/* Apply the queued changes in the open batch (before any read of row_digest). */
WrStatus hsession_dg_apply(HistorySink *h, WrError *err) WR_MUSTCHECK;
/* row_digest_apply's call, prepared at open (hsession_dg_prepare) as
 * HSESSION_DG_STMT: each batch that queued row digests runs it. */
#define HSESSION_DG_STMT "walrev_row_digests"
WrStatus hsession_dg_prepare(HistorySink *h, WrError *err) WR_MUSTCHECK;
/* The statement hsession_dg_apply runs, for a pipeline: its array
 * parameters in d (hsession_dg_statement_free frees them). The queue is
 * cleared once the statement ran (hsession_dg_clear). */
typedef struct {
    StrBuf arr[4];
    const char *params[4];
    char what[160];
} HsessionDgStmt;
void hsession_dg_statement(const HistorySink *h, HsessionDgStmt *d, HsessionStmt *out);
void hsession_dg_statement_free(HsessionDgStmt *d);
/* A delta of key ("" for a truncate: every key) goes into the unsent COPY buffer. */
void hsession_note_unsent(HistorySink *h, uint32_t relid, const char *key);
/* Whether a delta of key (or a truncate) may be in the unsent COPY buffer (false positives ~1%). */
bool hsession_maybe_unsent(const HistorySink *h, uint32_t relid, const char *key);
/* The delta buffer was sent (or dropped): no key is unsent. */
void hsession_clear_unsent(HistorySink *h);
/* Drop the queued row-digest changes (the batch is rolled back or they were applied). */
void hsession_dg_clear(HistorySink *h);

/* ---- quarantine (history_quarantine.c) ---- */

/* Whether the revision being begun (commit LSN) is the one to quarantine; if so
 * start spooling it. WR_FATAL when the spool cannot be made. */
WrStatus hquarantine_begin(HistorySink *h, const Revision *rev, WrError *err) WR_MUSTCHECK;
/* The quarantined revision's parts, spooled as msgpack instead of written. */
void hquarantine_relation(HistorySink *h, const RelationVersion *rv);
void hquarantine_context(HistorySink *h, const RevisionContext *ctx);
WrStatus hquarantine_delta(HistorySink *h, const Revision *rev, const ObjectDelta *d, WrError *err) WR_MUSTCHECK;
/* Its end: the quarantine row and the flagged revision row, into the open batch. */
WrStatus hquarantine_commit(HistorySink *h, const Revision *rev, WrError *err) WR_MUSTCHECK;
/* Drop the spool (abort, destroy). */
void hquarantine_reset(HistorySink *h);
/* The test-only fault: true when d's new values hold the injected marker. */
bool hquarantine_injects(const HistorySink *h, const ObjectDelta *d);

/* ---- the reader's, used by the writer at open (history_reader.c) ---- */

/* Prepare the lookup statements on a new connection (at open). */
WrStatus hreader_prepare(HistorySink *h, WrError *err) WR_MUSTCHECK;

#endif
