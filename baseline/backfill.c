/*
 * backfill.c — baselines of tables added to the publication after setup (see
 * baseline.h and docs/history-store.md#the-baseline). One table at a time,
 * one chunk at a time, driven from the pipeline's loop between transactions:
 *
 *   1. emit a low watermark (a transactional logical message) on the source;
 *   2. when the stream reaches it, the history is current: read the next pages
 *      of the table in a REPEATABLE READ transaction, keep the rows whose key
 *      the history does not hold, and — only if there are any — emit the chunk
 *      message in that same transaction, after the read (the high watermark);
 *   3. until the stream reaches the chunk message, a row the stream changes
 *      leaves the chunk (the history has its newer state, or it is gone); so
 *      does one a recent DELETE removed that the read's snapshot did not see;
 *   4. the chunk message is the context of its own revision: the rows left
 *      are recorded there as snapshot rows, with the progress, so both are
 *      durable together.
 * Every transaction the read saw commits before the chunk message, and every
 * one it did not see after it or is handled by (3), so the chunk meets the
 * stream with no gap and no overlap. It must never record a row twice and
 * never look finished when it is not.
 */
#include "baseline/baseline.h"
#include "pgio/output.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/log.h"
#include "pgio/pgio.h"
#include "schema/store_sql.h"

#define WATERMARK_PREFIX "walrev.watermark"
#define CHUNK_PREFIX "walrev.backfill"
#define CHECK_INTERVAL_US (10 * 1000000LL)
#define LOG_INTERVAL_US (10 * 1000000LL)
#define FIRST_CHUNK_PAGES 8u
#define MAX_CHUNK_PAGES 65536u
#define RECENT_DELETES 256
/* A chunk read never queues for a table lock longer than this: a lock request
 * waits in line in front of every later one, so a worker blocked behind an
 * application's ACCESS EXCLUSIVE lock would also hold back that application's
 * next readers, and the stream (chunks are read in the session's loop, session/session.c). */
#define LOCK_TIMEOUT "100ms"
#define LOCK_RETRY_FIRST_US (1 * 1000000LL)
#define LOCK_RETRY_MAX_US (30 * 1000000LL)

/* ---- SQL helpers ---- */

/* The server's one-line message, for logs and the backfill row. */
static const char *sql_message(PGconn *c, const PGresult *r, char *buf, size_t size)
{
    const char *ignored;
    pgio_error_text(c, r, buf, size, &ignored);
    return buf;
}

/* NULL with err set on failure (a refused login is WR_FATAL). */
static PGconn *connect_to(const char *conninfo, const char *what, WrError *err)
{
    char w[64];
    snprintf(w, sizeof(w), "backfill: %s", what);
    PgioConnect how = {.what = w, .app_name = "walrev-backfill", .bounded = true};
    PGconn *c;
    if (pgio_connect(conninfo, &how, &c, err) != WR_OK) return NULL;
    /* A watermark reaches the stream only once flushed: under an
     * asynchronous commit it would wait for the WAL writer each time. */
    pgio_run_unchecked(c, "SET synchronous_commit = local");
    pgio_run_unchecked(c, "SET lock_timeout = '" LOCK_TIMEOUT "'");
    return c;
}

/* ---- the table as pgoutput describes it ---- */

WrStatus backfill_table_describe(PGconn *c, uint32_t relid, BackfillTable *t, bool *found, WrError *err)
{
    memset(t, 0, sizeof(*t));
    *found = false;
    char oid[16];
    snprintf(oid, sizeof(oid), "%" PRIu32, relid);
    const char *params[1] = {oid};
    /* is_key follows the replica identity as pgoutput marks it, except that
     * under FULL and NOTHING a primary key is the key and a table without
     * one has no key column (a multiset), as the assembler makes it. */
    PGresult *r;
    WrStatus st = pgio_run(
        c,
        "SELECT n.nspname, c.relname, c.relreplident, a.attnum, a.attname, a.atttypid, a.atttypmod, "
        "  CASE WHEN c.relreplident IN ('f', 'n', 'd') THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
        "      AND i.indisprimary AND a.attnum = ANY (i.indkey)) "
        "    WHEN c.relreplident = 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND "
        "i.indisreplident AND a.attnum = ANY (i.indkey)) "
        "    ELSE false END, "
        "  format('%I.%I', n.nspname, c.relname), quote_ident(a.attname), "
        "  (SELECT pt.rowfilter FROM pg_publication_tables pt WHERE pt.pubname = current_setting('walrev.publication') "
        "     AND pt.schemaname = n.nspname AND pt.tablename = c.relname), "
        /* a type not built in, named as a Type message (and the DDL capture) names it */
        "  CASE WHEN a.atttypid >= 10000 THEN (SELECT CASE WHEN tn.nspname = 'pg_catalog' THEN t.typname::text "
        "    ELSE tn.nspname || '.' || t.typname END FROM pg_type t JOIN pg_namespace tn ON tn.oid = t.typnamespace "
        "    WHERE t.oid = a.atttypid) END "
        /* a table without a column (CREATE TABLE t (), or only generated ones) is one row of NULL attnum:
         * its rows are empty, and there may be several (an inner join made it "not found") */
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
        "AND (SELECT pt.attnames IS NULL OR a.attname = ANY (pt.attnames) FROM "
        "pg_publication_tables pt "
        "  WHERE pt.pubname = current_setting('walrev.publication') AND pt.schemaname = n.nspname AND pt.tablename = "
        "c.relname) "
        "WHERE c.oid = $1::oid "
        "ORDER BY a.attnum",
        1, params, &r, err, "describing a published table");
    if (st != WR_OK) return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return WR_OK;
    }
    int n = PQgetisnull(r, 0, 3) ? 0 : PQntuples(r);
    t->res = r;
    t->ncols = n;
    t->cols = xcalloc((size_t)n, sizeof(RelColumnIn));
    t->attnums = xcalloc((size_t)n, sizeof(int16_t));
    StrBuf list;
    strbuf_init(&list);
    strbuf_append_str(&list, ""); /* "SELECT  FROM t" for a table without a column */
    for (int i = 0; i < n; i++) {
        t->attnums[i] = (int16_t)atoi(PQgetvalue(r, i, 3));
        t->cols[i].name = PQgetvalue(r, i, 4);
        t->cols[i].type_oid = (uint32_t)strtoul(PQgetvalue(r, i, 5), NULL, 10);
        t->cols[i].typmod = atoi(PQgetvalue(r, i, 6));
        t->cols[i].is_key = PQgetvalue(r, i, 7)[0] == 't';
        strbuf_appendf(&list, "%s%s", i ? ", " : "", PQgetvalue(r, i, 9));
    }
    t->nspname = PQgetvalue(r, 0, 0);
    t->relname = PQgetvalue(r, 0, 1);
    t->replident = PQgetvalue(r, 0, 2)[0];
    t->qualified = PQgetvalue(r, 0, 8);
    t->rowfilter = PQgetisnull(r, 0, 10) ? NULL : PQgetvalue(r, 0, 10);
    t->select_list = list.data;
    /* Generated columns, placed among all the table's columns (as the DDL capture places them),
     * their expressions deparsed with search_path = pg_catalog as the DDL capture deparses them:
     * every table, function and type not in pg_catalog is then schema-qualified ('ref'::regclass
     * would otherwise name whatever "ref" is where a snapshot computes it, if anything). */
    PGresult *path;
    st = pgio_run(c, "SELECT current_setting('search_path'), set_config('search_path', 'pg_catalog, pg_temp', false)",
                  0, NULL, &path, err, "describing a published table's generated columns");
    if (st != WR_OK) {
        backfill_table_free(t);
        return st;
    }
    bool gen_ok =
        pgio_exec(c,
                  "SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), "
                  "  (SELECT count(*) FROM pg_attribute b WHERE b.attrelid = a.attrelid AND b.attnum > 0 "
                  "     AND NOT b.attisdropped AND b.attnum < a.attnum) "
                  "FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
                  "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 's' "
                  "ORDER BY a.attnum",
                  1, params, &t->gen_res);
    /* the search_path goes back whether or not that read succeeded */
    const char *old_path[1] = {PQgetvalue(path, 0, 0)};
    PGresult *back;
    bool back_ok = pgio_exec(c, "SELECT set_config('search_path', $1, false)", 1, old_path, &back);
    PQclear(path);
    /* a failure in a transaction block undoes the set_config itself */
    if (!gen_ok || !back_ok)
        st = pgio_fail(c, gen_ok ? back : t->gen_res, err, "describing a published table's generated columns");
    PQclear(back);
    if (st != WR_OK) {
        backfill_table_free(t);
        return st;
    }
    t->ngen = (uint16_t)PQntuples(t->gen_res);
    t->gen = xcalloc((size_t)t->ngen + 1, sizeof(GenColumn));
    for (uint16_t i = 0; i < t->ngen; i++) {
        t->gen[i].name = PQgetvalue(t->gen_res, i, 0);
        t->gen[i].type_name = PQgetvalue(t->gen_res, i, 1);
        t->gen[i].expr = PQgetvalue(t->gen_res, i, 2);
        t->gen[i].position = (int16_t)atoi(PQgetvalue(t->gen_res, i, 3));
    }
    *found = true;
    return WR_OK;
}

