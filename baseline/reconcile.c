/*
 * reconcile.c — the history against the live tables (see reconcile.h). Both
 * sides are digested by the servers: a row is md5(ROW(c1, c2, ...)::text)
 * over its tracked columns, the history's from snapshot_rows() (the text
 * each value was recorded in), the table's from the columns themselves,
 * whose record output is the same text. Only keys and digests cross the
 * wire unless the caller wants the values (a gap revision records them).
 * It never writes anything; verify's snapshot comes from a temporary slot,
 * so it exactly meets the position the worker's slot must have passed.
 */
#include "baseline/reconcile.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decoder/assembler.h"
#include "decoder/stream.h"
#include "pgio/pgio.h"
#include "schema/store_sql.h"

/* ---- the history's side: key (or a row's digest) -> digest, copies ---- */

typedef struct {
    char *key; /* keyed: the stored key; multiset: the digest */
    char digest[33];
    char *row;     /* multiset: ROW(...)::text */
    int64_t count; /* multiset: copies in the history */
    int64_t src;   /* multiset: copies in the table */
    bool seen;
} Entry;

typedef struct {
    Entry *slots;
    size_t cap, n;
} Map;

static uint64_t str_hash(const char *s) { return wr_fnv1a(s, strlen(s), WR_FNV_BASIS); }

static void map_grow(Map *m)
{
    size_t cap = m->cap ? 2 * m->cap : 1024;
    Entry *slots = xcalloc(cap, sizeof(Entry));
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) continue;
        size_t j = (size_t)str_hash(m->slots[i].key) & (cap - 1);
        while (slots[j].key) j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

static Entry *map_find(const Map *m, const char *key)
{
    if (!m->cap) return NULL;
    for (size_t j = (size_t)str_hash(key) & (m->cap - 1); m->slots[j].key; j = (j + 1) & (m->cap - 1))
        if (strcmp(m->slots[j].key, key) == 0) return &m->slots[j];
    return NULL;
}

/* A new entry for key (the caller knows it is absent). */
static Entry *map_add(Map *m, const char *key)
{
    if (2 * (m->n + 1) > m->cap) map_grow(m);
    size_t j = (size_t)str_hash(key) & (m->cap - 1);
    while (m->slots[j].key) j = (j + 1) & (m->cap - 1);
    m->n++;
    m->slots[j].key = xstrdup(key);
    return &m->slots[j];
}

static void map_free(Map *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
        free(m->slots[i].row);
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* ---- one table ---- */

void reconcile_table_term(ReconTable *t)
{
    if (!t) return;
    backfill_table_free(&t->table);
    memset(t, 0, sizeof(*t));
}

WrStatus reconcile_enter_snapshot(PGconn *src, const char *snapshot, const char *publication, const char *what,
                                  WrError *err)
{
    StrBuf sql;
    strbuf_init(&sql);
    char *s = PQescapeLiteral(src, snapshot, strlen(snapshot));
    char *p = PQescapeLiteral(src, publication, strlen(publication));
    strbuf_appendf(&sql,
                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT %s; "
                   "SELECT set_config('walrev.publication', %s, true)",
                   s, p);
    PQfreemem(s);
    PQfreemem(p);
    WrStatus st = pgio_run(src, sql.data, 0, NULL, NULL, err, what);
    strbuf_free(&sql);
    return st;
}

WrStatus reconcile_list_published(PGconn *src, const char *what, PGresult **out, WrError *err)
{
    return pgio_run(src,
                    "SELECT c.oid, format('%I.%I', n.nspname, c.relname), n.nspname, c.relname "
                    "FROM pg_publication_tables pt JOIN pg_namespace n ON n.nspname = pt.schemaname "
                    "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                    "WHERE pt.pubname = current_setting('walrev.publication') AND c.relkind <> 'f' ORDER BY 2",
                    0, NULL, out, err, what);
}

bool reconcile_records_table(const BaselineConfig *cfg, const char *nsp, const char *rel)
{
    return !tracking_table_excluded(cfg->tracking, nsp, rel) && strcmp(nsp, cfg->history_schema) != 0;
}

WrStatus reconcile_history_at(PGconn *hist, const char *schema_q, Lsn before, int64_t *rev, WrError *err)
{
    *rev = 0;
    WrStatus st =
        pgio_run(hist, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, err, "history store");
    if (st != WR_OK) return st;
    char lsn[32], q[256];
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(before));
    snprintf(q, sizeof(q), "SELECT coalesce(max(id), 0) FROM %s.revision%s", schema_q,
             before ? " WHERE commit_lsn < $1::pg_lsn" : "");
    const char *p[1] = {lsn};
    PGresult *r;
    st = pgio_run(hist, q, before ? 1 : 0, before ? p : NULL, &r, err,
                  before ? "finding the revision at the comparison point" : "reading the last revision");
    if (st != WR_OK) return st;
    *rev = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return WR_OK;
}

