/*
 * test_kafka_sink.c — the Kafka sink against librdkafka's mock cluster (a
 * real Kafka protocol endpoint inside this process) and, when KAFKA_BROKERS
 * is set, a real broker: revisions produced through the sink and consumed
 * back byte for byte; retriable produce errors and a broker outage (the
 * durable LSN never passes undelivered revisions, then everything arrives
 * once); a crash (duplicates only of resent whole revisions, identifiable by
 * id); permanent errors; config refusals; kcat and the Python decoder; and a
 * throughput figure (messages/s, RSS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "sink/kafka_sink.h"
#include "sink/msgpack_codec.h"
#include "tests/support/sample_relations.h"
#include "tests/support/testsupport.h"
#include "tests/support/unit_main.h"

#define API_PRODUCE 0 /* Kafka ApiKey of Produce requests */

/* ---- the mock cluster, shared by the tests ---- */

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mcluster;
static char bootstraps[256];

static int group_setup(void **state)
{
    (void)state;
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!mock_rk) return -1;
    mcluster = rd_kafka_mock_cluster_new(mock_rk, 3);
    if (!mcluster) return -1;
    snprintf(bootstraps, sizeof bootstraps, "%s", rd_kafka_mock_cluster_bootstraps(mcluster));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(mock_rk);
    return 0;
}

