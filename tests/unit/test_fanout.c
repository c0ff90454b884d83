/*
 * test_fanout.c — the lossless rule of sink/fanout.c, alone: the slot is never
 * confirmed past what every sink made durable; a sink that already holds a
 * revision skips it; a quiet stream is confirmed up to the server's WAL end
 * only when everything given out is durable everywhere. The sinks here are
 * sinks in memory (SinkOps, nothing external): a synchronous one whose flush
 * makes everything durable, and an asynchronous one that, like Kafka, makes
 * one revision durable per poll after a flush.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "sink/fanout.h"
#include "tests/support/unit_main.h"

#define MAX_REVS 16

typedef struct {
    SinkPosition open_pos;   /* what open reports */
    bool async;              /* flush returns WR_AGAIN; each poll delivers one revision */
    bool wants;              /* what wants_flush answers */
    bool fail_delta;         /* write_delta fails */
    Lsn committed[MAX_REVS]; /* end LSNs received, in order */
    int ncommitted;
    int nflushed; /* of committed, how many a flush has sent */
    int ndurable; /* of committed, how many are durable */
    int begins, deltas, contexts, relations, backfills, flushes, aborts;
    int caught_up_flushes; /* of flushes, those told the worker is caught up */
    int64_t wake_in_us;    /* what idle_wake_in_us answers (g_ops_waking) */
    Lsn recorded;          /* record_position's argument */
    bool in_revision;
} MemSink;

static MemSink *mem(Sink *s) { return s->impl; }

static WrStatus m_open(Sink *s, SinkPosition *pos, WrError *err)
{
    (void)err;
    *pos = mem(s)->open_pos;
    return WR_OK;
}

static WrStatus m_relation(Sink *s, const RelationVersion *rv, WrError *err)
{
    (void)rv;
    (void)err;
    mem(s)->relations++;
    return WR_OK;
}

static WrStatus m_begin(Sink *s, const Revision *rev, WrError *err)
{
    (void)rev;
    (void)err;
    mem(s)->begins++;
    mem(s)->in_revision = true;
    return WR_OK;
}

static WrStatus m_context(Sink *s, const Revision *rev, const RevisionContext *c, WrError *err)
{
    (void)rev;
    (void)c;
    (void)err;
    mem(s)->contexts++;
    return WR_OK;
}

static WrStatus m_delta(Sink *s, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    (void)rev;
    (void)d;
    if (mem(s)->fail_delta) return wr_error_set(err, WR_RETRY, "connection lost");
    mem(s)->deltas++;
    return WR_OK;
}

static WrStatus m_commit(Sink *s, const Revision *rev, WrError *err)
{
    (void)err;
    MemSink *m = mem(s);
    m->committed[m->ncommitted++] = rev->end_lsn;
    m->in_revision = false;
    return WR_OK;
}

static WrStatus m_flush(Sink *s, bool caught_up, WrError *err)
{
    (void)err;
    MemSink *m = mem(s);
    m->flushes++;
    m->caught_up_flushes += caught_up;
    m->nflushed = m->ncommitted;
    if (m->async) return WR_AGAIN;
    m->ndurable = m->ncommitted;
    return WR_OK;
}

static WrStatus m_poll(Sink *s, WrError *err)
{
    (void)err;
    MemSink *m = mem(s);
    if (m->ndurable < m->nflushed) m->ndurable++;
    return WR_OK;
}

static Lsn m_durable(Sink *s)
{
    MemSink *m = mem(s);
    return m->ndurable ? m->committed[m->ndurable - 1] : 0;
}

static bool m_wants(Sink *s, int64_t now_us, bool idle)
{
    (void)now_us;
    (void)idle;
    return mem(s)->wants;
}

static int64_t m_wake(Sink *s, int64_t now_us)
{
    (void)now_us;
    return mem(s)->wake_in_us;
}

static WrStatus m_backfill(Sink *s, const BackfillProgress *p, WrError *err)
{
    (void)p;
    (void)err;
    mem(s)->backfills++;
    return WR_OK;
}

static WrStatus m_record(Sink *s, Lsn end_lsn, WrError *err)
{
    (void)err;
    mem(s)->recorded = end_lsn;
    return WR_OK;
}

