/*
 * keyframer.c — the history store's keyframes, taken in a background thread
 * (keyframer.h). One keyframe at a time, each in its own transaction on the
 * thread's connection: the previous keyframe and the deltas since, streamed
 * sorted by key and folded here (schema/rowfold.h), written with COPY; then
 * the table's tracked_table row is brought up to date, last, so the row lock
 * that may make the worker's batch wait is held only until COMMIT. A
 * request that waited is taken as a chain (keyframe_walk_step over the
 * table's per-revision delta counts since its last keyframe), each link in
 * its own transaction.
 */
#include "sink/keyframer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "common/common.h"
#include "common/log.h"
#include "common/metrics.h"
#include "schema/rowfold.h"
#include "sink/copy_format.h"
#include "pgio/pgio.h"

/* A table of few live rows is read key by key if it has had at most this
 * many keys (snapshot_plan_by_key); a large one's deltas fill its revision
 * range. */
#define KEYFRAME_BY_KEY_MAX 4000
#define COPY_CHUNK (1u << 20)
/* A keyframe_chunk row (format 7) closes at 64 rows, or before a row once
 * its keys and literals reach 6000 bytes: so it stays in line in its heap
 * page (STORAGE MAIN, compressed), a keyed lookup reading one tuple and no
 * TOAST. keyframe_pack in history.sql keeps chunks within the same bounds. */
#define KEYFRAME_CHUNK_ROWS 64
#define KEYFRAME_CHUNK_BYTES 6000
/* After a failure the thread waits before the next keyframe: a persistent
 * error (a full disk, a bug) is logged once per wait, not once per batch. */
#define BACKOFF_MIN_S 1
#define BACKOFF_MAX_S 60

/* A queued request. chain: it waited (replaced by a later one, or asked for
 * while its table's keyframe was in progress), so the keyframes its table
 * would have had before its revision are taken, not only its own. */
typedef struct {
    KeyframeRequest r;
    bool chain;
    bool held; /* the hold made it wait at least once */
} Queued;

struct Keyframer {
    char *conninfo;
    char *qschema;
    KeyframePolicy policy;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a request, the hold's end, the stop, or idle */
    Queued *queue;     /* FIFO, at most one per relid */
    size_t nqueue, capqueue;
    bool busy; /* a request is being taken */
    uint32_t busy_relid;
    bool behind; /* keyframer_hold: the worker is catching up */
    bool stopping;
    PGcancel *cancel;     /* of the connection, while a keyframe runs; under mu */
    KeyframerStats stats; /* under mu */
    /* Thread-owned. */
    PGconn *conn;
    int backoff_s;
};

/* ---------- when keyframes fall ---------- */

int64_t keyframe_threshold(const KeyframePolicy *p, int64_t live)
{
    double t = p->factor * (double)(live > 0 ? live : 0);
    return t > (double)p->min_deltas ? (int64_t)t : p->min_deltas;
}

bool keyframe_walk_step(KeyframeWalk *w, const KeyframePolicy *p, int64_t deltas, int64_t net, bool truncated,
                        int64_t *deltas_at, int64_t *live_at)
{
    w->deltas += deltas;
    w->live = truncated ? net : w->live + net;
    if (w->live < 0) w->live = 0;
    /* As the sink's tracked_table decides (history_sink.c), per revision. */
    if (w->deltas <= keyframe_threshold(p, w->live)) return false;
    *deltas_at = w->deltas;
    *live_at = w->live;
    w->deltas = 0;
    return true;
}

/* Held back no further: the table owes KEYFRAME_DEFER_MAX keyframes' worth. */
static bool overdue(const Keyframer *k, const KeyframeRequest *r)
{
    return r->deltas_at > KEYFRAME_DEFER_MAX * keyframe_threshold(&k->policy, r->live_at);
}

/* ---------- SQL on the thread's connection ---------- */

static WrStatus kf_run(Keyframer *k, const char *sql, int nparams, const char *const *params, const char *what,
                       PGresult **out, WrError *err)
{
    return pgio_run(k->conn, sql, nparams, params, out, err, what);
}

/* ---------- folding and writing one keyframe ---------- */

