/*
 * fanout.c — revisions to every sink and the durability rule (fanout.h).
 * Every decision about what may be confirmed to the slot is made here, from
 * what the sinks report; the worker only asks. Must never answer more than
 * every sink has made durable.
 */
#include "sink/fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"

typedef struct {
    Sink *sink;
    const char *name;
    SinkPosition pos;  /* what it held at open */
    bool pending;      /* received something not yet durable */
    bool skip_current; /* the revision in flight is already in this sink */
    int metric;        /* its MetricsSink, -1 for a name metrics does not know */
} FanoutSink;

struct Fanout {
    FanoutSink sinks[FANOUT_MAX_SINKS];
    int n;
    Lsn emitted_end; /* end LSN of the last revision given out */
    Lsn start_lsn;   /* where the session streams from: no sink is given anything before it */
};

Fanout *fanout_create(void) { return xcalloc(1, sizeof(Fanout)); }

void fanout_destroy(Fanout *f, bool abort_pending)
{
    if (!f) return;
    if (abort_pending) fanout_abort(f);
    for (int i = 0; i < f->n; i++) sink_destroy(f->sinks[i].sink);
    free(f);
}

int fanout_add(Fanout *f, const char *name, Sink *sink)
{
    if (f->n >= FANOUT_MAX_SINKS) {
        fprintf(stderr, "walrev: more than %d sinks\n", FANOUT_MAX_SINKS);
        abort();
    }
    f->sinks[f->n] = (FanoutSink){.sink = sink, .name = name, .metric = metrics_sink_of(name)};
    if (f->sinks[f->n].metric >= 0) metrics_sink_enable((MetricsSink)f->sinks[f->n].metric);
    return f->n++;
}

int fanout_count(const Fanout *f) { return f->n; }

const SinkPosition *fanout_position(const Fanout *f, int i) { return &f->sinks[i].pos; }

bool fanout_skips_current(const Fanout *f, int i) { return f->sinks[i].skip_current; }

static bool holds_nothing(const SinkPosition *pos) { return pos->durable_end_lsn == 0 && pos->last_revision_id == 0; }

WrStatus fanout_open(Fanout *f, SinkPosition *start, WrError *err)
{
    int min_i = -1;
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        memset(&s->pos, 0, sizeof(s->pos));
        WrStatus st = s->sink->ops->open(s->sink, &s->pos, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        if (s->pos.known && !holds_nothing(&s->pos) &&
            (min_i < 0 || s->pos.durable_end_lsn < f->sinks[min_i].pos.durable_end_lsn))
            min_i = i;
    }
    memset(start, 0, sizeof(*start));
    if (min_i >= 0) *start = f->sinks[min_i].pos;
    for (int i = 0; i < f->n && min_i >= 0; i++) {
        FanoutSink *s = &f->sinks[i];
        if (s->pos.known && holds_nothing(&s->pos))
            log_info("msg=\"new sink joins at the current position\" sink=%s lsn=" LSN_FMT " after_revision=%lld",
                     s->name, LSN_ARGS(start->durable_end_lsn), (long long)start->last_revision_id);
    }
    f->emitted_end = start->durable_end_lsn;
    f->start_lsn = start->durable_end_lsn;
    return WR_OK;
}

bool fanout_has_position(const Fanout *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->sinks[i].pos.known && !f->sinks[i].pos.read_back) return true;
    return false;
}

/* ---- one revision ---- */

WrStatus fanout_relation(Fanout *f, const RelationVersion *rv, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        WrStatus st = s->sink->ops->write_relation(s->sink, rv, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        /* A relation may open a batch (the history store records the
         * version) even when every revision after it is skipped by this
         * sink: only a flush closes that batch. */
        s->pending = true;
    }
    return WR_OK;
}