void backfill_table_name_types(const BackfillTable *t, RelCache *rc)
{
    for (int i = 0; i < t->ncols; i++)
        if (!PQgetisnull(t->res, i, 11))
            relcache_set_type_name(rc, t->cols[i].type_oid, NULL, PQgetvalue(t->res, i, 11));
}

void backfill_table_free(BackfillTable *t)
{
    if (!t) return;
    PQclear(t->res);
    PQclear(t->gen_res);
    free(t->gen);
    free(t->cols);
    free(t->attnums);
    free(t->select_list);
    memset(t, 0, sizeof(*t));
}

/* ---- snapshots: which stream transactions did the read see? ---- */

bool backfill_snapshot_parse(const char *text, XidSnapshot *s)
{
    memset(s, 0, sizeof(*s));
    char *end;
    s->xmin = strtoull(text, &end, 10);
    if (*end != ':') return false;
    s->xmax = strtoull(end + 1, &end, 10);
    if (*end != ':') return false;
    const char *p = end + 1;
    size_t cap = 0;
    while (*p) {
        uint64_t x = strtoull(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0')) return false;
        if (s->nxip == cap) {
            cap = cap ? 2 * cap : 8;
            s->xip = xrealloc(s->xip, cap * sizeof(uint64_t));
        }
        s->xip[s->nxip++] = x;
        p = *end ? end + 1 : end;
    }
    return true;
}

/* pgoutput gives the 32-bit xid; it lies within 2^31 of xmax, which gives it its epoch. */
bool backfill_snapshot_sees(const XidSnapshot *s, uint32_t xid)
{
    int64_t full = (int64_t)s->xmax + (int32_t)(xid - (uint32_t)s->xmax);
    if (full < (int64_t)s->xmin) return true;
    if (full >= (int64_t)s->xmax) return false;
    for (size_t i = 0; i < s->nxip; i++)
        if ((int64_t)s->xip[i] == full) return false;
    return true;
}

/* ---- state ---- */

typedef struct {
    uint32_t relid;
    char *nspname;
    char *relname;
    int32_t request_no;
    const char *reason;
    bool resume;
    /* the history holds only the stream's rows of it until this job is done
     * (backfill.whole_from); false where its history began whole */
    bool partial_until_done;
    uint32_t filenode; /* 0 until a chunk was read */
    uint32_t next_page;
    int32_t chunks;
    int64_t rows_read;
    int64_t rows_recorded;
} Job;

typedef struct {
    uint32_t relid;
    int32_t request_no;
} Finished;

typedef struct {
    uint32_t xid;
    char *key; /* NULL: truncate */
} RecentDelete;

#define CLAIM_BUCKETS 4096
typedef struct {
    uint8_t digest[DIGEST_LEN];
    char *key;
    int32_t next; /* next claim in the bucket, -1 none */
} Claim;

typedef enum {
    PH_IDLE,     /* next: emit the low watermark */
    PH_LOW_SENT, /* waiting for it on the stream */
    PH_LOW_SEEN, /* next: read the chunk */
    PH_HIGH_SENT /* waiting for the chunk message on the stream */
} Phase;

struct Backfill {
    BaselineConfig config;
    const BaselineConfig *cfg; /* &config */
    Assembler *a;
    BackfillOutput out;
    RelCache *keycache; /* versions for keys at read time; never the assembler's */
    PGconn *src;
    PGconn *hist;
    bool disabled;
    bool born_warned; /* the table log could not be read (logged once) */
    bool checked;
    bool check_now;
    int64_t last_check_us;

    Job *queue;
    size_t nqueue, capqueue;
    Finished *finished;
    size_t nfinished, capfinished;
    /* tables named as having left the publication unrecorded (warn_unrecorded_leavers): once each */
    uint32_t *left_warned;
    size_t nleft_warned;

    bool active;
    Job job;
    int64_t job_started_us;
    int64_t last_log_us;
    uint32_t pages_per_chunk;
    uint32_t nblocks;
    /* The table was locked at the last read: no new read before retry_at. */
    int64_t retry_at_us;
    int64_t retry_wait_us;
    int32_t lock_waits;

    Phase phase;
    char wm_id[64]; /* the awaited watermark's random id: what makes it unforgeable */

    /* The chunk between its read and its message (PH_HIGH_SENT). */
    BackfillTable table;
    PGresult *rows;
    XidSnapshot snap;
    uint32_t chunk_filenode, chunk_first, chunk_end;
    bool chunk_last;
    int64_t chunk_read;
    int *kept; /* row numbers in rows */
    char **kept_key;
    bool *dropped;
    size_t nkept;
    int32_t *slots; /* open addressing over kept_key; -1 empty */
    size_t nslots;
    bool drop_all;

    RecentDelete recent[RECENT_DELETES];
    size_t recent_next;
    StrBuf key;

    /* A table without a key (a multiset): the history's rows this job has
     * matched to rows read or recorded itself, by row digest, so that n equal
     * rows read are matched to n distinct rows of the history (claim_*). */
    Claim *claims;
    size_t nclaims, capclaims;
    int32_t claim_heads[CLAIM_BUCKETS];
    const char **excl;
    size_t capexcl;
    size_t claims_mark; /* claims of completed chunks; a chunk read again drops the rest */
};

static void claims_clear(Backfill *b);

Backfill *backfill_create(const BaselineConfig *cfg, Assembler *a, const BackfillOutput *out)
{
    Backfill *b = xcalloc(1, sizeof(*b));
    b->config = *cfg;
    b->cfg = &b->config;
    b->a = a;
    b->out = *out;
    b->keycache = relcache_create(cfg->tracking);
    b->pages_per_chunk = FIRST_CHUNK_PAGES;
    strbuf_init(&b->key);
    claims_clear(b);
    return b;
}

static void job_free(Job *j)
{
    free(j->nspname);
    free(j->relname);
    memset(j, 0, sizeof(*j));
}

static void chunk_free(Backfill *b)
{
    backfill_table_free(&b->table);
    PQclear(b->rows);
    b->rows = NULL;
    free(b->snap.xip);
    memset(&b->snap, 0, sizeof(b->snap));
    for (size_t i = 0; i < b->nkept; i++) free(b->kept_key[i]);
    free(b->kept);
    free(b->kept_key);
    free(b->dropped);
    free(b->slots);
    b->kept = NULL;
    b->kept_key = NULL;
    b->dropped = NULL;
    b->slots = NULL;
    b->nkept = b->nslots = 0;
    b->drop_all = false;
}

static void claims_clear(Backfill *b)
{
    for (size_t i = 0; i < b->nclaims; i++) free(b->claims[i].key);
    b->nclaims = 0;
    b->claims_mark = 0;
    for (size_t i = 0; i < CLAIM_BUCKETS; i++) b->claim_heads[i] = -1;
}

/* Keep the first n claims (a chunk abandoned before its rows were recorded). */
static void claims_truncate(Backfill *b, size_t n)
{
    if (n >= b->nclaims) return;
    for (size_t i = n; i < b->nclaims; i++) free(b->claims[i].key);
    b->nclaims = n;
    for (size_t i = 0; i < CLAIM_BUCKETS; i++) b->claim_heads[i] = -1;
    for (size_t i = 0; i < n; i++) {
        size_t h = ((size_t)b->claims[i].digest[0] << 8 | b->claims[i].digest[1]) % CLAIM_BUCKETS;
        b->claims[i].next = b->claim_heads[h];
        b->claim_heads[h] = (int32_t)i;
    }
}

static size_t claim_bucket(const uint8_t d[DIGEST_LEN]) { return ((size_t)d[0] << 8 | d[1]) % CLAIM_BUCKETS; }

static void claim_add(Backfill *b, const uint8_t d[DIGEST_LEN], const char *key)
{
    if (b->nclaims == b->capclaims) {
        b->capclaims = b->capclaims ? 2 * b->capclaims : 256;
        b->claims = xrealloc(b->claims, b->capclaims * sizeof(Claim));
    }
    Claim *c = &b->claims[b->nclaims];
    memcpy(c->digest, d, DIGEST_LEN);
    c->key = xstrdup(key);
    c->next = b->claim_heads[claim_bucket(d)];
    b->claim_heads[claim_bucket(d)] = (int32_t)b->nclaims++;
}

/* The keys claimed under digest d, in b->excl; their number. */
static int claim_keys(Backfill *b, const uint8_t d[DIGEST_LEN])
{
    int n = 0;
    for (int32_t i = b->claim_heads[claim_bucket(d)]; i >= 0; i = b->claims[i].next) {
        if (memcmp(b->claims[i].digest, d, DIGEST_LEN) != 0) continue;
        if ((size_t)n + 1 >= b->capexcl) {
            b->capexcl = b->capexcl ? 2 * b->capexcl : 16;
            b->excl = xrealloc(b->excl, b->capexcl * sizeof(char *));
        }
        b->excl[n++] = b->claims[i].key;
    }
    if (!b->excl) b->excl = xcalloc(b->capexcl = 16, sizeof(char *));
    return n;
}

/* A kept row of a table without a key is named by its digest ("~hex"): the
 * stream's changes name the rows they take out the same way. */
static void digest_name(const uint8_t d[DIGEST_LEN], StrBuf *out)
{
    strbuf_reset(out);
    strbuf_append_char(out, '~');
    for (int i = 0; i < DIGEST_LEN; i++) strbuf_appendf(out, "%02x", d[i]);
}

static void recent_clear(Backfill *b)
{
    for (size_t i = 0; i < RECENT_DELETES; i++) {
        free(b->recent[i].key);
        b->recent[i].key = NULL;
        b->recent[i].xid = 0;
    }
    b->recent_next = 0;
}

void backfill_destroy(Backfill *b)
{
    if (!b) return;
    if (b->active)
        log_info("msg=\"baseline interrupted; it resumes after its last durable chunk when walrev runs again\" "
                 "table=%s.%s chunks=%d rows_recorded=%lld",
                 b->job.nspname, b->job.relname, b->job.chunks, (long long)b->job.rows_recorded);
    chunk_free(b);
    recent_clear(b);
    claims_clear(b);
    free(b->claims);
    free(b->excl);
    job_free(&b->job);
    for (size_t i = 0; i < b->nqueue; i++) job_free(&b->queue[i]);
    free(b->queue);
    free(b->finished);
    free(b->left_warned);
    relcache_destroy(b->keycache);
    PQfinish(b->src);
    PQfinish(b->hist);
    strbuf_free(&b->key);
    free(b);
}

/* ---- progress ---- */

static WrStatus record_progress(Backfill *b, const Job *j, const char *state, const char *error, WrError *err)
{
    char last_key[64];
    snprintf(last_key, sizeof(last_key), "{\"filenode\":%" PRIu32 ",\"page\":%" PRIu32 "}", j->filenode, j->next_page);
    BackfillProgress p = {
        .relid = j->relid,
        .nspname = j->nspname,
        .relname = j->relname,
        .state = state,
        .request_no = j->request_no,
        .last_key = j->filenode ? last_key : NULL,
        .chunks = j->chunks,
        .rows_read = j->rows_read,
        .rows_recorded = j->rows_recorded,
        .error = error,
        .partial_until_done = j->partial_until_done,
    };
    return b->out.progress(b->out.ctx, &p, err);
}

static void remember_finished(Backfill *b, uint32_t relid, int32_t request_no)
{
    for (size_t i = 0; i < b->nfinished; i++)
        if (b->finished[i].relid == relid) {
            b->finished[i].request_no = request_no;
            return;
        }
    if (b->nfinished == b->capfinished) {
        b->capfinished = b->capfinished ? 2 * b->capfinished : 16;
        b->finished = xrealloc(b->finished, b->capfinished * sizeof(Finished));
    }
    b->finished[b->nfinished++] = (Finished){relid, request_no};
}

/* The job ends (done, failed or cancelled); its state is recorded first. */
static WrStatus end_job(Backfill *b, const char *state, const char *error, WrError *err)
{
    WrStatus st = record_progress(b, &b->job, state, error, err);
    if (st != WR_OK) return st;
    double secs = (double)(mono_now_us() - b->job_started_us) / 1e6;
    if (strcmp(state, "done") == 0)
        log_info("msg=\"baseline recorded\" table=%s.%s rows_read=%lld rows_recorded=%lld chunks=%d "
                 "seconds=%.1f",
                 b->job.nspname, b->job.relname, (long long)b->job.rows_read, (long long)b->job.rows_recorded,
                 b->job.chunks, secs);
    else
        log_warn("msg=\"baseline %s\" table=%s.%s reason=\"%s\" rows_recorded=%lld", state, b->job.nspname,
                 b->job.relname, error ? error : "", (long long)b->job.rows_recorded);
    remember_finished(b, b->job.relid, b->job.request_no);
    chunk_free(b);
    recent_clear(b);
    job_free(&b->job);
    b->active = false;
    b->phase = PH_IDLE;
    return WR_OK;
}

static void log_progress(Backfill *b, bool force)
{
    int64_t t = mono_now_us();
    if (!force && t - b->last_log_us < LOG_INTERVAL_US) return;
    b->last_log_us = t;
    double secs = (double)(t - b->job_started_us) / 1e6;
    log_info("msg=\"baseline progress\" table=%s.%s page=%" PRIu32 " pages=%" PRIu32
             " chunks=%d rows_read=%lld rows_recorded=%lld rate=%.0f",
             b->job.nspname, b->job.relname, b->job.next_page, b->nblocks, b->job.chunks, (long long)b->job.rows_read,
             (long long)b->job.rows_recorded, secs > 0 ? (double)b->job.rows_read / secs : 0.0);
}

/* ---- which tables need a baseline ---- */

static bool queued(const Backfill *b, uint32_t relid)
{
    if (b->active && b->job.relid == relid) return true;
    for (size_t i = 0; i < b->nqueue; i++)
        if (b->queue[i].relid == relid) return true;
    return false;
}

static void enqueue(Backfill *b, const Job *j)
{
    if (b->nqueue == b->capqueue) {
        b->capqueue = b->capqueue ? 2 * b->capqueue : 8;
        b->queue = xrealloc(b->queue, b->capqueue * sizeof(Job));
    }
    b->queue[b->nqueue++] = *j;
}

/* {"filenode":F,"page":P}; false when malformed (the backfill then starts over). */
static bool parse_last_key(const char *text, uint32_t *filenode, uint32_t *page)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    json_t *f = json_object_get(o, "filenode"), *p = json_object_get(o, "page");
    bool ok = json_is_integer(f) && json_is_integer(p) && json_integer_value(f) > 0 &&
              json_integer_value(f) <= UINT32_MAX && json_integer_value(p) >= 0 && json_integer_value(p) <= UINT32_MAX;
    if (ok) {
        *filenode = (uint32_t)json_integer_value(f);
        *page = (uint32_t)json_integer_value(p);
    }
    json_decref(o);
    return ok;
}

