/*
 * initial.c — the baseline taken when `walrev setup` creates the slot
 * (baseline.h): every published table read in the slot's exported snapshot
 * and recorded as one revision of snapshot rows at its consistent point. It
 * must not return success before every sink holds that revision: setup exits
 * next and the stream starts after it.
 */
#include "baseline/baseline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "pgio/pgio.h"
#include "schema/store_sql.h"

typedef struct {
    int64_t rows;
    int64_t estimate;
    int64_t started_us;
    int64_t last_us;
    bool tty;
} Progress;

static void progress_show(Progress *pr, bool final)
{
    int64_t t = mono_now_us();
    if (!final && t - pr->last_us < (pr->tty ? 200000 : 10000000)) return;
    pr->last_us = t;
    double secs = (double)(t - pr->started_us) / 1e6;
    double rate = secs > 0 ? (double)pr->rows / secs : 0;
    char eta[32] = "?";
    if (pr->estimate > pr->rows && rate > 0)
        snprintf(eta, sizeof(eta), "%.0fs", (double)(pr->estimate - pr->rows) / rate);
    if (pr->tty) {
        fprintf(stderr, "\rbaseline: %lld of ~%lld rows, %.0f rows/s, eta %s   %s", (long long)pr->rows,
                (long long)pr->estimate, rate, final ? "0s" : eta, final ? "\n" : "");
        fflush(stderr);
    } else {
        log_info("msg=\"baseline progress\" rows=%lld estimate=%lld rate=%.0f eta=%s", (long long)pr->rows,
                 (long long)pr->estimate, rate, final ? "0s" : eta);
    }
}

static WrStatus sql_ok(PGconn *c, PGresult *r, ExecStatusType want, const char *what, WrError *err)
{
    if (PQresultStatus(r) == want) return WR_OK;
    return pgio_fail(c, r, err, "%s", what);
}

/* One table: describe it as pgoutput would, then COPY its rows in the snapshot. */
static WrStatus baseline_table(Assembler *a, Fanout *fan, PGconn *c, const char *oid, Progress *pr, WrError *err)
{
    BackfillTable t;
    bool found = false;
    WrStatus st = backfill_table_describe(c, (uint32_t)strtoul(oid, NULL, 10), &t, &found, err);
    if (st != WR_OK) return wr_error_prefix(err, "baseline");
    if (!found) return WR_OK;
    int n = t.ncols;
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "COPY (SELECT %s FROM ONLY %s", t.select_list, t.qualified);
    if (t.rowfilter) strbuf_appendf(&sql, " WHERE %s", t.rowfilter);
    strbuf_append_str(&sql, ") TO STDOUT");
    const RelationVersion *rv = NULL;
    int64_t rows_before = pr->rows;
    relcache_set_generated(assembler_relcache(a), (uint32_t)strtoul(oid, NULL, 10), t.ngen, t.gen);
    backfill_table_name_types(&t, assembler_relcache(a));
    st = assembler_baseline_relation(a, (uint32_t)strtoul(oid, NULL, 10), t.nspname, t.relname, t.replident,
                                     (uint16_t)n, t.cols, t.attnums, &rv, err);
    if (st != WR_OK) goto out;
    log_info("msg=\"baseline table\" table=%s.%s", rv->nspname, rv->relname);

    PGresult *cr;
    (void)pgio_exec(c, sql.data, 0, NULL, &cr); /* sql_ok wants COPY OUT exactly */
    st = sql_ok(c, cr, PGRES_COPY_OUT, "baseline: COPY", err);
    PQclear(cr);
    if (st != WR_OK) goto out;
    Value *vals = xcalloc((size_t)n, sizeof(Value));
    char *row;
    int len;
    while ((len = PQgetCopyData(c, &row, 0)) > 0) {
        /* one row, tab-separated, newline-terminated; \N is NULL */
        int col = 0;
        char *f = row, *end = row + len - 1;
        for (char *q = row; q <= end && col < n; q++) {
            if (q == end || *q == '\t') {
                size_t flen = (size_t)(q - f);
                if (flen == 2 && f[0] == '\\' && f[1] == 'N') {
                    vals[col].data = NULL;
                    vals[col].len = 0;
                } else {
                    vals[col].data = f;
                    vals[col].len = copy_text_unescape(f, flen);
                }
                col++;
                f = q + 1;
            }
        }
        if (col != n) {
            PQfreemem(row);
            free(vals);
            st = wr_error_set(err, WR_PROTOCOL, "baseline: COPY row of %s.%s has %d fields, expected %d", rv->nspname,
                              rv->relname, col, n);
            goto out;
        }
        st = assembler_baseline_row(a, rv, vals, err);
        PQfreemem(row);
        if (st != WR_OK) {
            free(vals);
            goto out;
        }
        pr->rows++;
        progress_show(pr, false);
        /* Bounded memory: let sinks send full buffers as the baseline streams. */
        fanout_mark_pending(fan);
    }
    free(vals);
    if (len == -2) {
        st = pgio_fail(c, NULL, err, "baseline: COPY");
        goto out;
    }
    cr = PQgetResult(c);
    st = sql_ok(c, cr, PGRES_COMMAND_OK, "baseline: COPY", err);
    PQclear(cr);
    while ((cr = PQgetResult(c))) PQclear(cr);
    if (st == WR_OK) {
        /* Recorded in the same revision: the worker never takes this table's baseline again. */
        BackfillProgress bp = {.relid = rv->relid,
                               .nspname = rv->nspname,
                               .relname = rv->relname,
                               .state = "done",
                               .rows_read = pr->rows - rows_before,
                               .rows_recorded = pr->rows - rows_before};
        st = fanout_progress(fan, &bp, assembler_in_revision(a), err);
    }
