/*
 * pipeline.c — `walrev run`. One thread: receive CopyData, decode, assemble,
 * fan out to the sinks; flush sinks when they ask or when the stream goes
 * idle; confirm to the slot only the minimum durable LSN over all sinks, or
 * the server's WAL end when nothing is pending. Any retriable failure tears
 * everything down and starts again from the sinks' own checkpoints, so
 * recovery has one code path.
 */
#include "worker/pipeline.h"

#include "common/log.h"
#include "decoder/assembler.h"
#include "decoder/pgoutput.h"
#include "decoder/stream.h"
#include "schema/checksum.h"
#include "sink/kafka_sink.h"
#include "sink/sink.h"
#include "worker/backfill.h"
#include "worker/notify.h"
#include "worker/prefetch.h"
#include "worker/readahead.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int pipeline_stop_requested = 0;

#define MAX_SINKS 4

typedef struct {
    Sink *sink;
    const char *name;
    SinkPosition pos;
    bool pending;     /* received revisions not yet flushed */
    bool skip_current; /* the revision in flight is already in this sink */
} SinkSlot;

typedef struct {
    const Config *cfg;
    SinkSlot sinks[MAX_SINKS];
    int nsinks;
    int history_index; /* -1 when the history store is off */
    PGconn *catalog;   /* normal connection to the source for catalog questions; lazily opened */
    Assembler *asm_;
    Backfill *backfill; /* tables added to the publication later; NULL without a history store */
    ReplStream *stream;
    Lsn received;      /* highest WAL position received */
    Lsn server_wal_end;
    Lsn confirmed;     /* last flush LSN sent */
    Lsn last_emitted_end; /* end LSN of the last revision given to the sinks */
    int64_t last_status_us;
    int64_t last_watchdog_us;
    int64_t last_stats_us;
    uint64_t changes_total;
    /* Messages read ahead (old images are fetched for them in batches), and
     * what ended the read: handed on once they are handled. */
    ReadAhead *ahead;
    WrStatus ahead_status;
    WrError ahead_err;
    uint64_t prefetched_keys;
} Pipeline;

/* A read-ahead stops at this many messages or bytes (memory stays bounded with large rows). */
#define READ_AHEAD_MAX_MESSAGES 4096
#define READ_AHEAD_MAX_BYTES ((size_t)4 << 20)

/* ---- fan-out: the assembler's output ---- */

