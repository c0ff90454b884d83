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
 * Set in attr_flags by erasure after the fact (docs/history-store.md): 0x08
 * the new value erased, 0x10 the old one. They never entered the checksum,
 * so verify masks them out before hashing.
 */
#define VERIFY_ATTR_ERASED_NEW 0x08
#define VERIFY_ATTR_ERASED_OLD 0x10
#define VERIFY_ATTR_ERASED (VERIFY_ATTR_ERASED_NEW | VERIFY_ATTR_ERASED_OLD)
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

/* Run sql on the verify connection: results in binary when out is wanted (the cursors' rows). */
static WrStatus exec(Ctx *c, const char *sql, int nparams, const char *const *params, PGresult **out, const char *what)
{
    char w[160];
    snprintf(w, sizeof(w), "verify: %s", what);
    return out ? pgio_run_binary(c->conn, sql, nparams, params, out, c->err, w)
               : pgio_run(c->conn, sql, nparams, params, NULL, c->err, w);
}

/* DECLARE cur over select (a SELECT of the history store, formatted), named table in an error. */
static WrStatus open_cursor(Ctx *c, const Cursor *cur, const char *select, const char *table)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "DECLARE %s NO SCROLL CURSOR FOR %s", cur->name, select);
    char what[96];
    snprintf(what, sizeof(what), "opening the %s cursor", table);
    WrStatus st = exec(c, q.data, 0, NULL, NULL, what);
    strbuf_free(&q);
    return st;
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
enum {
    D_REV,
    D_SEQ,
    D_RELID,
    D_RELVER,
    D_OP,
    D_KEY,
    D_CTX,
    D_OLDUNK,
    D_COLS,
    D_OLD,
    D_NEW,
    D_FLAGS,
    D_ECOLS,
    D_EWHICH,
    D_EHASH
};

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
            if (ok && v.data)
                ok = val_int(v, &x);
            else
                x = 0;
            a->flags = (uint8_t)x;
        }
        sc->hashes[2 * i] = sc->hashes[2 * i + 1] = NULL;
        if (ok && (a->flags & VERIFY_ATTR_ERASED)) {
            uint8_t erased = a->flags & VERIFY_ATTR_ERASED;
            a->flags &= (uint8_t)~VERIFY_ATTR_ERASED;
            any_erased = true;
            for (int side = 0; side < 2; side++) {
                const Value *val = side ? &a->new_value : &a->old_value;
                if (val->data || !(erased & (side ? VERIFY_ATTR_ERASED_NEW : VERIFY_ATTR_ERASED_OLD))) continue;
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
            /* (a value present where one was erased hashes as itself; verify_erasures names it) */
            if (((erased & VERIFY_ATTR_ERASED_OLD) && !a->old_value.data && !sc->hashes[2 * i]) ||
                ((erased & VERIFY_ATTR_ERASED_NEW) && !a->new_value.data && !sc->hashes[2 * i + 1])) {
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
        snprintf(why, why_size, "revision %" PRId64 " seq %" PRId32 ": malformed object_delta row", rev_id, d.seq);
        free(keystr);
        return false;
    }
    d.nattrs = (uint16_t)n;
    d.attrs = sc->attrs;
    revhash_add_delta(hh, &d, any_erased ? sc->hashes : NULL);
    free(keystr);
    return true;
}

/*
 * Format 5: the first revision whose values enter the chain keyed
 * (store_info.keyed_values_from; INT64_MAX in an older store) and the key.
 * Only walrev's role may read digest_key: a reader's role that cannot is
 * told so when any revision needs it, rather than failing every revision.
 */
static WrStatus read_value_key(Ctx *c, const char *qs, int64_t *from, uint8_t key[WALREV_VALUE_KEY_LEN])
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(
        &q,
        "SELECT (SELECT value::bigint FROM %s.store_info WHERE key = 'keyed_values_from'), "
        "(SELECT max(id) FROM %s.revision), "
        "CASE WHEN to_regclass($1::text) IS NULL THEN false ELSE has_table_privilege($1::text, 'SELECT') END",
        qs, qs);
    StrBuf rel;
    strbuf_init(&rel);
    strbuf_appendf(&rel, "%s.digest_key", qs);
    const char *p[1] = {rel.data};
    PGresult *res = NULL;
    WrStatus st = exec(c, q.data, 1, p, &res, "reading store_info.keyed_values_from");
    strbuf_free(&rel);
    if (st != WR_OK) goto out;
    bool ok = true;
    Cursor r = {"", res, 0, false};
    if (PQgetisnull(res, 0, 0)) goto out; /* before format 5: every value by SHA-256 */
    *from = f_int(&r, 0, &ok);
    int64_t max_id = PQgetisnull(res, 0, 1) ? 0 : f_int(&r, 1, &ok);
    bool readable = PQgetlength(res, 0, 2) == 1 && PQgetvalue(res, 0, 2)[0] == 1;
    if (!ok) {
        st = wr_error_set(c->err, WR_FATAL, "verify: store_info.keyed_values_from is malformed");
        goto out;
    }
    if (max_id < *from) goto out; /* no revision needs the key */
    if (!readable) {
        st = wr_error_set(c->err, WR_FATAL,
                          "verify: revisions from %" PRId64 " hash their values with the store's secret "
                          "(%s.digest_key), which this role cannot read: run verify as walrev's role",
                          *from, qs);
        goto out;
    }
    PQclear(res);
    res = NULL;
    strbuf_reset(&q);
    strbuf_appendf(&q, "SELECT key FROM %s.digest_key", qs);
    st = exec(c, q.data, 0, NULL, &res, "reading digest_key");
    if (st != WR_OK) goto out;
    if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != WALREV_VALUE_KEY_LEN) {
        st = wr_error_set(c->err, WR_FATAL, "verify: %s.digest_key must hold one 32-byte key", qs);
        goto out;
    }
    memcpy(key, PQgetvalue(res, 0, 0), WALREV_VALUE_KEY_LEN);