static WrStatus ensure_connections(Backfill *b, WrError *err)
{
    if (!b->src && !(b->src = connect_to(b->cfg->source_conninfo, "source", err))) return err->status;
    if (!b->hist && !(b->hist = connect_to(b->cfg->history_conninfo, "history store", err))) return err->status;
    return WR_OK;
}

/* Not a lost connection and not one table's problem: no backfills in this session, streaming goes on. */
static WrStatus disable(Backfill *b, const WrError *why)
{
    log_error("msg=\"%s; tables added to the publication get no baseline until walrev restarts\"", why->msg);
    b->disabled = true;
    return WR_OK;
}

/*
 * Published tables against the history's backfill rows. A table needs a
 * baseline when it has no row (it joined the publication after setup), was
 * requested, or was interrupted. What this session finished stays finished
 * even while its row is not committed yet.
 */
/*
 * The tables whose present incarnation the source's table log saw created
 * while published (schema/sql/table_log.sql logs 'create' only then, in the
 * creating transaction: a table visible in the catalog has its row visible
 * too). Either the creation follows the slot's start, and the stream carries
 * each of its rows; or it precedes it, and setup's baseline gave the table a
 * backfill row; or the slot was lost meanwhile, and the gap revision
 * reconciled every published table. NULL (every table baselined as before)
 * when the log cannot be read, e.g. by a worker role setup did not grant it.
 */
static PGresult *table_log_births(Backfill *b)
{
    char *schema = store_quote_ident(b->cfg->history_schema);
    StrBuf q;
    strbuf_init(&q);
    /* also whether the table was ever unlogged: made LOGGED, its rows at that
     * commit are its history's first (the rewrite's image), so its history
     * began whole although it gets a baseline */
    strbuf_appendf(&q,
                   "SELECT c.relid, c.event = 'create' FROM %1$s.table_log c WHERE c.event IN ('create', 'unlogged') "
                   "AND NOT EXISTS (SELECT 1 FROM %1$s.table_log d WHERE d.relid = c.relid AND d.event = 'drop' "
                   "AND d.id > c.id)",
                   schema);
    free(schema);
    PGresult *r;
    bool ok = pgio_exec(b->src, q.data, 0, NULL, &r);
    strbuf_free(&q);
    if (ok) return r;
    if (!b->born_warned) {
        char msg[300];
        log_warn("msg=\"cannot read the table log, so tables created after tracking began get a baseline they do "
                 "not need\" error=\"%s\"",
                 sql_message(b->src, r, msg, sizeof(msg)));
        b->born_warned = true;
    }
    PQclear(r);
    return NULL;
}

/* Whether the table log lists relid with the event: 't' created while
 * published, 'f' unlogged once (table_log_births's second column). */
