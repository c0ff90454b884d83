/*
 * session.c — one replication session (session.h): receive CopyData, decode,
 * assemble, hand each revision to the fan-out (sink/fanout.h), which says
 * what may be confirmed; flush sinks when they ask or when the stream goes
 * idle; answer keepalives at once and send status updates on a timer, by the
 * rules of rules.h. Any retriable failure ends the session and the caller
 * starts another from the sinks' own checkpoints, so recovery has one code
 * path. Never exits the process and never retries by itself.
 */
#include "session/session.h"

#include "baseline/gap.h"
#include "common/log.h"
#include "common/metrics.h"
#include "decoder/assembler.h"
#include "decoder/pgoutput.h"
#include "decoder/stream.h"
#include "pgio/pgio.h"
#include "readahead/readahead.h"
#include "schema/checksum.h"
#include "session/rules.h"
#include "setup/setup.h"
#include "sink/history_reader.h"
#include "sink/known_ids.h"
#include "sink/history_sink.h"
#include "sink/sink.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct Session {
    SessionConfig cfg; /* strings and objects borrowed from the caller */
    /* ---- one session's: opened at its start, torn down at its end ---- */
    Fanout *fanout;
    Sink *history;     /* the history store's sink, owned by fanout; NULL when off */
    int history_index; /* its index in fanout, -1 when off */
    PGconn *catalog;   /* normal connection to the source for catalog questions; lazily opened */
    Assembler *asm_;
    Backfill *backfill; /* tables added to the publication later; NULL without a history store */
    ReplStream *stream;
    PgoParser parser;
    SessionPositions pos; /* received, server WAL end, confirmed (rules.h); reset when streaming starts */
    int64_t streaming_since_us; /* when this session began streaming; 0 before */
    /* Messages read ahead (old images are fetched for them in batches); it
     * keeps what ended the read until they are handled. */
    ReadAhead *ahead;
    /* The context attestation key's pads (ipad || opad) read from the source
     * at the session's start; has_attest_key false: contexts unverified. */
    uint8_t attest_pads[128];
    bool has_attest_key;
    /* The source's DDL capture event trigger is enabled (read at the
     * session's start; AssemblerConfig.ddl_capture_on), and reports the DROP
     * INDEX of a replica identity index (AssemblerConfig.index_drop_capture_on). */
    bool ddl_capture_on, index_drop_capture_on;
    /* The history store's ids of revisions it holds that another sink lacks. */
    KnownIds *known_ids;
    /* ---- across sessions ---- */
    int64_t last_status_us;
    int64_t last_record_us; /* last idle position recorded in the history store */
    int64_t last_stats_us;
    uint64_t changes_total;
    uint64_t prefetched_keys;
    /* strict mode's unverified actors (logged at most once a minute) */
    uint64_t unverified_actors;
    int64_t last_unverified_log_us;
    /* Data errors of the history store (on_data_error): revisions through
     * isolate_until are committed one per batch; the one committing at
     * quarantine_lsn is stored quarantined. */
    SessionDataErrors data_errors;
    char quarantine_sqlstate[6];
    char quarantine_error[512];
    /* metrics: the assembler's counts of the sessions before this one, the
     * source's WAL position and when the slot was last sampled */
    uint64_t lookups_before, cache_hits_before, prefetched_before;
    Lsn source_wal_lsn;
    int64_t last_slot_sample_us;
    /* keyframes held while the worker is behind the source (sample_lag) */
    int64_t last_lag_sample_us;
    bool keyframes_held;
    bool stopped_at_lsn; /* the session stops at --stop-lsn (not a signal) */
};

/* A read-ahead stops at this many messages or bytes (memory stays bounded with large rows). */
#define READ_AHEAD_MAX_MESSAGES 4096
#define READ_AHEAD_MAX_BYTES ((size_t)4 << 20)

/* ---- the assembler's output: to the fan-out, and what the backfill watches ---- */

static WrStatus out_relation(void *ctx, const RelationVersion *rv, WrError *err)
{
    Session *s = ctx;
    WrStatus st = fanout_relation(s->fanout, rv, err);
    if (st == WR_OK && s->backfill) backfill_on_relation(s->backfill, rv);
    return st;
}

static WrStatus out_begin(void *ctx, const Revision *rev, WrError *err)
{
    Session *s = ctx;
    return fanout_begin(s->fanout, rev, err);
}

static WrStatus out_context(void *ctx, const Revision *rev, const RevisionContext *c, WrError *err)
{
    Session *s = ctx;
    if (c->strict_checked && !c->verified && (c->actor_type || c->actor_id)) {
        /* Never fatal: recorded unverified, why in the revision's warnings. No
         * actor text here: it is whatever a client sent. */
        s->unverified_actors++;
        int64_t t = mono_now_us();
        if (s->last_unverified_log_us == 0 || t - s->last_unverified_log_us >= 60 * 1000000LL) {
            log_warn("msg=\"context actor not verified (strict mode): recorded unverified, the revision's warnings say "
                     "why\" revision=%lld xid=%u unverified_total=%llu",
                     (long long)rev->id, rev->xid, (unsigned long long)s->unverified_actors);
            s->last_unverified_log_us = t;
        }
    }
    return fanout_context(s->fanout, rev, c, err);
}

static WrStatus out_delta(void *ctx, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    Session *s = ctx;
    s->changes_total++;
    WrStatus st = fanout_delta(s->fanout, rev, d, err);
    if (st == WR_OK && s->backfill) backfill_on_delta(s->backfill, rev, d);
    return st;
}

/* A table's baseline progress, in the revision in flight (if any) of every sink that keeps it. */
static WrStatus out_backfill_progress(void *ctx, const BackfillProgress *bp, WrError *err)
{
    Session *s = ctx;
    return fanout_progress(s->fanout, bp, s->asm_ && assembler_in_revision(s->asm_), err);
}