/* Where the rows of a keyframe go: keyframe_chunk rows (in key order, as
 * the fold emits them), each its keys and its rows' vals as text[] literals
 * in two arrays, as COPY binary rows (copy_format.h) in a buffer that spills
 * to a temporary file. Binary, as object_delta and revision are: the
 * server's array_recv of two text[]s per chunk, not array_in per row (a
 * sixth of the keyframe backend's CPU when rows went as text, issue 16). */
typedef struct {
    int64_t kf_id;
    int32_t relversion;
    StrBuf buf;
    FILE *spill;
    Value *vals;
    int nvals;
    /* the open chunk: its keys and literals back to back, row i's at offset
     * koff[i] / roff[i] (offsets: the buffers move as they grow) */
    StrBuf keys, rows;
    size_t koff[KEYFRAME_CHUNK_ROWS + 1], roff[KEYFRAME_CHUNK_ROWS + 1];
    int nchunk; /* rows in it */
} KeyframeOut;

/* The open chunk as a keyframe_chunk row into buf (spilled past COPY_CHUNK). */
static WrStatus chunk_flush(KeyframeOut *o, WrError *err)
{
    if (o->nchunk == 0) return WR_OK;
    int n = o->nchunk;
    o->koff[n] = o->keys.len;
    o->roff[n] = o->rows.len;
    Value ks[KEYFRAME_CHUNK_ROWS], rs[KEYFRAME_CHUNK_ROWS];
    for (int i = 0; i < n; i++) {
        ks[i] = (Value){o->keys.data + o->koff[i], o->koff[i + 1] - o->koff[i]};
        rs[i] = (Value){o->rows.data + o->roff[i], o->roff[i + 1] - o->roff[i]};
    }
    StrBuf *b = &o->buf;
    copybin_row(b, 5);
    copybin_int8(b, o->kf_id);
    copybin_text(b, ks[0].data, ks[0].len);
    copybin_int4(b, o->relversion);
    copybin_text_array(b, ks, (size_t)n);
    copybin_text_array(b, rs, (size_t)n);
    strbuf_reset(&o->keys);
    strbuf_reset(&o->rows);
    o->nchunk = 0;
    if (b->len >= COPY_CHUNK) {
        /* Bounded memory: a keyframe of a large table goes through a file. */
        if (!o->spill && !(o->spill = tmpfile()))
            return wr_error_set(err, WR_FATAL, "no temporary file for a keyframe: %s", strerror(errno));
        if (fwrite(b->data, 1, b->len, o->spill) != b->len)
            return wr_error_set(err, WR_FATAL, "writing a keyframe's temporary file: %s", strerror(errno));
        strbuf_reset(b);
    }
    return WR_OK;
}

static WrStatus keyframe_emit(void *arg, const char *key, size_t key_len, const char *const *vals, const bool *known,
                              int maxcol, bool based, WrError *err)
{
    (void)known;
    (void)based;
    KeyframeOut *o = arg;
    for (int c = 1; c <= maxcol && c <= o->nvals; c++)
        o->vals[c - 1] = vals[c] ? (Value){vals[c], strlen(vals[c])} : (Value){NULL, 0};
    if (o->nchunk > 0 && o->keys.len + o->rows.len >= KEYFRAME_CHUNK_BYTES) {
        WrStatus st = chunk_flush(o, err);
        if (st != WR_OK) return st;
    }
    o->koff[o->nchunk] = o->keys.len;
    o->roff[o->nchunk] = o->rows.len;
    strbuf_append(&o->keys, key, key_len);
    pgarray_append_text_out(&o->rows, o->vals, (size_t)o->nvals);
    return ++o->nchunk == KEYFRAME_CHUNK_ROWS ? chunk_flush(o, err) : WR_OK;
}

/* Read the results that end a COPY (every one, so the connection is ready for the next
 * statement); the first failure is reported unless st already holds one. */
static WrStatus copy_results(Keyframer *k, WrStatus st, const char *what, WrError *err)
{
    PGresult *res;
    while ((res = PQgetResult(k->conn)) != NULL) {
        if (st == WR_OK && PQresultStatus(res) != PGRES_COMMAND_OK) st = pgio_fail(k->conn, res, err, "%s", what);
        PQclear(res);
        if (PQstatus(k->conn) == CONNECTION_BAD) break;
    }
    return st;
}

