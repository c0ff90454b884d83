/*
 * gap.c — a slot that does not continue the history becomes a gap revision
 * (gap.h). The check is one row of pg_replication_slots against the
 * history's checkpoint: the worker never confirms past what the history
 * store has recorded (session/rules.h), so a slot confirmed further, or a
 * slot that is gone or lost, means transactions the history never saw. The
 * revision is written like the initial baseline (one revision at the new
 * slot's consistent point, read in its exported snapshot), so the stream
 * meets it exactly; only its rows differ: the differences, not every row.
 */
#include "baseline/gap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "baseline/reconcile.h"
#include "common/log.h"
#include "decoder/stream.h"
#include "pgio/pgio.h"
#include "schema/store_sql.h"

static WrStatus sql_error(PGconn *c, const PGresult *r, const char *what, WrError *err)
{
    return pgio_fail(c, r, err, "gap: %s", what);
}

static PGconn *connect_plain(const char *conninfo, const char *what, WrError *err)
{
    PgioConnect how = {.what = what, .app_name = "walrev-gap"};
    PGconn *c = NULL;
    return pgio_connect(conninfo, &how, &c, err) == WR_OK ? c : NULL;
}

WrStatus gap_check(const char *source_conninfo, const char *slot_name, Lsn history_lsn, GapCheck *out, WrError *err)
{
    memset(out, 0, sizeof(*out));
    out->history_lsn = history_lsn;
    PGconn *c = connect_plain(source_conninfo, "gap: source", err);
    if (!c) return err->status;
    const char *params[1] = {slot_name};
    PGresult *r;
    WrStatus st = WR_OK;
    if (!pgio_exec(c,
                   "SELECT confirmed_flush_lsn::text, wal_status, plugin, slot_type, "
                   "database = current_database() FROM pg_replication_slots WHERE slot_name = $1",
                   1, params, &r)) {
        st = sql_error(c, r, "reading the replication slot", err);
        goto done;
    }
    char hist[32];
    snprintf(hist, sizeof(hist), LSN_FMT, LSN_ARGS(history_lsn));
    if (PQntuples(r) == 0) {
        out->found = true;
        snprintf(out->kind, sizeof(out->kind), "slot_missing");
        snprintf(out->reason, sizeof(out->reason),
                 "the replication slot %s is gone (dropped); the history is complete to %s only", slot_name, hist);
        goto done;
    }
    out->slot_exists = true;
    if (!PQgetisnull(r, 0, 0) && !lsn_parse(PQgetvalue(r, 0, 0), &out->slot_lsn)) out->slot_lsn = 0;
    const char *wal_status = PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1);
    if (strcmp(PQgetvalue(r, 0, 3), "logical") != 0 || PQgetvalue(r, 0, 4)[0] != 't') {
        st = wr_error_set(err, WR_FATAL,
                          "gap: the replication slot %s is not a logical slot of this database; walrev will not "
                          "touch it (choose another slot name)",
                          slot_name);
        goto done;
    }
    if (strcmp(wal_status, "lost") == 0) {
        out->found = true;
        snprintf(out->kind, sizeof(out->kind), "slot_lost");
        snprintf(out->reason, sizeof(out->reason),
                 "the replication slot %s was invalidated (wal_status lost: max_slot_wal_keep_size); the history "
                 "is complete to %s only",
                 slot_name, hist);
    } else if (out->slot_lsn > history_lsn) {
        out->found = true;
        snprintf(out->kind, sizeof(out->kind), "slot_advanced");
        snprintf(out->reason, sizeof(out->reason),
                 "the replication slot %s stands at " LSN_FMT
                 ", past the history's %s: it was advanced or made anew by someone else",
                 slot_name, LSN_ARGS(out->slot_lsn), hist);
    }
done:
    PQclear(r);
    PQfinish(c);
    return st;
}

/* ---- the gap revision ---- */

typedef struct {
    Assembler *a;
    Fanout *f;
    const RelationVersion *arv; /* the assembler's version of the table being compared */
    bool rows_differ;           /* a table without a key differs: truncated and inserted again */
    int64_t inserts, updates, deletes, truncates;
    int64_t since_flush;
} Gap;

/* The table's version as of the gap's end, with its STORED generated
 * columns: pgoutput never describes those, and the DDL capture that would
 * have (CREATE TABLE, ADD COLUMN ... GENERATED) is among what the gap hid. */
static WrStatus ensure_relation(Gap *g, const ReconTable *t, WrError *err)
{
    if (g->arv) return WR_OK;
    const BackfillTable *bt = &t->table;
    relcache_set_generated(assembler_relcache(g->a), t->relid, bt->ngen, bt->gen);
    backfill_table_name_types(bt, assembler_relcache(g->a));
    return assembler_baseline_relation(g->a, t->relid, bt->nspname, bt->relname, bt->replident, (uint16_t)bt->ncols,
                                       bt->cols, bt->attnums, &g->arv, err);
}