out:
    PQclear(res);
    strbuf_free(&q);
    return st;
}

/*
 * Every erasure (walrev erase) holds: no delta of the object before its
 * erase revision and no keyframe row of it still stores a value of an
 * erased column. A value put back where it was erased hashes as it did, so
 * the chain alone would not notice; a keyframe taken while the erasure
 * committed may hold one too.
 */
static WrStatus verify_erasures(Ctx *c, const char *qs, int64_t *first_bad, char *why, size_t why_size)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(
        &q,
        "SELECT e.revision_id, e.relid::bigint, e.key FROM %1$s.erasure e "
        "WHERE EXISTS (SELECT 1 FROM %1$s.object_delta_arrays d, "
        "  unnest(d.col_ids, d.old_values, d.new_values) AS u(c, o, n) "
        "  WHERE d.relid = e.relid AND d.key = e.key AND d.revision_id < e.revision_id "
        "    AND u.c = ANY (e.col_ids) AND (u.o IS NOT NULL OR u.n IS NOT NULL)) "
        "OR EXISTS (SELECT 1 FROM %1$s.keyframe k CROSS JOIN LATERAL %1$s.keyframe_rows_of(k.id, e.key) kr, "
        "  unnest(e.col_ids) AS x(c) WHERE k.relid = e.relid AND kr.vals[x.c] IS NOT NULL) "
        "ORDER BY e.revision_id LIMIT 1",
        qs);
    PGresult *res = NULL;
    WrStatus st = exec(c, q.data, 0, NULL, &res, "checking the erasures");
    strbuf_free(&q);
    if (st != WR_OK) return st;
    if (PQntuples(res) == 1) {
        bool ok = true;
        Cursor r = {"", res, 0, false};
        int64_t rev = f_int(&r, 0, &ok), relid = f_int(&r, 1, &ok);
        Value key = f_text(&r, 2);
        snprintf(why, why_size,
                 "revision %" PRId64 " erased values of key %.*s of table %" PRId64
                 ", but a delta before it or a keyframe row still holds one (run walrev erase again)",
                 rev, (int)(key.len > 200 ? 200 : key.len), key.data ? key.data : "", relid);
        *first_bad = rev;
    }
    PQclear(res);
    return WR_OK;
}