/* Send the folded rows (out's buffer began with copybin_header), the last
 * chunk included, with COPY keyframe_chunk FROM STDIN and read its result. */
static WrStatus keyframe_send(Keyframer *k, KeyframeOut *o, WrError *err)
{
    WrStatus fst = chunk_flush(o, err);
    if (fst != WR_OK) return fst;
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "COPY %s.keyframe_chunk (keyframe_id, first_key, relversion, keys, rows) FROM STDIN WITH (FORMAT binary)",
                   k->qschema);
    PGresult *res;
    (void)pgio_exec(k->conn, sql.data, 0, NULL, &res);
    strbuf_free(&sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        WrStatus st = pgio_fail(k->conn, res, err, "COPY into keyframe_chunk");
        PQclear(res);
        return st;
    }
    PQclear(res);
    bool ok = true;
    if (o->spill) {
        char *chunk = xmalloc(COPY_CHUNK);
        size_t n;
        rewind(o->spill);
        while (ok && (n = fread(chunk, 1, COPY_CHUNK, o->spill)) > 0) ok = pgio_copy_put(k->conn, chunk, n);
        free(chunk);
    }
    copybin_trailer(&o->buf);
    ok = ok && pgio_copy_put(k->conn, o->buf.data, o->buf.len) && PQputCopyEnd(k->conn, NULL) == 1;
    WrStatus st = ok ? WR_OK : pgio_fail(k->conn, NULL, err, "COPY into keyframe_chunk");
    return copy_results(k, st, "COPY into keyframe_chunk", err);
}

/* Stream rowfold_query's COPY through the fold into out; *n_rows gets the row count. */
static WrStatus fold_rows(Keyframer *k, const char *sql, int maxcol, KeyframeOut *out, long long *n_rows, WrError *err)
{
    PGresult *res;
    (void)pgio_exec(k->conn, sql, 0, NULL, &res);
    WrStatus st = WR_OK;
    if (PQresultStatus(res) != PGRES_COPY_OUT) st = pgio_fail(k->conn, res, err, "reading a keyframe's rows");
    PQclear(res);
    if (st != WR_OK) return st;
    RowFold *fold = rowfold_create(maxcol, keyframe_emit, out);
    char *msg;
    int n;
    while ((n = PQgetCopyData(k->conn, &msg, 0)) > 0) {
        if (st == WR_OK) st = rowfold_feed(fold, msg, (size_t)n, err); /* drained on error */
        PQfreemem(msg);
    }
    if (st == WR_OK) st = rowfold_finish(fold, err);
    *n_rows = rowfold_rows(fold);
    rowfold_destroy(fold);
    return copy_results(k, st, "reading a keyframe's rows", err);
}

/*
 * Take the keyframe of r (inside the caller's transaction): read the plan
 * (the previous keyframe, the range of deltas, whether an UPDATE moved rows
 * between keys), insert the keyframe row, then either fold here or, when
 * rows moved between keys, let snapshot_rows() (SQL) do it. The plan is read
 * before the new keyframe exists (it would find that one).
 */