/* Bounded memory: let the sinks send full buffers while the revision grows. */
static WrStatus wrote_row(Gap *g, WrError *err)
{
    fanout_mark_pending(g->f);
    if (++g->since_flush < 1000) return WR_OK;
    g->since_flush = 0;
    return fanout_flush(g->f, FANOUT_FLUSH_WANTING, mono_now_us(), err);
}

static WrStatus on_difference(void *arg, const ReconTable *t, const ReconDiff *d, WrError *err)
{
    Gap *g = arg;
    WrStatus st = ensure_relation(g, t, err);
    if (st != WR_OK) return st;
    switch (d->kind) {
    case RECON_ONLY_IN_SOURCE:
        st = assembler_gap_row(g->a, g->arv, DELTA_INSERT, NULL, d->vals, err);
        g->inserts++;
        break;
    case RECON_DIFFERENT:
        st = assembler_gap_row(g->a, g->arv, DELTA_UPDATE, NULL, d->vals, err);
        g->updates++;
        break;
    case RECON_ONLY_IN_HISTORY:
        st = assembler_gap_row(g->a, g->arv, DELTA_DELETE, d->key, NULL, err);
        g->deletes++;
        break;
    case RECON_ROWS_DIFFER: g->rows_differ = true; return WR_OK;
    }
    return st == WR_OK ? wrote_row(g, err) : st;
}

/* A table without a key whose rows differ: rows have no identity to match
 * them by, so the table is emptied and its rows inserted as they are now. */
static WrStatus replace_rows(Gap *g, PGconn *src, const ReconTable *t, WrError *err)
{
    const BackfillTable *bt = &t->table;
    WrStatus st = assembler_gap_row(g->a, g->arv, DELTA_TRUNCATE, NULL, NULL, err);
    if (st != WR_OK) return st;
    g->truncates++;
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "SELECT %s FROM ONLY %s", bt->select_list, bt->qualified);
    if (bt->rowfilter) strbuf_appendf(&sql, " WHERE (%s)", bt->rowfilter);
    if (!PQsendQuery(src, sql.data) || !PQsetSingleRowMode(src)) {
        strbuf_free(&sql);
        return sql_error(src, NULL, "reading a table without a key", err);
    }
    strbuf_free(&sql);
    Value *vals = xcalloc((size_t)bt->ncols + 1, sizeof(Value));
    PGresult *r;
    while ((r = pgio_next_row(src, &st, "gap: reading a table without a key", err)) != NULL) {
        for (int c = 0; c < bt->ncols; c++) {
            vals[c].data = PQgetisnull(r, 0, c) ? NULL : PQgetvalue(r, 0, c);
            vals[c].len = vals[c].data ? (size_t)PQgetlength(r, 0, c) : 0;
        }
        st = assembler_gap_row(g->a, g->arv, DELTA_INSERT, NULL, vals, err);
        g->inserts++;
        if (st == WR_OK) st = wrote_row(g, err);
        PQclear(r);
    }
    free(vals);
    return st;
}

static bool is_table_log(const BaselineConfig *cfg, const char *nsp, const char *rel)
{
    return strcmp(nsp, cfg->history_schema) == 0 && strcmp(rel, "table_log") == 0;
}

static char *gap_context(const GapCheck *c, const char *slot_name, Lsn cp)
{
    char hist[32], to[32], slot[32];
    snprintf(hist, sizeof(hist), LSN_FMT, LSN_ARGS(c->history_lsn));
    snprintf(to, sizeof(to), LSN_FMT, LSN_ARGS(cp));
    snprintf(slot, sizeof(slot), LSN_FMT, LSN_ARGS(c->slot_lsn));
    char desc[400];
    snprintf(desc, sizeof(desc),
             "gap: changes between %s and %s were not seen (%s); the history is reconciled with the tables as of %s",
             hist, to, c->kind, to);
    json_t *g = json_object();
    json_object_set_new(g, "kind", json_string(c->kind));
    json_object_set_new(g, "reason", json_string(c->reason));
    json_object_set_new(g, "slot", json_string(slot_name));
    json_object_set_new(g, "from_lsn", json_string(hist));
    json_object_set_new(g, "to_lsn", json_string(to));
    json_object_set_new(g, "slot_lsn", c->slot_exists ? json_string(slot) : json_null());
    return baseline_own_context("gap", desc, "gap", g);
}

