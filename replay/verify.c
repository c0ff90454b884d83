/*
 * verify.c — recomputes the checksum chain from the history tables with the
 * same RevisionHasher the worker used, merging three ordered server-side
 * cursors (revisions, contexts, object deltas) fetched in binary format, so
 * memory stays bounded by the fetch size. Leaf module: returns errors, never
 * logs, never writes.
 */
#include "replay/verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgio/pgio.h"
#include "replay/verify_reads.h"
#include "schema/checksum.h"
#include "schema/store_sql.h"

/*
 * Set in attr_flags by erasure after the fact (docs/history-store.md), so it
 * never entered the checksum: verify masks it out before hashing.
 */
#define VERIFY_ATTR_ERASED 0x08
#define FETCH_ROWS 500

typedef struct {
    const char *name;
    PGresult *res;
    int row;
    bool done;
} Cursor;

typedef struct {
    PGconn *conn;
    WrError *err;
} Ctx;

static WrStatus exec(Ctx *c, const char *sql, int nparams, const char *const *params, PGresult **out,
                     const char *what)
{
    PGresult *res;
    bool ok = out ? pgio_exec_binary(c->conn, sql, nparams, params, &res) : pgio_exec(c->conn, sql, nparams, params, &res);
    if (!ok) {
        WrStatus st = pgio_fail(c->conn, res, c->err, "verify: %s", what);
        PQclear(res);
        return st;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return WR_OK;
}

/* Make the cursor's current row available; *has = false at the end. */
static WrStatus cursor_peek(Ctx *c, Cursor *cur, bool *has)
{
    if (cur->res && cur->row < PQntuples(cur->res)) {
        *has = true;
        return WR_OK;
    }
    *has = false;
    if (cur->done) return WR_OK;
    PQclear(cur->res);
    cur->res = NULL;
    cur->row = 0;
    char sql[64], what[64];
    snprintf(sql, sizeof(sql), "FETCH %d FROM %s", FETCH_ROWS, cur->name);
    snprintf(what, sizeof(what), "fetching from cursor %s", cur->name);
    WrStatus st = exec(c, sql, 0, NULL, &cur->res, what);
    if (st != WR_OK) return st;
    if (PQntuples(cur->res) < FETCH_ROWS) cur->done = true;
    *has = PQntuples(cur->res) > 0;
    return WR_OK;
}

/* ---- binary field readers (PostgreSQL send formats) ---- */

static bool f_null(const Cursor *cur, int col) { return PQgetisnull(cur->res, cur->row, col); }

static int64_t f_int(const Cursor *cur, int col, bool *ok)
{
    const uint8_t *p = (const uint8_t *)PQgetvalue(cur->res, cur->row, col);
    switch (PQgetlength(cur->res, cur->row, col)) {
    case 1: return (int8_t)p[0];
    case 2: return (int16_t)wr_read_u16(p);
    case 4: return (int32_t)wr_read_u32(p);
    case 8: return (int64_t)wr_read_u64(p);
    default: *ok = false; return 0;
    }
}

static Value f_text(const Cursor *cur, int col)
{
    if (f_null(cur, col)) return (Value){NULL, 0};
    return (Value){PQgetvalue(cur->res, cur->row, col), (size_t)PQgetlength(cur->res, cur->row, col)};
}

/* A NUL-terminated copy for Revision's const char * fields; caller frees. */
static char *f_str(const Cursor *cur, int col)
{
    Value v = f_text(cur, col);
    return v.data ? xstrndup(v.data, v.len) : NULL;
}

/* One-dimensional binary array (array_send). */
typedef struct {
    int32_t n;
    const char *p, *end;
} BinArray;

static bool arr_open(const Cursor *cur, int col, BinArray *a)
{
    memset(a, 0, sizeof(*a));
    if (f_null(cur, col)) return true; /* NULL array: zero elements */
    const char *d = PQgetvalue(cur->res, cur->row, col);
    int len = PQgetlength(cur->res, cur->row, col);
    if (len < 12) return false;
    int32_t ndim = (int32_t)wr_read_u32((const uint8_t *)d);
    if (ndim == 0) return true;
    if (ndim != 1 || len < 20) return false;
    a->n = (int32_t)wr_read_u32((const uint8_t *)d + 12);
    a->p = d + 20;
    a->end = d + len;
    return a->n >= 0;
}

static bool arr_next(BinArray *a, Value *v)
{
    if (a->end - a->p < 4) return false;
    int32_t n = (int32_t)wr_read_u32((const uint8_t *)a->p);
    a->p += 4;
    if (n == -1) {
        *v = (Value){NULL, 0};
        return true;
    }
    if (n < 0 || a->end - a->p < n) return false;
    *v = (Value){a->p, (size_t)n};
    a->p += n;
    return true;
}

static bool val_int(Value v, int64_t *out)
{
    const uint8_t *p = (const uint8_t *)v.data;
    if (!p) return false;
    switch (v.len) {
    case 2: *out = (int16_t)wr_read_u16(p); return true;
    case 4: *out = (int32_t)wr_read_u32(p); return true;
    default: return false;
    }
}

/* ---- the walk ---- */

typedef struct {
    AttributeDelta *attrs;
    const uint8_t **hashes;
    size_t cap;
} DeltaScratch;

/* Columns of the delta cursor. */
enum { D_REV, D_SEQ, D_RELID, D_RELVER, D_OP, D_KEY, D_CTX, D_OLDUNK, D_COLS, D_OLD, D_NEW, D_FLAGS,
       D_ECOLS, D_EWHICH, D_EHASH };

/*
 * Hash the delta at the cursor's current row. Returns false with why set
 * when the row is malformed or an erased value has no recorded hash (the
 * revision is then reported bad).
 */
static bool hash_delta(RevisionHasher *hh, const Cursor *dc, bool has_erased, DeltaScratch *sc, char *why,
                       size_t why_size, int64_t rev_id)
{
    bool ok = true;
    RelationVersion rv;
    memset(&rv, 0, sizeof(rv));
    rv.relid = (uint32_t)f_int(dc, D_RELID, &ok);
    rv.version = (int32_t)f_int(dc, D_RELVER, &ok);
    ObjectDelta d;
    memset(&d, 0, sizeof(d));
    d.seq = (int32_t)f_int(dc, D_SEQ, &ok);
    d.relver = &rv;
    d.op = (DeltaOp)(uint8_t)f_int(dc, D_OP, &ok);
    Value key = f_text(dc, D_KEY);
    char *keystr = key.data ? xstrndup(key.data, key.len) : NULL;
    d.key = keystr;
    d.context_no = (int16_t)f_int(dc, D_CTX, &ok);
    d.old_unknown = f_int(dc, D_OLDUNK, &ok) != 0;

    BinArray cols, olds, news, flags;
    ok = ok && arr_open(dc, D_COLS, &cols) && arr_open(dc, D_OLD, &olds) && arr_open(dc, D_NEW, &news) &&
         arr_open(dc, D_FLAGS, &flags);
    if (ok && ((olds.n && olds.n != cols.n) || (news.n && news.n != cols.n) || (flags.n && flags.n != cols.n)))
        ok = false;
    size_t n = ok ? (size_t)cols.n : 0;
    if (n > sc->cap) {
        sc->attrs = xrealloc(sc->attrs, n * sizeof(AttributeDelta));
        sc->hashes = xrealloc(sc->hashes, 2 * n * sizeof(uint8_t *));
        sc->cap = n;
    }
    bool any_erased = false;
    for (size_t i = 0; ok && i < n; i++) {
        AttributeDelta *a = &sc->attrs[i];
        memset(a, 0, sizeof(*a));
        Value v;
        int64_t x = 0;
        ok = arr_next(&cols, &v) && val_int(v, &x);
        a->col_id = (int16_t)x;
        if (ok && olds.n) ok = arr_next(&olds, &a->old_value);
        if (ok && news.n) ok = arr_next(&news, &a->new_value);
        if (ok && flags.n) {
            ok = arr_next(&flags, &v);
            if (ok && v.data) ok = val_int(v, &x);
            else x = 0;
            a->flags = (uint8_t)x;
        }
        sc->hashes[2 * i] = sc->hashes[2 * i + 1] = NULL;
        if (ok && (a->flags & VERIFY_ATTR_ERASED)) {
            a->flags &= (uint8_t)~VERIFY_ATTR_ERASED;
            any_erased = true;
            for (int side = 0; side < 2; side++) {
                const Value *val = side ? &a->new_value : &a->old_value;
                if (val->data) continue;
                /* Find (col_id, which) among the erased hashes of this delta. */
                BinArray ec, ew, eh;
                if (!has_erased || !arr_open(dc, D_ECOLS, &ec) || !arr_open(dc, D_EWHICH, &ew) ||
                    !arr_open(dc, D_EHASH, &eh))
                    continue;
                for (int32_t k = 0; k < ec.n; k++) {
                    Value c, w, hsh;
                    int64_t cid = 0;
                    if (!arr_next(&ec, &c) || !arr_next(&ew, &w) || !arr_next(&eh, &hsh)) break;
                    if (!val_int(c, &cid) || cid != a->col_id || !w.data || w.len != 1 ||
                        w.data[0] != (side ? 'n' : 'o'))
                        continue;
                    if (hsh.data && hsh.len == WALREV_CHECKSUM_LEN)
                        sc->hashes[2 * i + side] = (const uint8_t *)hsh.data;
                }
            }
            /* An erased value is NULL in the arrays; without its hash the chain cannot be checked. */
            if (!sc->hashes[2 * i] && !sc->hashes[2 * i + 1]) {
                snprintf(why, why_size,
                         "revision %" PRId64 " seq %" PRId32 " col_id %d: erased value has no hash in "
                         "erased_value",
                         rev_id, d.seq, (int)a->col_id);
                free(keystr);
                return false;
            }
        }
    }
    if (!ok) {
        snprintf(why, why_size, "revision %" PRId64 " seq %" PRId32 ": malformed object_delta row", rev_id,
                 d.seq);
        free(keystr);
        return false;
    }
    d.nattrs = (uint16_t)n;
    d.attrs = sc->attrs;
    revhash_add_delta(hh, &d, any_erased ? sc->hashes : NULL);
    free(keystr);
    return true;
}

static void hex_prefix(const uint8_t *sum, char out[17])
{
    char full[2 * WALREV_CHECKSUM_LEN + 1];
    checksum_to_hex(sum, full);
    memcpy(out, full, 16);
    out[16] = '\0';
}

/* The three cursors verify walks in step, ordered by revision id; *has_erased: erasure has been used. */
static WrStatus open_cursors(Ctx *c, const char *qs, const Cursor *rc, const Cursor *cc, const Cursor *dc,
                             bool *has_erased)
{
    StrBuf q;
    strbuf_init(&q);
    PGresult *res = NULL;
    strbuf_appendf(&q, "%s.erased_value", qs);
    const char *p[1] = {q.data};
    WrStatus st = exec(c, "SELECT to_regclass($1) IS NOT NULL", 1, p, &res, "looking for erased_value");
    if (st != WR_OK) goto done;
    *has_erased = PQgetlength(res, 0, 0) == 1 && PQgetvalue(res, 0, 0)[0] == 1;

    strbuf_reset(&q);
    strbuf_appendf(&q,
                   "DECLARE %s NO SCROLL CURSOR FOR SELECT id, xid, commit_lsn, end_lsn, commit_time, origin, "
                   "gid, n_insert::bigint, n_update::bigint, n_delete::bigint, n_truncate::bigint, "
                   "n_snapshot::bigint, n_suppressed::bigint, warnings, checksum "
                   "FROM %s.revision ORDER BY id",
                   rc->name, qs);
    st = exec(c, q.data, 0, NULL, NULL, "opening the revision cursor");
    if (st != WR_OK) goto done;
    strbuf_reset(&q);
    strbuf_appendf(&q,
                   "DECLARE %s NO SCROLL CURSOR FOR SELECT revision_id, context_no, raw, raw_sha256 "
                   "FROM %s.revision_context ORDER BY revision_id, context_no",
                   cc->name, qs);
    st = exec(c, q.data, 0, NULL, NULL, "opening the revision_context cursor");
    if (st != WR_OK) goto done;
    strbuf_reset(&q);
    strbuf_appendf(&q,
                   "DECLARE %s NO SCROLL CURSOR FOR SELECT d.revision_id, d.seq, d.relid, d.relversion, "
                   "d.op, d.key, d.context_no, d.old_unknown, d.col_ids, d.old_values, d.new_values, "
                   "d.attr_flags",
                   dc->name);
    if (*has_erased)
        strbuf_appendf(&q,
                       ", e.cols, e.which, e.hashes FROM %s.object_delta_arrays d LEFT JOIN LATERAL ("
                       "SELECT array_agg(x.col_id::integer) AS cols, array_agg(x.which::text) AS which, "
                       "array_agg(x.value_hash) AS hashes FROM %s.erased_value x "
                       "WHERE x.revision_id = d.revision_id AND x.seq = d.seq) e ON true",
                       qs, qs);
    else
        strbuf_appendf(&q, " FROM %s.object_delta_arrays d", qs);
    strbuf_append_str(&q, " ORDER BY d.revision_id, d.seq");
    st = exec(c, q.data, 0, NULL, NULL, "opening the object_delta cursor");
done:
    PQclear(res);
    strbuf_free(&q);
    return st;
}

/* The revision row under rc into rev; owned[] gets its strings (origin, gid, warnings), the caller's to free. */
static bool read_revision(Cursor *rc, Revision *rev, Value *stored, char *owned[3])
{
    bool ok = true;
    memset(rev, 0, sizeof(*rev));
    rev->id = f_int(rc, 0, &ok);
    rev->xid = (uint32_t)f_int(rc, 1, &ok);
    rev->commit_lsn = (Lsn)f_int(rc, 2, &ok);
    rev->end_lsn = (Lsn)f_int(rc, 3, &ok);
    rev->commit_time = f_int(rc, 4, &ok);
    rev->origin = owned[0] = f_str(rc, 5);
    rev->gid = owned[1] = f_str(rc, 6);
    rev->n_insert = f_int(rc, 7, &ok);
    rev->n_update = f_int(rc, 8, &ok);
    rev->n_delete = f_int(rc, 9, &ok);
    rev->n_truncate = f_int(rc, 10, &ok);
    rev->n_snapshot = f_int(rc, 11, &ok);
    rev->n_suppressed = f_int(rc, 12, &ok);
    rev->warnings = owned[2] = f_str(rc, 13);
    *stored = f_text(rc, 14);
    return ok;
}

/* Hash the contexts of revision rev_id (rows of revisions that no longer exist are skipped). */
static WrStatus hash_contexts(Ctx *c, Cursor *cc, RevisionHasher *hh, int64_t rev_id)
{
    for (;;) {
        bool has = false;
        WrStatus st = cursor_peek(c, cc, &has);
        if (st != WR_OK || !has) return st;
        bool cok = true;
        int64_t rid = f_int(cc, 0, &cok);
        if (rid > rev_id) return WR_OK;
        if (rid == rev_id) {
            RevisionContext ctx;
            memset(&ctx, 0, sizeof(ctx));
            ctx.no = (int16_t)f_int(cc, 1, &cok);
            Value raw = f_text(cc, 2);
            ctx.raw = raw.data;
            ctx.raw_len = raw.len;
            /* A context text could not hold exactly enters by its stored hash. */
            Value raw_sum = f_text(cc, 3);
            if (raw_sum.data && raw_sum.len == WALREV_CHECKSUM_LEN) ctx.raw_sha256 = (const uint8_t *)raw_sum.data;
            revhash_add_context(hh, &ctx);
        }
        cc->row++;
    }
}

/* Hash the deltas of revision rev_id; *bad (with why) when one is malformed. */
static WrStatus hash_deltas(Ctx *c, Cursor *dc, RevisionHasher *hh, bool has_erased, DeltaScratch *sc, int64_t rev_id,
                            bool *bad, char *why, size_t why_size)
{
    for (;;) {
        bool has = false;
        WrStatus st = cursor_peek(c, dc, &has);
        if (st != WR_OK || !has) return st;
        bool dok = true;
        int64_t rid = f_int(dc, D_REV, &dok);
        if (rid > rev_id) return WR_OK;
        if (rid == rev_id && !hash_delta(hh, dc, has_erased, sc, why, why_size, rev_id)) {
            *bad = true;
            return WR_OK;
        }
        dc->row++;
    }
}

WrStatus history_verify(PGconn *conn, const char *schema, int64_t *checked, int64_t *first_bad, char *why,
                        size_t why_size, WrError *err)
{
    Ctx c = {conn, err};
    *checked = 0;
    *first_bad = 0;
    if (why_size) why[0] = '\0';
    char *qs = store_quote_ident(schema);
    Cursor rc = {"walrev_verify_rev", NULL, 0, false};
    Cursor cc = {"walrev_verify_ctx", NULL, 0, false};
    Cursor dc = {"walrev_verify_delta", NULL, 0, false};
    RevisionHasher *hh = revhash_create();
    DeltaScratch sc = {NULL, NULL, 0};
    bool in_tx = false, has_erased = false;
    WrStatus st;

    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        st = wr_error_set(err, WR_FATAL, "verify: the connection is not idle (inside a transaction)");
        goto done;
    }
    st = exec(&c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, "BEGIN");
    if (st != WR_OK) goto done;
    in_tx = true;
    st = open_cursors(&c, qs, &rc, &cc, &dc, &has_erased);
    if (st != WR_OK) goto done;

    /*
     * The parent checksum is not stored (format 3): it is the checksum of
     * the previous row, 32 zero bytes before revision 1, and ids must be
     * dense from 1. A changed checksum then fails its own revision, a
     * changed row its revision, and a deleted revision the id check.
     */
    uint8_t prev[WALREV_CHECKSUM_LEN];
    memset(prev, 0, sizeof(prev));
    int64_t prev_id = 0;
    for (;;) {
        bool has = false;
        st = cursor_peek(&c, &rc, &has);
        if (st != WR_OK || !has) break;
        Revision rev;
        Value stored;
        char *owned[3];
        bool ok = read_revision(&rc, &rev, &stored, owned);
        bool bad = false;
        if (!ok || stored.len != WALREV_CHECKSUM_LEN) {
            snprintf(why, why_size, "revision %" PRId64 ": malformed row (the checksum must be 32 bytes)", rev.id);
            bad = true;
        } else if (rev.id != prev_id + 1) {
            snprintf(why, why_size, "revision %" PRId64 " is missing (the next stored revision is %" PRId64 ")",
                     prev_id + 1, rev.id);
            *first_bad = prev_id + 1;
            bad = true;
        }
        if (bad && !*first_bad) *first_bad = rev.id;
        memcpy(rev.parent_checksum, prev, WALREV_CHECKSUM_LEN);
        revhash_begin(hh);
        if (!bad) st = hash_contexts(&c, &cc, hh, rev.id);
        if (!bad && st == WR_OK) {
            st = hash_deltas(&c, &dc, hh, has_erased, &sc, rev.id, &bad, why, why_size);
            if (bad) *first_bad = rev.id;
        }
        if (!bad && st == WR_OK) {
            revhash_finish(hh, &rev);
            if (memcmp(rev.checksum, stored.data, WALREV_CHECKSUM_LEN) != 0) {
                char a[17], b[17];
                hex_prefix((const uint8_t *)stored.data, a);
                hex_prefix(rev.checksum, b);
                snprintf(why, why_size,
                         "revision %" PRId64 ": stored checksum %s… but its rows hash to %s…", rev.id, a, b);
                *first_bad = rev.id;
                bad = true;
            }
        }
        if (!bad && st == WR_OK) {
            memcpy(prev, stored.data, WALREV_CHECKSUM_LEN);
            prev_id = rev.id;
            (*checked)++;
        }
        for (int i = 0; i < 3; i++) free(owned[i]);
        rc.row++;
        if (bad || st != WR_OK) break;
    }
    /* What replay reads beyond the hashed rows (verify_reads.h). */
    if (st == WR_OK && *first_bad == 0) {
        PQclear(rc.res);
        PQclear(cc.res);
        PQclear(dc.res);
        rc.res = cc.res = dc.res = NULL;
        st = verify_contexts(conn, qs, first_bad, why, why_size, err);
        if (st == WR_OK && *first_bad == 0) {
            int64_t bad_keyframe = 0;
            st = verify_keyframes(conn, qs, &bad_keyframe, first_bad, why, why_size, err);
        }
        if (st == WR_OK && *first_bad != 0) *checked = *first_bad - 1;
    }

done:
    PQclear(rc.res);
    PQclear(cc.res);
    PQclear(dc.res);
    if (in_tx && PQstatus(conn) == CONNECTION_OK) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    revhash_destroy(hh);
    free(sc.attrs);
    free(sc.hashes);
    free(qs);
    return st;
}
