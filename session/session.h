/*
 * session.h — a replication session of `walrev run`: the loop that turns a
 * slot's stream into calls on the assembler and the sink fan-out, and the
 * status protocol that confirms to the slot only what every sink has made
 * durable (keepalives answered at once, status updates on a timer, the
 * position past the last revision recorded in the history store first). A
 * session opens the sinks (through the caller's hook), the assembler, the
 * backfill and the stream, streams until a stop, an error or the end of the
 * stream, and tears them all down. It never calls exit() and never retries:
 * the caller decides on the returned status (WR_RETRY: start another).
 *
 * Errors come back in WrError with context ("source: ...", "sink history:
 * ..."); the session logs progress and warnings, never the error it returns.
 */
#ifndef WALREV_SESSION_SESSION_H
#define WALREV_SESSION_SESSION_H

#include <signal.h>

#include "baseline/baseline.h"
#include "baseline/reconciler.h"
#include "common/common.h"
#include "decoder/context.h"
#include "schema/tracking.h"
#include "sink/fanout.h"
#include "status/status.h"

typedef struct Session Session;

/* The sinks of one session, filled by SessionHooks.open_sinks. */
typedef struct {
    Fanout *fanout; /* every sink; the session's from here (destroyed at its end, also after a failure) */
    Sink *history;  /* the history store's sink inside fanout; NULL when off */
    int history_index; /* its index in fanout, -1 when off */
} SessionSinks;

/* What the session tells its caller (systemd notify, the watchdog). Every
 * hook but open_sinks may be NULL. */
typedef struct {
    void *arg; /* passed to every hook */
    /* The sinks, opened anew for each session (create_slot too). On failure
     * whatever out->fanout holds is destroyed by the session. */
    WrStatus (*open_sinks)(void *arg, Session *s, SessionSinks *out, WrError *err);
    void (*ready)(void *arg);                                    /* streaming started */
    void (*progress)(void *arg, int64_t revision, Lsn confirmed); /* at each status update */
    void (*waiting)(void *arg, Lsn confirmed); /* a sink waits for its brokers (session_while_sink_waits) */
    void (*tick)(void *arg, int64_t now_us);   /* each turn of the loop and of a sink's wait */
    void (*stopping)(void *arg);               /* a clean stop begins */
} SessionHooks;

/* Everything borrowed: it must outlive the session. */
typedef struct {
    const char *source_conninfo;
    const char *slot_name;
    const char *publication;
    bool history_enabled; /* [history] on: relation versions are read from the store at the start */
    const char *history_conninfo;
    const char *history_schema;
    const BaselineConfig *baseline;     /* gap revisions, baselines and the backfill read it */
    const StatusTarget *status_target;  /* the worker's state row */
    const TrackingRules *tracking;      /* NULL tracks everything */
    size_t row_cache_bytes;
    const ContextStrict *strict;        /* NULL: strict mode off */
    int status_interval_ms;             /* between status updates; not positive: 1000 */
    Lsn stop_lsn;                       /* --stop-lsn: stop cleanly once confirmed through it; 0: none */
    bool sample_slot;                   /* [metrics] on: the slot's retained WAL is sampled every 10 s */
    Reconciler *reconciler;             /* its messages are its own; NULL when off */
    const volatile sig_atomic_t *stop_requested; /* set by a signal handler: stop cleanly */
    SessionHooks hooks;
} SessionConfig;

/* How a session ended (session_run). */
typedef struct {
    bool stopped;        /* a clean stop (signal or --stop-lsn) */
    int64_t streamed_us; /* how long it streamed; 0 when it never started */
} SessionEnd;

/* A session runner for the worker's life: counters and the history store's
 * data errors carry over from one session to the next. cfg is copied (what
 * it points to is borrowed). Free with session_destroy (NULL accepted). */
Session *session_create(const SessionConfig *cfg);
void session_destroy(Session *s);

/*
 * One session: sinks opened, streaming from where the least advanced sink
 * stands, until a stop (end->stopped, WR_OK), an error, or the server ends
 * the stream (WR_RETRY). A data error of the history store turns into
 * WR_RETRY while isolating or quarantining can still store the revisions
 * (rules.h). Everything the session opened is torn down before it returns
 * (pending writes aborted after a failure). Blocks.
 */
WrStatus session_run(Session *s, SessionEnd *end, WrError *err) WR_MUSTCHECK;

/*
 * Create the replication slot (walrev setup). With baseline, the slot exports
 * its snapshot and every published table's existing rows are recorded, read
 * in that snapshot, as the first revision in every sink; a history store
 * that holds history already gets a gap revision instead, and a slot left by
 * an interrupted baseline is dropped and the baseline taken again.
 * *created says whether a slot was made. Torn down before it returns.
 */
WrStatus session_create_slot(Session *s, bool baseline, bool *created, WrError *err) WR_MUSTCHECK;

/*
 * For a sink's while_waiting (KafkaSinkConfig) with the session as arg:
 * while a sink waits for its brokers the loop cannot read, so this keeps the
 * walsender from timing out with status updates and calls the waiting and
 * tick hooks. Returns false when a stop was asked for (give up the wait).
 */
bool session_while_sink_waits(void *session);

#endif
