/*
 * reconciler.c — the worker's continuous reconciliation (see reconciler.h).
 * Its own thread and connections; it shares with the stream only the set of
 * ids of warning messages it emitted and has not seen come back.
 */
#include "baseline/reconciler.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "baseline/reconcile.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/periodic.h"
#include "common/textsafe.h"
#include "pgio/pgio.h"

#define ID_HEX 32
#define IDS_MAX 64               /* ids emitted and not yet seen back; the oldest is forgotten beyond */
#define RECONCILE_ENTRY_MAX 1024 /* bytes of one named key or row in meta.reconcile.keys */

struct Reconciler {
    ReconcilerConfig cfg;
    Periodic *rounds;
    pthread_mutex_t mu; /* guards ids: the stream's thread reads them, the rounds' thread adds */
    char ids[IDS_MAX][ID_HEX + 1];
    int nids;
    /* the round in progress */
    PGconn *emit;    /* source connection the warning messages are emitted on */
    ReconSummary at; /* the round's point */
    StrBuf keys;     /* JSON array elements: the current table's differences */
    int64_t nkeys;
    /* What was recorded last per table: a divergence already recorded is not
     * recorded again each round, only when what differs changes. */
    struct {
        uint32_t relid;
        uint64_t hash;
    } last[256];
    int nlast;
};

/* Whether the table's divergence (hash; 0: none) differs from the one recorded last; remembers it. */
static bool divergence_changed(Reconciler *r, uint32_t relid, uint64_t hash)
{
    for (int i = 0; i < r->nlast; i++) {
        if (r->last[i].relid != relid) continue;
        bool changed = r->last[i].hash != hash;
        r->last[i].hash = hash;
        return changed;
    }
    if (r->nlast < (int)(sizeof(r->last) / sizeof(r->last[0]))) {
        r->last[r->nlast].relid = relid;
        r->last[r->nlast++].hash = hash;
    }
    return hash != 0;
}

static pthread_mutex_t counters_mu = PTHREAD_MUTEX_INITIALIZER;
static ReconcilerCounters counters;

void reconciler_counters(ReconcilerCounters *out)
{
    pthread_mutex_lock(&counters_mu);
    *out = counters;
    pthread_mutex_unlock(&counters_mu);
}

static void count(uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&counters_mu);
    *field += n;
    pthread_mutex_unlock(&counters_mu);
}

/* ---- the ids of emitted messages ---- */

static void remember_id(Reconciler *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    if (r->nids == IDS_MAX) {
        memmove(r->ids[0], r->ids[1], sizeof(r->ids[0]) * (IDS_MAX - 1));
        r->nids--;
    }
    snprintf(r->ids[r->nids++], ID_HEX + 1, "%s", id);
    pthread_mutex_unlock(&r->mu);
}

bool reconciler_owns_message(Reconciler *r, const PgoLogicalMessage *m)
{
    if (!r || !m->transactional || strcmp(m->prefix, RECONCILE_PREFIX) != 0) return false;
    json_t *root = json_loadb((const char *)m->content, m->content_len, 0, NULL);
    const char *id =
        json_string_value(json_object_get(json_object_get(json_object_get(root, "meta"), "reconcile"), "id"));
    bool own = false;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; id && i < r->nids; i++) {
        if (strcmp(r->ids[i], id) != 0) continue;
        memmove(r->ids[i], r->ids[i + 1], sizeof(r->ids[0]) * (size_t)(r->nids - i - 1));
        r->nids--;
        own = true;
        break;
    }
    pthread_mutex_unlock(&r->mu);
    json_decref(root);
    return own;
}

/* ---- one round ---- */

static const char *kind_text(ReconKind k)
{
    switch (k) {
    case RECON_ONLY_IN_HISTORY: return "only in the history";
    case RECON_ONLY_IN_SOURCE: return "only in the table";
    case RECON_DIFFERENT: return "values differ";
    case RECON_ROWS_DIFFER: return "copies differ";
    }
    return "?";
}