static bool relid_listed(const PGresult *r, uint32_t relid, char event)
{
    for (int i = 0; r && i < PQntuples(r); i++)
        if ((uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10) == relid && PQgetvalue(r, i, 1)[0] == event)
            return true;
    return false;
}

/*
 * Tables with a backfill row (tracked) that the publication no longer
 * covers while they still exist, and whose removal the table log did not
 * record (its last row is no 'unpublished': the walrev_note_published
 * trigger was not installed then, setup not run as a superuser or from
 * before it; or there is no table log): replay would answer their rows as
 * of the removal. Logical decoding sends nothing of them from here on, so
 * each is named, loudly, once per run. s: the published tables (oid
 * first), h: the backfill rows. Inside detect's read-only transaction.
 */
static void warn_unrecorded_leavers(Backfill *b, const PGresult *s, const PGresult *h)
{
    StrBuf ids, q;
    strbuf_init(&ids);
    strbuf_init(&q);
    strbuf_append_char(&ids, '{');
    for (int k = 0; k < PQntuples(h); k++) {
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(h, k, 0), NULL, 10);
        bool skip = false;
        for (int i = 0; i < PQntuples(s) && !skip; i++) skip = (uint32_t)strtoul(PQgetvalue(s, i, 0), NULL, 10) == relid;
        for (size_t i = 0; i < b->nleft_warned && !skip; i++) skip = b->left_warned[i] == relid;
        if (!skip) strbuf_appendf(&ids, "%s%u", ids.len > 1 ? "," : "", relid);
    }
    strbuf_append_char(&ids, '}');
    char *schema = store_quote_ident(b->cfg->history_schema);
    const char *p[] = {ids.data, b->cfg->history_schema};
    PGresult *r = NULL, *logged = NULL;
    bool ok = ids.len > 2 && pgio_exec(b->src, "SELECT to_regclass(format('%I.table_log', $1::text)) IS NOT NULL",
                                       1, p + 1, &logged);
    strbuf_appendf(&q,
                   "SELECT c.oid, format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n "
                   "ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::oid[]) AND c.relkind IN ('r', 'p')");
    if (ok && PQgetvalue(logged, 0, 0)[0] == 't')
        strbuf_appendf(&q,
                       " AND (SELECT l.event FROM %s.table_log l WHERE l.relid = c.oid ORDER BY l.id DESC LIMIT 1)"
                       " IS DISTINCT FROM 'unpublished'",
                       schema);
    strbuf_append_str(&q, " ORDER BY 1");
    if (ok && pgio_exec(b->src, q.data, 1, p, &r)) {
        for (int i = 0; i < PQntuples(r); i++) {
            log_warn("msg=\"a tracked table left the publication unrecorded (the table log's trigger that records "
                     "this is not installed): walrev sees none of its changes from here on, and snapshot, diff "
                     "and blame at later points answer its rows as they were when it left (run walrev setup as a "
                     "superuser to install it)\" table=%s publication=%s",
                     PQgetvalue(r, i, 1), b->cfg->publication);
            b->left_warned = xrealloc(b->left_warned, (b->nleft_warned + 1) * sizeof(uint32_t));
            b->left_warned[b->nleft_warned++] = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
        }
    }
    PQclear(r);
    PQclear(logged);
    free(schema);
    strbuf_free(&q);
    strbuf_free(&ids);
}

/* A published table whose changes reach the slot only in part (the
 * publication leaves out an action, or lists the table or an ancestor with a
 * row filter or a column list; the table log's partly_published is the same
 * test): a history of it would answer rows the table does not have, so it
 * gets no baseline and is not tracked. Shared by the listing above and the
 * warning below; c is the table's pg_class row, $1 the publication. */
#define PARTLY_PUBLISHED_SQL                                                                                      \
    "EXISTS (SELECT 1 FROM pg_publication pb WHERE pb.pubname = $1 AND (NOT (pb.pubinsert AND pb.pubupdate "   \
    "AND pb.pubdelete AND pb.pubtruncate) OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = "  \
    "pb.oid AND (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL) AND pr.prrelid IN (SELECT c.oid UNION ALL "  \
    "SELECT relid FROM pg_partition_ancestors(c.oid)))))"

/* Each table the publication sends only in part is named, loudly, once per
 * run: walrev does not track it (it left, 'unpublished', if it was tracked). */
static void warn_partly_published(Backfill *b)
{
    const char *p[] = {b->cfg->publication};
    PGresult *r = NULL;
    if (pgio_exec(b->src,
                  "SELECT c.oid, format('%I.%I', n.nspname, c.relname) FROM pg_publication_tables pt "
                  "JOIN pg_namespace n ON n.nspname = pt.schemaname "
                  "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                  "WHERE pt.pubname = $1 AND " PARTLY_PUBLISHED_SQL " ORDER BY 2",
                  1, p, &r)) {
        for (int i = 0; i < PQntuples(r); i++) {
            uint32_t relid = (uint32_t)strtoul(PQgetvalue(r, i, 0), NULL, 10);
            bool warned = false;
            for (size_t k = 0; k < b->nleft_warned && !warned; k++) warned = b->left_warned[k] == relid;
            if (warned) continue;
            log_warn("msg=\"the publication sends only part of this table's changes (an action left out, a row "
                     "filter or a column list): walrev does not track it, and replay refuses it by name from the "
                     "change on\" table=%s publication=%s",
                     PQgetvalue(r, i, 1), b->cfg->publication);
            b->left_warned = xrealloc(b->left_warned, (b->nleft_warned + 1) * sizeof(uint32_t));
            b->left_warned[b->nleft_warned++] = relid;
        }
    }
    PQclear(r);
}

