/*
 * copyin.c — see "binary COPY reading" in internal.h: a binary COPY OUT
 * stream read back tuple by tuple, for the snapshot's fold (fold.c) and
 * verify's keyframe check (verify_reads.c). Framing only (schema/copyread.h
 * parses it); what the fields mean is the caller's.
 */
#include <string.h>

#include "pgio/pgio.h"
#include "replay/internal.h"
#include "schema/copyread.h"

/*
 * Start COPY query on conn. The reader is ready for replay_copy_next; replay_copy_close
 * ends it in every case.
 */
WrStatus replay_copy_open(CopyReader *r, PGconn *conn, const char *query, const char *what, WrError *err)
{
    memset(r, 0, sizeof(*r));
    r->conn = conn;
    strbuf_init(&r->buf);
    PGresult *res;
    if (!pgio_exec(conn, query, 0, NULL, &res) || PQresultStatus(res) != PGRES_COPY_OUT) {
        pgio_fail(conn, res, err, "%s", what);
        PQclear(res);
        r->conn = NULL;
        return err->status;
    }
    PQclear(res);
    return WR_OK;
}

/*
 * The next tuples of nf fields, up to max of them, into t (fields valid
 * until the next call: the buffer moves only then). Reading a batch at
 * once lets the caller look up every key of it before it folds the first
 * (see prefetch_keys). Returns how many (0 at the end of the data), -1
 * with err set.
 */
int replay_copy_next(CopyReader *r, int nf, CopyTuple *t, int max, const char *what, WrError *err)
{
    /* the tuples handed out last time are done with: keep only the unread tail */
    if (r->pos > 0) {
        memmove(r->buf.data, r->buf.data + r->pos, r->buf.len - r->pos);
        r->buf.len -= r->pos;
        r->pos = 0;
    }
    /* offsets while reading (an append may move the buffer), pointers at the end */
    size_t off[COPY_BATCH][COPY_MAX_FIELDS];
    int n = 0;
    while (n < max && !r->trailer) {
        const unsigned char *p = r->buf.data ? (const unsigned char *)r->buf.data + r->pos : NULL;
        size_t avail = r->buf.len - r->pos;
        size_t len;
        if (!r->header_done && avail >= 19) {
            int h = copyread_header(p, avail, &len);
            if (h < 0) {
                wr_error_set(err, WR_PROTOCOL, "%s: not a binary COPY stream", what);
                return -1;
            }
            if (h > 0) {
                r->pos += len;
                r->header_done = true;
                continue;
            }
        } else if (r->header_done && avail >= 2) {
            int nfields = copyread_field_count(p);
            if (nfields == -1) {
                r->trailer = true;
                r->pos += 2;
                break;
            }
            if (nfields != nf) {
                wr_error_set(err, WR_PROTOCOL, "%s: %d fields in a COPY row, expected %d", what, nfields, nf);
                return -1;
            }
            len = copyread_tuple(p, avail, nf, t[n].f, t[n].fl);
            if (len > 0) {
                for (int i = 0; i < nf; i++)
                    off[n][i] = t[n].fl[i] >= 0 ? (size_t)(t[n].f[i] - (const unsigned char *)r->buf.data) : 0;
                r->pos += len;
                n++;
                continue;
            }
        }
        /* need more: fetch the next message */
        char *msg;
        int got = PQgetCopyData(r->conn, &msg, 0);
        if (got > 0) {
            strbuf_append(&r->buf, msg, (size_t)got);
            PQfreemem(msg);
            continue;
        }
        if (got == -2) {
            pgio_fail(r->conn, NULL, err, "%s", what);
        } else {
            /* the server ended the COPY: its result says why, else the stream was cut short */
            PGresult *res = PQgetResult(r->conn);
            if (PQresultStatus(res) == PGRES_COMMAND_OK)
                wr_error_set(err, WR_PROTOCOL, "%s: the COPY stream ended early", what);
            else
                pgio_fail(r->conn, res, err, "%s", what);
            PQclear(res);
        }
        return -1;
    }
    for (int k = 0; k < n; k++)
        for (int i = 0; i < nf; i++)
            t[k].f[i] = t[k].fl[i] >= 0 ? (const unsigned char *)r->buf.data + off[k][i] : NULL;
    return n;
}

/* Drain what is left of the COPY and take its result; st is what the caller has so far. */
WrStatus replay_copy_close(CopyReader *r, WrStatus st, const char *what, WrError *err)
{
    if (r->conn) {
        char *msg;
        int n;
        while ((n = PQgetCopyData(r->conn, &msg, 0)) > 0) PQfreemem(msg);
        PGresult *res;
        while ((res = PQgetResult(r->conn)) != NULL) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) {
                st = pgio_fail(r->conn, res, err, "%s", what);
            }
            PQclear(res);
        }
    }
    strbuf_free(&r->buf);
    r->conn = NULL;
    return st;
}

