/*
 * fanout.h — revisions to every sink, and the durability rule that decides
 * what the worker may confirm to the slot. It must never let the slot be
 * confirmed past what every sink has made durable: a revision the slot no
 * longer holds and one sink never stored would be lost for good.
 *
 *   skip     a sink already holding a revision (it is ahead of another
 *            sink after a restart) is not given it again;
 *   pending  a sink that received something not yet durable stays pending
 *            until a flush (or, for Kafka, its delivery reports) makes it so;
 *   durable  the least end LSN made durable over all sinks;
 *   settled  nothing in flight and everything given out durable everywhere:
 *            then, and only then, the slot may move on to the server's WAL
 *            end, so a quiet or untracked database does not pin WAL.
 *
 * Holds no connection and does no I/O of its own beyond the sinks' calls;
 * logs debug lines only. Errors come back prefixed with the sink's name.
 */
#ifndef WALREV_SINK_FANOUT_H
#define WALREV_SINK_FANOUT_H

#include "sink/sink.h"

/* The sinks walrev has: history store, file, Kafka; one spare. */
#define FANOUT_MAX_SINKS 4

typedef struct Fanout Fanout;

/* Empty; free with fanout_destroy. */
Fanout *fanout_create(void);
/*
 * Sinks are destroyed with the fan-out (NULL accepted). abort_pending: first
 * drop what they hold but have not made durable (after a failure, so a
 * half-written batch is never committed by a destructor).
 */
void fanout_destroy(Fanout *f, bool abort_pending);

/* Add a sink, which the fan-out then owns; name is borrowed for its life
 * (a string literal). Returns the sink's index. Aborts past FANOUT_MAX_SINKS. */
int fanout_add(Fanout *f, const char *name, Sink *sink);
int fanout_count(const Fanout *f);
/* What sink i reported at fanout_open (zeroed before). */
const SinkPosition *fanout_position(const Fanout *f, int i);
/* Whether sink i skips the revision in flight (it holds it already). */
bool fanout_skips_current(const Fanout *f, int i);

/*
 * Open every sink and say where streaming starts: where the least advanced
 * sink that holds something stands (*start; zero when none holds anything).
 * A sink that holds nothing yet (just added) joins at that point: it cannot
 * get revisions the slot no longer has, and must not drag the others'
 * revision ids back. Also resets what was given out to start.
 */
WrStatus fanout_open(Fanout *f, SinkPosition *start, WrError *err) WR_MUSTCHECK;

/* True when some sink keeps a position (history store, file): revision ids
 * then continue from it, dense; without one they come from commit LSNs. A
 * position read back from Kafka's messages does not count: it tells what
 * Kafka holds, in whichever ids it was sent. */
bool fanout_has_position(const Fanout *f);

/* ---- one revision, in parts; pointers are borrowed for the call ---- */
WrStatus fanout_relation(Fanout *f, const RelationVersion *rv, WrError *err) WR_MUSTCHECK;
/* Decides per sink whether it skips this revision (holds it already). */
WrStatus fanout_begin(Fanout *f, const Revision *rev, WrError *err) WR_MUSTCHECK;
WrStatus fanout_context(Fanout *f, const Revision *rev, const RevisionContext *c, WrError *err) WR_MUSTCHECK;
WrStatus fanout_delta(Fanout *f, const Revision *rev, const ObjectDelta *d, WrError *err) WR_MUSTCHECK;
/* The revision is complete in every sink that takes it; they become pending. */
WrStatus fanout_commit(Fanout *f, const Revision *rev, WrError *err) WR_MUSTCHECK;
/*
 * A table's baseline progress, to every sink that keeps it (write_backfill).
 * in_revision: inside the revision in flight, which a skipping sink does not
 * get; outside one it goes into the open batch and only a flush makes it
 * durable.
 */
WrStatus fanout_progress(Fanout *f, const BackfillProgress *bp, bool in_revision, WrError *err) WR_MUSTCHECK;
/* Every sink is pending: rows were handed over outside the revision calls
 * (the baseline), so flushes may send full buffers as it streams. */
void fanout_mark_pending(Fanout *f);

/* ---- durability ---- */
typedef enum {
    FANOUT_FLUSH_ALL,     /* every pending sink */
    FANOUT_FLUSH_IDLE,    /* every pending sink but those holding their batch until it is due */
    FANOUT_FLUSH_WANTING, /* pending sinks whose batch is due */
} FanoutFlush;