out:
    strbuf_free(&sql);
    backfill_table_free(&t);
    return st;
}

WrStatus baseline_take(const BaselineConfig *cfg, Assembler *a, Fanout *f, const char *snapshot, Lsn cp, WrError *err)
{
    PGconn *c = NULL;
    PGresult *r = NULL;
    PgioConnect how = {.what = "baseline: source", .app_name = "walrev-baseline"};
    WrStatus st = pgio_connect(cfg->source_conninfo, &how, &c, err);
    if (st != WR_OK) goto done;
    char *pub = PQescapeLiteral(c, cfg->publication, strlen(cfg->publication));
    char *snap = PQescapeLiteral(c, snapshot, strlen(snapshot));
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT %s; "
                   "SELECT set_config('walrev.publication', %s, true)",
                   snap, pub);
    PQfreemem(pub);
    PQfreemem(snap);
    st = pgio_run(c, sql.data, 0, NULL, NULL, err, "baseline: using the slot's snapshot");
    strbuf_free(&sql);
    if (st != WR_OK) goto done;
    /* walrev's DDL capture table (in the history schema's name) is never history, and neither is a
     * foreign partition, which PostgreSQL 15 lists there although no change of it reaches the slot
     * (table_log.sql logs it 'unlogged'; replay names it). */
    const char *ctl[1] = {cfg->history_schema};
    st = pgio_run(c,
                  "SELECT c.oid, greatest(c.reltuples, 0)::bigint FROM pg_publication_tables pt "
                  "JOIN pg_namespace n ON n.nspname = pt.schemaname "
                  "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                  "WHERE pt.pubname = current_setting('walrev.publication') AND NOT (pt.schemaname = $1 AND "
                  "pt.tablename = 'ddl_capture') AND c.relkind <> 'f' "
                  "ORDER BY pt.schemaname, pt.tablename",
                  1, ctl, &r, err, "baseline: listing published tables");
    if (st != WR_OK) goto done;

    Progress pr = {.started_us = mono_now_us(), .tty = isatty(2) != 0};
    for (int i = 0; i < PQntuples(r); i++) pr.estimate += atoll(PQgetvalue(r, i, 1));
    char ctx[160];
    snprintf(ctx, sizeof(ctx),
             "{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"},\"description\":\"baseline of existing rows\"}");
    st = assembler_baseline_begin(a, cp, pg_now_us(), ctx, err);
    for (int i = 0; st == WR_OK && i < PQntuples(r); i++) {
        st = baseline_table(a, f, c, PQgetvalue(r, i, 0), &pr, err);
        if (st == WR_OK) st = fanout_flush(f, FANOUT_FLUSH_WANTING, mono_now_us(), err);
    }
    if (st == WR_OK) st = assembler_baseline_commit(a, err);
    if (st == WR_OK) st = fanout_flush(f, FANOUT_FLUSH_ALL, mono_now_us(), err);
    /* setup exits next: wait until every sink holds the baseline (Kafka
     * confirms through delivery reports), or fail rather than claim it. */
    bool reached = false;
    if (st == WR_OK) st = fanout_wait_durable(f, cp, 60000, &reached, err);
    if (st == WR_OK && !reached) st = wr_error_set(err, WR_RETRY, "baseline: a sink did not confirm it within 60 s");
    if (st == WR_OK) {
        progress_show(&pr, true);
        log_info("msg=\"baseline recorded\" rows=%lld tables=%d lsn=" LSN_FMT, (long long)pr.rows, PQntuples(r),
                 LSN_ARGS(cp));
    }
done:
    PQclear(r);
    PQfinish(c);
    return st;
}