static WrStatus take_keyframe(Keyframer *k, const KeyframeRequest *r, char kf_id[32], long long *n_rows, WrError *err)
{
    char relid[16], revs[32], max_keys[16];
    snprintf(relid, sizeof(relid), "%" PRIu32, r->relid);
    snprintf(revs, sizeof(revs), "%" PRId64, r->rev);
    snprintf(max_keys, sizeof(max_keys), "%d", r->small ? KEYFRAME_BY_KEY_MAX : 0);
    const char *s = k->qschema;
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT p.keyframe_id, p.from_rev, p.cut_rev, p.cut_seq, p.key_changes, "
                   "(SELECT max(c) FROM %1$s.relation_version rv, unnest(rv.col_ids) c WHERE rv.relid = $1), "
                   "(SELECT v.version FROM %1$s.relation_at($1, $2) v), p.by_key "
                   "FROM %1$s.snapshot_plan_by_key($1, $2, $3) p",
                   s);
    const char *p[3] = {relid, revs, max_keys};
    PGresult *plan = NULL, *res = NULL;
    int64_t t0 = mono_now_us(), t1 = 0, t2 = 0;
    WrStatus st = kf_run(k, q.data, 3, p, "planning a keyframe", &plan, err);
    t1 = mono_now_us();
    if (st == WR_OK && (PQntuples(plan) != 1 || PQgetisnull(plan, 0, 6)))
        st = wr_error_set(err, WR_FATAL, "no relation version of relid %s at revision %s", relid, revs);
    if (st == WR_OK) {
        strbuf_reset(&q);
        strbuf_appendf(&q, "INSERT INTO %s.keyframe (relid, revision_id, n_rows) VALUES ($1, $2, 0) RETURNING id", s);
        st = kf_run(k, q.data, 2, p, "inserting a keyframe", &res, err);
    }
    if (st == WR_OK) {
        snprintf(kf_id, 32, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        res = NULL;
    }
    bool by_key = st == WR_OK && PQgetvalue(plan, 0, 7)[0] == 't';
    if (st == WR_OK && PQgetvalue(plan, 0, 4)[0] == 't') {
        strbuf_reset(&q);
        strbuf_appendf(&q, "SELECT %s.keyframe_put($3, $4, $5, $1, $2)", s);
        StrBuf rows;
        strbuf_init(&rows);
        strbuf_appendf(&rows, "SELECT r.key, r.vals FROM %s.snapshot_rows($1, $2) r", s);
        const char *kp[5] = {relid, revs, kf_id, PQgetvalue(plan, 0, 6), rows.data};
        st = kf_run(k, q.data, 5, kp, "taking a keyframe (rows moved between keys)", &res, err);
        strbuf_free(&rows);
        if (st == WR_OK) *n_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        t2 = mono_now_us();
    } else if (st == WR_OK) {
        strbuf_reset(&q);
        rowfold_query(&q, s, r->relid, PQgetisnull(plan, 0, 0) ? NULL : PQgetvalue(plan, 0, 0), PQgetvalue(plan, 0, 1),
                      r->rev, PQgetvalue(plan, 0, 2), PQgetvalue(plan, 0, 3), by_key ? KEYFRAME_BY_KEY_MAX : 0);
        int maxcol = PQgetisnull(plan, 0, 5) ? 0 : atoi(PQgetvalue(plan, 0, 5));
        KeyframeOut out = {.kf_id = strtoll(kf_id, NULL, 10),
                           .relversion = (int32_t)atoi(PQgetvalue(plan, 0, 6)),
                           .nvals = maxcol};
        strbuf_init(&out.buf);
        strbuf_init(&out.keys);
        strbuf_init(&out.rows);
        copybin_header(&out.buf);
        out.vals = xcalloc((size_t)maxcol + 1, sizeof(Value));
        /* The server sorts keyframe rows and deltas by key: in memory, not on disk. */
        st = kf_run(k, "SET LOCAL work_mem = '64MB'", 0, NULL, "setting work_mem for a keyframe", NULL, err);
        if (st == WR_OK) st = fold_rows(k, q.data, maxcol, &out, n_rows, err);
        t2 = mono_now_us();
        if (st == WR_OK) st = keyframe_send(k, &out, err);
        if (out.spill) fclose(out.spill);
        strbuf_free(&out.buf);
        strbuf_free(&out.keys);
        strbuf_free(&out.rows);
        free(out.vals);
    }
    if (st == WR_OK)
        log_debug("msg=\"keyframe phases\" relid=%s revision=%s by_key=%d plan_ms=%.1f fold_ms=%.1f write_ms=%.1f",
                  relid, revs, by_key, (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
                  (double)(mono_now_us() - t2) / 1000.0);
    PQclear(plan);
    strbuf_free(&q);
    return st;
}

/* One request in its own transaction; the counters move last. */
static WrStatus take_and_record(Keyframer *k, const KeyframeRequest *r, long long *n_rows, WrError *err)
{
    WrStatus st = kf_run(k, "BEGIN", 0, NULL, "BEGIN", NULL, err);
    char kf_id[32] = "";
    if (st == WR_OK) st = take_keyframe(k, r, kf_id, n_rows, err);
    if (st == WR_OK) {
        char relid[16], rows[32], deltas_at[32], live_at[32];
        snprintf(relid, sizeof(relid), "%" PRIu32, r->relid);
        snprintf(rows, sizeof(rows), "%lld", *n_rows);
        snprintf(deltas_at, sizeof(deltas_at), "%" PRId64, r->deltas_at);
        snprintf(live_at, sizeof(live_at), "%" PRId64, r->live_at);
        StrBuf q;
        strbuf_init(&q);
        /* live_rows: exact as of the keyframe, plus what was counted since. */
        strbuf_appendf(&q,
                       "WITH k AS (UPDATE %1$s.keyframe SET n_rows = $2 WHERE id = $1) "
                       "UPDATE %1$s.tracked_table SET deltas_since_keyframe = greatest(deltas_since_keyframe - $4, 0), "
                       "live_rows = greatest(live_rows - $5 + $2, 0), last_keyframe_id = $1 WHERE relid = $3",
                       k->qschema);
        const char *up[5] = {kf_id, rows, relid, deltas_at, live_at};
        st = kf_run(k, q.data, 5, up, "recording a keyframe", NULL, err);
        strbuf_free(&q);
    }
    if (st == WR_OK) st = kf_run(k, "COMMIT", 0, NULL, "COMMIT of a keyframe", NULL, err);
    if (st != WR_OK && PQstatus(k->conn) == CONNECTION_OK && PQtransactionStatus(k->conn) != PQTRANS_IDLE) {
        pgio_run_unchecked(k->conn, "ROLLBACK");
    }
    return st;
}

static WrStatus connect_thread(Keyframer *k, WrError *err)
{
    if (k->conn && PQstatus(k->conn) == CONNECTION_OK) return WR_OK;
    if (k->conn) PQfinish(k->conn);
    k->conn = NULL;
    /* Unbounded: a keyframe of a large table is one long COPY. */
    PgioConnect how = {.what = "keyframes", .app_name = "walrev-keyframe"};
    return pgio_connect(k->conninfo, &how, &k->conn, err);
}

/* ---------- a chain: the keyframes a request that waited stands for ---------- */

static void push_point(KeyframeRequest **pts, size_t *n, size_t *cap, const KeyframeRequest *r)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *pts = xrealloc(*pts, *cap * sizeof(KeyframeRequest));
    }
    (*pts)[(*n)++] = *r;
}