/* Columns of the relation version cursor. */
enum {
    R_REV,
    R_RELID,
    R_VERSION,
    R_NSP,
    R_REL,
    R_REPLIDENT,
    R_VALID,
    R_IDS,
    R_NAMES,
    R_OIDS,
    R_TYPMODS,
    R_TNAMES,
    R_KEYS,
    R_TRACK,
    R_GNAMES,
    R_GTYPES,
    R_GPOS,
    R_GEXPRS,
    R_CHECKSUM
};

static char *val_str(Value v) { return v.data ? xstrndup(v.data, v.len) : NULL; }

/* The relation version at the cursor's row, as the worker hashed it; false when malformed. */
/* The next element of a as a string (owned) or an integer. Once *ok is
 * false nothing is read (NULL, 0); an element missing or malformed sets it. */
static char *next_str(BinArray *a, bool *ok)
{
    Value v = {NULL, 0};
    *ok = *ok && arr_next(a, &v);
    return *ok ? val_str(v) : NULL; /* v is not read when arr_next failed */
}

static int64_t next_int(BinArray *a, bool *ok)
{
    Value v = {NULL, 0};
    int64_t x = 0;
    *ok = *ok && arr_next(a, &v) && val_int(v, &x);
    return x;
}

static bool read_relation(const Cursor *rc, RelationVersion *rv)
{
    bool ok = true;
    memset(rv, 0, sizeof(*rv));
    rv->revision_id = f_int(rc, R_REV, &ok);
    rv->relid = (uint32_t)f_int(rc, R_RELID, &ok);
    rv->version = (int32_t)f_int(rc, R_VERSION, &ok);
    rv->nspname = f_str(rc, R_NSP);
    rv->relname = f_str(rc, R_REL);
    rv->replident = (char)f_int(rc, R_REPLIDENT, &ok);
    rv->valid_from = (Lsn)f_int(rc, R_VALID, &ok);
    BinArray ids, names, oids, typmods, tnames, keys, track;
    ok = ok && arr_open(rc, R_IDS, &ids) && arr_open(rc, R_NAMES, &names) && arr_open(rc, R_OIDS, &oids) &&
         arr_open(rc, R_TYPMODS, &typmods) && arr_open(rc, R_TNAMES, &tnames) && arr_open(rc, R_KEYS, &keys) &&
         arr_open(rc, R_TRACK, &track);
    ok = ok && ids.n <= UINT16_MAX && names.n == ids.n && oids.n == ids.n && typmods.n == ids.n && tnames.n == ids.n &&
         keys.n == ids.n && track.n == ids.n;
    if (!ok) return false;
    rv->ncols = (uint16_t)ids.n;
    rv->cols = xcalloc((size_t)rv->ncols + 1, sizeof(RelColumn));
    for (uint16_t i = 0; i < rv->ncols && ok; i++) {
        RelColumn *c = &rv->cols[i];
        c->col_id = (int16_t)next_int(&ids, &ok);
        c->name = next_str(&names, &ok);
        c->type_oid = (uint32_t)next_int(&oids, &ok);
        c->typmod = (int32_t)next_int(&typmods, &ok);
        c->type_name = next_str(&tnames, &ok);
        Value v = {NULL, 0};
        ok = ok && arr_next(&keys, &v) && v.len == 1;
        c->is_key = ok && v.data[0] != 0;
        ok = ok && arr_next(&track, &v) && v.len == 1;
        char t = ok ? v.data[0] : 'f';
        c->track = t == 'h' ? TRACK_HIDDEN : t == 'u' ? TRACK_UNTRACKED : TRACK_FULL;
        /* A code the worker never writes must not hash like 'f'. */
        if (ok && t != 'h' && t != 'u' && t != 'f') ok = false;
    }
    BinArray gn, gt, gp, ge;
    ok = ok && arr_open(rc, R_GNAMES, &gn) && arr_open(rc, R_GTYPES, &gt) && arr_open(rc, R_GPOS, &gp) &&
         arr_open(rc, R_GEXPRS, &ge);
    ok = ok && gn.n <= UINT16_MAX && gt.n == gn.n && gp.n == gn.n && ge.n == gn.n;
    if (!ok) return false;
    rv->ngen = (uint16_t)gn.n;
    rv->gen = xcalloc((size_t)rv->ngen + 1, sizeof(GenColumn));
    for (uint16_t i = 0; i < rv->ngen && ok; i++) {
        GenColumn *g = &rv->gen[i];
        g->name = next_str(&gn, &ok);
        g->type_name = next_str(&gt, &ok);
        g->position = (int16_t)next_int(&gp, &ok);
        g->expr = next_str(&ge, &ok);
    }
    return ok;
}

