/*
 * history_session.c — the history store's session as the writer and the
 * reader share it (history_session.h): errors and their classification, one
 * statement, the batch's transaction, the COPY in flight, the Bloom filter of
 * keys still in the unsent COPY buffer, and the queue of row-digest changes.
 * Nothing here decides what is written or read; nothing here logs.
 */
#include "sink/history_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/metrics.h"
#include "pgio/pgio.h"
#include "schema/rowcache.h"
#include "sink/copy_format.h"

/* ---------- errors ---------- */

/*
 * Classify a failed libpq call (pgio's SQLSTATE table) and fill err. Retry
 * (connection lost, shutdown, conflict) is WR_RETRY: the open transaction died
 * with it or must be rolled back; anything else is WR_FATAL with SQLSTATE and
 * the server's message. Either way the batch is unusable until abort().
 */
WrStatus hsession_fail(HistorySink *h, const PGresult *res, WrError *err, const char *what)
{
    const char *sqlstate;
    char msg[512];
    pgio_error_text(h->conn, res, msg, sizeof(msg), &sqlstate);
    WrStatus st = pgio_status(h->conn, sqlstate);
    bool lost = st == WR_RETRY;
    if (lost) {
        h->broken = true;
        h->in_tx = false;
        wr_error_set(err, st, "history store: connection lost during %s: %s%s%s", what, msg,
                     sqlstate ? " sqlstate=" : "", sqlstate ? sqlstate : "");
    } else {
        wr_error_set(err, st, "history store: %s failed: SQLSTATE %s: %s", what, sqlstate ? sqlstate : "none", msg);
    }
    if (err && sqlstate) snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
    /* A data error is remembered for the worker (sink_history_failure): it
     * commits the revisions again one by one, then quarantines the one that
     * fails again (history_quarantine.c). */
    h->data_failed = !lost && sqlstate && pgio_classify_sqlstate(sqlstate) == PGIO_DATA;
    if (h->data_failed) {
        snprintf(h->data_error, sizeof(h->data_error), "%.500s", err ? err->msg : msg);
        snprintf(h->data_sqlstate, sizeof(h->data_sqlstate), "%s", sqlstate);
    }
    h->failed = true;
    h->failed_status = st;
    return st;
}

WrStatus hsession_check_usable(HistorySink *h, WrError *err, const char *what)
{
    if (!h->conn) return wr_error_set(err, WR_FATAL, "history store: %s before open", what);
    if (h->broken)
        return wr_error_set(err, WR_RETRY, "history store: %s after the connection was lost; recreate the sink", what);
    if (h->failed)
        return wr_error_set(err, h->failed_status, "history store: %s after an earlier error; abort the batch first",
                            what);
    return WR_OK;
}

/* Run a command (optionally with text parameters); *out gets the result when wanted. */

WrStatus hsession_run(HistorySink *h, const char *sql, int nparams, const char *const *params, const char *what,
                      PGresult **out, WrError *err)
{
    WrStatus ast = hsession_await_copy(h, err);
    if (ast != WR_OK) return ast;
    PGresult *res;
    if (!pgio_exec(h->conn, sql, nparams, params, &res)) {
        WrStatus st = hsession_fail(h, res, err, what);
        PQclear(res);
        return st;
    }
    pgio_hand_result(res, out);
    return WR_OK;
}

/* The pipeline is left in a state nobody can continue: the session ends. */
static WrStatus pipeline_broken(HistorySink *h, WrError *err, const char *what, WrStatus st)
{
    if (st == WR_OK) st = hsession_fail(h, NULL, err, what);
    h->broken = true;
    h->in_tx = false;
    return st == WR_OK ? WR_RETRY : st;
}

