/*
 * retain.c — `walrev run`'s retention ([history] retain, docs/configuration.md):
 * a thread of its own prunes the history older than the retention period
 * every interval, as `walrev prune --apply` would (prune_retain() in
 * schema/sql/history.sql: whole partitions, keyframes and the anchor first).
 * It never stalls the stream: its own connection, its own transaction under
 * a lock_timeout, and a round that cannot take its locks (a reader, the
 * history sink making a partition) is given up, logged, and tried again at
 * the next round. It never prunes anything the retention period still covers.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "replay/history_job.h"
#include "replay/internal.h"

/* One round: prune what is older than the retention period; logs what it did. */
static void round_once(PGconn *c, const HistoryJobConfig *cfg, const char *schema_q, const atomic_int *stop)
{
    (void)stop; /* a round is one short transaction: it is not cut */
    WrError err = {0};
    char keep[32];
    snprintf(keep, sizeof(keep), "%lld seconds", cfg->retain_s);
    const char *p[1] = {keep};
    char *sql = xasprintf("SELECT cut, partitions, keyframes FROM %s.prune_retain($1::interval)", schema_q);
    PGresult *res = rq_exec(c, &err, "BEGIN; SET LOCAL lock_timeout = '1s'; SET LOCAL jit = off", 0, NULL);
    if (res) {
        PQclear(res);
        res = rq_exec(c, &err, sql, 1, p);
    }
    if (res && PQntuples(res) == 1) {
        PGresult *done = rq_exec(c, &err, "COMMIT", 0, NULL);
        if (done)
            log_info("msg=\"history pruned\" before_revision=%s partitions=%s keyframes=%s retain_s=%lld",
                     PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), cfg->retain_s);
        else
            log_warn("msg=\"history not pruned: commit failed; tried again at the next round\" error=\"%s\"", err.msg);
        PQclear(done);
    } else if (res) {
        log_debug("msg=\"nothing to prune\" retain_s=%lld", cfg->retain_s);
    } else {
        log_warn("msg=\"history not pruned; tried again at the next round\" error=\"%s\"", err.msg);
    }
    PQclear(res);
    free(sql);
}

static const HistoryJobKind RETENTION = {.name = "retention",
                                         .not_done = "history not pruned",
                                         .not_started = "retention thread not started: history will not be pruned",
                                         .round = round_once};

HistoryJob *replay_retainer_start(const HistoryJobConfig *cfg)
{
    HistoryJob *job = history_job_start(&RETENTION, cfg);
    if (job) log_info("msg=\"retention on\" retain_s=%lld interval_s=%d", cfg->retain_s, cfg->interval_s);
    return job;
}