WrStatus baseline_drop_slot(const char *source_conninfo, const char *slot_name, WrError *err)
{
    PGconn *c = NULL;
    PgioConnect how = {.what = "source", .app_name = "walrev"};
    WrStatus st = pgio_connect(source_conninfo, &how, &c, err);
    if (st == WR_OK) {
        const char *params[1] = {slot_name};
        st = pgio_run(c, "SELECT pg_drop_replication_slot($1)", 1, params, NULL, err,
                      "dropping the slot of an interrupted baseline");
    }
    PQfinish(c);
    return st;
}

WrStatus baseline_primary_key(PGconn *c, uint32_t relid, uint16_t ncols, const char *const *names, bool *is_key,
                              bool *found, WrError *err)
{
    *found = false;
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[1] = {oid};
    PGresult *r;
    WrStatus st = pgio_run(c,
                           "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                           "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = $1::oid AND i.indisprimary",
                           1, params, &r, err, "source catalog: reading a primary key");
    if (st != WR_OK) return wr_error_prefix(err, "relation %u", relid);
    int matched = 0;
    for (int i = 0; i < PQntuples(r); i++)
        for (uint16_t k = 0; k < ncols; k++)
            if (strcmp(names[k], PQgetvalue(r, i, 0)) == 0) {
                is_key[k] = true;
                matched++;
            }
    /* Only a primary key whose columns are all published can identify rows. */
    *found = PQntuples(r) > 0 && matched == PQntuples(r);
    PQclear(r);
    return WR_OK;
}

WrStatus baseline_check_leave_note(PGconn *c, const BaselineConfig *cfg, bool at_start, WrError *err)
{
    const char *params[1] = {cfg->publication};
    PGresult *r;
    WrStatus st =
        pgio_run(c,
                 "SELECT p.puballtables, coalesce((SELECT e.evtenabled::text FROM pg_catalog.pg_event_trigger e "
                 "WHERE e.evtname = 'walrev_note_published'), '') FROM pg_catalog.pg_publication p "
                 "WHERE p.pubname = $1",
                 1, params, &r, err, "source catalog: reading the table log's publication trigger");
    if (st != WR_OK) return st;
    const char *state = NULL;
    if (PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] != 't') {
        const char *e = PQgetvalue(r, 0, 1);
        state = !*e ? "not installed" : *e == 'D' ? "disabled" : *e == 'R' ? "enabled only for replicas" : NULL;
    }
    PQclear(r);
    if (!state) return WR_OK;
    if (cfg->allow_unrecorded_leaves) {
        if (at_start)
            log_warn("msg=\"a table that leaves the publication is not recorded (the table log's trigger "
                     "walrev_note_published is %s): snapshot, diff and blame would answer its rows as of its leave; "
                     "allowed by [source] allow_unrecorded_leaves\" publication=%s",
                     state, cfg->publication);
        return WR_OK;
    }
    return wr_error_set(err, WR_FATAL,
                        "publication %s: a table that leaves it would not be recorded, the table log's trigger "
                        "walrev_note_published is %s (walrev setup not run as a superuser, or dropped or disabled "
                        "since), and snapshot, diff and blame would answer its rows as of its leave at every later "
                        "point, silently; run walrev setup once as a superuser (it installs the trigger), or accept "
                        "that with [source] allow_unrecorded_leaves = true",
                        cfg->publication, state);
}

WrStatus baseline_is_partitioned(PGconn *c, const char *control_schema, uint32_t relid, bool *partitioned, WrError *err)
{
    *partitioned = false;
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[2] = {oid, control_schema};
    PGresult *r;
    /* the table log only where it exists (a superuser's setup made it) */
    WrStatus st = pgio_run(c,
                           "SELECT c.relkind::text, to_regclass(format('%I.table_log', $2::text)) IS NOT NULL "
                           "FROM (SELECT 1) o LEFT JOIN pg_catalog.pg_class c ON c.oid = $1::oid",
                           2, params, &r, err, "source catalog: reading a relation's kind");
    if (st != WR_OK) return wr_error_prefix(err, "relation %u", relid);
    bool gone = PQgetisnull(r, 0, 0), logged = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    *partitioned = !gone && strcmp(PQgetvalue(r, 0, 0), "p") == 0;
    PQclear(r);
    if (!gone || !logged) return WR_OK;
    char *schema = store_quote_ident(control_schema);
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "SELECT l.relkind FROM %s.table_log l WHERE l.relid = $1::oid ORDER BY l.id DESC LIMIT 1",
                   schema);
    free(schema);
    st = pgio_run(c, sql.data, 1, params, &r, err, "source catalog: reading a dropped relation's kind");
    strbuf_free(&sql);
    if (st != WR_OK) return wr_error_prefix(err, "relation %u", relid);
    *partitioned = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "p") == 0;
    PQclear(r);
    return WR_OK;
}
