/*
 * history_reader.c — the history store's reading side: old row images
 * rebuilt from the nearest keyframe and the object's deltas (one key, or a
 * read-ahead batch of one table), rows of tables without a key found by
 * their digest, every live row of a table, and the notes suppressed changes
 * leave. It reads on the writer's connection inside the open batch
 * (history_session.h); the deltas still in the writer's COPY buffer are sent
 * first only when a key asked for may be among them (the session's Bloom
 * filter of unsent keys). It never writes history rows: row digests it
 * (re)builds go through the session's queue, applied in the batch.
 */
#include "sink/history_reader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "pgio/pgio.h"
#include "schema/checksum.h"
#include "schema/digest.h"
#include "schema/rowcache.h"
#include "schema/rowfold.h"
#include "sink/history_session.h"

/* The gate the worker set: the writer does not record the revision in flight. */
static bool skips_current(const HistoryReader *r) { return r->skips_current && r->skips_current(r->skips_arg); }

WrStatus hreader_prepare(HistorySink *h, WrError *err)
{
    /*
     * An old image is the object's state after a revision: its row in the
     * nearest keyframe at or before it (unless the table was truncated since)
     * and its own deltas after that keyframe, folded here (rowfold.h). The
     * store keeps no current-row table to maintain on every change. $2 is an
     * array of keys: one for lookup_row, a read-ahead batch for prefetch_rows
     * (history_reader_lookup_row, history_reader_prefetch_rows).
     */
    const char *s = h->qschema;
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(
        &q,
        "WITH kf AS (SELECT k.id, k.revision_id FROM %1$s.keyframe k WHERE k.relid = $1 AND k.revision_id <= $3 "
        "  ORDER BY k.revision_id DESC, k.id DESC LIMIT 1), "
        /* + 0: the few truncates of the table come from the B-tree (key IS NULL),
         * never from the BRIN range since the keyframe */
        "t AS (SELECT d.revision_id, d.seq FROM %1$s.object_delta d WHERE d.relid = $1 AND d.key IS NULL "
        "  AND d.op = 'T' AND d.revision_id + 0 > coalesce((SELECT kf.revision_id FROM kf), 0) "
        "  AND d.revision_id + 0 <= $3 ORDER BY d.revision_id DESC, d.seq DESC LIMIT 1), "
        /* one B-tree probe per key: OFFSET 0 keeps the subquery per key, where the
         * planner, without statistics on a young store, joined all the table's
         * deltas since the keyframe to the keys instead */
        "k AS (SELECT DISTINCT u.key FROM unnest($2::text[]) AS u(key)) "
        /* the keyframe's rows likewise one probe per key, of the one chunk
         * that can hold it (format 7): a generic plan made while the
         * keyframe's table was empty or unanalysed hash-joined the keys to
         * every row of the keyframe, 40-60 ms a lookup at 60,000 rows */
        "SELECT kr.key COLLATE \"C\", 0 AS src, 0::bigint AS rev, 0 AS seq, ' '::\"char\" AS op, "
        "NULL::smallint[] AS ids, kr.vals "
        "FROM k CROSS JOIN kf CROSS JOIN LATERAL (SELECT kr.key, kr.vals FROM %1$s.keyframe_rows_of(kf.id, k.key) kr "
        "  OFFSET 0) kr "
        "WHERE NOT EXISTS (SELECT 1 FROM t) "
        "UNION ALL "
        "SELECT d.key, 1, d.revision_id, d.seq, d.op, d.col_ids, d.new_values "
        "FROM k CROSS JOIN LATERAL (SELECT * FROM %1$s.object_delta_arrays od WHERE od.relid = $1 AND od.key = k.key "
        "  AND od.revision_id > coalesce((SELECT kf.revision_id FROM kf), 0) AND od.revision_id <= $3 OFFSET 0) d "
        "WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.revision_id > d.revision_id "
        "  OR (t.revision_id = d.revision_id AND t.seq > d.seq)) "
        "ORDER BY 1, 2, 3, 4",
        s);
    /* Generic plans: the old-image lookup runs for every UPDATE or DELETE of a
     * row the cache lacks, and PostgreSQL kept planning it per call (custom
     * plans cost the same as the generic one here), 0.3-0.5 ms of the
     * store's backend each, more than the lookup itself. The session's other
     * statements are one-row writes whose plans do not depend on values. */
    WrStatus st =
        hsession_run(h, "SET plan_cache_mode = force_generic_plan", 0, NULL, "setting plan_cache_mode", NULL, err);
    if (st == WR_OK) st = hsession_prepare(h, "walrev_lookup", q.data, 3, err);
    /* An object an UPDATE moved here from another key: follow its lineage in SQL. */
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_appendf(&q, "SELECT %s.object_image($1, $2, $3)", s);
        st = hsession_prepare(h, "walrev_image", q.data, 3, err);
    }
    strbuf_free(&q);
    /* The first execution builds the generic plan and fills the session's
     * catalog caches (6-8 ms against ~0.6 later): done here rather than on the
     * first change that needs an old image. No key: nothing is read. */
    if (st == WR_OK) {
        const char *none[3] = {"0", "{}", "0"};
        PGresult *res;
        (void)pgio_exec_prepared(h->conn, "walrev_lookup", 3, none, 0, &res);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) st = hsession_fail(h, res, err, "warming up the old-image lookup");
        PQclear(res);
    }
    return st;
}