WrStatus hsession_pipeline(HistorySink *h, HsessionStmt *s, int n, WrError *err)
{
    for (int i = 0; i < n; i++) {
        s[i].res = NULL;
        s[i].ok = false;
    }
    WrStatus st = hsession_await_copy(h, err);
    if (st != WR_OK || n == 0) return st;
    PGconn *c = h->conn;
    if (!PQenterPipelineMode(c)) return hsession_fail(h, NULL, err, s[0].what);
    for (int i = 0; i < n; i++)
        if (!(s[i].name ? PQsendQueryPrepared(c, s[i].name, s[i].nparams, s[i].params, NULL, NULL, 0)
                        : PQsendQueryParams(c, s[i].sql, s[i].nparams, NULL, s[i].params, NULL, NULL, 0)))
            return pipeline_broken(h, err, s[i].what, WR_OK);
    if (PQpipelineSync(c) != 1) return pipeline_broken(h, err, s[0].what, WR_OK);
    /* Each statement's results end with NULL; after a failure the server
     * skips the rest (PGRES_PIPELINE_ABORTED each) up to the sync. */
    for (int i = 0; i < n; i++) {
        PGresult *r;
        bool failed = st != WR_OK;
        while ((r = pgio_get_result(c)) != NULL) {
            if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) failed = true;
            ExecStatusType rs = PQresultStatus(r);
            if (rs == PGRES_FATAL_ERROR && st == WR_OK) st = hsession_fail(h, r, err, s[i].what);
            if (st == WR_OK && s[i].keep && !s[i].res && (rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK))
                s[i].res = r;
            else
                PQclear(r);
            if (PQstatus(c) == CONNECTION_BAD) break;
        }
        if (PQstatus(c) == CONNECTION_BAD) {
            st = pipeline_broken(h, err, s[i].what, st);
            goto out;
        }
        s[i].ok = !failed;
    }
    PGresult *sync = pgio_get_result(c);
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || !PQexitPipelineMode(c)) st = pipeline_broken(h, err, s[n - 1].what, st);
out:
    if (st != WR_OK)
        for (int i = 0; i < n; i++) {
            PQclear(s[i].res);
            s[i].res = NULL;
        }
    return st;
}

WrStatus hsession_prepare(HistorySink *h, const char *name, const char *sql, int nparams, WrError *err)
{
    WrStatus st = hsession_await_copy(h, err);
    if (st != WR_OK) return st;
    PGresult *res = PQprepare(h->conn, name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char what[128];
        snprintf(what, sizeof(what), "preparing %s", name);
        st = hsession_fail(h, res, err, what);
    }
    PQclear(res);
    return st;
}

WrStatus hsession_ensure_tx(HistorySink *h, WrError *err)
{
    if (h->in_tx) return WR_OK;
    /* Sent without waiting, its result read before the next statement as a
     * COPY's is (await_copy): the worker assembles the batch's first
     * revision meanwhile instead of blocking a round trip per batch. */
    WrStatus st = hsession_await_copy(h, err);
    if (st != WR_OK) return st;
    snprintf(h->copy_pending_what, sizeof(h->copy_pending_what), "BEGIN of a batch");
    if (!PQsendQuery(h->conn, "BEGIN")) return hsession_fail(h, NULL, err, h->copy_pending_what);
    h->copy_pending = true;
    h->in_tx = true;
    h->batch_timer_us = 0; /* started by the next wants_flush, on the caller's clock */
    h->batch_revisions = 0;
    return WR_OK;
}

/* ---------- COPY ---------- */

/* revision's and object_delta's rows are in COPY's binary format
 * (history_sink.c), which a header opens and a trailer ends. */
static bool copy_is_binary(int t) { return t == TB_DELTA || t == TB_REVISION; }

/* Put a binary COPY's header (or, trailer, its trailer) into the open COPY. */
static bool put_binary_frame(HistorySink *h, bool trailer)
{
    StrBuf f;
    strbuf_init(&f);
    if (trailer)
        copybin_trailer(&f);
    else
        copybin_header(&f);
    bool ok = pgio_copy_put(h->conn, f.data, f.len);
    strbuf_free(&f);
    return ok;
}

/* End the open COPY (its trailer, CopyDone); its result is read by the caller. */
static bool end_open_copy(HistorySink *h)
{
    int t = h->copy_open;
    h->copy_open = -1;
    bool ok = !copy_is_binary(t) || put_binary_frame(h, true);
    return ok && PQputCopyEnd(h->conn, NULL) == 1;
}

/* End the open COPY, if any, and read the result of the statement sent last. */
WrStatus hsession_await_copy(HistorySink *h, WrError *err)
{
    if (!h->copy_pending) return WR_OK;
    h->copy_pending = false;
    WrStatus st = WR_OK;
    bool reported = false;
    if (h->copy_open >= 0 && !end_open_copy(h)) {
        st = hsession_fail(h, NULL, err, h->copy_pending_what);
        reported = true;
    }
    PGresult *res;
    while ((res = pgio_get_result(h->conn)) != NULL) {
        if (!reported && PQresultStatus(res) != PGRES_COMMAND_OK) {
            st = hsession_fail(h, res, err, h->copy_pending_what);
            reported = true;
        }
        PQclear(res);
        if (PQstatus(h->conn) == CONNECTION_BAD) break;
    }
    if (!reported && PQstatus(h->conn) == CONNECTION_BAD) st = hsession_fail(h, NULL, err, h->copy_pending_what);
    return st;
}