/* The history's column ids by the names the table has now; 0 where the history has no such column. */
static WrStatus history_columns(const ReconQuery *q, ReconTable *out, int16_t *ids, WrError *err)
{
    const BackfillTable *t = &out->table;
    char relid[16], rev[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, out->relid);
    snprintf(rev, sizeof(rev), "%" PRId64, q->rev);
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   /* LEFT JOIN: a version without a column is in the history all the same (one row of
                    * NULLs), or its rows would all be taken for new */
                   "SELECT c.name, c.id FROM %s.relation_at($1::oid, $2::bigint) rv "
                   "LEFT JOIN LATERAL unnest(rv.col_names, rv.col_ids) AS c(name, id) ON true",
                   q->schema_q);
    const char *params[2] = {relid, rev};
    PGresult *r;
    WrStatus st = pgio_run(q->hist, sql.data, 2, params, &r, err, "reconcile: reading the table's relation version");
    strbuf_free(&sql);
    if (st != WR_OK) return st;
    out->in_history = PQntuples(r) > 0;
    for (int i = 0; i < t->ncols; i++) {
        ids[i] = 0;
        for (int k = 0; k < PQntuples(r); k++)
            if (strcmp(PQgetvalue(r, k, 0), t->cols[i].name) == 0) ids[i] = (int16_t)atoi(PQgetvalue(r, k, 1));
    }
    PQclear(r);
    return WR_OK;
}

/* ROW(...)::text of the compared columns, on either side. */
/* Column i as the compared text: the history's value (s.vals[col_id], NULL when it has none) or the live column. */
static void append_column(StrBuf *b, const ReconTable *rt, uint16_t i, PGconn *c, const int16_t *hist_ids, bool history)
{
    const RelationVersion *rv = rt->rv;
    if (history && hist_ids[i] > 0) {
        strbuf_appendf(b, "s.vals[%d]", hist_ids[i]);
    } else if (history) {
        strbuf_append_str(b, "NULL::text");
    } else {
        char *id = PQescapeIdentifier(c, rv->cols[i].name, strlen(rv->cols[i].name));
        strbuf_append_str(b, id);
        PQfreemem(id);
    }
}

static void row_expr(StrBuf *b, const ReconTable *rt, PGconn *c, const int16_t *hist_ids, bool history)
{
    const RelationVersion *rv = rt->rv;
    int n = 0;
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (rv->cols[i].track != TRACK_FULL) continue;
        strbuf_append_str(b, n++ ? ", " : "ROW(");
        append_column(b, rt, i, c, hist_ids, history);
    }
    strbuf_append_str(b, n ? ")::text" : "''::text");
}

/* ---- chunks ---- */

/* Rows are placed by a 60-bit hash; each level splits a chunk 256 ways. */
#define CHUNK_BITS 60
#define CHUNK_FANOUT_BITS 8
#define CHUNK_MAX_LEVELS 4
/* Differing chunks holding at most this many rows (the larger side) are compared row by row. */
#define CHUNK_LEAF_ROWS 2000

/* Do the key columns (all tracked in full) identify a row? Then chunks go by key. */
static bool chunk_by_key(const ReconTable *rt)
{
    if (rt->multiset) return false;
    const RelationVersion *rv = rt->rv;
    int n = 0;
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (!rv->cols[i].is_key) continue;
        if (rv->cols[i].track != TRACK_FULL) return false;
        n++;
    }
    return n > 0;
}

/* The text a row's chunk is hashed from: ROW(key columns)::text, or the whole compared row. */
static void chunk_text(StrBuf *b, const ReconTable *rt, PGconn *c, const int16_t *hist_ids, bool history)
{
    if (!chunk_by_key(rt)) {
        row_expr(b, rt, c, hist_ids, history);
        return;
    }
    const RelationVersion *rv = rt->rv;
    int n = 0;
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (!rv->cols[i].is_key) continue;
        strbuf_append_str(b, n++ ? ", " : "ROW(");
        append_column(b, rt, i, c, hist_ids, history);
    }
    strbuf_append_str(b, ")::text");
}

/* The row's 60-bit chunk hash, as SQL (the same text on both servers, so the same number). */
static void chunk_hash(StrBuf *b, const ReconTable *rt, PGconn *c, const int16_t *hist_ids, bool history)
{
    strbuf_append_str(b, "('x' || substr(md5(");
    chunk_text(b, rt, c, hist_ids, history);
    strbuf_append_str(b, "), 1, 15))::bit(60)::bigint");
}

/* The chunk filter: rows whose hash's top bits are one of prefixes (an array literal of bigints). */
typedef struct {
    int shift;            /* bits dropped: CHUNK_BITS - level * CHUNK_FANOUT_BITS */
    const char *prefixes; /* NULL: every row */
} ChunkFilter;

static void chunk_where(StrBuf *b, const ChunkFilter *f, const ReconTable *rt, PGconn *c, const int16_t *ids,
                        bool history, bool has_where)
{
    if (!f || !f->prefixes) return;
    strbuf_append_str(b, has_where ? " AND (" : " WHERE (");
    chunk_hash(b, rt, c, ids, history);
    strbuf_appendf(b, ") >> %d = ANY('%s'::bigint[])", f->shift, f->prefixes);
}

