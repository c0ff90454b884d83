/*
 * kafka_sink.c — streams revisions to Kafka as msgpack (docs/kafka-format.md)
 * through one idempotent librdkafka producer. A bounded FIFO of revisions in
 * flight counts each revision's undelivered messages; the durable LSN moves
 * only over a prefix of revisions whose every message was acknowledged.
 * Never advances on produce() alone; never drops a message to make room.
 */
#include "sink/kafka_sink.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/props.h"
#include "sink/msgpack_codec.h"
#include "sink/revision_encoder.h"

#define FIFO_CAP 65536u  /* revisions in flight at most (power of two) */
#define WAIT_POLL_MS 100 /* poll slice while waiting for room */
#define WAIT_LOG_EVERY_US INT64_C(10000000)
#define KAFKA_TOPIC_MAX 249
#define CONTENT_TYPE "application/x-msgpack"

typedef struct {
    Lsn end_lsn;          /* set at commit */
    uint32_t outstanding; /* messages produced and not yet reported */
    bool committed;       /* all its deltas are produced, its revision message encoded */
    bool aborted;         /* abandoned mid-way: never moves the durable LSN */
    bool failed;          /* a delivery failed: the durable LSN stops before it */
    bool marker_out;      /* its revision message is produced */
    char *marker;         /* the encoded revision message until it is produced (owned) */
    size_t marker_len;
    char id[MPC_ID_MAX];
} InFlight;

typedef struct {
    uint32_t relid;
    int32_t version;
    rd_kafka_topic_t *rkt;
} TopicEntry;

typedef struct {
    rd_kafka_t *rk;
    char *prefix;
    /* For reading the position back at open (a consumer of its own). */
    char *brokers;
    WrProp *props;
    int nprops;
    char *erase_schema; /* NULL: no tombstones */
    int flush_timeout_ms;
    bool (*while_waiting)(void *arg);
    void *while_waiting_arg;
    rd_kafka_topic_t *rev_topic;
    TopicEntry *topics;
    size_t ntopics, captopics;
    /* FIFO of revisions by sequence number; entry of seq s is fifo[s % FIFO_CAP]. */
    InFlight *fifo;
    uint64_t head, tail; /* [head, tail) are in flight; tail-1 is the open one when in_revision */
    uint64_t mark;       /* [head, mark): revision messages produced (or aborted); mark <= tail */
    bool in_revision;
    Lsn durable;
    RevisionEncoder enc; /* the revision being produced, the message to produce, the sticky failure */
    KafkaSinkStats stats;
    rd_kafka_resp_err_t last_err; /* error_cb de-duplication */
    int64_t last_err_us;
} KafkaSink;