static void m_abort(Sink *s)
{
    mem(s)->aborts++;
    mem(s)->ncommitted = mem(s)->ndurable;
}

static void m_destroy(Sink *s) { free(s); /* the MemSink itself belongs to the test */ }

/* What every test sink here does alike: each call recorded in its MemSink
 * (m_*). The tables differ in flushing, durability and the optional hooks. */
#define MEM_SINK_RECORDING_OPS                                                                           \
    .open = m_open, .write_relation = m_relation, .begin_revision = m_begin, .write_context = m_context, \
    .write_delta = m_delta, .commit_revision = m_commit, .wants_flush = m_wants, .destroy = m_destroy
/* ... and flushing and durability as the MemSink keeps them (m_flush): all
 * but the asynchronous table (a_*) below. */
#define MEM_SINK_FLUSH_OPS .flush = m_flush, .poll = m_poll, .durable_lsn = m_durable

static const SinkOps g_ops = {
    .name = "mem",
    MEM_SINK_RECORDING_OPS,
    MEM_SINK_FLUSH_OPS,
    .write_backfill = m_backfill,
    .record_position = m_record,
    .abort = m_abort,
};
static const SinkOps g_ops_holding = {
    .name = "mem-holding",
    MEM_SINK_RECORDING_OPS,
    MEM_SINK_FLUSH_OPS,
    .holds_batch_at_idle = true,
};

static const SinkOps g_ops_waking = {
    .name = "mem-waking",
    MEM_SINK_RECORDING_OPS,
    MEM_SINK_FLUSH_OPS,
    .holds_batch_at_idle = true,
    .idle_wake_in_us = m_wake,
};

static Sink *mem_sink(MemSink *m, const SinkOps *ops)
{
    Sink *s = calloc(1, sizeof(Sink));
    s->ops = ops;
    s->impl = m;
    return s;
}

static const SinkPosition EMPTY = {.known = true};

/* A fan-out of sink a (and b, unless NULL), opened: *start says where it starts. */
static Fanout *open_fanout(SinkPosition *start, const char *na, MemSink *a, const SinkOps *oa, const char *nb,
                           MemSink *b, const SinkOps *ob)
{
    Fanout *f = fanout_create();
    fanout_add(f, na, mem_sink(a, oa));
    if (b) fanout_add(f, nb, mem_sink(b, ob));
    WrError err = {0};
    assert_int_equal(fanout_open(f, start, &err), WR_OK);
    return f;
}

/* One revision of one delta, committed at commit_lsn, ending at end_lsn. */
static void give(Fanout *f, Lsn commit_lsn, Lsn end_lsn)
{
    WrError err = {0};
    Revision rev;
    memset(&rev, 0, sizeof(rev));
    rev.commit_lsn = commit_lsn;
    rev.end_lsn = end_lsn;
    ObjectDelta d;
    memset(&d, 0, sizeof(d));
    RevisionContext c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(fanout_begin(f, &rev, &err), WR_OK);
    assert_int_equal(fanout_context(f, &rev, &c, &err), WR_OK);
    assert_int_equal(fanout_delta(f, &rev, &d, &err), WR_OK);
    assert_int_equal(fanout_commit(f, &rev, &err), WR_OK);
}

/* The slot is confirmed only as far as the slower (asynchronous) sink has
 * made durable, one delivery at a time, and up to the WAL end once settled. */
