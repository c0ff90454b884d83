/*
 * history_job.c — the thread, connection and settings of `walrev run`'s
 * background jobs on the history store (history_job.h, replay.h). It must
 * never leave a connection open between rounds, nor log more than the one
 * line a failed start or connection makes: what a round did is its own to log.
 */
#include <stdlib.h>

#include "common/log.h"
#include "common/periodic.h"
#include "replay/history_job.h"
#include "replay/internal.h"
#include "schema/store_sql.h"

struct HistoryJob {
    const HistoryJobKind *kind;
    HistoryJobConfig cfg; /* the caller's, its strings the two below */
    char *conninfo;
    char *schema;
    char *schema_q;
    char *what; /* "history store (<name>)" */
    Periodic *rounds;
};

static void job_round(void *arg, const atomic_int *stop)
{
    HistoryJob *job = arg;
    PGconn *conn = NULL;
    WrError err = {0};
    if (rq_connect(job->cfg.history_conninfo, job->what, &conn, &err) != WR_OK)
        log_warn("msg=\"%s: cannot connect; tried again at the next round\" error=\"%s\"", job->kind->not_done,
                 err.msg);
    else
        job->kind->round(conn, &job->cfg, job->schema_q, stop);
    PQfinish(conn);
}

static void job_free(HistoryJob *job)
{
    free(job->conninfo);
    free(job->schema);
    free(job->schema_q);
    free(job->what);
    free(job);
}

HistoryJob *history_job_start(const HistoryJobKind *kind, const HistoryJobConfig *cfg)
{
    HistoryJob *job = xcalloc(1, sizeof(*job));
    job->kind = kind;
    job->cfg = *cfg;
    job->conninfo = xstrdup(cfg->history_conninfo ? cfg->history_conninfo : "");
    job->schema = xstrdup(cfg->schema ? cfg->schema : "walrev");
    job->cfg.history_conninfo = job->conninfo;
    job->cfg.schema = job->schema;
    job->schema_q = store_quote_ident(job->schema);
    job->what = xasprintf("history store (%s)", kind->name);
    job->rounds = periodic_start(cfg->interval_s, job_round, job);
    if (!job->rounds) {
        log_error("msg=\"%s\"", kind->not_started);
        job_free(job);
        return NULL;
    }
    return job;
}

void replay_history_job_stop(HistoryJob *job)
{
    if (!job) return;
    periodic_stop(job->rounds);
    job_free(job);
}