static void hex_prefix(const uint8_t *sum, char out[17])
{
    char full[2 * WALREV_CHECKSUM_LEN + 1];
    checksum_to_hex(sum, full);
    memcpy(out, full, 16);
    out[16] = '\0';
}

/* One walk of the chain: the four cursors in revision order and what hashing needs. */
typedef struct {
    Ctx c;
    Cursor rc, cc, dc, vc; /* revision, revision_context, object_delta, relation_version */
    bool has_erased;       /* the store has erased_value (GDPR erasure) */
    bool has_quarantine;   /* the store has quarantine (docs/history-store.md#quarantine) */
    int64_t keyed_from;    /* format 5: the first revision whose values are hashed keyed (INT64_MAX: none) */
    uint8_t vkey[WALREV_VALUE_KEY_LEN];
    RevisionHasher *hh;
    DeltaScratch sc;
    RelationVersion rv;
    StrBuf covered; /* the relation versions the current revision covers, for its error message */
    char *why;
    size_t why_size;
    int64_t *first_bad;
} Walk;

/* Open the four cursors of the walk, each in the order the chain is hashed. */
/* Whether the store has <qs>.<table> (tables later store formats added). */
static WrStatus store_has(Ctx *c, const char *qs, const char *table, bool *has)
{
    *has = false;
    char *name = xasprintf("%s.%s", qs, table);
    const char *p[1] = {name};
    PGresult *res = NULL;
    WrStatus st = exec(c, "SELECT to_regclass($1) IS NOT NULL", 1, p, &res, "looking for a table of the store");
    if (st == WR_OK) *has = PQgetlength(res, 0, 0) == 1 && PQgetvalue(res, 0, 0)[0] == 1;
    PQclear(res);
    free(name);
    return st;
}

