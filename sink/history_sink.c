/*
 * history_sink.c — the history store sink: writes revisions, contexts and
 * object deltas to PostgreSQL tables (docs/history-store.md) with COPY, one
 * transaction per batch that also carries the checkpoint row, so a crash
 * never loses or duplicates a revision. Old row images (REPLICA IDENTITY
 * DEFAULT sends none) are rebuilt from the nearest keyframe and the object's
 * deltas; keyframes fall due at batch commit and are taken by a background
 * thread (keyframer.h). It never applies DDL (`walrev
 * setup` does) and never logs the conninfo.
 */
#include "sink/sink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "common/textsafe.h"
#include "schema/checksum.h"
#include "schema/digest.h"
#include "schema/rowcache.h"
#include "schema/rowfold.h"
#include "schema/store_sql.h"
#include "sink/copy_format.h"
#include "sink/keyframer.h"
#include "pgio/pgio.h"

/* The most of a context message stored as text (beyond: its hash). */
#define CONTEXT_RAW_STORED_MAX ((size_t)1 << 20)
#define KEYFRAME_FACTOR 4
#define KEYFRAME_MIN_ROWS 250
/* A batch's window while the stream is busy, in batch_max_ms. */
#define BUSY_WINDOW_FACTOR 10

/* The COPY buffers, one per destination table; sent one at a time. */
enum { TB_CONTEXT, TB_REVISION, TB_DELTA, TB_COUNT };

typedef struct {
    uint32_t relid;
    int32_t version;
    bool committed; /* false while only in the open batch */
} RelSeen;

/* Per table touched by the open batch: what tracked_table learns at commit. */
typedef struct {
    uint32_t relid;
    int64_t deltas;
    int64_t live_change; /* rows begun minus rows ended since the batch began (or the truncate) */
} RelCount;

typedef struct {
    char *conninfo;
    char *schema;
    char *qschema;
    char *slot_name;
    int batch_max_revisions;
    int batch_max_ms;
    int keyframe_factor;
    size_t buffer_bytes;

    PGconn *conn;
    bool broken;      /* connection lost: only destroy is useful */
    bool failed;      /* an error left the batch unusable until abort() */
    WrStatus failed_status;

    char *copy_sql[TB_COUNT];
    char *table_name[TB_COUNT]; /* for messages: walrev.object_delta */
    StrBuf buf[TB_COUNT];

    /* Open batch. */
    bool in_tx;
    bool in_revision;
    int64_t cur_id;
    int64_t batch_timer_us; /* when wants_flush first saw the open batch (caller's clock); 0: not yet */
    int batch_revisions;
    int64_t batch_last_id;
    Lsn batch_end_lsn;
    uint8_t batch_checksum[WALREV_CHECKSUM_LEN];
    /* A COPY whose data is sent but whose result is not read yet: the server
     * ingests it while the worker goes on decoding (await_copy before any
     * other use of the connection). */
    bool copy_pending;
    char copy_pending_what[128];
    RelCount *counts;
    size_t ncounts, capcounts;
    KeyframeRequest *kf_due; /* keyframes the batch made due, asked for once it commits */
    size_t nkf_due, capkf_due;
    Keyframer *keyframer; /* started at open */
    /* Keys of the deltas still in the unsent COPY buffer, as a Bloom filter:
     * a lookup sends the buffer first only when its key may be in it, not
     * once per lookup (a COPY round trip each). */
    uint8_t *unsent_keys;
    bool unsent_keys_dirty;

    /* Durable state. */
    int64_t next_id_base; /* last revision id received (batch included) */
    int64_t lookup_as_of; /* > 0: lookups answer as of this revision (sink_history_lookup_as_of) */
    int64_t durable_id;
    Lsn durable;

    RelSeen *rels;
    size_t nrels, caprels;

    /* row_digest changes not yet applied (row_digest_apply's four arrays, as
     * array literals): applied before any read of row_digest or the images,
     * and before the batch commits. */
    StrBuf dg[4];
    int dg_n;
    /* Tables with a stale-image mark (col_id -1) somewhere: their lookups
     * read row_digest first. */
    uint32_t *marked;
    size_t nmarked, capmarked;
    /* Tables without a key whose row digests were rebuilt this session, and
     * under which version (find_row rebuilds once after a miss). */
    RelSeen *redigested;
    size_t nredigested, capredigested;
    DigestKey dkey; /* digest_key, read at open */

    /* Scratch. */
    Value *vals;
    size_t vals_cap;
    StrBuf tmp;
} HistorySink;

/* ---------- errors ---------- */

/*
 * Classify a failed libpq call (pgio's SQLSTATE table) and fill err. Retry
 * (connection lost, shutdown, conflict) is WR_RETRY: the open transaction died
 * with it or must be rolled back; anything else is WR_FATAL with SQLSTATE and
 * the server's message. Either way the batch is unusable until abort().
 */
static WrStatus pg_fail(HistorySink *h, const PGresult *res, WrError *err, const char *what)
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
        wr_error_set(err, st, "history store: %s failed: SQLSTATE %s: %s", what,
                     sqlstate ? sqlstate : "none", msg);
    }
    if (err && sqlstate) snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
    h->failed = true;
    h->failed_status = st;
    return st;
}

static WrStatus check_usable(HistorySink *h, WrError *err, const char *what)
{
    if (!h->conn) return wr_error_set(err, WR_FATAL, "history store: %s before open", what);
    if (h->broken)
        return wr_error_set(err, WR_RETRY,
                            "history store: %s after the connection was lost; recreate the sink", what);
    if (h->failed)
        return wr_error_set(err, h->failed_status,
                            "history store: %s after an earlier error; abort the batch first", what);
    return WR_OK;
}

/* Run a command (optionally with text parameters); *out gets the result when wanted. */
static WrStatus await_copy(HistorySink *h, WrError *err);

static WrStatus run(HistorySink *h, const char *sql, int nparams, const char *const *params,
                    const char *what, PGresult **out, WrError *err)
{
    WrStatus ast = await_copy(h, err);
    if (ast != WR_OK) return ast;
    PGresult *res;
    if (!pgio_exec(h->conn, sql, nparams, params, &res)) {
        WrStatus st = pg_fail(h, res, err, what);
        PQclear(res);
        return st;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return WR_OK;
}

static WrStatus ensure_tx(HistorySink *h, WrError *err)
{
    if (h->in_tx) return WR_OK;
    WrStatus st = run(h, "BEGIN", 0, NULL, "BEGIN of a batch", NULL, err);
    if (st != WR_OK) return st;
    h->in_tx = true;
    h->batch_timer_us = 0; /* started by the next wants_flush, on the caller's clock */
    h->batch_revisions = 0;
    return WR_OK;
}

/* ---------- COPY ---------- */

/* Read the result of the COPY sent last, if any. */
static WrStatus await_copy(HistorySink *h, WrError *err)
{
    if (!h->copy_pending) return WR_OK;
    h->copy_pending = false;
    WrStatus st = WR_OK;
    bool reported = false;
    PGresult *res;
    while ((res = pgio_get_result(h->conn)) != NULL) {
        if (!reported && PQresultStatus(res) != PGRES_COMMAND_OK) {
            st = pg_fail(h, res, err, h->copy_pending_what);
            reported = true;
        }
        PQclear(res);
        if (PQstatus(h->conn) == CONNECTION_BAD) break;
    }
    if (!reported && PQstatus(h->conn) == CONNECTION_BAD) st = pg_fail(h, NULL, err, h->copy_pending_what);
    return st;
}

/*
 * Send one table's buffer with COPY FROM STDIN; only one COPY may be active
 * at a time. The result is read later (await_copy), so the server works on
 * this chunk while the next one is assembled.
 */
static void unsent_clear(HistorySink *h);

static WrStatus send_buffer(HistorySink *h, int t, WrError *err)
{
    StrBuf *b = &h->buf[t];
    if (b->len == 0) return WR_OK;
    WrStatus st = await_copy(h, err);
    if (st != WR_OK) return st;
    snprintf(h->copy_pending_what, sizeof(h->copy_pending_what), "COPY into %s", h->table_name[t]);
    PGresult *res;
    (void)pgio_exec(h->conn, h->copy_sql[t], 0, NULL, &res);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        st = pg_fail(h, res, err, h->copy_pending_what);
        PQclear(res);
        return st;
    }
    PQclear(res);
    bool ok = pgio_copy_put(h->conn, b->data, b->len) && PQputCopyEnd(h->conn, NULL) == 1;
    strbuf_reset(b);
    if (t == TB_DELTA) unsent_clear(h);
    if (!ok) return pg_fail(h, NULL, err, h->copy_pending_what);
    h->copy_pending = true;
    return WR_OK;
}