static WrStatus out_relation(void *ctx, const RelationVersion *rv, WrError *err)
{
    Pipeline *p = ctx;
    for (int i = 0; i < p->nsinks; i++) {
        WrStatus st = p->sinks[i].sink->ops->write_relation(p->sinks[i].sink, rv, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", p->sinks[i].name);
    }
    if (p->backfill) backfill_on_relation(p->backfill, rv);
    return WR_OK;
}

static WrStatus out_begin(void *ctx, const Revision *rev, WrError *err)
{
    Pipeline *p = ctx;
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        /* A sink that already holds this revision (it is ahead of another sink) skips it. */
        s->skip_current = s->pos.known && rev->commit_lsn < s->pos.durable_end_lsn;
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->begin_revision(s->sink, rev, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    return WR_OK;
}

static WrStatus out_context(void *ctx, const Revision *rev, const RevisionContext *c, WrError *err)
{
    Pipeline *p = ctx;
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->write_context(s->sink, rev, c, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    return WR_OK;
}

static WrStatus out_delta(void *ctx, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    Pipeline *p = ctx;
    p->changes_total++;
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->write_delta(s->sink, rev, d, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    if (p->backfill) backfill_on_delta(p->backfill, rev, d);
    return WR_OK;
}

/* A table's baseline progress, in the revision in flight (if any) of every sink that keeps it. */
static WrStatus out_backfill_progress(void *ctx, const BackfillProgress *bp, WrError *err)
{
    Pipeline *p = ctx;
    bool in_revision = p->asm_ && assembler_in_revision(p->asm_);
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (!s->sink->ops->write_backfill || (in_revision && s->skip_current)) continue;
        WrStatus st = s->sink->ops->write_backfill(s->sink, bp, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        s->pending = true; /* outside a revision only a flush makes it durable */
    }
    return WR_OK;
}

static WrStatus out_commit(void *ctx, const Revision *rev, WrError *err)
{
    Pipeline *p = ctx;
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (s->skip_current) continue;
        WrStatus st = s->sink->ops->commit_revision(s->sink, rev, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        s->pending = true;
    }
    p->last_emitted_end = rev->end_lsn;
    log_debug("msg=\"revision assembled\" revision=%lld xid=%u end_lsn=" LSN_FMT, (long long)rev->id, rev->xid,
              LSN_ARGS(rev->end_lsn));
    return WR_OK;
}

static WrStatus out_lookup(void *ctx, const RelationVersion *rv, const char *key, RowImage *image,
                           StrBuf *storage, bool *found, WrError *err)
{
    Pipeline *p = ctx;
    *found = false;
    if (p->history_index < 0) return WR_OK;
    Sink *s = p->sinks[p->history_index].sink;
    if (!s->ops->lookup_row) return WR_OK;
    return s->ops->lookup_row(s, rv, key, image, storage, found, err);
}

static WrStatus out_primary_key(void *ctx, uint32_t relid, uint16_t ncols, const char *const *names,
                                bool *is_key, bool *found, WrError *err)
{
    Pipeline *p = ctx;
    *found = false;
    if (!p->catalog) {
        p->catalog = PQconnectdb(p->cfg->source_conninfo);
        if (PQstatus(p->catalog) != CONNECTION_OK) {
            wr_error_set(err, WR_RETRY, "source catalog: %s", PQerrorMessage(p->catalog));
            PQfinish(p->catalog);
            p->catalog = NULL;
            return WR_RETRY;
        }
    }
    char oid[16];
    snprintf(oid, sizeof(oid), "%u", relid);
    const char *params[1] = {oid};
    PGresult *r = PQexecParams(p->catalog,
                               "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                               "AND a.attnum = ANY (i.indkey) WHERE i.indrelid = $1::oid AND i.indisprimary",
                               1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        WrStatus st = wr_error_set(err, PQstatus(p->catalog) == CONNECTION_OK ? WR_FATAL : WR_RETRY,
                                   "source catalog: primary key of relation %u: %s", relid,
                                   PQerrorMessage(p->catalog));
        PQclear(r);
        return st;
    }
    int matched = 0;
    for (int i = 0; i < PQntuples(r); i++)
        for (uint16_t c = 0; c < ncols; c++)
            if (strcmp(names[c], PQgetvalue(r, i, 0)) == 0) {
                is_key[c] = true;
                matched++;
            }
    /* Only a primary key whose columns are all published can identify rows. */
    *found = PQntuples(r) > 0 && matched == PQntuples(r);
    PQclear(r);
    return WR_OK;
}

/* ---- set-up and teardown ---- */

static WrStatus create_sinks(Pipeline *p, WrError *err)
{
    const Config *cfg = p->cfg;
    p->history_index = -1;
    if (cfg->history_enabled) {
        HistorySinkConfig h = {
            .conninfo = cfg->history_conninfo,
            .schema = cfg->history_schema,
            .slot_name = cfg->slot_name,
            .batch_max_revisions = cfg->batch_max_revisions,
            .batch_max_ms = cfg->batch_max_ms,
            .keyframe_factor = cfg->keyframe_factor,
        };
        p->history_index = p->nsinks;
        p->sinks[p->nsinks++] = (SinkSlot){.sink = sink_history_create(&h), .name = "history"};
    }
    if (cfg->file_path) {
        FileSinkConfig f = {.path = cfg->file_path, .fsync = strcmp(cfg->file_path, "-") != 0};
        p->sinks[p->nsinks++] = (SinkSlot){.sink = sink_file_create(&f), .name = "file"};
    }
    if (cfg->kafka_enabled) {
        KafkaSinkConfig k;
        memset(&k, 0, sizeof(k));
        k.topic_prefix = cfg->kafka_topic_prefix;
        k.nprops = cfg->nkafka_props;
        KafkaProp *props = xcalloc((size_t)cfg->nkafka_props + 1, sizeof(KafkaProp));
        for (int i = 0; i < cfg->nkafka_props; i++) {
            props[i].name = cfg->kafka_props[i].name;
            props[i].value = cfg->kafka_props[i].value;
        }
        k.props = props;
        Sink *ks = sink_kafka_create(&k, err);
        free(props);
        if (!ks) return err->status;
        p->sinks[p->nsinks++] = (SinkSlot){.sink = ks, .name = "kafka"};
    }
    if (p->nsinks == 0)
        return wr_error_set(err, WR_INVALID, "no sink configured: enable [history], [file] or [kafka]");
    return WR_OK;
}

static void destroy_sinks(Pipeline *p, bool abort_pending)
{
    for (int i = 0; i < p->nsinks; i++) {
        if (abort_pending && p->sinks[i].sink->ops->abort) p->sinks[i].sink->ops->abort(p->sinks[i].sink);
        sink_destroy(p->sinks[i].sink);
    }
    p->nsinks = 0;
}

/* Versions the history store already holds, so re-sent Relation messages are not new versions. */
static WrStatus restore_relations(Pipeline *p, WrError *err)
{
    if (!p->cfg->history_enabled) return WR_OK;
    PGconn *conn = PQconnectdb(p->cfg->history_conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        wr_error_set(err, WR_RETRY, "history store: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return WR_RETRY;
    }
    char *schema = PQescapeIdentifier(conn, p->cfg->history_schema, strlen(p->cfg->history_schema));
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "SELECT json_build_object('relid', relid, 'version', version, 'nspname', nspname, "
                   "'relname', relname, 'replident', replident::text, 'valid_from', valid_from::text, "
                   "'col_ids', col_ids, 'col_names', col_names, 'col_type_oids', col_type_oids, "
                   "'col_typmods', col_typmods, 'col_type_names', col_type_names, 'col_is_key', col_is_key, "
                   "'max_col_id', (SELECT max(x) FROM %s.relation_version r2, unnest(r2.col_ids) x "
                   "WHERE r2.relid = rv.relid))::text "
                   "FROM (SELECT DISTINCT ON (relid) * FROM %s.relation_version ORDER BY relid, version DESC) rv",
                   schema, schema);
    PQfreemem(schema);
    PGresult *res = PQexec(conn, sql.data);
    strbuf_free(&sql);
    WrStatus st = WR_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        st = wr_error_set(err, WR_FATAL, "history store: reading relation versions: %s", PQerrorMessage(conn));
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        json_error_t jerr;
        json_t *o = json_loads(PQgetvalue(res, r, 0), 0, &jerr);
        if (!o) continue;
        RelationVersion rv;
        memset(&rv, 0, sizeof(rv));
        rv.relid = (uint32_t)json_integer_value(json_object_get(o, "relid"));
        rv.version = (int32_t)json_integer_value(json_object_get(o, "version"));
        const char *nsp = json_string_value(json_object_get(o, "nspname"));
        const char *rel = json_string_value(json_object_get(o, "relname"));
        rv.nspname = nsp ? xstrdup(nsp) : NULL;
        rv.relname = rel ? xstrdup(rel) : NULL;
        const char *ri = json_string_value(json_object_get(o, "replident"));
        rv.replident = ri && *ri ? ri[0] : 'd';
        Lsn vf = 0;
        const char *vft = json_string_value(json_object_get(o, "valid_from"));
        if (vft && lsn_parse(vft, &vf)) rv.valid_from = vf;
        json_t *ids = json_object_get(o, "col_ids");
        rv.ncols = (uint16_t)json_array_size(ids);
        rv.cols = xcalloc(rv.ncols ? rv.ncols : 1, sizeof(RelColumn));
        for (uint16_t i = 0; i < rv.ncols; i++) {
            RelColumn *c = &rv.cols[i];
            c->col_id = (int16_t)json_integer_value(json_array_get(ids, i));
            const char *cn = json_string_value(json_array_get(json_object_get(o, "col_names"), i));
            c->name = xstrdup(cn ? cn : "");
            c->type_oid = (uint32_t)json_integer_value(json_array_get(json_object_get(o, "col_type_oids"), i));
            c->typmod = (int32_t)json_integer_value(json_array_get(json_object_get(o, "col_typmods"), i));
            const char *tn = json_string_value(json_array_get(json_object_get(o, "col_type_names"), i));
            c->type_name = (tn && *tn) ? xstrdup(tn) : NULL;
            c->is_key = json_is_true(json_array_get(json_object_get(o, "col_is_key"), i));
        }
        if (rv.nspname && rv.relname)
            relcache_restore(assembler_relcache(p->asm_), &rv,
                             (int16_t)json_integer_value(json_object_get(o, "max_col_id")));
        for (uint16_t i = 0; i < rv.ncols; i++) {
            free(rv.cols[i].name);
            free(rv.cols[i].type_name);
        }
        free(rv.cols);
        free(rv.nspname);
        free(rv.relname);
        json_decref(o);
    }
done:
    PQclear(res);
    PQfinish(conn);
    return st;
}

/* ---- the loop ---- */

static Lsn min_durable(const Pipeline *p)
{
    Lsn m = UINT64_MAX;
    for (int i = 0; i < p->nsinks; i++) {
        Sink *s = p->sinks[i].sink;
        Lsn d = s->ops->durable_lsn(s);
        if (p->sinks[i].pos.known && p->sinks[i].pos.durable_end_lsn > d) d = p->sinks[i].pos.durable_end_lsn;
        if (d < m) m = d;
    }
    return m == UINT64_MAX ? 0 : m;
}

/* Nothing in flight and every revision given to the sinks durable in all of
 * them: the stream may be confirmed past the last revision. */
static bool settled(const Pipeline *p)
{
    return !assembler_in_transaction(p->asm_) && min_durable(p) >= p->last_emitted_end;
}

/* What may be confirmed now: never past what every sink made durable; when
 * settled, up to the server's WAL end so a quiet or untracked database does
 * not pin WAL. */
static Lsn confirmable(const Pipeline *p)
{
    Lsn durable = min_durable(p);
    Lsn c = p->confirmed;
    if (settled(p)) {
        Lsn idle = assembler_last_end_lsn(p->asm_);
        if (p->server_wal_end > idle) idle = p->server_wal_end;
        if (idle > c) c = idle;
    } else if (durable > c && durable <= p->last_emitted_end) {
        c = durable;
    }
    return c;
}

static WrStatus send_status(Pipeline *p, bool reply, WrError *err)
{
    Lsn c = confirmable(p);
    if (c > p->confirmed) {
        log_debug("msg=\"confirming\" flush_lsn=" LSN_FMT, LSN_ARGS(c));
        p->confirmed = c;
    }
    p->last_status_us = mono_now_us();
    Lsn written = p->received > p->confirmed ? p->received : p->confirmed;
    return repl_stream_send_status(p->stream, written, p->confirmed, p->confirmed, reply, err);
}

typedef enum {
    FLUSH_ALL,     /* every pending sink */
    FLUSH_IDLE,    /* every pending sink but those holding their batch until it is due */
    FLUSH_WANTING, /* pending sinks whose batch is due */
} FlushMode;

static WrStatus flush_sinks(Pipeline *p, FlushMode mode, WrError *err)
{
    int64_t t = mono_now_us();
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (!s->pending) continue;
        bool ask = mode == FLUSH_WANTING || (mode == FLUSH_IDLE && s->sink->ops->holds_batch_at_idle);
        if (ask && !s->sink->ops->wants_flush(s->sink, t, mode == FLUSH_IDLE)) continue;
        WrStatus st = s->sink->ops->flush(s->sink, err);
        if (st == WR_AGAIN) continue; /* durability will follow (Kafka delivery reports) */
        if (st != WR_OK) return wr_error_prefix(err, "sink %s flush", s->name);
        /* Kafka may still await delivery reports; it stays pending until durable. */
        s->pending = s->sink->ops->durable_lsn(s->sink) < p->last_emitted_end;
    }
    return WR_OK;
}

static WrStatus poll_sinks(Pipeline *p, WrError *err)
{
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (!s->sink->ops->poll) continue;
        WrStatus st = s->sink->ops->poll(s->sink, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
    }
    return WR_OK;
}

static WrStatus handle_copydata(Pipeline *p, PgoParser *parser, const uint8_t *buf, size_t len, WrError *err)
{
    PgoCopyData cd;
    WrStatus st = pgo_parse_copydata(buf, len, &cd, err);
    if (st != WR_OK) return st;
    if (cd.kind == PGO_COPY_KEEPALIVE) {
        if (cd.wal_end > p->server_wal_end) p->server_wal_end = cd.wal_end;
        if (cd.reply_requested) return send_status(p, false, err);
        return WR_OK;
    }
    if (cd.kind != PGO_COPY_XLOGDATA) return WR_OK;
    if (cd.wal_end > p->received) p->received = cd.wal_end;
    PgoMessage msg;
    st = pgo_parse_message(parser, cd.payload, cd.payload_len, &msg, err);
    if (st != WR_OK) return wr_error_prefix(err, "at " LSN_FMT, LSN_ARGS(cd.wal_start));
    st = assembler_handle(p->asm_, &msg, err);
    if (st == WR_OK && p->backfill && msg.type == PGO_MSG_MESSAGE)
        st = backfill_on_message(p->backfill, &msg.u.message, err);
    if (st != WR_OK && st != WR_RETRY)
        wr_error_prefix(err, "%s at " LSN_FMT, pgo_message_type_name(msg.type), LSN_ARGS(cd.wal_start));
    return st;
}

static void report_status(Pipeline *p, int64_t t)
{
    AssemblerStats as;
    assembler_stats(p->asm_, &as);
    notify_status("revision %lld, confirmed %X/%X", (long long)assembler_last_revision_id(p->asm_),
                  LSN_ARGS(p->confirmed));
    if (t - p->last_stats_us >= 10 * 1000000LL) {
        log_info("msg=\"progress\" revision=%lld changes=%llu confirmed=" LSN_FMT
                 " cache_hits=%llu lookups=%llu prefetched=%llu cache_bytes=%zu",
                 (long long)assembler_last_revision_id(p->asm_), (unsigned long long)p->changes_total,
                 LSN_ARGS(p->confirmed), (unsigned long long)as.cache_hits,
                 (unsigned long long)as.lookups, (unsigned long long)as.prefetched, as.cache_bytes);
        p->last_stats_us = t;
    }
}

/*
 * The next message to handle: the read-ahead queue's, else the socket's. A
 * message from the socket brings everything else the socket already holds
 * into the queue (up to the limits), and the old images those messages need
 * are fetched in one statement per table before any is handled. A failure
 * while reading ahead waits until the messages before it are handled.
 */
static WrStatus next_message(Pipeline *p, const PgoParser *parser, const uint8_t **buf, size_t *len, WrError *err)
{
    if (readahead_pop(p->ahead, buf, len)) return WR_OK;
    if (p->ahead_status != WR_OK) {
        WrStatus st = p->ahead_status;
        *err = p->ahead_err;
        p->ahead_status = WR_OK;
        return st;
    }
    WrStatus st = repl_stream_receive(p->stream, 0, buf, len, err);
    if (st == WR_AGAIN) {
        /* Idle: make what was received durable (a sink holding its batch once
         * its window has passed), then wait; briefly while a batch is held. */
        if (!assembler_in_transaction(p->asm_)) {
            st = flush_sinks(p, FLUSH_IDLE, err);
            if (st != WR_OK) return st;
        }
        st = poll_sinks(p, err);
        if (st != WR_OK) return st;
        bool held = false;
        for (int i = 0; i < p->nsinks; i++) held = held || (p->sinks[i].pending && p->sinks[i].sink->ops->holds_batch_at_idle);
        st = repl_stream_receive(p->stream, held ? 2 : 50, buf, len, err);
    }
    Sink *history = p->history_index >= 0 ? p->sinks[p->history_index].sink : NULL;
    if (st != WR_OK || !history || !history->ops->prefetch_rows) return st;

    readahead_push(p->ahead, *buf, *len);
    while (readahead_count(p->ahead) < READ_AHEAD_MAX_MESSAGES && readahead_bytes(p->ahead) < READ_AHEAD_MAX_BYTES) {
        st = repl_stream_receive(p->stream, 0, buf, len, &p->ahead_err);
        if (st == WR_AGAIN) break;
        if (st != WR_OK) {
            p->ahead_status = st;
            break;
        }
        readahead_push(p->ahead, *buf, *len);
    }
    if (readahead_count(p->ahead) > 1) {
        size_t fetched = 0;
        int64_t t0 = mono_now_us();
        st = prefetch_old_images(p->ahead, parser, p->asm_, history, &fetched, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink history: reading old images ahead");
        p->prefetched_keys += fetched;
        if (fetched)
            log_debug("msg=\"old images read ahead\" messages=%zu keys=%zu ms=%.1f", readahead_count(p->ahead), fetched,
                      (double)(mono_now_us() - t0) / 1000.0);
    }
    readahead_pop(p->ahead, buf, len);
    return WR_OK;
}

/* One session: open sinks, stream until stop, error or end. */
static WrStatus run_session(Pipeline *p, bool *stopped, WrError *err)
{
    const Config *cfg = p->cfg;
    WrStatus st = create_sinks(p, err);
    if (st != WR_OK) return st;

    /* Start where the least advanced sink stands. A sink that holds nothing
     * yet (just added) joins at that point: it cannot get revisions the slot
     * no longer has, and must not drag the others' revision ids back. */
    int min_i = -1;
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        memset(&s->pos, 0, sizeof(s->pos));
        st = s->sink->ops->open(s->sink, &s->pos, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", s->name);
        bool empty = s->pos.durable_end_lsn == 0 && s->pos.last_revision_id == 0;
        if (s->pos.known && !empty &&
            (min_i < 0 || s->pos.durable_end_lsn < p->sinks[min_i].pos.durable_end_lsn))
            min_i = i;
    }
    for (int i = 0; i < p->nsinks; i++) {
        SinkSlot *s = &p->sinks[i];
        if (min_i >= 0 && s->pos.known && s->pos.durable_end_lsn == 0 && s->pos.last_revision_id == 0)
            log_info("msg=\"new sink joins at the current position\" sink=%s lsn=" LSN_FMT " after_revision=%lld",
                     s->name, LSN_ARGS(p->sinks[min_i].pos.durable_end_lsn),
                     (long long)p->sinks[min_i].pos.last_revision_id);
    }
    Lsn start = 0;
    int64_t last_id = 0;
    uint8_t last_sum[WALREV_CHECKSUM_LEN] = {0};
    if (min_i >= 0) {
        start = p->sinks[min_i].pos.durable_end_lsn;
        last_id = p->sinks[min_i].pos.last_revision_id;
        memcpy(last_sum, p->sinks[min_i].pos.last_checksum, sizeof(last_sum));
    }

    AssemblerConfig acfg = {.rules = cfg->tracking, .row_cache_bytes = cfg->row_cache_bytes};
    AssemblerOutput out = {p, out_relation, out_begin, out_context, out_delta, out_commit, out_lookup,
                           out_primary_key};
    p->asm_ = assembler_create(&acfg, &out);
    assembler_set_position(p->asm_, last_id, last_sum, start);
    p->ahead = readahead_create();
    p->ahead_status = WR_OK;
    st = restore_relations(p, err);
    if (st != WR_OK) return st;
    /* Backfill state and progress live in the history store: without it, no backfill. */
    if (p->history_index >= 0) {
        BackfillOutput bout = {p, out_backfill_progress};
        p->backfill = backfill_create(cfg, p->asm_, &bout);
    }

    st = repl_stream_connect(cfg->source_conninfo, &p->stream, err);
    if (st != WR_OK) return wr_error_prefix(err, "source");
    ReplSystemInfo sys;
    st = repl_stream_identify(p->stream, &sys, err);
    if (st != WR_OK) return wr_error_prefix(err, "source");
    st = repl_stream_start(p->stream, cfg->slot_name, start, 1, cfg->publication, NULL, err);
    if (st != WR_OK) return wr_error_prefix(err, "source");
    p->confirmed = start;
    p->received = start;
    p->server_wal_end = 0;
    p->last_emitted_end = start;
    log_info("msg=\"streaming\" slot=%s start_lsn=" LSN_FMT " last_revision=%lld server_lsn=" LSN_FMT,
             cfg->slot_name, LSN_ARGS(start), (long long)last_id, LSN_ARGS(sys.xlogpos));
    notify_ready();

    PgoParser parser;
    pgo_parser_init(&parser, 1, false);
    uint64_t watchdog_us = notify_watchdog_interval_us();
    int status_ms = cfg->status_interval_ms > 0 ? cfg->status_interval_ms : 1000;

    for (;;) {
        if (pipeline_stop_requested) {
            *stopped = true;
            break;
        }
        const uint8_t *buf;
        size_t len;
        st = next_message(p, &parser, &buf, &len, err);
        if (st == WR_OK) {
            st = handle_copydata(p, &parser, buf, len, err);
            if (st != WR_OK) return st;
            st = flush_sinks(p, FLUSH_WANTING, err);
            if (st != WR_OK) return st;
        } else if (st == WR_DONE) {
            log_info("msg=\"server ended the stream\"");
            return wr_error_set(err, WR_RETRY, "server ended replication");
        } else if (st != WR_AGAIN) {
            return wr_error_prefix(err, "source");
        }
        /* Chunks are read only between transactions: a delta handled before
         * the read could otherwise not be checked against its snapshot. */
        if (p->backfill && !assembler_in_transaction(p->asm_)) {
            st = backfill_step(p->backfill, err);
            if (st != WR_OK) return st;
        }

        int64_t t = mono_now_us();
        if (t - p->last_status_us >= (int64_t)status_ms * 1000) {
            st = poll_sinks(p, err);
            if (st != WR_OK) return st;
            st = send_status(p, false, err);
            if (st != WR_OK) return st;
            report_status(p, t);
        }
        if (watchdog_us && (uint64_t)(t - p->last_watchdog_us) >= watchdog_us / 2) {
            notify_watchdog();
            p->last_watchdog_us = t;
        }
        if (cfg->stop_lsn && !assembler_in_transaction(p->asm_)) {
            Lsn c = confirmable(p);
            if (c >= cfg->stop_lsn) {
                st = send_status(p, false, err);
                if (st != WR_OK) return st;
                log_info("msg=\"stop position reached\" stop_lsn=" LSN_FMT " confirmed=" LSN_FMT,
                         LSN_ARGS(cfg->stop_lsn), LSN_ARGS(p->confirmed));
                *stopped = true;
                break;
            }
        }
    }

    /* Clean stop: the revision in flight is abandoned (the server resends it);
     * everything complete is made durable and confirmed. */
    notify_stopping();
    if (assembler_in_transaction(p->asm_)) {
        log_info("msg=\"abandoning revision in flight; it will be resent\"");
        for (int i = 0; i < p->nsinks; i++)
            if (p->sinks[i].sink->ops->abort) p->sinks[i].sink->ops->abort(p->sinks[i].sink);
        assembler_abandon(p->asm_);
        /* abort dropped the open batch too: nothing more is durable than before. */
    } else {
        st = flush_sinks(p, FLUSH_ALL, err);
        if (st != WR_OK) return st;
        /* Wait a while for asynchronous sinks (Kafka) to confirm delivery; what
         * is not confirmed is simply not confirmed to the slot and resent later. */
        for (int i = 0; i < 300 && min_durable(p) < p->last_emitted_end; i++) {
            st = poll_sinks(p, err);
            if (st != WR_OK) return st;
            st = flush_sinks(p, FLUSH_ALL, err);
            if (st != WR_OK) return st;
            usleep(100000);
        }
    }
    st = send_status(p, false, err);
    if (st != WR_OK) return st;
    /* Confirmed past the last revision while settled: the stores may say
     * they are complete through it. */
    if (p->confirmed > p->last_emitted_end && settled(p)) {
        for (int i = 0; i < p->nsinks; i++) {
            Sink *s = p->sinks[i].sink;
            if (!s->ops->record_position) continue;
            st = s->ops->record_position(s, p->confirmed, err);
            if (st != WR_OK) return wr_error_prefix(err, "sink %s", p->sinks[i].name);
        }
    }
    st = repl_stream_finish(p->stream, err);
    if (st != WR_OK) log_warn("msg=\"could not end replication cleanly\" error=\"%s\"", err->msg);
    AssemblerStats as;
    assembler_stats(p->asm_, &as);
    log_info("msg=\"stopped\" confirmed=" LSN_FMT " last_revision=%lld changes=%llu cache_hits=%llu lookups=%llu"
             " prefetched=%llu prefetch_asked=%llu",
             LSN_ARGS(p->confirmed), (long long)assembler_last_revision_id(p->asm_),
             (unsigned long long)p->changes_total, (unsigned long long)as.cache_hits,
             (unsigned long long)as.lookups, (unsigned long long)as.prefetched,
             (unsigned long long)p->prefetched_keys);
    return WR_OK;
}

static void teardown(Pipeline *p, bool abort_pending)
{
    backfill_destroy(p->backfill);
    p->backfill = NULL;
    repl_stream_destroy(p->stream);
    p->stream = NULL;
    PQfinish(p->catalog);
    p->catalog = NULL;
    destroy_sinks(p, abort_pending);
    assembler_destroy(p->asm_);
    p->asm_ = NULL;
    readahead_destroy(p->ahead);
    p->ahead = NULL;
}

static void teardown(Pipeline *p, bool abort_pending);

/* ---- slot creation and baseline ---- */

typedef struct {
    int64_t rows;
    int64_t estimate;
    int64_t started_us;
    int64_t last_us;
    bool tty;
} Progress;

static void progress_show(Progress *pr, bool final)
{
    int64_t t = mono_now_us();
    if (!final && t - pr->last_us < (pr->tty ? 200000 : 10000000)) return;
    pr->last_us = t;
    double secs = (double)(t - pr->started_us) / 1e6;
    double rate = secs > 0 ? (double)pr->rows / secs : 0;
    char eta[32] = "?";
    if (pr->estimate > pr->rows && rate > 0)
        snprintf(eta, sizeof(eta), "%.0fs", (double)(pr->estimate - pr->rows) / rate);
    if (pr->tty) {
        fprintf(stderr, "\rbaseline: %lld of ~%lld rows, %.0f rows/s, eta %s   %s", (long long)pr->rows,
                (long long)pr->estimate, rate, final ? "0s" : eta, final ? "\n" : "");
        fflush(stderr);
    } else {
        log_info("msg=\"baseline progress\" rows=%lld estimate=%lld rate=%.0f eta=%s", (long long)pr->rows,
                 (long long)pr->estimate, rate, final ? "0s" : eta);
    }
}

static WrStatus sql_ok(PGconn *c, PGresult *r, ExecStatusType want, const char *what, WrError *err)
{
    if (PQresultStatus(r) == want) return WR_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return wr_error_set(err, (state && strncmp(state, "08", 2) == 0) || PQstatus(c) != CONNECTION_OK ? WR_RETRY : WR_FATAL,
                        "%s: %s", what, PQerrorMessage(c));
}

/* One table: describe it as pgoutput would, then COPY its rows in the snapshot. */
static WrStatus baseline_table(Pipeline *p, PGconn *c, const char *oid, Progress *pr, WrError *err)
{
    BackfillTable t;
    bool found = false;
    WrStatus st = backfill_table_describe(c, (uint32_t)strtoul(oid, NULL, 10), &t, &found, err);
    if (st != WR_OK) return wr_error_prefix(err, "baseline");
    if (!found) return WR_OK;
    int n = t.ncols;
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "COPY (SELECT %s FROM ONLY %s", t.select_list, t.qualified);
    if (t.rowfilter) strbuf_appendf(&sql, " WHERE %s", t.rowfilter);
    strbuf_append_str(&sql, ") TO STDOUT");
    const RelationVersion *rv = NULL;
    int64_t rows_before = pr->rows;
    st = assembler_baseline_relation(p->asm_, (uint32_t)strtoul(oid, NULL, 10), t.nspname, t.relname,
                                     t.replident, (uint16_t)n, t.cols, t.attnums, &rv, err);
    if (st != WR_OK) goto out;
    log_info("msg=\"baseline table\" table=%s.%s", rv->nspname, rv->relname);

    PGresult *cr = PQexec(c, sql.data);
    st = sql_ok(c, cr, PGRES_COPY_OUT, "baseline: COPY", err);
    PQclear(cr);
    if (st != WR_OK) goto out;
    Value *vals = xcalloc((size_t)n, sizeof(Value));
    char *row;
    int len;
    while ((len = PQgetCopyData(c, &row, 0)) > 0) {
        /* one row, tab-separated, newline-terminated; \N is NULL */
        int col = 0;
        char *f = row, *end = row + len - 1;
        for (char *q = row; q <= end && col < n; q++) {
            if (q == end || *q == '\t') {
                size_t flen = (size_t)(q - f);
                if (flen == 2 && f[0] == '\\' && f[1] == 'N') {
                    vals[col].data = NULL;
                    vals[col].len = 0;
                } else {
                    vals[col].data = f;
                    vals[col].len = copy_text_unescape(f, flen);
                }
                col++;
                f = q + 1;
            }
        }
        if (col != n) {
            PQfreemem(row);
            free(vals);
            st = wr_error_set(err, WR_PROTOCOL, "baseline: COPY row of %s.%s has %d fields, expected %d",
                              rv->nspname, rv->relname, col, n);
            goto out;
        }
        st = assembler_baseline_row(p->asm_, rv, vals, err);
        PQfreemem(row);
        if (st != WR_OK) {
            free(vals);
            goto out;
        }
        pr->rows++;
        progress_show(pr, false);
        /* Bounded memory: let sinks send full buffers as the baseline streams. */
        for (int i = 0; i < p->nsinks; i++) p->sinks[i].pending = true;
    }
    free(vals);
    if (len == -2) {
        st = wr_error_set(err, WR_RETRY, "baseline: COPY failed: %s", PQerrorMessage(c));
        goto out;
    }
    cr = PQgetResult(c);
    st = sql_ok(c, cr, PGRES_COMMAND_OK, "baseline: COPY", err);
    PQclear(cr);
    while ((cr = PQgetResult(c))) PQclear(cr);
    if (st == WR_OK) {
        /* Recorded in the same revision: the worker never takes this table's baseline again. */
        BackfillProgress bp = {.relid = rv->relid, .nspname = rv->nspname, .relname = rv->relname,
                               .state = "done", .rows_read = pr->rows - rows_before,
                               .rows_recorded = pr->rows - rows_before};
        st = out_backfill_progress(p, &bp, err);
    }
out:
    strbuf_free(&sql);
    backfill_table_free(&t);
    return st;
}

static WrStatus take_baseline(Pipeline *p, const char *snapshot, Lsn cp, WrError *err)
{
    const Config *cfg = p->cfg;
    PGconn *c = PQconnectdb(cfg->source_conninfo);
    WrStatus st = WR_OK;
    PGresult *r = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        st = wr_error_set(err, WR_RETRY, "baseline: source: %s", PQerrorMessage(c));
        goto done;
    }
    char *pub = PQescapeLiteral(c, cfg->publication, strlen(cfg->publication));
    char *snap = PQescapeLiteral(c, snapshot, strlen(snapshot));
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql,
                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT %s; "
                   "SELECT set_config('walrev.publication', %s, true)",
                   snap, pub);
    PQfreemem(pub);
    PQfreemem(snap);
    r = PQexec(c, sql.data);
    strbuf_free(&sql);
    st = sql_ok(c, r, PGRES_TUPLES_OK, "baseline: using the slot's snapshot", err);
    PQclear(r);
    r = NULL;
    if (st != WR_OK) goto done;
    r = PQexec(c, "SELECT c.oid, greatest(c.reltuples, 0)::bigint FROM pg_publication_tables pt "
                  "JOIN pg_namespace n ON n.nspname = pt.schemaname "
                  "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
                  "WHERE pt.pubname = current_setting('walrev.publication') ORDER BY pt.schemaname, pt.tablename");
    st = sql_ok(c, r, PGRES_TUPLES_OK, "baseline: listing published tables", err);
    if (st != WR_OK) goto done;

    Progress pr = {.started_us = mono_now_us(), .tty = isatty(2) != 0};
    for (int i = 0; i < PQntuples(r); i++) pr.estimate += atoll(PQgetvalue(r, i, 1));
    char ctx[160];
    snprintf(ctx, sizeof(ctx),
             "{\"actor\":{\"type\":\"walrev\",\"id\":\"baseline\"},\"description\":\"baseline of existing rows\"}");
    st = assembler_baseline_begin(p->asm_, cp, pg_now_us(), ctx, err);
    for (int i = 0; st == WR_OK && i < PQntuples(r); i++) {
        st = baseline_table(p, c, PQgetvalue(r, i, 0), &pr, err);
        if (st == WR_OK) st = flush_sinks(p, FLUSH_WANTING, err);
    }
    if (st == WR_OK) st = assembler_baseline_commit(p->asm_, err);
    if (st == WR_OK) st = flush_sinks(p, FLUSH_ALL, err);
    /* setup exits next: wait until every sink holds the baseline (Kafka
     * confirms through delivery reports), or fail rather than claim it. */
    for (int i = 0; st == WR_OK && min_durable(p) < cp; i++) {
        if (i >= 600) {
            st = wr_error_set(err, WR_RETRY, "baseline: a sink did not confirm it within 60 s");
            break;
        }
        usleep(100000);
        st = poll_sinks(p, err);
        if (st == WR_OK) st = flush_sinks(p, FLUSH_ALL, err);
    }
    if (st == WR_OK) {
        progress_show(&pr, true);
        log_info("msg=\"baseline recorded\" rows=%lld tables=%d lsn=" LSN_FMT, (long long)pr.rows, PQntuples(r),
                 LSN_ARGS(cp));
    }
done:
    PQclear(r);
    PQfinish(c);
    return st;
}