WrStatus fanout_begin(Fanout *f, const Revision *rev, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        /* A sink that already holds this revision (it is ahead of another sink) skips it. */
        s->skip_current = s->pos.known && rev->commit_lsn < s->pos.durable_end_lsn;
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->begin_revision(s->sink, rev, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    return WR_OK;
}

WrStatus fanout_context(Fanout *f, const Revision *rev, const RevisionContext *c, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->write_context(s->sink, rev, c, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    return WR_OK;
}

WrStatus fanout_delta(Fanout *f, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->write_delta(s->sink, rev, d, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        if (s->metric >= 0) metrics_sink_add((MetricsSink)s->metric, METRICS_SINK_CHANGES, 1);
    }
    return WR_OK;
}

WrStatus fanout_commit(Fanout *f, const Revision *rev, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->commit_revision(s->sink, rev, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        s->pending = true;
        if (s->metric >= 0) metrics_sink_add((MetricsSink)s->metric, METRICS_SINK_REVISIONS, 1);
    }
    f->emitted_end = rev->end_lsn;
    return WR_OK;
}

WrStatus fanout_progress(Fanout *f, const BackfillProgress *bp, bool in_revision, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        if (!s->sink->ops->write_backfill || (in_revision && s->skip_current)) continue;
        WrStatus st = s->sink->ops->write_backfill(s->sink, bp, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        s->pending = true; /* outside a revision only a flush makes it durable */
    }
    return WR_OK;
}

void fanout_mark_pending(Fanout *f)
{
    for (int i = 0; i < f->n; i++) f->sinks[i].pending = true;
}

/* ---- durability ---- */

WrStatus fanout_flush(Fanout *f, FanoutFlush mode, int64_t now_us, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        if (!s->pending) continue;
        bool ask = mode == FANOUT_FLUSH_WANTING || (mode == FANOUT_FLUSH_IDLE && s->sink->ops->holds_batch_at_idle);
        if (ask && !s->sink->ops->wants_flush(s->sink, now_us, mode == FANOUT_FLUSH_IDLE)) continue;
        /* Only a flush of a busy stream finds the worker behind. */
        WrStatus st = s->sink->ops->flush(s->sink, mode != FANOUT_FLUSH_WANTING, err);
        if (st == WR_AGAIN) continue; /* durability will follow (Kafka delivery reports) */
        if (st != WR_OK) return wr_error_prefix(err, "sink %s flush", s->name);
        /* Everything must be durable now: a sink that committed
         * asynchronously is made to flush (and waits for it). */
        if (mode == FANOUT_FLUSH_ALL && s->sink->ops->sync && s->sink->ops->durable_lsn(s->sink) < f->emitted_end) {
            st = s->sink->ops->sync(s->sink, err);
            if (st != WR_OK) return wr_error_prefix(err, "sink %s sync", s->name);
        }
        /* Kafka may still await delivery reports, an asynchronous commit its
         * server's WAL flush; either stays pending until durable. */
        s->pending = s->sink->ops->durable_lsn(s->sink) < f->emitted_end;
    }
    return WR_OK;
}

WrStatus fanout_poll(Fanout *f, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        FanoutSink *s = &f->sinks[i];
        if (!s->sink->ops->poll) continue;
        WrStatus st = s->sink->ops->poll(s->sink, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    return WR_OK;
}

bool fanout_holds_batch(const Fanout *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->sinks[i].pending && f->sinks[i].sink->ops->holds_batch_at_idle) return true;
    return false;
}

int fanout_idle_wait_ms(const Fanout *f, int64_t now_us, int max_ms)
{
    int64_t wait_us = (int64_t)max_ms * 1000;
    for (int i = 0; i < f->n; i++) {
        const FanoutSink *s = &f->sinks[i];
        if (!s->pending || !s->sink->ops->holds_batch_at_idle) continue;
        /* A sink that cannot say when its batch falls due is asked again soon. */
        int64_t due = s->sink->ops->idle_wake_in_us ? s->sink->ops->idle_wake_in_us(s->sink, now_us) : 2000;
        if (due >= 0 && due < wait_us) wait_us = due;
    }
    /* Rounded up, at least 1 ms: the batch is flushed after the wait, not polled for it. */
    int ms = (int)((wait_us + 999) / 1000);
    return ms < 1 ? 1 : ms;
}

Lsn fanout_emitted_end(const Fanout *f) { return f->emitted_end; }

/* What sink s holds durably. */
static Lsn sink_durable(const Fanout *f, const FanoutSink *s)
{
    Lsn d = s->sink->ops->durable_lsn(s->sink);
    if (s->pos.known && s->pos.durable_end_lsn > d) d = s->pos.durable_end_lsn;
    /* A sink that keeps no position (Kafka) reports 0 until its first
     * delivery; nothing before the start is sent to it again, so it
     * holds all it will ever get of that. Without this, a stop with
     * nothing outstanding waited 30 s and an idle session confirmed
     * nothing. */
    if (!s->pos.known && d < f->start_lsn) d = f->start_lsn;
    return d;
}

Lsn fanout_min_durable(const Fanout *f)
{
    Lsn m = UINT64_MAX;
    for (int i = 0; i < f->n; i++) {
        Lsn d = sink_durable(f, &f->sinks[i]);
        if (d < m) m = d;
    }
    return m == UINT64_MAX ? 0 : m;
}

void fanout_publish_metrics(const Fanout *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->sinks[i].metric >= 0)
            metrics_sink_set_durable((MetricsSink)f->sinks[i].metric, sink_durable(f, &f->sinks[i]));
}