static WrStatus out_commit(void *ctx, const Revision *rev, WrError *err)
{
    Session *s = ctx;
    WrStatus st = fanout_commit(s->fanout, rev, err);
    if (st != WR_OK) return st;
    int64_t lag_us = pg_now_us() - rev->commit_time;
    metrics_set(METRICS_LAG_US, lag_us > 0 ? lag_us : 0);
    metrics_set(METRICS_LAST_REVISION, rev->id);
    log_debug("msg=\"revision assembled\" revision=%lld xid=%u end_lsn=" LSN_FMT, (long long)rev->id, rev->xid,
              LSN_ARGS(rev->end_lsn));
    return WR_OK;
}

/* A relation version the history store holds, into the assembler (history_reader_load_relations). */
static void restore_relation(void *arg, const RelationVersion *rv, int16_t max_col_id)
{
    assembler_restore_relation(arg, rv, max_col_id);
}

/* The reader's gate: the fan-out skips the revision in flight for the history
 * sink (skip_current speaks of the revision in flight only; the backfill asks
 * between revisions). */
static bool history_skips_current(void *ctx)
{
    Session *s = ctx;
    return s->asm_ && assembler_in_revision(s->asm_) && fanout_skips_current(s->fanout, s->history_index);
}

/* A revision the history store holds and another sink lacks goes out under the store's id and checksum. */
static WrStatus out_known_revision(void *ctx, uint32_t xid, Lsn commit_lsn, int64_t *id,
                                   uint8_t parent[WALREV_CHECKSUM_LEN], uint8_t checksum[WALREV_CHECKSUM_LEN],
                                   bool *found, WrError *err)
{
    Session *s = ctx;
    *found = false;
    if (!s->history) return WR_OK;
    sink_history_lookup_as_of(s->history, 0);
    const SinkPosition *hp = fanout_position(s->fanout, s->history_index);
    if (!hp->known || commit_lsn >= hp->durable_end_lsn) return WR_OK; /* the same rule as fanout_begin's skip */
    if (!s->known_ids) s->known_ids = known_ids_create(s->cfg.history_conninfo, s->cfg.history_schema);
    WrStatus st = known_ids_find(s->known_ids, xid, commit_lsn, id, parent, checksum, found, err);
    if (st != WR_OK) return wr_error_prefix(err, "sink history");
    /* Its old values are those before it, not the store's newest (which include it and what followed). */
    if (*found) sink_history_lookup_as_of(s->history, *id - 1);
    return WR_OK;
}

/* The source catalog connection, made on first use. */
static WrStatus catalog_conn(Session *s, WrError *err)
{
    if (s->catalog) return WR_OK;
    PgioConnect how = {.what = "source catalog", .app_name = "walrev-catalog", .bounded = true};
    return pgio_connect(s->cfg.source_conninfo, &how, &s->catalog, err);
}

static WrStatus out_primary_key(void *ctx, uint32_t relid, uint16_t ncols, const char *const *names, bool *is_key,
                                bool *found, WrError *err)
{
    Session *s = ctx;
    *found = false;
    WrStatus cst = catalog_conn(s, err);
    if (cst != WR_OK) return cst;
    return baseline_primary_key(s->catalog, relid, ncols, names, is_key, found, err);
}

static WrStatus out_partitioned(void *ctx, uint32_t relid, bool *partitioned, WrError *err)
{
    Session *s = ctx;
    *partitioned = false;
    WrStatus cst = catalog_conn(s, err);
    if (cst != WR_OK) return cst;
    return baseline_is_partitioned(s->catalog, s->cfg.history_schema, relid, partitioned, err);
}

/* Values an ALTER COLUMN ... TYPE rewrote, cast by the source itself
 * (baseline_cast_values) on the catalog connection. */
static WrStatus out_convert_values(void *ctx, uint32_t from_oid, int32_t from_typmod, uint32_t to_oid,
                                   int32_t to_typmod, const char *timezone, size_t n, const Value *in, char **out,
                                   WrError *err)
{
    Session *s = ctx;
    WrStatus st = catalog_conn(s, err);
    if (st != WR_OK) return st;
    st = baseline_cast_values(s->catalog, from_oid, from_typmod, to_oid, to_typmod, timezone, n, in, out, err);
    /* a lost connection is made again at the next call */
    if (PQstatus(s->catalog) != CONNECTION_OK) {
        PQfinish(s->catalog);
        s->catalog = NULL;
    }
    return st;
}

/* Only the backfill emits messages under walrev's prefixes (watermarks, chunks). */
static bool out_own_message(void *ctx, const PgoLogicalMessage *m)
{
    Session *s = ctx;
    return (s->backfill && backfill_owns_message(s->backfill, m)) || reconciler_owns_message(s->cfg.reconciler, m);
}

static WrStatus out_ddl_captured(void *ctx, const char *info, size_t len, WrError *err)
{
    Session *s = ctx;
    untracked_report_captured(s->cfg.publication, s->cfg.history_schema, info, len);
    (void)err;
    if (s->backfill) backfill_on_ddl(s->backfill);
    return WR_OK;
}

/* ---- set-up and teardown ---- */

static WrStatus send_status(Session *s, bool reply, WrError *err);

static void tick(Session *s, int64_t t)
{
    if (s->cfg.hooks.tick) s->cfg.hooks.tick(s->cfg.hooks.arg, t);
}

bool session_while_sink_waits(void *session)
{
    Session *s = session;
    if (*s->cfg.stop_requested) return false;
    int64_t t = mono_now_us();
    if (s->stream && session_status_due(t, s->last_status_us, s->cfg.status_interval_ms)) {
        WrError e = {0};
        if (send_status(s, false, &e) != WR_OK)
            log_debug("msg=\"status update while waiting failed\" error=\"%s\"", e.msg);
        if (s->cfg.hooks.waiting) s->cfg.hooks.waiting(s->cfg.hooks.arg, s->pos.confirmed);
    }
    tick(s, t);
    return true;
}