static WrStatus load_history(const ReconQuery *q, ReconTable *out, const int16_t *ids, Map *m, const ChunkFilter *cf,
                             WrError *err)
{
    if (!out->in_history) return WR_OK;
    char relid[16], rev[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, out->relid);
    snprintf(rev, sizeof(rev), "%" PRId64, q->rev);
    StrBuf sql;
    strbuf_init(&sql);
    if (out->multiset) {
        strbuf_append_str(&sql, "SELECT md5(x.r), count(*), min(x.r) FROM (SELECT ");
        row_expr(&sql, out, q->hist, ids, true);
        strbuf_appendf(&sql, " AS r FROM %s.snapshot_rows($1::oid, $2::bigint) s", q->schema_q);
        chunk_where(&sql, cf, out, q->hist, ids, true, false);
        strbuf_append_str(&sql, ") x GROUP BY 1");
    } else {
        strbuf_append_str(&sql, "SELECT s.key, md5(");
        row_expr(&sql, out, q->hist, ids, true);
        strbuf_appendf(&sql, ") FROM %s.snapshot_rows($1::oid, $2::bigint) s", q->schema_q);
        chunk_where(&sql, cf, out, q->hist, ids, true, false);
    }
    const char *params[2] = {relid, rev};
    WrStatus st = WR_OK;
    if (!PQsendQueryParams(q->hist, sql.data, 2, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(q->hist)) {
        st = pgio_fail(q->hist, NULL, err, "reconcile: reading the history's rows");
        strbuf_free(&sql);
        return st;
    }
    strbuf_free(&sql);
    PGresult *r;
    while ((r = pgio_next_row(q->hist, &st, "reconcile: reading the history's rows", err)) != NULL) {
        const char *key = PQgetvalue(r, 0, 0);
        Entry *e = map_find(m, key);
        if (!e) e = map_add(m, key);
        if (out->multiset) {
            snprintf(e->digest, sizeof(e->digest), "%s", key);
            e->count = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
            e->row = xstrdup(PQgetvalue(r, 0, 2));
            out->rows_history += e->count;
        } else {
            snprintf(e->digest, sizeof(e->digest), "%s", PQgetvalue(r, 0, 1));
            out->rows_history++;
        }
        PQclear(r);
    }
    return st;
}

/*
 * A table without a key, row by row: the copies of each row (by the digest
 * of its compared columns) that one side has beyond the other. The
 * history's surplus rows go by their identities (which of equal rows does
 * not matter: they are indistinguishable), the table's with their values.
 */
static WrStatus multiset_surplus(const ReconQuery *q, ReconTable *out, const int16_t *ids, Map *m, ReconFn fn,
                                 void *arg, Value *vals, WrError *err)
{
    const BackfillTable *t = &out->table;
    int64_t hist_extra = 0, src_extra = 0;
    for (size_t i = 0; i < m->cap; i++) {
        Entry *e = &m->slots[i];
        if (!e->key) continue;
        if (e->count > e->src) hist_extra += e->count - e->src;
        if (e->src > e->count) src_extra += e->src - e->count;
    }
    WrStatus st = WR_OK;
    StrBuf sql;
    strbuf_init(&sql);
    for (int side = 0; side < 2 && st == WR_OK; side++) {
        bool history = side == 0;
        if ((history ? hist_extra : src_extra) == 0) continue;
        PGconn *c = history ? q->hist : q->src;
        strbuf_reset(&sql);
        char relid[16], rev[24];
        snprintf(relid, sizeof(relid), "%" PRIu32, out->relid);
        snprintf(rev, sizeof(rev), "%" PRId64, q->rev);
        const char *params[2] = {relid, rev};
        if (history) {
            strbuf_append_str(&sql, "SELECT s.key, md5(");
            row_expr(&sql, out, c, ids, true);
            strbuf_appendf(&sql, ") FROM %s.snapshot_rows($1::oid, $2::bigint) s WHERE s.key IS NOT NULL ORDER BY 1",
                           q->schema_q);
        } else {
            strbuf_appendf(&sql, "SELECT %s%smd5(", t->select_list, *t->select_list ? ", " : ""); /* none: no column */
            row_expr(&sql, out, c, ids, false);
            strbuf_appendf(&sql, ") FROM ONLY %s", t->qualified);
            if (t->rowfilter) strbuf_appendf(&sql, " WHERE (%s)", t->rowfilter);
        }
        if (!PQsendQueryParams(c, sql.data, history ? 2 : 0, NULL, history ? params : NULL, NULL, NULL, 0) ||
            !PQsetSingleRowMode(c)) {
            st = pgio_fail(c, NULL, err, "reconcile: reading the rows of a table without a key");
            break;
        }
        PGresult *r;
        while ((r = pgio_next_row(c, &st, "reconcile: reading the rows of a table without a key", err)) != NULL) {
            int dcol = history ? 1 : t->ncols;
            Entry *e = map_find(m, PQgetvalue(r, 0, dcol));
            if (e && (history ? e->count > e->src : e->src > e->count)) {
                if (history)
                    e->count--;
                else
                    e->src--;
                ReconDiff d = {0};
                if (history) {
                    d.kind = RECON_ONLY_IN_HISTORY;
                    d.key = PQgetvalue(r, 0, 0);
                } else {
                    for (int k = 0; k < t->ncols; k++) {
                        vals[k].data = PQgetisnull(r, 0, k) ? NULL : PQgetvalue(r, 0, k);
                        vals[k].len = vals[k].data ? (size_t)PQgetlength(r, 0, k) : 0;
                    }
                    d.kind = RECON_ONLY_IN_SOURCE;
                    d.vals = q->want_values ? vals : NULL;
                }
                out->differences++;
                st = fn(arg, out, &d, err);
            }
            PQclear(r);
        }
    }
    strbuf_free(&sql);
    return st;
}

/* One chunk's summary on one side. */
typedef struct {
    int64_t prefix;
    int64_t rows;
    char sum[48]; /* sum of the rows' hashes, as numeric text */
} ChunkSum;

static int cmp_chunk(const void *a, const void *b)
{
    int64_t x = ((const ChunkSum *)a)->prefix, y = ((const ChunkSum *)b)->prefix;
    return x < y ? -1 : x > y;
}

/* The chunk summaries of one side at a level (filtered by the level above), sorted by prefix. */
static WrStatus chunk_sums(const ReconQuery *q, const ReconTable *out, const int16_t *ids, bool history, int shift,
                           const ChunkFilter *above, ChunkSum **res, size_t *n, WrError *err)
{
    *res = NULL;
    *n = 0;
    if (history && !out->in_history) return WR_OK;
    PGconn *c = history ? q->hist : q->src;
    const BackfillTable *t = &out->table;
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "SELECT h >> %d, count(*), sum(('x' || substr(md5(h::text || ':' || d), 1, 15))::bit(60)::bigint) "
                   "FROM (SELECT ",
                   shift);
    chunk_hash(&sql, out, c, ids, history);
    strbuf_append_str(&sql, " AS h, md5(");
    row_expr(&sql, out, c, ids, history);
    if (history) {
        strbuf_appendf(&sql, ") AS d FROM %s.snapshot_rows($1::oid, $2::bigint) s", q->schema_q);
        chunk_where(&sql, above, out, c, ids, true, false);
    } else {
        strbuf_appendf(&sql, ") AS d FROM ONLY %s", t->qualified);
        if (t->rowfilter) strbuf_appendf(&sql, " WHERE (%s)", t->rowfilter);
        chunk_where(&sql, above, out, c, ids, false, t->rowfilter != NULL);
    }
    strbuf_append_str(&sql, ") x GROUP BY 1");
    char relid[16], rev[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, out->relid);
    snprintf(rev, sizeof(rev), "%" PRId64, q->rev);
    const char *params[2] = {relid, rev};
    PGresult *r;
    WrStatus st =
        pgio_run(c, sql.data, history ? 2 : 0, history ? params : NULL, &r, err,
                 history ? "reconcile: summing the history's chunks" : "reconcile: summing the table's chunks");
    strbuf_free(&sql);
    if (st != WR_OK) return st;
    *n = (size_t)PQntuples(r);
    *res = xcalloc(*n + 1, sizeof(ChunkSum));
    for (size_t i = 0; i < *n; i++) {
        (*res)[i].prefix = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        (*res)[i].rows = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
        snprintf((*res)[i].sum, sizeof((*res)[i].sum), "%s", PQgetvalue(r, (int)i, 2));
    }
    PQclear(r);
    qsort(*res, *n, sizeof(ChunkSum), cmp_chunk);
    return WR_OK;
}