bool fanout_settled(const Fanout *f, bool in_transaction)
{
    return !in_transaction && fanout_min_durable(f) >= f->emitted_end;
}

Lsn fanout_confirmable(const Fanout *f, Lsn confirmed, bool in_transaction, Lsn idle_end)
{
    Lsn c = confirmed;
    if (fanout_settled(f, in_transaction)) {
        if (idle_end > c) c = idle_end;
    } else {
        Lsn durable = fanout_min_durable(f);
        if (durable > c && durable <= f->emitted_end) c = durable;
    }
    return c;
}

WrStatus fanout_wait_durable(Fanout *f, Lsn target, int timeout_ms, bool *reached, WrError *err)
{
    for (int waited = 0;; waited += 100) {
        *reached = fanout_min_durable(f) >= target;
        if (*reached || waited >= timeout_ms) return WR_OK;
        usleep(100000);
        WrStatus st = fanout_poll(f, err);
        if (st != WR_OK) return st;
        st = fanout_flush(f, FANOUT_FLUSH_ALL, mono_now_us(), err);
        if (st != WR_OK) return st;
    }
}

void fanout_abort(Fanout *f)
{
    for (int i = 0; i < f->n; i++)
        if (f->sinks[i].sink->ops->abort) f->sinks[i].sink->ops->abort(f->sinks[i].sink);
}

WrStatus fanout_record_position(Fanout *f, Lsn end_lsn, WrError *err)
{
    for (int i = 0; i < f->n; i++) {
        Sink *s = f->sinks[i].sink;
        if (!s->ops->record_position) continue;
        WrStatus st = s->ops->record_position(s, end_lsn, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", f->sinks[i].name);
    }
    return WR_OK;
}

/* ---- commits that wait for their server's WAL flush ---- */

void fanout_await_init(FanoutAwait *a, Lsn start)
{
    memset(a, 0, sizeof(*a));
    a->durable = start;
}

void fanout_await_term(FanoutAwait *a)
{
    free(a->v);
    memset(a, 0, sizeof(*a));
}

void fanout_await_push(FanoutAwait *a, Lsn end_lsn, Lsn server_lsn)
{
    if (a->head > 0 && a->head == a->n) a->head = a->n = 0; /* drained: start over */
    if (a->n == a->cap) {
        if (a->head > 0) { /* reuse the drained front before growing */
            memmove(a->v, a->v + a->head, (a->n - a->head) * sizeof(*a->v));
            a->n -= a->head;
            a->head = 0;
        }
        if (a->n == a->cap) {
            a->cap = a->cap ? 2 * a->cap : 16;
            a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
        }
    }
    a->v[a->n++] = (FanoutAwaitEntry){end_lsn, server_lsn};
}

Lsn fanout_await_flushed(FanoutAwait *a, Lsn flush_lsn)
{
    /* Only a prefix may become durable: a later commit never counts before an
     * earlier one, whatever its positions say. */
    while (a->head < a->n && a->v[a->head].server_lsn <= flush_lsn) {
        if (a->v[a->head].end_lsn > a->durable) a->durable = a->v[a->head].end_lsn;
        a->head++;
    }
    return a->durable;
}

Lsn fanout_await_all_flushed(FanoutAwait *a) { return fanout_await_flushed(a, UINT64_MAX); }

size_t fanout_await_pending(const FanoutAwait *a) { return a->n - a->head; }

Lsn fanout_await_oldest(const FanoutAwait *a) { return a->head < a->n ? a->v[a->head].server_lsn : 0; }