#define UNSENT_BLOOM_BITS ((size_t)1 << 20) /* 128 KiB: ~1% false positives at 100k keys */

/* Bloom bit k of a key: three bits by double hashing. */
static size_t bloom_bit(uint64_t x, int k) { return (size_t)((x + (uint64_t)k * ((x >> 32) | 1)) % UNSENT_BLOOM_BITS); }

static void unsent_add(HistorySink *h, uint32_t relid, const char *key)
{
    if (!h->unsent_keys) h->unsent_keys = xcalloc(UNSENT_BLOOM_BITS / 8, 1);
    uint64_t x = rowcache_key_hash(relid, key, strlen(key));
    for (int k = 0; k < 3; k++) h->unsent_keys[bloom_bit(x, k) / 8] |= (uint8_t)(1u << (bloom_bit(x, k) % 8));
    h->unsent_keys_dirty = true;
}

static bool unsent_maybe(const HistorySink *h, uint32_t relid, const char *key)
{
    if (!h->unsent_keys_dirty) return false;
    uint64_t x = rowcache_key_hash(relid, key, strlen(key));
    for (int k = 0; k < 3; k++)
        if (!(h->unsent_keys[bloom_bit(x, k) / 8] & (1u << (bloom_bit(x, k) % 8)))) return false;
    return true;
}

static void unsent_clear(HistorySink *h)
{
    if (h->unsent_keys_dirty) memset(h->unsent_keys, 0, UNSENT_BLOOM_BITS / 8);
    h->unsent_keys_dirty = false;
}

static WrStatus maybe_send(HistorySink *h, int t, WrError *err)
{
    if (h->buf[t].len <= h->buffer_bytes) return WR_OK;
    return send_buffer(h, t, err);
}

static void tab(StrBuf *b) { strbuf_append_char(b, '\t'); }

static void append_lsn(StrBuf *b, Lsn l) { strbuf_appendf(b, LSN_FMT, LSN_ARGS(l)); }

static void append_str_field(StrBuf *b, const char *s)
{
    copy_append_field(b, s, s ? strlen(s) : 0);
}

static RelCount *count_of(HistorySink *h, uint32_t relid)
{
    for (size_t i = 0; i < h->ncounts; i++)
        if (h->counts[i].relid == relid) return &h->counts[i];
    if (h->ncounts == h->capcounts) {
        h->capcounts = h->capcounts ? 2 * h->capcounts : 16;
        h->counts = xrealloc(h->counts, h->capcounts * sizeof(RelCount));
    }
    h->counts[h->ncounts] = (RelCount){relid, 0, 0};
    return &h->counts[h->ncounts++];
}


static void append_array_element(StrBuf *b, const char *v)
{
    strbuf_append_char(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') strbuf_append_char(b, '\\');
        strbuf_append_char(b, *v);
    }
    strbuf_append_char(b, '"');
}

/* ---------- row digests (docs/history-store.md, "Rows without a key") ---------- */

#define DG_END_ROW (-32768) /* row_digest_apply: the row ended */
#define DG_STALE (-1)       /* col_id of the stale-image mark */
#define DG_APPLY_AT 20000   /* queued changes applied in one statement at most */

static bool rel_has_hidden(const RelationVersion *rv)
{
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (rv->cols[i].track == TRACK_HIDDEN) return true;
    return false;
}

static bool rel_marked(const HistorySink *h, uint32_t relid)
{
    for (size_t i = 0; i < h->nmarked; i++)
        if (h->marked[i] == relid) return true;
    return false;
}

static void rel_mark(HistorySink *h, uint32_t relid)
{
    if (rel_marked(h, relid)) return;
    if (h->nmarked == h->capmarked) {
        h->capmarked = h->capmarked ? 2 * h->capmarked : 8;
        h->marked = xrealloc(h->marked, h->capmarked * sizeof(uint32_t));
    }
    h->marked[h->nmarked++] = relid;
}

static void dg_clear(HistorySink *h)
{
    for (int i = 0; i < 4; i++) strbuf_reset(&h->dg[i]);
    h->dg_n = 0;
}

/* Queue one row_digest change: key NULL ends the table's rows, col DG_END_ROW
 * the row's, digest NULL removes the entry, len 0 is the stale mark. */
static void dg_queue(HistorySink *h, uint32_t relid, const char *key, int col, const uint8_t *digest, size_t len)
{
    const char *sep = h->dg_n ? "," : "";
    strbuf_appendf(&h->dg[0], "%s%" PRIu32, sep, relid);
    strbuf_append_str(&h->dg[1], sep);
    if (key)
        append_array_element(&h->dg[1], key);
    else
        strbuf_append_str(&h->dg[1], "NULL");
    strbuf_appendf(&h->dg[2], "%s%d", sep, col);
    strbuf_append_str(&h->dg[3], sep);
    if (!digest) {
        strbuf_append_str(&h->dg[3], "NULL");
    } else {
        strbuf_append_char(&h->dg[3], '"');
        for (size_t i = 0; i < len; i++) strbuf_appendf(&h->dg[3], "%02x", digest[i]);
        strbuf_append_char(&h->dg[3], '"');
    }
    h->dg_n++;
}

/* Apply the queued changes in the open batch (before any read of row_digest). */
static WrStatus dg_apply(HistorySink *h, WrError *err)
{
    if (!h->dg_n) return WR_OK;
    WrStatus st = ensure_tx(h, err);
    if (st != WR_OK) return st;
    StrBuf arr[4], q;
    for (int i = 0; i < 4; i++) {
        strbuf_init(&arr[i]);
        strbuf_appendf(&arr[i], "{%s}", h->dg[i].data ? h->dg[i].data : "");
    }
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT %s.row_digest_apply($1::oid[], $2::text[], $3::smallint[], $4::text[])", h->qschema);
    const char *p[4] = {arr[0].data, arr[1].data, arr[2].data, arr[3].data};
    char what[160];
    snprintf(what, sizeof(what), "writing %d row digests to %s.row_digest", h->dg_n, h->qschema);
    st = run(h, q.data, 4, p, what, NULL, err);
    strbuf_free(&q);
    for (int i = 0; i < 4; i++) strbuf_free(&arr[i]);
    dg_clear(h);
    return st;
}

/* What a recorded delta changes in row_digest. */
static WrStatus dg_note_delta(HistorySink *h, const ObjectDelta *d, WrError *err)
{
    const RelationVersion *rv = d->relver;
    if (d->op == DELTA_TRUNCATE) {
        dg_queue(h, rv->relid, NULL, 0, NULL, 0);
    } else if (d->op == DELTA_DELETE) {
        if (d->row_digest || rel_has_hidden(rv) || rel_marked(h, rv->relid) || !digest_rel_has_key(rv))
            dg_queue(h, rv->relid, d->key, DG_END_ROW, NULL, 0);
    } else {
        if (d->row_digest) dg_queue(h, rv->relid, d->key, 0, d->row_digest, DIGEST_LEN);
        for (uint16_t i = 0; i < d->nattrs; i++)
            if (d->attrs[i].flags & ATTR_HIDDEN)
                dg_queue(h, rv->relid, d->key, d->attrs[i].col_id, d->attrs[i].digest, DIGEST_LEN);
        /* A whole image again (or, for an UPDATE whose old values were
         * unknown, every column): the history's image is current from here. */
        if (rel_marked(h, rv->relid) && (d->op != DELTA_UPDATE || d->old_unknown))
            dg_queue(h, rv->relid, d->key, DG_STALE, NULL, 0);
    }
    return h->dg_n >= DG_APPLY_AT ? dg_apply(h, err) : WR_OK;
}

/* ---------- batch state ---------- */

static void reset_batch(HistorySink *h, bool committed)
{
    for (int t = 0; t < TB_COUNT; t++) strbuf_reset(&h->buf[t]);
    dg_clear(h);
    if (!committed) h->nredigested = 0; /* rebuilt in the batch rolled back */
    unsent_clear(h);
    h->in_tx = false;
    h->in_revision = false;
    h->batch_revisions = 0;
    h->ncounts = 0;
    size_t keep = 0;
    for (size_t i = 0; i < h->nrels; i++) {
        if (committed) h->rels[i].committed = true;
        if (h->rels[i].committed) h->rels[keep++] = h->rels[i];
    }
    h->nrels = keep;
    if (committed) {
        if (h->batch_last_id) {
            h->durable_id = h->batch_last_id;
            h->durable = h->batch_end_lsn;
        }
    } else {
        h->next_id_base = h->durable_id;
    }
    h->batch_last_id = 0;
}

/* ---------- open ---------- */

static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    log_debug("msg=\"history store notice\" text=\"%.*s\"", (int)strcspn(message, "\n"), message);
}