static WrStatus drop_slot(const Config *cfg, WrError *err)
{
    PGconn *c = PQconnectdb(cfg->source_conninfo);
    WrStatus st = WR_OK;
    if (PQstatus(c) != CONNECTION_OK) {
        st = wr_error_set(err, WR_RETRY, "source: %s", PQerrorMessage(c));
    } else {
        const char *params[1] = {cfg->slot_name};
        PGresult *r = PQexecParams(c, "SELECT pg_drop_replication_slot($1)", 1, NULL, params, NULL, NULL, 0);
        st = sql_ok(c, r, PGRES_TUPLES_OK, "dropping the slot of an interrupted baseline", err);
        PQclear(r);
    }
    PQfinish(c);
    return st;
}

static WrStatus create_slot_session(Pipeline *p, bool baseline, bool *created, WrError *err)
{
    const Config *cfg = p->cfg;
    *created = false;
    WrStatus st = create_sinks(p, err);
    if (st != WR_OK) return st;
    SinkPosition hist = {0};
    for (int i = 0; i < p->nsinks; i++) {
        st = p->sinks[i].sink->ops->open(p->sinks[i].sink, &p->sinks[i].pos, err);
        if (st != WR_OK) return wr_error_prefix(err, "sink %s", p->sinks[i].name);
        if (i == p->history_index) hist = p->sinks[i].pos;
    }
    AssemblerConfig acfg = {.rules = cfg->tracking, .row_cache_bytes = cfg->row_cache_bytes};
    AssemblerOutput out = {p, out_relation, out_begin, out_context, out_delta, out_commit, NULL, NULL};
    p->asm_ = assembler_create(&acfg, &out);
    uint8_t zero[WALREV_CHECKSUM_LEN] = {0};
    assembler_set_position(p->asm_, hist.last_revision_id, hist.known ? hist.last_checksum : zero, 0);

    for (int attempt = 0; attempt < 2; attempt++) {
        st = repl_stream_connect(cfg->source_conninfo, &p->stream, err);
        if (st != WR_OK) return wr_error_prefix(err, "source");
        Lsn cp = 0;
        char snapshot[128] = "";
        bool exists = false;
        st = repl_stream_create_slot(p->stream, cfg->slot_name, baseline, &cp, snapshot, sizeof(snapshot), &exists,
                                     err);
        if (st != WR_OK) return wr_error_prefix(err, "source");
        if (!exists) {
            *created = true;
            log_info("msg=\"slot created\" slot=%s consistent_point=" LSN_FMT, cfg->slot_name, LSN_ARGS(cp));
            /* The snapshot lives while this connection stays idle: copy now. */
            return baseline ? take_baseline(p, snapshot, cp, err) : WR_OK;
        }
        bool has_history = p->history_index >= 0 && hist.known && hist.durable_end_lsn > 0;
        if (!baseline || has_history || p->history_index < 0 || attempt > 0) {
            log_info("msg=\"slot exists\" slot=%s", cfg->slot_name);
            return WR_OK;
        }
        log_warn("msg=\"the slot exists but the history store holds no baseline: a previous baseline was "
                 "interrupted; dropping the slot and taking it again\" slot=%s",
                 cfg->slot_name);
        repl_stream_destroy(p->stream);
        p->stream = NULL;
        st = drop_slot(cfg, err);
        if (st != WR_OK) return st;
    }
    return WR_OK;
}