/*
 * Descend through the chunks: *leaf gets the filter of the chunks that still
 * differ (prefixes NULL and shift -1 when none does: the table equals the
 * history). Row totals of both sides come from the first level.
 */
static WrStatus chunk_descend(const ReconQuery *q, ReconTable *out, const int16_t *ids, ChunkFilter *leaf,
                              StrBuf *prefixes, WrError *err)
{
    ChunkFilter above = {0, NULL};
    StrBuf cur;
    strbuf_init(&cur);
    WrStatus st = WR_OK;
    leaf->shift = -1;
    leaf->prefixes = NULL;
    for (int level = 1; level <= CHUNK_MAX_LEVELS && st == WR_OK; level++) {
        int shift = CHUNK_BITS - level * CHUNK_FANOUT_BITS;
        ChunkSum *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        st = chunk_sums(q, out, ids, false, shift, &above, &a, &na, err);
        if (st == WR_OK) st = chunk_sums(q, out, ids, true, shift, &above, &b, &nb, err);
        if (st != WR_OK) {
            free(a);
            free(b);
            break;
        }
        out->levels = level;
        if (level == 1) {
            for (size_t i = 0; i < na; i++) out->rows_source += a[i].rows;
            for (size_t i = 0; i < nb; i++) out->rows_history += b[i].rows;
        }
        /* Merge the two sorted lists: a chunk differs when only one side has it or their sums differ. */
        strbuf_reset(&cur);
        int64_t diff_rows = 0, ndiff = 0;
        size_t i = 0, j = 0;
        while (i < na || j < nb) {
            const ChunkSum *x = i < na ? &a[i] : NULL, *y = j < nb ? &b[j] : NULL;
            int64_t prefix, rows;
            bool differs;
            if (x && (!y || x->prefix < y->prefix)) {
                prefix = x->prefix, rows = x->rows, differs = true;
                i++;
            } else if (y && (!x || y->prefix < x->prefix)) {
                prefix = y->prefix, rows = y->rows, differs = true;
                j++;
            } else {
                prefix = x->prefix;
                rows = x->rows > y->rows ? x->rows : y->rows;
                differs = x->rows != y->rows || strcmp(x->sum, y->sum) != 0;
                i++;
                j++;
            }
            out->chunks++;
            if (!differs) continue;
            strbuf_appendf(&cur, "%s%" PRId64, ndiff ? "," : "", prefix);
            ndiff++;
            diff_rows += rows;
        }
        free(a);
        free(b);
        out->chunks_differing += ndiff;
        if (ndiff == 0) break; /* equal */
        strbuf_reset(prefixes);
        strbuf_appendf(prefixes, "{%s}", cur.data);
        leaf->shift = shift;
        leaf->prefixes = prefixes->data;
        if (diff_rows <= CHUNK_LEAF_ROWS) break;
        above = *leaf;
    }
    strbuf_free(&cur);
    return st;
}