static WrStatus check_schema(HistorySink *h, WrError *err)
{
    const char *p[1] = {h->schema};
    PGresult *res = NULL;
    WrStatus st = run(h,
                      "SELECT n.oid IS NOT NULL, c.oid IS NOT NULL FROM (SELECT 1) x "
                      "LEFT JOIN pg_namespace n ON n.nspname = $1 "
                      "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'store_info'",
                      1, p, "checking the history schema", &res, err);
    if (st != WR_OK) return st;
    bool has_schema = PQgetvalue(res, 0, 0)[0] == 't';
    bool has_info = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (!has_schema || !has_info)
        return wr_error_set(err, WR_FATAL,
                            "history store: schema %s %s in the history database: run `walrev setup` "
                            "to create it",
                            h->qschema, has_schema ? "has no store_info table" : "does not exist");
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT value FROM %s.store_info WHERE key = 'format_version'", h->qschema);
    st = run(h, q.data, 0, NULL, "reading store_info.format_version", &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "4") != 0) {
        st = wr_error_set(err, WR_FATAL,
                          "history store: schema %s has format_version %s, this walrev needs 4: run "
                          "`walrev setup`",
                          h->qschema, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "(missing)");
    }
    PQclear(res);
    return st;
}

static WrStatus read_checkpoint(HistorySink *h, SinkPosition *pos, WrError *err)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT end_lsn::text, revision_id, '\\x' || encode(checksum, 'hex') "
                   "FROM %s.checkpoint WHERE slot_name = $1",
                   h->qschema);
    const char *p[1] = {h->slot_name};
    PGresult *res = NULL;
    WrStatus st = run(h, q.data, 1, p, "reading the checkpoint", &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    memset(pos, 0, sizeof(*pos));
    pos->known = true;
    if (PQntuples(res) == 1) {
        if (!lsn_parse(PQgetvalue(res, 0, 0), &pos->durable_end_lsn) ||
            !bytea_hex_decode(PQgetvalue(res, 0, 2), pos->last_checksum, WALREV_CHECKSUM_LEN)) {
            st = wr_error_set(err, WR_FATAL,
                              "history store: checkpoint row of slot %s in %s.checkpoint is malformed "
                              "(end_lsn %s, checksum not 32 bytes?)",
                              h->slot_name, h->qschema, PQgetvalue(res, 0, 0));
        } else {
            pos->last_revision_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        }
    }
    PQclear(res);
    if (st == WR_OK) {
        h->durable = pos->durable_end_lsn;
        h->durable_id = h->next_id_base = pos->last_revision_id;
    }
    return st;
}

static WrStatus prepare(HistorySink *h, const char *name, const char *sql, int nparams, WrError *err)
{
    WrStatus ast = await_copy(h, err);
    if (ast != WR_OK) return ast;
    PGresult *res = PQprepare(h->conn, name, sql, nparams, NULL);
    WrStatus st = WR_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char what[128];
        snprintf(what, sizeof(what), "preparing %s", name);
        st = pg_fail(h, res, err, what);
    }
    PQclear(res);
    return st;
}

static WrStatus prepare_session(HistorySink *h, WrError *err)
{
    /*
     * An old image is the object's state after a revision: its row in the
     * nearest keyframe at or before it (unless the table was truncated since)
     * and its own deltas after that keyframe, folded here (rowfold.h). The
     * store keeps no current-row table to maintain on every change. $2 is an
     * array of keys: one for lookup_row, a read-ahead batch for prefetch_rows.
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
        "SELECT kr.key, 0 AS src, 0::bigint AS rev, 0 AS seq, ' '::\"char\" AS op, NULL::smallint[] AS ids, kr.vals "
        "FROM k JOIN %1$s.keyframe_row kr ON kr.keyframe_id = (SELECT kf.id FROM kf) AND kr.key = k.key "
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
    WrStatus st = run(h, "SET plan_cache_mode = force_generic_plan", 0, NULL, "setting plan_cache_mode", NULL, err);
    if (st == WR_OK) st = prepare(h, "walrev_lookup", q.data, 3, err);
    /* An object an UPDATE moved here from another key: follow its lineage in SQL. */
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_appendf(&q, "SELECT %s.object_image($1, $2, $3)", s);
        st = prepare(h, "walrev_image", q.data, 3, err);
    }
    strbuf_free(&q);
    /* The first execution builds the generic plan and fills the session's
     * catalog caches (6-8 ms against ~0.6 later): done here rather than on the
     * first change that needs an old image. No key: nothing is read. */
    if (st == WR_OK) {
        const char *none[3] = {"0", "{}", "0"};
        PGresult *res;
        (void)pgio_exec_prepared(h->conn, "walrev_lookup", 3, none, 0, &res);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) st = pg_fail(h, res, err, "warming up the old-image lookup");
        PQclear(res);
    }
    return st;
}

static WrStatus read_digest_state(HistorySink *h, SinkPosition *pos, WrError *err);

static WrStatus hs_open(Sink *s, SinkPosition *pos, WrError *err)
{
    HistorySink *h = s->impl;
    if (h->conn) return wr_error_set(err, WR_FATAL, "history store: sink opened twice");
    /* Bounded: a frozen server ends the session after reply_timeout_ms
     * instead of holding the worker; a refused login is fatal. */
    PgioConnect how = {.what = "history store", .app_name = "walrev-history", .bounded = true};
    WrStatus cst = pgio_connect(h->conninfo, &how, &h->conn, err);
    if (cst != WR_OK) {
        h->broken = true;
        return cst;
    }
    PQsetNoticeProcessor(h->conn, notice_to_log, NULL);
    WrStatus st = check_schema(h, err);
    if (st == WR_OK) st = read_checkpoint(h, pos, err);
    if (st == WR_OK) st = read_digest_state(h, pos, err);
    if (st == WR_OK) st = prepare_session(h, err);
    if (st != WR_OK) return st;
    h->keyframer = keyframer_start(h->conninfo, h->qschema);
    log_info("msg=\"history store open\" schema=%s slot=%s revision=%" PRId64 " lsn=" LSN_FMT, h->qschema,
             h->slot_name, pos->last_revision_id, LSN_ARGS(pos->durable_end_lsn));
    return WR_OK;
}

/* ---------- writes ---------- */

static void append_int_array_u32(StrBuf *b, const RelationVersion *rv, int which)
{
    strbuf_append_char(b, '{');
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (i) strbuf_append_char(b, ',');
        const RelColumn *c = &rv->cols[i];
        switch (which) {
        case 0: strbuf_appendf(b, "%d", (int)c->col_id); break;
        case 1: strbuf_appendf(b, "%" PRIu32, c->type_oid); break;
        case 2: strbuf_appendf(b, "%" PRId32, c->typmod); break;
        case 3: strbuf_append_char(b, c->is_key ? 't' : 'f'); break;
        default:
            strbuf_append_char(b, c->track == TRACK_HIDDEN ? 'h' : c->track == TRACK_UNTRACKED ? 'u' : 'f');
        }
    }
    strbuf_append_char(b, '}');
}