static void never_past_the_least_durable(void **state)
{
    (void)state;
    MemSink a = {.open_pos = EMPTY}, b = {.open_pos = EMPTY, .async = true};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "sync", &a, &g_ops, "async", &b, &g_ops);
    assert_int_equal(start.durable_end_lsn, 0);

    give(f, 0x100, 0x110);
    give(f, 0x200, 0x210);
    assert_int_equal(fanout_emitted_end(f), 0x210);
    /* Nothing flushed: nothing may be confirmed, whatever the server's WAL end. */
    assert_int_equal(fanout_min_durable(f), 0);
    assert_false(fanout_settled(f, false));
    assert_int_equal(fanout_confirmable(f, 0, false, 0x900), 0);

    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(a.ndurable, 2);
    assert_int_equal(fanout_min_durable(f), 0); /* the async sink has delivered nothing */
    assert_int_equal(fanout_confirmable(f, 0, false, 0x900), 0);

    assert_int_equal(fanout_poll(f, &err), WR_OK);
    assert_int_equal(fanout_min_durable(f), 0x110);
    assert_int_equal(fanout_confirmable(f, 0, false, 0x900), 0x110);
    /* Inside a transaction the rule is the same: durable, never the WAL end. */
    assert_int_equal(fanout_confirmable(f, 0, true, 0x900), 0x110);
    /* Never moves back below what was confirmed before. */
    assert_int_equal(fanout_confirmable(f, 0x110, false, 0x900), 0x110);

    assert_int_equal(fanout_poll(f, &err), WR_OK);
    assert_int_equal(fanout_min_durable(f), 0x210);
    assert_true(fanout_settled(f, false));
    assert_int_equal(fanout_confirmable(f, 0x110, false, 0x900), 0x900);
    /* A transaction in flight is not settled: no further than durable. */
    assert_false(fanout_settled(f, true));
    assert_int_equal(fanout_confirmable(f, 0x110, true, 0x900), 0x210);
    fanout_destroy(f, false);
}

/* A sink that keeps no position (Kafka: known = false, durable 0 until its
 * first delivery) holds everything before the session's start: an idle
 * session is settled at once, confirms the WAL end, and a stop does not wait. */
static void positionless_sink_is_durable_at_the_start(void **state)
{
    (void)state;
    MemSink a = {.open_pos = {.known = true, .durable_end_lsn = 0x300, .last_revision_id = 3}};
    MemSink b = {.open_pos = {.known = false}, .async = true};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "history", &a, &g_ops, "kafka", &b, &g_ops);
    assert_int_equal(start.durable_end_lsn, 0x300);
    assert_int_equal(fanout_min_durable(f), 0x300);
    assert_true(fanout_settled(f, false));
    assert_int_equal(fanout_confirmable(f, 0x300, false, 0x900), 0x900);
    bool reached = false;
    int64_t t0 = mono_now_us();
    assert_int_equal(fanout_wait_durable(f, fanout_emitted_end(f), 30000, &reached, &err), WR_OK);
    assert_true(reached);
    assert_true(mono_now_us() - t0 < 100000);
    /* Once given a revision, the async sink is behind until it delivers it. */
    give(f, 0x400, 0x410);
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(fanout_min_durable(f), 0x300);
    assert_false(fanout_settled(f, false));
    assert_int_equal(fanout_poll(f, &err), WR_OK);
    assert_int_equal(fanout_min_durable(f), 0x410);
    fanout_destroy(f, false);
}

/* After a restart one sink is ahead of the other: it is not given again what
 * it holds, its own position counts as durable, streaming starts where the
 * other stands. */
static void skips_what_a_sink_holds(void **state)
{
    (void)state;
    MemSink a = {.open_pos = {.known = true, .durable_end_lsn = 0x210, .last_revision_id = 2}};
    MemSink b = {.open_pos = {.known = true, .durable_end_lsn = 0x110, .last_revision_id = 1}};
    Fanout *f = fanout_create();
    assert_int_equal(fanout_add(f, "ahead", mem_sink(&a, &g_ops)), 0);
    assert_int_equal(fanout_add(f, "behind", mem_sink(&b, &g_ops)), 1);
    WrError err = {0};
    SinkPosition start;
    assert_int_equal(fanout_open(f, &start, &err), WR_OK);
    assert_int_equal(start.durable_end_lsn, 0x110);
    assert_int_equal(start.last_revision_id, 1);
    assert_int_equal(fanout_position(f, 0)->durable_end_lsn, 0x210);
    assert_int_equal(fanout_emitted_end(f), 0x110);
    assert_int_equal(fanout_min_durable(f), 0x110);

    give(f, 0x200, 0x210); /* held by "ahead" already */
    assert_int_equal(a.begins, 0);
    assert_int_equal(a.deltas, 0);
    assert_int_equal(a.contexts, 0);
    assert_int_equal(a.ncommitted, 0);
    assert_int_equal(b.begins, 1);
    assert_int_equal(b.deltas, 1);
    assert_int_equal(b.ncommitted, 1);

    give(f, 0x300, 0x310); /* new to both */
    assert_int_equal(a.begins, 1);
    assert_int_equal(a.ncommitted, 1);
    assert_int_equal(b.ncommitted, 2);

    /* A revision's progress goes only to the sinks that take the revision. */
    BackfillProgress bp = {.relid = 7, .state = "done"};
    give(f, 0x200, 0x210);
    assert_int_equal(fanout_progress(f, &bp, true, &err), WR_OK);
    assert_int_equal(a.backfills, 0);
    assert_int_equal(b.backfills, 1);
    /* Outside a revision every sink that keeps progress gets it. */
    assert_int_equal(fanout_progress(f, &bp, false, &err), WR_OK);
    assert_int_equal(a.backfills, 1);
    assert_int_equal(b.backfills, 2);

    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(fanout_min_durable(f), 0x210); /* b's last revision ends at 0x210 */
    fanout_destroy(f, false);
}

