/*
 * pipeline.c — `walrev run`, wired: receive CopyData, decode, assemble, hand
 * each revision to the fan-out (sink/fanout.h), which says what may be
 * confirmed; flush sinks when they ask or when the stream goes idle. Any
 * retriable failure tears everything down and starts again from the sinks'
 * own checkpoints, so recovery has one code path. The durability rule and
 * the baselines live in their own modules; this file only wires them.
 */
#include "worker/pipeline.h"

#include "baseline/baseline.h"
#include "baseline/gap.h"
#include "baseline/reconciler.h"
#include "common/log.h"
#include "common/metrics.h"
#include "decoder/assembler.h"
#include "decoder/pgoutput.h"
#include "decoder/stream.h"
#include "readahead/readahead.h"
#include "replay/replay.h"
#include "pgio/pgio.h"
#include "schema/checksum.h"
#include "sink/fanout.h"
#include "sink/kafka_sink.h"
#include "sink/history_reader.h"
#include "sink/sink.h"
#include "sink/known_ids.h"
#include "worker/notify.h"
#include "schema/store_sql.h"
#include "setup/setup.h"
#include "worker/retry.h"
#include "status/status.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t pipeline_stop_requested = 0;

typedef struct {
    const Config *cfg;
    BaselineConfig baseline_cfg; /* the part of cfg the baselines read */
    StatusTarget status_target;  /* the part of cfg the worker's state row names */
    Fanout *fanout;
    Sink *history;     /* the history store's sink, owned by fanout; NULL when off */
    int history_index; /* its index in fanout, -1 when off */
    PGconn *catalog;   /* normal connection to the source for catalog questions; lazily opened */
    Assembler *asm_;
    Backfill *backfill; /* tables added to the publication later; NULL without a history store */
    ReplStream *stream;
    PgoParser parser;
    Lsn received; /* highest WAL position received */
    Lsn server_wal_end;
    Lsn confirmed; /* last flush LSN sent */
    int64_t last_status_us;
    int64_t last_record_us; /* last idle position recorded in the history store */
    int64_t last_watchdog_us;
    int64_t streaming_since_us; /* when this session began streaming; 0 before */
    int64_t last_stats_us;
    uint64_t changes_total;
    /* Messages read ahead (old images are fetched for them in batches); it
     * keeps what ended the read until they are handled. */
    ReadAhead *ahead;
    uint64_t prefetched_keys;
    /* The context attestation key's pads (ipad || opad) read from the source
     * at the session's start; has_attest_key false: contexts unverified. */
    uint8_t attest_pads[128];
    bool has_attest_key;
    /* The source's DDL capture event trigger is enabled (read at the
     * session's start; AssemblerConfig.ddl_capture_on), and reports the DROP
     * INDEX of a replica identity index (AssemblerConfig.index_drop_capture_on). */
    bool ddl_capture_on, index_drop_capture_on;
    /* Strict mode's policy ([actors]), borrowed from the configuration, and
     * the actors it left unverified (logged at most once a minute). */
    ContextStrict strict;
    uint64_t unverified_actors;
    int64_t last_unverified_log_us;
    /* The history store's ids of revisions it holds that another sink lacks. */
    KnownIds *known_ids;
    /* Data errors of the history store, across sessions (on_data_error):
     * revisions through isolate_until are committed one per batch; the one
     * committing at quarantine_lsn is stored quarantined. */
    Lsn isolate_until;
    Lsn quarantine_lsn;
    char quarantine_sqlstate[6];
    char quarantine_error[512];
    int data_failures; /* since the last revision was named for quarantine */
    /* metrics: the assembler's counts of the sessions before this one, the
     * source's WAL position and when the slot was last sampled */
    uint64_t lookups_before, cache_hits_before, prefetched_before;
    Lsn source_wal_lsn;
    int64_t last_slot_sample_us;
    /* [worker] reconcile_interval: the thread comparing the history with the tables; NULL when off. */
    Reconciler *reconciler;
    Retainer *retainer; /* [history] retain */
} Pipeline;

/* A read-ahead stops at this many messages or bytes (memory stays bounded with large rows). */
#define READ_AHEAD_MAX_MESSAGES 4096
#define READ_AHEAD_MAX_BYTES ((size_t)4 << 20)

/* ---- the assembler's output: to the fan-out, and what the backfill watches ---- */

static WrStatus out_relation(void *ctx, const RelationVersion *rv, WrError *err)
{
    Pipeline *p = ctx;
    WrStatus st = fanout_relation(p->fanout, rv, err);
    if (st == WR_OK && p->backfill) backfill_on_relation(p->backfill, rv);
    return st;
}

static WrStatus out_begin(void *ctx, const Revision *rev, WrError *err)
{
    Pipeline *p = ctx;
    return fanout_begin(p->fanout, rev, err);
}

static WrStatus out_context(void *ctx, const Revision *rev, const RevisionContext *c, WrError *err)
{
    Pipeline *p = ctx;
    if (c->strict_checked && !c->verified && (c->actor_type || c->actor_id)) {
        /* Never fatal: recorded unverified, why in the revision's warnings. No
         * actor text here: it is whatever a client sent. */
        p->unverified_actors++;
        int64_t t = mono_now_us();
        if (p->last_unverified_log_us == 0 || t - p->last_unverified_log_us >= 60 * 1000000LL) {
            log_warn("msg=\"context actor not verified (strict mode): recorded unverified, the revision's warnings say "
                     "why\" revision=%lld xid=%u unverified_total=%llu",
                     (long long)rev->id, rev->xid, (unsigned long long)p->unverified_actors);
            p->last_unverified_log_us = t;
        }
    }
    return fanout_context(p->fanout, rev, c, err);
}

static WrStatus out_delta(void *ctx, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    Pipeline *p = ctx;
    p->changes_total++;
    WrStatus st = fanout_delta(p->fanout, rev, d, err);
    if (st == WR_OK && p->backfill) backfill_on_delta(p->backfill, rev, d);
    return st;
}

/* A table's baseline progress, in the revision in flight (if any) of every sink that keeps it. */
static WrStatus out_backfill_progress(void *ctx, const BackfillProgress *bp, WrError *err)
{
    Pipeline *p = ctx;
    return fanout_progress(p->fanout, bp, p->asm_ && assembler_in_revision(p->asm_), err);
}

