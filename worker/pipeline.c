/*
 * pipeline.c — `walrev run` and the slot's creation, wired: reads the
 * configuration, creates the sinks for each session, the background jobs
 * (reconciler, retention) and the replication session (session/session.h),
 * runs sessions until a clean stop or a fatal error with capped backoff
 * between them, and tears down. systemd hears of the session through its
 * hooks. The work itself lives in the modules; this file only wires them.
 */
#include "worker/pipeline.h"

#include "baseline/baseline.h"
#include "baseline/reconciler.h"
#include "common/log.h"
#include "common/metrics.h"
#include "replay/replay.h"
#include "session/session.h"
#include "sink/fanout.h"
#include "sink/kafka_sink.h"
#include "sink/history_sink.h"
#include "sink/sink.h"
#include "status/status.h"
#include "worker/notify.h"
#include "worker/retry.h"

#include <stdlib.h>
#include <string.h>

volatile sig_atomic_t pipeline_stop_requested = 0;

typedef struct {
    const Config *cfg;
    BaselineConfig baseline_cfg; /* the part of cfg the baselines read */
    StatusTarget status_target;  /* the part of cfg the worker's state row names */
    ContextStrict strict;        /* [actors]' policy, borrowed from cfg */
    Session *session;
    int64_t last_watchdog_us;
    /* [worker] reconcile_interval: the thread comparing the history with the tables; NULL when off. */
    Reconciler *reconciler;
    HistoryJob *retainer;  /* [history] retain */
    HistoryJob *compactor; /* [history] compact_interval */
} Pipeline;

/* ---- the session's hooks: systemd, and the sinks of each session ---- */

static void on_ready(void *arg)
{
    (void)arg;
    notify_ready();
}

static void on_progress(void *arg, int64_t revision, Lsn confirmed)
{
    (void)arg;
    notify_status("revision %lld, confirmed %X/%X", (long long)revision, LSN_ARGS(confirmed));
}

static void on_waiting(void *arg, Lsn confirmed)
{
    (void)arg;
    notify_status("waiting for Kafka: local queue full, brokers slow or down; confirmed %X/%X", LSN_ARGS(confirmed));
}

/* systemd's watchdog fed at half its interval */
static void on_tick(void *arg, int64_t t)
{
    Pipeline *p = arg;
    uint64_t watchdog_us = notify_watchdog_interval_us();
    if (watchdog_us && (uint64_t)(t - p->last_watchdog_us) >= watchdog_us / 2) {
        notify_watchdog();
        p->last_watchdog_us = t;
    }
}

static void on_stopping(void *arg)
{
    (void)arg;
    notify_stopping();
}

/* The sinks that [history], [file] and [kafka] name, made anew for each
 * session (SessionHooks.open_sinks); while Kafka's local queue is full the
 * session keeps the stream alive (session_while_sink_waits). */
static WrStatus create_sinks(void *arg, Session *s, SessionSinks *out, WrError *err)
{
    Pipeline *p = arg;
    const Config *cfg = p->cfg;
    out->fanout = fanout_create();
    out->history = NULL;
    out->history_index = -1;
    if (cfg->history_enabled) {
        HistorySinkConfig h = {
            .conninfo = cfg->history_conninfo,
            .schema = cfg->history_schema,
            .slot_name = cfg->slot_name,
            .batch_max_revisions = cfg->batch_max_revisions,
            .batch_max_ms = cfg->batch_max_ms,
            .keyframe_factor = cfg->keyframe_factor,
            .commit = cfg->history_commit == CONFIG_COMMIT_ON    ? HISTORY_COMMIT_ON
                      : cfg->history_commit == CONFIG_COMMIT_OFF ? HISTORY_COMMIT_OFF
                                                                 : HISTORY_COMMIT_AUTO,
        };
        out->history = sink_history_create(&h);
        out->history_index = fanout_add(out->fanout, "history", out->history);
    }
    if (cfg->file_path) {
        FileSinkConfig f = {.path = cfg->file_path, .fsync = strcmp(cfg->file_path, "-") != 0};
        fanout_add(out->fanout, "file", sink_file_create(&f));
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
        k.while_waiting = session_while_sink_waits;
        k.while_waiting_arg = s;
        Sink *ks = sink_kafka_create(&k, err);
        free(props);
        if (!ks) return err->status;
        fanout_add(out->fanout, "kafka", ks);
    }
    if (fanout_count(out->fanout) == 0)
        return wr_error_set(err, WR_INVALID, "no sink configured: enable [history], [file] or [kafka]");
    return WR_OK;
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
        .allow_unrecorded_leaves = cfg->allow_unrecorded_leaves,
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

/* The parts of cfg the baselines and the worker's state row read. */
static void pipeline_init(Pipeline *p, const Config *cfg)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    pipeline_baseline_config(cfg, &p->baseline_cfg);
    pipeline_status_target(cfg, &p->status_target);
}