/* A looked-up image, laid out in the caller's storage for the assembler. */
typedef struct {
    const RelationVersion *rv;
    RowImage *image;
    StrBuf *storage;
    bool found;
    bool based;
    /* hidden columns' digests from row_digest: col_id and 32 bytes each */
    const int16_t *hidden_ids;
    const uint8_t *hidden_digests;
    int nhidden;
} LookupOut;

/* The digest row_digest holds for a hidden column, or NULL. */
static const uint8_t *hidden_digest_of(const LookupOut *o, int col_id)
{
    for (int i = 0; i < o->nhidden; i++)
        if (o->hidden_ids[i] == col_id) return o->hidden_digests + (size_t)i * DIGEST_LEN;
    return NULL;
}

static WrStatus lookup_emit(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                            int maxcol, bool based, WrError *err)
{
    (void)key;
    (void)key_len;
    (void)err;
    LookupOut *o = arg;
    const RelationVersion *rv = o->rv;
    StrBuf *storage = o->storage;
    /* Offsets first: storage may move while values are appended. */
    size_t *off = xcalloc(rv->ncols ? rv->ncols : 1, sizeof(size_t));
    for (uint16_t i = 0; i < rv->ncols; i++) {
        int c = rv->cols[i].col_id;
        if (rv->cols[i].track == TRACK_HIDDEN) {
            /* the history has no hidden value; what it has is the digest */
            const uint8_t *d = hidden_digest_of(o, c);
            if (!d) continue;
            off[i] = storage->len;
            strbuf_append(storage, (const char *)d, DIGEST_LEN);
            continue;
        }
        if (c < 1 || c > maxcol || !vals[c]) continue;
        off[i] = storage->len;
        strbuf_append(storage, vals[c], strlen(vals[c]));
    }
    size_t pad = (8 - storage->len % 8) % 8;
    size_t values_at = storage->len + pad;
    size_t unknown_at = values_at + (size_t)rv->ncols * sizeof(Value);
    strbuf_reserve(storage, pad + (size_t)rv->ncols * (sizeof(Value) + 1));
    storage->len = unknown_at + rv->ncols;
    storage->data[storage->len] = '\0';
    Value *values = (Value *)(void *)(storage->data + values_at);
    uint8_t *unknown = (uint8_t *)(storage->data + unknown_at);
    for (uint16_t i = 0; i < rv->ncols; i++) {
        int c = rv->cols[i].col_id;
        if (rv->cols[i].track == TRACK_HIDDEN) {
            bool d = hidden_digest_of(o, c) != NULL;
            values[i].data = d ? storage->data + off[i] : NULL;
            values[i].len = d ? DIGEST_LEN : 0;
            unknown[i] = !d;
            continue;
        }
        bool have = c >= 1 && c <= maxcol && known[c];
        bool has_value = have && vals[c];
        values[i].data = has_value ? storage->data + off[i] : NULL;
        values[i].len = has_value ? strlen(vals[c]) : 0;
        unknown[i] = !have; /* e.g. a column added after the row was last written */
    }
    free(off);
    o->image->relver = rv;
    o->image->values = values;
    o->image->unknown = unknown;
    o->found = true;
    o->based = based;
    return WR_OK;
}