static WrStatus open_cursors(Walk *w, const char *qs)
{
    StrBuf q;
    strbuf_init(&q);
    WrStatus st = store_has(&w->c, qs, "erased_value", &w->has_erased);
    if (st == WR_OK) st = store_has(&w->c, qs, "quarantine", &w->has_quarantine);
    /* Pruned exactly at a quarantined revision: its parent is the anchor. */
    StrBuf pruned_parent;
    strbuf_init(&pruned_parent);
    bool has_prune = false;
    if (st == WR_OK && w->has_quarantine) st = store_has(&w->c, qs, "prune", &has_prune);
    if (has_prune)
        strbuf_appendf(&pruned_parent, "(SELECT pr.anchor FROM %s.prune pr WHERE pr.before_id = r.id)", qs);
    else
        strbuf_append_str(&pruned_parent, "NULL::bytea");
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_appendf(&q, "SELECT r.id, r.xid, r.commit_lsn, r.end_lsn, r.commit_time, r.origin, "
                           "r.gid, r.n_insert::bigint, r.n_update::bigint, r.n_delete::bigint, r.n_truncate::bigint, "
                           "r.n_snapshot::bigint, r.n_suppressed::bigint, r.warnings, r.checksum");
        if (w->has_quarantine)
            /* A quarantined revision's raw form must carry its xid, commit
             * LSN, its checksum and its parent's (msgpack bin 8 of 32 bytes:
             * c4 20 then the bytes), so a flag put on another revision, or a
             * raw form swapped for another, is caught. */
            strbuf_appendf(&q,
                           ", r.quarantined, q.revision_id IS NOT NULL, CASE WHEN r.quarantined AND "
                           "q.revision_id IS NOT NULL THEN q.xid = r.xid AND q.commit_lsn = r.commit_lsn "
                           "AND position('\\xc420'::bytea || r.checksum in q.raw) > 0 "
                           "AND position('\\xc420'::bytea || coalesce((SELECT p.checksum FROM %1$s.revision p "
                           "WHERE p.id = r.id - 1), %2$s, decode(repeat('00', 32), 'hex')) in q.raw) > 0 END "
                           "FROM %1$s.revision r LEFT JOIN %1$s.quarantine q ON q.revision_id = r.id ORDER BY r.id",
                           qs, pruned_parent.data);
        else
            strbuf_appendf(&q, ", false, false, NULL::boolean FROM %s.revision r ORDER BY r.id", qs);
        st = open_cursor(&w->c, &w->rc, q.data, "revision");
    }
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_appendf(&q,
                       "SELECT revision_id, context_no, raw, raw_sha256 "
                       "FROM %s.revision_context ORDER BY revision_id, context_no",
                       qs);
        st = open_cursor(&w->c, &w->cc, q.data, "revision_context");
    }
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_append_str(&q, "SELECT d.revision_id, d.seq, d.relid, d.relversion, "
                              "d.op, d.key, d.context_no, d.old_unknown, d.col_ids, d.old_values, d.new_values, "
                              "d.attr_flags");
        if (w->has_erased)
            strbuf_appendf(&q,
                           ", e.cols, e.which, e.hashes FROM %s.object_delta_arrays d LEFT JOIN LATERAL ("
                           "SELECT array_agg(x.col_id::integer) AS cols, array_agg(x.which::text) AS which, "
                           "array_agg(x.value_hash) AS hashes FROM %s.erased_value x "
                           "WHERE x.revision_id = d.revision_id AND x.seq = d.seq) e ON true",
                           qs, qs);
        else
            strbuf_appendf(&q, " FROM %s.object_delta_arrays d", qs);
        strbuf_append_str(&q, " ORDER BY d.revision_id, d.seq");
        st = open_cursor(&w->c, &w->dc, q.data, "object_delta");
    }
    if (st == WR_OK) {
        /* Relation versions enter the chain through the revision that covers
         * them (covered_by; NULL in versions written before format 4). */
        strbuf_reset(&q);
        strbuf_appendf(&q,
                       "SELECT covered_by, relid, version, nspname, relname, "
                       "replident, valid_from, col_ids, col_names, col_type_oids, col_typmods, col_type_names, "
                       "col_is_key, col_track, gen_names, gen_type_names, gen_positions, gen_exprs, checksum "
                       "FROM %s.relation_version WHERE covered_by IS NOT NULL ORDER BY covered_by, relid, version",
                       qs);
        st = open_cursor(&w->c, &w->vc, q.data, "relation_version");
    }
    strbuf_free(&q);
    strbuf_free(&pruned_parent);
    return st;
}

/*
 * Make the cursor's next row of revision rev_id current: *has false when the
 * cursor is past rev_id (or at its end). Rows of revisions that no longer
 * exist (below rev_id) are skipped.
 */
static WrStatus next_row_of(Walk *w, Cursor *cur, int col, int64_t rev_id, bool *has)
{
    for (;;) {
        WrStatus st = cursor_peek(&w->c, cur, has);
        if (st != WR_OK || !*has) return st;
        bool ok = true;
        int64_t rid = f_int(cur, col, &ok);
        if (rid > rev_id) {
            *has = false;
            return WR_OK;
        }
        if (rid == rev_id) return WR_OK;
        cur->row++;
    }
}