WrStatus gap_record(const BaselineConfig *cfg, const char *slot_name, Assembler *a, Fanout *f, const GapCheck *g,
                    Lsn *consistent_point, WrError *err)
{
    log_error("msg=\"gap: the replication slot no longer continues the history; a gap revision reconciles it with "
              "the tables\" kind=%s reason=\"%s\"",
              g->kind, g->reason);
    WrStatus st = WR_OK;
    PGconn *src = NULL, *hist = NULL;
    ReplStream *repl = NULL;
    PGresult *list = NULL;
    RelCache *rc = relcache_create(cfg->tracking);
    char *schema_q = store_quote_ident(cfg->history_schema);
    char *ctx = NULL;
    Gap gap = {.a = a, .f = f};
    int tables = 0;

    if (!(src = connect_plain(cfg->source_conninfo, "gap: source", err))) {
        st = err->status;
        goto done;
    }
    if (g->slot_exists) {
        const char *params[1] = {slot_name};
        PGresult *r;
        if (!pgio_exec(src, "SELECT pg_drop_replication_slot($1)", 1, params, &r))
            st = sql_error(src, r, "dropping the slot to make it anew", err);
        PQclear(r);
        if (st != WR_OK) goto done;
    }
    st = repl_stream_connect(cfg->source_conninfo, &repl, err);
    Lsn cp = 0;
    char snap[128] = "";
    bool exists = false;
    if (st == WR_OK) st = repl_stream_create_slot(repl, slot_name, true, &cp, snap, sizeof(snap), &exists, err);
    if (st != WR_OK) goto done;
    if (exists) {
        st = wr_error_set(err, WR_RETRY, "gap: slot %s was created by someone else meanwhile", slot_name);
        goto done;
    }
    log_info("msg=\"gap: slot made anew\" slot=%s consistent_point=" LSN_FMT, slot_name, LSN_ARGS(cp));
    st = reconcile_enter_snapshot(src, snap, cfg->publication, "gap: using the new slot's snapshot", err);
    if (st != WR_OK) goto done;
    if (!(hist = connect_plain(cfg->history_conninfo, "gap: history store", err))) {
        st = err->status;
        goto done;
    }
    int64_t rev = 0;
    st = reconcile_history_at(hist, schema_q, 0, &rev, err);
    if (st != WR_OK) goto done;
    st = reconcile_list_published(src, "gap: listing the published tables", &list, err);
    if (st != WR_OK) goto done;

    ctx = gap_context(g, slot_name, cp);
    st = assembler_baseline_begin(a, cp, pg_now_us(), ctx, err);
    /* The table log first (pass 0), then the tables (pass 1). The log is in
     * the history schema but is published: the ATTACH, DETACH, CREATE and DROP
     * the gap hid are its rows, and without them replay would place the
     * tables below the partitioned tables and parents they were under before
     * the gap. First, so the revision states the tables under the membership
     * they have at its point. */
    for (int n = 0; st == WR_OK && n < 2 * PQntuples(list); n++) {
        int i = n % PQntuples(list);
        bool log = is_table_log(cfg, PQgetvalue(list, i, 2), PQgetvalue(list, i, 3));
        if (n < PQntuples(list) ? !log : !reconcile_records_table(cfg, PQgetvalue(list, i, 2), PQgetvalue(list, i, 3)))
            continue;
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(list, i, 0), NULL, 10);
        ReconQuery q = {.src = src,
                        .hist = hist,
                        .schema_q = schema_q,
                        .rev = rev,
                        .rc = rc,
                        .want_values = true,
                        .multiset_rows = true};
        ReconTable t;
        bool found = false;
        gap.arv = NULL;
        gap.rows_differ = false;
        st = reconcile_table(&q, relid, on_difference, &gap, &t, &found, err);
        if (st == WR_OK && found && gap.rows_differ) st = replace_rows(&gap, src, &t, err);
        /* Every table's version as of the gap's end (a new one only where the
         * shape changed): a table created during the gap without rows, or
         * given a generated column then, would otherwise get its next version
         * from a Relation message, which lacks them. */
        if (st == WR_OK && found) st = ensure_relation(&gap, &t, err);
        if (st == WR_OK && found) {
            tables++;
            if (t.differences)
                log_warn("msg=\"gap: table reconciled\" table=%s rows=%lld history_rows=%lld differences=%lld",
                         t.table.qualified, (long long)t.rows_source, (long long)t.rows_history,
                         (long long)t.differences);
        }
        reconcile_table_term(&t);
        if (st == WR_OK) st = fanout_flush(f, FANOUT_FLUSH_WANTING, mono_now_us(), err);
    }
    if (st == WR_OK) st = assembler_baseline_commit(a, err);
    if (st == WR_OK) st = fanout_flush(f, FANOUT_FLUSH_ALL, mono_now_us(), err);
    bool reached = false;
    if (st == WR_OK) st = fanout_wait_durable(f, cp, 60000, &reached, err);
    if (st == WR_OK && !reached)
        st = wr_error_set(err, WR_RETRY, "gap: a sink did not confirm the gap revision within 60 s");
    if (st == WR_OK) {
        *consistent_point = cp;
        log_error("msg=\"gap revision recorded\" revision=%lld kind=%s from_lsn=" LSN_FMT " to_lsn=" LSN_FMT
                  " tables=%d inserts=%lld updates=%lld deletes=%lld truncates=%lld",
                  (long long)assembler_last_revision_id(a), g->kind, LSN_ARGS(g->history_lsn), LSN_ARGS(cp), tables,
                  (long long)gap.inserts, (long long)gap.updates, (long long)gap.deletes, (long long)gap.truncates);
    }
done:
    free(ctx);
    PQclear(list);
    relcache_destroy(rc);
    free(schema_q);
    PQfinish(src);
    PQfinish(hist);
    repl_stream_destroy(repl);
    return st;
}