static WrStatus lookup_failed(HistorySink *h, PGresult *res, WrError *err)
{
    char what[160];
    snprintf(what, sizeof(what), "looking up an old row image in %s", h->qschema);
    WrStatus st = hsession_fail(h, res, err, what);
    PQclear(res);
    return st;
}

/* The point lookups answer at: the revision in flight, else the last one received; and rv's relid, as SQL text. */
static void lookup_point(const HistorySink *h, const RelationVersion *rv, char rel[16], char rev[32])
{
    snprintf(rel, 16, "%" PRIu32, rv->relid);
    snprintf(rev, 32, "%" PRId64, h->lookup_as_of ? h->lookup_as_of : h->in_revision ? h->cur_id : h->next_id_base);
}

static int max_col_id(const RelationVersion *rv)
{
    int maxcol = 0;
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (rv->cols[i].col_id > maxcol) maxcol = rv->cols[i].col_id;
    return maxcol;
}

/*
 * Run the lookup statement for keys (of one table, as of the point lookup_row
 * answers now) and fold each key's rows into emit. The open batch's own
 * deltas count: they are sent first when one of keys may be among them.
 */
static WrStatus run_lookup(HistorySink *h, const RelationVersion *rv, const char *const *keys, int nkeys,
                           RowFoldEmit emit, void *arg, WrError *err)
{
    WrStatus st = WR_OK;
    bool send = h->in_tx && hsession_maybe_unsent(h, rv->relid, "");
    for (int i = 0; !send && h->in_tx && i < nkeys; i++) send = hsession_maybe_unsent(h, rv->relid, keys[i]);
    if (send) st = hsession_send_buffer(h, TB_DELTA, err);
    /* The queued row-digest changes stay queued: this statement reads no
     * row_digest (its readers apply the queue first), and applying it here
     * cost a round trip and a PL/pgSQL call per lookup — about one per source
     * transaction of a keyless table's INSERT and a keyed UPDATE (pgbench). */
    if (st == WR_OK) st = hsession_await_copy(h, err);
    if (st != WR_OK) return st;
    char rel[16], rev[32];
    lookup_point(h, rv, rel, rev);
    StrBuf arr;
    strbuf_init(&arr);
    hsession_append_text_array(&arr, keys, nkeys);
    const char *p[3] = {rel, arr.data, rev};
    PGresult *res;
    (void)pgio_exec_prepared(h->conn, "walrev_lookup", 3, p, 1, &res);
    strbuf_free(&arr);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) return lookup_failed(h, res, err);
    RowFold *fold = rowfold_create(max_col_id(rv), emit, arg);
    /* key, src, rev, seq, op, col_ids, vals */
    for (int i = 0; st == WR_OK && i < PQntuples(res); i++) {
        RowFoldTuple t = {
            .key = PQgetvalue(res, i, 0),
            .key_len = (size_t)PQgetlength(res, i, 0),
            .from_keyframe = PQgetlength(res, i, 1) == 4 && PQgetvalue(res, i, 1)[3] == 0,
            .op = PQgetlength(res, i, 4) == 1 ? PQgetvalue(res, i, 4)[0] : '?',
            .col_ids = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5),
            .col_ids_len = (size_t)PQgetlength(res, i, 5),
            .vals = PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
            .vals_len = (size_t)PQgetlength(res, i, 6),
        };
        st = rowfold_add(fold, &t, err);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    rowfold_destroy(fold);
    PQclear(res);
    return st;
}