static WrStatus hs_write_relation(Sink *s, const RelationVersion *rv, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "write_relation");
    if (st != WR_OK) return st;
    for (size_t i = 0; i < h->nrels; i++)
        if (h->rels[i].relid == rv->relid && h->rels[i].version == rv->version) return WR_OK;
    st = ensure_tx(h, err);
    if (st != WR_OK) return st;

    StrBuf arr[11];
    for (int i = 0; i < 11; i++) strbuf_init(&arr[i]);
    size_t nv = (size_t)(rv->ncols > rv->ngen ? rv->ncols : rv->ngen) + 1;
    Value *names = xcalloc(nv, sizeof(Value));
    Value *types = xcalloc(nv, sizeof(Value));
    for (uint16_t i = 0; i < rv->ncols; i++) {
        names[i] = (Value){rv->cols[i].name, strlen(rv->cols[i].name)};
        if (rv->cols[i].type_name) types[i] = (Value){rv->cols[i].type_name, strlen(rv->cols[i].type_name)};
    }
    append_int_array_u32(&arr[0], rv, 0);
    pgarray_append_text(&arr[1], names, rv->ncols);
    append_int_array_u32(&arr[2], rv, 1);
    append_int_array_u32(&arr[3], rv, 2);
    pgarray_append_text(&arr[4], types, rv->ncols);
    append_int_array_u32(&arr[5], rv, 3);
    append_int_array_u32(&arr[6], rv, 4);
    /* Generated columns (NULL arrays when there are none). */
    if (rv->ngen > 0) {
        for (int part = 0; part < 3; part++) {
            for (uint16_t i = 0; i < rv->ngen; i++) {
                const char *v = part == 0 ? rv->gen[i].name : part == 1 ? rv->gen[i].type_name : rv->gen[i].expr;
                names[i] = (Value){v, strlen(v)};
            }
            pgarray_append_text(&arr[part == 0 ? 7 : part == 1 ? 8 : 10], names, rv->ngen);
        }
        strbuf_append_char(&arr[9], '{');
        for (uint16_t i = 0; i < rv->ngen; i++) strbuf_appendf(&arr[9], "%s%d", i ? "," : "", (int)rv->gen[i].position);
        strbuf_append_char(&arr[9], '}');
    }
    free(names);
    free(types);
    uint8_t digest[WALREV_CHECKSUM_LEN];
    revhash_relation_digest(rv, digest);
    char digest_hex[2 * WALREV_CHECKSUM_LEN + 3] = "\\x";
    checksum_to_hex(digest, digest_hex + 2);
    char relid[16], version[16], replident[2] = {rv->replident, 0}, lsn[32], revid[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, rv->relid);
    snprintf(version, sizeof(version), "%" PRId32, rv->version);
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(rv->valid_from));
    snprintf(revid, sizeof(revid), "%" PRId64, rv->revision_id);
    const char *p[19] = {relid,       version,     rv->nspname, rv->relname, replident,
                         lsn,         arr[0].data, arr[1].data, arr[2].data, arr[3].data,
                         arr[4].data, arr[5].data, arr[6].data, revid,       digest_hex,
                         rv->ngen ? arr[7].data : NULL, rv->ngen ? arr[8].data : NULL,
                         rv->ngen ? arr[9].data : NULL, rv->ngen ? arr[10].data : NULL};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.relation_version (relid, version, nspname, relname, replident, "
                   "valid_from, col_ids, col_names, col_type_oids, col_typmods, col_type_names, "
                   "col_is_key, col_track, covered_by, checksum, gen_names, gen_type_names, gen_positions, "
                   "gen_exprs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
                   "$17, $18, $19) ON CONFLICT DO NOTHING RETURNING 1",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "INSERT into %s.relation_version", h->qschema);
    PGresult *res = NULL;
    st = run(h, q.data, 19, p, what, &res, err);
    bool inserted = st == WR_OK && PQntuples(res) == 1;
    PQclear(res);
    res = NULL;
    if (st == WR_OK && !inserted) {
        /* The store has this version already: it must be this one. A
         * different one means the worker lost track of the table's columns
         * (every later change would be recorded under the wrong names). */
        strbuf_reset(&q);
        strbuf_appendf(&q,
                       "SELECT checksum IS NULL OR checksum = $3::bytea FROM %s.relation_version "
                       "WHERE relid = $1 AND version = $2",
                       h->qschema);
        const char *cp[3] = {relid, version, digest_hex};
        st = run(h, q.data, 3, cp, what, &res, err);
        if (st == WR_OK && (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't'))
            st = wr_error_set(err, WR_FATAL,
                              "history store: relation version %s of %s.%s (relid %s) differs from the one "
                              "the store holds; refusing to record changes under the wrong columns",
                              version, rv->nspname, rv->relname, relid);
        PQclear(res);
    }
    strbuf_free(&q);
    for (int i = 0; i < 11; i++) strbuf_free(&arr[i]);
    if (st != WR_OK) return st;
    if (h->nrels == h->caprels) {
        h->caprels = h->caprels ? 2 * h->caprels : 16;
        h->rels = xrealloc(h->rels, h->caprels * sizeof(RelSeen));
    }
    h->rels[h->nrels++] = (RelSeen){rv->relid, rv->version, false};
    return WR_OK;
}

static WrStatus hs_begin_revision(Sink *s, const Revision *rev, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "begin_revision");
    if (st != WR_OK) return st;
    if (h->in_revision)
        return wr_error_set(err, WR_FATAL, "history store: revision %" PRId64 " begun while %" PRId64
                            " is still open", rev->id, h->cur_id);
    if (rev->id != h->next_id_base + 1)
        return wr_error_set(err, WR_FATAL,
                            "history store: revision id %" PRId64 " is not the next one (expected %" PRId64
                            "); refusing to write a gap or a duplicate",
                            rev->id, h->next_id_base + 1);
    st = ensure_tx(h, err);
    if (st != WR_OK) return st;
    h->in_revision = true;
    h->cur_id = rev->id;
    return WR_OK;
}

static WrStatus check_in_revision(HistorySink *h, const Revision *rev, const char *what, WrError *err)
{
    WrStatus st = check_usable(h, err, what);
    if (st != WR_OK) return st;
    if (!h->in_revision || rev->id != h->cur_id)
        return wr_error_set(err, WR_FATAL, "history store: %s for revision %" PRId64 " which was not begun",
                            what, rev->id);
    return WR_OK;
}

/* attested, db_session_user, db_current_user, application_name (each after a tab). */
static void append_identity(StrBuf *b, const RevisionContext *ctx)
{
    strbuf_append_str(b, ctx && ctx->attested ? "\tt\t" : "\tf\t");
    append_str_field(b, ctx ? ctx->session_user : NULL);
    tab(b);
    append_str_field(b, ctx ? ctx->current_user : NULL);
    tab(b);
    append_str_field(b, ctx ? ctx->application_name : NULL);
}

static WrStatus hs_write_context(Sink *s, const Revision *rev, const RevisionContext *ctx, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_in_revision(h, rev, "write_context", err);
    if (st != WR_OK) return st;
    StrBuf *b = &h->buf[TB_CONTEXT];
    strbuf_appendf(b, "%" PRId64 "\t%d\t", rev->id, (int)ctx->no);
    append_lsn(b, ctx->lsn);
    tab(b);
    append_str_field(b, ctx->actor_type);
    tab(b);
    append_str_field(b, ctx->actor_id);
    tab(b);
    append_str_field(b, ctx->actor_json);
    tab(b);
    append_str_field(b, ctx->description);
    tab(b);
    append_str_field(b, ctx->meta_json);
    tab(b);
    /* Any user can send any bytes as a context: text takes neither NUL nor
     * ill-formed UTF-8, and a message can be ~1 GB. Those are stored
     * sanitised and bounded, with raw_sha256 = SHA-256 of the exact bytes,
     * which is what the checksum covers (docs/checksums.md). */
    if (ctx->raw_len <= CONTEXT_RAW_STORED_MAX && text_is_safe(ctx->raw, ctx->raw_len)) {
        copy_append_field(b, ctx->raw, ctx->raw_len);
        strbuf_append(b, "\t\\N", 3);
    } else {
        strbuf_reset(&h->tmp);
        text_sanitize(&h->tmp, ctx->raw, ctx->raw_len, CONTEXT_RAW_STORED_MAX);
        copy_append_field(b, h->tmp.data, h->tmp.len);
        tab(b);
        uint8_t sum[WALREV_CHECKSUM_LEN];
        revhash_value(&(Value){.data = ctx->raw ? ctx->raw : "", .len = ctx->raw_len}, sum);
        copy_append_bytea(b, sum, WALREV_CHECKSUM_LEN);
    }
    append_identity(b, ctx);
    strbuf_append_char(b, '\n');
    return maybe_send(h, TB_CONTEXT, err);
}

/* Append the old or new values of a delta as a text[] field; NULL when every one is NULL. */
static void append_values(HistorySink *h, StrBuf *b, const ObjectDelta *d, bool old)
{
    bool any = false;
    if (d->nattrs > h->vals_cap) {
        h->vals = xrealloc(h->vals, d->nattrs * sizeof(Value));
        h->vals_cap = d->nattrs;
    }
    for (uint16_t i = 0; i < d->nattrs; i++) {
        h->vals[i] = old ? d->attrs[i].old_value : d->attrs[i].new_value;
        if (h->vals[i].data) any = true;
    }
    if (!any)
        strbuf_append(b, "\\N", 2);
    else
        copy_append_text_array(b, h->vals, d->nattrs);
}

/* A truncate empties the table: its live-row count restarts from zero. */
static WrStatus reset_live_rows(HistorySink *h, uint32_t relid, WrError *err)
{
    char rel[16];
    snprintf(rel, sizeof(rel), "%" PRIu32, relid);
    const char *p[1] = {rel};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.tracked_table AS t (relid, live_rows) VALUES ($1, 0) "
                   "ON CONFLICT (relid) DO UPDATE SET live_rows = 0",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "resetting the live rows of a truncated table in %s.tracked_table", h->qschema);
    WrStatus st = run(h, q.data, 1, p, what, NULL, err);
    strbuf_free(&q);
    return st;
}

