/*
 * slot.c — setup's replication slot (with a baseline through the worker's
 * hook, or without one: the published tables marked skipped) and the report
 * of published tables whose replica identity gives no old values.
 */
#include "setup/steps.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/stream.h"

/* ---- the slot ---- */

/*
 * Create the logical slot without a baseline. With one, the slot is created
 * by the create_slot hook (pipeline_create_slot), whose exported snapshot the
 * baseline reads. Both go through the replication protocol, where the wait
 * for the transactions open now is bounded (stream.h).
 */
static bool create_slot(Setup *s, Lsn *consistent_point)
{
    WrError err = {0};
    ReplStream *repl = NULL;
    bool exists = false;
    WrStatus st = repl_stream_connect(s->cfg->source_conninfo, &repl, &err);
    if (st == WR_OK)
        st = repl_stream_create_slot(repl, s->cfg->slot_name, false, consistent_point, NULL, 0, &exists, &err);
    repl_stream_destroy(repl);
    if (st == WR_OK && exists)
        wr_error_set(&err, st = WR_FATAL, "replication slot %s appeared meanwhile", s->cfg->slot_name);
    if (st == WR_OK) return true;
    s->problems++;
    fprintf(stderr, "error: creating the replication slot: %s\n", err.msg);
    return false;
}

/*
 * Without a baseline the tables published now are marked 'skipped' in the
 * history's backfill table, so the worker does not take their baselines
 * after all; a table added to the publication later still gets its own.
 */
static bool record_skipped_baselines(Setup *s)
{
    if (!s->cfg->history_enabled) return true;
    const char *p[] = {s->cfg->publication, s->cfg->history_schema};
    PGresult *res = setup_run(s, s->src, "listing the published tables",
                              "SELECT c.oid::text, n.nspname, c.relname FROM pg_publication_tables pt"
                              " JOIN pg_namespace n ON n.nspname = pt.schemaname"
                              " JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"
                              " WHERE pt.pubname = $1 AND NOT (pt.schemaname = $2 AND pt.tablename = 'ddl_capture')"
                              " AND c.relkind <> 'f'",
                              2, p);
    if (!res) return false;
    char *schema = setup_ident(s->hist, s->cfg->history_schema);
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "INSERT INTO %s.backfill (relid, nspname, relname, state, finished_at)"
                   " VALUES ($1, $2, $3, 'skipped', now()) ON CONFLICT (relid) DO NOTHING",
                   schema);
    bool ok = true;
    for (int i = 0; i < PQntuples(res) && ok; i++) {
        const char *v[] = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)};
        PGresult *r = setup_run(s, s->hist, "recording that the published tables have no baseline", sql.data, 3, v);
        ok = r != NULL;
        PQclear(r);
    }
    if (ok && PQntuples(res) > 0)
        setup_say("info", "%d table(s) without a baseline (--no-baseline); tables added later get one", PQntuples(res));
    strbuf_free(&sql);
    free(schema);
    PQclear(res);
    return ok;
}

bool setup_ensure_slot(Setup *s)
{
    if (s->opts->create_slot && !s->opts->no_baseline) {
        /* Also when the slot exists: a slot without a stored baseline is the
         * mark of an interrupted one, which the pipeline takes again. */
        bool created = false;
        if (s->opts->create_slot(s->opts->create_slot_arg, true, &created) != 0) {
            s->problems++;
            fprintf(stderr, "error: creating the slot %s and its baseline failed (see the log above)\n",
                    s->cfg->slot_name);
            return false;
        }
        if (created) {
            setup_say("created", "replication slot %s with a baseline of the existing rows", s->cfg->slot_name);
            s->changes++;
        }
        return true;
    }
    /* --no-baseline with a slot made beforehand (a fresh store on an old
     * slot): the tables published now still have no baseline to take. */
    if (s->slot_exists) return record_skipped_baselines(s);
    Lsn at = 0;
    if (!create_slot(s, &at)) return false;
    setup_say("created", "replication slot %s (pgoutput) at " LSN_FMT, s->cfg->slot_name, LSN_ARGS(at));
    s->changes++;
    return record_skipped_baselines(s);
}

/* ---- replica identity report ---- */

bool setup_report_replica_identity(Setup *s)
{
    /* walrev's own table log and DDL capture are published too; they are no tables of the user's */
    const char *p[] = {s->cfg->publication, s->cfg->history_schema};
    PGresult *res =
        setup_run(s, s->src, "reading the published tables' replica identity",
                  "SELECT format('%I.%I', n.nspname, c.relname), c.relreplident,"
                  " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND"
                  " i.indisprimary), pg_has_role(c.relowner, 'USAGE')"
                  " FROM pg_publication_tables t"
                  " JOIN pg_namespace n ON n.nspname = t.schemaname"
                  " JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename"
                  " WHERE t.pubname = $1 AND NOT (t.schemaname = $2 AND t.tablename IN " SETUP_OWN_TABLES_SQL ")"
                  " AND c.relkind <> 'f' ORDER BY 1",
                  2, p);
    if (!res) return false;
    int not_full = 0, broken = 0, altered = 0;
    bool ok = true;
    for (int i = 0; i < PQntuples(res) && ok; i++) {
        const char *name = PQgetvalue(res, i, 0);
        char ri = PQgetvalue(res, i, 1)[0];
        bool has_pk = PQgetvalue(res, i, 2)[0] == 't';
        if (ri == 'f') continue;
        if (s->opts->replica_identity_full) {
            char sql[512];
            snprintf(sql, sizeof(sql), "ALTER TABLE %s REPLICA IDENTITY FULL", name);
            ok = setup_exec(s, s->src, "setting REPLICA IDENTITY FULL", sql);
            if (ok) {
                setup_say("changed", "%s: REPLICA IDENTITY FULL", name);
                altered++;
            }
            continue;
        }
        not_full++;
        if (ri == 'n' || (ri == 'd' && !has_pk)) {
            setup_warn(s,
                       "%s has %s and no primary key: UPDATE and DELETE on it fail on the source once "
                       "it is published; add a primary key or run ALTER TABLE %s REPLICA IDENTITY FULL "
                       "(or walrev setup --replica-identity-full)",
                       name, ri == 'n' ? "REPLICA IDENTITY NOTHING" : "REPLICA IDENTITY DEFAULT", name);
            broken++;
        }
    }
    if (altered) s->changes++;
    if (not_full > broken)
        setup_say("info",
                  "%d published table(s) use a key (primary key or replica identity index), not FULL; walrev does not "
                  "need FULL (old values come from the history store)",
                  not_full - broken);
    setup_say("ok", "%d table(s) published", PQntuples(res));
    PQclear(res);
    return ok;
}