/*
 * What row_digest holds for one row besides its identity digest: the hidden
 * columns' digests (into *ids and *digests, caller frees) and whether its
 * image is stale (changed under suppression).
 */
static WrStatus read_row_digests(HistorySink *h, const RelationVersion *rv, const char *key, int16_t **ids,
                                 uint8_t **digests, int *n, bool *stale, WrError *err)
{
    *ids = NULL;
    *digests = NULL;
    *n = 0;
    *stale = false;
    if (!hsession_rel_has_hidden(rv) && !hsession_rel_marked(h, rv->relid)) return WR_OK;
    WrStatus st = hsession_dg_apply(h, err);
    if (st == WR_OK) st = hsession_await_copy(h, err);
    if (st != WR_OK) return st;
    char rel[16];
    snprintf(rel, sizeof(rel), "%" PRIu32, rv->relid);
    const char *p[2] = {rel, key};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT col_id::text, encode(digest, 'hex') FROM %s.row_digest "
                   "WHERE relid = $1 AND key = $2 AND col_id <> 0",
                   h->qschema);
    PGresult *res = NULL;
    char what[160];
    snprintf(what, sizeof(what), "reading %s.row_digest", h->qschema);
    st = hsession_run(h, q.data, 2, p, what, &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    int rows = PQntuples(res);
    *ids = xcalloc((size_t)rows + 1, sizeof(int16_t));
    *digests = xcalloc((size_t)rows + 1, DIGEST_LEN);
    for (int i = 0; i < rows; i++) {
        int col = atoi(PQgetvalue(res, i, 0));
        const char *hex = PQgetvalue(res, i, 1);
        if (col == DG_STALE) {
            *stale = true;
            continue;
        }
        if (col <= 0 || strlen(hex) != 2 * DIGEST_LEN) continue;
        uint8_t *d = *digests + (size_t)*n * DIGEST_LEN;
        for (int k = 0; k < DIGEST_LEN; k++) {
            unsigned v = 0;
            sscanf(hex + 2 * k, "%2x", &v);
            d[k] = (uint8_t)v;
        }
        (*ids)[(*n)++] = (int16_t)col;
    }
    PQclear(res);
    return WR_OK;
}

WrStatus history_reader_lookup_row(HistoryReader *r, const RelationVersion *rv, const char *key, RowImage *image,
                                   StrBuf *storage, bool *found, WrError *err)
{
    HistorySink *h = r->h;
    *found = false;
    WrStatus st = hsession_check_usable(h, err, "lookup_row");
    if (st != WR_OK) return st;
    size_t mark = storage->len;
    LookupOut out = {rv, image, storage, false, false, NULL, NULL, 0};
    int16_t *hidden_ids = NULL;
    uint8_t *hidden_digests = NULL;
    bool stale = false;
    st = read_row_digests(h, rv, key, &hidden_ids, &hidden_digests, &out.nhidden, &stale, err);
    if (st != WR_OK || stale) {
        /* changed under suppression since the history last saw it: unknown */
        free(hidden_ids);
        free(hidden_digests);
        return st;
    }
    out.hidden_ids = hidden_ids;
    out.hidden_digests = hidden_digests;
    st = run_lookup(h, rv, &key, 1, lookup_emit, &out, err);
    char rel[16], rev[32];
    lookup_point(h, rv, rel, rev);
    if (st == WR_OK && out.found && !out.based) {
        /* Built from updates alone: the row came from another key (an UPDATE of
         * its key) or predates the history; the SQL lineage knows which. */
        storage->len = mark;
        out.found = false;
        const char *p[3] = {rel, key, rev};
        PGresult *res;
        (void)pgio_exec_prepared(h->conn, "walrev_image", 3, p, 1, &res);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            free(hidden_ids);
            free(hidden_digests);
            return lookup_failed(h, res, err);
        }
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
            RowFold *fold = rowfold_create(max_col_id(rv), lookup_emit, &out);
            RowFoldTuple t = {.key = key,
                              .key_len = strlen(key),
                              .from_keyframe = true,
                              .vals = PQgetvalue(res, 0, 0),
                              .vals_len = (size_t)PQgetlength(res, 0, 0)};
            st = rowfold_add(fold, &t, err);
            if (st == WR_OK) st = rowfold_finish(fold, err);
            rowfold_destroy(fold);
        }
        PQclear(res);
    }
    free(hidden_ids);
    free(hidden_digests);
    if (st != WR_OK) {
        storage->len = mark;
        return wr_error_prefix(err, "history store: old image of relid %s key %s", rel, key);
    }
    *found = out.found;
    return WR_OK;
}