static WrStatus out_commit(void *ctx, const Revision *rev, WrError *err)
{
    Pipeline *p = ctx;
    WrStatus st = fanout_commit(p->fanout, rev, err);
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
    Pipeline *p = ctx;
    return p->asm_ && assembler_in_revision(p->asm_) && fanout_skips_current(p->fanout, p->history_index);
}

/* A revision the history store holds and another sink lacks goes out under the store's id and checksum. */
static WrStatus out_known_revision(void *ctx, uint32_t xid, Lsn commit_lsn, int64_t *id,
                                   uint8_t parent[WALREV_CHECKSUM_LEN], uint8_t checksum[WALREV_CHECKSUM_LEN],
                                   bool *found, WrError *err)
{
    Pipeline *p = ctx;
    *found = false;
    if (!p->history) return WR_OK;
    sink_history_lookup_as_of(p->history, 0);
    const SinkPosition *hp = fanout_position(p->fanout, p->history_index);
    if (!hp->known || commit_lsn >= hp->durable_end_lsn) return WR_OK; /* the same rule as fanout_begin's skip */
    if (!p->known_ids) p->known_ids = known_ids_create(p->cfg->history_conninfo, p->cfg->history_schema);
    WrStatus st = known_ids_find(p->known_ids, xid, commit_lsn, id, parent, checksum, found, err);
    if (st != WR_OK) return wr_error_prefix(err, "sink history");
    /* Its old values are those before it, not the store's newest (which include it and what followed). */
    if (*found) sink_history_lookup_as_of(p->history, *id - 1);
    return WR_OK;
}

/* The source catalog connection, made on first use. */
static WrStatus catalog_conn(Pipeline *p, WrError *err)
{
    if (p->catalog) return WR_OK;
    PgioConnect how = {.what = "source catalog", .app_name = "walrev-catalog", .bounded = true};
    return pgio_connect(p->cfg->source_conninfo, &how, &p->catalog, err);
}

static WrStatus out_primary_key(void *ctx, uint32_t relid, uint16_t ncols, const char *const *names, bool *is_key,
                                bool *found, WrError *err)
{
    Pipeline *p = ctx;
    *found = false;
    WrStatus cst = catalog_conn(p, err);
    if (cst != WR_OK) return cst;
    return baseline_primary_key(p->catalog, relid, ncols, names, is_key, found, err);
}

/* Values an ALTER COLUMN ... TYPE rewrote, cast by the source itself
 * (baseline_cast_values) on the catalog connection. */
static WrStatus out_convert_values(void *ctx, uint32_t from_oid, int32_t from_typmod, uint32_t to_oid,
                                   int32_t to_typmod, const char *timezone, size_t n, const Value *in, char **out,
                                   WrError *err)
{
    Pipeline *p = ctx;
    WrStatus st = catalog_conn(p, err);
    if (st != WR_OK) return st;
    st = baseline_cast_values(p->catalog, from_oid, from_typmod, to_oid, to_typmod, timezone, n, in, out, err);
    /* a lost connection is made again at the next call */
    if (PQstatus(p->catalog) != CONNECTION_OK) {
        PQfinish(p->catalog);
        p->catalog = NULL;
    }
    return st;
}

/* Only the backfill emits messages under walrev's prefixes (watermarks, chunks). */
static bool out_own_message(void *ctx, const PgoLogicalMessage *m)
{
    Pipeline *p = ctx;
    return (p->backfill && backfill_owns_message(p->backfill, m)) || reconciler_owns_message(p->reconciler, m);
}

static WrStatus out_ddl_captured(void *ctx, const char *info, size_t len, WrError *err)
{
    Pipeline *p = ctx;
    untracked_report_captured(p->cfg->publication, p->cfg->history_schema, info, len);
    (void)err;
    if (p->backfill) backfill_on_ddl(p->backfill);
    return WR_OK;
}

/* ---- set-up and teardown ---- */

static WrStatus send_status(Pipeline *p, bool reply, WrError *err);

/*
 * While a sink waits for brokers (its local queue full), the loop cannot
 * read: keep the walsender from timing out with status updates, keep
 * systemd's watchdog fed, and give up the wait when a stop is asked for.
 */
static bool while_sink_waits(void *arg)
{
    Pipeline *p = arg;
    if (pipeline_stop_requested) return false;
    int64_t t = mono_now_us();
    int status_ms = p->cfg->status_interval_ms > 0 ? p->cfg->status_interval_ms : 1000;
    if (p->stream && t - p->last_status_us >= (int64_t)status_ms * 1000) {
        WrError e = {0};
        if (send_status(p, false, &e) != WR_OK)
            log_debug("msg=\"status update while waiting failed\" error=\"%s\"", e.msg);
        notify_status("waiting for Kafka: local queue full, brokers slow or down; confirmed %X/%X",
                      LSN_ARGS(p->confirmed));
    }
    uint64_t watchdog_us = notify_watchdog_interval_us();
    if (watchdog_us && (uint64_t)(t - p->last_watchdog_us) >= watchdog_us / 2) {
        notify_watchdog();
        p->last_watchdog_us = t;
    }
    return true;
}