/* The caller's sinks, with what earlier sessions learnt of the history store's data errors. */
static WrStatus open_sinks(Session *s, WrError *err)
{
    SessionSinks sinks = {.history_index = -1};
    WrStatus st = s->cfg.hooks.open_sinks(s->cfg.hooks.arg, s, &sinks, err);
    s->fanout = sinks.fanout;
    s->history = sinks.history;
    s->history_index = sinks.history_index;
    /* a new sink's keyframer holds nothing: the next sample decides */
    s->keyframes_held = s->stopped_at_lsn = false;
    s->last_lag_sample_us = 0;
    if (st != WR_OK || !s->history) return st;
    if (s->data_errors.isolate_until) sink_history_isolate(s->history, s->data_errors.isolate_until);
    if (s->data_errors.quarantine_lsn)
        sink_history_quarantine(s->history, s->data_errors.quarantine_lsn, s->quarantine_sqlstate,
                                s->quarantine_error);
    return WR_OK;
}

static void teardown(Session *s, bool abort_pending)
{
    if (s->asm_) { /* the process's counters go on from here */
        AssemblerStats as;
        assembler_stats(s->asm_, &as);
        s->lookups_before += as.lookups;
        s->cache_hits_before += as.cache_hits;
        s->prefetched_before += as.prefetched;
    }
    backfill_destroy(s->backfill);
    s->backfill = NULL;
    repl_stream_destroy(s->stream);
    s->stream = NULL;
    PQfinish(s->catalog);
    s->catalog = NULL;
    fanout_destroy(s->fanout, abort_pending);
    s->fanout = NULL;
    s->history = NULL;
    assembler_destroy(s->asm_);
    s->asm_ = NULL;
    readahead_destroy(s->ahead);
    s->ahead = NULL;
    known_ids_destroy(s->known_ids);
    s->known_ids = NULL;
}

Session *session_create(const SessionConfig *cfg)
{
    Session *s = xcalloc(1, sizeof(*s));
    s->cfg = *cfg;
    s->history_index = -1;
    return s;
}

/* session_run and session_create_slot tear down what they open: nothing of a session is left here. */
void session_destroy(Session *s)
{
    free(s);
}

/* ---- the durability rule, asked of the fan-out ---- */

static Lsn idle_end(const Session *s)
{
    return session_idle_end(&s->pos, assembler_last_end_lsn(s->asm_));
}

/* Past the last revision the slot is confirmed only as far as the history
 * store has recorded (record_idle_position): a slot found confirmed further
 * than the store's checkpoint was then moved by someone else (baseline/gap.h). */
static Lsn confirmable(const Session *s)
{
    Lsn recorded = s->history ? s->history->ops->durable_lsn(s->history) : 0;
    Lsn idle = session_idle_bound(idle_end(s), s->history != NULL, recorded);
    return fanout_confirmable(s->fanout, s->pos.confirmed, assembler_in_transaction(s->asm_), idle);
}

/*
 * Settled past the last revision (WAL of other databases or untracked
 * tables): record that position in the history store, so it may be
 * confirmed to the slot. Due every SESSION_RECORD_IDLE_US, or now (force, or the
 * --stop-lsn is reached).
 */
static WrStatus record_idle_position(Session *s, bool force, WrError *err)
{
    if (!s->history || assembler_in_transaction(s->asm_) || !fanout_settled(s->fanout, false)) return WR_OK;
    Lsn idle = idle_end(s);
    if (idle <= s->history->ops->durable_lsn(s->history)) return WR_OK;
    int64_t t = mono_now_us();
    if (!session_record_due(force, t, s->last_record_us, idle, s->cfg.stop_lsn)) return WR_OK;
    s->last_record_us = t;
    /* record_position runs between batches: close an open one (backfill progress) first, and one a
     * lookup opened that the fan-out does not know of (find_row applies queued row digests in a
     * batch of its own: test_late_baseline's keyless table died on it now and then). */
    WrStatus st = fanout_flush(s->fanout, FANOUT_FLUSH_ALL, t, err);
    if (st == WR_OK) st = s->history->ops->flush(s->history, true, err);
    if (st == WR_OK) st = s->history->ops->record_position(s->history, idle, err);
    return st == WR_OK ? WR_OK : wr_error_prefix(err, "sink history");
}

static WrStatus send_status(Session *s, bool reply, WrError *err)
{
    Lsn c = confirmable(s);
    if (session_confirm(&s->pos, c)) log_debug("msg=\"confirming\" flush_lsn=" LSN_FMT, LSN_ARGS(c));
    s->last_status_us = mono_now_us();
    Lsn confirmed = s->pos.confirmed;
    return repl_stream_send_status(s->stream, session_written(&s->pos), confirmed, confirmed, reply, err);
}

/* ---- one message ---- */

static WrStatus handle_copydata(Session *s, const uint8_t *buf, size_t len, WrError *err)
{
    PgoCopyData cd;
    WrStatus st = pgo_parse_copydata(buf, len, &cd, err);
    if (st != WR_OK) return st;
    if (cd.kind == PGO_COPY_KEEPALIVE) {
        if (session_note_keepalive(&s->pos, cd.wal_end, cd.reply_requested)) return send_status(s, false, err);
        return WR_OK;
    }
    if (cd.kind != PGO_COPY_XLOGDATA) return WR_OK;
    session_note_xlogdata(&s->pos, cd.wal_end);
    PgoMessage msg;
    st = pgo_parse_message(&s->parser, cd.payload, cd.payload_len, &msg, err);
    if (st != WR_OK) return wr_error_prefix(err, "at " LSN_FMT, LSN_ARGS(cd.wal_start));
    st = assembler_handle(s->asm_, &msg, err);
    if (st == WR_OK && s->backfill && msg.type == PGO_MSG_MESSAGE)
        st = backfill_on_message(s->backfill, &msg.u.message, err);
    if (st != WR_OK && st != WR_RETRY)
        wr_error_prefix(err, "%s at " LSN_FMT, pgo_message_type_name(msg.type), LSN_ARGS(cd.wal_start));
    return st;
}