/* A sink added later holds nothing: streaming starts where the others stand. */
static void a_new_sink_joins(void **state)
{
    (void)state;
    MemSink a = {.open_pos = {.known = true, .durable_end_lsn = 0x500, .last_revision_id = 9, .last_checksum = {0xab}}};
    MemSink b = {.open_pos = EMPTY};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "old", &a, &g_ops, "new", &b, &g_ops);
    assert_int_equal(start.durable_end_lsn, 0x500);
    assert_int_equal(start.last_revision_id, 9);
    assert_int_equal(start.last_checksum[0], 0xab);
    /* The new sink has made nothing durable: nothing beyond 0x500 is confirmed. */
    assert_int_equal(fanout_confirmable(f, 0x500, false, 0x900), 0x500);
    give(f, 0x600, 0x610);
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(fanout_confirmable(f, 0x500, false, 0x900), 0x900);
    fanout_destroy(f, false);
}

/* Keepalives on a quiet or untracked database: nothing given out, all
 * settled, the WAL end is confirmed so it is not pinned; not while a
 * transaction is in flight. */
static void idle_confirms_the_wal_end(void **state)
{
    (void)state;
    MemSink a = {.open_pos = {.known = true, .durable_end_lsn = 0x100, .last_revision_id = 1}};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "history", &a, &g_ops, NULL, NULL, NULL);
    assert_true(fanout_settled(f, false));
    assert_int_equal(fanout_confirmable(f, 0x100, false, 0x4000), 0x4000);
    assert_int_equal(fanout_confirmable(f, 0x100, true, 0x4000), 0x100);
    /* An older WAL end than what was confirmed never moves it back. */
    assert_int_equal(fanout_confirmable(f, 0x4000, false, 0x200), 0x4000);
    fanout_destroy(f, false);
}

/* Flush modes: at idle a sink that holds its batch is flushed only when it
 * wants; while streaming only wanting sinks are flushed; ALL flushes all. */
static void flush_modes(void **state)
{
    (void)state;
    MemSink h = {.open_pos = EMPTY}, k = {.open_pos = EMPTY};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "holding", &h, &g_ops_holding, "plain", &k, &g_ops);
    assert_false(fanout_holds_batch(f));
    /* Nothing pending: no flush at all. */
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(h.flushes + k.flushes, 0);

    give(f, 0x100, 0x110);
    assert_true(fanout_holds_batch(f));
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_IDLE, 0, &err), WR_OK);
    assert_int_equal(h.flushes, 0);
    assert_int_equal(k.flushes, 1);
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_WANTING, 0, &err), WR_OK);
    assert_int_equal(h.flushes, 0);
    h.wants = true;
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_WANTING, 0, &err), WR_OK);
    assert_int_equal(h.flushes, 1);
    assert_false(fanout_holds_batch(f)); /* durable now: no longer pending */
    assert_true(fanout_settled(f, false));

    /* Baseline rows handed over outside revisions: every sink pending. */
    fanout_mark_pending(f);
    assert_true(fanout_holds_batch(f));
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(h.flushes, 2);
    assert_int_equal(k.flushes, 2);
    fanout_destroy(f, false);
}

/* A sink's flush is told whether the worker is caught up: at idle and when
 * everything must be durable it is (the history store may then flush what its
 * server left unflushed), on a busy stream (WANTING) it is not. */