static WrStatus hs_write_delta(Sink *s, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_in_revision(h, rev, "write_delta", err);
    if (st != WR_OK) return st;
    const RelationVersion *rv = d->relver;
    StrBuf *b = &h->buf[TB_DELTA];
    strbuf_appendf(b, "%" PRId64 "\t%" PRId32 "\t%" PRIu32 "\t%" PRId32 "\t%c\t", rev->id, d->seq, rv->relid,
                   rv->version, (char)d->op);
    append_str_field(b, d->key);
    strbuf_appendf(b, "\t%d\t", (int)d->context_no);
    /* Scalar form (format 3): one attribute with no flag, the common
     * single-column UPDATE, skips four array headers (~70 bytes a row). */
    bool scalar = d->nattrs == 1 && d->attrs[0].flags == 0;
    if (d->nattrs == 0 || scalar) {
        strbuf_append(b, "\\N\t\\N\t\\N\t\\N", 11);
    } else {
        bool any_flag = false;
        strbuf_append_char(b, '{');
        for (uint16_t i = 0; i < d->nattrs; i++) {
            strbuf_appendf(b, i ? ",%d" : "%d", (int)d->attrs[i].col_id);
            if (d->attrs[i].flags) any_flag = true;
        }
        strbuf_append(b, "}\t", 2);
        append_values(h, b, d, true);
        tab(b);
        append_values(h, b, d, false);
        tab(b);
        if (!any_flag) {
            strbuf_append(b, "\\N", 2);
        } else {
            strbuf_append_char(b, '{');
            for (uint16_t i = 0; i < d->nattrs; i++) strbuf_appendf(b, i ? ",%d" : "%d", (int)d->attrs[i].flags);
            strbuf_append_char(b, '}');
        }
    }
    strbuf_appendf(b, "\t%c\t", d->old_unknown ? 't' : 'f');
    if (scalar) {
        strbuf_appendf(b, "%d\t", (int)d->attrs[0].col_id);
        copy_append_field(b, d->attrs[0].old_value.data, d->attrs[0].old_value.len);
        tab(b);
        copy_append_field(b, d->attrs[0].new_value.data, d->attrs[0].new_value.len);
        strbuf_append_char(b, '\n');
    } else {
        strbuf_append(b, "\\N\t\\N\t\\N\n", 9);
    }

    /* Live rows only steer when keyframes are taken: counting begins and
     * ends is enough (an UPDATE that moves a row ends one key and begins
     * another, which nets to zero). */
    /* A truncate (no key) changes every key's image: any lookup must send it. */
    unsent_add(h, rv->relid, d->key ? d->key : "");
    RelCount *c = count_of(h, rv->relid);
    c->deltas++;
    if (d->op == DELTA_INSERT || d->op == DELTA_SNAPSHOT)
        c->live_change++;
    else if (d->op == DELTA_DELETE)
        c->live_change--;
    if (d->op == DELTA_TRUNCATE) {
        c->live_change = 0;
        st = reset_live_rows(h, rv->relid, err);
    }
    if (st == WR_OK) st = dg_note_delta(h, d, err);
    if (st == WR_OK) st = maybe_send(h, TB_DELTA, err);
    return st;
}

static WrStatus hs_commit_revision(Sink *s, const Revision *rev, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "commit_revision");
    if (st != WR_OK) return st;
    if (rev->id != h->next_id_base + 1)
        return wr_error_set(err, WR_FATAL,
                            "history store: commit of revision id %" PRId64 " but the next one is %" PRId64
                            "; refusing to write a gap or a duplicate",
                            rev->id, h->next_id_base + 1);
    if (!h->in_revision || h->cur_id != rev->id)
        return wr_error_set(err, WR_FATAL, "history store: commit of revision %" PRId64 " which was not begun",
                            rev->id);
    StrBuf *b = &h->buf[TB_REVISION];
    const RevisionContext *c = rev->first_context;
    char ts[48];
    pg_time_format(rev->commit_time, ts, sizeof(ts));
    strbuf_appendf(b, "%" PRId64 "\t%" PRIu32 "\t", rev->id, rev->xid);
    append_lsn(b, rev->commit_lsn);
    tab(b);
    append_lsn(b, rev->end_lsn);
    strbuf_appendf(b, "\t%s\t", ts);
    append_str_field(b, rev->origin);
    tab(b);
    append_str_field(b, rev->gid);
    tab(b);
    append_str_field(b, c ? c->actor_type : NULL);
    tab(b);
    append_str_field(b, c ? c->actor_id : NULL);
    tab(b);
    append_str_field(b, c ? c->actor_json : NULL);
    tab(b);
    append_str_field(b, c ? c->description : NULL);
    tab(b);
    append_str_field(b, c ? c->meta_json : NULL);
    strbuf_appendf(b, "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t",
                   rev->n_insert, rev->n_update, rev->n_delete, rev->n_truncate, rev->n_snapshot,
                   rev->n_suppressed);
    append_str_field(b, rev->warnings);
    tab(b);
    /* No parent checksum (format 3): it is the previous revision's. */
    copy_append_bytea(b, rev->checksum, WALREV_CHECKSUM_LEN);
    append_identity(b, c);
    strbuf_append_char(b, '\n');

    h->in_revision = false;
    h->next_id_base = rev->id;
    h->batch_last_id = rev->id;
    h->batch_end_lsn = rev->end_lsn;
    memcpy(h->batch_checksum, rev->checksum, WALREV_CHECKSUM_LEN);
    h->batch_revisions++;
    return maybe_send(h, TB_REVISION, err);
}

/* ---------- keyframes ---------- */

/*
 * Bump deltas_since_keyframe and live_rows of every touched table in the
 * batch; a table past the threshold gets a keyframe as of the batch's last
 * revision, asked of the keyframe thread once the batch has committed
 * (kf_due). Its cost, a sort and fold of (1 + factor) x rows, is spread over
 * the factor x rows changes that led to it, and paid off the stream's path.
 */
static WrStatus update_tracked(HistorySink *h, WrError *err)
{
    h->nkf_due = 0;
    if (h->ncounts == 0) return WR_OK;
    StrBuf relids, counts, live, q;
    strbuf_init(&relids);
    strbuf_init(&counts);
    strbuf_init(&live);
    strbuf_init(&q);
    strbuf_append_char(&relids, '{');
    strbuf_append_char(&counts, '{');
    strbuf_append_char(&live, '{');
    for (size_t i = 0; i < h->ncounts; i++) {
        strbuf_appendf(&relids, i ? ",%" PRIu32 : "%" PRIu32, h->counts[i].relid);
        strbuf_appendf(&counts, i ? ",%" PRId64 : "%" PRId64, h->counts[i].deltas);
        strbuf_appendf(&live, i ? ",%" PRId64 : "%" PRId64, h->counts[i].live_change);
    }
    strbuf_append_char(&relids, '}');
    strbuf_append_char(&counts, '}');
    strbuf_append_char(&live, '}');
    strbuf_appendf(&q,
                   "INSERT INTO %s.tracked_table AS t (relid, deltas_since_keyframe, live_rows) "
                   "SELECT r, d, greatest(l, 0) FROM unnest($1::oid[], $2::bigint[], $3::bigint[]) AS u(r, d, l) "
                   "ON CONFLICT (relid) DO UPDATE SET deltas_since_keyframe = "
                   "t.deltas_since_keyframe + EXCLUDED.deltas_since_keyframe, "
                   "live_rows = greatest(t.live_rows + (SELECT u.l FROM unnest($1::oid[], $3::bigint[]) AS u(r, l) "
                   "  WHERE u.r = t.relid), 0) "
                   "RETURNING relid, deltas_since_keyframe > %d * greatest(live_rows, %d), live_rows, "
                   "deltas_since_keyframe",
                   h->qschema, h->keyframe_factor, KEYFRAME_MIN_ROWS);
    const char *p[3] = {relids.data, counts.data, live.data};
    PGresult *res = NULL;
    char what[160];
    snprintf(what, sizeof(what), "updating %s.tracked_table", h->qschema);
    WrStatus st = run(h, q.data, 3, p, what, &res, err);
    int64_t rev = h->batch_last_id ? h->batch_last_id : h->durable_id;
    for (int i = 0; st == WR_OK && i < PQntuples(res); i++) {
        if (PQgetvalue(res, i, 1)[0] != 't') continue;
        if (h->nkf_due == h->capkf_due) {
            h->capkf_due = h->capkf_due ? 2 * h->capkf_due : 8;
            h->kf_due = xrealloc(h->kf_due, h->capkf_due * sizeof(KeyframeRequest));
        }
        int64_t live_rows = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        h->kf_due[h->nkf_due++] = (KeyframeRequest){(uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10), rev,
                                                live_rows <= KEYFRAME_MIN_ROWS,
                                                strtoll(PQgetvalue(res, i, 3), NULL, 10), live_rows};
    }
    PQclear(res);
    strbuf_free(&relids);
    strbuf_free(&counts);
    strbuf_free(&live);
    strbuf_free(&q);
    return st;
}

