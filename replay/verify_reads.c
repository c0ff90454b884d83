/*
 * verify_reads.c — see verify_reads.h. The chain hashes a context's raw
 * message, not the columns parsed from it, and no keyframe at all (keyframes
 * are taken after their revisions commit); so these columns are checked by
 * deriving them again from what the chain covers, with the worker's own
 * parser and the replay's own fold, rather than by a second hash that
 * whoever can write the tables could recompute.
 */
#include "replay/verify_reads.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "decoder/context.h"
#include "pgio/pgio.h"
#include "replay/internal.h"
#include "schema/kfchunk.h"
#include "schema/rowfold.h"

#define FETCH_ROWS 500
/* The revision warning the worker writes when a user claims the reserved actor type. */
#define RESERVED_WARNING "is reserved for walrev itself"

/* Run sql (text results); *out gets the result when wanted. */
static WrStatus run(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **out,
                    const char *what, WrError *err)
{
    char label[160];
    snprintf(label, sizeof(label), "verify: %s", what);
    return pgio_run(conn, sql, nparams, params, out, err, label);
}

/* run() of the statement fmt builds from the quoted schema qs and numbers (safe as they are). */
static WrStatus runf(PGconn *conn, int nparams, const char *const *params, PGresult **out, const char *what,
                     WrError *err, const char *fmt, ...) WR_PRINTF(7, 8);
static WrStatus runf(PGconn *conn, int nparams, const char *const *params, PGresult **out, const char *what,
                     WrError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = xvasprintf(fmt, ap);
    va_end(ap);
    WrStatus st = run(conn, sql, nparams, params, out, what, err);
    free(sql);
    return st;
}

/* Whether the history schema qs has table name yet (one a later store format added). */
static WrStatus has_table(PGconn *conn, const char *qs, const char *name, bool *have, WrError *err)
{
    char what[64];
    snprintf(what, sizeof(what), "looking for the %s table", name);
    PGresult *res = NULL;
    WrStatus st = runf(conn, 0, NULL, &res, what, err, "SELECT to_regclass('%s.%s') IS NOT NULL", qs, name);
    *have = st == WR_OK && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return st;
}

