/*
 * history_quarantine.c — the history store's last line against data it
 * cannot store (docs/history-store.md#quarantine). Contexts are sanitised
 * before they reach the store, so no known input fails; this is defence in
 * depth. When a batch fails with a data error (pgio: SQLSTATE class 22 or
 * 54), the worker starts again and commits the revisions it held one per
 * batch (sink_history_isolate); the one that fails a second time alone is
 * named to the next session (sink_history_quarantine), which stores it as
 * the msgpack messages the file sink writes for it (bytea takes any bytes) in
 * walrev.quarantine, with its revision row flagged quarantined and carrying
 * its real checksum, so ids stay dense, the chain links through it and the
 * slot moves on only once it is durable. Contexts and deltas of that
 * revision are not written to their tables: replay does not see its changes.
 *
 * The spool is a temporary file: a quarantined transaction may be large, and
 * the worker's memory stays bounded.
 */
#include "sink/history_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/textsafe.h"
#include "pgio/pgio.h"
#include "schema/checksum.h"
#include "sink/copy_format.h"
#include "sink/msgpack_codec.h"

/* The longest text kept of the error and the revision's own text fields. */
#define QUARANTINE_TEXT_MAX 4096

static MpcRevision *mpc_of(HistorySink *h)
{
    if (!h->qmpc) h->qmpc = xcalloc(1, sizeof(MpcRevision));
    return h->qmpc;
}

void hquarantine_reset(HistorySink *h)
{
    if (h->qraw) fclose(h->qraw);
    h->qraw = NULL;
    h->quarantining = false;
    if (h->qmpc) {
        mpc_revision_free(h->qmpc);
        free(h->qmpc);
        h->qmpc = NULL;
    }
}

static void spool(HistorySink *h, StrBuf *b)
{
    if (h->qraw && b->len) (void)fwrite(b->data, 1, b->len, h->qraw);
    strbuf_reset(b);
}

WrStatus hquarantine_begin(HistorySink *h, const Revision *rev, WrError *err)
{
    h->cur_commit_lsn = rev->commit_lsn;
    h->cur_xid = rev->xid;
    if (!h->quarantine_lsn || rev->commit_lsn != h->quarantine_lsn) return WR_OK;
    hquarantine_reset(h);
    h->qraw = tmpfile();
    if (!h->qraw)
        return wr_error_set(err, WR_RETRY,
                            "history store: cannot make a temporary file to quarantine revision %" PRId64, rev->id);
    h->quarantining = true;
    mpc_revision_begin(mpc_of(h));
    log_warn(
        "msg=\"quarantining revision: it failed twice on a data error; stored raw in quarantine\" revision=%" PRId64
        " xid=%" PRIu32 " commit_lsn=" LSN_FMT " error=\"%s\"",
        rev->id, rev->xid, LSN_ARGS(rev->commit_lsn), h->quarantine_error ? h->quarantine_error : "");
    return WR_OK;
}

void hquarantine_relation(HistorySink *h, const RelationVersion *rv)
{
    if (!h->quarantining) return;
    StrBuf b;
    strbuf_init(&b);
    mpc_encode_relation(&b, rv);
    spool(h, &b);
    strbuf_free(&b);
}

void hquarantine_context(HistorySink *h, const RevisionContext *ctx)
{
    if (h->quarantining) mpc_revision_context(mpc_of(h), ctx);
}

WrStatus hquarantine_delta(HistorySink *h, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    MpcRevision *r = mpc_of(h);
    if (mpc_revision_check_delta(r, rev, d, "history store (quarantine)", err) != WR_OK) return err->status;
    StrBuf b;
    strbuf_init(&b);
    mpc_revision_delta(r, &b, rev, d);
    spool(h, &b);
    strbuf_free(&b);
    return WR_OK;
}

/* s as a NUL-terminated text PostgreSQL accepts, bounded, into out (NULL stays NULL). */
static const char *safe_text(StrBuf *out, const char *s)
{
    if (!s) return NULL;
    strbuf_reset(out);
    text_sanitize(out, s, strlen(s), QUARANTINE_TEXT_MAX);
    strbuf_append_char(out, '\0');
    return out->data;
}

/* Stream the spool into COPY as one bytea field (hex), in bounded chunks. */
static bool put_raw(HistorySink *h)
{
    static const char hexd[] = "0123456789abcdef";
    if (fflush(h->qraw) != 0 || fseek(h->qraw, 0, SEEK_SET) != 0) return false;
    unsigned char in[32768];
    StrBuf b;
    strbuf_init(&b);
    strbuf_append_str(&b, "\\\\x");
    bool ok = true;
    size_t n;
    while (ok && (n = fread(in, 1, sizeof(in), h->qraw)) > 0) {
        strbuf_reserve(&b, 2 * n);
        for (size_t i = 0; i < n; i++) {
            strbuf_append_char(&b, hexd[in[i] >> 4]);
            strbuf_append_char(&b, hexd[in[i] & 15]);
        }
        ok = pgio_copy_put(h->conn, b.data, b.len);
        strbuf_reset(&b);
    }
    if (ok && ferror(h->qraw)) ok = false;
    strbuf_free(&b);
    return ok;
}