/* Compare one row of the source (r, single-row mode) with the history's
 * rows in m, reporting a difference to fn. vals and key are scratch. */
static WrStatus compare_source_row(const ReconQuery *q, ReconTable *out, Map *m, PGresult *r, Value *vals, StrBuf *key,
                                   ReconFn fn, void *arg, WrError *err)
{
    const BackfillTable *t = &out->table;
    ReconDiff d = {0};
    WrStatus st = WR_OK;
    if (out->multiset) {
        const char *digest = PQgetvalue(r, 0, 0);
        int64_t n = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        out->rows_source += n;
        Entry *e = map_find(m, digest);
        if (e) e->seen = true;
        if (q->multiset_rows && e != NULL) {
            e->src = n;
        } else if (q->multiset_rows && n > 0) {
            e = map_add(m, digest);
            snprintf(e->digest, sizeof(e->digest), "%s", digest);
            e->seen = true;
            e->src = n;
        } else if (!e || e->count != n) {
            d.kind = RECON_ROWS_DIFFER;
            d.row = PQgetvalue(r, 0, 2);
            d.in_source = n;
            d.in_history = e ? e->count : 0;
            out->differences++;
            st = fn(arg, out, &d, err);
        }
    } else {
        for (int c = 0; c < t->ncols; c++) {
            vals[c].data = PQgetisnull(r, 0, c) ? NULL : PQgetvalue(r, 0, c);
            vals[c].len = vals[c].data ? (size_t)PQgetlength(r, 0, c) : 0;
        }
        out->rows_source++;
        assembler_row_key(out->rv, vals, key);
        Entry *e = map_find(m, key->data);
        if (e) e->seen = true;
        if (!e || strcmp(e->digest, PQgetvalue(r, 0, t->ncols)) != 0) {
            d.kind = e ? RECON_DIFFERENT : RECON_ONLY_IN_SOURCE;
            d.key = key->data;
            d.vals = q->want_values ? vals : NULL;
            out->differences++;
            st = fn(arg, out, &d, err);
        }
    }
    return st;
}

/* What the history holds and the table lacks, in key order, reported to fn. */
static WrStatus report_history_only(ReconTable *out, Map *m, ReconFn fn, void *arg, WrError *err)
{
    WrStatus st = WR_OK;
    size_t nleft = 0;
    char **left = xcalloc(m->n + 1, sizeof(char *));
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && !m->slots[i].seen) left[nleft++] = m->slots[i].key;
    qsort(left, nleft, sizeof(char *), cmp_str);
    for (size_t i = 0; i < nleft && st == WR_OK; i++) {
        Entry *e = map_find(m, left[i]);
        ReconDiff d = {0};
        if (out->multiset) {
            d.kind = RECON_ROWS_DIFFER;
            d.row = e->row;
            d.in_history = e->count;
        } else {
            d.kind = RECON_ONLY_IN_HISTORY;
            d.key = e->key;
        }
        out->differences++;
        st = fn(arg, out, &d, err);
    }
    free(left);
    return st;
}