/* Record the first failure (a fatal one replaces a retriable one) and log it, once. */
static void set_failed(KafkaSink *k, WrStatus st, const char *fmt, ...) WR_PRINTF(3, 4);
static void set_failed(KafkaSink *k, WrStatus st, const char *fmt, ...)
{
    char msg[sizeof(((WrError *)0)->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (revenc_fail(&k->enc, st, "%s", msg))
        log_error("msg=\"kafka sink failed\" error=\"%s\" status=%s", msg, wr_status_name(st));
}

static bool has_failed(const KafkaSink *k) { return revenc_failure(&k->enc) != WR_OK; }

/* Move the durable LSN over every leading revision that is complete and fully delivered. */
static void advance(KafkaSink *k)
{
    while (k->head < k->tail) {
        InFlight *e = &k->fifo[k->head % FIFO_CAP];
        if (!e->committed || e->outstanding > 0 || e->failed || (!e->aborted && !e->marker_out)) break;
        if (!e->aborted) k->durable = e->end_lsn;
        k->head++;
    }
}

/* ---- librdkafka callbacks (run inside rd_kafka_poll/flush on our thread, except log_cb) ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    KafkaSink *k = opaque;
    uint64_t seq = (uint64_t)(uintptr_t)m->_private;
    if (m->err) {
        k->stats.failed++;
        char fatal[256] = "";
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR)
            set_failed(k, WR_FATAL, "kafka producer fatal error: %s: %s", rd_kafka_err2name(ferr), fatal);
        else if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT || m->err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
                 m->err == RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE)
            set_failed(k, WR_RETRY, "kafka delivery to %s timed out (%s); resend from the durable position",
                       rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        else if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
            set_failed(k, WR_FATAL, "kafka delivery to %s failed permanently: %s: %s", rd_kafka_topic_name(m->rkt),
                       rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));
    } else {
        k->stats.delivered++;
        metrics_sink_add(METRICS_SINK_KAFKA, METRICS_SINK_BYTES, m->len + m->key_len);
    }
    if (seq < k->head || seq >= k->tail) return; /* forgotten by abort() after a failure */
    InFlight *e = &k->fifo[seq % FIFO_CAP];
    if (m->err) e->failed = true;
    e->outstanding--;
    advance(k);
}

static void on_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    KafkaSink *k = opaque;
    rd_kafka_resp_err_t e = (rd_kafka_resp_err_t)code;
    if (e == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256] = "";
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        set_failed(k, WR_FATAL, "kafka producer fatal error: %s: %s", rd_kafka_err2name(ferr), fatal);
        return;
    }
    /* Broker-down errors repeat on every reconnect attempt: say it once per 10 s. */
    int64_t now = mono_now_us();
    if (e == k->last_err && now - k->last_err_us < WAIT_LOG_EVERY_US) {
        log_debug("msg=\"kafka error\" err=%s reason=\"%s\"", rd_kafka_err2name(e), reason);
        return;
    }
    k->last_err = e;
    k->last_err_us = now;
    log_warn("msg=\"kafka error\" reason=\"%s\" err=%s", reason, rd_kafka_err2name(e));
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug */
    /* Connection failures (facility FAIL) are logged at "error" by librdkafka on every attempt while
     * a broker is down; error_cb already reports the outage, so they are warnings here. */
    if (level <= 3 && strcmp(fac, "FAIL") == 0) level = 4;
    LogLevel l = level <= 3   ? LOG_LEVEL_ERROR
                 : level == 4 ? LOG_LEVEL_WARN
                 : level <= 6 ? LOG_LEVEL_INFO
                              : LOG_LEVEL_DEBUG;
    WR_LOG(l, "msg=\"librdkafka: %s\" facility=%s client=%s", buf, fac, rd_kafka_name(rk));
}

/* ---- revision messages, in order, once their deltas are delivered ---- */

/*
 * A revision message goes out only when every delta of its revision has a
 * successful delivery report, and after every earlier revision message (one
 * partition, idempotent producer: in order, no gaps). So a revision message
 * on Kafka means its whole revision is there, and the last one on the
 * revisions topic is the sink's position, read back at open (read_position).
 * Never blocks: a full local queue leaves the rest for the next call.
 */
static void release_markers(KafkaSink *k)
{
    while (k->mark < k->tail) {
        InFlight *e = &k->fifo[k->mark % FIFO_CAP];
        if (!e->committed) break;
        if (e->aborted) {
            free(e->marker);
            e->marker = NULL;
            k->mark++;
            continue;
        }
        if (e->failed || e->outstanding > 0 || has_failed(k)) break;
        rd_kafka_resp_err_t r = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(k->rev_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(e->marker, e->marker_len), RD_KAFKA_V_KEY(k->prefix, strlen(k->prefix)),
            RD_KAFKA_V_HEADER("content-type", CONTENT_TYPE, (ssize_t)strlen(CONTENT_TYPE)),
            RD_KAFKA_V_HEADER("walrev-format", "1", 1), RD_KAFKA_V_HEADER("walrev-id", e->id, (ssize_t)strlen(e->id)),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)k->mark), RD_KAFKA_V_END);
        if (r == RD_KAFKA_RESP_ERR__QUEUE_FULL) break; /* the next poll tries again */
        if (r != RD_KAFKA_RESP_ERR_NO_ERROR) {
            set_failed(k, WR_FATAL, "kafka sink: could not produce revision message %s to %s: %s", e->id,
                       rd_kafka_topic_name(k->rev_topic), rd_kafka_err2str(r));
            break;
        }
        e->outstanding++;
        e->marker_out = true;
        k->stats.produced++;
        free(e->marker);
        e->marker = NULL;
        k->mark++;
    }
    advance(k);
}

/* Serve delivery reports for up to ms, then send the revision messages they released. */
static void kpoll(KafkaSink *k, int ms)
{
    rd_kafka_poll(k->rk, ms);
    release_markers(k);
}

/* ---- helpers ---- */