static WrStatus create_sinks(Pipeline *p, WrError *err)
{
    const Config *cfg = p->cfg;
    p->fanout = fanout_create();
    p->history_index = -1;
    if (cfg->history_enabled) {
        HistorySinkConfig h = {
            .conninfo = cfg->history_conninfo,
            .schema = cfg->history_schema,
            .slot_name = cfg->slot_name,
            .batch_max_revisions = cfg->batch_max_revisions,
            .batch_max_ms = cfg->batch_max_ms,
            .keyframe_factor = cfg->keyframe_factor,
            .synchronous_commit = cfg->history_synchronous_commit,
        };
        p->history = sink_history_create(&h);
        p->history_index = fanout_add(p->fanout, "history", p->history);
        if (p->isolate_until) sink_history_isolate(p->history, p->isolate_until);
        if (p->quarantine_lsn)
            sink_history_quarantine(p->history, p->quarantine_lsn, p->quarantine_sqlstate, p->quarantine_error);
    }
    if (cfg->file_path) {
        FileSinkConfig f = {.path = cfg->file_path, .fsync = strcmp(cfg->file_path, "-") != 0};
        fanout_add(p->fanout, "file", sink_file_create(&f));
    }
    if (cfg->kafka_enabled) {
        KafkaSinkConfig k;
        memset(&k, 0, sizeof(k));
        k.topic_prefix = cfg->kafka_topic_prefix;
        k.erase_schema = cfg->kafka_erase_tombstones ? cfg->history_schema : NULL;
        k.nprops = cfg->nkafka_props;
        KafkaProp *props = xcalloc((size_t)cfg->nkafka_props + 1, sizeof(KafkaProp));
        for (int i = 0; i < cfg->nkafka_props; i++) {
            props[i].name = cfg->kafka_props[i].name;
            props[i].value = cfg->kafka_props[i].value;
        }
        k.props = props;
        k.while_waiting = while_sink_waits;
        k.while_waiting_arg = p;
        Sink *ks = sink_kafka_create(&k, err);
        free(props);
        if (!ks) return err->status;
        fanout_add(p->fanout, "kafka", ks);
    }
    if (fanout_count(p->fanout) == 0)
        return wr_error_set(err, WR_INVALID, "no sink configured: enable [history], [file] or [kafka]");
    return WR_OK;
}

static void teardown(Pipeline *p, bool abort_pending)
{
    if (p->asm_) { /* the process's counters go on from here */
        AssemblerStats as;
        assembler_stats(p->asm_, &as);
        p->lookups_before += as.lookups;
        p->cache_hits_before += as.cache_hits;
        p->prefetched_before += as.prefetched;
    }
    backfill_destroy(p->backfill);
    p->backfill = NULL;
    repl_stream_destroy(p->stream);
    p->stream = NULL;
    PQfinish(p->catalog);
    p->catalog = NULL;
    fanout_destroy(p->fanout, abort_pending);
    p->fanout = NULL;
    p->history = NULL;
    assembler_destroy(p->asm_);
    p->asm_ = NULL;
    readahead_destroy(p->ahead);
    p->ahead = NULL;
    known_ids_destroy(p->known_ids);
    p->known_ids = NULL;
}

void pipeline_baseline_config(const Config *cfg, BaselineConfig *out)
{
    *out = (BaselineConfig){
        .source_conninfo = cfg->source_conninfo,
        .history_conninfo = cfg->history_conninfo,
        .history_schema = cfg->history_schema,
        .publication = cfg->publication,
        .tracking = cfg->tracking,
        .backfill_chunk_rows = cfg->backfill_chunk_rows,
    };
}

void pipeline_status_target(const Config *cfg, StatusTarget *out)
{
    *out = (StatusTarget){
        .source_conninfo = cfg->source_conninfo,
        .slot_name = cfg->slot_name,
        .history_enabled = cfg->history_enabled,
        .history_conninfo = cfg->history_conninfo,
        .history_schema = cfg->history_schema,
    };
}

static void pipeline_init(Pipeline *p, const Config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    pipeline_baseline_config(cfg, &p->baseline_cfg);
    pipeline_status_target(cfg, &p->status_target);
}

/* ---- the durability rule, asked of the fan-out ---- */

static Lsn idle_end(const Pipeline *p)
{
    Lsn idle = assembler_last_end_lsn(p->asm_);
    return p->server_wal_end > idle ? p->server_wal_end : idle;
}

/* Past the last revision the slot is confirmed only as far as the history
 * store has recorded (record_idle_position): a slot found confirmed further
 * than the store's checkpoint was then moved by someone else (baseline/gap.h). */
static Lsn confirmable(const Pipeline *p)
{
    Lsn idle = idle_end(p);
    if (p->history) {
        Lsn recorded = p->history->ops->durable_lsn(p->history);
        if (idle > recorded) idle = recorded;
    }
    return fanout_confirmable(p->fanout, p->confirmed, assembler_in_transaction(p->asm_), idle);
}

/* Every 5 s at most: one small write while the database is quiet or busy
 * elsewhere, and that much WAL kept longer. */
#define RECORD_IDLE_US (5 * 1000000LL)

/*
 * Settled past the last revision (WAL of other databases or untracked
 * tables): record that position in the history store, so it may be
 * confirmed to the slot. Due every RECORD_IDLE_US, or now (force, or the
 * --stop-lsn is reached).
 */
static WrStatus record_idle_position(Pipeline *p, bool force, WrError *err)
{
    if (!p->history || assembler_in_transaction(p->asm_) || !fanout_settled(p->fanout, false)) return WR_OK;
    Lsn idle = idle_end(p);
    if (idle <= p->history->ops->durable_lsn(p->history)) return WR_OK;
    int64_t t = mono_now_us();
    bool due = force || t - p->last_record_us >= RECORD_IDLE_US || (p->cfg->stop_lsn && idle >= p->cfg->stop_lsn);
    if (!due) return WR_OK;
    p->last_record_us = t;
    /* record_position runs between batches: close an open one (backfill progress) first, and one a
     * lookup opened that the fan-out does not know of (find_row applies queued row digests in a
     * batch of its own: test_late_baseline's keyless table died on it now and then). */
    WrStatus st = fanout_flush(p->fanout, FANOUT_FLUSH_ALL, t, err);
    if (st == WR_OK) st = p->history->ops->flush(p->history, err);
    if (st == WR_OK) st = p->history->ops->record_position(p->history, idle, err);
    return st == WR_OK ? WR_OK : wr_error_prefix(err, "sink history");
}

static WrStatus send_status(Pipeline *p, bool reply, WrError *err)
{
    Lsn c = confirmable(p);
    if (c > p->confirmed) {
        log_debug("msg=\"confirming\" flush_lsn=" LSN_FMT, LSN_ARGS(c));
        p->confirmed = c;
    }
    p->last_status_us = mono_now_us();
    Lsn written = p->received > p->confirmed ? p->received : p->confirmed;
    return repl_stream_send_status(p->stream, written, p->confirmed, p->confirmed, reply, err);
}

/* ---- one message ---- */