/* The revision's contexts into the hash. */
static WrStatus hash_contexts(Walk *w, int64_t rev_id)
{
    bool has = false;
    WrStatus st = WR_OK;
    while ((st = next_row_of(w, &w->cc, 0, rev_id, &has)) == WR_OK && has) {
        bool cok = true;
        RevisionContext ctx;
        memset(&ctx, 0, sizeof(ctx));
        ctx.no = (int16_t)f_int(&w->cc, 1, &cok);
        Value raw = f_text(&w->cc, 2);
        ctx.raw = raw.data;
        ctx.raw_len = raw.len;
        /* A context text could not hold exactly enters by its stored hash. */
        Value raw_sum = f_text(&w->cc, 3);
        if (raw_sum.data && raw_sum.len == WALREV_CHECKSUM_LEN) ctx.raw_sha256 = (const uint8_t *)raw_sum.data;
        revhash_add_context(w->hh, &ctx);
        w->cc.row++;
    }
    return st;
}

/* The relation versions the revision covers into the hash, each checked against its stored checksum. */
static WrStatus hash_relations(Walk *w, int64_t rev_id, bool *bad)
{
    strbuf_reset(&w->covered);
    bool has = false;
    WrStatus st = WR_OK;
    while (!*bad && (st = next_row_of(w, &w->vc, R_REV, rev_id, &has)) == WR_OK && has) {
        RelationVersion *rv = &w->rv;
        bool read = read_relation(&w->vc, rv);
        Value stored_sum = f_text(&w->vc, R_CHECKSUM);
        uint8_t sum[WALREV_CHECKSUM_LEN];
        if (read) revhash_relation_digest(rv, sum);
        if (!read) {
            snprintf(w->why, w->why_size, "revision %" PRId64 ": relation version %d of relid %u: malformed row",
                     rev_id, (int)rv->version, rv->relid);
        } else if (stored_sum.len != WALREV_CHECKSUM_LEN || memcmp(stored_sum.data, sum, sizeof(sum)) != 0) {
            char a[17] = "(none)", b[17];
            if (stored_sum.len == WALREV_CHECKSUM_LEN) hex_prefix((const uint8_t *)stored_sum.data, a);
            hex_prefix(sum, b);
            snprintf(w->why, w->why_size,
                     "revision %" PRId64 ": relation version %d of %s.%s (relid %u): stored checksum %s… "
                     "but its row hashes to %s…",
                     rev_id, (int)rv->version, rv->nspname ? rv->nspname : "?", rv->relname ? rv->relname : "?",
                     rv->relid, a, b);
            read = false;
        }
        if (!read) {
            *w->first_bad = rev_id;
            *bad = true;
        } else {
            revhash_add_relation(w->hh, rv->relid, rv->version, sum);
            strbuf_appendf(&w->covered, "%s%s.%s version %d", w->covered.len ? ", " : "", rv->nspname, rv->relname,
                           (int)rv->version);
        }
        relation_version_term(rv);
        w->vc.row++;
    }
    return *bad ? WR_OK : st;
}

/* The revision's deltas into the hash. */
static WrStatus hash_deltas(Walk *w, int64_t rev_id, bool *bad)
{
    bool has = false;
    WrStatus st = WR_OK;
    while (!*bad && (st = next_row_of(w, &w->dc, D_REV, rev_id, &has)) == WR_OK && has) {
        if (!hash_delta(w->hh, &w->dc, w->has_erased, &w->sc, w->why, w->why_size, rev_id)) {
            *w->first_bad = rev_id;
            *bad = true;
        }
        w->dc.row++;
    }
    return *bad ? WR_OK : st;
}

/*
 * The revision at the revision cursor: its row read, its contexts,
 * relation versions and deltas hashed with prev as the parent checksum, the
 * result compared with what it stores. *bad with why and first_bad set when
 * it fails; else prev and *prev_id become its own.
 */