/* Poll until cond(k) holds or the sink fails; logs while it waits (backpressure). */
static WrStatus wait_for(KafkaSink *k, bool (*cond)(KafkaSink *), const char *what, WrError *err)
{
    int64_t start = mono_now_us(), last_log = 0;
    while (!cond(k)) {
        if (revenc_check(&k->enc, err) != WR_OK) return err->status;
        int64_t now = mono_now_us();
        if (now - (last_log ? last_log : start) >= (last_log ? WAIT_LOG_EVERY_US : 1000000)) {
            log_warn("msg=\"kafka sink waiting: %s\" waited_ms=%" PRId64 " undelivered=%d", what, (now - start) / 1000,
                     rd_kafka_outq_len(k->rk));
            last_log = now;
        }
        kpoll(k, WAIT_POLL_MS);
        if (k->while_waiting && !k->while_waiting(k->while_waiting_arg))
            return wr_error_set(err, WR_RETRY, "kafka sink: gave up waiting (%s): stopping", what);
    }
    if (last_log) log_info("msg=\"kafka sink resumed: %s\" waited_ms=%" PRId64, what, (mono_now_us() - start) / 1000);
    return revenc_check(&k->enc, err);
}

static bool fifo_has_room(KafkaSink *k) { return k->tail - k->head < FIFO_CAP; }

static WrStatus produce_value(KafkaSink *k, rd_kafka_topic_t *rkt, const char *key, size_t keylen, const char *id,
                              bool tombstone, WrError *err);

static WrStatus produce(KafkaSink *k, rd_kafka_topic_t *rkt, const char *key, size_t keylen, const char *id,
                        WrError *err)
{
    return produce_value(k, rkt, key, keylen, id, false, err);
}

/* tombstone: a null value (the message just encoded unused), which a compacted topic keeps only until it drops the key. */
static WrStatus produce_value(KafkaSink *k, rd_kafka_topic_t *rkt, const char *key, size_t keylen, const char *id,
                              bool tombstone, WrError *err)
{
    uint64_t seq = k->tail - 1;
    int64_t waiting_since = 0, last_log = 0;
    /* RD_KAFKA_V_KEY casts its argument to void * (librdkafka only reads and
     * copies the key): const dropped here through uintptr_t, once, so
     * -Wcast-qual stays on for everything else. */
    void *key_arg = (void *)(uintptr_t)key;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(tombstone ? NULL : k->enc.msg.data, tombstone ? 0 : k->enc.msg.len),
            RD_KAFKA_V_KEY(key_arg, keylen),
            RD_KAFKA_V_HEADER("content-type", CONTENT_TYPE, (ssize_t)strlen(CONTENT_TYPE)),
            RD_KAFKA_V_HEADER("walrev-format", "1", 1), RD_KAFKA_V_HEADER("walrev-id", id, (ssize_t)strlen(id)),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            k->fifo[seq % FIFO_CAP].outstanding++;
            k->stats.produced++;
            if (last_log)
                log_info("msg=\"kafka sink resumed: local queue has room again\" waited_ms=%" PRId64,
                         (mono_now_us() - waiting_since) / 1000);
            return WR_OK;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Too large, unknown partition, fatal producer: resending the same bytes cannot help. */
            return wr_error_set(err, WR_FATAL, "kafka sink: could not produce message %s to %s: %s", id,
                                rd_kafka_topic_name(rkt), rd_kafka_err2str(e));
        }
        /* Backpressure: the bounded local queue is full; serve delivery reports until it drains. */
        k->stats.queue_full_waits++;
        int64_t now = mono_now_us();
        if (!waiting_since) waiting_since = now;
        if (now - (last_log ? last_log : waiting_since) >= (last_log ? WAIT_LOG_EVERY_US : 1000000)) {
            log_warn("msg=\"kafka sink waiting: local queue full, brokers slow or down\" waited_ms=%" PRId64
                     " undelivered=%d",
                     (now - waiting_since) / 1000, rd_kafka_outq_len(k->rk));
            last_log = now;
        }
        kpoll(k, WAIT_POLL_MS);
        if (revenc_check(&k->enc, err) != WR_OK) return err->status;
        if (k->while_waiting && !k->while_waiting(k->while_waiting_arg))
            return wr_error_set(err, WR_RETRY, "kafka sink: gave up waiting for room in the local queue: stopping");
    }
}