int pipeline_create_slot(const Config *cfg, bool baseline, bool *created)
{
    Pipeline p;
    memset(&p, 0, sizeof(p));
    p.cfg = cfg;
    WrError err = {0};
    WrStatus st = create_slot_session(&p, baseline, created, &err);
    teardown(&p, st != WR_OK);
    if (st != WR_OK) {
        log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(st));
        return 1;
    }
    return 0;
}

int pipeline_run(const Config *cfg)
{
    Pipeline p;
    memset(&p, 0, sizeof(p));
    p.cfg = cfg;
    int backoff_ms = 500;
    for (;;) {
        WrError err = {0};
        bool stopped = false;
        WrStatus st = run_session(&p, &stopped, &err);
        teardown(&p, st != WR_OK);
        if (st == WR_OK && stopped) return 0;
        if (st != WR_RETRY) {
            log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(st));
            notify_stopping();
            return 1;
        }
        if (pipeline_stop_requested) return 0;
        log_warn("msg=\"%s; retrying\" backoff_ms=%d", err.msg, backoff_ms);
        notify_status("retrying: %s", err.msg);
        for (int waited = 0; waited < backoff_ms && !pipeline_stop_requested; waited += 100) usleep(100000);
        if (pipeline_stop_requested) return 0;
        backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
    }
}