WrStatus reconcile_table(const ReconQuery *q, uint32_t relid, ReconFn fn, void *arg, ReconTable *out, bool *found,
                         WrError *err)
{
    memset(out, 0, sizeof(*out));
    out->relid = relid;
    WrStatus st = backfill_table_describe(q->src, relid, &out->table, found, err);
    if (st != WR_OK || !*found) return st;
    BackfillTable *t = &out->table;
    const char **names = xcalloc((size_t)t->ncols + 1, sizeof(char *));
    for (int i = 0; i < t->ncols; i++) names[i] = t->cols[i].name;
    relcache_set_attnums(q->rc, relid, t->ncols, names, t->attnums);
    free(names);
    bool is_new = false;
    out->rv =
        relcache_apply(q->rc, relid, t->nspname, t->relname, t->replident, (uint16_t)t->ncols, t->cols, 0, 0, &is_new);
    int nkey = 0;
    for (uint16_t i = 0; i < out->rv->ncols; i++) nkey += out->rv->cols[i].is_key;
    /* No key, or under FULL without a primary key every column is the key:
     * equal rows are indistinguishable, so the table is a multiset of rows. */
    out->multiset = nkey == 0 || (t->replident == 'f' && nkey == t->ncols);

    int16_t *ids = xcalloc((size_t)t->ncols + 1, sizeof(int16_t));
    Map m = {0};
    StrBuf sql, key;
    strbuf_init(&sql);
    strbuf_init(&key);
    Value *vals = xcalloc((size_t)t->ncols + 1, sizeof(Value));
    ChunkFilter cf = {0, NULL};
    StrBuf prefixes;
    strbuf_init(&prefixes);
    bool chunked = q->chunked && !q->multiset_rows;
    int64_t total_source = 0, total_history = 0;
    st = history_columns(q, out, ids, err);
    if (st == WR_OK && chunked) {
        st = chunk_descend(q, out, ids, &cf, &prefixes, err);
        total_source = out->rows_source;
        total_history = out->rows_history;
        out->rows_source = out->rows_history = 0;
        if (st == WR_OK && !cf.prefixes) goto done; /* every chunk equal */
    }
    if (st == WR_OK) st = load_history(q, out, ids, &m, chunked ? &cf : NULL, err);
    if (st != WR_OK) goto done;

    if (out->multiset) {
        strbuf_append_str(&sql, "SELECT md5(x.r), count(*), min(x.r) FROM (SELECT ");
        row_expr(&sql, out, q->src, ids, false);
        strbuf_appendf(&sql, " AS r FROM ONLY %s", t->qualified);
        if (t->rowfilter) strbuf_appendf(&sql, " WHERE (%s)", t->rowfilter);
        chunk_where(&sql, chunked ? &cf : NULL, out, q->src, ids, false, t->rowfilter != NULL);
        strbuf_append_str(&sql, ") x GROUP BY 1");
    } else {
        strbuf_appendf(&sql, "SELECT %s%smd5(", t->select_list, *t->select_list ? ", " : ""); /* none: no column */
        row_expr(&sql, out, q->src, ids, false);
        strbuf_appendf(&sql, ") FROM ONLY %s", t->qualified);
        if (t->rowfilter) strbuf_appendf(&sql, " WHERE (%s)", t->rowfilter);
        chunk_where(&sql, chunked ? &cf : NULL, out, q->src, ids, false, t->rowfilter != NULL);
    }
    if (!PQsendQuery(q->src, sql.data) || !PQsetSingleRowMode(q->src)) {
        st = pgio_fail(q->src, NULL, err, "reconcile: reading the table");
        goto done;
    }
    PGresult *r;
    while ((r = pgio_next_row(q->src, &st, "reconcile: reading the table", err)) != NULL) {
        st = compare_source_row(q, out, &m, r, vals, &key, fn, arg, err);
        PQclear(r);
    }
    if (st != WR_OK) goto done;
    if (out->multiset && q->multiset_rows) {
        st = multiset_surplus(q, out, ids, &m, fn, arg, vals, err);
        goto done;
    }

    st = report_history_only(out, &m, fn, arg, err);
done:
    if (chunked) {
        /* the leaf counted only the rows of the differing chunks */
        out->rows_compared = out->rows_source + out->rows_history;
        out->rows_source = total_source;
        out->rows_history = total_history;
    }
    strbuf_free(&prefixes);
    free(vals);
    free(ids);
    map_free(&m);
    strbuf_free(&sql);
    strbuf_free(&key);
    return st;
}

/* ---- walrev verify --against-source ---- */

typedef struct {
    FILE *out;
    int64_t printed;
} Printer;

static WrStatus print_diff(void *arg, const ReconTable *t, const ReconDiff *d, WrError *err)
{
    (void)err;
    Printer *p = arg;
    const char *name = t->table.qualified;
    switch (d->kind) {
    case RECON_ONLY_IN_HISTORY: fprintf(p->out, "%s %s: only in the history\n", name, d->key); break;
    case RECON_ONLY_IN_SOURCE: fprintf(p->out, "%s %s: only in the table\n", name, d->key); break;
    case RECON_DIFFERENT: fprintf(p->out, "%s %s: values differ\n", name, d->key); break;
    case RECON_ROWS_DIFFER:
        fprintf(p->out, "%s row %s: %lld in the table, %lld in the history\n", name, d->row, (long long)d->in_source,
                (long long)d->in_history);
        break;
    }
    p->printed++;
    return WR_OK;
}

static PGconn *connect_plain(const char *conninfo, const char *what, WrError *err)
{
    PgioConnect how = {.what = what, .app_name = "walrev-verify"};
    PGconn *c = NULL;
    return pgio_connect(conninfo, &how, &c, err) == WR_OK ? c : NULL;
}

static bool stopping(const ReconRun *run) { return run->stop && *run->stop; }

/*
 * Wait until the worker's slot has confirmed cp: every transaction committed
 * before it is then durable in every sink, the history included.
 */