static WrStatus check_revision(Walk *w, uint8_t prev[WALREV_CHECKSUM_LEN], int64_t *prev_id, bool *bad)
{
    Cursor *rc = &w->rc;
    bool ok = true;
    Revision rev;
    memset(&rev, 0, sizeof(rev));
    rev.id = f_int(rc, 0, &ok);
    rev.xid = (uint32_t)f_int(rc, 1, &ok);
    rev.commit_lsn = (Lsn)f_int(rc, 2, &ok);
    rev.end_lsn = (Lsn)f_int(rc, 3, &ok);
    rev.commit_time = f_int(rc, 4, &ok);
    char *origin = f_str(rc, 5), *gid = f_str(rc, 6), *warnings = f_str(rc, 13);
    rev.origin = origin;
    rev.gid = gid;
    rev.n_insert = f_int(rc, 7, &ok);
    rev.n_update = f_int(rc, 8, &ok);
    rev.n_delete = f_int(rc, 9, &ok);
    rev.n_truncate = f_int(rc, 10, &ok);
    rev.n_snapshot = f_int(rc, 11, &ok);
    rev.n_suppressed = f_int(rc, 12, &ok);
    rev.warnings = warnings;
    Value stored = f_text(rc, 14);
    WrStatus st = WR_OK;
    if (!ok || stored.len != WALREV_CHECKSUM_LEN) {
        snprintf(w->why, w->why_size, "revision %" PRId64 ": malformed row (the checksum must be 32 bytes)", rev.id);
        *w->first_bad = rev.id;
        *bad = true;
    } else if (rev.id != *prev_id + 1) {
        snprintf(w->why, w->why_size, "revision %" PRId64 " is missing (the next stored revision is %" PRId64 ")",
                 *prev_id + 1, rev.id);
        *w->first_bad = *prev_id + 1;
        *bad = true;
    }
    memcpy(rev.parent_checksum, prev, WALREV_CHECKSUM_LEN);
    revhash_set_value_key(w->hh, rev.id >= w->keyed_from ? w->vkey : NULL);
    revhash_begin(w->hh);
    /* A quarantined revision (docs/history-store.md#quarantine) has its
     * content only in walrev.quarantine's raw msgpack: the chain links
     * through its stored checksum, the relation versions it covers are
     * checked against their own, and it must have no rows in the tables the
     * chain hashes. `walrev verify` reports every one. */
    bool quarantined = !*bad && f_text(rc, 15).len == 1 && f_text(rc, 15).data[0] == 1;
    if (quarantined) {
        bool has_row = f_text(rc, 16).len == 1 && f_text(rc, 16).data[0] == 1, has_ctx = false, has_delta = false;
        st = next_row_of(w, &w->cc, 0, rev.id, &has_ctx);
        if (st == WR_OK) st = next_row_of(w, &w->dc, D_REV, rev.id, &has_delta);
        if (st == WR_OK) st = hash_relations(w, rev.id, bad);
        bool raw_ok = f_text(rc, 17).len == 1 && f_text(rc, 17).data[0] == 1;
        if (st == WR_OK && !*bad && (!has_row || has_ctx || has_delta || !raw_ok)) {
            snprintf(w->why, w->why_size, "revision %" PRId64 ": flagged quarantined but %s", rev.id,
                     !has_row               ? "the quarantine table holds no row for it"
                     : has_ctx || has_delta ? "it has contexts or deltas in the tables"
                                            : "its quarantine row is not its own (xid, commit LSN, or the raw form "
                                              "lacks its checksum or its parent's)");
            *w->first_bad = rev.id;
            *bad = true;
        }
        if (st == WR_OK && !*bad) {
            memcpy(prev, stored.data, WALREV_CHECKSUM_LEN);
            *prev_id = rev.id;
        }
        free(origin);
        free(gid);
        free(warnings);
        return st;
    }
    if (!*bad) st = hash_contexts(w, rev.id);
    if (!*bad && st == WR_OK) st = hash_relations(w, rev.id, bad);
    if (!*bad && st == WR_OK) st = hash_deltas(w, rev.id, bad);
    if (!*bad && st == WR_OK) {
        revhash_finish(w->hh, &rev);
        if (memcmp(rev.checksum, stored.data, WALREV_CHECKSUM_LEN) != 0) {
            char a[17], b[17];
            hex_prefix((const uint8_t *)stored.data, a);
            hex_prefix(rev.checksum, b);
            const StrBuf *cv = &w->covered;
            snprintf(w->why, w->why_size, "revision %" PRId64 ": stored checksum %s… but its rows%s%s%s hash to %s…",
                     rev.id, a, cv->len ? " (and relation versions it covers: " : "", cv->len ? cv->data : "",
                     cv->len ? ")" : "", b);
            *w->first_bad = rev.id;
            *bad = true;
        }
    }
    if (!*bad && st == WR_OK) {
        memcpy(prev, stored.data, WALREV_CHECKSUM_LEN);
        *prev_id = rev.id;
    }
    free(origin);
    free(gid);
    free(warnings);
    return st;
}

