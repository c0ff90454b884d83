/*
 * history_partition.c — the history sink keeps partitions of the store
 * (format 6: revision, revision_context and object_delta by revision range,
 * docs/history-store.md#partitions) ahead of the ids it writes. Outside a
 * batch, when its ids enter the last partition, it asks partition_ensure()
 * for the next one in a short transaction of its own with a lock timeout
 * (making a partition locks the parent tables; a reader holding them must
 * not stall the stream: it is asked again at the next batch). Only a batch
 * that outruns a whole partition makes one inside the batch, where it must.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "pgio/pgio.h"
#include "sink/history_session.h"

/* The statement both paths run: partition_ensure(revision id) and the
 * store's partition size. The caller frees it. */
static char *ensure_sql(const HistorySink *h, int64_t id)
{
    return xasprintf("SELECT %s.partition_ensure(%" PRId64 "::bigint), (SELECT value::bigint FROM %s.store_info "
                     "WHERE key = 'partition_revisions')",
                     h->qschema, id, h->qschema);
}

/* Its answer: the first revision id no partition holds yet, and the size. */
static void read_bounds(const PGresult *res, int64_t *until, int64_t *step)
{
    *until = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *step = PQgetisnull(res, 0, 1) ? 1000000 : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
}

/* partition_ensure(id) inside the current transaction (or autocommit); updates part_until/part_step. */
static WrStatus ensure_now(HistorySink *h, int64_t id, WrError *err)
{
    char *sql = ensure_sql(h, id);
    PGresult *res = NULL;
    WrStatus st = hsession_run(h, sql, 0, NULL, "making the history store's next partition", &res, err);
    free(sql);
    if (st != WR_OK) return st;
    read_bounds(res, &h->part_until, &h->part_step);
    PQclear(res);
    return WR_OK;
}

static bool run_simple(PGconn *c, const char *sql)
{
    PGresult *res = NULL;
    bool ok = pgio_exec(c, sql, 0, NULL, &res);
    PQclear(res);
    return ok;
}

/* The same in a transaction of its own that gives up after lock_timeout; false when it gave up. */
static bool ensure_outside_batch(HistorySink *h, int64_t id)
{
    if (!run_simple(h->conn, "BEGIN; SET LOCAL lock_timeout = '2s'")) return false;
    char *sql = ensure_sql(h, id);
    PGresult *res = NULL;
    bool ok = pgio_exec(h->conn, sql, 0, NULL, &res);
    free(sql);
    if (ok) {
        int64_t until, step;
        read_bounds(res, &until, &step);
        PQclear(res);
        ok = run_simple(h->conn, "COMMIT");
        if (ok) {
            if (until > h->part_until && h->part_until > 0)
                log_info("msg=\"history partition made\" schema=%s revisions_until=%" PRId64, h->qschema, until);
            h->part_until = until;
            h->part_step = step;
        }
        return ok;
    }
    char line[512];
    const char *state = NULL;
    pgio_error_text(h->conn, res, line, sizeof(line), &state);
    PQclear(res);
    run_simple(h->conn, "ROLLBACK");
    log_warn("msg=\"history partition not made yet; asked again at the next batch\" schema=%s sqlstate=%s "
             "error=\"%s\"",
             h->qschema, state ? state : "none", line);
    return false;
}

WrStatus hpart_before_revision(HistorySink *h, int64_t id, WrError *err)
{
    if (!h->in_tx && (h->part_until == 0 || id + h->part_step >= h->part_until)) {
        WrStatus st = hsession_await_copy(h, err);
        if (st != WR_OK) return st;
        if (ensure_outside_batch(h, id)) return WR_OK;
        if (PQstatus(h->conn) != CONNECTION_OK)
            return wr_error_set(err, WR_RETRY, "history store: connection lost while making a partition");
    }
    if (id >= h->part_until) return ensure_now(h, id, err);
    return WR_OK;
}
