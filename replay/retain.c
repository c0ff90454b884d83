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
#include "common/periodic.h"
#include "replay/internal.h"
#include "schema/store_sql.h"

struct Retainer {
    RetainConfig cfg;
    char *conninfo;
    char *qschema;
    Periodic *rounds;
};

/* One round: prune what is older than the retention period; logs what it did. */
static void round_once(void *arg, const atomic_int *stop)
{
    (void)stop; /* a round is one short transaction: it is not cut */
    Retainer *r = arg;
    PGconn *c = NULL;
    WrError err = {0};
    if (rq_connect(r->conninfo, "history store (retention)", &c, &err) != WR_OK) {
        log_warn("msg=\"history not pruned: cannot connect; tried again at the next round\" error=\"%s\"", err.msg);
        PQfinish(c);
        return;
    }
    char keep[32];
    snprintf(keep, sizeof(keep), "%lld seconds", r->cfg.retain_s);
    const char *p[1] = {keep};
    char *sql = xasprintf("SELECT cut, partitions, keyframes FROM %s.prune_retain($1::interval)", r->qschema);
    PGresult *res = rq_exec(c, &err, "BEGIN; SET LOCAL lock_timeout = '1s'; SET LOCAL jit = off", 0, NULL);
    if (res) {
        PQclear(res);
        res = rq_exec(c, &err, sql, 1, p);
    }
    if (res && PQntuples(res) == 1) {
        PGresult *done = rq_exec(c, &err, "COMMIT", 0, NULL);
        if (done)
            log_info("msg=\"history pruned\" before_revision=%s partitions=%s keyframes=%s retain_s=%lld",
                     PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), r->cfg.retain_s);
        else
            log_warn("msg=\"history not pruned: commit failed; tried again at the next round\" error=\"%s\"", err.msg);
        PQclear(done);
    } else if (res) {
        log_debug("msg=\"nothing to prune\" retain_s=%lld", r->cfg.retain_s);
    } else {
        log_warn("msg=\"history not pruned; tried again at the next round\" error=\"%s\"", err.msg);
    }
    PQclear(res);
    free(sql);
    PQfinish(c);
}

static void retainer_free(Retainer *r)
{
    free(r->conninfo);
    free(r->qschema);
    free(r);
}

Retainer *replay_retainer_start(const RetainConfig *cfg)
{
    Retainer *r = xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->conninfo = xstrdup(cfg->history_conninfo ? cfg->history_conninfo : "");
    r->qschema = store_quote_ident(cfg->schema ? cfg->schema : "walrev");
    r->cfg.history_conninfo = r->conninfo;
    r->rounds = periodic_start(cfg->interval_s, round_once, r);
    if (!r->rounds) {
        log_error("msg=\"retention thread not started: history will not be pruned\"");
        retainer_free(r);
        return NULL;
    }
    log_info("msg=\"retention on\" retain_s=%lld interval_s=%d", cfg->retain_s, cfg->interval_s);
    return r;
}

void replay_retainer_stop(Retainer *r)
{
    if (!r) return;
    periodic_stop(r->rounds);
    retainer_free(r);
}