/* A best-effort query on the catalog connection (the metrics, the keyframe
 * hold): a failure is logged at debug and gives NULL, never ends the
 * session; a lost connection is made again at the next call. */
static PGresult *catalog_sample(Session *s, const char *sql, int nparams, const char *const *params, const char *what)
{
    WrError e = {0};
    PGresult *r = NULL;
    WrStatus st = catalog_conn(s, &e);
    if (st == WR_OK) st = pgio_run(s->catalog, sql, nparams, params, &r, &e, what);
    if (st == WR_OK) return r;
    log_debug("msg=\"could not sample the source\" error=\"%s\"", e.msg);
    if (s->catalog && PQstatus(s->catalog) != CONNECTION_OK) {
        PQfinish(s->catalog);
        s->catalog = NULL;
    }
    return NULL;
}

/* Every 10 s at most, only with [metrics] on: one query on the catalog connection. */
#define SLOT_SAMPLE_US (10 * 1000000LL)

/*
 * The slot's retained WAL for the metrics: the source's current WAL position
 * minus the slot's restart_lsn (what `walrev status` shows). Best effort: a
 * failure leaves the gauge as it was (logged at debug) and never ends the
 * session; a lost connection is made again at the next sample.
 */
static void sample_slot(Session *s, int64_t t)
{
    if (!s->cfg.sample_slot || (s->last_slot_sample_us && t - s->last_slot_sample_us < SLOT_SAMPLE_US)) return;
    s->last_slot_sample_us = t;
    const char *params[1] = {s->cfg.slot_name};
    PGresult *r = catalog_sample(s,
                                 "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, "
                                 "pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name = $1",
                                 1, params, "source catalog: sampling the slot");
    if (r && PQntuples(r) == 1) {
        Lsn wal;
        if (!PQgetisnull(r, 0, 0)) metrics_set(METRICS_RETAINED_WAL, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
        if (lsn_parse(PQgetvalue(r, 0, 1), &wal) && wal > s->source_wal_lsn) s->source_wal_lsn = wal;
    }
    PQclear(r);
}

#define LAG_SAMPLE_US 1000000LL

/*
 * With a history store, once a second: how far the worker is behind the
 * source — the source's WAL position, read on the catalog connection, past
 * the furthest the stream has reached (what it received, what a keepalive
 * said, the last revision's end) — and the keyframes held while that is over
 * SESSION_BEHIND_BYTES (keyframer.h: a keyframe is as much work as the
 * changes it follows, and it competed with the catch-up for the cores).
 * Best effort: a failed sample releases the hold.
 */
static void sample_lag(Session *s, int64_t t)
{
    if (!s->history || (s->last_lag_sample_us && t - s->last_lag_sample_us < LAG_SAMPLE_US)) return;
    s->last_lag_sample_us = t;
    PGresult *r =
        catalog_sample(s, "SELECT pg_current_wal_lsn()::text", 0, NULL, "source catalog: reading the WAL position");
    Lsn wal = 0;
    bool behind = r && PQntuples(r) == 1 && lsn_parse(PQgetvalue(r, 0, 0), &wal) &&
                  session_behind(&s->pos, assembler_last_end_lsn(s->asm_), wal);
    PQclear(r);
    if (wal > s->source_wal_lsn) s->source_wal_lsn = wal;
    if (behind != s->keyframes_held) {
        log_debug("msg=\"%s\" source_lsn=" LSN_FMT, behind ? "behind the source: keyframes wait" : "keyframes taken",
                  LSN_ARGS(wal));
        s->keyframes_held = behind;
        sink_history_hold_keyframes(s->history, behind);
    }
}

/* The gauges the loop owns, and the assembler's counts, into the metrics;
 * sample: the slot's retained WAL too, when due (not after a failure: the
 * source may be what failed). */
static void publish_metrics(Session *s, int64_t t, bool sample)
{
    if (sample) sample_slot(s, t);
    int64_t lag_bytes = session_lag_bytes(&s->pos, s->source_wal_lsn);
    metrics_set(METRICS_LAG_BYTES, lag_bytes);
    /* caught up: no lag in time either (the last revision's delay is history once nothing is pending) */
    if (lag_bytes == 0) metrics_set(METRICS_LAG_US, 0);
    metrics_set(METRICS_CONFIRMED_LSN, (int64_t)s->pos.confirmed);
    fanout_publish_metrics(s->fanout);
    AssemblerStats as;
    assembler_stats(s->asm_, &as);
    metrics_set_counter(METRICS_ROW_LOOKUPS, s->lookups_before + as.lookups);
    metrics_set_counter(METRICS_ROW_CACHE_HITS, s->cache_hits_before + as.cache_hits);
    metrics_set_counter(METRICS_ROW_PREFETCHED, s->prefetched_before + as.prefetched);
}

static void report_status(Session *s, int64_t t)
{
    publish_metrics(s, t, true);
    AssemblerStats as;
    assembler_stats(s->asm_, &as);
    if (s->cfg.hooks.progress)
        s->cfg.hooks.progress(s->cfg.hooks.arg, assembler_last_revision_id(s->asm_), s->pos.confirmed);
    if (t - s->last_stats_us >= 10 * 1000000LL) {
        status_record_positions(s->cfg.status_target); /* each sink's, for walrev status */
        log_info("msg=\"progress\" revision=%lld changes=%llu confirmed=" LSN_FMT
                 " cache_hits=%llu lookups=%llu prefetched=%llu cache_bytes=%zu",
                 (long long)assembler_last_revision_id(s->asm_), (unsigned long long)s->changes_total,
                 LSN_ARGS(s->pos.confirmed), (unsigned long long)as.cache_hits, (unsigned long long)as.lookups,
                 (unsigned long long)as.prefetched, as.cache_bytes);
        s->last_stats_us = t;
    }
}

/* Idle: make what was received durable (a sink holding its batch once its
 * window has passed), then wait on the stream until a held batch falls due
 * (a message that comes first ends the wait). */
static WrStatus receive_when_idle(Session *s, const uint8_t **buf, size_t *len, WrError *err)
{
    WrStatus st = WR_OK;
    if (!assembler_in_transaction(s->asm_)) st = fanout_flush(s->fanout, FANOUT_FLUSH_IDLE, mono_now_us(), err);
    if (st == WR_OK) st = fanout_poll(s->fanout, err);
    if (st != WR_OK) return st;
    return repl_stream_receive(s->stream, fanout_idle_wait_ms(s->fanout, mono_now_us(), 50), buf, len, err);
}

/* What the socket holds already, for the read-ahead (never waits). */
static WrStatus receive_now(void *arg, const uint8_t **buf, size_t *len, WrError *err)
{
    Session *s = arg;
    return repl_stream_receive(s->stream, 0, buf, len, err);
}

/*
 * The next message to handle: the read-ahead queue's, else the socket's. A
 * message from the socket brings everything else the socket already holds
 * into the queue (up to the limits), and the old images those messages need
 * are fetched in one statement per table before any is handled. A failure
 * while reading ahead waits until the messages before it are handled.
 */
static WrStatus next_message(Session *s, const uint8_t **buf, size_t *len, WrError *err)
{
    WrStatus st;
    if (readahead_take(s->ahead, buf, len, &st, err)) return st;
    st = repl_stream_receive(s->stream, 0, buf, len, err);
    if (st == WR_AGAIN) st = receive_when_idle(s, buf, len, err);
    if (st != WR_OK || !s->history) return st;
    /* Behind the store (giving another sink what it lacks) old images are
     * read as of each revision (out_known_revision), never ahead. */
    const SinkPosition *hp = fanout_position(s->fanout, s->history_index);
    if (hp->known && assembler_last_end_lsn(s->asm_) < hp->durable_end_lsn) return st;

    readahead_push(s->ahead, *buf, *len);
    readahead_drain(s->ahead, receive_now, s, READ_AHEAD_MAX_MESSAGES, READ_AHEAD_MAX_BYTES);
    if (readahead_count(s->ahead) > 1) {
        size_t fetched = 0;
        int64_t t0 = mono_now_us();
        st = prefetch_old_images(s->ahead, &s->parser, s->asm_, &fetched, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink history: reading old images ahead");
        s->prefetched_keys += fetched;
        if (fetched)
            log_debug("msg=\"old images read ahead\" messages=%zu keys=%zu ms=%.1f", readahead_count(s->ahead), fetched,
                      (double)(mono_now_us() - t0) / 1000.0);
    }
    readahead_pop(s->ahead, buf, len);
    return WR_OK;
}

/* ---- one session: open, stream step by step, stop cleanly ---- */

/*
 * A history store with a checkpoint and a slot that does not continue it
 * (gone, invalidated, advanced by someone else): record the gap revision,
 * which makes the slot anew; the stream then starts at its consistent point.
 */
static WrStatus check_gap(Session *s, SinkPosition *start, WrError *err)
{
    if (!s->history) return WR_OK;
    const SinkPosition *hp = fanout_position(s->fanout, s->history_index);
    if (!hp->known || hp->durable_end_lsn == 0) return WR_OK;
    GapCheck g;
    WrStatus st = gap_check(s->cfg.source_conninfo, s->cfg.slot_name, hp->durable_end_lsn, &g, err);
    if (st != WR_OK || !g.found) return st;
    Lsn cp = 0;
    st = gap_record(s->cfg.baseline, s->cfg.slot_name, s->asm_, s->fanout, &g, &cp, err);
    if (st != WR_OK) return st;
    start->durable_end_lsn = cp;
    start->last_revision_id = assembler_last_revision_id(s->asm_);
    return WR_OK;
}

/*
 * The key walrev.context() signs with (docs/history-store.md#who-acted).
 * Without it (a store set up before, or a role that cannot read it) contexts
 * are recorded unverified, never refused.
 */
static WrStatus load_attest_key(Session *s, WrError *err)
{
    WrStatus st = setup_read_context_key(s->cfg.source_conninfo, s->cfg.history_schema, s->attest_pads,
                                         &s->has_attest_key, err);
    if (st == WR_OK && !s->has_attest_key)
        log_warn("msg=\"no context attestation key readable on the source: contexts are recorded unverified (run "
                 "walrev setup)\" table=%s.context_key",
                 s->cfg.history_schema);
    return st;
}

/* Sinks opened, the assembler placed where the least advanced sink stands,
 * known relation versions restored, the backfill ready: *start says where. */
static WrStatus open_session(Session *s, SinkPosition *start, WrError *err)
{
    const SessionConfig *cfg = &s->cfg;
    WrStatus st = open_sinks(s, err);
    if (st == WR_OK) st = fanout_open(s->fanout, start, err);
    if (st == WR_OK) st = load_attest_key(s, err);
    if (st == WR_OK) st = catalog_conn(s, err);
    if (st == WR_OK && cfg->baseline) st = baseline_check_leave_note(s->catalog, cfg->baseline, true, err);
    if (st == WR_OK)
        st = setup_read_ddl_capture_on(cfg->source_conninfo, &s->ddl_capture_on, &s->index_drop_capture_on, err);
    if (st != WR_OK) return st;
    /* The history store's digest key, so digests mean the same after a restart. */
    DigestKey dkey;
    const SinkPosition *hpos = s->history_index >= 0 ? fanout_position(s->fanout, s->history_index) : NULL;
    bool have_key = hpos && hpos->has_digest_key;
    if (have_key) memcpy(dkey.key, hpos->digest_key, sizeof(dkey.key));
    /* Kafka alone keeps no position: ids from commit LSNs, never 1 again after a restart. */
    AssemblerConfig acfg = {.rules = cfg->tracking,
                            .row_cache_bytes = cfg->row_cache_bytes,
                            .digest_key = have_key ? &dkey : NULL,
                            .ids_from_commit_lsn = !fanout_has_position(s->fanout),
                            .control_schema = cfg->history_schema,
                            .ddl_capture_on = s->ddl_capture_on,
                            .index_drop_capture_on = s->index_drop_capture_on};
    if (s->has_attest_key) {
        acfg.attest_ipad = s->attest_pads;
        acfg.attest_opad = s->attest_pads + 64;
    }
    acfg.strict = cfg->strict;
    if (acfg.strict)
        log_info("msg=\"strict mode: every context's actor is recorded verified or not\" app_keys=%d role_bindings=%d",
                 acfg.strict->nkeys, acfg.strict->nroles);
    /* The assembler reads the history itself, on the history sink's connection
     * (without a history sink, through a reader that knows nothing). */
    HistoryReader *reader = history_reader_of(s->history);
    if (reader) history_reader_set_gate(reader, history_skips_current, s);
    HistoryLookup history = history_reader_lookup(reader);
    acfg.history = &history;
    AssemblerOutput out = {.ctx = s,
                           .relation = out_relation,
                           .begin = out_begin,
                           .context = out_context,
                           .delta = out_delta,
                           .commit = out_commit,
                           .primary_key = out_primary_key,
                           .convert_values = out_convert_values,
                           .own_message = out_own_message,
                           .ddl_captured = out_ddl_captured,
                           .partitioned = out_partitioned,
                           .known_revision = out_known_revision};
    s->asm_ = assembler_create(&acfg, &out);
    assembler_set_position(s->asm_, start->last_revision_id, start->last_checksum, start->durable_end_lsn);
    s->ahead = readahead_create();
    /* Versions the history store already holds, so re-sent Relation messages are not new versions. */
    if (cfg->history_enabled) {
        st = history_reader_load_relations(cfg->history_conninfo, cfg->history_schema, restore_relation, s->asm_, err);
        if (st != WR_OK) return st;
    }
    st = check_gap(s, start, err);
    if (st != WR_OK) return st;
    untracked_report_source(cfg->source_conninfo, cfg->publication, cfg->history_schema);
    /* Backfill state and progress live in the history store: without it, no backfill. */
    if (s->history) {
        BackfillOutput bout = {s, out_backfill_progress};
        s->backfill = backfill_create(s->cfg.baseline, s->asm_, &bout);
    }
    return WR_OK;
}

static WrStatus start_streaming(Session *s, const SinkPosition *start, WrError *err)
{
    const SessionConfig *cfg = &s->cfg;
    ReplSystemInfo sys;
    WrStatus st = repl_stream_connect(cfg->source_conninfo, &s->stream, err);
    if (st == WR_OK) st = repl_stream_identify(s->stream, &sys, err);
    if (st == WR_OK)
        st = repl_stream_start(s->stream, cfg->slot_name, start->durable_end_lsn, 1, cfg->publication, NULL, err);
    if (st != WR_OK) return wr_error_prefix(err, "source");
    session_positions_start(&s->pos, start->durable_end_lsn);
    log_info("msg=\"streaming\" slot=%s start_lsn=" LSN_FMT " last_revision=%lld server_lsn=" LSN_FMT, cfg->slot_name,
             LSN_ARGS(start->durable_end_lsn), (long long)start->last_revision_id, LSN_ARGS(sys.xlogpos));
    if (cfg->hooks.ready) cfg->hooks.ready(cfg->hooks.arg);
    fanout_publish_metrics(s->fanout); /* the positions status_record takes */
    status_record(cfg->status_target, "streaming", NULL);
    metrics_set(METRICS_STREAMING, 1);
    s->streaming_since_us = mono_now_us();
    pgo_parser_init(&s->parser, 1, false);
    return WR_OK;
}

/* The next message, if one came, handled and handed on. */
static WrStatus receive_and_handle(Session *s, WrError *err)
{
    const uint8_t *buf;
    size_t len;
    WrStatus st = next_message(s, &buf, &len, err);
    if (st == WR_OK) {
        st = handle_copydata(s, buf, len, err);
        if (st == WR_OK) st = fanout_flush(s->fanout, FANOUT_FLUSH_WANTING, mono_now_us(), err);
        return st;
    }
    if (st == WR_DONE) {
        log_info("msg=\"server ended the stream\"");
        return wr_error_set(err, WR_RETRY, "server ended replication");
    }
    return st == WR_AGAIN ? WR_OK : wr_error_prefix(err, "source");
}

/* Status to the server, progress and the watchdog, each on its own timer. */
static WrStatus serve_timers(Session *s, WrError *err)
{
    int64_t t = mono_now_us();
    if (session_status_due(t, s->last_status_us, s->cfg.status_interval_ms)) {
        WrStatus st = fanout_poll(s->fanout, err);
        if (st == WR_OK) st = record_idle_position(s, false, err);
        if (st == WR_OK) st = send_status(s, false, err);
        if (st != WR_OK) return st;
        report_status(s, t);
    }
    sample_lag(s, t);
    tick(s, t);
    return WR_OK;
}

/* --stop-lsn: between transactions, once everything up to it may be confirmed. */
static WrStatus check_stop_lsn(Session *s, bool *stopped, WrError *err)
{
    Lsn stop_lsn = s->cfg.stop_lsn;
    if (!stop_lsn || assembler_in_transaction(s->asm_)) return WR_OK;
    WrStatus st = record_idle_position(s, false, err);
    if (st != WR_OK || confirmable(s) < stop_lsn) return st;
    st = send_status(s, false, err);
    if (st != WR_OK) return st;
    log_info("msg=\"stop position reached\" stop_lsn=" LSN_FMT " confirmed=" LSN_FMT, LSN_ARGS(stop_lsn),
             LSN_ARGS(s->pos.confirmed));
    *stopped = true;
    s->stopped_at_lsn = true;
    return WR_OK;
}

/* One turn of the loop. *stopped: a signal or --stop-lsn ends the session cleanly. */
static WrStatus step(Session *s, bool *stopped, WrError *err)
{
    if (*s->cfg.stop_requested) {
        *stopped = true;
        return WR_OK;
    }
    WrStatus st = receive_and_handle(s, err);
    /* Chunks are read only between transactions: a delta handled before
     * the read could otherwise not be checked against its snapshot. */
    if (st == WR_OK && s->backfill && !assembler_in_transaction(s->asm_)) st = backfill_step(s->backfill, err);
    if (st == WR_OK) st = serve_timers(s, err);
    if (st == WR_OK) st = check_stop_lsn(s, stopped, err);
    return st;
}

/* Clean stop: the revision in flight is abandoned (the server resends it);
 * everything complete is made durable and confirmed. */
static WrStatus stop_session(Session *s, WrError *err)
{
    WrStatus st = WR_OK;
    if (s->cfg.hooks.stopping) s->cfg.hooks.stopping(s->cfg.hooks.arg);
    if (assembler_in_transaction(s->asm_)) {
        log_info("msg=\"abandoning revision in flight; it will be resent\"");
        fanout_abort(s->fanout);
        assembler_abandon(s->asm_);
        /* abort dropped the open batch too: nothing more is durable than before. */
    } else {
        st = fanout_flush(s->fanout, FANOUT_FLUSH_ALL, mono_now_us(), err);
        /* Wait a while for asynchronous sinks (Kafka) to confirm delivery; what
         * is not confirmed is simply not confirmed to the slot and resent later. */
        bool reached;
        if (st == WR_OK) st = fanout_wait_durable(s->fanout, fanout_emitted_end(s->fanout), 30000, &reached, err);
        if (st == WR_OK) st = record_idle_position(s, true, err);
    }
    if (st == WR_OK) st = send_status(s, false, err);
    if (st != WR_OK) return st;
    /* Confirmed past the last revision while settled: the stores may say
     * they are complete through it. */
    if (s->pos.confirmed > fanout_emitted_end(s->fanout) && fanout_settled(s->fanout, assembler_in_transaction(s->asm_))) {
        st = fanout_record_position(s->fanout, s->pos.confirmed, err);
        if (st != WR_OK) return st;
    }
    st = repl_stream_finish(s->stream, err);
    if (st != WR_OK) log_warn("msg=\"could not end replication cleanly\" error=\"%s\"", err->msg);
    /* Caught up to where it was asked to stop: the keyframes held while it
     * was behind are taken now, so the store it leaves answers as-of
     * queries within the bound (a signal's stop leaves them to a later run). */
    if (s->stopped_at_lsn && s->history) {
        log_info("msg=\"taking the keyframes due before stopping\"");
        sink_history_wait_keyframes(s->history);
    }
    AssemblerStats as;
    assembler_stats(s->asm_, &as);
    log_info("msg=\"stopped\" confirmed=" LSN_FMT " last_revision=%lld changes=%llu cache_hits=%llu lookups=%llu"
             " prefetched=%llu prefetch_asked=%llu renumbered=%llu rechecksummed=%llu not_reassembled=%llu",
             LSN_ARGS(s->pos.confirmed), (long long)assembler_last_revision_id(s->asm_),
             (unsigned long long)s->changes_total, (unsigned long long)as.cache_hits, (unsigned long long)as.lookups,
             (unsigned long long)as.prefetched, (unsigned long long)s->prefetched_keys,
             (unsigned long long)as.renumbered, (unsigned long long)as.rechecksummed,
             (unsigned long long)as.known_not_assembled);
    return WR_OK;
}

/* One session: open sinks, stream until stop, error or end. */
static WrStatus run_session(Session *s, bool *stopped, WrError *err)
{
    SinkPosition start;
    WrStatus st = open_session(s, &start, err);
    if (st == WR_OK) st = start_streaming(s, &start, err);
    while (st == WR_OK && !*stopped) st = step(s, stopped, err);
    if (st != WR_OK) return st;
    return stop_session(s, err);
}

/* ---- slot creation ---- */

static WrStatus create_slot_session(Session *s, bool baseline, bool *created, WrError *err)
{
    const SessionConfig *cfg = &s->cfg;
    *created = false;
    WrStatus st = open_sinks(s, err);
    if (st != WR_OK) return st;
    SinkPosition start, hist = {0};
    st = fanout_open(s->fanout, &start, err);
    if (st != WR_OK) return st;
    if (s->history_index >= 0) hist = *fanout_position(s->fanout, s->history_index);
    bool has_history = s->history_index >= 0 && hist.known && hist.durable_end_lsn > 0;
    DigestKey dkey;
    memcpy(dkey.key, hist.digest_key, sizeof(dkey.key));
    AssemblerConfig acfg = {.rules = cfg->tracking,
                            .row_cache_bytes = cfg->row_cache_bytes,
                            .digest_key = hist.has_digest_key ? &dkey : NULL,
                            .ids_from_commit_lsn = !fanout_has_position(s->fanout),
                            .control_schema = cfg->history_schema};
    AssemblerOutput out = {.ctx = s,
                           .relation = out_relation,
                           .begin = out_begin,
                           .context = out_context,
                           .delta = out_delta,
                           .commit = out_commit};
    /* A gap revision compares with the history: old images and relation versions. */
    HistoryLookup history = {0};
    if (has_history) {
        history = history_reader_lookup(history_reader_of(s->history));
        history.prefetch = NULL;
        history.find_row = NULL;
        history.note_suppressed = NULL;
        history.scan_rows = NULL;
        acfg.history = &history;
        out.primary_key = out_primary_key;
    }
    s->asm_ = assembler_create(&acfg, &out);
    uint8_t zero[WALREV_CHECKSUM_LEN] = {0};
    assembler_set_position(s->asm_, hist.last_revision_id, hist.known ? hist.last_checksum : zero, 0);
    if (has_history && baseline) {
        /* The history goes on: a slot that does not continue it (dropped,
         * lost, advanced) gets a gap revision, never a second baseline. */
        st = history_reader_load_relations(cfg->history_conninfo, cfg->history_schema, restore_relation, s->asm_, err);
        SinkPosition at = start;
        if (st == WR_OK) st = check_gap(s, &at, err);
        if (st != WR_OK) return st;
        if (at.durable_end_lsn != start.durable_end_lsn) {
            *created = true;
            return WR_OK;
        }
    }

    for (int attempt = 0; attempt < 2; attempt++) {
        st = repl_stream_connect(cfg->source_conninfo, &s->stream, err);
        if (st != WR_OK) return wr_error_prefix(err, "source");
        Lsn cp = 0;
        char snapshot[128] = "";
        bool exists = false;
        st =
            repl_stream_create_slot(s->stream, cfg->slot_name, baseline, &cp, snapshot, sizeof(snapshot), &exists, err);
        if (st != WR_OK) return wr_error_prefix(err, "source");
        if (!exists) {
            *created = true;
            log_info("msg=\"slot created\" slot=%s consistent_point=" LSN_FMT, cfg->slot_name, LSN_ARGS(cp));
            /* The snapshot lives while this connection stays idle: copy now. */
            if (!baseline) return WR_OK;
            st = baseline_take(s->cfg.baseline, s->asm_, s->fanout, snapshot, cp, err);
            /* The baseline's batch made each large table's first keyframe due
             * (docs/history-store.md#old-images-tracked_table-and-keyframes): wait
             * for them, so a snapshot right after setup starts from a keyframe
             * instead of folding every baseline row. */
            if (st == WR_OK && s->history) {
                int64_t t0 = mono_now_us();
                sink_history_wait_keyframes(s->history);
                log_info("msg=\"baseline keyframes taken\" ms=%.0f", (double)(mono_now_us() - t0) / 1000.0);
            }
            return st;
        }
        if (!baseline || has_history || s->history_index < 0 || attempt > 0) {
            log_info("msg=\"slot exists\" slot=%s", cfg->slot_name);
            return WR_OK;
        }
        log_warn("msg=\"the slot exists but the history store holds no baseline: a previous baseline was "
                 "interrupted; dropping the slot and taking it again\" slot=%s",
                 cfg->slot_name);
        repl_stream_destroy(s->stream);
        s->stream = NULL;
        st = baseline_drop_slot(cfg->source_conninfo, cfg->slot_name, err);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}


/*
 * A session the history store ended with a data error (docs/history-store.md#quarantine)
 * is not the end (session_data_error decides): the first time, the revisions
 * of the failed batch are committed again one per batch; a revision that then
 * fails alone has failed twice and the next session stores it quarantined.
 * Returns the status the session ends with: WR_RETRY for those two, else st
 * unchanged (a failure to store the quarantined form itself stays fatal).
 */
static WrStatus on_data_error(Session *s, WrStatus st, WrError *err)
{
    HistoryFailure f;
    if (st == WR_OK || st == WR_RETRY || !s->history || !sink_history_failure(s->history, &f)) return st;
    switch (session_data_error(&s->data_errors, &f)) {
    case SESSION_DATA_FATAL:
        return st;
    case SESSION_DATA_QUARANTINE:
        snprintf(s->quarantine_sqlstate, sizeof(s->quarantine_sqlstate), "%s", f.sqlstate);
        snprintf(s->quarantine_error, sizeof(s->quarantine_error), "%s", f.error);
        log_error("msg=\"revision failed twice on a data error; the next session stores it quarantined\" revision=%lld "
                  "xid=%u commit_lsn=" LSN_FMT " sqlstate=%s error=\"%s\"",
                  (long long)f.last_id, f.last_xid, LSN_ARGS(f.last_commit_lsn), f.sqlstate, f.error);
        break;
    case SESSION_DATA_ISOLATE:
        log_warn("msg=\"data error in the history store; committing revisions %lld to %lld one by one to find it\" "
                 "through_lsn=" LSN_FMT " sqlstate=%s error=\"%s\"",
                 (long long)f.first_id, (long long)f.last_id, LSN_ARGS(s->data_errors.isolate_until), f.sqlstate,
                 f.error);
        break;
    }
    err->status = WR_RETRY;
    return WR_RETRY;
}

WrStatus session_run(Session *s, SessionEnd *end, WrError *err)
{
    end->stopped = false;
    s->streaming_since_us = 0;
    WrStatus st = run_session(s, &end->stopped, err);
    st = on_data_error(s, st, err);
    end->streamed_us = s->streaming_since_us ? mono_now_us() - s->streaming_since_us : 0;
    if (s->asm_ && s->fanout && s->stream) publish_metrics(s, mono_now_us(), false); /* the session's last figures */
    teardown(s, st != WR_OK);
    metrics_set(METRICS_STREAMING, 0);
    if (st != WR_OK) metrics_count_error(st);
    return st;
}

WrStatus session_create_slot(Session *s, bool baseline, bool *created, WrError *err)
{
    WrStatus st = create_slot_session(s, baseline, created, err);
    teardown(s, st != WR_OK);
    return st;
}