static WrStatus handle_copydata(Pipeline *p, const uint8_t *buf, size_t len, WrError *err)
{
    PgoCopyData cd;
    WrStatus st = pgo_parse_copydata(buf, len, &cd, err);
    if (st != WR_OK) return st;
    if (cd.kind == PGO_COPY_KEEPALIVE) {
        if (cd.wal_end > p->server_wal_end) p->server_wal_end = cd.wal_end;
        if (cd.reply_requested) return send_status(p, false, err);
        return WR_OK;
    }
    if (cd.kind != PGO_COPY_XLOGDATA) return WR_OK;
    if (cd.wal_end > p->received) p->received = cd.wal_end;
    PgoMessage msg;
    st = pgo_parse_message(&p->parser, cd.payload, cd.payload_len, &msg, err);
    if (st != WR_OK) return wr_error_prefix(err, "at " LSN_FMT, LSN_ARGS(cd.wal_start));
    st = assembler_handle(p->asm_, &msg, err);
    if (st == WR_OK && p->backfill && msg.type == PGO_MSG_MESSAGE)
        st = backfill_on_message(p->backfill, &msg.u.message, err);
    if (st != WR_OK && st != WR_RETRY)
        wr_error_prefix(err, "%s at " LSN_FMT, pgo_message_type_name(msg.type), LSN_ARGS(cd.wal_start));
    return st;
}

/* Every 10 s at most, only with [metrics] on: one query on the catalog connection. */
#define SLOT_SAMPLE_US (10 * 1000000LL)

/*
 * The slot's retained WAL for the metrics: the source's current WAL position
 * minus the slot's restart_lsn (what `walrev status` shows). Best effort: a
 * failure leaves the gauge as it was (logged at debug) and never ends the
 * session; a lost connection is made again at the next sample.
 */