static bool wait_for_worker(const ReconRun *run, PGconn *src, Lsn cp, WrError *err)
{
    char lsn[32];
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(cp));
    const char *params[2] = {run->slot_name, lsn};
    for (int i = 0;; i++) {
        PGresult *r;
        if (pgio_run(src,
                     "SELECT confirmed_flush_lsn >= $2::pg_lsn, confirmed_flush_lsn::text FROM "
                     "pg_replication_slots WHERE slot_name = $1",
                     2, params, &r, err, "reading the worker's slot") != WR_OK)
            return false;
        if (PQntuples(r) == 0) {
            wr_error_set(err, WR_FATAL,
                         "the replication slot %s does not exist: the history cannot be compared "
                         "at a known position (run walrev setup)",
                         run->slot_name);
            PQclear(r);
            return false;
        }
        bool passed = PQgetvalue(r, 0, 0)[0] == 't';
        char at[32];
        snprintf(at, sizeof(at), "%s", PQgetisnull(r, 0, 1) ? "none" : PQgetvalue(r, 0, 1));
        PQclear(r);
        if (passed) return true;
        if (stopping(run)) {
            wr_error_set(err, WR_RETRY, "stopped while waiting for the worker to pass %s", lsn);
            return false;
        }
        if (i >= run->wait_s * 10) {
            wr_error_set(err, WR_RETRY,
                         "the worker has not confirmed position %s within %d s (slot %s stands at %s): is walrev "
                         "run running?",
                         lsn, run->wait_s, run->slot_name, at);
            return false;
        }
        usleep(100000);
    }
}

/* Sleep off the rows just read at run->rows_per_second (in steps that notice a stop). */
static void pace(const ReconRun *run, int64_t rows)
{
    if (run->rows_per_second <= 0 || rows <= 0) return;
    int64_t us = rows * 1000000 / run->rows_per_second;
    for (int64_t slept = 0; slept < us && !stopping(run); slept += 100000)
        usleep((useconds_t)(us - slept < 100000 ? us - slept : 100000));
}

WrStatus reconcile_run(const ReconRun *run, ReconSummary *sum, WrError *err)
{
    const BaselineConfig *cfg = run->cfg;
    memset(sum, 0, sizeof(*sum));
    memset(err, 0, sizeof(*err)); /* a failed call below leaves it set: see out */
    WrStatus st = WR_OK;
    PGconn *src = NULL, *hist = NULL;
    ReplStream *repl = NULL;
    RelCache *rc_cache = relcache_create(cfg->tracking);
    char *schema_q = store_quote_ident(cfg->history_schema);
    PGresult *list = NULL;

    if (!(src = connect_plain(cfg->source_conninfo, "source", err))) goto out;
    if (!(hist = connect_plain(cfg->history_conninfo, "history store", err))) goto out;
    if (repl_stream_connect(cfg->source_conninfo, &repl, err) != WR_OK) goto out;
    char slot[64], snap[128];
    static int seq;
    snprintf(slot, sizeof(slot), "walrev_verify_%ld_%d", (long)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    Lsn cp = 0;
    if (repl_stream_create_temporary_slot(repl, slot, &cp, snap, sizeof(snap), err) != WR_OK) goto out;
    if (reconcile_enter_snapshot(src, snap, cfg->publication, "using the exported snapshot", err) != WR_OK) goto out;
    if (!wait_for_worker(run, src, cp, err)) goto out;
    int64_t rev = 0;
    if (reconcile_history_at(hist, schema_q, cp, &rev, err) != WR_OK) goto out;
    sum->at = cp;
    sum->rev = rev;
    if (run->on_start) run->on_start(run->arg, sum);

    if (run->ntables > 0) {
        StrBuf sql;
        strbuf_init(&sql);
        strbuf_append_str(
            &sql, "SELECT to_regclass(t)::oid, t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n");
        StrBuf arr;
        strbuf_init(&arr);
        strbuf_append_char(&arr, '{');
        for (int i = 0; i < run->ntables; i++) {
            if (i) strbuf_append_char(&arr, ',');
            strbuf_append_quoted(&arr, run->tables[i], '"');
        }
        strbuf_append_char(&arr, '}');
        const char *p[1] = {arr.data};
        st = pgio_run(src, sql.data, 1, p, &list, err, "listing the tables to compare");
        strbuf_free(&sql);
        strbuf_free(&arr);
        if (st != WR_OK) goto out;
    } else {
        st = reconcile_list_published(src, "listing the tables to compare", &list, err);
        if (st != WR_OK) goto out;
    }
    for (int i = 0; i < PQntuples(list) && !stopping(run); i++) {
        if (PQgetisnull(list, i, 0)) {
            st = wr_error_set(err, WR_FATAL, "table %s does not exist in the source database", PQgetvalue(list, i, 1));
            goto out;
        }
        if (run->ntables == 0 && !reconcile_records_table(cfg, PQgetvalue(list, i, 2), PQgetvalue(list, i, 3)))
            continue;
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(list, i, 0), NULL, 10);
        ReconQuery q = {.src = src, .hist = hist, .schema_q = schema_q, .rev = rev, .rc = rc_cache, .chunked = true};
        ReconTable t;
        bool found = false;
        st = reconcile_table(&q, relid, run->fn, run->arg, &t, &found, err);
        if (st == WR_OK && !found)
            st = wr_error_set(err, WR_FATAL, "table %s is not in publication %s", PQgetvalue(list, i, 1),
                              cfg->publication);
        if (st == WR_OK) {
            if (run->on_table) st = run->on_table(run->arg, &t, err);
            sum->differences += t.differences;
            sum->rows_source += t.rows_source;
            sum->rows_history += t.rows_history;
            sum->compared++;
            /* each level reads both sides once; the leaf the differing chunks' rows again */
            pace(run, (t.rows_source + t.rows_history) * (t.levels ? t.levels : 1) + t.rows_compared);
        }
        reconcile_table_term(&t);
        if (st != WR_OK) goto out;
    }
    if (st == WR_OK && stopping(run)) st = wr_error_set(err, WR_RETRY, "stopped during the comparison");
out:
    if (st == WR_OK && err->status != WR_OK && err->msg[0]) st = err->status; /* a goto after a failed call */
    PQclear(list);
    relcache_destroy(rc_cache);
    free(schema_q);
    PQfinish(src);
    PQfinish(hist);
    repl_stream_destroy(repl);
    return st;
}