/* Kafka topic names allow [A-Za-z0-9._-]; anything else becomes '_' (docs/kafka-format.md). */
static void append_topic_part(StrBuf *b, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        strbuf_append_char(b, ok ? c : '_');
    }
}

static WrStatus topic_for(KafkaSink *k, const RelationVersion *rv, rd_kafka_topic_t **out, WrError *err)
{
    for (size_t i = k->ntopics; i-- > 0;) {
        if (k->topics[i].relid == rv->relid && k->topics[i].version == rv->version) {
            *out = k->topics[i].rkt;
            return WR_OK;
        }
    }
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.", k->prefix);
    append_topic_part(&name, rv->nspname);
    strbuf_append_char(&name, '.');
    append_topic_part(&name, rv->relname);
    WrStatus st = WR_OK;
    if (name.len > KAFKA_TOPIC_MAX) {
        st = wr_error_set(err, WR_INVALID, "kafka sink: topic name for table %s.%s is %zu characters, over Kafka's %d",
                          rv->nspname, rv->relname, name.len, KAFKA_TOPIC_MAX);
        goto done;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, name.data, NULL);
    if (!rkt) {
        st = wr_error_set(err, WR_FATAL, "kafka sink: could not create topic handle %s: %s", name.data,
                          rd_kafka_err2str(rd_kafka_last_error()));
        goto done;
    }
    if (k->ntopics == k->captopics) {
        k->captopics = k->captopics ? 2 * k->captopics : 16;
        k->topics = xrealloc(k->topics, k->captopics * sizeof *k->topics);
    }
    k->topics[k->ntopics++] = (TopicEntry){rv->relid, rv->version, rkt};
    *out = rkt;
done:
    strbuf_free(&name);
    return st;
}

/* ---- SinkOps ---- */

static WrStatus conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, WrError *err);

/* Properties that say how to reach and authenticate to the brokers: the
 * position reader takes these from the config, not producer tuning. */