/* Flush pending sinks as mode says; call between revisions only. now_us is
 * the caller's monotonic clock (sinks time their batches by it). IDLE and ALL
 * tell each sink's flush the worker is caught up (sink.h: the history store
 * may then commit synchronously); WANTING, on a busy stream, that it is not. */
WrStatus fanout_flush(Fanout *f, FanoutFlush mode, int64_t now_us, WrError *err) WR_MUSTCHECK;
/* Serve the sinks' background work (delivery reports); never blocks. */
WrStatus fanout_poll(Fanout *f, WrError *err) WR_MUSTCHECK;
/* A pending sink holds its batch at idle: the caller should wait only briefly. */
bool fanout_holds_batch(const Fanout *f);
/* How long (ms, at least 1, at most max_ms) the caller may wait on its stream
 * at idle before a sink holding its batch wants it back: the least of the
 * pending sinks' idle_wake_in_us (read after a FANOUT_FLUSH_IDLE started
 * their windows), max_ms when none wants it sooner. */
int fanout_idle_wait_ms(const Fanout *f, int64_t now_us, int max_ms);

/* End LSN of the last revision given out (or the start position). */
Lsn fanout_emitted_end(const Fanout *f);
/* The least end LSN durable over all sinks (a sink's own position counts:
 * it holds what it reported at open); 0 with no sinks. */
Lsn fanout_min_durable(const Fanout *f);
/* Each sink's durable end LSN into the metrics (common/metrics.h); revisions
 * and changes handed to each sink are counted as they are handed over. */
void fanout_publish_metrics(const Fanout *f);
/* Nothing in flight and every revision given out durable in all sinks. */
bool fanout_settled(const Fanout *f, bool in_transaction);
/*
 * What may be confirmed to the slot now, given what was confirmed before:
 * never past what every sink made durable; when settled, up to idle_end (the
 * greater of the last COMMIT handled and the server's WAL end). Never less
 * than confirmed.
 */
Lsn fanout_confirmable(const Fanout *f, Lsn confirmed, bool in_transaction, Lsn idle_end);

/*
 * Poll and flush until every sink has made target durable or timeout_ms has
 * passed, sleeping 100 ms between rounds. *reached says which. Blocks.
 */
WrStatus fanout_wait_durable(Fanout *f, Lsn target, int timeout_ms, bool *reached, WrError *err) WR_MUSTCHECK;

/*
 * ---- commits that wait for their server's WAL flush ----
 * A sink whose server commits asynchronously (the history store with
 * synchronous_commit = off) has a batch visible at COMMIT but durable only
 * once that server's WAL is flushed past the commit record. After each
 * commit the sink pushes (end LSN of its last revision, the server's WAL
 * insert position read after the COMMIT returned: the commit record ends at
 * or before it); whenever it learns the server's flush position it asks what
 * is durable. The answer never passes a commit the flush has not covered, so
 * a crash of that server can never lose a revision the slot was confirmed
 * past. Pushes come in commit order (end LSNs and server positions both
 * non-decreasing).
 */
typedef struct {
    Lsn end_lsn;    /* source end LSN made durable by this commit */
    Lsn server_lsn; /* the sink's server's WAL position the commit needs flushed */
} FanoutAwaitEntry;

typedef struct {
    FanoutAwaitEntry *v;
    size_t head, n, cap;
    Lsn durable; /* source end LSN durable so far */
} FanoutAwait;

/* Empty, durable through start (what the sink held at open). */
void fanout_await_init(FanoutAwait *a, Lsn start);
void fanout_await_term(FanoutAwait *a);
/* One more commit, not durable until server_lsn is flushed. */
void fanout_await_push(FanoutAwait *a, Lsn end_lsn, Lsn server_lsn);
/* The server flushed its WAL through flush_lsn: returns the source end LSN
 * now durable (never less than before). */
Lsn fanout_await_flushed(FanoutAwait *a, Lsn flush_lsn);
/* Everything pushed is durable (a synchronous commit flushed past it all). */
Lsn fanout_await_all_flushed(FanoutAwait *a);
/* Commits still waiting for the flush. */
size_t fanout_await_pending(const FanoutAwait *a);
/* The server position the oldest of them waits for; 0 when none waits. */
Lsn fanout_await_oldest(const FanoutAwait *a);

/* Drop what every sink holds but has not made durable (revision in flight). */
void fanout_abort(Fanout *f);
/* Stopped cleanly at end_lsn with everything durable: sinks that answer "as
 * of an LSN" note they are complete through it (record_position). */
WrStatus fanout_record_position(Fanout *f, Lsn end_lsn, WrError *err) WR_MUSTCHECK;

#endif