WrStatus history_verify(PGconn *conn, const char *schema, int64_t *checked, int64_t *first_bad, char *why,
                        size_t why_size, WrError *err)
{
    *checked = 0;
    *first_bad = 0;
    if (why_size) why[0] = '\0';
    char *qs = store_quote_ident(schema);
    Walk w = {.c = {conn, err},
              .rc = {"walrev_verify_rev", NULL, 0, false},
              .cc = {"walrev_verify_ctx", NULL, 0, false},
              .dc = {"walrev_verify_delta", NULL, 0, false},
              .vc = {"walrev_verify_relation", NULL, 0, false},
              .hh = revhash_create(),
              .why = why,
              .why_size = why_size,
              .first_bad = first_bad,
              .keyed_from = INT64_MAX};
    strbuf_init(&w.covered);
    bool in_tx = false;
    WrStatus st;

    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        st = wr_error_set(err, WR_FATAL, "verify: the connection is not idle (inside a transaction)");
        goto done;
    }
    st = exec(&w.c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, "BEGIN");
    if (st != WR_OK) goto done;
    in_tx = true;
    st = open_cursors(&w, qs);
    if (st != WR_OK) goto done;

    st = read_value_key(&w.c, qs, &w.keyed_from, w.vkey);
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
    /* Pruned (walrev prune): the chain starts after the cut, from the
     * anchor, the checksum of the last revision dropped. */
    {
        int64_t before = 0;
        char on[16];
        st = verify_prune_anchor(conn, qs, &before, prev, on, sizeof(on), err);
        if (st != WR_OK) goto done;
        if (before > 0) prev_id = before - 1;
    }
    for (;;) {
        bool has = false, bad = false;
        st = cursor_peek(&w.c, &w.rc, &has);
        if (st != WR_OK || !has) break;
        st = check_revision(&w, prev, &prev_id, &bad);
        if (!bad && st == WR_OK) (*checked)++;
        w.rc.row++;
        if (bad || st != WR_OK) break;
    }
    /* What replay reads beyond the hashed rows (verify_reads.h). */
    if (st == WR_OK && *first_bad == 0) {
        PQclear(w.rc.res);
        PQclear(w.cc.res);
        PQclear(w.dc.res);
        w.rc.res = w.cc.res = w.dc.res = NULL;
        st = verify_contexts(conn, qs, first_bad, why, why_size, err);
        if (st == WR_OK && *first_bad == 0) {
            int64_t bad_keyframe = 0;
            st = verify_keyframes(conn, qs, &bad_keyframe, first_bad, why, why_size, err);
        }
        if (st == WR_OK && *first_bad == 0) st = verify_backfill(conn, qs, first_bad, why, why_size, err);
        if (st == WR_OK && *first_bad == 0 && w.has_erased) st = verify_erasures(&w.c, qs, first_bad, why, why_size);
        if (st == WR_OK && *first_bad != 0) *checked = *first_bad - 1;
    }

done:
    PQclear(w.rc.res);
    PQclear(w.cc.res);
    PQclear(w.dc.res);
    PQclear(w.vc.res);
    relation_version_term(&w.rv);
    strbuf_free(&w.covered);
    if (in_tx && PQstatus(conn) == CONNECTION_OK) {
        pgio_run_unchecked(conn, "ROLLBACK");
    }
    revhash_destroy(w.hh);
    free(w.sc.attrs);
    free(w.sc.hashes);
    free(qs);
    return st;
}