/* One line of chain_points' COPY: deltas, net, truncated, revision. */
static WrStatus parse_counts(const char *line, size_t len, int64_t v[4], WrError *err)
{
    char buf[128];
    if (len >= sizeof(buf)) return wr_error_set(err, WR_FATAL, "unexpected delta counts line of %zu bytes", len);
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *p = buf, *end;
    for (int i = 0; i < 4; i++) {
        if (i == 2) {
            v[i] = *p == 't';
            p += *p ? 1 : 0;
        } else {
            v[i] = strtoll(p, &end, 10);
            if (end == p) return wr_error_set(err, WR_FATAL, "unreadable delta counts line \"%s\"", buf);
            p = end;
        }
        if (i < 3 && *p++ != '\t') return wr_error_set(err, WR_FATAL, "unreadable delta counts line \"%s\"", buf);
    }
    return WR_OK;
}

/*
 * The keyframes r's table would have had up to r->rev, had each been taken
 * when due: its deltas since its last keyframe (or all, before the first),
 * counted per revision in the store, walked by keyframe_walk_step. None when
 * none fell due: another request's chain took them, or the table has no
 * keyframe yet (*has_keyframe false; r itself is then taken, as the sink
 * asks for a first one once a baseline is recorded). Costs one read of those
 * deltas, without the fold's sort: a small part of a keyframe.
 */