static bool connection_prop(const char *name)
{
    static const char *const prefixes[] = {
        "bootstrap.servers", "metadata.broker.list", "security.",   "sasl.",      "ssl.",       "ssl_",       "socket.",
        "broker.",           "reconnect.",           "api.version", "client.dns", "enable.ssl", "enable.sasl"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return false;
}

/* From one revision message (its JSON view): id, end LSN, checksum. False when it is not one. */
static bool position_from_message(json_t *j, SinkPosition *pos)
{
    json_t *type = json_object_get(j, "type"), *rev = json_object_get(j, "revision");
    json_t *id = rev ? json_object_get(rev, "id") : NULL, *end = rev ? json_object_get(rev, "end_lsn") : NULL;
    json_t *sum = json_object_get(j, "checksum");
    if (!json_is_string(type) || strcmp(json_string_value(type), "revision") != 0 || !json_is_integer(id) ||
        !json_is_string(end) || !json_is_string(sum))
        return false;
    Lsn lsn;
    const char *hex = json_string_value(sum);
    if (!lsn_parse(json_string_value(end), &lsn) || strncmp(hex, "\\x", 2) != 0 ||
        strlen(hex) != 2 + 2 * WALREV_CHECKSUM_LEN)
        return false;
    for (int i = 0; i < WALREV_CHECKSUM_LEN; i++)
        if (sscanf(hex + 2 + 2 * i, "%2hhx", &pos->last_checksum[i]) != 1) return false;
    pos->durable_end_lsn = lsn;
    pos->last_revision_id = (int64_t)json_integer_value(id);
    return true;
}

/*
 * What Kafka holds: the last revision message on <prefix>.revisions (of
 * every partition it has, the one with the greatest end LSN). Revision
 * messages go out only after their deltas are delivered and in commit order
 * (release_markers), so every revision up to it is whole on Kafka and none
 * after it has its revision message there. An empty or missing topic holds
 * nothing. WR_RETRY when the brokers cannot be reached in time.
 */
static WrStatus read_position(KafkaSink *k, SinkPosition *pos, WrError *err)
{
    const int timeout_ms = k->flush_timeout_ms;
    char errstr[512], topic[256];
    snprintf(topic, sizeof topic, "%s.revisions", k->prefix);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    WrStatus st = WR_OK;
    if (k->brokers) st = conf_set(conf, "bootstrap.servers", k->brokers, err);
    for (int i = 0; i < k->nprops && st == WR_OK; i++)
        if (connection_prop(k->props[i].name)) st = conf_set(conf, k->props[i].name, k->props[i].value, err);
    if (st == WR_OK) st = conf_set(conf, "group.id", "walrev-position-reader", err);
    if (st == WR_OK) st = conf_set(conf, "enable.auto.commit", "false", err);
    if (st == WR_OK) st = conf_set(conf, "enable.partition.eof", "true", err);
    if (st == WR_OK) st = conf_set(conf, "client.id", "walrev-position", err);
    if (st != WR_OK) {
        rd_kafka_conf_destroy(conf);
        return st;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return wr_error_set(err, WR_FATAL, "kafka sink: position reader: %s", errstr);
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_partition_list_t *tail = rd_kafka_topic_partition_list_new(4);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st =
            wr_error_set(err, WR_RETRY, "kafka sink: cannot read its position from %s: %s", topic, rd_kafka_err2str(e));
        goto done;
    }
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        goto done; /* no topic yet: holds nothing */
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = wr_error_set(err, WR_RETRY, "kafka sink: cannot read its position from %s: %s", topic,
                          rd_kafka_err2str(md->topics[0].err));
        goto done;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t part = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(rk, topic, part, &lo, &hi, timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            st = wr_error_set(err, WR_RETRY, "kafka sink: cannot read the end of %s[%d]: %s", topic, (int)part,
                              rd_kafka_err2str(e));
            goto done;
        }
        if (hi > lo) rd_kafka_topic_partition_list_add(tail, topic, part)->offset = hi - 1;
    }
    if (tail->cnt == 0) goto done;
    e = rd_kafka_assign(rk, tail);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st = wr_error_set(err, WR_RETRY, "kafka sink: cannot read %s: %s", topic, rd_kafka_err2str(e));
        goto done;
    }
    int answered = 0;
    int64_t deadline = mono_now_us() + (int64_t)timeout_ms * 1000;
    while (answered < tail->cnt && st == WR_OK) {
        if (mono_now_us() > deadline) {
            st = wr_error_set(err, WR_RETRY, "kafka sink: the last message of %s did not arrive in %d ms", topic,
                              timeout_ms);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            answered++;
        } else if (m->err) {
            log_warn("msg=\"kafka sink position reader: %s\" err=%s", rd_kafka_message_errstr(m),
                     rd_kafka_err2name(m->err));
        } else {
            json_t *j = NULL;
            size_t used;
            WrError derr = {0};
            SinkPosition p = {0};
            if (mpc_decode_json(m->payload, m->len, &used, &j, &derr) != WR_OK || !position_from_message(j, &p))
                st = wr_error_set(err, WR_FATAL,
                                  "kafka sink: the last message of %s[%d] at offset %lld is not a walrev revision "
                                  "message: cannot tell what Kafka holds",
                                  topic, (int)m->partition, (long long)m->offset);
            else if (p.durable_end_lsn > pos->durable_end_lsn) {
                pos->durable_end_lsn = p.durable_end_lsn;
                pos->last_revision_id = p.last_revision_id;
                memcpy(pos->last_checksum, p.last_checksum, WALREV_CHECKSUM_LEN);
            }
            json_decref(j);
            /* the EOF that follows counts the partition as answered */
        }
        rd_kafka_message_destroy(m);
    }
done:
    rd_kafka_topic_partition_list_destroy(tail);
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return st;
}

static WrStatus ks_open(Sink *s, SinkPosition *pos, WrError *err)
{
    KafkaSink *k = s->impl;
    memset(pos, 0, sizeof *pos);
    if (revenc_failure(&k->enc) == WR_FATAL) return revenc_check(&k->enc, err);
    WrStatus st = read_position(k, pos, err);
    if (st != WR_OK) return st;
    pos->known = true;
    pos->read_back = true;
    k->durable = pos->durable_end_lsn;
    log_info("msg=\"kafka sink opened\" prefix=%s holds_through=" LSN_FMT " last_revision=%lld", k->prefix,
             LSN_ARGS(pos->durable_end_lsn), (long long)pos->last_revision_id);
    return WR_OK;
}

static WrStatus ks_write_relation(Sink *s, const RelationVersion *rv, WrError *err)
{
    KafkaSink *k = s->impl;
    if (revenc_check(&k->enc, err) != WR_OK) return err->status;
    rd_kafka_topic_t *rkt;
    return topic_for(k, rv, &rkt, err);
}