/*
 * One folded row as an image under rv, laid out in storage (reset), and its
 * key as a C string in keybuf: both valid until the next call.
 */
static WrStatus image_of(const RelationVersion *rv, const char *key, size_t key_len, const char *const *vals,
                         const bool *known, int maxcol, StrBuf *storage, StrBuf *keybuf, RowImage *image, WrError *err)
{
    strbuf_reset(storage);
    LookupOut one = {rv, image, storage, false, false, NULL, NULL, 0};
    WrStatus st = lookup_emit(&one, key, key_len, vals, known, maxcol, true, err);
    if (st != WR_OK) return st;
    strbuf_reset(keybuf);
    strbuf_append(keybuf, key, key_len);
    return WR_OK;
}

/* A read-ahead batch's images, handed over one key at a time. */
typedef struct {
    const RelationVersion *rv;
    StrBuf storage, key;
    void (*found)(void *arg, const char *key, const RowImage *image);
    void *arg;
    StrBuf seen; /* every key the fold emitted (based or not), NUL-separated */
} PrefetchOut;

static int cmp_key(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

static WrStatus prefetch_emit(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                              int maxcol, bool based, WrError *err)
{
    PrefetchOut *o = arg;
    strbuf_append(&o->seen, key, key_len);
    strbuf_append_char(&o->seen, '\0');
    /* Built from updates alone needs the SQL lineage: left to lookup_row. */
    if (!based) return WR_OK;
    RowImage image = {0};
    WrStatus st = image_of(o->rv, key, key_len, vals, known, maxcol, &o->storage, &o->key, &image, err);
    if (st == WR_OK) o->found(o->arg, o->key.data, &image);
    return st;
}

WrStatus history_reader_prefetch_rows(HistoryReader *r, const RelationVersion *rv, const char *const *keys, int nkeys,
                                      void (*found)(void *arg, const char *key, const RowImage *image),
                                      void (*absent)(void *arg, const char *key), void *arg, WrError *err)
{
    HistorySink *h = r->h;
    WrStatus st = hsession_check_usable(h, err, "prefetch_rows");
    if (st != WR_OK || nkeys == 0) return st;
    /* Hidden digests and stale marks are read key by key: left to lookup_row. */
    if (hsession_rel_has_hidden(rv) || hsession_rel_marked(h, rv->relid)) return WR_OK;
    PrefetchOut out = {.rv = rv, .found = found, .arg = arg};
    strbuf_init(&out.storage);
    strbuf_init(&out.key);
    strbuf_init(&out.seen);
    st = run_lookup(h, rv, keys, nkeys, prefetch_emit, &out, err);
    if (st == WR_OK) {
        /* Keys the fold never emitted have no row in the store (never seen, or deleted). */
        size_t nseen = 0;
        for (size_t i = 0; i < out.seen.len; i++) nseen += out.seen.data[i] == '\0';
        const char **seen = xcalloc(nseen + 1, sizeof(char *));
        size_t k = 0;
        for (size_t i = 0; i < out.seen.len; i += strlen(out.seen.data + i) + 1) seen[k++] = out.seen.data + i;
        qsort(seen, nseen, sizeof(char *), cmp_key);
        for (int i = 0; i < nkeys; i++)
            if (!bsearch(&keys[i], seen, nseen, sizeof(char *), cmp_key)) absent(arg, keys[i]);
        free(seen);
    }
    strbuf_free(&out.seen);
    strbuf_free(&out.storage);
    strbuf_free(&out.key);
    if (st != WR_OK)
        return wr_error_prefix(err, "history store: old images of %d rows of relid %" PRIu32, nkeys, rv->relid);
    return WR_OK;
}

/* ---------- rows without a key, suppressed changes ---------- */

typedef struct {
    const RelationVersion *rv;
    WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err);
    void *arg;
    StrBuf storage, key;
} ScanOut;