static WrStatus write_checkpoint(HistorySink *h, WrError *err)
{
    if (!h->batch_last_id) return WR_OK;
    char lsn[32], id[32], sum[2 * WALREV_CHECKSUM_LEN + 1];
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(h->batch_end_lsn));
    snprintf(id, sizeof(id), "%" PRId64, h->batch_last_id);
    checksum_to_hex(h->batch_checksum, sum);
    const char *p[4] = {h->slot_name, lsn, id, sum};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.checkpoint (slot_name, end_lsn, revision_id, checksum, updated_at) "
                   "VALUES ($1, $2::pg_lsn, $3, decode($4, 'hex'), now()) ON CONFLICT (slot_name) DO UPDATE "
                   "SET end_lsn = EXCLUDED.end_lsn, revision_id = EXCLUDED.revision_id, "
                   "checksum = EXCLUDED.checksum, updated_at = EXCLUDED.updated_at",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "writing %s.checkpoint", h->qschema);
    WrStatus st = run(h, q.data, 4, p, what, NULL, err);
    strbuf_free(&q);
    return st;
}

static WrStatus hs_flush(Sink *s, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "flush");
    if (st != WR_OK) return st;
    if (!h->in_tx) return WR_OK;
    if (h->in_revision)
        return wr_error_set(err, WR_FATAL,
                            "history store: flush while revision %" PRId64 " is open; a batch ends between "
                            "revisions",
                            h->cur_id);
    static const int order[] = {TB_CONTEXT, TB_REVISION, TB_DELTA};
    int64_t t0 = mono_now_us();
    for (size_t i = 0; i < 3 && st == WR_OK; i++) st = send_buffer(h, order[i], err);
    if (st == WR_OK) st = await_copy(h, err);
    if (st == WR_OK) st = dg_apply(h, err);
    int64_t t1 = mono_now_us();
    if (st == WR_OK) st = update_tracked(h, err);
    int64_t t2 = mono_now_us();
    if (st == WR_OK) st = write_checkpoint(h, err);
    if (st == WR_OK) st = run(h, "COMMIT", 0, NULL, "COMMIT of a batch", NULL, err);
    if (st != WR_OK) return st;
    int64_t t3 = mono_now_us();
    int n = h->batch_revisions;
    reset_batch(h, true);
    for (size_t i = 0; i < h->nkf_due; i++) keyframer_request(h->keyframer, &h->kf_due[i]);
    h->nkf_due = 0;
    log_debug("msg=\"history batch committed\" revisions=%d revision=%" PRId64 " lsn=" LSN_FMT
              " copy_ms=%.1f tracked_ms=%.1f commit_ms=%.1f",
              n, h->durable_id, LSN_ARGS(h->durable), (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
              (double)(t3 - t2) / 1000.0);
    return WR_OK;
}

static WrStatus hs_poll(Sink *s, WrError *err)
{
    (void)s;
    (void)err;
    return WR_OK;
}

static Lsn hs_durable_lsn(Sink *s)
{
    HistorySink *h = s->impl;
    return h->durable;
}

/* The open batch's window starts the first time the caller's clock sees it
 * (the sink has no clock of its own that the worker's timers agree with). */
static void start_batch_timer(HistorySink *h, int64_t now_us)
{
    if (!h->batch_timer_us) h->batch_timer_us = now_us;
}

/* Is the open batch due for a commit? Asks, changes nothing. */
static bool batch_due(const HistorySink *h, int64_t now_us, bool idle)
{
    /* A batch ends between revisions: inside one, wait for its commit. */
    if (h->in_revision) return false;
    if (h->batch_revisions >= h->batch_max_revisions) return true;
    /* While the stream is busy (the worker is catching up) the window is
     * longer: each commit costs a WAL flush and five statements, and the lag of
     * what waits in the stream is its backlog's, not the batch's. */
    int64_t window_ms = idle ? h->batch_max_ms : (int64_t)h->batch_max_ms * BUSY_WINDOW_FACTOR;
    if (now_us - h->batch_timer_us >= window_ms * 1000) return true;
    size_t total = 0;
    for (int t = 0; t < TB_COUNT; t++) total += h->buf[t].len;
    return total > 8 * h->buffer_bytes;
}

static bool hs_wants_flush(Sink *s, int64_t now_us, bool idle)
{
    HistorySink *h = s->impl;
    if (!h->in_tx) return false;
    start_batch_timer(h, now_us);
    return batch_due(h, now_us, idle);
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
    WrStatus st = pg_fail(h, res, err, what);
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
    bool send = h->in_tx && unsent_maybe(h, rv->relid, "");
    for (int i = 0; !send && h->in_tx && i < nkeys; i++) send = unsent_maybe(h, rv->relid, keys[i]);
    if (send) st = send_buffer(h, TB_DELTA, err);
    if (st == WR_OK) st = await_copy(h, err);
    if (st == WR_OK) st = dg_apply(h, err);
    if (st != WR_OK) return st;
    char rel[16], rev[32];
    lookup_point(h, rv, rel, rev);
    StrBuf arr;
    strbuf_init(&arr);
    strbuf_append_char(&arr, '{');
    for (int i = 0; i < nkeys; i++) {
        if (i) strbuf_append_char(&arr, ',');
        append_array_element(&arr, keys[i]);
    }
    strbuf_append_char(&arr, '}');
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
    if (!rel_has_hidden(rv) && !rel_marked(h, rv->relid)) return WR_OK;
    WrStatus st = dg_apply(h, err);
    if (st == WR_OK) st = await_copy(h, err);
    if (st != WR_OK) return st;
    char rel[16];
    snprintf(rel, sizeof(rel), "%" PRIu32, rv->relid);
    const char *p[2] = {rel, key};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT col_id::text, encode(digest, 'hex') FROM %s.row_digest "
                   "WHERE relid = $1 AND key = $2 AND col_id <> 0", h->qschema);
    PGresult *res = NULL;
    char what[160];
    snprintf(what, sizeof(what), "reading %s.row_digest", h->qschema);
    st = run(h, q.data, 2, p, what, &res, err);
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