static WrStatus detect(Backfill *b, WrError *err)
{
    PGresult *born = NULL;
    WrStatus st = ensure_connections(b, err);
    if (st != WR_OK) return st;
    StrBuf q;
    strbuf_init(&q);
    char *schema = store_quote_ident(b->cfg->history_schema);
    strbuf_appendf(&q,
                   "SELECT relid, nspname, relname, state, request_no, last_key, chunks, rows_read, rows_recorded "
                   "FROM %s.backfill",
                   schema);
    free(schema);
    PGresult *h;
    bool ok = pgio_exec(b->hist, q.data, 0, NULL, &h);
    strbuf_free(&q);
    if (!ok) {
        const char *state = PQresultErrorField(h, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0) {
            log_warn("msg=\"the history store has no backfill table: tables added to the publication get no "
                     "baseline until `walrev setup` is run again\" schema=%s",
                     b->cfg->history_schema);
            b->disabled = true;
            PQclear(h);
            return WR_OK;
        }
        st = pgio_fail(b->hist, h, err, "backfill: reading the baseline states");
        PQclear(h);
        return st == WR_RETRY ? st : disable(b, err);
    }
    /* walrev's DDL capture table (in the history schema's name) is never history, nor a
     * partitioned table (listed only WITH (publish_via_partition_root = true)): its rows are
     * its partitions', which the table log then records 'unpublished' (via_root), so
     * replay refuses them by name; a baseline of the root would be failed, and would
     * make every point of it refused as incomplete, also those before the option. The
     * published tables and the table log's births are read in one snapshot: read one after
     * the other, a table dropped in between was listed but no longer born, and was taken
     * for one that joined the publication later (test_born_drop_race). */
    const char *pub[2] = {b->cfg->publication, b->cfg->history_schema};
    PGresult *s = NULL;
    st = pgio_run(b->src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, err,
                  "backfill: BEGIN for the published tables");
    if (st == WR_OK)
        st = pgio_run(b->src,
                      "SELECT c.oid, n.nspname, c.relname FROM pg_publication_tables pt "
                      "JOIN pg_namespace n ON n.nspname = pt.schemaname "
                      "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                      "WHERE pt.pubname = $1 AND NOT (pt.schemaname = $2 AND pt.tablename = 'ddl_capture') "
                      "AND c.relkind NOT IN ('p', 'f') AND NOT " PARTLY_PUBLISHED_SQL " ORDER BY 2, 3",
                      2, pub, &s, err, "backfill: listing published tables");
    if (st != WR_OK) {
        pgio_run_unchecked(b->src, "ROLLBACK");
        if (st != WR_RETRY) st = disable(b, err);
        goto out;
    }

    born = table_log_births(b);
    /* the trigger dropped or disabled while walrev runs: stop before a leave goes unrecorded */
    st = baseline_check_leave_note(b->src, b->cfg, false, err);
    if (st != WR_OK) {
        pgio_run_unchecked(b->src, "ROLLBACK");
        goto out;
    }
    warn_unrecorded_leavers(b, s, h);
    warn_partly_published(b);
    pgio_run_unchecked(b->src, "ROLLBACK"); /* read only: nothing to keep */
    for (int i = 0; i < PQntuples(s); i++) {
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(s, i, 0), NULL, 10);
        const char *nsp = PQgetvalue(s, i, 1), *rel = PQgetvalue(s, i, 2);
        if (queued(b, relid) || tracking_table_excluded(b->cfg->tracking, nsp, rel)) continue;
        int row = -1;
        for (int k = 0; k < PQntuples(h) && row < 0; k++)
            if ((uint32_t)strtoul(PQgetvalue(h, k, 0), NULL, 10) == relid) row = k;
        const char *state = row >= 0 ? PQgetvalue(h, row, 3) : NULL;
        int32_t request_no = row >= 0 ? atoi(PQgetvalue(h, row, 4)) : 0;
        bool finished_here = false;
        for (size_t k = 0; k < b->nfinished; k++)
            if (b->finished[k].relid == relid && request_no <= b->finished[k].request_no) finished_here = true;
        if (finished_here) continue;
        Job j = {.relid = relid, .request_no = request_no};
        if (!state && relid_listed(born, relid, 't')) {
            /* Created while published: every row it ever had is in the
             * stream after its table-log row, so there is nothing to read. */
            j.nspname = xstrdup(nsp);
            j.relname = xstrdup(rel);
            st = record_progress(b, &j, "done", NULL, err);
            job_free(&j);
            if (st != WR_OK) goto out;
            log_info("msg=\"no baseline needed: the table was created after tracking began, so all its rows come "
                     "through the stream\" table=%s.%s",
                     nsp, rel);
            remember_finished(b, relid, request_no);
            continue;
        }
        if (!state) {
            j.reason = "added to the publication after setup";
            j.partial_until_done = !relid_listed(born, relid, 'f');
        } else if (strcmp(state, "requested") == 0) {
            j.reason = "requested";
        } else if (strcmp(state, "running") == 0) {
            j.reason = "interrupted";
            j.resume = !PQgetisnull(h, row, 5) && parse_last_key(PQgetvalue(h, row, 5), &j.filenode, &j.next_page);
            if (j.resume) {
                j.chunks = atoi(PQgetvalue(h, row, 6));
                j.rows_read = atoll(PQgetvalue(h, row, 7));
                j.rows_recorded = atoll(PQgetvalue(h, row, 8));
            }
        } else {
            continue; /* done, skipped, failed, cancelled */
        }
        j.nspname = xstrdup(nsp);
        j.relname = xstrdup(rel);
        /* Its stream changes may be in the history already: the row marks
         * the table partial (whole_from) before the first chunk is read. */
        if (!state && (st = record_progress(b, &j, "requested", NULL, err)) != WR_OK) {
            job_free(&j);
            goto out;
        }
        enqueue(b, &j);
    }
    /* Requests and interrupted baselines of tables no longer published end here. */
    for (int k = 0; k < PQntuples(h) && st == WR_OK; k++) {
        const char *state = PQgetvalue(h, k, 3);
        if (strcmp(state, "requested") != 0 && strcmp(state, "running") != 0) continue;
        uint32_t relid = (uint32_t)strtoul(PQgetvalue(h, k, 0), NULL, 10);
        bool published = false;
        for (int i = 0; i < PQntuples(s) && !published; i++)
            published = (uint32_t)strtoul(PQgetvalue(s, i, 0), NULL, 10) == relid;
        if (published || queued(b, relid)) continue;
        Job j = {.relid = relid,
                 .request_no = atoi(PQgetvalue(h, k, 4)),
                 .nspname = xstrdup(PQgetvalue(h, k, 1)),
                 .relname = xstrdup(PQgetvalue(h, k, 2))};
        char why[200];
        snprintf(why, sizeof(why), "not in publication %s (or dropped)", b->cfg->publication);
        st = record_progress(b, &j, "cancelled", why, err);
        if (st == WR_OK) {
            log_warn("msg=\"baseline cancelled\" table=%s.%s reason=\"%s\"", j.nspname, j.relname, why);
            remember_finished(b, relid, j.request_no);
        }
        job_free(&j);
    }
out:
    PQclear(born);
    PQclear(s);
    PQclear(h);
    return st;
}

static void start_next(Backfill *b)
{
    b->job = b->queue[0];
    memmove(b->queue, b->queue + 1, (b->nqueue - 1) * sizeof(Job));
    b->nqueue--;
    b->active = true;
    b->phase = PH_IDLE;
    b->pages_per_chunk = FIRST_CHUNK_PAGES;
    b->retry_at_us = b->retry_wait_us = 0;
    b->lock_waits = 0;
    b->job_started_us = b->last_log_us = mono_now_us();
    recent_clear(b);
    claims_clear(b);
    if (b->job.resume)
        log_info("msg=\"resuming an interrupted baseline\" table=%s.%s page=%" PRIu32 " chunks=%d rows_recorded=%lld",
                 b->job.nspname, b->job.relname, b->job.next_page, b->job.chunks, (long long)b->job.rows_recorded);
    else
        log_info("msg=\"baseline of a table\" table=%s.%s reason=\"%s\" chunk_rows=%d", b->job.nspname, b->job.relname,
                 b->job.reason, b->cfg->backfill_chunk_rows);
    if (!b->job.resume) {
        b->job.filenode = 0;
        b->job.next_page = 0;
        b->job.chunks = 0;
        b->job.rows_read = b->job.rows_recorded = 0;
    }
}

/* ---- chunks ---- */

static WrStatus table_failed(Backfill *b, const char *state, const char *why, WrError *err);

static WrStatus emit_message(Backfill *b, const char *prefix, const char *content, WrError *err)
{
    const char *params[2] = {prefix, content};
    return pgio_run(b->src, "SELECT pg_logical_emit_message(true, $1, $2)", 2, params, NULL, err,
                    "backfill: emitting a watermark");
}

static WrStatus send_low(Backfill *b, WrError *err)
{
    /* 128 random bits, fresh for each watermark: no one but this worker can
     * emit a message the stream takes for it before it is in the WAL, and
     * the worker acts on it only while it awaits exactly that id. */
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return wr_error_set(err, WR_FATAL, "backfill: no random bytes for a watermark id");
    for (size_t i = 0; i < sizeof(rnd); i++) snprintf(b->wm_id + 2 * i, 3, "%02x", rnd[i]);
    char content[160];
    snprintf(content, sizeof(content), "{\"id\":\"%s\",\"relid\":%" PRIu32 "}", b->wm_id, b->job.relid);
    WrStatus st = emit_message(b, WATERMARK_PREFIX, content, err);
    if (st == WR_OK) b->phase = PH_LOW_SENT;
    /* e.g. EXECUTE on pg_logical_emit_message revoked: this baseline cannot go on */
    if (st == WR_FATAL) return table_failed(b, "failed", err->msg, err);
    return st;
}

/* The "id" of a watermark or chunk message of ours; false for anything else. */
static bool message_id(const PgoLogicalMessage *m, bool chunk, char *out, size_t size)
{
    json_error_t jerr;
    json_t *o = json_loadb((const char *)m->content, m->content_len, 0, &jerr);
    json_t *id = chunk ? json_object_get(json_object_get(json_object_get(o, "meta"), "backfill"), "id")
                       : json_object_get(o, "id");
    bool ok = json_is_string(id);
    if (ok) snprintf(out, size, "%s", json_string_value(id));
    json_decref(o);
    return ok;
}

static uint64_t key_hash(const char *s) { return wr_fnv1a(s, strlen(s), WR_FNV_BASIS); }

static void kept_index(Backfill *b)
{
    b->nslots = 16;
    while (b->nslots < 2 * b->nkept) b->nslots *= 2;
    b->slots = xmalloc(b->nslots * sizeof(int32_t));
    for (size_t i = 0; i < b->nslots; i++) b->slots[i] = -1;
    for (size_t i = 0; i < b->nkept; i++) {
        size_t s = (size_t)key_hash(b->kept_key[i]) & (b->nslots - 1);
        while (b->slots[s] >= 0) s = (s + 1) & (b->nslots - 1);
        b->slots[s] = (int32_t)i;
    }
}

/* A row of the chunk the stream has removed since the read: not recorded. */
static void drop_key(Backfill *b, const char *key)
{
    if (!key) {
        b->drop_all = true;
        return;
    }
    if (!b->slots) return;
    /* "~digest" names one of equal rows of a table without a key: one goes */
    bool one = key[0] == '~';
    for (size_t s = (size_t)key_hash(key) & (b->nslots - 1); b->slots[s] >= 0; s = (s + 1) & (b->nslots - 1))
        if (strcmp(b->kept_key[b->slots[s]], key) == 0 && !b->dropped[b->slots[s]]) {
            b->dropped[b->slots[s]] = true;
            if (one) return;
        }
}

static void row_values(PGresult *r, int row, int ncols, Value *vals)
{
    for (int c = 0; c < ncols; c++) {
        vals[c].data = PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
        vals[c].len = vals[c].data ? (size_t)PQgetlength(r, row, c) : 0;
    }
}