static WrStatus ks_begin_revision(Sink *s, const Revision *rev, WrError *err)
{
    KafkaSink *k = s->impl;
    /* The sticky failure is checked before polling, as ever: a failure the poll
     * brings is returned by the next call, not this one. */
    if (revenc_begin(&k->enc, err) != WR_OK) return err->status;
    kpoll(k, 0);
    if (!fifo_has_room(k) && wait_for(k, fifo_has_room, "too many revisions in flight", err) != WR_OK)
        return err->status;
    k->fifo[k->tail % FIFO_CAP] = (InFlight){0};
    k->tail++;
    k->in_revision = true;
    return WR_OK;
}

static WrStatus ks_write_context(Sink *s, const Revision *rev, const RevisionContext *ctx, WrError *err)
{
    KafkaSink *k = s->impl;
    return revenc_context(&k->enc, ctx, err);
}

/*
 * An erasure request (walrev erase): a tombstone keyed by the erased object
 * on its table's topic, after the erase event itself. Only where asked
 * (erase_tombstones): on a topic that is not compacted a null value means
 * nothing and would only puzzle consumers.
 */
static WrStatus maybe_tombstone(KafkaSink *k, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    const RelationVersion *rv = d->relver;
    if (!k->erase_schema || d->op != DELTA_INSERT || strcmp(rv->relname, "erasure_log") != 0 ||
        strcmp(rv->nspname, k->erase_schema) != 0)
        return WR_OK;
    const Value *nsp = revision_delta_new_value(d, "nspname"), *rel = revision_delta_new_value(d, "relname"),
                *key = revision_delta_new_value(d, "key");
    if (!nsp || !rel || !key) return WR_OK;
    char *n = xstrndup(nsp->data, nsp->len), *r = xstrndup(rel->data, rel->len);
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.", k->prefix);
    append_topic_part(&name, n);
    strbuf_append_char(&name, '.');
    append_topic_part(&name, r);
    free(n);
    free(r);
    WrStatus st = WR_OK;
    rd_kafka_topic_t *rkt = name.len <= KAFKA_TOPIC_MAX ? rd_kafka_topic_new(k->rk, name.data, NULL) : NULL;
    if (!rkt) {
        log_warn("msg=\"kafka sink: no tombstone for an erased object\" topic=%s revision=%" PRId64, name.data,
                 rev->id);
    } else {
        char id[MPC_ID_MAX + 4];
        mpc_delta_id(rev, d->seq, id);
        strcat(id, ".t");
        st = produce_value(k, rkt, key->data, key->len, id, true, err);
        rd_kafka_topic_destroy(rkt);
    }
    strbuf_free(&name);
    return st;
}

static WrStatus ks_write_delta(Sink *s, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    KafkaSink *k = s->impl;
    if (revenc_check(&k->enc, err) != WR_OK) return err->status;
    if (!k->in_revision)
        return wr_error_set(err, WR_PROTOCOL, "kafka sink: delta %" PRId64 ".%" PRId32 " outside a revision", rev->id,
                            d->seq);
    if (revenc_check_delta(&k->enc, rev, d, err) != WR_OK) return err->status;
    rd_kafka_topic_t *rkt;
    if (topic_for(k, d->relver, &rkt, err) != WR_OK) return err->status;
    revenc_encode_delta(&k->enc, rev, d);
    char id[MPC_ID_MAX];
    mpc_delta_id(rev, d->seq, id);
    if (d->key) {
        WrStatus st = produce(k, rkt, d->key, strlen(d->key), id, err);
        return st == WR_OK ? maybe_tombstone(k, rev, d, err) : st;
    }
    /* truncate: no row; keyed by the table so it orders with nothing in particular but is never null */
    char tkey[512];
    int n = snprintf(tkey, sizeof tkey, "%s.%s", d->relver->nspname, d->relver->relname);
    return produce(k, rkt, tkey, (size_t)n < sizeof tkey ? (size_t)n : sizeof tkey - 1, id, err);
}