WrStatus hquarantine_commit(HistorySink *h, const Revision *rev, WrError *err)
{
    MpcRevision *r = mpc_of(h);
    StrBuf b, t1, t2, t3;
    strbuf_init(&b);
    strbuf_init(&t1);
    strbuf_init(&t2);
    strbuf_init(&t3);
    mpc_revision_end(r, &b, rev);
    spool(h, &b);

    /* walrev.quarantine, by a COPY of its own (one COPY at a time). */
    WrStatus st = hsession_await_copy(h, err);
    if (st == WR_OK) {
        strbuf_appendf(&b,
                       "COPY %s.quarantine (revision_id, xid, commit_lsn, end_lsn, sqlstate, error, raw) FROM STDIN",
                       h->qschema);
        snprintf(h->copy_pending_what, sizeof(h->copy_pending_what), "COPY into %s.quarantine", h->qschema);
        PGresult *res = NULL;
        (void)pgio_exec(h->conn, b.data, 0, NULL, &res);
        if (PQresultStatus(res) != PGRES_COPY_IN) st = hsession_fail(h, res, err, h->copy_pending_what);
        PQclear(res);
    }
    if (st == WR_OK) {
        strbuf_reset(&b);
        strbuf_appendf(&b, "%" PRId64 "\t%" PRIu32 "\t" LSN_FMT "\t" LSN_FMT "\t", rev->id, rev->xid,
                       LSN_ARGS(rev->commit_lsn), LSN_ARGS(rev->end_lsn));
        const char *ss = h->quarantine_sqlstate[0] ? h->quarantine_sqlstate : NULL;
        copy_append_field(&b, ss, ss ? strlen(ss) : 0);
        strbuf_append_char(&b, '\t');
        const char *e = safe_text(&t1, h->quarantine_error ? h->quarantine_error : "data error");
        copy_append_field(&b, e, strlen(e));
        strbuf_append_char(&b, '\t');
        bool ok = pgio_copy_put(h->conn, b.data, b.len) && put_raw(h) && pgio_copy_put(h->conn, "\n", 1) &&
                  PQputCopyEnd(h->conn, NULL) == 1;
        h->copy_pending = true;
        st = hsession_await_copy(h, err);
        if (st == WR_OK && !ok) st = hsession_fail(h, NULL, err, h->copy_pending_what);
    }

    /* The revision row: flagged, its real counts and checksum, its text
     * fields sanitised; no actor (its contexts are in the raw form only). */
    if (st == WR_OK) {
        char id[24], xid[16], clsn[32], elsn[32], ts[48], n[6][24], sum[2 * WALREV_CHECKSUM_LEN + 3] = "\\x";
        snprintf(id, sizeof(id), "%" PRId64, rev->id);
        snprintf(xid, sizeof(xid), "%" PRIu32, rev->xid);
        snprintf(clsn, sizeof(clsn), LSN_FMT, LSN_ARGS(rev->commit_lsn));
        snprintf(elsn, sizeof(elsn), LSN_FMT, LSN_ARGS(rev->end_lsn));
        pg_time_format(rev->commit_time, ts, sizeof(ts));
        const int64_t counts[6] = {rev->n_insert,   rev->n_update,   rev->n_delete,
                                   rev->n_truncate, rev->n_snapshot, rev->n_suppressed};
        for (int i = 0; i < 6; i++) snprintf(n[i], sizeof(n[i]), "%" PRId64, counts[i]);
        checksum_to_hex(rev->checksum, sum + 2);
        strbuf_reset(&b);
        strbuf_appendf(&b, "%s%squarantined: the history store refused it twice (%s); stored raw in %s.quarantine",
                       rev->warnings ? rev->warnings : "", rev->warnings ? "; " : "",
                       h->quarantine_sqlstate[0] ? h->quarantine_sqlstate : "data error", h->qschema);
        StrBuf warn;
        strbuf_init(&warn);
        const char *w = safe_text(&warn, b.data);
        const char *p[15] = {
            id,   xid,  clsn, elsn, ts, safe_text(&t2, rev->origin), safe_text(&t3, rev->gid), n[0], n[1], n[2],
            n[3], n[4], n[5], w,    sum};
        strbuf_reset(&b);
        strbuf_appendf(&b,
                       "INSERT INTO %s.revision (id, xid, commit_lsn, end_lsn, commit_time, origin, gid, n_insert, "
                       "n_update, n_delete, n_truncate, n_snapshot, n_suppressed, warnings, checksum, quarantined) "
                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, true)",
                       h->qschema);
        char what[160];
        snprintf(what, sizeof(what), "INSERT of quarantined revision %s into %s.revision", id, h->qschema);
        st = hsession_run(h, b.data, 15, p, what, NULL, err);
        strbuf_free(&warn);
    }
    strbuf_free(&b);
    strbuf_free(&t1);
    strbuf_free(&t2);
    strbuf_free(&t3);
    hquarantine_reset(h);
    /* Once: a later session starting behind it must not quarantine it again
     * (the store already holds it, and the fan-out skips it). */
    if (st == WR_OK) {
        h->quarantine_lsn = 0;
        metrics_add(METRICS_QUARANTINED, 1);
    }
    return st;
}

/*
 * The test-only fault (tests/integration/test_quarantine.sh): with
 * WALREV_TEST_INJECT_DATA_ERROR set to a value, a delta whose new values
 * hold exactly that value is written to object_delta with a NUL byte in its
 * key, which the server refuses (SQLSTATE 22021), every time: the data error
 * no user input can cause any more. Never set it in production.
 */
bool hquarantine_injects(const HistorySink *h, const ObjectDelta *d)
{
    if (!h->inject_data_error) return false;
    size_t n = strlen(h->inject_data_error);
    for (uint16_t i = 0; i < d->nattrs; i++) {
        const Value *v = &d->attrs[i].new_value;
        if (v->data && v->len == n && memcmp(v->data, h->inject_data_error, n) == 0) return true;
    }
    return false;
}