/* The chunk is in the history (or had nothing to add): advance, record, maybe finish. */
static WrStatus complete_chunk(Backfill *b, int64_t recorded, WrError *err)
{
    b->claims_mark = b->nclaims;
    b->job.chunks++;
    b->job.rows_read += b->chunk_read;
    b->job.rows_recorded += recorded;
    b->job.filenode = b->chunk_filenode;
    b->job.next_page = b->chunk_end;
    bool last = b->chunk_last;
    log_debug("msg=\"baseline chunk\" table=%s.%s chunk=%d pages=%" PRIu32 "-%" PRIu32
              " rows_read=%lld rows_recorded=%lld",
              b->job.nspname, b->job.relname, b->job.chunks, b->chunk_first, b->chunk_end, (long long)b->chunk_read,
              (long long)recorded);
    chunk_free(b);
    b->phase = PH_IDLE;
    if (last) return end_job(b, "done", NULL, err);
    log_progress(b, false);
    return record_progress(b, &b->job, "running", NULL, err);
}

/* A failure that concerns this table only: roll back, record it, go on streaming. */
static WrStatus table_failed(Backfill *b, const char *state, const char *why, WrError *err)
{
    char reason[sizeof(err->msg)];
    snprintf(reason, sizeof(reason), "%s", why); /* why may be err->msg, which the next step reuses */
    why = reason;
    pgio_run_unchecked(b->src, "ROLLBACK");
    chunk_free(b);
    return end_job(b, state, why, err);
}

char *baseline_own_context(const char *actor_id, const char *description, const char *meta_key, json_t *meta)
{
    json_t *o = json_object();
    json_t *actor = json_object();
    json_object_set_new(actor, "type", json_string("walrev"));
    json_object_set_new(actor, "id", json_string(actor_id));
    json_object_set_new(o, "actor", actor);
    json_object_set_new(o, "description", json_string(description));
    json_t *m = json_object();
    json_object_set_new(m, meta_key, meta);
    json_object_set_new(o, "meta", m);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static WrStatus chunk_context(Backfill *b, StrBuf *out)
{
    char desc[600];
    snprintf(desc, sizeof(desc), "baseline of %s.%s (joined the publication later): chunk %d", b->job.nspname,
             b->job.relname, b->job.chunks + 1);
    json_t *bf = json_object();
    json_object_set_new(bf, "id", json_string(b->wm_id));
    json_object_set_new(bf, "relid", json_integer(b->job.relid));
    json_object_set_new(bf, "table", json_string(b->table.qualified));
    json_object_set_new(bf, "chunk", json_integer(b->job.chunks + 1));
    json_object_set_new(bf, "first_page", json_integer(b->chunk_first));
    json_object_set_new(bf, "end_page", json_integer(b->chunk_end));
    json_object_set_new(bf, "rows_read", json_integer(b->chunk_read));
    char *s = baseline_own_context("baseline", desc, "backfill", bf);
    strbuf_reset(out);
    strbuf_append_str(out, s);
    free(s);
    return WR_OK;
}

static bool lock_not_available(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && strcmp(state, "55P03") == 0;
}

/*
 * The table is locked by someone else (lock_timeout expired): roll back and
 * read the same chunk later, after a growing pause. The low watermark stays
 * valid: the history is still current up to it, and whatever the stream
 * delivers after it is either known to the history at the read or takes its
 * row out of the chunk before the chunk message.
 */
static WrStatus wait_for_lock(Backfill *b)
{
    pgio_run_unchecked(b->src, "ROLLBACK");
    chunk_free(b);
    b->retry_wait_us = b->retry_wait_us ? 2 * b->retry_wait_us : LOCK_RETRY_FIRST_US;
    if (b->retry_wait_us > LOCK_RETRY_MAX_US) b->retry_wait_us = LOCK_RETRY_MAX_US;
    b->retry_at_us = mono_now_us() + b->retry_wait_us;
    if (b->lock_waits++ == 0)
        log_warn("msg=\"baseline waits: the table is locked; streaming goes on and the chunk is read again "
                 "later\" table=%s.%s page=%" PRIu32 " retry_ms=%lld",
                 b->job.nspname, b->job.relname, b->job.next_page, (long long)(b->retry_wait_us / 1000));
    else
        log_debug("msg=\"baseline still waits for a lock\" table=%s.%s attempts=%d retry_ms=%lld", b->job.nspname,
                  b->job.relname, b->lock_waits, (long long)(b->retry_wait_us / 1000));
    return WR_OK;
}

/*
 * Step 1 of a chunk: open its snapshot and learn where the table stands
 * (dropped, out of the publication, rewritten, how many pages). *go_on false:
 * the chunk ends here (waits for a lock, or the table failed or was
 * cancelled) and the status is the chunk's.
 */
static WrStatus open_chunk(Backfill *b, bool *go_on, WrError *err)
{
    PGconn *c = b->src;
    char oid[16], msg[512];
    *go_on = false;
    snprintf(oid, sizeof(oid), "%" PRIu32, b->job.relid);
    const char *params[2] = {b->cfg->publication, oid};
    claims_truncate(b, b->claims_mark);
    WrStatus st = pgio_run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, NULL, err, "backfill: BEGIN");
    if (st != WR_OK) return st;
    PGresult *r;
    bool ok =
        pgio_exec(c,
                  "SELECT pg_current_snapshot()::text, set_config('walrev.publication', $1, true), "
                  "pg_relation_filenode($2::oid), pg_relation_size($2::oid) / current_setting('block_size')::bigint, "
                  "(SELECT relkind FROM pg_class WHERE oid = $2::oid)",
                  2, params, &r);
    if (!ok) {
        if (lock_not_available(r)) {
            PQclear(r);
            return wait_for_lock(b);
        }
        st = pgio_fail(c, r, err, "backfill: reading the snapshot");
        PQclear(r);
        if (st == WR_RETRY) return st;
        return table_failed(b, "failed", err->msg, err);
    }
    bool parsed = backfill_snapshot_parse(PQgetvalue(r, 0, 0), &b->snap);
    bool gone = PQgetisnull(r, 0, 4);
    bool partitioned = !gone && PQgetvalue(r, 0, 4)[0] == 'p';
    gone = gone || PQgetisnull(r, 0, 2) || PQgetisnull(r, 0, 3);
    b->chunk_filenode = gone ? 0 : (uint32_t)strtoul(PQgetvalue(r, 0, 2), NULL, 10);
    uint64_t nblocks = gone ? 0 : strtoull(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    if (!parsed) return table_failed(b, "failed", "pg_current_snapshot() returned an unexpected text", err);
    /* Published through its root (publish_via_partition_root): its rows are
     * in the partitions, which are read neither here nor by setup's baseline. */
    if (partitioned)
        return table_failed(b, "failed", "a partitioned table published through its root: its partitions are not read",
                            err);
    if (gone) return table_failed(b, "cancelled", "the table was dropped", err);
    bool found = false;
    st = backfill_table_describe(c, b->job.relid, &b->table, &found, err);
    if (st == WR_RETRY) return st;
    if (st != WR_OK) return table_failed(b, "failed", err->msg, err);
    if (!found) {
        snprintf(msg, sizeof(msg), "no longer in publication %s", b->cfg->publication);
        return table_failed(b, "cancelled", msg, err);
    }
    /* A rewrite (VACUUM FULL, CLUSTER, ALTER TABLE ... TYPE, TRUNCATE) moves
     * every row: pages read before say nothing about the new file. */
    if (b->job.filenode && b->job.filenode != b->chunk_filenode) {
        log_info("msg=\"table rewritten during its baseline; reading it again from the first page\" table=%s.%s",
                 b->job.nspname, b->job.relname);
        b->job.next_page = 0;
        claims_clear(b);
    }
    b->nblocks = nblocks > UINT32_MAX ? UINT32_MAX : (uint32_t)nblocks;
    b->chunk_first = b->job.next_page;
    uint64_t end = (uint64_t)b->chunk_first + b->pages_per_chunk;
    b->chunk_end = end > b->nblocks ? (b->nblocks > b->chunk_first ? b->nblocks : b->chunk_first) : (uint32_t)end;
    b->chunk_last = b->chunk_end >= b->nblocks;
    *go_on = true;
    return WR_OK;
}

/* Step 2: the chunk's pages into b->rows (NULL when it has none); *go_on as open_chunk's. */
static WrStatus read_pages(Backfill *b, bool *go_on, WrError *err)
{
    PGconn *c = b->src;
    *go_on = false;
    /* Whole pages by TID range: no index needed, any table (with or without a key). */
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "SELECT %s FROM ONLY %s WHERE ctid >= '(%" PRIu32 ",0)'::tid AND ctid < '(%" PRIu32 ",0)'::tid",
                   b->table.select_list, b->table.qualified, b->chunk_first, b->chunk_end);
    if (b->table.rowfilter) strbuf_appendf(&sql, " AND (%s)", b->table.rowfilter);
    b->rows = NULL;
    bool ok = b->chunk_end <= b->chunk_first || pgio_exec(c, sql.data, 0, NULL, &b->rows);
    strbuf_free(&sql);
    if (!ok) {
        if (lock_not_available(b->rows)) return wait_for_lock(b);
        WrStatus st = pgio_fail(c, b->rows, err, "backfill: reading a chunk");
        if (st == WR_RETRY) return st;
        return table_failed(b, "failed", err->msg, err);
    }
    b->chunk_read = b->rows ? PQntuples(b->rows) : 0;
    if (b->lock_waits > 0)
        log_info("msg=\"baseline goes on: the lock was released\" table=%s.%s attempts=%d", b->job.nspname,
                 b->job.relname, b->lock_waits);
    b->lock_waits = 0;
    b->retry_wait_us = 0;
    *go_on = true;
    return WR_OK;
}