static WrStatus on_difference(void *arg, const ReconTable *t, const ReconDiff *d, WrError *err)
{
    (void)t;
    (void)err;
    Reconciler *r = arg;
    if (r->nkeys++ >= RECONCILE_KEYS_MAX) return WR_OK;
    StrBuf one;
    strbuf_init(&one);
    if (d->kind == RECON_ROWS_DIFFER)
        strbuf_appendf(&one, "row %s: %lld in the table, %lld in the history", d->row, (long long)d->in_source,
                       (long long)d->in_history);
    else
        strbuf_appendf(&one, "%s: %s", d->key, kind_text(d->kind));
    /* A row without a key is named by its values: bounded, cut at a character. */
    StrBuf cut;
    strbuf_init(&cut);
    text_sanitize(&cut, one.data, one.len, RECONCILE_ENTRY_MAX);
    if (r->keys.len) strbuf_append_char(&r->keys, ',');
    strbuf_append_json_string(&r->keys, cut.data ? cut.data : "", cut.len);
    strbuf_free(&cut);
    strbuf_free(&one);
    return WR_OK;
}

static void on_start(void *arg, const ReconSummary *sum)
{
    Reconciler *r = arg;
    r->at = *sum;
}

/* A table that differs: its warning revision, by a message the stream brings back. */
static WrStatus on_table(void *arg, const ReconTable *t, WrError *err)
{
    Reconciler *r = arg;
    count(&counters.tables_compared, 1);
    count(&counters.differences, (uint64_t)t->differences);
    metrics_add(METRICS_RECONCILE_DIFFERENCES, (uint64_t)t->differences);
    uint64_t hash = 0;
    if (t->differences) {
        char n[24];
        snprintf(n, sizeof(n), "%lld:", (long long)t->differences);
        hash = wr_fnv1a(r->keys.data ? r->keys.data : "", r->keys.len, wr_fnv1a(n, strlen(n), WR_FNV_BASIS)) | 1;
    }
    if (!divergence_changed(r, t->relid, hash)) {
        if (t->differences)
            log_info("msg=\"reconcile: the table still differs as recorded\" table=%s differences=%lld",
                     t->table.qualified, (long long)t->differences);
        strbuf_reset(&r->keys);
        r->nkeys = 0;
        return WR_OK;
    }
    if (t->differences == 0) {
        log_info("msg=\"reconcile: the table agrees with the history again\" table=%s", t->table.qualified);
        strbuf_reset(&r->keys);
        r->nkeys = 0;
        return WR_OK;
    }
    count(&counters.tables_diverged, 1);
    uint8_t raw[ID_HEX / 2];
    char id[ID_HEX + 1];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        for (size_t i = 0; i < sizeof(raw); i++) raw[i] = (uint8_t)rand(); /* never: getrandom blocks only at boot */
    for (size_t i = 0; i < sizeof(raw); i++) snprintf(id + 2 * i, 3, "%02x", raw[i]);
    StrBuf msg, desc;
    strbuf_init(&msg);
    strbuf_init(&desc);
    strbuf_appendf(&desc, "reconcile: %s differs from the history at " LSN_FMT " (revision %lld): %lld difference(s)",
                   t->table.qualified, LSN_ARGS(r->at.at), (long long)r->at.rev, (long long)t->differences);
    strbuf_append_str(&msg, "{\"actor\":{\"type\":\"walrev\",\"id\":\"reconcile\"},\"description\":");
    strbuf_append_json_string(&msg, desc.data, desc.len);
    strbuf_appendf(&msg, ",\"meta\":{\"reconcile\":{\"id\":\"%s\",\"table\":", id);
    strbuf_append_json_string(&msg, t->table.qualified, strlen(t->table.qualified));
    strbuf_appendf(&msg,
                   ",\"relid\":%" PRIu32 ",\"at_lsn\":\"" LSN_FMT "\",\"revision\":%lld,\"differences\":%lld,"
                   "\"rows_table\":%lld,\"rows_history\":%lld,\"keys\":[%s]}}}",
                   t->relid, LSN_ARGS(r->at.at), (long long)r->at.rev, (long long)t->differences,
                   (long long)t->rows_source, (long long)t->rows_history, r->keys.data ? r->keys.data : "");
    remember_id(r, id);
    const char *p[2] = {RECONCILE_PREFIX, msg.data};
    WrStatus st = pgio_run(r->emit, "SELECT pg_logical_emit_message(true, $1, $2)", 2, p, NULL, err,
                           "reconcile: recording a divergence on the source");
    if (st != WR_OK) (void)divergence_changed(r, t->relid, 0); /* not recorded: the next round tries again */
    if (st == WR_OK) metrics_add(METRICS_RECONCILE_DIVERGENCES, 1);
    if (st == WR_OK)
        log_warn("msg=\"reconcile: the history differs from the table; recorded as a warning revision\" table=%s "
                 "differences=%lld at_lsn=" LSN_FMT " revision=%lld",
                 t->table.qualified, (long long)t->differences, LSN_ARGS(r->at.at), (long long)r->at.rev);
    strbuf_free(&msg);
    strbuf_free(&desc);
    strbuf_reset(&r->keys);
    r->nkeys = 0;
    return st;
}