static WrStatus ks_commit_revision(Sink *s, const Revision *rev, WrError *err)
{
    KafkaSink *k = s->impl;
    if (revenc_check(&k->enc, err) != WR_OK) return err->status;
    if (!k->in_revision)
        return wr_error_set(err, WR_PROTOCOL, "kafka sink: commit of revision %" PRId64 " outside a revision", rev->id);
    revenc_encode_revision(&k->enc, rev);
    InFlight *e = &k->fifo[(k->tail - 1) % FIFO_CAP];
    mpc_revision_id(rev, e->id);
    /* Kept until its deltas are delivered (release_markers); one constant
     * key: every revision message lands on one partition, in commit order. */
    const StrBuf *m = &k->enc.msg;
    e->marker = xmalloc(m->len ? m->len : 1);
    memcpy(e->marker, m->data, m->len);
    e->marker_len = m->len;
    e->end_lsn = rev->end_lsn;
    e->committed = true;
    k->in_revision = false;
    kpoll(k, 0);
    return revenc_check(&k->enc, err);
}

/*
 * Never blocks the replication loop: durability arrives with delivery
 * reports, served here and by poll(). WR_AGAIN while messages are still
 * undelivered (a broker outage stalls here, the slot waits, nothing is lost).
 */
static WrStatus ks_flush(Sink *s, bool caught_up, WrError *err)
{
    (void)caught_up; /* durability follows from the delivery reports either way */
    KafkaSink *k = s->impl;
    if (revenc_check(&k->enc, err) != WR_OK) return err->status;
    rd_kafka_resp_err_t e = rd_kafka_flush(k->rk, 0);
    release_markers(k);
    if (revenc_check(&k->enc, err) != WR_OK) return err->status;
    if (e == RD_KAFKA_RESP_ERR__TIMED_OUT || k->head < k->tail)
        return wr_error_set(err, WR_AGAIN,
                            "kafka sink: %d messages not yet delivered; durable position stays at " LSN_FMT,
                            rd_kafka_outq_len(k->rk), LSN_ARGS(k->durable));
    return WR_OK;
}

static WrStatus ks_poll(Sink *s, WrError *err)
{
    KafkaSink *k = s->impl;
    kpoll(k, 0);
    return revenc_check(&k->enc, err);
}

static Lsn ks_durable_lsn(Sink *s) { return ((KafkaSink *)s->impl)->durable; }

static bool ks_wants_flush(Sink *s, int64_t now_us, bool idle)
{
    (void)idle;
    KafkaSink *k = s->impl;
    return k->tail - k->head >= FIFO_CAP / 2;
}

static void ks_abort(Sink *s)
{
    KafkaSink *k = s->impl;
    kpoll(k, 0);
    if (k->in_revision) {
        /* Its messages may already be out; it just never moves the durable LSN. */
        InFlight *e = &k->fifo[(k->tail - 1) % FIFO_CAP];
        e->aborted = true;
        e->committed = true;
        k->in_revision = false;
        advance(k);
    }
    if (revenc_failure(&k->enc) == WR_RETRY) {
        /* The worker will resend from the durable LSN: forget what can no longer complete. */
        for (uint64_t q = k->head; q < k->tail; q++) {
            free(k->fifo[q % FIFO_CAP].marker);
            k->fifo[q % FIFO_CAP].marker = NULL;
        }
        k->head = k->mark = k->tail;
        revenc_clear_failure(&k->enc);
        log_info("msg=\"kafka sink reset after a failed delivery\" durable_lsn=" LSN_FMT, LSN_ARGS(k->durable));
    }
}

static void ks_destroy(Sink *s)
{
    KafkaSink *k = s->impl;
    if (k->rk) {
        /* Not a flush: the worker flushes before a clean stop; here nothing may block on brokers. */
        rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->rk, 0);
        for (size_t i = 0; i < k->ntopics; i++) rd_kafka_topic_destroy(k->topics[i].rkt);
        if (k->rev_topic) rd_kafka_topic_destroy(k->rev_topic);
        rd_kafka_destroy(k->rk);
    }
    free(k->topics);
    if (k->fifo)
        for (size_t i = 0; i < FIFO_CAP; i++) free(k->fifo[i].marker);
    free(k->fifo);
    free(k->prefix);
    free(k->brokers);
    props_free(k->props, k->nprops);
    free(k->erase_schema);
    revenc_term(&k->enc);
    free(k);
    free(s);
}

static const SinkOps KAFKA_SINK_OPS = {
    .name = "kafka",
    .open = ks_open,
    .write_relation = ks_write_relation,
    .begin_revision = ks_begin_revision,
    .write_context = ks_write_context,
    .write_delta = ks_write_delta,
    .commit_revision = ks_commit_revision,
    .flush = ks_flush,
    .poll = ks_poll,
    .durable_lsn = ks_durable_lsn,
    .wants_flush = ks_wants_flush,
    .abort = ks_abort,
    .destroy = ks_destroy,
};