/* Step 3: the rows of b->rows the history lacks, into b->kept / b->kept_key. Errors are the history store's. */
static WrStatus keep_unknown_rows(Backfill *b, int nrows, WrError *err)
{
    /* Keys as the stream would build them, from a version of our own. */
    bool is_new;
    const char **names = xcalloc((size_t)b->table.ncols + 1, sizeof(char *));
    for (int i = 0; i < b->table.ncols; i++) names[i] = b->table.cols[i].name;
    relcache_set_attnums(b->keycache, b->job.relid, b->table.ncols, names, b->table.attnums);
    free(names);
    const RelationVersion *krv =
        relcache_apply(b->keycache, b->job.relid, b->table.nspname, b->table.relname, b->table.replident,
                       (uint16_t)b->table.ncols, b->table.cols, 0, 0, &is_new);
    Value *vals = xcalloc((size_t)b->table.ncols + 1, sizeof(Value));
    b->kept = xcalloc((size_t)nrows + 1, sizeof(int));
    b->kept_key = xcalloc((size_t)nrows + 1, sizeof(char *));
    b->dropped = xcalloc((size_t)nrows + 1, sizeof(bool));
    bool keyless = !digest_rel_has_key(krv);
    WrStatus st = WR_OK;
    for (int i = 0; i < nrows && st == WR_OK; i++) {
        row_values(b->rows, i, b->table.ncols, vals);
        bool known = false;
        if (keyless) {
            /* a multiset: known when the history has an equal row no other
             * row of this baseline was matched to */
            uint8_t d[DIGEST_LEN];
            assembler_row_digest(b->a, krv, vals, d);
            int n = claim_keys(b, d);
            st = assembler_keyless_known(b->a, krv, vals, b->excl, n, &b->key, &known, err);
            if (st != WR_OK) continue;
            if (known) {
                claim_add(b, d, b->key.data);
                continue;
            }
            digest_name(d, &b->key);
        } else {
            assembler_row_key(krv, vals, &b->key);
            st = assembler_row_known(b->a, krv, b->key.data, &known, err);
        }
        if (st != WR_OK || known) continue;
        b->kept[b->nkept] = i;
        b->kept_key[b->nkept++] = xstrdup(b->key.data);
    }
    free(vals);
    return st;
}

/* Adapt the pages per chunk to the rows per chunk wanted. */
static void adapt_chunk_pages(Backfill *b, int nrows)
{
    uint64_t want = (uint64_t)b->cfg->backfill_chunk_rows;
    uint64_t pages = b->chunk_end - b->chunk_first;
    uint64_t next =
        nrows > 0 ? (pages * want + (uint64_t)nrows / 2) / (uint64_t)nrows : (uint64_t)b->pages_per_chunk * 2;
    b->pages_per_chunk = next < 1 ? 1 : next > MAX_CHUNK_PAGES ? MAX_CHUNK_PAGES : (uint32_t)next;
}

/*
 * Step 4: when rows are kept, the chunk message in the read's transaction,
 * so it commits after every transaction the read saw; then COMMIT. With
 * none kept the chunk is complete at once.
 */
static WrStatus send_chunk(Backfill *b, WrError *err)
{
    bool any = false;
    for (size_t i = 0; i < b->nkept && !b->drop_all; i++) any = any || !b->dropped[i];
    WrStatus st;
    if (any) {
        StrBuf ctx;
        strbuf_init(&ctx);
        chunk_context(b, &ctx);
        st = emit_message(b, CHUNK_PREFIX, ctx.data, err);
        strbuf_free(&ctx);
        if (st == WR_RETRY) return st;
        if (st != WR_OK) return table_failed(b, "failed", err->msg, err);
    }
    st = pgio_run(b->src, "COMMIT", 0, NULL, NULL, err, "backfill: COMMIT");
    if (st == WR_RETRY) return st;
    if (st != WR_OK) return table_failed(b, "failed", err->msg, err);
    if (any) {
        b->phase = PH_HIGH_SENT;
        return WR_OK;
    }
    return complete_chunk(b, 0, err);
}

/*
 * The stream has reached the low watermark: the history holds everything
 * committed before it. Read the next pages in one snapshot and keep the rows
 * the history lacks; when there are any, the chunk message follows in the
 * same transaction, so it commits after every transaction the read saw.
 */
static WrStatus read_chunk(Backfill *b, WrError *err)
{
    bool go_on = false;
    WrStatus st = open_chunk(b, &go_on, err);
    if (st == WR_OK && go_on) st = read_pages(b, &go_on, err);
    if (st != WR_OK || !go_on) return st;
    int nrows = (int)b->chunk_read;
    st = keep_unknown_rows(b, nrows, err);
    if (st != WR_OK) {
        pgio_run_unchecked(b->src, "ROLLBACK");
        return st; /* a history store error: the pipeline's to handle */
    }
    kept_index(b);
    /* Deletes the stream delivered before the read but the read did not see
     * (committed, yet not visible to new snapshots for a moment). */
    for (size_t i = 0; i < RECENT_DELETES; i++)
        if (b->recent[i].xid && !backfill_snapshot_sees(&b->snap, b->recent[i].xid)) drop_key(b, b->recent[i].key);
    adapt_chunk_pages(b, nrows);
    return send_chunk(b, err);
}

/* The chunk message is on the stream, the context of its revision: add the rows. */
static WrStatus record_chunk(Backfill *b, WrError *err)
{
    if (!assembler_in_revision(b->a)) {
        /* Not expected: the message of a chunk read in this session cannot be
         * durable already. Read the same pages again rather than guess. */
        log_warn("msg=\"baseline chunk message outside a revision; reading the chunk again\" table=%s.%s",
                 b->job.nspname, b->job.relname);
        chunk_free(b);
        b->phase = PH_IDLE;
        return WR_OK;
    }
    const RelationVersion *rv = NULL;
    relcache_set_generated(assembler_relcache(b->a), b->job.relid, b->table.ngen, b->table.gen);
    backfill_table_name_types(&b->table, assembler_relcache(b->a));
    WrStatus st =
        assembler_baseline_relation(b->a, b->job.relid, b->table.nspname, b->table.relname, b->table.replident,
                                    (uint16_t)b->table.ncols, b->table.cols, b->table.attnums, &rv, err);
    if (st != WR_OK) return st;
    int64_t recorded = 0;
    Value *vals = xcalloc((size_t)b->table.ncols + 1, sizeof(Value));
    bool keyless = !digest_rel_has_key(rv);
    for (size_t i = 0; i < b->nkept && !b->drop_all && st == WR_OK; i++) {
        if (b->dropped[i]) continue;
        row_values(b->rows, b->kept[i], b->table.ncols, vals);
        st = assembler_baseline_row(b->a, rv, vals, err);
        if (st == WR_OK) recorded++;
        if (st == WR_OK && keyless) {
            /* recorded: an equal row of a later chunk is another row */
            uint8_t d[DIGEST_LEN];
            assembler_row_digest(b->a, rv, vals, d);
            claim_add(b, d, assembler_last_row_key(b->a));
        }
    }
    free(vals);
    if (st != WR_OK) return st;
    return complete_chunk(b, recorded, err);
}

/* ---- hooks ---- */

WrStatus backfill_on_message(Backfill *b, const PgoLogicalMessage *m, WrError *err)
{
    if (b->disabled || !m->transactional) return WR_OK;
    char id[64];
    if (strcmp(m->prefix, WATERMARK_PREFIX) == 0) {
        if (b->phase == PH_LOW_SENT && message_id(m, false, id, sizeof(id)) && strcmp(id, b->wm_id) == 0)
            b->phase = PH_LOW_SEEN;
    } else if (strcmp(m->prefix, CHUNK_PREFIX) == 0) {
        if (b->phase == PH_HIGH_SENT && message_id(m, true, id, sizeof(id)) && strcmp(id, b->wm_id) == 0)
            return record_chunk(b, err);
        /* A chunk of an earlier session whose rows died with it: its revision
         * stays empty and the worker reads those pages again. */
        if (assembler_in_revision(b->a))
            log_info("msg=\"a baseline chunk of an earlier run arrived without its rows; its pages are read "
                     "again\" lsn=" LSN_FMT,
                     LSN_ARGS(m->lsn));
    }
    return WR_OK;
}