static WrStatus hs_lookup_row(Sink *s, const RelationVersion *rv, const char *key, RowImage *image,
                              StrBuf *storage, bool *found, WrError *err)
{
    HistorySink *h = s->impl;
    *found = false;
    WrStatus st = check_usable(h, err, "lookup_row");
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
            RowFoldTuple t = {.key = key, .key_len = strlen(key), .from_keyframe = true,
                              .vals = PQgetvalue(res, 0, 0), .vals_len = (size_t)PQgetlength(res, 0, 0)};
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

/* A read-ahead batch's images, handed over one key at a time. */
typedef struct {
    const RelationVersion *rv;
    StrBuf storage, key;
    void (*found)(void *arg, const char *key, const RowImage *image);
    void *arg;
    StrBuf seen; /* every key the fold emitted (based or not), NUL-separated */
} PrefetchOut;

static int cmp_key(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

static WrStatus prefetch_emit(void *arg, const char *key, size_t key_len, const char *const *vals,
                              const bool *known, int maxcol, bool based, WrError *err)
{
    PrefetchOut *o = arg;
    strbuf_append(&o->seen, key, key_len);
    strbuf_append_char(&o->seen, '\0');
    /* Built from updates alone needs the SQL lineage: left to lookup_row. */
    if (!based) return WR_OK;
    RowImage image = {0}; /* lookup_emit points it into storage */
    strbuf_reset(&o->storage);
    LookupOut one = {o->rv, &image, &o->storage, false, false, NULL, NULL, 0};
    WrStatus st = lookup_emit(&one, key, key_len, vals, known, maxcol, based, err);
    if (st != WR_OK) return st;
    strbuf_reset(&o->key);
    strbuf_append(&o->key, key, key_len);
    o->found(o->arg, o->key.data, &image);
    return WR_OK;
}

static WrStatus hs_prefetch_rows(Sink *s, const RelationVersion *rv, const char *const *keys, int nkeys,
                                 void (*found)(void *arg, const char *key, const RowImage *image),
                                 void (*absent)(void *arg, const char *key), void *arg, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "prefetch_rows");
    if (st != WR_OK || nkeys == 0) return st;
    /* Hidden digests and stale marks are read key by key: left to lookup_row. */
    if (rel_has_hidden(rv) || rel_marked(h, rv->relid)) return WR_OK;
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
    if (st != WR_OK) return wr_error_prefix(err, "history store: old images of %d rows of relid %" PRIu32, nkeys, rv->relid);
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
    RowImage image = {0};
    strbuf_reset(&o->storage);
    LookupOut one = {o->rv, &image, &o->storage, false, false, NULL, NULL, 0};
    WrStatus st = lookup_emit(&one, key, key_len, vals, known, maxcol, based, err);
    if (st != WR_OK) return st;
    strbuf_reset(&o->key);
    strbuf_append(&o->key, key, key_len);
    return o->row(o->arg, o->key.data, &image, err);
}

static WrStatus hs_scan_rows(Sink *s, const RelationVersion *rv,
                             WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err),
                             void *arg, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "scan_rows");
    if (st == WR_OK) st = ensure_tx(h, err);
    static const int order[] = {TB_CONTEXT, TB_REVISION, TB_DELTA};
    for (size_t i = 0; i < 3 && st == WR_OK; i++) st = send_buffer(h, order[i], err);
    if (st == WR_OK) st = await_copy(h, err);
    if (st == WR_OK) st = dg_apply(h, err);
    if (st != WR_OK) return st;
    char rel[16], rev[32];
    lookup_point(h, rv, rel, rev);
    const char *p[2] = {rel, rev};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT key, vals FROM %s.snapshot_rows($1, $2) WHERE key IS NOT NULL", h->qschema);
    PGresult *res = NULL;
    (void)pgio_exec_binary(h->conn, q.data, 2, p, &res);
    strbuf_free(&q);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char what[160];
        snprintf(what, sizeof(what), "reading the rows of relid %s from %s", rel, h->qschema);
        st = pg_fail(h, res, err, what);
        PQclear(res);
        return st;
    }
    ScanOut out = {rv, row, arg, {0}, {0}};
    strbuf_init(&out.storage);
    strbuf_init(&out.key);
    RowFold *fold = rowfold_create(max_col_id(rv), scan_emit, &out);
    for (int i = 0; st == WR_OK && i < PQntuples(res); i++) {
        RowFoldTuple t = {.key = PQgetvalue(res, i, 0), .key_len = (size_t)PQgetlength(res, i, 0),
                          .from_keyframe = true, .vals = PQgetvalue(res, i, 1),
                          .vals_len = (size_t)PQgetlength(res, i, 1)};
        st = rowfold_add(fold, &t, err);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    rowfold_destroy(fold);
    PQclear(res);
    strbuf_free(&out.storage);
    strbuf_free(&out.key);
    return st;
}

static WrStatus redigest_row(void *arg, const char *key, const RowImage *image, WrError *err)
{
    (void)err;
    HistorySink *h = arg;
    uint8_t d[DIGEST_LEN];
    digest_row(&h->dkey, image->relver, image->values, image->unknown, d);
    dg_queue(h, image->relver->relid, key, 0, d, DIGEST_LEN);
    return WR_OK;
}

/*
 * Rebuild a keyless table's identity digests from the rows the history holds,
 * under rv: once per version and session, when a row is not found. Rows of
 * a store older than row_digest have none, and a column dropped since (or a
 * key dropped) changes what a row's digest covers.
 */
static WrStatus redigest(Sink *s, const RelationVersion *rv, bool *done, WrError *err)
{
    HistorySink *h = s->impl;
    *done = false;
    for (size_t i = 0; i < h->nredigested; i++)
        if (h->redigested[i].relid == rv->relid && h->redigested[i].version == rv->version) return WR_OK;
    if (h->nredigested == h->capredigested) {
        h->capredigested = h->capredigested ? 2 * h->capredigested : 8;
        h->redigested = xrealloc(h->redigested, h->capredigested * sizeof(RelSeen));
    }
    h->redigested[h->nredigested++] = (RelSeen){rv->relid, rv->version, false};
    dg_queue(h, rv->relid, NULL, 0, NULL, 0); /* forget the table's digests ... */
    WrStatus st = hs_scan_rows(s, rv, redigest_row, h, err);  /* ... and make them anew */
    if (st == WR_OK) st = dg_apply(h, err);
    *done = st == WR_OK;
    if (*done) log_info("msg=\"row digests rebuilt\" table=%s.%s version=%" PRId32, rv->nspname, rv->relname, rv->version);
    return st;
}

static WrStatus hs_find_row(Sink *s, const RelationVersion *rv, const uint8_t digest[32], const char *const *exclude,
                            int nexclude, StrBuf *key, bool *found, WrError *err)
{
    HistorySink *h = s->impl;
    *found = false;
    WrStatus st = check_usable(h, err, "find_row");
    if (st == WR_OK) st = ensure_tx(h, err);
    if (st == WR_OK) st = dg_apply(h, err);
    if (st != WR_OK) return st;
    char rel[16], hex[2 * DIGEST_LEN + 1];
    snprintf(rel, sizeof(rel), "%" PRIu32, rv->relid);
    checksum_to_hex(digest, hex);
    StrBuf ex, q;
    strbuf_init(&ex);
    strbuf_append_char(&ex, '{');
    for (int i = 0; i < nexclude; i++) {
        if (i) strbuf_append_char(&ex, ',');
        append_array_element(&ex, exclude[i]);
    }
    strbuf_append_char(&ex, '}');
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT key FROM %s.row_digest WHERE relid = $1 AND col_id = 0 "
                   "AND digest = decode($2, 'hex') AND key <> ALL ($3::text[]) LIMIT 1", h->qschema);
    const char *p[3] = {rel, hex, ex.data};
    char what[160];
    snprintf(what, sizeof(what), "finding a row without a key in %s.row_digest", h->qschema);
    for (int attempt = 0; attempt < 2 && st == WR_OK; attempt++) {
        PGresult *res = NULL;
        st = run(h, q.data, 3, p, what, &res, err);
        if (st != WR_OK) break;
        if (PQntuples(res) == 1) {
            strbuf_reset(key);
            strbuf_append_str(key, PQgetvalue(res, 0, 0));
            *found = true;
        }
        PQclear(res);
        if (*found || attempt || exclude) break; /* the backfill's version is not the stream's: no rebuild */
        bool again = false;
        st = redigest(s, rv, &again, err);
        if (!again) break;
    }
    strbuf_free(&q);
    strbuf_free(&ex);
    return st;
}

static WrStatus hs_note_suppressed(Sink *s, const RelationVersion *rv, DeltaOp op, const char *key,
                                   const uint8_t *row_digest, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "note_suppressed");
    if (st != WR_OK) return st;
    if (!digest_rel_has_key(rv)) {
        /* the row's identity follows it; no value is recorded */
        if (op == DELTA_DELETE)
            dg_queue(h, rv->relid, key, DG_END_ROW, NULL, 0);
        else if (row_digest)
            dg_queue(h, rv->relid, key, 0, row_digest, DIGEST_LEN);
    } else if (op != DELTA_INSERT) {
        static const uint8_t none[1] = {0};
        dg_queue(h, rv->relid, key, DG_STALE, none, 0);
        rel_mark(h, rv->relid);
    }
    return h->dg_n >= DG_APPLY_AT ? dg_apply(h, err) : WR_OK;
}

/* The digest key, and the tables with stale marks. */
static WrStatus read_digest_state(HistorySink *h, SinkPosition *pos, WrError *err)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT encode(key, 'hex') FROM %s.digest_key", h->qschema);
    PGresult *res = NULL;
    if (!pgio_exec(h->conn, q.data, 0, NULL, &res) || PQntuples(res) != 1 ||
        PQgetlength(res, 0, 0) != 2 * DIGEST_KEY_LEN) {
        PQclear(res);
        strbuf_free(&q);
        return wr_error_set(err, WR_FATAL, "history store: %s.digest_key is missing or unreadable; run walrev setup "
                            "(as the worker's role)", h->qschema);
    }
    const char *hex = PQgetvalue(res, 0, 0);
    for (int k = 0; k < DIGEST_KEY_LEN; k++) {
        unsigned v = 0;
        sscanf(hex + 2 * k, "%2x", &v);
        h->dkey.key[k] = (uint8_t)v;
    }
    PQclear(res);
    pos->has_digest_key = true;
    memcpy(pos->digest_key, h->dkey.key, DIGEST_KEY_LEN);
    strbuf_reset(&q);
    strbuf_appendf(&q, "SELECT DISTINCT relid::text FROM %s.row_digest WHERE col_id = %d", h->qschema, DG_STALE);
    char what[160];
    snprintf(what, sizeof(what), "reading %s.row_digest", h->qschema);
    WrStatus st = run(h, q.data, 0, NULL, what, &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    for (int i = 0; i < PQntuples(res); i++) rel_mark(h, (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10));
    PQclear(res);
    return WR_OK;
}