static void round_once(void *arg, const atomic_int *stop)
{
    Reconciler *r = arg;
    WrError err = {0};
    PgioConnect how = {.what = "source (reconcile)", .app_name = "walrev-reconcile"};
    WrStatus st = pgio_connect(r->cfg.baseline.source_conninfo, &how, &r->emit, &err);
    ReconSummary sum = {0};
    if (st == WR_OK) {
        ReconRun run = {.cfg = &r->cfg.baseline,
                        .slot_name = r->cfg.slot_name,
                        .wait_s = r->cfg.wait_s,
                        .rows_per_second = r->cfg.rows_per_second,
                        .stop = stop,
                        .fn = on_difference,
                        .arg = r,
                        .on_start = on_start,
                        .on_table = on_table};
        strbuf_reset(&r->keys);
        r->nkeys = 0;
        st = reconcile_run(&run, &sum, &err);
    }
    PQfinish(r->emit);
    r->emit = NULL;
    if (*stop) return;
    if (st != WR_OK) {
        count(&counters.rounds_failed, 1);
        metrics_add(METRICS_RECONCILE_FAILED, 1);
        log_warn("msg=\"reconcile: round not compared\" error=\"%s\"", err.msg);
        return;
    }
    count(&counters.rounds, 1);
    metrics_add(METRICS_RECONCILE_ROUNDS, 1);
    log_info(
        "msg=\"reconcile: round done\" tables=%d rows_table=%lld rows_history=%lld differences=%lld at_lsn=" LSN_FMT
        " revision=%lld",
        sum.compared, (long long)sum.rows_source, (long long)sum.rows_history, (long long)sum.differences,
        LSN_ARGS(sum.at), (long long)sum.rev);
}

static void reconciler_free(Reconciler *r)
{
    pthread_mutex_destroy(&r->mu);
    strbuf_free(&r->keys);
    free(r);
}

Reconciler *reconciler_start(const ReconcilerConfig *cfg)
{
    Reconciler *r = xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    strbuf_init(&r->keys);
    pthread_mutex_init(&r->mu, NULL);
    r->rounds = periodic_start(cfg->interval_s, round_once, r);
    if (!r->rounds) {
        log_error("msg=\"reconcile: could not start its thread; continuous reconciliation is off\"");
        reconciler_free(r);
        return NULL;
    }
    log_info("msg=\"reconcile: on\" interval_s=%d rows_per_second=%lld", cfg->interval_s,
             (long long)cfg->rows_per_second);
    return r;
}

void reconciler_stop(Reconciler *r)
{
    if (!r) return;
    periodic_stop(r->rounds);
    reconciler_free(r);
}