bool backfill_owns_message(Backfill *b, const PgoLogicalMessage *m)
{
    if (b->disabled || !m->transactional) return false;
    char id[64];
    if (strcmp(m->prefix, WATERMARK_PREFIX) == 0)
        return b->phase == PH_LOW_SENT && message_id(m, false, id, sizeof(id)) && strcmp(id, b->wm_id) == 0;
    if (strcmp(m->prefix, CHUNK_PREFIX) == 0)
        return b->phase == PH_HIGH_SENT && message_id(m, true, id, sizeof(id)) && strcmp(id, b->wm_id) == 0;
    return false;
}

void backfill_on_ddl(Backfill *b) { b->check_now = true; }

void backfill_on_delta(Backfill *b, const Revision *rev, const ObjectDelta *d)
{
    if (!b->active || d->relver->relid != b->job.relid || d->op == DELTA_SNAPSHOT) return;
    const char *key = d->key;
    if (d->op != DELTA_TRUNCATE && !digest_rel_has_key(d->relver)) {
        /* A table without a key: rows are named by digest ("~hex"), and which
         * of equal rows a change takes is open, so what the read saw decides.
         * A change the read saw left its row as the stream records it: the
         * read's copy of the new row goes. A change the read did not see
         * leaves the read's old row, which goes only if the stream gave the
         * change a new identity (the history lacked the row: it now holds
         * it) or it is a delete. */
        bool seen = b->phase == PH_HIGH_SENT && backfill_snapshot_sees(&b->snap, rev->xid);
        const uint8_t *dg = NULL;
        if (seen && d->op != DELTA_DELETE)
            dg = d->row_digest;
        else if (!seen && d->old_row_digest && (d->op == DELTA_DELETE || !d->old_row_found))
            dg = d->old_row_digest;
        if (!dg && d->op != DELTA_DELETE) return;
        if (dg) {
            digest_name(dg, &b->key);
            key = b->key.data;
        }
    }
    /* Between the read and the chunk message, a row the stream changes is in
     * the history from then on, newer than the read (or gone): not recorded. */
    if (b->phase == PH_HIGH_SENT) drop_key(b, key);
    if (d->op != DELTA_DELETE && d->op != DELTA_TRUNCATE) return;
    RecentDelete *r = &b->recent[b->recent_next];
    b->recent_next = (b->recent_next + 1) % RECENT_DELETES;
    free(r->key);
    r->xid = rev->xid;
    r->key = key ? xstrdup(key) : NULL;
}

void backfill_on_relation(Backfill *b, const RelationVersion *rv)
{
    /* A table's first version: it has just joined the publication. */
    if (rv->version == 1) b->check_now = true;
}

WrStatus backfill_step(Backfill *b, WrError *err)
{
    if (b->disabled) return WR_OK;
    int64_t t = mono_now_us();
    if (!b->checked || b->check_now || t - b->last_check_us >= CHECK_INTERVAL_US) {
        b->checked = true;
        b->check_now = false;
        b->last_check_us = t;
        WrStatus st = detect(b, err);
        if (st != WR_OK || b->disabled) return st;
    }
    if (!b->active && b->nqueue > 0) start_next(b);
    if (!b->active) return WR_OK;
    log_progress(b, false);
    switch (b->phase) {
    case PH_IDLE: return send_low(b, err);
    case PH_LOW_SEEN: return t < b->retry_at_us ? WR_OK : read_chunk(b, err);
    case PH_LOW_SENT:
    case PH_HIGH_SENT: return WR_OK;
    }
    return WR_OK;
}

/* ---- walrev baseline ---- */

/* The published table named `table` in the source: its oid, schema and name
 * in *found (the caller's to PQclear); else 1 with the reason on stderr. */
static int lookup_table(PGconn *src, const BaselineConfig *cfg, const char *table, PGresult **found)
{
    const char *p[2] = {table, cfg->publication};
    PGresult *r;
    bool ok = pgio_exec(src,
                        "SELECT c.oid, n.nspname, c.relname, EXISTS (SELECT 1 FROM pg_publication_tables pt "
                        "WHERE pt.pubname = $2 AND pt.schemaname = n.nspname AND pt.tablename = c.relname) "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.oid = to_regclass($1)",
                        2, p, &r);
    char msg[512];
    int rc = 0;
    if (!ok) {
        fprintf(stderr, "walrev baseline: looking up %s: %s\n", table, sql_message(src, r, msg, sizeof(msg)));
        rc = 1;
    } else if (PQntuples(r) == 0) {
        fprintf(stderr, "walrev baseline: table %s does not exist in the source database\n", table);
        rc = 1;
    } else if (PQgetvalue(r, 0, 3)[0] != 't') {
        fprintf(stderr,
                "walrev baseline: %s.%s is not in publication %s; add it first (ALTER PUBLICATION %s ADD TABLE "
                "...), and the worker takes its baseline by itself\n",
                PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), cfg->publication, cfg->publication);
        rc = 1;
    }
    if (rc) {
        PQclear(r);
        return rc;
    }
    *found = r;
    return 0;
}

/* A new baseline of the table lookup_table found (r): its backfill row requested again. */
static int request_table(PGconn *hist, const char *schema, const PGresult *r)
{
    char msg[512];
    int rc = 0;
    const char *hp[3] = {PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2)};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.backfill AS b (relid, nspname, relname, state, request_no, requested_at) "
                   "VALUES ($1, $2, $3, 'requested', 1, now()) ON CONFLICT (relid) DO UPDATE SET "
                   "nspname = EXCLUDED.nspname, relname = EXCLUDED.relname, state = 'requested', "
                   "request_no = b.request_no + 1, last_key = NULL, chunks = 0, rows_read = 0, rows_recorded = 0, "
                   "error = NULL, requested_at = now(), started_at = NULL, finished_at = NULL, updated_at = now()",
                   schema);
    PGresult *h;
    bool ok = pgio_exec(hist, q.data, 3, hp, &h);
    strbuf_free(&q);
    if (!ok) {
        fprintf(stderr, "walrev baseline: requesting the baseline of %s.%s: %s\n", hp[1], hp[2],
                sql_message(hist, h, msg, sizeof(msg)));
        const char *state = PQresultErrorField(h, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42P01") == 0)
            fprintf(stderr, "  fix: run walrev setup, which creates the backfill table in the history store\n");
        rc = 1;
    } else {
        printf("requested baseline of %s.%s: the running worker takes it within 10 s\n", hp[1], hp[2]);
    }
    PQclear(h);
    return rc;
}

static int print_states(PGconn *hist, const char *schema, OutFormat fmt, const char *null_text)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(
        &q,
        "SELECT format('%%I.%%I', nspname, relname) AS \"table\", state, chunks, rows_read, "
        "rows_recorded, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS') AS updated, error "
        "FROM %1$s.backfill b "
        /* walrev's own table and erasure logs (setup publishes them) are no tables of the user's */
        "WHERE NOT (b.relname IN ('table_log', 'erasure_log') AND b.nspname = (SELECT n.nspname FROM pg_class c "
        "  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = '%1$s.backfill'::regclass)) "
        "ORDER BY 1",
        schema);
    PGresult *r;
    bool ok = pgio_exec(hist, q.data, 0, NULL, &r);
    strbuf_free(&q);
    char msg[512];
    if (!ok) {
        fprintf(stderr, "walrev baseline: reading the baseline states: %s\n", sql_message(hist, r, msg, sizeof(msg)));
        PQclear(r);
        return 1;
    }
    out_print_result(stdout, r, fmt, null_text);
    PQclear(r);
    return 0;
}

int backfill_command(const BaselineConfig *cfg, char *const *tables, int ntables, OutFormat fmt, const char *null_text)
{
    WrError err = {0};
    PGconn *src = NULL, *hist = NULL;
    int rc = 1;
    char *schema = store_quote_ident(cfg->history_schema);
    if (ntables > 0 && !(src = connect_to(cfg->source_conninfo, "source", &err))) goto out;
    if (!(hist = connect_to(cfg->history_conninfo, "history store", &err))) goto out;
    rc = 0;
    /* every table is looked up before any is requested: one that is not there or not published
     * requests none (as a command that names a wrong table should), and says so */
    PGresult **found = xcalloc((size_t)ntables + 1, sizeof(PGresult *));
    for (int i = 0; i < ntables; i++)
        if (lookup_table(src, cfg, tables[i], &found[i]) != 0) rc = 1;
    if (rc)
        fprintf(stderr, "walrev baseline: no baseline requested\n");
    else
        for (int i = 0; i < ntables; i++)
            if (request_table(hist, schema, found[i]) != 0) rc = 1;
    for (int i = 0; i < ntables; i++) PQclear(found[i]);
    free(found);
    if (print_states(hist, schema, fmt, null_text) != 0) rc = 1;
out:
    if (err.msg[0]) fprintf(stderr, "walrev baseline: %s\n", err.msg);
    free(schema);
    PQfinish(src);
    PQfinish(hist);
    return rc;
}