static void flush_says_whether_caught_up(void **state)
{
    (void)state;
    static const struct {
        FanoutFlush mode;
        bool caught_up;
    } steps[] = {{FANOUT_FLUSH_WANTING, false}, {FANOUT_FLUSH_IDLE, true}, {FANOUT_FLUSH_ALL, true}};
    MemSink h = {.open_pos = EMPTY, .wants = true};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "holding", &h, &g_ops_holding, NULL, NULL, NULL);
    int caught_up = 0;
    for (int i = 0; i < 3; i++) {
        give(f, 0x100 * (Lsn)(i + 1), 0x100 * (Lsn)(i + 1) + 0x10);
        assert_int_equal(fanout_flush(f, steps[i].mode, 0, &err), WR_OK);
        caught_up += steps[i].caught_up;
        assert_int_equal(h.flushes, i + 1);
        assert_int_equal(h.caught_up_flushes, caught_up);
    }
    fanout_destroy(f, false);
}

/* At idle the worker waits on its stream until a held batch falls due (what
 * the sink says, rounded up to whole ms, at least 1), not in 2 ms polls; the
 * full wait when no sink holds a batch or none says when. */
static void idle_wait_until_the_batch_is_due(void **state)
{
    (void)state;
    MemSink h = {.open_pos = EMPTY, .wake_in_us = 12300}, k = {.open_pos = EMPTY};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "waking", &h, &g_ops_waking, "plain", &k, &g_ops);
    assert_int_equal(fanout_idle_wait_ms(f, 0, 50), 50); /* nothing pending */
    give(f, 0x100, 0x110);
    assert_int_equal(fanout_idle_wait_ms(f, 0, 50), 13);
    h.wake_in_us = 0; /* due now: the least wait, never a busy loop */
    assert_int_equal(fanout_idle_wait_ms(f, 0, 50), 1);
    h.wake_in_us = 80000; /* later than the caller's own bound */
    assert_int_equal(fanout_idle_wait_ms(f, 0, 50), 50);
    h.wake_in_us = -1; /* nothing due: the revision in flight brings its end */
    assert_int_equal(fanout_idle_wait_ms(f, 0, 50), 50);
    fanout_destroy(f, false);
    /* A holding sink that cannot say when: polled every 2 ms, as before. */
    MemSink g = {.open_pos = EMPTY};
    f = open_fanout(&start, "holding", &g, &g_ops_holding, NULL, NULL, NULL);
    give(f, 0x100, 0x110);
    assert_int_equal(fanout_idle_wait_ms(f, 0, 50), 2);
    fanout_destroy(f, false);
}

/* A failing sink's error comes back named; nothing later is confirmed. */
static void errors_name_the_sink(void **state)
{
    (void)state;
    MemSink a = {.open_pos = EMPTY}, b = {.open_pos = EMPTY, .fail_delta = true};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "history", &a, &g_ops, "kafka", &b, &g_ops);
    Revision rev;
    memset(&rev, 0, sizeof(rev));
    rev.commit_lsn = 0x100;
    ObjectDelta d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(fanout_begin(f, &rev, &err), WR_OK);
    assert_int_equal(fanout_delta(f, &rev, &d, &err), WR_RETRY);
    assert_string_equal(err.msg, "sink kafka: connection lost");
    assert_int_equal(a.deltas, 1);
    assert_int_equal(fanout_emitted_end(f), 0);
    /* Torn down after the failure: what was not durable is dropped, not committed. */
    fanout_destroy(f, true);
    assert_int_equal(a.aborts, 1);
    assert_int_equal(b.aborts, 1);
    assert_int_equal(a.flushes, 0);
}

/* The stop and the baseline wait for asynchronous delivery, bounded. */
static void waits_for_durability(void **state)
{
    (void)state;
    MemSink b = {.open_pos = EMPTY, .async = true};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "kafka", &b, &g_ops, NULL, NULL, NULL);
    give(f, 0x100, 0x110);
    give(f, 0x200, 0x210);
    bool reached = true;
    assert_int_equal(fanout_wait_durable(f, 0x210, 0, &reached, &err), WR_OK);
    assert_false(reached);
    /* Each round polls (one delivery) and flushes: two rounds reach it. */
    assert_int_equal(fanout_wait_durable(f, 0x210, 1000, &reached, &err), WR_OK);
    assert_true(reached);
    assert_int_equal(fanout_min_durable(f), 0x210);
    assert_int_equal(fanout_record_position(f, 0x900, &err), WR_OK);
    assert_int_equal(b.recorded, 0x900);
    fanout_destroy(f, false);
    assert_int_equal(b.aborts, 0);
}