static void print_start(void *arg, const ReconSummary *sum)
{
    (void)arg;
    fprintf(stderr, "comparing the history as of revision %lld with the tables at " LSN_FMT "\n", (long long)sum->rev,
            LSN_ARGS(sum->at));
}

static WrStatus print_table(void *arg, const ReconTable *t, WrError *err)
{
    (void)arg;
    (void)err;
    fprintf(stderr,
            "%s: %lld row(s) in the table, %lld in the history, %lld difference(s); %lld chunk(s) over %d "
            "level(s), %lld differing, %lld row(s) compared one by one%s\n",
            t->table.qualified, (long long)t->rows_source, (long long)t->rows_history, (long long)t->differences,
            (long long)t->chunks, t->levels, (long long)t->chunks_differing, (long long)t->rows_compared,
            t->multiset ? " (no key: compared as a multiset)" : "");
    return WR_OK;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: walrev [global options] verify --against-source [--table TABLE]... [--wait SECONDS]\n\n"
               "  --table TABLE   compare only TABLE (repeatable); default every published table\n"
               "  --wait SECONDS  how long to wait for the worker to pass the comparison point (default 60)\n"
               "exit status: 0 the history equals the tables, 1 differences (each printed), 2 not compared\n");
}

int reconcile_command(const BaselineConfig *cfg, const char *slot_name, int argc, char **argv)
{
    static const struct option opts[] = {{"against-source", no_argument, NULL, 'a'},
                                         {"table", required_argument, NULL, 't'},
                                         {"wait", required_argument, NULL, 'w'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char **tables = xcalloc((size_t)argc + 1, sizeof(char *));
    int ntables = 0, wait_s = 60, c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': break;
        case 't': {
            /* a name of the wrong form is said before any connection (exit 2 with the source down too) */
            if (!ident_is_qualified(optarg)) {
                fprintf(stderr,
                        "walrev verify: invalid table name \"%s\": expected table or schema.table, quoted as in SQL\n",
                        optarg);
                free(tables);
                return 2;
            }
            tables[ntables++] = optarg;
            break;
        }
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 86400) {
                fprintf(stderr, "walrev verify: --wait wants seconds (0..86400), not \"%s\"\n", optarg);
                free(tables);
                return 2;
            }
            wait_s = (int)v;
            break;
        }
        case 'h':
            usage(stdout);
            free(tables);
            return 0;
        default:
            fprintf(stderr, "walrev verify: unknown or incomplete option \"%s\" with --against-source\n",
                    argv[optind - 1]);
            usage(stderr);
            free(tables);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "walrev verify: unexpected argument \"%s\"\n", argv[optind]);
        free(tables);
        return 2;
    }

    WrError err = {0};
    Printer pr = {stdout, 0};
    ReconRun run = {.cfg = cfg,
                    .slot_name = slot_name,
                    .tables = tables,
                    .ntables = ntables,
                    .wait_s = wait_s,
                    .fn = print_diff,
                    .arg = &pr,
                    .on_start = print_start,
                    .on_table = print_table};
    ReconSummary sum;
    WrStatus st = reconcile_run(&run, &sum, &err);
    int rc = 2;
    if (st == WR_OK) {
        printf("%s: %d table(s) compared at " LSN_FMT " (revision %lld): %lld row(s) in the tables, %lld in the "
               "history, %lld difference(s)\n",
               sum.differences ? "DIVERGED" : "ok", sum.compared, LSN_ARGS(sum.at), (long long)sum.rev,
               (long long)sum.rows_source, (long long)sum.rows_history, (long long)sum.differences);
        rc = sum.differences ? 1 : 0;
    }
    if (rc == 2) fprintf(stderr, "walrev verify --against-source: %s\n", err.msg[0] ? err.msg : "failed");
    fflush(stdout);
    free(tables);
    return rc;
}