/*
 * Send one table's buffer with COPY FROM STDIN; only one COPY may be active
 * at a time. A buffer of the table whose COPY is open goes on into it; the
 * COPY ends, and its result is read, before the next other statement
 * (await_copy), so the server works on the rows while the next ones are
 * assembled.
 */
WrStatus hsession_send_buffer(HistorySink *h, int t, WrError *err)
{
    StrBuf *b = &h->buf[t];
    if (b->len == 0) return WR_OK;
    bool ok = true;
    if (h->copy_open != t) {
        WrStatus st = hsession_await_copy(h, err);
        if (st != WR_OK) return st;
        snprintf(h->copy_pending_what, sizeof(h->copy_pending_what), "COPY into %s", h->table_name[t]);
        PGresult *res;
        (void)pgio_exec(h->conn, h->copy_sql[t], 0, NULL, &res);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            st = hsession_fail(h, res, err, h->copy_pending_what);
            PQclear(res);
            return st;
        }
        PQclear(res);
        h->copy_open = t;
        h->copy_pending = true;
        h->copy_statements++;
        if (copy_is_binary(t)) ok = put_binary_frame(h, false);
    }
    ok = ok && pgio_copy_put(h->conn, b->data, b->len);
    if (ok) {
        metrics_sink_add(METRICS_SINK_HISTORY, METRICS_SINK_BYTES, b->len);
        h->copy_chunks++;
    }
    strbuf_reset(b);
    if (t == TB_DELTA) hsession_clear_unsent(h);
    if (!ok) {
        h->copy_open = -1;
        h->copy_pending = false;
        return hsession_fail(h, NULL, err, h->copy_pending_what);
    }
    return WR_OK;
}

WrStatus hsession_send_all(HistorySink *h, WrError *err)
{
    static const int order[] = {TB_CONTEXT, TB_REVISION, TB_DELTA};
    WrStatus st = WR_OK;
    for (size_t i = 0; i < 3 && st == WR_OK; i++) st = hsession_send_buffer(h, order[i], err);
    return st;
}

void hsession_append_array_element(StrBuf *b, const char *v)
{
    strbuf_append_char(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') strbuf_append_char(b, '\\');
        strbuf_append_char(b, *v);
    }
    strbuf_append_char(b, '"');
}

void hsession_append_text_array(StrBuf *b, const char *const *v, int n)
{
    strbuf_append_char(b, '{');
    for (int i = 0; i < n; i++) {
        if (i) strbuf_append_char(b, ',');
        hsession_append_array_element(b, v[i]);
    }
    strbuf_append_char(b, '}');
}

/* ---------- the Bloom filter of unsent keys ---------- */

#define UNSENT_BLOOM_BITS ((size_t)1 << 20) /* 128 KiB: ~1% false positives at 100k keys */

/* Bloom bit k of a key: three bits by double hashing. */
static size_t bloom_bit(uint64_t x, int k) { return (size_t)((x + (uint64_t)k * ((x >> 32) | 1)) % UNSENT_BLOOM_BITS); }

void hsession_note_unsent(HistorySink *h, uint32_t relid, const char *key)
{
    if (!h->unsent_keys) h->unsent_keys = xcalloc(UNSENT_BLOOM_BITS / 8, 1);
    uint64_t x = rowcache_key_hash(relid, key, strlen(key));
    for (int k = 0; k < 3; k++) h->unsent_keys[bloom_bit(x, k) / 8] |= (uint8_t)(1u << (bloom_bit(x, k) % 8));
    h->unsent_keys_dirty = true;
}

bool hsession_maybe_unsent(const HistorySink *h, uint32_t relid, const char *key)
{
    if (!h->unsent_keys_dirty) return false;
    uint64_t x = rowcache_key_hash(relid, key, strlen(key));
    for (int k = 0; k < 3; k++)
        if (!(h->unsent_keys[bloom_bit(x, k) / 8] & (1u << (bloom_bit(x, k) % 8)))) return false;
    return true;
}

void hsession_clear_unsent(HistorySink *h)
{
    if (h->unsent_keys_dirty) memset(h->unsent_keys, 0, UNSENT_BLOOM_BITS / 8);
    h->unsent_keys_dirty = false;
}