/* ---- a store that commits asynchronously (synchronous_commit = off) ----
 * flush commits: the batch is in the server's WAL up to a new insert
 * position, durable only once the server's flush position (set by the test,
 * as the WAL writer would) reaches it; poll reads that position; sync
 * flushes everything (a synchronous commit after it). */
typedef struct {
    MemSink m;
    FanoutAwait await;
    Lsn server_insert, server_flush;
    int syncs;
} AwaitSink;

static WrStatus a_flush(Sink *s, bool caught_up, WrError *err)
{
    (void)caught_up;
    (void)err;
    AwaitSink *a = s->impl;
    a->m.flushes++;
    if (a->m.nflushed < a->m.ncommitted) {
        a->server_insert += 0x1000;
        fanout_await_push(&a->await, a->m.committed[a->m.ncommitted - 1], a->server_insert);
    }
    a->m.nflushed = a->m.ncommitted;
    (void)fanout_await_flushed(&a->await, a->server_flush);
    return WR_OK;
}

static WrStatus a_poll(Sink *s, WrError *err)
{
    (void)err;
    AwaitSink *a = s->impl;
    (void)fanout_await_flushed(&a->await, a->server_flush);
    return WR_OK;
}

static WrStatus a_sync(Sink *s, WrError *err)
{
    (void)err;
    AwaitSink *a = s->impl;
    a->syncs++;
    a->server_flush = a->server_insert;
    (void)fanout_await_all_flushed(&a->await);
    return WR_OK;
}

static Lsn a_durable(Sink *s) { return ((AwaitSink *)s->impl)->await.durable; }

static const SinkOps g_ops_await = {
    .name = "mem-await",
    MEM_SINK_RECORDING_OPS,
    .flush = a_flush,
    .poll = a_poll,
    .durable_lsn = a_durable,
    .holds_batch_at_idle = true,
    .sync = a_sync,
};

/* The queue alone: only a prefix of commits whose server position is
 * flushed counts, never more, never less than before. */
static void await_counts_only_flushed_commits(void **state)
{
    (void)state;
    FanoutAwait a;
    fanout_await_init(&a, 0x50);
    assert_int_equal(fanout_await_flushed(&a, 0), 0x50);
    fanout_await_push(&a, 0x110, 1000);
    fanout_await_push(&a, 0x210, 1100);
    fanout_await_push(&a, 0x310, 1200);
    assert_int_equal(fanout_await_pending(&a), 3);
    assert_int_equal(fanout_await_flushed(&a, 999), 0x50);   /* first commit not flushed yet */
    assert_int_equal(fanout_await_flushed(&a, 1000), 0x110); /* exactly its position: durable */
    assert_int_equal(fanout_await_flushed(&a, 1199), 0x210);
    assert_int_equal(fanout_await_pending(&a), 1);
    assert_int_equal(fanout_await_flushed(&a, 10), 0x210); /* an older reading never moves it back */
    /* Prefix only: a later commit does not count before an earlier one. */
    fanout_await_push(&a, 0x410, 2000);
    fanout_await_push(&a, 0x510, 1500);
    assert_int_equal(fanout_await_flushed(&a, 1600), 0x310);
    assert_int_equal(fanout_await_pending(&a), 2);
    assert_int_equal(fanout_await_all_flushed(&a), 0x510);
    assert_int_equal(fanout_await_pending(&a), 0);
    /* Many commits, read now and then: the queue reuses its space and the
     * answer is always the last commit at or below the flush position. */
    Lsn end = 0x1000, pos = 5000;
    for (int i = 0; i < 1000; i++) {
        end += 0x10;
        pos += 7;
        fanout_await_push(&a, end, pos);
        if (i % 13 == 0) {
            Lsn flush = pos - 7 * 5; /* the five newest are not flushed */
            Lsn want = i >= 5 ? end - 5 * 0x10 : 0x510;
            assert_int_equal(fanout_await_flushed(&a, flush), want);
            assert_true(fanout_await_pending(&a) <= 5);
        }
    }
    assert_int_equal(fanout_await_all_flushed(&a), end);
    fanout_await_term(&a);
}