static const char *field(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static bool text_equal(const char *stored, bool has, const StrBuf *derived)
{
    if (!has || !stored) return !has && !stored;
    return strlen(stored) == derived->len && memcmp(stored, derived->data, derived->len) == 0;
}

/* jsonb prints JSON its own way (spacing, key order): compare as values. */
static bool json_text_equal(const char *stored, bool has, const StrBuf *derived)
{
    if (!has || !stored) return !has && !stored;
    json_t *a = json_loads(stored, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *b = json_loadb(derived->data, derived->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    bool eq = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

/* One context row against its raw message; returns the name of the first column that differs, or NULL. */
static const char *context_mismatch(const PGresult *r, int row, ParsedContext *p, StrBuf *scratch)
{
    const char *raw = field(r, row, 2);
    bool hashed = field(r, row, 3)[0] == 't';
    bool reserved_warned = field(r, row, 9)[0] == 't';
    const char *type = field(r, row, 4), *id = field(r, row, 5), *actor = field(r, row, 6), *desc = field(r, row, 7),
               *meta = field(r, row, 8);
    if (hashed) {
        /* Not text the worker could parse (or over the bound): nothing was applied from it. */
        context_parse(p, "", 0, 0, NULL, scratch); /* resets p: every field absent */
    } else {
        strbuf_reset(scratch);
        /* Only walrev's own contexts may carry the reserved actor type; a user's claim left a
         * warning on its revision (which the chain covers), and was parsed untrusted. */
        /* The signature needs the source's key, which the history store does not hold: the
         * worker checked it; here a well-formed attestation gives the identity columns. */
        context_parse(p, raw ? raw : "", raw ? strlen(raw) : 0,
                      (reserved_warned ? 0 : CONTEXT_TRUSTED) | CONTEXT_ATTEST_UNCHECKED, NULL, scratch);
    }
    if (!text_equal(type, p->has_actor_type, &p->actor_type)) return "actor_type";
    if (!text_equal(id, p->has_actor_id, &p->actor_id)) return "actor_id";
    if (!json_text_equal(actor, p->has_actor_json, &p->actor_json)) return "actor";
    if (!text_equal(desc, p->has_description, &p->description)) return "description";
    if (!json_text_equal(meta, p->has_meta, &p->meta_json)) return "meta";
    const char *attested = field(r, row, 10);
    if (attested && attested[0] == 't' && !p->attested) return "attested";
    bool att = attested && attested[0] == 't';
    if (!text_equal(field(r, row, 11), att, &p->session_user)) return "db_session_user";
    if (!text_equal(field(r, row, 12), att && p->has_current_user, &p->current_user)) return "db_current_user";
    if (!text_equal(field(r, row, 13), att, &p->application_name)) return "application_name";
    /* Strict mode's verdict needs keys and bindings verify has not: a true one must be possible,
     * by the way it names (an application's signature, an attested role, walrev's own actor). */
    const char *verified = field(r, row, 14), *by = field(r, row, 15);
    bool ver = verified && verified[0] == 't';
    if (ver != (by != NULL)) return "verified_by";
    if (ver) {
        bool possible = false;
        if (strncmp(by, "key:", 4) == 0)
            possible = p->has_signature;
        else if (strncmp(by, "role:", 5) == 0)
            possible =
                att && (strcmp(by + 5, p->session_user.data ? p->session_user.data : "") == 0 ||
                        (p->has_current_user && p->current_user.data && strcmp(by + 5, p->current_user.data) == 0));
        else if (strcmp(by, "walrev") == 0)
            possible = p->has_actor_type && strcmp(p->actor_type.data, CONTEXT_RESERVED_ACTOR_TYPE) == 0;
        if (!possible) return "actor_verified";
    }
    return NULL;
}

WrStatus verify_contexts(PGconn *conn, const char *qs, int64_t *first_bad, char *why, size_t why_size, WrError *err)
{
    *first_bad = 0;
    ParsedContext p;
    context_init(&p);
    StrBuf scratch;
    strbuf_init(&scratch);
    PGresult *res = NULL;
    WrStatus st;

    /* A revision's actor columns are its first context's (NULL without one). */
    st = runf(conn, 0, NULL, &res, "comparing revisions with their first contexts", err,
              "SELECT r.id, CASE WHEN r.actor_type IS DISTINCT FROM c.actor_type THEN 'actor_type' "
              "WHEN r.actor_id IS DISTINCT FROM c.actor_id THEN 'actor_id' "
              "WHEN r.actor IS DISTINCT FROM c.actor THEN 'actor' "
              "WHEN r.description IS DISTINCT FROM c.description THEN 'description' "
              "WHEN r.meta IS DISTINCT FROM c.meta THEN 'meta' "
              "WHEN (r.actor_verified, r.verified_by) IS DISTINCT FROM (c.actor_verified, c.verified_by) "
              "THEN 'actor_verified' ELSE 'server-side user' END "
              "FROM %1$s.revision r LEFT JOIN %1$s.revision_context c "
              "ON c.revision_id = r.id AND c.context_no = 1 "
              "WHERE (r.actor_type, r.actor_id, r.actor, r.description, r.meta, r.attested, "
              "r.db_session_user, r.db_current_user, r.application_name, r.actor_verified, r.verified_by) "
              "IS DISTINCT FROM (c.actor_type, c.actor_id, c.actor, c.description, c.meta, "
              "coalesce(c.attested, false), c.db_session_user, c.db_current_user, c.application_name, "
              "c.actor_verified, c.verified_by) "
              "ORDER BY r.id LIMIT 1",
              qs);
    if (st != WR_OK) goto done;
    if (PQntuples(res) == 1) {
        *first_bad = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(why, why_size, "revision %" PRId64 ": its %s is not that of its first context", *first_bad,
                 PQgetvalue(res, 0, 1));
        /* a context row may fail earlier: go on looking, the lowest revision wins */
    }
    PQclear(res);
    res = NULL;

    st = runf(conn, 0, NULL, NULL, "opening the context cursor", err,
              "DECLARE walrev_verify_reads NO SCROLL CURSOR FOR "
              "SELECT c.revision_id, c.context_no, c.raw, c.raw_sha256 IS NOT NULL, c.actor_type, c.actor_id, "
              "c.actor::text, c.description, c.meta::text, "
              "coalesce(strpos(r.warnings, '" RESERVED_WARNING "') > 0, false), "
              "c.attested, c.db_session_user, c.db_current_user, c.application_name, c.actor_verified, "
              "c.verified_by "
              "FROM %1$s.revision_context c LEFT JOIN %1$s.revision r ON r.id = c.revision_id "
              "ORDER BY c.revision_id, c.context_no",
              qs);
    if (st != WR_OK) goto done;
    for (bool more = true; more;) {
        char fetch[64];
        snprintf(fetch, sizeof(fetch), "FETCH %d FROM walrev_verify_reads", FETCH_ROWS);
        st = run(conn, fetch, 0, NULL, &res, "fetching contexts", err);
        if (st != WR_OK) goto done;
        int n = PQntuples(res);
        more = n == FETCH_ROWS;
        for (int i = 0; i < n; i++) {
            int64_t rid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            if (*first_bad && rid > *first_bad) { /* at the same revision, the context is the cause */
                more = false;
                break;
            }
            const char *col = context_mismatch(res, i, &p, &scratch);
            if (col) {
                *first_bad = rid;
                snprintf(why, why_size, "revision %" PRId64 ": context %s's %s is not what its raw message says", rid,
                         PQgetvalue(res, i, 1), col);
                more = false;
                break;
            }
        }
        PQclear(res);
        res = NULL;
    }
    st = run(conn, "CLOSE walrev_verify_reads", 0, NULL, NULL, "closing the context cursor", err);

done:
    PQclear(res);
    context_term(&p);
    strbuf_free(&scratch);
    return st;
}

/* ---------- keyframes ---------- */

/* SipHash-2-4 (Aumasson and Bernstein's reference): a keyed 64-bit hash. Its
 * key is drawn afresh by each verify, so a keyframe row cannot be forged to
 * hash as the image's row does without knowing it. */
#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL64(v[1], 13) ^ v[0];
    v[0] = ROTL64(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL64(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = ROTL64(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = ROTL64(v[1], 17) ^ v[2];
    v[2] = ROTL64(v[2], 32);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

static uint64_t siphash24(const uint8_t key[16], const uint8_t *in, size_t len)
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v[4] = {k0 ^ UINT64_C(0x736f6d6570736575), k1 ^ UINT64_C(0x646f72616e646f6d),
                     k0 ^ UINT64_C(0x6c7967656e657261), k1 ^ UINT64_C(0x7465646279746573)};
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le64(in + i);
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++) b |= (uint64_t)in[whole + i] << (8 * i);
    v[3] ^= b;
    sipround(v);
    sipround(v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++) sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* A row of the keyframe checked: its key (in KfCheck.keys) and its values' digest. */
typedef struct {
    const char *key; /* set once the keys are all read (the buffer moves while they are) */
    size_t off;
    uint32_t len;
    uint64_t digest;
} KfKey;

/*
 * One keyframe's check: its rows read from its chunks (schema/kfchunk.h, the
 * snapshot's decoder) as sorted (key, digest) pairs, then the image rebuilt
 * from the deltas walked against them in the same key order: the first key
 * where the two differ is the lowest, as the SQL comparison's ORDER BY gave.
 * Memory: the keys and 24 bytes per row, not the rows' values.
 */
typedef struct {
    uint8_t sipkey[16];
    int maxcol;
    StrBuf keys;
    KfKey *row;
    size_t n, cap;
    StrBuf norm;  /* scratch: a row's values as digested */
    KfVal *split; /* scratch: a literal's values by position */
    size_t split_cap;
    size_t at;    /* the next keyframe row not yet met by the image */
    bool differs; /* bad_key holds the first key that differs */
    bool malformed;
    StrBuf bad_key;
} KfCheck;

/* Keys in "C" order: bytewise, a prefix first. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int kfkey_cmp(const void *a, const void *b)
{
    const KfKey *x = a, *y = b;
    return key_cmp(x->key, x->len, y->key, y->len);
}

/*
 * The digest of vals[1..last] (len -1: NULL): every non-NULL value with its
 * position. The SQL check compared positions 1 to the longer array's length,
 * absent and NULL alike; both sides are digested over a range that covers
 * that (the table's highest column id, or the keyframe's array length).
 */
static uint64_t vals_digest(KfCheck *c, const KfVal *vals, long last)
{
    strbuf_reset(&c->norm);
    for (long g = 1; g <= last; g++) {
        if (vals[g].len < 0) continue;
        uint8_t h[8];
        wr_write_u32(h, (uint32_t)g);
        wr_write_u32(h + 4, (uint32_t)vals[g].len);
        strbuf_append(&c->norm, h, 8);
        strbuf_append(&c->norm, vals[g].p, (size_t)vals[g].len);
    }
    return siphash24(c->sipkey, (const uint8_t *)(c->norm.len ? c->norm.data : ""), c->norm.len);
}

/* A literal (written in place) split into c->split by position; *last: the range vals_digest covers. */
static bool split_literal(KfCheck *c, char *lit, int32_t len, long *last)
{
    /* elements: at most len / 2 + 1; positions past both that and maxcol are never compared */
    size_t need = (size_t)(len > 0 ? len : 0) / 2 + 2 + (size_t)c->maxcol;
    if (need > c->split_cap) {
        free(c->split);
        c->split_cap = need;
        c->split = xcalloc(need, sizeof(KfVal));
    }
    long lo, hi;
    int bound = (int)(need - 1);
    if (!kfchunk_split_row(lit, len, c->split, bound, &lo, &hi)) return false;
    long card = hi >= lo ? hi - lo + 1 : 0;
    *last = card > c->maxcol ? card : c->maxcol;
    return true;
}

static void differ(KfCheck *c, const char *key, size_t len)
{
    c->differs = true;
    strbuf_reset(&c->bad_key);
    strbuf_append(&c->bad_key, key, len);
}

/* The image's next row (keys ascending): matched against the keyframe's rows in step. */
static void image_row(KfCheck *c, const char *key, size_t len, uint64_t digest)
{
    if (c->differs) return;
    if (c->at < c->n) {
        const KfKey *k = &c->row[c->at];
        int cmp = key_cmp(k->key, k->len, key, len);
        if (cmp < 0) { /* a keyframe row the image has not */
            differ(c, k->key, k->len);
            return;
        }
        if (cmp == 0) {
            c->at++;
            if (digest != k->digest) differ(c, key, len);
            return;
        }
    }
    differ(c, key, len); /* an image row the keyframe has not */
}

/* The keyframe's rows from its chunks, in key order, as (key, digest); a malformed chunk sets c->malformed. */
static WrStatus load_keyframe(PGconn *conn, const char *qs, const char *id, KfCheck *c, WrError *err)
{
    char *q = xasprintf("COPY (SELECT c.keys, c.rows FROM %s.keyframe_chunk c WHERE c.keyframe_id = %s "
                        "ORDER BY c.first_key) TO STDOUT (FORMAT binary)",
                        qs, id);
    const char *what = "verify: reading a keyframe's chunks";
    CopyReader r;
    WrStatus st = replay_copy_open(&r, conn, q, what, err);
    free(q);
    if (st != WR_OK) return st;
    CopyTuple *batch = xmalloc(COPY_BATCH * sizeof(CopyTuple));
    int got = 0;
    while (!c->malformed && (got = replay_copy_next(&r, 2, batch, COPY_BATCH, what, err)) > 0) {
        for (int t = 0; t < got && !c->malformed; t++) {
            KfChunk ch;
            KfVal key, row;
            int more = kfchunk_open(&ch, batch[t].f[0], batch[t].fl[0], batch[t].f[1], batch[t].fl[1]) ? 1 : -1;
            while (more > 0 && (more = kfchunk_next(&ch, &key, &row)) > 0) {
                long last;
                if (key.len < 0 || !split_literal(c, r.buf.data + (row.p - r.buf.data), row.len, &last)) {
                    more = -1;
                    break;
                }
                if (c->n == c->cap) {
                    c->cap = c->cap ? 2 * c->cap : 4096;
                    c->row = xrealloc(c->row, c->cap * sizeof(KfKey));
                }
                c->row[c->n++] = (KfKey){NULL, c->keys.len, (uint32_t)key.len, vals_digest(c, c->split, last)};
                strbuf_append(&c->keys, key.p, (size_t)key.len);
            }
            c->malformed = more < 0;
        }
    }
    if (got < 0) st = err->status;
    free(batch);
    st = replay_copy_close(&r, st, what, err);
    bool sorted = true;
    for (size_t i = 0; i < c->n; i++) {
        c->row[i].key = c->keys.data + c->row[i].off;
        if (i > 0 && sorted) sorted = kfkey_cmp(&c->row[i - 1], &c->row[i]) < 0;
    }
    /* chunks out of order or overlapping (a repair by hand): the rows compared in key order all the same */
    if (!sorted) qsort(c->row, c->n, sizeof(KfKey), kfkey_cmp);
    return st;
}

static WrStatus image_emit(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                           int maxcol, bool based, WrError *err)
{
    (void)based;
    (void)err;
    KfCheck *c = arg;
    if (c->differs) return WR_OK;
    for (int i = 1; i <= maxcol; i++)
        c->split[i] = known[i] && vals[i] ? (KfVal){vals[i], (int32_t)strlen(vals[i])} : (KfVal){NULL, -1};
    image_row(c, key, key_len, vals_digest(c, c->split, maxcol));
    return WR_OK;
}

/*
 * The image the keyframe should hold, walked against it (image_row): the
 * keyframe before it (its chunks) and the deltas since, folded in C as the
 * keyframe thread folds them (rowfold_query, schema/rowfold.h); when an
 * UPDATE moved rows between keys, snapshot_rows() sorted by key.
 */
static WrStatus walk_image(PGconn *conn, const char *qs, const PGresult *plan, const char *relid, const char *rev,
                           KfCheck *c, WrError *err)
{
    const char *what = "verify: rebuilding a keyframe from the deltas";
    StrBuf q;
    strbuf_init(&q);
    WrStatus st = run(conn, "SET LOCAL work_mem = '64MB'", 0, NULL, NULL, "setting work_mem", err);
    if (st != WR_OK) goto done;
    if (c->split_cap < (size_t)c->maxcol + 1) {
        free(c->split);
        c->split_cap = (size_t)c->maxcol + 1;
        c->split = xcalloc(c->split_cap, sizeof(KfVal));
    }
    if (PQgetvalue(plan, 0, 4)[0] == 't') {
        strbuf_appendf(&q,
                       "COPY (SELECT key COLLATE \"C\", vals::text FROM %s.snapshot_rows(%s::oid, %s::bigint) "
                       "ORDER BY 1) TO STDOUT (FORMAT binary)",
                       qs, relid, rev);
        CopyReader r;
        if ((st = replay_copy_open(&r, conn, q.data, what, err)) != WR_OK) goto done;
        CopyTuple *batch = xmalloc(COPY_BATCH * sizeof(CopyTuple));
        int got = 0;
        while ((got = replay_copy_next(&r, 2, batch, COPY_BATCH, what, err)) > 0)
            for (int t = 0; t < got && st == WR_OK; t++) {
                long last;
                if (batch[t].fl[0] < 0 ||
                    !split_literal(c, r.buf.data + ((const char *)batch[t].f[1] - r.buf.data), batch[t].fl[1], &last))
                    st = wr_error_set(err, WR_PROTOCOL, "%s: a malformed row of snapshot_rows()", what);
                else
                    image_row(c, (const char *)batch[t].f[0], (size_t)batch[t].fl[0], vals_digest(c, c->split, last));
            }
        if (got < 0 && st == WR_OK) st = err->status;
        free(batch);
        st = replay_copy_close(&r, st, what, err);
        goto done;
    }
    rowfold_query(&q, qs, (uint32_t)strtoul(relid, NULL, 10), PQgetisnull(plan, 0, 0) ? NULL : PQgetvalue(plan, 0, 0),
                  PQgetvalue(plan, 0, 1), strtoll(rev, NULL, 10), PQgetvalue(plan, 0, 2), PQgetvalue(plan, 0, 3), 0);
    PGresult *res;
    bool ok = pgio_exec(conn, q.data, 0, NULL, &res) && PQresultStatus(res) == PGRES_COPY_OUT;
    if (!ok) st = pgio_fail(conn, res, err, "%s", what);
    PQclear(res);
    if (st != WR_OK) goto done;
    RowFold *fold = rowfold_create(c->maxcol, image_emit, c);
    char *msg;
    int n;
    while ((n = PQgetCopyData(conn, &msg, 0)) > 0) {
        if (st == WR_OK) st = rowfold_feed(fold, msg, (size_t)n, err); /* drained on error */
        PQfreemem(msg);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    rowfold_destroy(fold);
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && st == WR_OK) st = pgio_fail(conn, res, err, "%s", what);
        PQclear(res);
    }
    if (st == WR_PROTOCOL) wr_error_prefix(err, "%s", what);
done:
    strbuf_free(&q);
    return st;
}

static void kfcheck_term(KfCheck *c)
{
    strbuf_free(&c->keys);
    strbuf_free(&c->norm);
    strbuf_free(&c->bad_key);
    free(c->row);
    free(c->split);
}

/*
 * Keyframe row i of kf (id, relid, revision, n_rows, table name) against the
 * image rebuilt from the deltas with this keyframe and those after it hidden
 * from keyframe_at; a keyframe that differs sets *bad_keyframe,
 * *bad_revision and why.
 */
static WrStatus check_keyframe(PGconn *conn, const char *qs, const PGresult *kf, int i, int64_t *bad_keyframe,
                               int64_t *bad_revision, char *why, size_t why_size, WrError *err)
{
    const char *id = PQgetvalue(kf, i, 0), *relid = PQgetvalue(kf, i, 1), *rev = PQgetvalue(kf, i, 2);
    const char *set[1] = {id};
    WrStatus st = run(conn, "SELECT set_config('walrev.keyframe_below', $1, true)", 1, set, NULL,
                      "hiding a keyframe from keyframe_at", err);
    if (st != WR_OK) return st;
    KfCheck c = {0};
    strbuf_init(&c.keys);
    strbuf_init(&c.norm);
    strbuf_init(&c.bad_key);
    PGresult *plan = NULL;
    const char *params[2] = {relid, rev};
    st = runf(conn, 2, params, &plan, "planning a keyframe's check", err,
              "SELECT p.keyframe_id, p.from_rev, p.cut_rev, p.cut_seq, p.key_changes, %1$s.max_col_id($1::oid) "
              "FROM %1$s.snapshot_plan_by_key($1::oid, $2::bigint, 0) p",
              qs);
    if (st != WR_OK) goto done;
    if (!PQgetisnull(plan, 0, 0) && strcmp(PQgetvalue(plan, 0, 0), id) == 0) {
        st = wr_error_set(err, WR_FATAL,
                          "verify: the history schema's keyframe_at() predates keyframe checks: run "
                          "`walrev setup` to update it");
        goto done;
    }
    c.maxcol = atoi(PQgetvalue(plan, 0, 5));
    if (getentropy(c.sipkey, sizeof(c.sipkey)) != 0) {
        st = wr_error_set(err, WR_FATAL, "verify: no random bytes for the keyframe check's hash key");
        goto done;
    }
    if ((st = load_keyframe(conn, qs, id, &c, err)) != WR_OK) goto done;
    if (!c.malformed && (st = walk_image(conn, qs, plan, relid, rev, &c, err)) != WR_OK) goto done;
    if (!c.malformed && !c.differs && c.at < c.n) differ(&c, c.row[c.at].key, c.row[c.at].len);
    char count[24];
    snprintf(count, sizeof(count), "%zu", c.n);
    if (c.malformed || c.differs || strcmp(count, PQgetvalue(kf, i, 3)) != 0) {
        *bad_keyframe = strtoll(id, NULL, 10);
        *bad_revision = strtoll(rev, NULL, 10);
        if (c.malformed)
            snprintf(why, why_size, "keyframe %s of %s at revision %s: a chunk is malformed", id, PQgetvalue(kf, i, 4),
                     rev);
        else if (c.differs)
            snprintf(why, why_size,
                     "keyframe %s of %s at revision %s: the row of key %.200s differs from what the deltas give", id,
                     PQgetvalue(kf, i, 4), rev, c.bad_key.len ? c.bad_key.data : "");
        else
            snprintf(why, why_size, "keyframe %s of %s at revision %s: n_rows %s but %s rows", id, PQgetvalue(kf, i, 4),
                     rev, PQgetvalue(kf, i, 3), count);
    }
done:
    PQclear(plan);
    kfcheck_term(&c);
    return st;
}

WrStatus verify_keyframes(PGconn *conn, const char *qs, int64_t *bad_keyframe, int64_t *bad_revision, char *why,
                          size_t why_size, WrError *err)
{
    *bad_keyframe = 0;
    *bad_revision = 0;
    PGresult *kf = NULL;
    WrStatus st;

    /* The keyframes prune took at its cut (before - 1) stand on dropped
     * deltas: like the anchor they are taken as given, and every later
     * keyframe is checked against them and the deltas kept. */
    int64_t before = 0;
    uint8_t anchor[32];
    char on[16];
    st = verify_prune_anchor(conn, qs, &before, anchor, on, sizeof(on), err);
    if (st != WR_OK) goto done;
    char from[24];
    snprintf(from, sizeof(from), "%lld", (long long)before);
    const char *fp[1] = {from};
    /* Keyframes are few (one per keyframe_factor x rows changes of a table): read them at once. */
    st = runf(conn, 1, fp, &kf, "reading the keyframes", err,
              "SELECT k.id, k.relid, k.revision_id, k.n_rows, "
              "coalesce((SELECT v.nspname || '.' || v.relname FROM %1$s.relation_version v "
              "WHERE v.relid = k.relid ORDER BY v.version DESC LIMIT 1), k.relid::text) "
              "FROM %1$s.keyframe k WHERE k.revision_id >= $1::bigint ORDER BY k.relid, k.revision_id, k.id",
              qs);
    if (st != WR_OK) goto done;
    for (int i = 0; i < PQntuples(kf) && st == WR_OK && !*bad_keyframe; i++)
        st = check_keyframe(conn, qs, kf, i, bad_keyframe, bad_revision, why, why_size, err);
    if (st != WR_OK) goto done;
    st = run(conn, "SELECT set_config('walrev.keyframe_below', '', true)", 0, NULL, NULL, "restoring keyframe_at", err);

done:
    PQclear(kf);
    return st;
}

WrStatus verify_backfill(PGconn *conn, const char *qs, int64_t *first_bad, char *why, size_t why_size, WrError *err)
{
    *first_bad = 0;
    PGresult *res = NULL;
    bool have = false;
    WrStatus st = has_table(conn, qs, "backfill", &have, err);
    if (st != WR_OK || !have) goto done;
    int64_t before = 0;
    uint8_t anchor[32];
    char on[16];
    st = verify_prune_anchor(conn, qs, &before, anchor, on, sizeof(on), err);
    if (st != WR_OK) goto done;
    bool pruned = before > 0;
    /*
     * The chunk revisions of each table (walrev's own contexts only: a user
     * claiming actor type walrev is recorded without an actor) with their
     * snapshot rows. A chunk that added nothing makes no revision, so the
     * record's job is found as the run of revisions after the last one
     * whose next chunk number does not grow (a new job counts from 1), and
     * rows_recorded must be the snapshot rows of a tail of that run (or 0);
     * chunks and rows_read at least what its last revision says.
     */
    st = runf(
        conn, 0, NULL, &res, "comparing the baseline records with their chunk revisions", err,
        "WITH ch AS (SELECT c.revision_id, (c.meta->'backfill'->>'relid')::oid AS relid, "
        "  (c.meta->'backfill'->>'chunk')::int AS chunk, (c.meta->'backfill'->>'rows_read')::bigint AS rows_read "
        "  FROM %1$s.revision_context c WHERE c.actor_type = 'walrev' AND c.actor_id = 'baseline' "
        "  AND c.meta ? 'backfill'), "
        "rec AS (SELECT ch.*, (SELECT count(*) FROM %1$s.object_delta d WHERE d.revision_id = ch.revision_id "
        "  AND d.relid = ch.relid AND d.op = 'S') AS recorded FROM ch), "
        "ord AS (SELECT rec.*, lead(chunk) OVER (PARTITION BY relid ORDER BY revision_id) AS next_chunk FROM rec), "
        "brk AS (SELECT relid, max(revision_id) AS last_break FROM ord WHERE next_chunk <= chunk GROUP BY relid), "
        "run AS (SELECT o.*, sum(o.recorded) OVER (PARTITION BY o.relid ORDER BY o.revision_id DESC) AS tail "
        "  FROM ord o LEFT JOIN brk b ON b.relid = o.relid WHERE o.revision_id > coalesce(b.last_break, 0)), "
        "job AS (SELECT relid, max(revision_id) AS last_rev, (array_agg(chunk ORDER BY revision_id DESC))[1] AS "
        "  last_chunk, (array_agg(rows_read ORDER BY revision_id DESC))[1] AS last_read, "
        "  (array_agg(chunk ORDER BY revision_id))[1] AS first_chunk, array_agg(tail) AS tails, "
        "  sum(recorded) AS total FROM run GROUP BY relid), "
        "setup AS (SELECT DISTINCT c.revision_id FROM %1$s.revision_context c WHERE c.actor_type = 'walrev' "
        "  AND c.actor_id = 'baseline' AND NOT coalesce(c.meta ? 'backfill', false)) "
        "SELECT format('%%I.%%I', b.nspname, b.relname), b.relid, b.chunks, b.rows_read, b.rows_recorded, "
        "  j.last_chunk, j.last_read, j.total, b.rows_recorded = 0 OR b.rows_recorded = ANY (j.tails), "
        "  (SELECT count(*) FROM %1$s.object_delta d WHERE d.relid = b.relid AND d.op = 'S' "
        "    AND d.revision_id IN (SELECT revision_id FROM setup)), "
        "  coalesce(j.last_rev, (SELECT max(id) FROM %1$s.revision)), (SELECT min(revision_id) FROM setup), "
        "  j.relid IS NOT NULL, j.first_chunk "
        "FROM %1$s.backfill b LEFT JOIN job j ON j.relid = b.relid "
        "WHERE b.chunks > 0 OR b.state = 'done' "
        "ORDER BY 11, 2",
        qs);
    if (st != WR_OK) goto done;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *table = PQgetvalue(res, i, 0);
        long long chunks = atoll(PQgetvalue(res, i, 2)), rows_read = atoll(PQgetvalue(res, i, 3)),
                  recorded = atoll(PQgetvalue(res, i, 4));
        int64_t rev = strtoll(PQgetvalue(res, i, 10), NULL, 10);
        bool has_job = PQgetvalue(res, i, 12)[0] == 't';
        if (chunks == 0) {
            /* setup's baseline (done, no chunks): its snapshot rows of the table */
            long long derived = atoll(PQgetvalue(res, i, 9));
            /* A table whose rows the history does not keep (walrev's own context_key in a FOR ALL
             * TABLES publication: counted by setup, never recorded) has none there: not compared. */
            if (recorded == derived || derived == 0) continue;
            *first_bad = PQgetisnull(res, i, 11) ? rev : strtoll(PQgetvalue(res, i, 11), NULL, 10);
            snprintf(why, why_size,
                     "revision %" PRId64 ": the baseline record of %s says rows_recorded %lld, the baseline's "
                     "snapshot rows of it %lld",
                     *first_bad, table, recorded, derived);
            break;
        }
        if (!has_job) {
            if (recorded == 0) continue; /* every chunk added nothing (an empty table): no revision */
            if (pruned) continue;        /* its chunk revisions were before the cut (walrev prune) */
            *first_bad = rev;
            snprintf(why, why_size,
                     "the baseline record of %s says %lld rows recorded in %lld chunks, but no chunk revision of relid "
                     "%s exists",
                     table, recorded, chunks, PQgetvalue(res, i, 1));
            break;
        }
        long long last_chunk = atoll(PQgetvalue(res, i, 5)), last_read = atoll(PQgetvalue(res, i, 6)),
                  total = atoll(PQgetvalue(res, i, 7));
        bool recorded_ok = PQgetvalue(res, i, 8)[0] == 't';
        /* Pruned in the middle of the job (its first kept chunk is not chunk
         * 1): the record counts the dropped chunks' rows too, so it can only
         * be checked to cover the kept ones. */
        if (!recorded_ok && pruned && atoll(PQgetvalue(res, i, 13)) > 1) recorded_ok = recorded >= total;
        *first_bad = rev;
        if (!recorded_ok)
            snprintf(why, why_size,
                     "revision %" PRId64
                     ": the baseline record of %s says rows_recorded %lld, its chunk revisions %lld",
                     rev, table, recorded, total);
        else if (chunks < last_chunk)
            snprintf(why, why_size,
                     "revision %" PRId64
                     ": the baseline record of %s says chunks %lld, its last chunk revision is chunk "
                     "%lld",
                     rev, table, chunks, last_chunk);
        else if (rows_read < last_read)
            snprintf(why, why_size,
                     "revision %" PRId64 ": the baseline record of %s says rows_read %lld, fewer than its last chunk "
                     "revision read (%lld)",
                     rev, table, rows_read, last_read);
        else
            *first_bad = 0;
        if (*first_bad) break;
    }
done:
    PQclear(res);
    return st;
}

WrStatus verify_prune_anchor(PGconn *conn, const char *qs, int64_t *before, uint8_t anchor[32], char *pruned_on,
                             size_t pruned_on_size, WrError *err)
{
    *before = 0;
    memset(anchor, 0, 32);
    if (pruned_on_size) pruned_on[0] = '\0';
    PGresult *res = NULL;
    bool have = false;
    WrStatus st = has_table(conn, qs, "prune", &have, err);
    if (st != WR_OK || !have) goto done;
    st = runf(conn, 0, NULL, &res, "reading the prune anchor", err,
              "SELECT before_id, encode(anchor, 'hex'), pruned_at::date::text FROM %s.prune "
              "ORDER BY before_id DESC LIMIT 1",
              qs);
    if (st != WR_OK || PQntuples(res) == 0) goto done;
    const char *hex = PQgetvalue(res, 0, 1);
    if (strlen(hex) != 64) {
        st = wr_error_set(err, WR_FATAL, "verify: the prune anchor before revision %s is not 32 bytes",
                          PQgetvalue(res, 0, 0));
        goto done;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            st = wr_error_set(err, WR_FATAL, "verify: the prune anchor is not hex");
            goto done;
        }
        anchor[i] = (uint8_t)v;
    }
    *before = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(pruned_on, pruned_on_size, "%s", PQgetvalue(res, 0, 2));
done:
    PQclear(res);
    return st;
}