void sink_kafka_stats(Sink *s, KafkaSinkStats *out)
{
    KafkaSink *k = s->impl;
    *out = k->stats;
    out->revisions_in_flight = (size_t)(k->tail - k->head);
}

static WrStatus conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, WrError *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return wr_error_set(err, WR_INVALID, "kafka property %s: %s", name, errstr);
    return WR_OK;
}

static bool valid_prefix(const char *p)
{
    if (!*p || strlen(p) > 200) return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

Sink *sink_kafka_create(const KafkaSinkConfig *cfg, WrError *err)
{
    const char *prefix = cfg->topic_prefix ? cfg->topic_prefix : "walrev";
    if (!valid_prefix(prefix)) {
        wr_error_set(err, WR_INVALID,
                     "kafka topic prefix \"%s\" is not a valid Kafka topic name part ([A-Za-z0-9._-], 1-200 chars)",
                     prefix);
        return NULL;
    }
    /* Our guarantees rest on these two; refuse a config that says otherwise rather than ignore it. */
    for (int i = 0; i < cfg->nprops; i++) {
        const char *n = cfg->props[i].name, *v = cfg->props[i].value;
        if (strcmp(n, "enable.idempotence") == 0 && strcmp(v, "true") != 0) {
            wr_error_set(err, WR_INVALID, "kafka property enable.idempotence=%s: walrev requires true", v);
            return NULL;
        }
        if ((strcmp(n, "acks") == 0 || strcmp(n, "request.required.acks") == 0) && strcmp(v, "all") != 0 &&
            strcmp(v, "-1") != 0) {
            wr_error_set(err, WR_INVALID, "kafka property %s=%s: walrev requires all", n, v);
            return NULL;
        }
    }
    KafkaSink *k = xcalloc(1, sizeof *k);
    k->prefix = xstrdup(prefix);
    k->brokers = cfg->brokers ? xstrdup(cfg->brokers) : NULL;
    for (int i = 0; i < cfg->nprops; i++) props_set(&k->props, &k->nprops, cfg->props[i].name, cfg->props[i].value);
    k->erase_schema = cfg->erase_schema ? xstrdup(cfg->erase_schema) : NULL;
    k->flush_timeout_ms = cfg->flush_timeout_ms > 0 ? cfg->flush_timeout_ms : 10000;
    k->while_waiting = cfg->while_waiting;
    k->while_waiting_arg = cfg->while_waiting_arg;
    k->fifo = xcalloc(FIFO_CAP, sizeof *k->fifo);
    revenc_init(&k->enc, "kafka sink");

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "client.id", "walrev", err) != WR_OK ||
        conf_set(conf, "queue.buffering.max.messages", "100000", err) != WR_OK ||
        conf_set(conf, "queue.buffering.max.kbytes", "65536", err) != WR_OK ||
        conf_set(conf, "message.timeout.ms", "0", err) != WR_OK)
        goto fail;
    if (cfg->brokers && conf_set(conf, "bootstrap.servers", cfg->brokers, err) != WR_OK) goto fail;
    for (int i = 0; i < cfg->nprops; i++)
        if (conf_set(conf, cfg->props[i].name, cfg->props[i].value, err) != WR_OK) goto fail;
    if (conf_set(conf, "enable.idempotence", "true", err) != WR_OK || conf_set(conf, "acks", "all", err) != WR_OK)
        goto fail;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    char errstr[512];
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!k->rk) {
        wr_error_set(err, WR_INVALID, "kafka producer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.revisions", k->prefix);
    k->rev_topic = rd_kafka_topic_new(k->rk, name.data, NULL);
    strbuf_free(&name);
    if (!k->rev_topic) {
        wr_error_set(err, WR_FATAL, "kafka sink: could not create the revisions topic handle: %s",
                     rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    Sink *s = xcalloc(1, sizeof *s);
    s->ops = &KAFKA_SINK_OPS;
    s->impl = k;
    return s;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    Sink *partial = xcalloc(1, sizeof *partial);
    partial->ops = &KAFKA_SINK_OPS;
    partial->impl = k;
    ks_destroy(partial);
    return NULL;
}