static void create_topics(const char *prefix)
{
    char t[128];
    snprintf(t, sizeof t, "%s.public.items", prefix);
    assert_int_equal(rd_kafka_mock_topic_create(mcluster, t, 3, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
    snprintf(t, sizeof t, "%s.sales.orders", prefix);
    assert_int_equal(rd_kafka_mock_topic_create(mcluster, t, 2, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
    snprintf(t, sizeof t, "%s.revisions", prefix);
    assert_int_equal(rd_kafka_mock_topic_create(mcluster, t, 1, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* ---- a synthetic workload, with the messages it must produce ---- */

/* public.items and sales.orders: tests/support/sample_relations.h */

typedef struct {
    char *topic;
    char *key;
    char *id;
    StrBuf value;
} Msg;

typedef struct {
    Msg *m;
    size_t n, cap;
} MsgList;

static void list_add(MsgList *l, const char *topic, const char *key, size_t keylen, const char *id, const void *value,
                     size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->m = xrealloc(l->m, l->cap * sizeof *l->m);
    }
    Msg *m = &l->m[l->n++];
    m->topic = xstrdup(topic);
    m->key = key ? xstrndup(key, keylen) : NULL;
    m->id = id ? xstrdup(id) : NULL;
    strbuf_init(&m->value);
    strbuf_append(&m->value, value, len);
}

static void list_free(MsgList *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->m[i].topic);
        free(l->m[i].key);
        free(l->m[i].id);
        strbuf_free(&l->m[i].value);
    }
    free(l->m);
    *l = (MsgList){0};
}

/*
 * Revision id with ndeltas changes to items (rows cycle over 7 keys; inserts
 * and updates; a hidden column), a context on even ids, and on every 5th
 * revision an order insert plus a truncate of orders. Sends it through s
 * (when not NULL) and appends the messages it must produce to exp.
 */
static void gen_revision(Sink *s, const char *prefix, int64_t id, int ndeltas, MsgList *exp)
{
    WrError err = {0};
    Revision rev = ts_sample_revision(id);
    RevisionContext ctx = {.no = 1, .actor_type = "user", .actor_id = "42", .description = "edit"};
    StrBuf packed, enc;
    strbuf_init(&packed);
    strbuf_init(&enc);
    char items_topic[128], orders_topic[128], rev_topic[128], key[32], val[32], id_s[MPC_ID_MAX];
    snprintf(items_topic, sizeof items_topic, "%s.public.items", prefix);
    snprintf(orders_topic, sizeof orders_topic, "%s.sales.orders", prefix);
    snprintf(rev_topic, sizeof rev_topic, "%s.revisions", prefix);
    bool with_ctx = id % 2 == 0;
    if (s) assert_int_equal(s->ops->begin_revision(s, &rev, &err), WR_OK);
    if (with_ctx) {
        if (s) assert_int_equal(s->ops->write_context(s, &rev, &ctx, &err), WR_OK);
        rev.first_context = &ctx;
        mpc_encode_context(&packed, &ctx);
    }
    int32_t seq = 0;
    int64_t n_items = 0, n_orders = 0;
    for (int i = 0; i < ndeltas; i++) {
        int row = (int)((id * 31 + i) % 7);
        snprintf(key, sizeof key, "[\"%d\"]", row);
        snprintf(val, sizeof val, "v%lld-%d", (long long)id, i);
        AttributeDelta a[] = {{.col_id = 2, .old_value = {i % 3 ? "old" : NULL, 3}, .new_value = {val, strlen(val)}},
                              {.col_id = 3, .flags = ATTR_HIDDEN, .new_value = {"pw", 2}}};
        ObjectDelta d = {.seq = ++seq,
                         .relver = &ts_items,
                         .op = i % 2 ? DELTA_UPDATE : DELTA_INSERT,
                         .key = key,
                         .context_no = with_ctx ? 1 : 0,
                         .nattrs = 2,
                         .attrs = a};
        if (s) assert_int_equal(s->ops->write_delta(s, &rev, &d, &err), WR_OK);
        strbuf_reset(&enc);
        mpc_encode_delta(&enc, &rev, &d, packed.data, packed.len);
        mpc_delta_id(&rev, d.seq, id_s);
        list_add(exp, items_topic, key, strlen(key), id_s, enc.data, enc.len);
        n_items++;
    }
    if (id % 5 == 0) {
        AttributeDelta a[] = {{.col_id = 1, .new_value = {"9", 1}}, {.col_id = 2, .new_value = {"", 0}}};
        ObjectDelta d = {.seq = ++seq,
                         .relver = &ts_orders,
                         .op = DELTA_INSERT,
                         .key = "[\"9\",\"\"]",
                         .context_no = with_ctx ? 1 : 0,
                         .nattrs = 2,
                         .attrs = a};
        ObjectDelta t = {
            .seq = ++seq, .relver = &ts_orders, .op = DELTA_TRUNCATE, .key = NULL, .context_no = with_ctx ? 1 : 0};
        if (s) assert_int_equal(s->ops->write_delta(s, &rev, &d, &err), WR_OK);
        if (s) assert_int_equal(s->ops->write_delta(s, &rev, &t, &err), WR_OK);
        strbuf_reset(&enc);
        mpc_encode_delta(&enc, &rev, &d, packed.data, packed.len);
        mpc_delta_id(&rev, d.seq, id_s);
        list_add(exp, orders_topic, d.key, strlen(d.key), id_s, enc.data, enc.len);
        strbuf_reset(&enc);
        mpc_encode_delta(&enc, &rev, &t, packed.data, packed.len);
        mpc_delta_id(&rev, t.seq, id_s);
        list_add(exp, orders_topic, "sales.orders", 12, id_s, enc.data, enc.len);
        n_orders = 2;
        rev.n_truncate = 1;
    }
    rev.n_insert = (ndeltas + 1) / 2 + (n_orders ? 1 : 0);
    rev.n_update = ndeltas / 2;
    MpcTableCount tc[2];
    size_t ntc = 0;
    if (n_items) tc[ntc++] = (MpcTableCount){"public", "items", n_items};
    if (n_orders) tc[ntc++] = (MpcTableCount){"sales", "orders", n_orders};
    if (s) assert_int_equal(s->ops->commit_revision(s, &rev, &err), WR_OK);
    strbuf_reset(&enc);
    mpc_encode_revision(&enc, &rev, tc, ntc);
    mpc_revision_id(&rev, id_s);
    list_add(exp, rev_topic, prefix, strlen(prefix), id_s, enc.data, enc.len);
    strbuf_free(&packed);
    strbuf_free(&enc);
}

/* A sink opened on prefix; *pos (may be NULL) gets what it read back. */
static Sink *open_sink(const char *brokers, const char *prefix, int flush_ms, SinkPosition *pos, WrError *err)
{
    KafkaProp props[] = {{"reconnect.backoff.max.ms", "500"}, {"linger.ms", "5"}};
    KafkaSinkConfig cfg = {
        .brokers = brokers, .topic_prefix = prefix, .props = props, .nprops = 2, .flush_timeout_ms = flush_ms};
    Sink *s = sink_kafka_create(&cfg, err);
    assert_non_null(s);
    SinkPosition p;
    assert_int_equal(s->ops->open(s, &p, err), WR_OK);
    assert_true(p.known);
    assert_true(p.read_back);
    if (pos) *pos = p;
    return s;
}

/* A sink on a prefix nothing was sent to yet: it holds nothing. */
static Sink *make_sink(const char *brokers, const char *prefix, int flush_ms, WrError *err)
{
    SinkPosition pos;
    Sink *s = open_sink(brokers, prefix, flush_ms < 10000 ? 10000 : flush_ms, &pos, err);
    assert_int_equal(pos.durable_end_lsn, 0);
    assert_int_equal(pos.last_revision_id, 0);
    if (flush_ms < 10000) {
        sink_destroy(s);
        s = open_sink(brokers, prefix, flush_ms, NULL, err);
    }
    return s;
}

/* A sink on the mock cluster's fresh topics of prefix. */
static Sink *mock_sink(const char *prefix, int flush_ms, WrError *err)
{
    create_topics(prefix);
    return make_sink(bootstraps, prefix, flush_ms, err);
}

/* ---- consuming back ---- */

/*
 * Every message of the prefix's three topics into got. Reads until each
 * partition reported EOF and at least want messages came (60 s at most): a
 * partition may report EOF at a high watermark that has not yet caught up
 * with what the producer had acknowledged (seen under ASan after a leader
 * change), and a count short of want is then only late, not lost. More than
 * want is still seen by the callers' exact comparisons.
 */
static void consume_all(const char *brokers, const char *prefix, size_t want, MsgList *got)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr), RD_KAFKA_CONF_OK);
    rd_kafka_conf_set(conf, "group.id", "walrev-test-reader", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(rk);
    const char *suffixes[] = {"public.items", "sales.orders", "revisions"};
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int t = 0; t < 3; t++) {
        char name[128];
        snprintf(name, sizeof name, "%s.%s", prefix, suffixes[t]);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
        const struct rd_kafka_metadata *md = NULL;
        assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(md->topic_cnt, 1);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, name, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    int nparts = parts->cnt, eofs = 0;
    char eof_seen[64][160];
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    time_t deadline = time(NULL) + 60;
    while (eofs < nparts || got->n < want) {
        if (time(NULL) >= deadline) fail_msg("consumed %zu of %zu messages of %s.* in 60 s", got->n, want, prefix);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* A partition may report EOF more than once (after a leader
             * change): count each partition once, or reading stops early. */
            char which[160];
            snprintf(which, sizeof which, "%s/%d", rd_kafka_topic_name(m->rkt), (int)m->partition);
            bool seen = false;
            for (int i = 0; i < eofs && !seen; i++) seen = strcmp(eof_seen[i], which) == 0;
            if (!seen && eofs < (int)(sizeof eof_seen / sizeof eof_seen[0]))
                snprintf(eof_seen[eofs++], 160, "%s", which);
        } else {
            assert_int_equal(m->err, RD_KAFKA_RESP_ERR_NO_ERROR);
            /* headers: content type, format version, and the id inside the value */
            rd_kafka_headers_t *h = NULL;
            assert_int_equal(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
            const void *hv;
            size_t hl;
            assert_int_equal(rd_kafka_header_get_last(h, "content-type", &hv, &hl), RD_KAFKA_RESP_ERR_NO_ERROR);
            assert_int_equal(hl, strlen("application/x-msgpack"));
            assert_memory_equal(hv, "application/x-msgpack", hl);
            assert_int_equal(rd_kafka_header_get_last(h, "walrev-format", &hv, &hl), RD_KAFKA_RESP_ERR_NO_ERROR);
            assert_int_equal(hl, 1);
            assert_memory_equal(hv, "1", 1);
            assert_int_equal(rd_kafka_header_get_last(h, "walrev-id", &hv, &hl), RD_KAFKA_RESP_ERR_NO_ERROR);
            char *id = xstrndup(hv, hl);
            list_add(got, rd_kafka_topic_name(m->rkt), m->key, m->key_len, id, m->payload, m->len);
            free(id);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static bool same_msg(const Msg *a, const Msg *b)
{
    return strcmp(a->topic, b->topic) == 0 && strcmp(a->key, b->key) == 0 && strcmp(a->id, b->id) == 0 &&
           a->value.len == b->value.len && memcmp(a->value.data, b->value.data, a->value.len) == 0;
}

/*
 * Exact comparison: the same number of messages, and for every (topic, key)
 * the consumed sequence (one key lives on one partition, in offset order)
 * equals the produced one, byte for byte.
 */
static void assert_same_stream(const MsgList *exp, const MsgList *got)
{
    assert_int_equal(got->n, exp->n);
    bool *used = xcalloc(got->n, 1);
    for (size_t i = 0; i < exp->n; i++) {
        /* the next unused consumed message with this topic and key must be this one */
        size_t j = 0;
        for (; j < got->n; j++)
            if (!used[j] && strcmp(got->m[j].topic, exp->m[i].topic) == 0 && strcmp(got->m[j].key, exp->m[i].key) == 0)
                break;
        assert_true(j < got->n);
        if (!same_msg(&exp->m[i], &got->m[j])) fail_msg("message %s differs from %s", exp->m[i].id, got->m[j].id);
        used[j] = true;
    }
    free(used);
}

/* ---- tests ---- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* flush() never blocks (durability follows delivery reports): wait up to ms for it. */
static WrStatus flush_wait(Sink *s, WrError *err, int ms)
{
    WrStatus rc;
    for (int waited = 0; (rc = s->ops->flush(s, true, err)) == WR_AGAIN && waited < ms; waited += 20) {
        if (s->ops->poll(s, err) != WR_OK) return err->status;
        usleep(20000);
    }
    return rc;
}

static void roundtrip(const char *brokers, const char *prefix, bool mock)
{
    WrError err = {0};
    Sink *s = make_sink(brokers, prefix, 30000, &err);
    MsgList exp = {0}, got = {0};
    for (int64_t id = 1; id <= 50; id++) gen_revision(s, prefix, id, (int)(id % 6), &exp);
    assert_int_equal(flush_wait(s, &err, 15000), WR_OK);
    assert_int_equal(s->ops->durable_lsn(s), ts_sample_revision(50).end_lsn);
    KafkaSinkStats st;
    sink_kafka_stats(s, &st);
    assert_int_equal(st.produced, exp.n);
    assert_int_equal(st.delivered, exp.n);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.revisions_in_flight, 0);
    sink_destroy(s);
    consume_all(brokers, prefix, exp.n, &got);
    assert_same_stream(&exp, &got);

    /* kcat reads the topics: revision keys, and every value through the Python decoder */
    char *out = NULL;
    assert_int_equal(ts_run(&out, "kcat -b %s -C -t %s.revisions -o beginning -e -q -f '%%k\\n'", brokers, prefix), 0);
    StrBuf want;
    strbuf_init(&want);
    for (int i = 0; i < 50; i++) strbuf_appendf(&want, "%s\n", prefix);
    assert_string_equal(out, want.data);
    free(out);
    assert_int_equal(ts_run(&out, "kcat -b %s -C -t %s.sales.orders -o beginning -e -q -f '%%h\\n' | sort | head -1",
                            brokers, prefix),
                     0);
    assert_string_equal(out, "content-type=application/x-msgpack,walrev-format=1,walrev-id=10.5\n");
    free(out);
    const char *src = getenv("WALREV_SOURCE_DIR");
    assert_non_null(src);
    assert_int_equal(ts_run(&out,
                            "kcat -b %s -C -t %s.revisions -o beginning -e -q -f '%%s' | "
                            "/usr/bin/python3 %s/tests/integration/kafka_decode.py - | wc -l",
                            brokers, prefix, src),
                     0);
    assert_string_equal(out, "50\n");
    free(out);
    assert_int_equal(ts_run(&out,
                            "kcat -b %s -C -t %s.public.items -o beginning -e -q -f '%%s' | "
                            "/usr/bin/python3 %s/tests/integration/kafka_decode.py - | grep -c '\"type\":\"delta\"'",
                            brokers, prefix, src),
                     0);
    size_t n_items = 0;
    for (size_t i = 0; i < exp.n; i++) n_items += strstr(exp.m[i].topic, ".public.items") != NULL;
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%zu\n", n_items);
    assert_string_equal(out, nbuf);
    free(out);
    (void)mock;

    /* walrev tail (regex subscription on ^prefix\.) prints every message; same view as the C decoder */
    char **lines = xcalloc(exp.n, sizeof *lines);
    for (size_t i = 0; i < exp.n; i++) {
        json_t *j = NULL;
        size_t used = 0;
        WrError derr = {0};
        assert_int_equal(mpc_decode_json(exp.m[i].value.data, exp.m[i].value.len, &used, &j, &derr), WR_OK);
        lines[i] = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    qsort(lines, exp.n, sizeof *lines, cmp_str);
    strbuf_reset(&want);
    for (size_t i = 0; i < exp.n; i++) {
        strbuf_appendf(&want, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    assert_int_equal(ts_run(&out,
                            "%s --source dbname=unused tail --brokers %s --prefix %s --from-beginning "
                            "--max-messages %zu --timeout-ms 30000 2>/dev/null | LC_ALL=C sort",
                            ts_walrev_bin(), brokers, prefix, exp.n),
                     0);
    assert_string_equal(out, want.data);
    free(out);
    strbuf_free(&want);
    list_free(&exp);
    list_free(&got);
}

/* Revisions from..to, ndeltas changes each (gen_revision), sent through s
 * and appended to exp; then flushed (WR_OK within 15 s) and durable through
 * revision to. */
static void send_delivered(Sink *s, const char *prefix, int64_t from, int64_t to, int ndeltas, MsgList *exp)
{
    WrError err = {0};
    for (int64_t id = from; id <= to; id++) gen_revision(s, prefix, id, ndeltas, exp);
    assert_int_equal(flush_wait(s, &err, 15000), WR_OK);
    assert_int_equal(s->ops->durable_lsn(s), ts_sample_revision(to).end_lsn);
}

static void test_roundtrip_mock(void **state)
{
    (void)state;
    create_topics("rt");
    roundtrip(bootstraps, "rt", true);
}

static void test_roundtrip_real_broker(void **state)
{
    (void)state;
    const char *brokers = getenv("KAFKA_BROKERS");
    if (!brokers || !*brokers) skip();
    char prefix[64];
    snprintf(prefix, sizeof prefix, "walrevtest%ld%d", (long)time(NULL), (int)getpid());
    roundtrip(brokers, prefix, false);
}

static void test_retriable_produce_errors(void **state)
{
    (void)state;
    WrError err = {0};
    Sink *s = mock_sink("re", 30000, &err);
    MsgList exp = {0}, got = {0};
    rd_kafka_mock_push_request_errors(
        mcluster, API_PRODUCE, 8, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    send_delivered(s, "re", 1, 30, 3, &exp);
    KafkaSinkStats st;
    sink_kafka_stats(s, &st);
    assert_int_equal(st.delivered, exp.n);
    assert_int_equal(st.failed, 0);
    sink_destroy(s);
    rd_kafka_mock_clear_request_errors(mcluster, API_PRODUCE);
    /* the idempotent producer retried without duplicating: exactly once each */
    consume_all(bootstraps, "re", exp.n, &got);
    assert_same_stream(&exp, &got);
    list_free(&exp);
    list_free(&got);
}

static void brokers_set(bool up)
{
    for (int32_t b = 1; b <= 3; b++)
        assert_int_equal(up ? rd_kafka_mock_broker_set_up(mcluster, b) : rd_kafka_mock_broker_set_down(mcluster, b),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void test_outage(void **state)
{
    (void)state;
    WrError err = {0};
    Sink *s = mock_sink("out", 1500, &err);
    MsgList exp = {0}, got = {0};
    for (int64_t id = 1; id <= 10; id++) gen_revision(s, "out", id, 4, &exp);
    assert_int_equal(flush_wait(s, &err, 15000), WR_OK);
    Lsn before = ts_sample_revision(10).end_lsn;
    assert_int_equal(s->ops->durable_lsn(s), before);

    brokers_set(false);
    for (int64_t id = 11; id <= 20; id++) gen_revision(s, "out", id, 4, &exp);
    assert_int_equal(flush_wait(s, &err, 1500), WR_AGAIN);
    assert_non_null(strstr(err.msg, "not yet delivered"));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s->ops->poll(s, &err), WR_OK);
        assert_int_equal(s->ops->durable_lsn(s), before); /* never past undelivered revisions */
        usleep(100000);
    }
    KafkaSinkStats st;
    sink_kafka_stats(s, &st);
    assert_int_equal(st.revisions_in_flight, 10);
    assert_int_equal(st.failed, 0);
    /* revisions 1-10 whole (4 deltas and a revision message each, 5 and 10
     * two more), 11-20 their deltas only: a revision message waits until
     * every delta of its revision is delivered */
    assert_int_equal(st.produced, 10 * 5 + 4 + 10 * 4 + 4);

    /* A sink opened while the brokers are down cannot tell what Kafka holds: retry. */
    KafkaProp props[] = {{"reconnect.backoff.max.ms", "500"}};
    KafkaSinkConfig ocfg = {
        .brokers = bootstraps, .topic_prefix = "out", .props = props, .nprops = 1, .flush_timeout_ms = 1000};
    Sink *other = sink_kafka_create(&ocfg, &err);
    assert_non_null(other);
    SinkPosition opos;
    WrError oerr = {0};
    assert_int_equal(other->ops->open(other, &opos, &oerr), WR_RETRY);
    assert_non_null(strstr(oerr.msg, "cannot read"));
    sink_destroy(other);

    brokers_set(true);
    WrStatus rc;
    for (int tries = 0; (rc = flush_wait(s, &err, 1500)) == WR_AGAIN && tries < 20; tries++) {
        assert_true(s->ops->durable_lsn(s) <= ts_sample_revision(20).end_lsn);
    }
    assert_int_equal(rc, WR_OK);
    assert_int_equal(s->ops->durable_lsn(s), ts_sample_revision(20).end_lsn);
    sink_destroy(s);
    consume_all(bootstraps, "out", exp.n, &got);
    assert_same_stream(&exp, &got); /* everything arrived, once */
    list_free(&exp);
    list_free(&got);
}

/*
 * A crash after revisions 11-15 reached Kafka but before the worker confirmed
 * them to the slot: the restarted worker resends from revision 11. Dropping
 * repeated ids gives the stream exactly once, and the only duplicates are
 * whole resent revisions: every message of 11-15 exactly twice, nothing else.
 */
static void test_crash_resend_duplicates_whole_revisions(void **state)
{
    (void)state;
    WrError err = {0};
    Sink *s = mock_sink("cr", 30000, &err);
    MsgList exp = {0}, resent = {0}, got = {0};
    send_delivered(s, "cr", 1, 10, 3, &exp);
    for (int64_t id = 11; id <= 15; id++) gen_revision(s, "cr", id, 3, &exp);
    /* delivered, but the worker dies before it confirms 11-15 to the slot */
    assert_int_equal(flush_wait(s, &err, 15000), WR_OK);
    sink_destroy(s);

    /* Reopened, it reads back what Kafka holds whole: through revision 15
     * (the fan-out then skips 11-15; this sink, told to, sends them again). */
    SinkPosition pos;
    s = open_sink(bootstraps, "cr", 30000, &pos, &err);
    Revision r15 = ts_sample_revision(15);
    assert_int_equal(pos.durable_end_lsn, r15.end_lsn);
    assert_int_equal(pos.last_revision_id, 15);
    assert_memory_equal(pos.last_checksum, r15.checksum, WALREV_CHECKSUM_LEN);
    assert_int_equal(s->ops->durable_lsn(s), r15.end_lsn);
    send_delivered(s, "cr", 11, 15, 3, &resent);
    sink_destroy(s);

    consume_all(bootstraps, "cr", exp.n + resent.n, &got);
    assert_int_equal(got.n, exp.n + resent.n);
    /* dedupe by id: the first copy of each id, in order, is exactly the stream */
    MsgList first = {0};
    for (size_t i = 0; i < got.n; i++) {
        size_t copies_before = 0;
        for (size_t j = 0; j < first.n; j++) copies_before += strcmp(first.m[j].id, got.m[i].id) == 0;
        if (copies_before) {
            long rev = strtol(got.m[i].id, NULL, 10);
            assert_true(rev >= 11 && rev <= 15); /* only resent revisions repeat */
            continue;
        }
        list_add(&first, got.m[i].topic, got.m[i].key, strlen(got.m[i].key), got.m[i].id, got.m[i].value.data,
                 got.m[i].value.len);
    }
    assert_same_stream(&exp, &first);
    /* whole revisions: every message of a resent revision twice, byte-identical */
    for (size_t i = 0; i < resent.n; i++) {
        size_t copies = 0;
        for (size_t j = 0; j < got.n; j++) copies += same_msg(&got.m[j], &resent.m[i]);
        assert_int_equal(copies, 2);
    }
    list_free(&exp);
    list_free(&resent);
    list_free(&got);
    list_free(&first);
}

static void test_permanent_error_is_fatal(void **state)
{
    (void)state;
    WrError err = {0};
    Sink *s = mock_sink("pe", 10000, &err);
    MsgList exp = {0};
    rd_kafka_mock_push_request_errors(mcluster, API_PRODUCE, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    gen_revision(s, "pe", 1, 1, &exp);
    assert_int_equal(flush_wait(s, &err, 15000), WR_FATAL);
    assert_non_null(strstr(err.msg, "TOPIC_AUTHORIZATION_FAILED"));
    assert_int_equal(s->ops->durable_lsn(s), 0);
    /* sticky: nothing more is accepted */
    Revision rev = ts_sample_revision(2);
    assert_int_equal(s->ops->begin_revision(s, &rev, &err), WR_FATAL);
    assert_int_equal(s->ops->poll(s, &err), WR_FATAL);
    rd_kafka_mock_clear_request_errors(mcluster, API_PRODUCE);
    sink_destroy(s);
    list_free(&exp);
}

static void test_config_refusals(void **state)
{
    (void)state;
    WrError err = {0};
    KafkaProp bad[] = {{"no.such.property", "1"}};
    KafkaSinkConfig cfg = {.brokers = bootstraps, .props = bad, .nprops = 1};
    assert_null(sink_kafka_create(&cfg, &err));
    assert_int_equal(err.status, WR_INVALID);
    assert_non_null(strstr(err.msg, "kafka property no.such.property: No such configuration property"));

    KafkaProp acks[] = {{"acks", "1"}};
    cfg.props = acks;
    assert_null(sink_kafka_create(&cfg, &err));
    assert_string_equal(err.msg, "kafka property acks=1: walrev requires all");

    KafkaProp idem[] = {{"enable.idempotence", "false"}};
    cfg.props = idem;
    assert_null(sink_kafka_create(&cfg, &err));
    assert_string_equal(err.msg, "kafka property enable.idempotence=false: walrev requires true");

    cfg.props = NULL;
    cfg.nprops = 0;
    cfg.topic_prefix = "bad prefix";
    assert_null(sink_kafka_create(&cfg, &err));
    assert_int_equal(err.status, WR_INVALID);
    assert_non_null(strstr(err.msg, "kafka topic prefix \"bad prefix\" is not a valid"));

    /* user overrides of walrev's defaults pass through */
    KafkaProp ok[] = {{"acks", "-1"}, {"queue.buffering.max.messages", "1000"}};
    cfg.topic_prefix = "ok";
    cfg.props = ok;
    cfg.nprops = 2;
    Sink *s = sink_kafka_create(&cfg, &err);
    assert_non_null(s);
    sink_destroy(s);
}

/* A tiny local queue: produce blocks and polls until deliveries free room, and loses nothing. */
static void test_backpressure_bounded_queue(void **state)
{
    (void)state;
    create_topics("bp");
    WrError err = {0};
    KafkaProp props[] = {{"queue.buffering.max.messages", "20"}, {"linger.ms", "20"}};
    KafkaSinkConfig cfg = {.brokers = bootstraps, .topic_prefix = "bp", .props = props, .nprops = 2};
    Sink *s = sink_kafka_create(&cfg, &err);
    assert_non_null(s);
    SinkPosition pos;
    assert_int_equal(s->ops->open(s, &pos, &err), WR_OK);
    MsgList exp = {0}, got = {0};
    for (int64_t id = 1; id <= 20; id++) gen_revision(s, "bp", id, 10, &exp);
    KafkaSinkStats st;
    sink_kafka_stats(s, &st);
    assert_true(st.queue_full_waits > 0);
    assert_int_equal(flush_wait(s, &err, 15000), WR_OK);
    assert_int_equal(s->ops->durable_lsn(s), ts_sample_revision(20).end_lsn);
    sink_kafka_stats(s, &st);
    assert_int_equal(st.produced, exp.n); /* the revision messages held back went out too */
    sink_destroy(s);
    consume_all(bootstraps, "bp", exp.n, &got);
    assert_same_stream(&exp, &got);
    list_free(&exp);
    list_free(&got);
}

static long status_kb(const char *field)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fp && fgets(line, sizeof line, fp))
        if (strncmp(line, field, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    if (fp) fclose(fp);
    return v;
}

static void test_throughput(void **state)
{
    (void)state;
    WrError err = {0};
    Sink *s = mock_sink("perf", 60000, &err);
    const int revs = 1000, per = 100;
    long rss0 = status_kb("VmRSS");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char key[32], val[64];
    for (int64_t id = 1; id <= revs; id++) {
        Revision rev = ts_sample_revision(id);
        assert_int_equal(s->ops->begin_revision(s, &rev, &err), WR_OK);
        for (int i = 0; i < per; i++) {
            snprintf(key, sizeof key, "[\"%d\"]", (int)((id * per + i) % 10000));
            int vl = snprintf(val, sizeof val, "value-%lld-%d", (long long)id, i);
            AttributeDelta a[] = {{.col_id = 2, .old_value = {"previous", 8}, .new_value = {val, (size_t)vl}}};
            ObjectDelta d = {
                .seq = i + 1, .relver = &ts_items, .op = DELTA_UPDATE, .key = key, .nattrs = 1, .attrs = a};
            assert_int_equal(s->ops->write_delta(s, &rev, &d, &err), WR_OK);
        }
        rev.n_update = per;
        assert_int_equal(s->ops->commit_revision(s, &rev, &err), WR_OK);
        assert_int_equal(s->ops->poll(s, &err), WR_OK);
    }
    assert_int_equal(flush_wait(s, &err, 15000), WR_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(s->ops->durable_lsn(s), ts_sample_revision(revs).end_lsn);
    KafkaSinkStats st;
    sink_kafka_stats(s, &st);
    assert_int_equal(st.delivered, (uint64_t)revs * (per + 1));
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    long rss1 = status_kb("VmRSS"), hwm = status_kb("VmHWM");
    printf("kafka sink throughput: %llu messages (%d deltas + %d revisions) in %.2f s = %.0f messages/s "
           "to the mock cluster; RSS %ld kB before, %ld kB after, peak %ld kB (process incl. the mock "
           "cluster's stored log); queue-full waits %llu\n",
           (unsigned long long)st.delivered, revs * per, revs, secs, (double)st.delivered / secs, rss0, rss1, hwm,
           (unsigned long long)st.queue_full_waits);
    sink_destroy(s);
}

TS_RUN_GROUP(group_setup, group_teardown, cmocka_unit_test(test_config_refusals), cmocka_unit_test(test_roundtrip_mock),
             cmocka_unit_test(test_roundtrip_real_broker), cmocka_unit_test(test_retriable_produce_errors),
             cmocka_unit_test(test_outage), cmocka_unit_test(test_crash_resend_duplicates_whole_revisions),
             cmocka_unit_test(test_permanent_error_is_fatal), cmocka_unit_test(test_backpressure_bounded_queue),
             cmocka_unit_test(test_throughput))