static WrStatus scan_emit(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                          int maxcol, bool based, WrError *err)
{
    ScanOut *o = arg;
    (void)based;
    RowImage image = {0};
    WrStatus st = image_of(o->rv, key, key_len, vals, known, maxcol, &o->storage, &o->key, &image, err);
    return st == WR_OK ? o->row(o->arg, o->key.data, &image, err) : st;
}

/*
 * Every live row, streamed: a cursor over snapshot_rows read SCAN_FETCH
 * rows at a time, so neither the result nor the rows are held whole (a
 * DDL's restatement of a large table). The cursor's snapshot is taken at
 * its DECLARE, before the first row(): what row() writes in the batch is
 * never read back.
 */
enum { SCAN_FETCH = 2000 };
static WrStatus scan_rows(HistorySink *h, const RelationVersion *rv,
                          WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err), void *arg,
                          WrError *err)
{
    WrStatus st = hsession_check_usable(h, err, "scan_rows");
    if (st == WR_OK) st = hsession_ensure_tx(h, err);
    if (st == WR_OK) st = hsession_send_all(h, err);
    if (st == WR_OK) st = hsession_await_copy(h, err);
    if (st == WR_OK) st = hsession_dg_apply(h, err);
    if (st != WR_OK) return st;
    char rel[16], rev[32], cur[40], what[160];
    lookup_point(h, rv, rel, rev);
    static unsigned long scans;
    snprintf(cur, sizeof(cur), "walrev_scan_%lu", ++scans); /* unique: a failed scan's stays open in the batch */
    snprintf(what, sizeof(what), "reading the rows of relid %s from %s", rel, h->qschema);
    const char *p[2] = {rel, rev};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "DECLARE %s NO SCROLL CURSOR FOR SELECT key, vals FROM %s.snapshot_rows($1, $2)"
                   " WHERE key IS NOT NULL",
                   cur, h->qschema);
    st = hsession_run(h, q.data, 2, p, what, NULL, err);
    ScanOut out = {rv, row, arg, {0}, {0}};
    strbuf_init(&out.storage);
    strbuf_init(&out.key);
    RowFold *fold = rowfold_create(max_col_id(rv), scan_emit, &out);
    strbuf_reset(&q);
    strbuf_appendf(&q, "FETCH %d FROM %s", SCAN_FETCH, cur);
    for (int got = SCAN_FETCH; st == WR_OK && got == SCAN_FETCH;) {
        /* row() may have sent deltas: their COPY's result first */
        st = hsession_await_copy(h, err);
        if (st != WR_OK) break;
        PGresult *res = NULL;
        (void)pgio_exec_binary(h->conn, q.data, 0, NULL, &res);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            st = hsession_fail(h, res, err, what);
            PQclear(res);
            break;
        }
        got = PQntuples(res);
        for (int i = 0; st == WR_OK && i < got; i++) {
            RowFoldTuple t = {.key = PQgetvalue(res, i, 0),
                              .key_len = (size_t)PQgetlength(res, i, 0),
                              .from_keyframe = true,
                              .vals = PQgetvalue(res, i, 1),
                              .vals_len = (size_t)PQgetlength(res, i, 1)};
            st = rowfold_add(fold, &t, err);
        }
        PQclear(res);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    rowfold_destroy(fold);
    strbuf_free(&out.storage);
    strbuf_free(&out.key);
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_appendf(&q, "CLOSE %s", cur);
        st = hsession_run(h, q.data, 0, NULL, what, NULL, err);
    }
    strbuf_free(&q);
    return st;
}