/* The backfill row goes into the open batch: durable with the revisions before it, never ahead of them. */
static WrStatus hs_write_backfill(Sink *s, const BackfillProgress *p, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "write_backfill");
    if (st == WR_OK) st = ensure_tx(h, err);
    if (st != WR_OK) return st;
    char relid[16], request_no[16], chunks[16], rows_read[24], rows_recorded[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, p->relid);
    snprintf(request_no, sizeof(request_no), "%" PRId32, p->request_no);
    snprintf(chunks, sizeof(chunks), "%" PRId32, p->chunks);
    snprintf(rows_read, sizeof(rows_read), "%" PRId64, p->rows_read);
    snprintf(rows_recorded, sizeof(rows_recorded), "%" PRId64, p->rows_recorded);
    const char *params[10] = {relid, p->nspname, p->relname, p->state, request_no, p->last_key,
                              chunks, rows_read, rows_recorded, p->error};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.backfill AS b (relid, nspname, relname, state, request_no, last_key, chunks, "
                   "rows_read, rows_recorded, error, started_at, finished_at) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), "
                   "CASE WHEN $4 <> 'running' THEN now() END) "
                   "ON CONFLICT (relid) DO UPDATE SET nspname = EXCLUDED.nspname, relname = EXCLUDED.relname, "
                   "state = EXCLUDED.state, last_key = EXCLUDED.last_key, chunks = EXCLUDED.chunks, "
                   "rows_read = EXCLUDED.rows_read, rows_recorded = EXCLUDED.rows_recorded, error = EXCLUDED.error, "
                   "started_at = CASE WHEN b.state = 'running' THEN b.started_at ELSE now() END, "
                   "finished_at = EXCLUDED.finished_at, updated_at = now() "
                   "WHERE b.request_no <= EXCLUDED.request_no",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "writing %s.backfill", h->qschema);
    st = run(h, q.data, 10, params, what, NULL, err);
    strbuf_free(&q);
    return st;
}

/* Only moves the slot's checkpoint forward and only past its last revision:
 * revision_id and checksum stay the last revision's, so verify and the chain
 * are untouched; resolve_point reads end_lsn as "complete through". */
static WrStatus hs_record_position(Sink *s, Lsn end_lsn, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_usable(h, err, "record_position");
    if (st != WR_OK) return st;
    if (h->in_tx)
        return wr_error_set(err, WR_FATAL,
                            "history store: position " LSN_FMT " recorded while a batch is open; it is recorded "
                            "between batches",
                            LSN_ARGS(end_lsn));
    if (end_lsn <= h->durable) return WR_OK;
    char lsn[32];
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(end_lsn));
    const char *p[2] = {h->slot_name, lsn};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "UPDATE %s.checkpoint SET end_lsn = $2::pg_lsn, updated_at = now() "
                   "WHERE slot_name = $1 AND end_lsn < $2::pg_lsn",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "recording the stop position in %s.checkpoint", h->qschema);
    st = run(h, q.data, 2, p, what, NULL, err);
    strbuf_free(&q);
    if (st == WR_OK) h->durable = end_lsn;
    return st;
}

static void hs_abort(Sink *s)
{
    HistorySink *h = s->impl;
    if (h->copy_pending && h->conn) {
        WrError ignored;
        (void)await_copy(h, &ignored); /* its error, if any, is moot: the batch is rolled back */
    }
    if (h->conn && !h->broken && PQstatus(h->conn) == CONNECTION_OK &&
        (h->in_tx || PQtransactionStatus(h->conn) != PQTRANS_IDLE)) {
        PGresult *res = PQexec(h->conn, "ROLLBACK");
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            log_warn("msg=\"history store rollback failed\" error=\"%s\"", PQresultErrorMessage(res));
            h->broken = true;
        }
        PQclear(res);
    }
    reset_batch(h, false);
    h->nkf_due = 0;
    if (!h->broken) h->failed = false;
}

static void hs_destroy(Sink *s)
{
    HistorySink *h = s->impl;
    if (h->keyframer) {
        KeyframerStats ks;
        keyframer_stats(h->keyframer, &ks);
        if (ks.taken || ks.failed)
            log_info("msg=\"keyframes\" taken=%llu failed=%llu total_ms=%.0f max_ms=%.0f",
                     (unsigned long long)ks.taken, (unsigned long long)ks.failed, ks.total_ms, ks.max_ms);
        keyframer_stop(h->keyframer);
    }
    if (h->conn) PQfinish(h->conn);
    for (int t = 0; t < TB_COUNT; t++) {
        strbuf_free(&h->buf[t]);
        free(h->copy_sql[t]);
        free(h->table_name[t]);
    }
    strbuf_free(&h->tmp);
    for (int i = 0; i < 4; i++) strbuf_free(&h->dg[i]);
    free(h->marked);
    free(h->redigested);
    free(h->vals);
    free(h->counts);
    free(h->kf_due);
    free(h->unsent_keys);
    free(h->rels);
    free(h->conninfo);
    free(h->schema);
    free(h->qschema);
    free(h->slot_name);
    free(h);
    free(s);
}

static const SinkOps history_ops = {
    .name = "history",
    .open = hs_open,
    .write_relation = hs_write_relation,
    .begin_revision = hs_begin_revision,
    .write_context = hs_write_context,
    .write_delta = hs_write_delta,
    .commit_revision = hs_commit_revision,
    .flush = hs_flush,
    .poll = hs_poll,
    .durable_lsn = hs_durable_lsn,
    .holds_batch_at_idle = true,
    .wants_flush = hs_wants_flush,
    .lookup_row = hs_lookup_row,
    .prefetch_rows = hs_prefetch_rows,
    .find_row = hs_find_row,
    .note_suppressed = hs_note_suppressed,
    .scan_rows = hs_scan_rows,
    .write_backfill = hs_write_backfill,
    .record_position = hs_record_position,
    .abort = hs_abort,
    .destroy = hs_destroy,
};

void sink_history_wait_keyframes(Sink *s)
{
    HistorySink *h = s->impl;
    if (h->keyframer) keyframer_wait_idle(h->keyframer);
}

void sink_history_lookup_as_of(Sink *s, int64_t revision_id)
{
    ((HistorySink *)s->impl)->lookup_as_of = revision_id > 0 ? revision_id : 0;
}

Sink *sink_history_create(const HistorySinkConfig *cfg)
{
    HistorySink *h = xcalloc(1, sizeof(*h));
    h->conninfo = xstrdup(cfg->conninfo ? cfg->conninfo : "");
    h->schema = xstrdup(cfg->schema && cfg->schema[0] ? cfg->schema : "walrev");
    h->qschema = store_quote_ident(h->schema);
    h->slot_name = xstrdup(cfg->slot_name ? cfg->slot_name : "walrev");
    h->batch_max_revisions = cfg->batch_max_revisions > 0 ? cfg->batch_max_revisions : 2000;
    h->batch_max_ms = cfg->batch_max_ms > 0 ? cfg->batch_max_ms : 20;
    h->keyframe_factor = cfg->keyframe_factor > 0 ? cfg->keyframe_factor : KEYFRAME_FACTOR;
    h->buffer_bytes = cfg->buffer_bytes > 0 ? cfg->buffer_bytes : (size_t)1 << 20;
    static const char *const tables[TB_COUNT] = {"revision_context", "revision", "object_delta"};
    static const char *const columns[TB_COUNT] = {
        "revision_id, context_no, lsn, actor_type, actor_id, actor, description, meta, raw, raw_sha256, attested, "
        "db_session_user, db_current_user, application_name",
        "id, xid, commit_lsn, end_lsn, commit_time, origin, gid, actor_type, actor_id, actor, "
        "description, meta, n_insert, n_update, n_delete, n_truncate, n_snapshot, n_suppressed, "
        "warnings, checksum, attested, db_session_user, db_current_user, application_name",
        "revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values, "
        "attr_flags, old_unknown, col_id, old_value, new_value"};
    for (int t = 0; t < TB_COUNT; t++) {
        StrBuf b;
        strbuf_init(&b);
        strbuf_appendf(&b, "%s.%s", h->qschema, tables[t]);
        h->table_name[t] = b.data;
        strbuf_init(&b);
        strbuf_appendf(&b, "COPY %s (%s) FROM STDIN", h->table_name[t], columns[t]);
        h->copy_sql[t] = b.data;
        strbuf_init(&h->buf[t]);
    }
    strbuf_init(&h->tmp);
    for (int i = 0; i < 4; i++) strbuf_init(&h->dg[i]);
    Sink *s = xcalloc(1, sizeof(*s));
    s->ops = &history_ops;
    s->impl = h;
    return s;
}