static WrStatus chain_points(Keyframer *k, const KeyframeRequest *r, KeyframeRequest **pts, size_t *npts,
                             bool *has_keyframe, WrError *err)
{
    char relid[16];
    snprintf(relid, sizeof(relid), "%" PRIu32, r->relid);
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT k.revision_id, k.n_rows FROM %1$s.tracked_table t JOIN %1$s.keyframe k "
                   "ON k.id = t.last_keyframe_id WHERE t.relid = $1",
                   k->qschema);
    const char *p[1] = {relid};
    PGresult *res = NULL;
    WrStatus st = kf_run(k, q.data, 1, p, "reading a table's last keyframe", &res, err);
    int64_t from = 0, rows = 0;
    *has_keyframe = st == WR_OK && PQntuples(res) == 1;
    if (*has_keyframe) {
        from = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    if (st != WR_OK || from >= r->rev) {
        strbuf_free(&q);
        return st;
    }
    /* After a keyframe, relid::bigint: the revision range goes to the BRIN, as
     * in snapshot_plan_by_key; before the first, the B-tree finds the table's
     * whole history. A TRUNCATE's revision counts the rows begun after it and
     * before it alike: live rows only steer when keyframes fall. */
    strbuf_reset(&q);
    strbuf_appendf(&q,
                   "COPY (SELECT count(*), sum(CASE WHEN op IN ('I', 'S') THEN 1 WHEN op = 'D' THEN -1 ELSE 0 END), "
                   "bool_or(op = 'T'), revision_id FROM %s.object_delta WHERE relid%s = %" PRIu32
                   " AND revision_id > %" PRId64 " AND revision_id <= %" PRId64
                   " GROUP BY revision_id ORDER BY revision_id) TO STDOUT",
                   k->qschema, *has_keyframe ? "::bigint" : "", r->relid, from, r->rev);
    (void)pgio_exec(k->conn, q.data, 0, NULL, &res);
    strbuf_free(&q);
    if (PQresultStatus(res) != PGRES_COPY_OUT) st = pgio_fail(k->conn, res, err, "counting a table's deltas");
    PQclear(res);
    if (st != WR_OK) return st;
    KeyframeWalk w = {.live = rows};
    size_t cap = 0;
    char *msg;
    int n;
    while ((n = PQgetCopyData(k->conn, &msg, 0)) > 0) {
        int64_t v[4] = {0};
        if (st == WR_OK) st = parse_counts(msg, n > 0 && msg[n - 1] == '\n' ? (size_t)n - 1 : (size_t)n, v, err);
        PQfreemem(msg);
        KeyframeRequest pt = {.relid = r->relid, .rev = v[3]};
        if (st == WR_OK && keyframe_walk_step(&w, &k->policy, v[0], v[1], v[2] != 0, &pt.deltas_at, &pt.live_at)) {
            pt.small = pt.live_at <= k->policy.small_rows;
            push_point(pts, npts, &cap, &pt);
        }
    }
    return copy_results(k, st, "counting a table's deltas", err);
}

/* ---------- the thread ---------- */

/* Take r with the cancel handle registered for keyframer_stop; counts it when
 * taken. A keyframe the stop cancelled is no failure. */
static WrStatus serve_one(Keyframer *k, const KeyframeRequest *r, WrError *err)
{
    WrStatus st = WR_OK;
    PGcancel *c = PQgetCancel(k->conn);
    pthread_mutex_lock(&k->mu);
    k->cancel = c;
    bool stop = k->stopping;
    pthread_mutex_unlock(&k->mu);
    long long n_rows = 0;
    int64_t t0 = mono_now_us();
    if (!stop) st = take_and_record(k, r, &n_rows, err);
    int64_t took_us = mono_now_us() - t0;
    double ms = (double)took_us / 1000.0;
    pthread_mutex_lock(&k->mu);
    k->cancel = NULL;
    stop = k->stopping;
    if (st == WR_OK && !stop) {
        k->stats.taken++;
        metrics_add(METRICS_KEYFRAMES, 1);
        metrics_observe_us(METRICS_HIST_KEYFRAME, took_us);
        k->stats.total_ms += ms;
        if (ms > k->stats.max_ms) k->stats.max_ms = ms;
    }
    pthread_mutex_unlock(&k->mu);
    PQfreeCancel(c);
    if (stop) return WR_OK;
    if (st == WR_OK)
        log_debug("msg=\"keyframe taken\" relid=%" PRIu32 " revision=%" PRId64 " rows=%lld ms=%.1f", r->relid, r->rev,
                  n_rows, ms);
    return st;
}