WrStatus history_reader_scan_rows(HistoryReader *r, const RelationVersion *rv,
                                  WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err),
                                  void *arg, WrError *err)
{
    if (skips_current(r)) return WR_OK;
    return scan_rows(r->h, rv, row, arg, err);
}

static WrStatus redigest_row(void *arg, const char *key, const RowImage *image, WrError *err)
{
    (void)err;
    HistorySink *h = arg;
    uint8_t d[DIGEST_LEN];
    digest_row(&h->dkey, image->relver, image->values, image->unknown, d);
    hsession_dg_queue(h, image->relver->relid, key, 0, d, DIGEST_LEN);
    return WR_OK;
}

/*
 * Rebuild a keyless table's identity digests from the rows the history holds,
 * under rv: once per version and session, when a row is not found. Rows of
 * a store older than row_digest have none, and a column dropped since (or a
 * key dropped) changes what a row's digest covers.
 */
static WrStatus redigest(HistorySink *h, const RelationVersion *rv, bool *done, WrError *err)
{
    *done = false;
    for (size_t i = 0; i < h->nredigested; i++)
        if (h->redigested[i].relid == rv->relid && h->redigested[i].version == rv->version) return WR_OK;
    if (h->nredigested == h->capredigested) {
        h->capredigested = h->capredigested ? 2 * h->capredigested : 8;
        h->redigested = xrealloc(h->redigested, h->capredigested * sizeof(RelSeen));
    }
    h->redigested[h->nredigested++] = (RelSeen){rv->relid, rv->version, false};
    hsession_dg_queue(h, rv->relid, NULL, 0, NULL, 0);    /* forget the table's digests ... */
    WrStatus st = scan_rows(h, rv, redigest_row, h, err); /* ... and make them anew */
    if (st == WR_OK) st = hsession_dg_apply(h, err);
    *done = st == WR_OK;
    if (*done)
        log_info("msg=\"row digests rebuilt\" table=%s.%s version=%" PRId32, rv->nspname, rv->relname, rv->version);
    return st;
}

WrStatus history_reader_find_row(HistoryReader *r, const RelationVersion *rv, const uint8_t digest[DIGEST_LEN],
                                 const char *const *exclude, int nexclude, StrBuf *key, bool *found, WrError *err)
{
    HistorySink *h = r->h;
    *found = false;
    if (skips_current(r)) return WR_OK;
    WrStatus st = hsession_check_usable(h, err, "find_row");
    if (st == WR_OK) st = hsession_ensure_tx(h, err);
    if (st == WR_OK) st = hsession_dg_apply(h, err);
    if (st != WR_OK) return st;
    char rel[16], hex[2 * DIGEST_LEN + 1];
    snprintf(rel, sizeof(rel), "%" PRIu32, rv->relid);
    checksum_to_hex(digest, hex);
    StrBuf ex, q;
    strbuf_init(&ex);
    hsession_append_text_array(&ex, exclude, nexclude);
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT key FROM %s.row_digest WHERE relid = $1 AND col_id = 0 "
                   "AND digest = decode($2, 'hex') AND key <> ALL ($3::text[]) LIMIT 1",
                   h->qschema);
    const char *p[3] = {rel, hex, ex.data};
    char what[160];
    snprintf(what, sizeof(what), "finding a row without a key in %s.row_digest", h->qschema);
    for (int attempt = 0; attempt < 2 && st == WR_OK; attempt++) {
        PGresult *res = NULL;
        st = hsession_run(h, q.data, 3, p, what, &res, err);
        if (st != WR_OK) break;
        if (PQntuples(res) == 1) {
            strbuf_reset(key);
            strbuf_append_str(key, PQgetvalue(res, 0, 0));
            *found = true;
        }
        PQclear(res);
        if (*found || attempt || exclude) break; /* the backfill's version is not the stream's: no rebuild */
        bool again = false;
        st = redigest(h, rv, &again, err);
        if (!again) break;
    }
    strbuf_free(&q);
    strbuf_free(&ex);
    return st;
}