/* With an asynchronously committing store the slot is confirmed only behind
 * its server's WAL flush: a batch committed but not flushed is not durable,
 * and a crash of that server (losing it) could not lose a confirmed
 * revision. Only FANOUT_FLUSH_ALL forces the flush (sync); the batch flushes
 * of a busy or idle stream never do. */
static void async_commit_confirmed_behind_the_flush(void **state)
{
    (void)state;
    AwaitSink h = {.m = {.open_pos = EMPTY, .wants = true}};
    fanout_await_init(&h.await, 0);
    MemSink file = {.open_pos = EMPTY, .wants = true};
    WrError err = {0};
    SinkPosition start;
    Fanout *f = open_fanout(&start, "file", &file, &g_ops, "history", &h.m, &g_ops_await);
    /* open_fanout gave the AwaitSink's MemSink to the fan-out: its impl must be the AwaitSink. */
    assert_ptr_equal((void *)&h, (void *)&h.m);

    give(f, 0x100, 0x110);
    give(f, 0x200, 0x210);
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_WANTING, 0, &err), WR_OK); /* batch 1 committed */
    assert_int_equal(h.m.flushes, 1);
    assert_int_equal(file.ndurable, 2);
    /* Committed, visible, not flushed: nothing is confirmable, not even when
     * the stream is quiet (settled needs durable everywhere). */
    assert_int_equal(fanout_min_durable(f), 0);
    assert_false(fanout_settled(f, false));
    assert_int_equal(fanout_confirmable(f, 0, false, 0x900), 0);
    assert_int_equal(h.syncs, 0);

    give(f, 0x300, 0x310);
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_IDLE, 0, &err), WR_OK); /* batch 2 committed */
    assert_int_equal(h.syncs, 0);
    assert_int_equal(fanout_confirmable(f, 0, false, 0x900), 0);

    /* The WAL writer flushed the first batch's commit, not the second's. */
    h.server_flush = 0x1000;
    assert_int_equal(fanout_poll(f, &err), WR_OK);
    assert_int_equal(fanout_min_durable(f), 0x210);
    assert_int_equal(fanout_confirmable(f, 0, false, 0x900), 0x210);
    assert_false(fanout_settled(f, false));
    /* A flush position short of the second commit changes nothing. */
    h.server_flush = 0x1fff;
    assert_int_equal(fanout_poll(f, &err), WR_OK);
    assert_int_equal(fanout_confirmable(f, 0x210, false, 0x900), 0x210);

    /* A stop (or a baseline's end) wants everything durable: sync, then settled. */
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(h.syncs, 1);
    assert_int_equal(fanout_min_durable(f), 0x310);
    assert_true(fanout_settled(f, false));
    assert_int_equal(fanout_confirmable(f, 0x210, false, 0x900), 0x900);
    /* Nothing pending any more: FLUSH_ALL does not sync again. */
    assert_int_equal(fanout_flush(f, FANOUT_FLUSH_ALL, 0, &err), WR_OK);
    assert_int_equal(h.syncs, 1);
    fanout_destroy(f, false);
    fanout_await_term(&h.await);
}

TS_RUN_TESTS(cmocka_unit_test(never_past_the_least_durable), cmocka_unit_test(skips_what_a_sink_holds),
             cmocka_unit_test(positionless_sink_is_durable_at_the_start), cmocka_unit_test(a_new_sink_joins),
             cmocka_unit_test(idle_confirms_the_wal_end), cmocka_unit_test(flush_modes),
             cmocka_unit_test(flush_says_whether_caught_up), cmocka_unit_test(idle_wait_until_the_batch_is_due),
             cmocka_unit_test(errors_name_the_sink), cmocka_unit_test(waits_for_durability),
             cmocka_unit_test(await_counts_only_flushed_commits),
             cmocka_unit_test(async_commit_confirmed_behind_the_flush))
