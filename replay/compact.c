/*
 * compact.c — `walrev compact` and `walrev run`'s compaction ([history]
 * compact_interval, docs/history-store.md#compaction): the B-tree indexes of
 * the history partitions no longer written are rebuilt at fillfactor 100.
 * Deltas reach the per-object index in random key order, so its leaves split
 * half full and stay ~69% full (63 B per delta where a dense build is 45 B,
 * bench/issue16-cost.md, session 12); a partition whose revision range lies
 * below the newest revision gets no more inserts, so its indexes can be full.
 * It must never change what an index holds, nor block the stream or a reader:
 * REINDEX CONCURRENTLY on a connection of its own, one index at a time, each
 * rebuilt index marked by its fillfactor so it is done once.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "pgio/pgio.h"
#include "replay/history_job.h"
#include "replay/internal.h"

/* Rebuilt indexes are marked by this reloption (and built with it). */
#define FULL_FILLFACTOR "fillfactor=100"
/*
 * A lock the rebuild waits for longer than this (a long reader's snapshot,
 * another DDL) gives the index up until the next round: REINDEX CONCURRENTLY
 * waits for every older transaction, and the round must not hold its
 * connection and slot of the server for as long as a reader lasts.
 */
#define COMPACT_LOCK_TIMEOUT "SET lock_timeout = '10s'"

/*
 * The B-tree indexes of the partitions whose whole range lies at or below the
 * newest revision (ids are dense and written in order: nothing enters them
 * again), not rebuilt yet; oldest partition first. BRIN indexes are left as
 * they are: a rebuild would not make them smaller.
 */
#define CANDIDATES_SQL                                                                       \
    "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), " \
    "       pg_catalog.pg_relation_size(c.oid) "                                             \
    "FROM %1$s.history_partitions() p "                                                      \
    "JOIN pg_catalog.pg_index i ON i.indrelid = p.part "                                     \
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "                                    \
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "                              \
    "JOIN pg_catalog.pg_am a ON a.oid = c.relam "                                            \
    "WHERE a.amname = 'btree' AND i.indisvalid "                                             \
    "  AND p.hi <= (SELECT coalesce(max(r.id), 0) + 1 FROM %1$s.revision r) "                \
    "  AND NOT coalesce('" FULL_FILLFACTOR "' = ANY (c.reloptions), false) "                 \
    "ORDER BY p.lo, p.tbl, c.relname"

/* What a REINDEX CONCURRENTLY that failed or was cancelled leaves: an invalid
 * copy (<index>_ccnew, or _ccold after the swap) on the partition. */
#define LEFTOVERS_SQL                                                                       \
    "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) " \
    "FROM %1$s.history_partitions() p "                                                     \
    "JOIN pg_catalog.pg_index i ON i.indrelid = p.part "                                    \
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "                                   \
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "                             \
    "WHERE NOT i.indisvalid AND c.relname ~ '_cc(new|old)[0-9]*$'"

/* One compactor per store at a time: the round holds this session lock. */
#define TRY_LOCK_SQL "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('walrev compact ' || $1))"

/*
 * Run sql to its end, cancelling it once *stop turns non-zero (NULL: never).
 * The connection stays usable either way; a cancelled statement is an error.
 */
static WrStatus run_stoppable(PGconn *conn, const char *sql, const atomic_int *stop, WrError *err)
{
    if (!PQsendQuery(conn, sql)) {
        rq_server_error(err, conn, NULL);
        return err->status;
    }
    bool cancelled = false;
    while (PQisBusy(conn)) {
        if (stop && atomic_load(stop) && !cancelled) {
            PGcancel *c = PQgetCancel(conn);
            char ignored[256];
            if (c) (void)PQcancel(c, ignored, sizeof(ignored)); /* best effort: else it runs to its end */
            PQfreeCancel(c);
            cancelled = true;
        }
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (poll(&pfd, 1, 200) < 0 && errno != EINTR)
            return wr_error_set(err, WR_RETRY, "history store: waiting for %s: %s", sql, strerror(errno));
        if (!PQconsumeInput(conn)) break;
    }
    WrStatus st = WR_OK;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        if (st == WR_OK && PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
            rq_server_error(err, conn, res);
            st = err->status;
        }
        PQclear(res);
    }
    if (st == WR_OK && PQstatus(conn) != CONNECTION_OK)
        st = wr_error_set(err, WR_RETRY, "history store: connection lost during %s", sql);
    return st;
}

/* Drop what failed rebuilds left; failures here are the next round's. */
static void drop_leftovers(PGconn *conn, const char *schema_q, const atomic_int *stop)
{
    WrError err = {0};
    PGresult *res = rq_execf(conn, &err, LEFTOVERS_SQL, schema_q);
    for (int i = 0; res && i < PQntuples(res); i++) {
        char *sql = xasprintf("DROP INDEX CONCURRENTLY IF EXISTS %s", PQgetvalue(res, i, 0));
        if (run_stoppable(conn, sql, stop, &err) == WR_OK)
            log_info("msg=\"dropped an unfinished index rebuild\" index=%s", PQgetvalue(res, i, 0));
        else
            log_warn("msg=\"could not drop an unfinished index rebuild\" index=%s error=\"%s\"", PQgetvalue(res, i, 0),
                     err.msg);
        free(sql);
    }
    PQclear(res);
}

/* Rebuild one index at fillfactor 100; on failure its mark is taken off so a
 * later round tries again, and what the failed rebuild left is dropped. */