/* The session wired to cfg, the hooks and the reconciler (started before: its messages are its own). */
static void create_session(Pipeline *p)
{
    const Config *cfg = p->cfg;
    SessionConfig sc = {
        .source_conninfo = cfg->source_conninfo,
        .slot_name = cfg->slot_name,
        .publication = cfg->publication,
        .history_enabled = cfg->history_enabled,
        .history_conninfo = cfg->history_conninfo,
        .history_schema = cfg->history_schema,
        .baseline = &p->baseline_cfg,
        .status_target = &p->status_target,
        .tracking = cfg->tracking,
        .row_cache_bytes = cfg->row_cache_bytes,
        .strict = config_strict(cfg, &p->strict),
        .status_interval_ms = cfg->status_interval_ms,
        .stop_lsn = cfg->stop_lsn,
        .sample_slot = cfg->metrics_listen != NULL,
        .reconciler = p->reconciler,
        .stop_requested = &pipeline_stop_requested,
        .hooks = {.arg = p,
                  .open_sinks = create_sinks,
                  .ready = on_ready,
                  .progress = on_progress,
                  .waiting = on_waiting,
                  .tick = on_tick,
                  .stopping = on_stopping},
    };
    p->session = session_create(&sc);
}

int pipeline_create_slot(const Config *cfg, bool baseline, bool *created)
{
    Pipeline p;
    pipeline_init(&p, cfg);
    create_session(&p);
    WrError err = {0};
    WrStatus st = session_create_slot(p.session, baseline, created, &err);
    session_destroy(p.session);
    if (st != WR_OK) {
        log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(st));
        return 1;
    }
    return 0;
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
    HistoryJobConfig jc = {.history_conninfo = cfg->history_conninfo,
                           .schema = cfg->history_schema,
                           .interval_s = cfg->retain_interval_s,
                           .retain_s = cfg->retain_s};
    p->retainer = replay_retainer_start(&jc);
}

/* [history] compact_interval > 0 (the default): rebuild the indexes of full partitions (replay/compact.c). */
static void start_compactor(Pipeline *p)
{
    const Config *cfg = p->cfg;
    if (cfg->compact_interval_s <= 0 || !cfg->history_enabled) return;
    HistoryJobConfig jc = {.history_conninfo = cfg->history_conninfo,
                           .schema = cfg->history_schema,
                           .interval_s = cfg->compact_interval_s};
    p->compactor = replay_compactor_start(&jc);
}
static int pipeline_finish(Pipeline *p, int rc)
{
    session_destroy(p->session);
    p->session = NULL;
    reconciler_stop(p->reconciler);
    p->reconciler = NULL;
    replay_history_job_stop(p->retainer);
    p->retainer = NULL;
    replay_history_job_stop(p->compactor);
    p->compactor = NULL;
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
    start_compactor(&p);
    create_session(&p);
    int backoff_ms = 0;
    for (;;) {
        WrError err = {0};
        SessionEnd end;
        WrStatus st = session_run(p.session, &end, &err);
        if (st == WR_OK && end.stopped) return pipeline_exit(&p, "stopped", NULL, 0);
        if (st != WR_RETRY) {
            log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(st));
            notify_stopping();
            return pipeline_exit(&p, "failed", &err, 1);
        }
        if (pipeline_stop_requested) return pipeline_exit(&p, "stopped", &err, 0);
        metrics_add(METRICS_RETRIES, 1);
        backoff_ms = retry_next_backoff_ms(backoff_ms, end.streamed_us);
        log_warn("msg=\"%s; retrying\" backoff_ms=%d", err.msg, backoff_ms);
        status_record(&p.status_target, "retrying", &err);
        if (!retry_wait(backoff_ms, err.msg, &pipeline_stop_requested)) return pipeline_finish(&p, 0);
    }
}