WrStatus history_reader_note_suppressed(HistoryReader *r, const RelationVersion *rv, DeltaOp op, const char *key,
                                        const uint8_t *row_digest, WrError *err)
{
    HistorySink *h = r->h;
    if (skips_current(r)) return WR_OK;
    WrStatus st = hsession_check_usable(h, err, "note_suppressed");
    if (st != WR_OK) return st;
    if (!digest_rel_has_key(rv)) {
        /* the row's identity follows it; no value is recorded */
        if (op == DELTA_DELETE)
            hsession_dg_queue(h, rv->relid, key, DG_END_ROW, NULL, 0);
        else if (row_digest)
            hsession_dg_queue(h, rv->relid, key, 0, row_digest, DIGEST_LEN);
    } else if (op != DELTA_INSERT) {
        static const uint8_t none[1] = {0};
        hsession_dg_queue(h, rv->relid, key, DG_STALE, none, 0);
        hsession_rel_mark(h, rv->relid);
    }
    return h->dg_n >= DG_APPLY_AT ? hsession_dg_apply(h, err) : WR_OK;
}

/* ---------- handles ---------- */

void history_reader_set_gate(HistoryReader *r, bool (*skips)(void *arg), void *arg)
{
    r->skips_current = skips;
    r->skips_arg = arg;
}

/* The HistoryLookup members; ctx NULL is the reader of no history, which knows nothing. */
static WrStatus lookup_cb(void *ctx, const RelationVersion *rv, const char *key, RowImage *image, StrBuf *storage,
                          bool *found, WrError *err)
{
    *found = false;
    return ctx ? history_reader_lookup_row(ctx, rv, key, image, storage, found, err) : WR_OK;
}

static WrStatus prefetch_cb(void *ctx, const RelationVersion *rv, const char *const *keys, int nkeys,
                            void (*found)(void *arg, const char *key, const RowImage *image),
                            void (*absent)(void *arg, const char *key), void *arg, WrError *err)
{
    return ctx ? history_reader_prefetch_rows(ctx, rv, keys, nkeys, found, absent, arg, err) : WR_OK;
}

static WrStatus find_row_cb(void *ctx, const RelationVersion *rv, const uint8_t digest[DIGEST_LEN],
                            const char *const *exclude, int nexclude, StrBuf *key, bool *found, WrError *err)
{
    *found = false;
    return ctx ? history_reader_find_row(ctx, rv, digest, exclude, nexclude, key, found, err) : WR_OK;
}

static WrStatus note_suppressed_cb(void *ctx, const RelationVersion *rv, DeltaOp op, const char *key,
                                   const uint8_t *row_digest, WrError *err)
{
    return ctx ? history_reader_note_suppressed(ctx, rv, op, key, row_digest, err) : WR_OK;
}

static WrStatus scan_rows_cb(void *ctx, const RelationVersion *rv,
                             WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err),
                             void *arg, WrError *err)
{
    return ctx ? history_reader_scan_rows(ctx, rv, row, arg, err) : WR_OK;
}

HistoryLookup history_reader_lookup(HistoryReader *r)
{
    return (HistoryLookup){.ctx = r,
                           .lookup = lookup_cb,
                           .prefetch = prefetch_cb,
                           .find_row = find_row_cb,
                           .note_suppressed = note_suppressed_cb,
                           .scan_rows = scan_rows_cb};
}