/* ---------- row digests (docs/history-store.md, "Rows without a key") ---------- */

bool hsession_rel_has_hidden(const RelationVersion *rv)
{
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (rv->cols[i].track == TRACK_HIDDEN) return true;
    return false;
}

bool hsession_rel_marked(const HistorySink *h, uint32_t relid)
{
    for (size_t i = 0; i < h->nmarked; i++)
        if (h->marked[i] == relid) return true;
    return false;
}

void hsession_rel_mark(HistorySink *h, uint32_t relid)
{
    if (hsession_rel_marked(h, relid)) return;
    if (h->nmarked == h->capmarked) {
        h->capmarked = h->capmarked ? 2 * h->capmarked : 8;
        h->marked = xrealloc(h->marked, h->capmarked * sizeof(uint32_t));
    }
    h->marked[h->nmarked++] = relid;
}

void hsession_dg_clear(HistorySink *h)
{
    for (int i = 0; i < 4; i++) strbuf_reset(&h->dg[i]);
    h->dg_n = 0;
}

/* Queue one row_digest change: key NULL ends the table's rows, col DG_END_ROW
 * the row's, digest NULL removes the entry, len 0 is the stale mark. */
void hsession_dg_queue(HistorySink *h, uint32_t relid, const char *key, int col, const uint8_t *digest, size_t len)
{
    /* Without printf: one queued entry per INSERT of a keyless row, and
     * "%02x" per byte was 3% of the worker's CPU under pgbench (issue 16). */
    static const char hex[] = "0123456789abcdef";
    const char *sep = h->dg_n ? "," : "";
    strbuf_append_str(&h->dg[0], sep);
    copy_append_int(&h->dg[0], relid);
    strbuf_append_str(&h->dg[1], sep);
    if (key)
        hsession_append_array_element(&h->dg[1], key);
    else
        strbuf_append_str(&h->dg[1], "NULL");
    strbuf_append_str(&h->dg[2], sep);
    copy_append_int(&h->dg[2], col);
    strbuf_append_str(&h->dg[3], sep);
    if (!digest) {
        strbuf_append_str(&h->dg[3], "NULL");
    } else {
        strbuf_reserve(&h->dg[3], 2 * len + 2);
        strbuf_append_char(&h->dg[3], '"');
        for (size_t i = 0; i < len; i++) {
            strbuf_append_char(&h->dg[3], hex[digest[i] >> 4]);
            strbuf_append_char(&h->dg[3], hex[digest[i] & 15]);
        }
        strbuf_append_char(&h->dg[3], '"');
    }
    h->dg_n++;
}

WrStatus hsession_dg_prepare(HistorySink *h, WrError *err)
{
    char *sql = xasprintf("SELECT %s.row_digest_apply($1::oid[], $2::text[], $3::smallint[], $4::text[])", h->qschema);
    WrStatus st = hsession_prepare(h, HSESSION_DG_STMT, sql, 4, err);
    free(sql);
    return st;
}

void hsession_dg_statement(const HistorySink *h, HsessionDgStmt *d, HsessionStmt *out)
{
    for (int i = 0; i < 4; i++) {
        strbuf_init(&d->arr[i]);
        strbuf_append_char(&d->arr[i], '{');
        if (h->dg[i].data) strbuf_append(&d->arr[i], h->dg[i].data, h->dg[i].len);
        strbuf_append_char(&d->arr[i], '}');
        d->params[i] = d->arr[i].data;
    }
    snprintf(d->what, sizeof(d->what), "writing %d row digests to %s.row_digest", h->dg_n, h->qschema);
    *out = (HsessionStmt){.name = HSESSION_DG_STMT, .nparams = 4, .params = d->params, .what = d->what};
}

void hsession_dg_statement_free(HsessionDgStmt *d)
{
    for (int i = 0; i < 4; i++) strbuf_free(&d->arr[i]);
}

/* Apply the queued changes in the open batch (before any read of row_digest). */
WrStatus hsession_dg_apply(HistorySink *h, WrError *err)
{
    if (!h->dg_n) return WR_OK;
    WrStatus st = hsession_ensure_tx(h, err);
    if (st != WR_OK) return st;
    HsessionDgStmt d;
    HsessionStmt s;
    hsession_dg_statement(h, &d, &s);
    st = hsession_pipeline(h, &s, 1, err);
    hsession_dg_statement_free(&d);
    hsession_dg_clear(h);
    return st;
}