/* The keyframe q asks for, or the chain it stands for, each in its own
 * transaction. A small table's is never a chain: its deltas since a keyframe
 * are few (at most KEYFRAME_DEFER_MAX × min_deltas), and counting them
 * through the BRIN range would read every table's deltas of those revisions
 * (what its keyframe avoids by reading key by key). */
static WrStatus serve(Keyframer *k, const Queued *q, WrError *err)
{
    WrStatus st = connect_thread(k, err);
    KeyframeRequest *pts = NULL;
    size_t npts = 0;
    bool has_keyframe = false, chain = q->chain && !q->r.small;
    if (st == WR_OK && chain) st = chain_points(k, &q->r, &pts, &npts, &has_keyframe, err);
    if (st == WR_OK && npts == 0 && !(chain && has_keyframe)) st = serve_one(k, &q->r, err);
    if (npts > 1)
        log_debug("msg=\"keyframe chain\" relid=%" PRIu32 " revision=%" PRId64 " keyframes=%zu", q->r.relid, q->r.rev,
                  npts);
    for (size_t i = 0; st == WR_OK && i < npts; i++) st = serve_one(k, &pts[i], err);
    free(pts);
    return st;
}

/*
 * The store's partitioned tables analyzed once they have grown 4 times since the
 * last time (analyze_if_grown() in history.sql: autovacuum never analyzes a
 * partitioned table, and without statistics a time window over
 * attribute_delta was planned as a probe of revision per delta, issue 16 Q).
 * Run after each keyframe (not when the thread starts: a request queued
 * meanwhile was merged with a later one, and its keyframe fell at the later
 * revision), never cancelled by keyframer_stop (which then waits for it: a
 * sample of 30,000 rows per table, a few times over a store's life). A
 * failure (a role that may not analyze) is logged and changes nothing else.
 */
static void analyze_if_grown(Keyframer *k)
{
    WrError err = {0};
    PGresult *res = NULL;
    char *sql = xasprintf("SELECT %s.analyze_if_grown()", k->qschema);
    WrStatus st = connect_thread(k, &err);
    if (st == WR_OK) st = kf_run(k, sql, 0, NULL, "analyzing the history store's partitioned tables", &res, &err);
    free(sql);
    if (st != WR_OK)
        log_warn("msg=\"history store statistics not taken\" error=\"%s\"", err.msg);
    else if (PQgetvalue(res, 0, 0)[0] == 't')
        log_info("msg=\"history store analyzed\" schema=%s", k->qschema);
    PQclear(res);
}

/* After a failure: wait k->backoff_s before the next keyframe (requests that
 * come meanwhile wait too; the stop does not). Called with mu held. */
static void back_off(Keyframer *k)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += k->backoff_s;
    while (!k->stopping && pthread_cond_timedwait(&k->cv, &k->mu, &until) != ETIMEDOUT) {
    }
}

/* The first queued request that may be taken now (the hold lets overdue
 * ones through), or -1; those the hold keeps are marked. Called with mu held. */
static long next_request(Keyframer *k)
{
    for (size_t i = 0; i < k->nqueue; i++) {
        if (!k->behind || overdue(k, &k->queue[i].r)) return (long)i;
        k->queue[i].held = true;
    }
    return -1;
}

static void *keyframer_main(void *arg)
{
    Keyframer *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        long i;
        while (!k->stopping && (i = next_request(k)) < 0) pthread_cond_wait(&k->cv, &k->mu);
        if (k->stopping) break;
        Queued q = k->queue[i];
        memmove(k->queue + i, k->queue + i + 1, (k->nqueue - (size_t)i - 1) * sizeof(Queued));
        k->nqueue--;
        if (q.held) k->stats.deferred++;
        k->busy = true;
        k->busy_relid = q.r.relid;
        pthread_mutex_unlock(&k->mu);

        WrError err = {0};
        WrStatus st = serve(k, &q, &err);
        pthread_mutex_lock(&k->mu);
        if (st != WR_OK) {
            k->stats.failed++;
            k->backoff_s =
                k->backoff_s ? (k->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : k->backoff_s * 2) : BACKOFF_MIN_S;
            log_warn("msg=\"keyframe not taken; asked again later\" relid=%" PRIu32 " revision=%" PRId64
                     " retry_in_s=%d error=\"history store keyframe: %s\"",
                     q.r.relid, q.r.rev, k->backoff_s, err.msg);
            back_off(k);
        } else {
            k->backoff_s = 0;
            if (!k->stopping) {
                pthread_mutex_unlock(&k->mu);
                analyze_if_grown(k);
                pthread_mutex_lock(&k->mu);
            }
        }
        k->busy = false;
        pthread_cond_broadcast(&k->cv);
    }
    k->busy = false;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