static WrStatus compact_index(PGconn *conn, const char *schema_q, const char *index, const atomic_int *stop,
                              WrError *err)
{
    char *sql = xasprintf("ALTER INDEX %s SET (" FULL_FILLFACTOR ")", index);
    WrStatus st = rq_run(conn, err, sql, 0, NULL);
    free(sql);
    if (st != WR_OK) return st;
    sql = xasprintf("REINDEX INDEX CONCURRENTLY %s", index);
    st = run_stoppable(conn, sql, stop, err);
    free(sql);
    if (st != WR_OK) {
        WrError ignored = {0};
        sql = xasprintf("ALTER INDEX %s RESET (fillfactor)", index);
        if (rq_run(conn, &ignored, sql, 0, NULL) != WR_OK)
            log_warn("msg=\"index left marked as rebuilt\" index=%s error=\"%s\"", index, ignored.msg);
        free(sql);
        drop_leftovers(conn, schema_q, NULL);
    }
    return st;
}

WrStatus rq_compact(PGconn *conn, const char *schema_q, const char *schema, const atomic_int *stop, FILE *report,
                    CompactResult *out, WrError *err)
{
    memset(out, 0, sizeof(*out));
    const char *p[1] = {schema};
    PGresult *res = rq_exec(conn, err, TRY_LOCK_SQL, 1, p);
    if (!res) return err->status;
    out->busy = strcmp(PQgetvalue(res, 0, 0), "t") != 0;
    PQclear(res);
    if (out->busy) return WR_OK;
    WrStatus st = rq_run(conn, err, COMPACT_LOCK_TIMEOUT, 0, NULL);
    if (st == WR_OK) drop_leftovers(conn, schema_q, stop);
    res = st == WR_OK ? rq_execf(conn, err, CANDIDATES_SQL, schema_q) : NULL;
    if (!res) st = err->status;
    for (int i = 0; res && i < PQntuples(res) && st == WR_OK; i++) {
        if (stop && atomic_load(stop)) break;
        const char *index = PQgetvalue(res, i, 0);
        long long before = atoll(PQgetvalue(res, i, 1));
        st = compact_index(conn, schema_q, index, stop, err);
        if (st != WR_OK) break;
        const char *ip[1] = {index};
        PGresult *size = rq_exec(conn, err, "SELECT pg_catalog.pg_relation_size($1::regclass)", 1, ip);
        if (!size) {
            st = err->status;
            break;
        }
        long long after = atoll(PQgetvalue(size, 0, 0));
        PQclear(size);
        out->indexes++;
        out->bytes_before += before;
        out->bytes_after += after;
        if (report)
            fprintf(report, "compacted %s: %lld -> %lld bytes\n", index, before, after);
        else
            log_info("msg=\"history index compacted\" index=%s bytes_before=%lld bytes_after=%lld", index, before,
                     after);
    }
    PQclear(res);
    WrError ignored = {0};
    PQclear(rq_exec(conn, &ignored,
                    "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('walrev compact ' || $1))", 1, p));
    return st;
}

/* ---- walrev compact ---- */

WrStatus cmd_compact(ReplayCtx *ctx, int argc, char **argv, WrError *err)
{
    if (argc > 1) return rq_usage(ctx, err, "compact: unexpected argument %s", argv[1]);
    PGconn *conn;
    WrStatus st = rq_connect(ctx->hist_conninfo, "history store", &conn, err);
    if (st != WR_OK) return st;
    CompactResult r = {0};
    st = rq_compact(conn, ctx->schema_q, ctx->opts->schema ? ctx->opts->schema : "walrev", NULL, ctx->out, &r, err);
    if (st == WR_OK && r.busy)
        st = wr_error_set(err, WR_RETRY, "another compaction of this history store is running; nothing done");
    PQfinish(conn);
    if (st != WR_OK) return st;
    if (r.indexes == 0)
        fprintf(ctx->out, "nothing to compact: every index of the partitions no longer written is rebuilt already\n");
    else
        fprintf(ctx->out, "compacted %d indexes of the partitions no longer written: %lld -> %lld bytes\n", r.indexes,
                r.bytes_before, r.bytes_after);
    return WR_OK;
}

/* ---- walrev run's compaction thread ---- */

static void round_once(PGconn *conn, const HistoryJobConfig *cfg, const char *schema_q, const atomic_int *stop)
{
    WrError err = {0};
    CompactResult r = {0};
    WrStatus st = rq_compact(conn, schema_q, cfg->schema, stop, NULL, &r, &err);
    if (st != WR_OK && !atomic_load(stop))
        log_warn("msg=\"history not compacted; tried again at the next round\" done=%d error=\"%s\"", r.indexes,
                 err.msg);
    else if (r.busy)
        log_debug("msg=\"history not compacted: another compaction is running\"");
    else if (r.indexes > 0)
        log_info("msg=\"history compacted\" indexes=%d bytes_before=%lld bytes_after=%lld", r.indexes, r.bytes_before,
                 r.bytes_after);
}

static const HistoryJobKind COMPACTION = {
    .name = "compaction",
    .not_done = "history not compacted",
    .not_started = "compaction thread not started: history indexes will not be compacted",
    .round = round_once};

HistoryJob *replay_compactor_start(const HistoryJobConfig *cfg)
{
    HistoryJob *job = history_job_start(&COMPACTION, cfg);
    if (job) log_debug("msg=\"compaction on\" interval_s=%d", cfg->interval_s);
    return job;
}