static void sample_slot(Pipeline *p, int64_t t)
{
    if (!p->cfg->metrics_listen || (p->last_slot_sample_us && t - p->last_slot_sample_us < SLOT_SAMPLE_US)) return;
    p->last_slot_sample_us = t;
    WrError e = {0};
    PGresult *r = NULL;
    const char *params[1] = {p->cfg->slot_name};
    WrStatus st = catalog_conn(p, &e);
    if (st == WR_OK)
        st = pgio_run(p->catalog,
                      "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, pg_current_wal_lsn()::text "
                      "FROM pg_replication_slots WHERE slot_name = $1",
                      1, params, &r, &e, "source catalog: sampling the slot");
    if (st == WR_OK && PQntuples(r) == 1) {
        Lsn wal;
        if (!PQgetisnull(r, 0, 0)) metrics_set(METRICS_RETAINED_WAL, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
        if (lsn_parse(PQgetvalue(r, 0, 1), &wal) && wal > p->source_wal_lsn) p->source_wal_lsn = wal;
    } else if (st != WR_OK) {
        log_debug("msg=\"could not sample the slot for the metrics\" error=\"%s\"", e.msg);
        if (p->catalog && PQstatus(p->catalog) != CONNECTION_OK) {
            PQfinish(p->catalog);
            p->catalog = NULL;
        }
    }
    PQclear(r);
}

/* The gauges the loop owns, and the assembler's counts, into the metrics;
 * sample: the slot's retained WAL too, when due (not after a failure: the
 * source may be what failed). */
static void publish_metrics(Pipeline *p, int64_t t, bool sample)
{
    if (sample) sample_slot(p, t);
    Lsn wal_end = p->server_wal_end;
    if (p->received > wal_end) wal_end = p->received;
    if (p->source_wal_lsn > wal_end) wal_end = p->source_wal_lsn;
    metrics_set(METRICS_LAG_BYTES, wal_end > p->confirmed ? (int64_t)(wal_end - p->confirmed) : 0);
    /* caught up: no lag in time either (the last revision's delay is history once nothing is pending) */
    if (wal_end <= p->confirmed) metrics_set(METRICS_LAG_US, 0);
    metrics_set(METRICS_CONFIRMED_LSN, (int64_t)p->confirmed);
    fanout_publish_metrics(p->fanout);
    AssemblerStats as;
    assembler_stats(p->asm_, &as);
    metrics_set_counter(METRICS_ROW_LOOKUPS, p->lookups_before + as.lookups);
    metrics_set_counter(METRICS_ROW_CACHE_HITS, p->cache_hits_before + as.cache_hits);
    metrics_set_counter(METRICS_ROW_PREFETCHED, p->prefetched_before + as.prefetched);
}

static void report_status(Pipeline *p, int64_t t)
{
    publish_metrics(p, t, true);
    AssemblerStats as;
    assembler_stats(p->asm_, &as);
    notify_status("revision %lld, confirmed %X/%X", (long long)assembler_last_revision_id(p->asm_),
                  LSN_ARGS(p->confirmed));
    if (t - p->last_stats_us >= 10 * 1000000LL) {
        status_record_positions(&p->status_target); /* each sink's, for walrev status */
        log_info("msg=\"progress\" revision=%lld changes=%llu confirmed=" LSN_FMT
                 " cache_hits=%llu lookups=%llu prefetched=%llu cache_bytes=%zu",
                 (long long)assembler_last_revision_id(p->asm_), (unsigned long long)p->changes_total,
                 LSN_ARGS(p->confirmed), (unsigned long long)as.cache_hits, (unsigned long long)as.lookups,
                 (unsigned long long)as.prefetched, as.cache_bytes);
        p->last_stats_us = t;
    }
}

/* Idle: make what was received durable (a sink holding its batch once its
 * window has passed), then wait; briefly while a batch is held. */
static WrStatus receive_when_idle(Pipeline *p, const uint8_t **buf, size_t *len, WrError *err)
{
    WrStatus st = WR_OK;
    if (!assembler_in_transaction(p->asm_)) st = fanout_flush(p->fanout, FANOUT_FLUSH_IDLE, mono_now_us(), err);
    if (st == WR_OK) st = fanout_poll(p->fanout, err);
    if (st != WR_OK) return st;
    return repl_stream_receive(p->stream, fanout_holds_batch(p->fanout) ? 2 : 50, buf, len, err);
}

/* What the socket holds already, for the read-ahead (never waits). */
static WrStatus receive_now(void *arg, const uint8_t **buf, size_t *len, WrError *err)
{
    Pipeline *p = arg;
    return repl_stream_receive(p->stream, 0, buf, len, err);
}

/*
 * The next message to handle: the read-ahead queue's, else the socket's. A
 * message from the socket brings everything else the socket already holds
 * into the queue (up to the limits), and the old images those messages need
 * are fetched in one statement per table before any is handled. A failure
 * while reading ahead waits until the messages before it are handled.
 */
static WrStatus next_message(Pipeline *p, const uint8_t **buf, size_t *len, WrError *err)
{
    WrStatus st;
    if (readahead_take(p->ahead, buf, len, &st, err)) return st;
    st = repl_stream_receive(p->stream, 0, buf, len, err);
    if (st == WR_AGAIN) st = receive_when_idle(p, buf, len, err);
    if (st != WR_OK || !p->history) return st;
    /* Behind the store (giving another sink what it lacks) old images are
     * read as of each revision (out_known_revision), never ahead. */
    const SinkPosition *hp = fanout_position(p->fanout, p->history_index);
    if (hp->known && assembler_last_end_lsn(p->asm_) < hp->durable_end_lsn) return st;

    readahead_push(p->ahead, *buf, *len);
    readahead_drain(p->ahead, receive_now, p, READ_AHEAD_MAX_MESSAGES, READ_AHEAD_MAX_BYTES);
    if (readahead_count(p->ahead) > 1) {
        size_t fetched = 0;
        int64_t t0 = mono_now_us();
        st = prefetch_old_images(p->ahead, &p->parser, p->asm_, &fetched, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink history: reading old images ahead");
        p->prefetched_keys += fetched;
        if (fetched)
            log_debug("msg=\"old images read ahead\" messages=%zu keys=%zu ms=%.1f", readahead_count(p->ahead), fetched,
                      (double)(mono_now_us() - t0) / 1000.0);
    }
    readahead_pop(p->ahead, buf, len);
    return WR_OK;
}

/* ---- one session: open, stream step by step, stop cleanly ---- */

/*
 * A history store with a checkpoint and a slot that does not continue it
 * (gone, invalidated, advanced by someone else): record the gap revision,
 * which makes the slot anew; the stream then starts at its consistent point.
 */
static WrStatus check_gap(Pipeline *p, SinkPosition *start, WrError *err)
{
    if (!p->history) return WR_OK;
    const SinkPosition *hp = fanout_position(p->fanout, p->history_index);
    if (!hp->known || hp->durable_end_lsn == 0) return WR_OK;
    GapCheck g;
    WrStatus st = gap_check(p->cfg->source_conninfo, p->cfg->slot_name, hp->durable_end_lsn, &g, err);
    if (st != WR_OK || !g.found) return st;
    Lsn cp = 0;
    st = gap_record(&p->baseline_cfg, p->cfg->slot_name, p->asm_, p->fanout, &g, &cp, err);
    if (st != WR_OK) return st;
    start->durable_end_lsn = cp;
    start->last_revision_id = assembler_last_revision_id(p->asm_);
    return WR_OK;
}

/*
 * The key walrev.context() signs with (docs/history-store.md#who-acted).
 * Without it (a store set up before, or a role that cannot read it) contexts
 * are recorded unverified, never refused.
 */
static WrStatus load_attest_key(Pipeline *p, WrError *err)
{
    WrStatus st = setup_read_context_key(p->cfg->source_conninfo, p->cfg->history_schema, p->attest_pads,
                                         &p->has_attest_key, err);
    if (st == WR_OK && !p->has_attest_key)
        log_warn("msg=\"no context attestation key readable on the source: contexts are recorded unverified (run "
                 "walrev setup)\" table=%s.context_key",
                 p->cfg->history_schema);
    return st;
}

/* Sinks opened, the assembler placed where the least advanced sink stands,
 * known relation versions restored, the backfill ready: *start says where. */
static WrStatus open_session(Pipeline *p, SinkPosition *start, WrError *err)
{
    const Config *cfg = p->cfg;
    WrStatus st = create_sinks(p, err);
    if (st == WR_OK) st = fanout_open(p->fanout, start, err);
    if (st == WR_OK) st = load_attest_key(p, err);
    if (st == WR_OK)
        st = setup_read_ddl_capture_on(cfg->source_conninfo, &p->ddl_capture_on, &p->index_drop_capture_on, err);
    if (st != WR_OK) return st;
    /* The history store's digest key, so digests mean the same after a restart. */
    DigestKey dkey;
    const SinkPosition *hpos = p->history_index >= 0 ? fanout_position(p->fanout, p->history_index) : NULL;
    bool have_key = hpos && hpos->has_digest_key;
    if (have_key) memcpy(dkey.key, hpos->digest_key, sizeof(dkey.key));
    /* Kafka alone keeps no position: ids from commit LSNs, never 1 again after a restart. */
    AssemblerConfig acfg = {.rules = cfg->tracking,
                            .row_cache_bytes = cfg->row_cache_bytes,
                            .digest_key = have_key ? &dkey : NULL,
                            .ids_from_commit_lsn = !fanout_has_position(p->fanout),
                            .control_schema = cfg->history_schema,
                            .ddl_capture_on = p->ddl_capture_on,
                            .index_drop_capture_on = p->index_drop_capture_on};
    if (p->has_attest_key) {
        acfg.attest_ipad = p->attest_pads;
        acfg.attest_opad = p->attest_pads + 64;
    }
    acfg.strict = config_strict(cfg, &p->strict);
    if (acfg.strict)
        log_info("msg=\"strict mode: every context's actor is recorded verified or not\" app_keys=%d role_bindings=%d",
                 acfg.strict->nkeys, acfg.strict->nroles);
    /* The assembler reads the history itself, on the history sink's connection
     * (without a history sink, through a reader that knows nothing). */
    HistoryReader *reader = history_reader_of(p->history);
    if (reader) history_reader_set_gate(reader, history_skips_current, p);
    HistoryLookup history = history_reader_lookup(reader);
    acfg.history = &history;
    AssemblerOutput out = {.ctx = p,
                           .relation = out_relation,
                           .begin = out_begin,
                           .context = out_context,
                           .delta = out_delta,
                           .commit = out_commit,
                           .primary_key = out_primary_key,
                           .convert_values = out_convert_values,
                           .own_message = out_own_message,
                           .ddl_captured = out_ddl_captured,
                           .known_revision = out_known_revision};
    p->asm_ = assembler_create(&acfg, &out);
    assembler_set_position(p->asm_, start->last_revision_id, start->last_checksum, start->durable_end_lsn);
    p->ahead = readahead_create();
    /* Versions the history store already holds, so re-sent Relation messages are not new versions. */
    if (cfg->history_enabled) {
        st = history_reader_load_relations(cfg->history_conninfo, cfg->history_schema, restore_relation, p->asm_, err);
        if (st != WR_OK) return st;
    }
    st = check_gap(p, start, err);
    if (st != WR_OK) return st;
    untracked_report_source(cfg->source_conninfo, cfg->history_schema);
    /* Backfill state and progress live in the history store: without it, no backfill. */
    if (p->history) {
        BackfillOutput bout = {p, out_backfill_progress};
        p->backfill = backfill_create(&p->baseline_cfg, p->asm_, &bout);
    }
    return WR_OK;
}

static WrStatus start_streaming(Pipeline *p, const SinkPosition *start, WrError *err)
{
    const Config *cfg = p->cfg;
    ReplSystemInfo sys;
    WrStatus st = repl_stream_connect(cfg->source_conninfo, &p->stream, err);
    if (st == WR_OK) st = repl_stream_identify(p->stream, &sys, err);
    if (st == WR_OK)
        st = repl_stream_start(p->stream, cfg->slot_name, start->durable_end_lsn, 1, cfg->publication, NULL, err);
    if (st != WR_OK) return wr_error_prefix(err, "source");
    p->confirmed = start->durable_end_lsn;
    p->received = start->durable_end_lsn;
    p->server_wal_end = 0;
    log_info("msg=\"streaming\" slot=%s start_lsn=" LSN_FMT " last_revision=%lld server_lsn=" LSN_FMT, cfg->slot_name,
             LSN_ARGS(start->durable_end_lsn), (long long)start->last_revision_id, LSN_ARGS(sys.xlogpos));
    notify_ready();
    fanout_publish_metrics(p->fanout); /* the positions status_record takes */
    status_record(&p->status_target, "streaming", NULL);
    metrics_set(METRICS_STREAMING, 1);
    p->streaming_since_us = mono_now_us();
    pgo_parser_init(&p->parser, 1, false);
    return WR_OK;
}

/* The next message, if one came, handled and handed on. */
static WrStatus receive_and_handle(Pipeline *p, WrError *err)
{
    const uint8_t *buf;
    size_t len;
    WrStatus st = next_message(p, &buf, &len, err);
    if (st == WR_OK) {
        st = handle_copydata(p, buf, len, err);
        if (st == WR_OK) st = fanout_flush(p->fanout, FANOUT_FLUSH_WANTING, mono_now_us(), err);
        return st;
    }
    if (st == WR_DONE) {
        log_info("msg=\"server ended the stream\"");
        return wr_error_set(err, WR_RETRY, "server ended replication");
    }
    return st == WR_AGAIN ? WR_OK : wr_error_prefix(err, "source");
}

/* Status to the server, progress and the watchdog, each on its own timer. */
static WrStatus serve_timers(Pipeline *p, WrError *err)
{
    int64_t t = mono_now_us();
    int status_ms = p->cfg->status_interval_ms > 0 ? p->cfg->status_interval_ms : 1000;
    if (t - p->last_status_us >= (int64_t)status_ms * 1000) {
        WrStatus st = fanout_poll(p->fanout, err);
        if (st == WR_OK) st = record_idle_position(p, false, err);
        if (st == WR_OK) st = send_status(p, false, err);
        if (st != WR_OK) return st;
        report_status(p, t);
    }
    uint64_t watchdog_us = notify_watchdog_interval_us();
    if (watchdog_us && (uint64_t)(t - p->last_watchdog_us) >= watchdog_us / 2) {
        notify_watchdog();
        p->last_watchdog_us = t;
    }
    return WR_OK;
}

/* --stop-lsn: between transactions, once everything up to it may be confirmed. */
static WrStatus check_stop_lsn(Pipeline *p, bool *stopped, WrError *err)
{
    Lsn stop_lsn = p->cfg->stop_lsn;
    if (!stop_lsn || assembler_in_transaction(p->asm_)) return WR_OK;
    WrStatus st = record_idle_position(p, false, err);
    if (st != WR_OK || confirmable(p) < stop_lsn) return st;
    st = send_status(p, false, err);
    if (st != WR_OK) return st;
    log_info("msg=\"stop position reached\" stop_lsn=" LSN_FMT " confirmed=" LSN_FMT, LSN_ARGS(stop_lsn),
             LSN_ARGS(p->confirmed));
    *stopped = true;
    return WR_OK;
}

/* One turn of the loop. *stopped: a signal or --stop-lsn ends the session cleanly. */
static WrStatus step(Pipeline *p, bool *stopped, WrError *err)
{
    if (pipeline_stop_requested) {
        *stopped = true;
        return WR_OK;
    }
    WrStatus st = receive_and_handle(p, err);
    /* Chunks are read only between transactions: a delta handled before
     * the read could otherwise not be checked against its snapshot. */
    if (st == WR_OK && p->backfill && !assembler_in_transaction(p->asm_)) st = backfill_step(p->backfill, err);
    if (st == WR_OK) st = serve_timers(p, err);
    if (st == WR_OK) st = check_stop_lsn(p, stopped, err);
    return st;
}

/* Clean stop: the revision in flight is abandoned (the server resends it);
 * everything complete is made durable and confirmed. */
static WrStatus stop_session(Pipeline *p, WrError *err)
{
    WrStatus st = WR_OK;
    notify_stopping();
    if (assembler_in_transaction(p->asm_)) {
        log_info("msg=\"abandoning revision in flight; it will be resent\"");
        fanout_abort(p->fanout);
        assembler_abandon(p->asm_);
        /* abort dropped the open batch too: nothing more is durable than before. */
    } else {
        st = fanout_flush(p->fanout, FANOUT_FLUSH_ALL, mono_now_us(), err);
        /* Wait a while for asynchronous sinks (Kafka) to confirm delivery; what
         * is not confirmed is simply not confirmed to the slot and resent later. */
        bool reached;
        if (st == WR_OK) st = fanout_wait_durable(p->fanout, fanout_emitted_end(p->fanout), 30000, &reached, err);
        if (st == WR_OK) st = record_idle_position(p, true, err);
    }
    if (st == WR_OK) st = send_status(p, false, err);
    if (st != WR_OK) return st;
    /* Confirmed past the last revision while settled: the stores may say
     * they are complete through it. */
    if (p->confirmed > fanout_emitted_end(p->fanout) && fanout_settled(p->fanout, assembler_in_transaction(p->asm_))) {
        st = fanout_record_position(p->fanout, p->confirmed, err);
        if (st != WR_OK) return st;
    }
    st = repl_stream_finish(p->stream, err);
    if (st != WR_OK) log_warn("msg=\"could not end replication cleanly\" error=\"%s\"", err->msg);
    AssemblerStats as;
    assembler_stats(p->asm_, &as);
    log_info("msg=\"stopped\" confirmed=" LSN_FMT " last_revision=%lld changes=%llu cache_hits=%llu lookups=%llu"
             " prefetched=%llu prefetch_asked=%llu renumbered=%llu rechecksummed=%llu not_reassembled=%llu",
             LSN_ARGS(p->confirmed), (long long)assembler_last_revision_id(p->asm_),
             (unsigned long long)p->changes_total, (unsigned long long)as.cache_hits, (unsigned long long)as.lookups,
             (unsigned long long)as.prefetched, (unsigned long long)p->prefetched_keys,
             (unsigned long long)as.renumbered, (unsigned long long)as.rechecksummed,
             (unsigned long long)as.known_not_assembled);
    return WR_OK;
}

/* One session: open sinks, stream until stop, error or end. */
static WrStatus run_session(Pipeline *p, bool *stopped, WrError *err)
{
    SinkPosition start;
    WrStatus st = open_session(p, &start, err);
    if (st == WR_OK) st = start_streaming(p, &start, err);
    while (st == WR_OK && !*stopped) st = step(p, stopped, err);
    if (st != WR_OK) return st;
    return stop_session(p, err);
}

/* ---- slot creation ---- */

static WrStatus create_slot_session(Pipeline *p, bool baseline, bool *created, WrError *err)
{
    const Config *cfg = p->cfg;
    *created = false;
    WrStatus st = create_sinks(p, err);
    if (st != WR_OK) return st;
    SinkPosition start, hist = {0};
    st = fanout_open(p->fanout, &start, err);
    if (st != WR_OK) return st;
    if (p->history_index >= 0) hist = *fanout_position(p->fanout, p->history_index);
    bool has_history = p->history_index >= 0 && hist.known && hist.durable_end_lsn > 0;
    DigestKey dkey;
    memcpy(dkey.key, hist.digest_key, sizeof(dkey.key));
    AssemblerConfig acfg = {.rules = cfg->tracking,
                            .row_cache_bytes = cfg->row_cache_bytes,
                            .digest_key = hist.has_digest_key ? &dkey : NULL,
                            .ids_from_commit_lsn = !fanout_has_position(p->fanout),
                            .control_schema = cfg->history_schema};
    AssemblerOutput out = {.ctx = p,
                           .relation = out_relation,
                           .begin = out_begin,
                           .context = out_context,
                           .delta = out_delta,
                           .commit = out_commit};
    /* A gap revision compares with the history: old images and relation versions. */
    HistoryLookup history = {0};
    if (has_history) {
        history = history_reader_lookup(history_reader_of(p->history));
        history.prefetch = NULL;
        history.find_row = NULL;
        history.note_suppressed = NULL;
        history.scan_rows = NULL;
        acfg.history = &history;
        out.primary_key = out_primary_key;
    }
    p->asm_ = assembler_create(&acfg, &out);
    uint8_t zero[WALREV_CHECKSUM_LEN] = {0};
    assembler_set_position(p->asm_, hist.last_revision_id, hist.known ? hist.last_checksum : zero, 0);
    if (has_history && baseline) {
        /* The history goes on: a slot that does not continue it (dropped,
         * lost, advanced) gets a gap revision, never a second baseline. */
        st = history_reader_load_relations(cfg->history_conninfo, cfg->history_schema, restore_relation, p->asm_, err);
        SinkPosition at = start;
        if (st == WR_OK) st = check_gap(p, &at, err);
        if (st != WR_OK) return st;
        if (at.durable_end_lsn != start.durable_end_lsn) {
            *created = true;
            return WR_OK;
        }
    }

    for (int attempt = 0; attempt < 2; attempt++) {
        st = repl_stream_connect(cfg->source_conninfo, &p->stream, err);
        if (st != WR_OK) return wr_error_prefix(err, "source");
        Lsn cp = 0;
        char snapshot[128] = "";
        bool exists = false;
        st =
            repl_stream_create_slot(p->stream, cfg->slot_name, baseline, &cp, snapshot, sizeof(snapshot), &exists, err);
        if (st != WR_OK) return wr_error_prefix(err, "source");
        if (!exists) {
            *created = true;
            log_info("msg=\"slot created\" slot=%s consistent_point=" LSN_FMT, cfg->slot_name, LSN_ARGS(cp));
            /* The snapshot lives while this connection stays idle: copy now. */
            if (!baseline) return WR_OK;
            st = baseline_take(&p->baseline_cfg, p->asm_, p->fanout, snapshot, cp, err);
            /* The baseline's batch made each large table's first keyframe due
             * (docs/history-store.md#old-images-tracked_table-and-keyframes): wait
             * for them, so a snapshot right after setup starts from a keyframe
             * instead of folding every baseline row. */
            if (st == WR_OK && p->history) {
                int64_t t0 = mono_now_us();
                sink_history_wait_keyframes(p->history);
                log_info("msg=\"baseline keyframes taken\" ms=%.0f", (double)(mono_now_us() - t0) / 1000.0);
            }
            return st;
        }
        if (!baseline || has_history || p->history_index < 0 || attempt > 0) {
            log_info("msg=\"slot exists\" slot=%s", cfg->slot_name);
            return WR_OK;
        }
        log_warn("msg=\"the slot exists but the history store holds no baseline: a previous baseline was "
                 "interrupted; dropping the slot and taking it again\" slot=%s",
                 cfg->slot_name);
        repl_stream_destroy(p->stream);
        p->stream = NULL;
        st = baseline_drop_slot(cfg->source_conninfo, cfg->slot_name, err);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}

int pipeline_create_slot(const Config *cfg, bool baseline, bool *created)
{
    Pipeline p;
    pipeline_init(&p, cfg);
    WrError err = {0};
    WrStatus st = create_slot_session(&p, baseline, created, &err);
    teardown(&p, st != WR_OK);
    if (st != WR_OK) {
        log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(st));
        return 1;
    }
    return 0;
}

/* Data errors in a row, none of them naming a revision, before the worker gives up. */
#define DATA_FAILURES_MAX 4

/*
 * A session the history store ended with a data error (docs/history-store.md#quarantine)
 * is not the end: the first time, the revisions of the failed batch are
 * committed again one per batch; a revision that then fails alone has failed
 * twice and the next session stores it quarantined. Returns the status the
 * session ends with: WR_RETRY for those two, else st unchanged (a failure to
 * store the quarantined form itself stays fatal).
 */
static WrStatus on_data_error(Pipeline *p, WrStatus st, WrError *err)
{
    HistoryFailure f;
    if (st == WR_OK || st == WR_RETRY || !p->history || !sink_history_failure(p->history, &f)) return st;
    if (f.first_id > f.last_id || ++p->data_failures > DATA_FAILURES_MAX) return st;
    if (f.first_id == f.last_id && f.last_commit_lsn <= p->isolate_until) {
        if (p->quarantine_lsn == f.last_commit_lsn) return st; /* its quarantined form failed too */
        p->quarantine_lsn = f.last_commit_lsn;
        snprintf(p->quarantine_sqlstate, sizeof(p->quarantine_sqlstate), "%s", f.sqlstate);
        snprintf(p->quarantine_error, sizeof(p->quarantine_error), "%s", f.error);
        p->data_failures = 0;
        log_error("msg=\"revision failed twice on a data error; the next session stores it quarantined\" revision=%lld "
                  "xid=%u commit_lsn=" LSN_FMT " sqlstate=%s error=\"%s\"",
                  (long long)f.last_id, f.last_xid, LSN_ARGS(f.last_commit_lsn), f.sqlstate, f.error);
    } else {
        if (f.last_commit_lsn > p->isolate_until) p->isolate_until = f.last_commit_lsn;
        log_warn("msg=\"data error in the history store; committing revisions %lld to %lld one by one to find it\" "
                 "through_lsn=" LSN_FMT " sqlstate=%s error=\"%s\"",
                 (long long)f.first_id, (long long)f.last_id, LSN_ARGS(p->isolate_until), f.sqlstate, f.error);
    }
    err->status = WR_RETRY;
    return WR_RETRY;
}

/* how long an exiting worker waits for its state row (status.h) */
#define STATE_FLUSH_MS 3000

/* A background job of the history store runs when its setting is > 0 and [history] is on;
 * a setting given without the history is warned about, not an error. */
static bool history_job_wanted(const Config *cfg, long long setting, const char *name, const char *verb)
{
    if (setting <= 0) return false;
    if (!cfg->history_enabled) {
        log_warn("msg=\"%s is set but [history] is off: nothing to %s\"", name, verb);
        return false;
    }
    return true;
}

/* [worker] reconcile_interval > 0: start the reconciler (it lives across sessions). */
static void start_reconciler(Pipeline *p)
{
    const Config *cfg = p->cfg;
    if (!history_job_wanted(cfg, cfg->reconcile_interval_s, "reconcile_interval", "reconcile")) return;
    ReconcilerConfig rc = {.baseline = p->baseline_cfg,
                           .slot_name = cfg->slot_name,
                           .interval_s = cfg->reconcile_interval_s,
                           .rows_per_second = cfg->reconcile_rows_per_second,
                           .wait_s = 60};
    p->reconciler = reconciler_start(&rc);
}

/* [history] retain > 0: prune the history older than it (replay/retain.c; lives across sessions). */
static void start_retainer(Pipeline *p)
{
    const Config *cfg = p->cfg;
    if (!history_job_wanted(cfg, cfg->retain_s, "retain", "prune")) return;
    RetainConfig rc = {.history_conninfo = cfg->history_conninfo,
                       .schema = cfg->history_schema,
                       .retain_s = cfg->retain_s,
                       .interval_s = cfg->retain_interval_s};
    p->retainer = replay_retainer_start(&rc);
}

static int pipeline_finish(Pipeline *p, int rc)
{
    reconciler_stop(p->reconciler);
    p->reconciler = NULL;
    replay_retainer_stop(p->retainer);
    p->retainer = NULL;
    return rc;
}

/* The worker exits: its last state is recorded (flushed, the process is about to end). */
static int pipeline_exit(Pipeline *p, const char *state, const WrError *err, int rc)
{
    status_record(&p->status_target, state, err);
    status_record_flush(STATE_FLUSH_MS);
    return pipeline_finish(p, rc);
}

int pipeline_run(const Config *cfg)
{
    Pipeline p;
    pipeline_init(&p, cfg);
    start_reconciler(&p);
    start_retainer(&p);
    int backoff_ms = 0;
    for (;;) {
        WrError err = {0};
        bool stopped = false;
        p.streaming_since_us = 0;
        WrStatus st = run_session(&p, &stopped, &err);
        st = on_data_error(&p, st, &err);
        int64_t streamed_us = p.streaming_since_us ? mono_now_us() - p.streaming_since_us : 0;
        if (p.asm_ && p.fanout && p.stream) publish_metrics(&p, mono_now_us(), false); /* the session's last figures */
        teardown(&p, st != WR_OK);
        metrics_set(METRICS_STREAMING, 0);
        if (st != WR_OK) metrics_count_error(st);
        if (st == WR_OK && stopped) return pipeline_exit(&p, "stopped", NULL, 0);
        if (st != WR_RETRY) {
            log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(st));
            notify_stopping();
            return pipeline_exit(&p, "failed", &err, 1);
        }
        if (pipeline_stop_requested) return pipeline_exit(&p, "stopped", &err, 0);
        metrics_add(METRICS_RETRIES, 1);
        backoff_ms = retry_next_backoff_ms(backoff_ms, streamed_us);
        log_warn("msg=\"%s; retrying\" backoff_ms=%d", err.msg, backoff_ms);
        status_record(&p.status_target, "retrying", &err);
        if (!retry_wait(backoff_ms, err.msg, &pipeline_stop_requested)) return pipeline_finish(&p, 0);
    }
}