Keyframer *keyframer_start(const char *conninfo, const char *qschema, const KeyframePolicy *policy)
{
    Keyframer *k = xcalloc(1, sizeof(*k));
    k->conninfo = xstrdup(conninfo ? conninfo : "");
    k->qschema = xstrdup(qschema);
    k->policy = *policy;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    /* Signals (SIGTERM, SIGINT, SIGHUP) are the main thread's to handle. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&k->thread, NULL, keyframer_main, k);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error("msg=\"cannot start the keyframe thread\" error=\"%s\"", strerror(rc));
        abort();
    }
    return k;
}

void keyframer_request(Keyframer *k, const KeyframeRequest *r)
{
    pthread_mutex_lock(&k->mu);
    size_t i = 0;
    while (i < k->nqueue && k->queue[i].r.relid != r->relid) i++;
    if (k->stopping) {
        pthread_mutex_unlock(&k->mu);
        return;
    }
    if (i < k->nqueue) {
        /* The later revision: its chain covers the one it replaces. */
        if (r->rev > k->queue[i].r.rev) {
            k->queue[i].r = *r;
            k->queue[i].chain = true;
        }
    } else {
        if (k->nqueue == k->capqueue) {
            k->capqueue = k->capqueue ? 2 * k->capqueue : 8;
            k->queue = xrealloc(k->queue, k->capqueue * sizeof(Queued));
        }
        /* Asked for while the table's keyframe is in progress, its counts
         * predate that one: a large table's is a chain (the deltas since,
         * read from the store, say whether another is due); a small table's
         * is dropped, as its counter asks again at a later batch if so. */
        bool running = k->busy && k->busy_relid == r->relid;
        if (running && r->small) {
            pthread_mutex_unlock(&k->mu);
            return;
        }
        /* Also a chain when it stands for more than one keyframe (a run
         * before this one stopped with keyframes owed, a large batch). */
        bool chain = running || r->deltas_at > 2 * keyframe_threshold(&k->policy, r->live_at);
        k->queue[k->nqueue++] = (Queued){*r, chain, false};
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

void keyframer_hold(Keyframer *k, bool behind)
{
    pthread_mutex_lock(&k->mu);
    if (k->behind != behind) {
        k->behind = behind;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
}

void keyframer_wait_idle(Keyframer *k)
{
    pthread_mutex_lock(&k->mu);
    k->behind = false;
    pthread_cond_broadcast(&k->cv);
    while (!k->stopping && (k->busy || k->nqueue > 0)) pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
}

void keyframer_stats(Keyframer *k, KeyframerStats *out)
{
    pthread_mutex_lock(&k->mu);
    *out = k->stats;
    pthread_mutex_unlock(&k->mu);
}

void keyframer_stop(Keyframer *k)
{
    if (!k) return;
    pthread_mutex_lock(&k->mu);
    k->stopping = true;
    if (k->busy || k->nqueue)
        log_info("msg=\"keyframes left to a later run\" in_progress=%s queued=%zu", k->busy ? "cancelled" : "none",
                 k->nqueue);
    k->nqueue = 0;
    if (k->cancel) {
        char errbuf[256];
        (void)PQcancel(k->cancel, errbuf, sizeof(errbuf)); /* best effort: the thread ends with its statement */
    }
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    if (k->conn) PQfinish(k->conn);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k->queue);
    free(k->conninfo);
    free(k->qschema);
    free(k);
}
