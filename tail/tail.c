/*
 * tail.c — `walrev tail`: consumes walrev's Kafka topics (regex subscription
 * on ^<prefix>\. by default) or reads a file-sink file, decodes each message
 * with sink/msgpack_codec.h and prints it as one JSON line or a table row.
 * A throwaway consumer group, no offset commits: reading never moves anyone's
 * position. Returns exit codes; never calls exit().
 */
#include "tail/tail.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/log.h"
#include "sink/msgpack_codec.h"

#define EXIT_USAGE 2
#define POLL_MS 100
/* With --timeout-ms, how long tail waits to start reading before it gives up.
 * A group join takes seconds (the group's initial rebalance delay is 3 s, and
 * the first fetch after it needs an offset lookup), so --timeout-ms only
 * counts once reading has started: partitions assigned and every one of them
 * read to a first message or its end. This bounds the wait for a cluster that is down. */
#define START_WAIT_MS 30000

typedef enum { FMT_JSON, FMT_TABLE } OutFormat;

typedef struct {
    const char *brokers;
    const char *prefix;
    const char **topics;
    int ntopics;
    const char *file;
    bool from_beginning;
    OutFormat format;
    long max_messages; /* 0: no limit */
    long timeout_ms;   /* 0: none */
} TailOptions;

typedef struct {
    const TailOptions *opt;
    const TailConfig *cfg;
    long printed;
    long bad;
    bool reading;        /* every assigned partition read to a message or its end, or none assigned */
    int64_t quiet_since; /* monotonic ms of the last message, or of the start of reading */
    /* Assigned partitions not yet read to a first message or their end (owned).
     * One empty partition reaches its end long before a loaded broker answers
     * the first fetch of the others, so reading starts only once all have. */
    rd_kafka_topic_partition_list_t *unstarted;
} TailState;

/* ---- printing ---- */

static const char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A value as it reads best in a table: NULL, or the JSON-quoted text. */
static void print_value(FILE *out, json_t *v)
{
    if (!v || json_is_null(v)) {
        fputs("NULL", out);
        return;
    }
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    fputs(s ? s : "?", out);
    free(s);
}

static void print_actor(FILE *out, json_t *actor)
{
    if (!json_is_object(actor)) {
        fputs("-", out);
        return;
    }
    fprintf(out, "%s:%s", jstr(actor, "type"), jstr(actor, "id"));
}

static void print_table_row(FILE *out, json_t *j)
{
    const char *type = jstr(j, "type");
    json_t *table = json_object_get(j, "table");
    if (strcmp(type, "delta") == 0) {
        json_t *ctx = json_object_get(j, "context");
        fprintf(out, "%-8s %-14s %-8s %s.%s %s actor=", type, jstr(j, "id"), jstr(j, "op"), jstr(table, "schema"),
                jstr(table, "name"), json_is_string(json_object_get(j, "key")) ? jstr(j, "key") : "-");
        print_actor(out, json_is_object(ctx) ? json_object_get(ctx, "actor") : NULL);
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(j, "changes"), i, c)
        {
            fprintf(out, " %s=", jstr(c, "column"));
            if (json_integer_value(json_object_get(c, "flags")) & ATTR_HIDDEN) {
                fputs("(hidden)", out);
                continue;
            }
            json_t *old = json_object_get(c, "old"), *new = json_object_get(c, "new");
            if (old) print_value(out, old);
            if (old && new) fputs("->", out);
            if (new) print_value(out, new);
        }
    } else if (strcmp(type, "revision") == 0) {
        json_t *rev = json_object_get(j, "revision"), *counts = json_object_get(j, "counts");
        char when[48];
        pg_time_format(json_integer_value(json_object_get(rev, "commit_time")) - PG_EPOCH_OFFSET_US, when, sizeof when);
        fprintf(out, "%-8s %-14s %-8s lsn=%s time=%s actor=", type, jstr(j, "id"), "commit", jstr(rev, "end_lsn"),
                when);
        print_actor(out, json_object_get(j, "actor"));
        fprintf(out, " description=");
        print_value(out, json_object_get(j, "description"));
        fprintf(out,
                " ins=%" JSON_INTEGER_FORMAT " upd=%" JSON_INTEGER_FORMAT " del=%" JSON_INTEGER_FORMAT
                " trunc=%" JSON_INTEGER_FORMAT " snap=%" JSON_INTEGER_FORMAT,
                json_integer_value(json_object_get(counts, "insert")),
                json_integer_value(json_object_get(counts, "update")),
                json_integer_value(json_object_get(counts, "delete")),
                json_integer_value(json_object_get(counts, "truncate")),
                json_integer_value(json_object_get(counts, "snapshot")));
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(j, "tables"), i, t)
            fprintf(out, " %s.%s:%" JSON_INTEGER_FORMAT, jstr(t, "schema"), jstr(t, "name"),
                    json_integer_value(json_object_get(t, "count")));
    } else {
        fprintf(out, "%-8s %-14s %-8s %s.%s replident=%s cols:", type, jstr(j, "id"), "schema", jstr(table, "schema"),
                jstr(table, "name"), jstr(j, "replident"));
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(j, "columns"), i, c) fprintf(
            out, " %s:%" JSON_INTEGER_FORMAT "%s", jstr(c, "name"), json_integer_value(json_object_get(c, "type_oid")),
            json_is_true(json_object_get(c, "is_key")) ? "(key)" : "");
    }
    fputc('\n', out);
}

/* Decode and print one message; where names it in errors. */
static void emit(TailState *ts, const void *buf, size_t len, const char *where)
{
    json_t *j = NULL;
    size_t used = 0;
    WrError err = {0};
    WrStatus st = mpc_decode_json(buf, len, &used, &j, &err);
    if (st == WR_OK && used != len) {
        json_decref(j);
        st = wr_error_set(&err, WR_PROTOCOL, "%zu bytes after the message", len - used);
    }
    if (st != WR_OK) {
        fprintf(stderr, "walrev tail: %s: %s\n", where, err.msg);
        ts->bad++;
        return;
    }
    if (ts->opt->format == FMT_JSON) {
        char *s = json_dumps(j, JSON_COMPACT);
        fprintf(stdout, "%s\n", s);
        free(s);
    } else {
        print_table_row(stdout, j);
    }
    fflush(stdout);
    json_decref(j);
    ts->printed++;
}

static bool done(const TailState *ts)
{
    return (ts->cfg->stop && *ts->cfg->stop) ||
           (ts->opt->max_messages && ts->printed + ts->bad >= ts->opt->max_messages);
}

/* ---- a file-sink file ---- */

static int tail_file(TailState *ts)
{
    const TailOptions *o = ts->opt;
    FILE *fp = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "rb");
    if (!fp) {
        fprintf(stderr, "walrev tail: could not open %s: %s\n", o->file, strerror(errno));
        return 1;
    }
    StrBuf buf;
    strbuf_init(&buf);
    size_t start = 0;
    uint64_t offset = 0;
    bool eof = false;
    int rc = 0;
    while (!done(ts)) {
        json_t *j = NULL;
        size_t used = 0;
        WrError err = {0};
        WrStatus st = mpc_decode_json(buf.data + start, buf.len - start, &used, &j, &err);
        json_decref(j);
        if (st == WR_AGAIN || buf.len == start) {
            if (eof) {
                if (buf.len != start) {
                    fprintf(stderr, "walrev tail: %s: %zu bytes of an incomplete message at offset %" PRIu64 "\n",
                            o->file, buf.len - start, offset);
                    rc = 1;
                }
                break;
            }
            /* keep the unread tail, read more */
            if (start > 0) {
                memmove(buf.data, buf.data + start, buf.len - start);
                buf.len -= start;
                start = 0;
            }
            char chunk[65536];
            size_t n = fread(chunk, 1, sizeof chunk, fp);
            if (n == 0) {
                if (ferror(fp)) {
                    fprintf(stderr, "walrev tail: could not read %s: %s\n", o->file, strerror(errno));
                    rc = 1;
                    break;
                }
                eof = true;
            }
            strbuf_append(&buf, chunk, n);
            continue;
        }
        if (st != WR_OK) {
            /* msgpack gives no resynchronisation point: stop at the first bad message */
            fprintf(stderr, "walrev tail: %s: offset %" PRIu64 ": %s\n", o->file, offset, err.msg);
            rc = 1;
            break;
        }
        char where[64];
        snprintf(where, sizeof where, "offset %" PRIu64, offset);
        emit(ts, buf.data + start, used, where);
        start += used;
        offset += used;
    }
    strbuf_free(&buf);
    if (fp != stdin) fclose(fp);
    return rc ? rc : (ts->bad ? 1 : 0);
}

/* ---- Kafka ---- */

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    LogLevel l = level <= 3   ? LOG_LEVEL_ERROR
                 : level == 4 ? LOG_LEVEL_WARN
                 : level <= 6 ? LOG_LEVEL_INFO
                              : LOG_LEVEL_DEBUG;
    WR_LOG(l, "msg=\"librdkafka: %s\" facility=%s client=%s", buf, fac, rd_kafka_name(rk));
}

static bool conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK) return true;
    fprintf(stderr, "walrev tail: kafka property %s: %s\n", name, errstr);
    return false;
}

/* The group's assignment, taken as given (eager or cooperative protocol). An
 * empty one starts the --timeout-ms clock at once (nothing to read); else the
 * first message or partition end does. Runs inside consumer_poll. */
/* A partition reached its first message or its end: once every assigned one
 * has, reading has started and the quiet clock runs. */
static void partition_started(TailState *ts, const char *topic, int32_t partition)
{
    if (ts->unstarted) rd_kafka_topic_partition_list_del(ts->unstarted, topic, partition);
    if (!ts->reading && (!ts->unstarted || ts->unstarted->cnt == 0)) {
        ts->reading = true;
        ts->quiet_since = mono_now_us() / 1000;
    }
}

static void track_assignment(TailState *ts, const rd_kafka_topic_partition_list_t *parts, bool added, bool replace)
{
    if (replace) {
        if (ts->unstarted) rd_kafka_topic_partition_list_destroy(ts->unstarted);
        ts->unstarted = rd_kafka_topic_partition_list_new(parts ? parts->cnt : 0);
    }
    for (int i = 0; parts && i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (added)
            rd_kafka_topic_partition_list_add(ts->unstarted, tp->topic, tp->partition);
        else
            rd_kafka_topic_partition_list_del(ts->unstarted, tp->topic, tp->partition);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    TailState *ts = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_error_t *ce = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative)
            ce = rd_kafka_incremental_assign(rk, parts);
        else
            e = rd_kafka_assign(rk, parts);
        track_assignment(ts, parts, true, !cooperative || !ts->unstarted);
        if (parts->cnt == 0 && !ts->reading) {
            ts->reading = true;
            ts->quiet_since = mono_now_us() / 1000;
        }
        log_debug("msg=\"kafka partitions assigned\" count=%d", parts->cnt);
    } else {
        if (cooperative)
            ce = rd_kafka_incremental_unassign(rk, parts);
        else
            e = rd_kafka_assign(rk, NULL);
        track_assignment(ts, cooperative ? parts : NULL, false, !cooperative);
    }
    if (ce) {
        log_warn("msg=\"kafka assignment failed\" error=\"%s\"", rd_kafka_error_string(ce));
        rd_kafka_error_destroy(ce);
    } else if (e) {
        log_warn("msg=\"kafka assignment failed\" error=\"%s\"", rd_kafka_err2str(e));
    }
}

static int tail_kafka(TailState *ts, const TailConfig *cfg)
{
    const TailOptions *o = ts->opt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char group[96];
    snprintf(group, sizeof group, "walrev-tail-%d-%lld", (int)getpid(), (long long)time(NULL));
    bool ok = true;
    /* The user's properties first (TLS, SASL), except what only a producer understands. */
    for (int i = 0; i < cfg->nprops && ok; i++) {
        const char *n = cfg->prop_names[i];
        if (strcmp(n, "acks") == 0 || strcmp(n, "enable.idempotence") == 0 || strncmp(n, "queue.buffering", 15) == 0 ||
            strcmp(n, "linger.ms") == 0 || strcmp(n, "message.timeout.ms") == 0 || strcmp(n, "compression.type") == 0 ||
            strcmp(n, "compression.codec") == 0 || strcmp(n, "batch.num.messages") == 0)
            continue;
        ok = conf_set(conf, n, cfg->prop_values[i]);
    }
    ok = ok && (!o->brokers || conf_set(conf, "bootstrap.servers", o->brokers)) && conf_set(conf, "group.id", group) &&
         conf_set(conf, "enable.auto.commit", "false") && conf_set(conf, "enable.auto.offset.store", "false") &&
         conf_set(conf, "auto.offset.reset", o->from_beginning ? "earliest" : "latest") &&
         conf_set(conf, "enable.partition.eof", "true") && conf_set(conf, "topic.metadata.refresh.interval.ms", "5000");
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return EXIT_USAGE;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, ts);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "walrev tail: kafka consumer: %s\n", errstr);
        return EXIT_USAGE;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(o->ntopics ? o->ntopics : 1);
    if (o->ntopics) {
        for (int i = 0; i < o->ntopics; i++)
            rd_kafka_topic_partition_list_add(subs, o->topics[i], RD_KAFKA_PARTITION_UA);
    } else {
        /* "^walrev\..*": every topic under the prefix; new tables' topics join as they appear */
        StrBuf re;
        strbuf_init(&re);
        strbuf_append_char(&re, '^');
        for (const char *p = o->prefix; *p; p++) {
            if (*p == '.' || *p == '-') strbuf_append_char(&re, '\\');
            strbuf_append_char(&re, *p);
        }
        strbuf_append_str(&re, "\\..*");
        rd_kafka_topic_partition_list_add(subs, re.data, RD_KAFKA_PARTITION_UA);
        strbuf_free(&re);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    int rc = 0;
    if (e) {
        fprintf(stderr, "walrev tail: could not subscribe: %s\n", rd_kafka_err2str(e));
        rc = 1;
        goto done;
    }
    int64_t start = mono_now_us() / 1000;
    while (!done(ts)) {
        int64_t now = mono_now_us() / 1000;
        if (o->timeout_ms && !ts->reading && now - start >= START_WAIT_MS) {
            fprintf(stderr, "walrev tail: nothing assigned or read after %d s (are the brokers reachable?)\n",
                    START_WAIT_MS / 1000);
            rc = 1;
            break;
        }
        if (o->timeout_ms && ts->reading && now - ts->quiet_since >= o->timeout_ms) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, POLL_MS);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            partition_started(ts, rd_kafka_topic_name(m->rkt), m->partition);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            char fatal[256];
            if (rd_kafka_fatal_error(rk, fatal, sizeof fatal)) {
                fprintf(stderr, "walrev tail: kafka fatal error: %s\n", fatal);
                rc = 1;
                rd_kafka_message_destroy(m);
                break;
            }
            log_warn("msg=\"kafka consumer error: %s\" err=%s", rd_kafka_message_errstr(m), rd_kafka_err2name(m->err));
            rd_kafka_message_destroy(m);
            continue;
        }
        partition_started(ts, rd_kafka_topic_name(m->rkt), m->partition);
        ts->quiet_since = mono_now_us() / 1000;
        char where[300];
        snprintf(where, sizeof where, "%s[%" PRId32 "]@%" PRId64, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
        if (!m->payload) {
            /* a tombstone (erase_tombstones: walrev erase on a compacted topic): no message, only its key */
            json_t *t = json_object();
            json_object_set_new(t, "type", json_string("tombstone"));
            json_object_set_new(t, "topic", json_string(rd_kafka_topic_name(m->rkt)));
            json_object_set_new(t, "key", m->key ? json_stringn((const char *)m->key, m->key_len) : json_null());
            char *s = json_dumps(t, JSON_COMPACT);
            if (ts->opt->format == FMT_JSON)
                fprintf(stdout, "%s\n", s);
            else
                fprintf(stdout, "tombstone %s %.*s\n", rd_kafka_topic_name(m->rkt), (int)m->key_len,
                        m->key ? (const char *)m->key : "");
            free(s);
            json_decref(t);
            fflush(stdout);
            ts->printed++;
        } else {
            emit(ts, m->payload, m->len, where);
        }
        rd_kafka_message_destroy(m);
    }
done:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (ts->unstarted) rd_kafka_topic_partition_list_destroy(ts->unstarted);
    ts->unstarted = NULL;
    return rc ? rc : (ts->bad ? 1 : 0);
}

/* ---- the command ---- */

static bool parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0) return false;
    *out = v;
    return true;
}

static const char *cfg_prop(const TailConfig *cfg, const char *name)
{
    for (int i = 0; i < cfg->nprops; i++)
        if (strcmp(cfg->prop_names[i], name) == 0) return cfg->prop_values[i];
    return NULL;
}

const struct option tail_long_options[] = {{"brokers", required_argument, NULL, 'b'},
                                           {"prefix", required_argument, NULL, 'p'},
                                           {"topic", required_argument, NULL, 't'},
                                           {"file", required_argument, NULL, 'f'},
                                           {"from-beginning", no_argument, NULL, 'B'},
                                           {"format", required_argument, NULL, 'F'},
                                           {"max-messages", required_argument, NULL, 'n'},
                                           {"timeout-ms", required_argument, NULL, 'T'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};

void tail_print_help(FILE *out)
{
    fputs("usage: walrev [global options] tail [--brokers LIST] [--prefix P] [--topic T]... [--file PATH]\n"
          "                [--from-beginning] [--format json|table] [--max-messages N] [--timeout-ms MS]\n\n"
          "Follow revisions from Kafka (a consumer group that never commits offsets) or from a\n"
          "file-sink file, and print each as a JSON line or a table row.\n\n"
          "  -b, --brokers LIST     bootstrap servers (default: [kafka] bootstrap.servers)\n"
          "  -p, --prefix P         topic prefix (default: [kafka] topic_prefix, else walrev)\n"
          "  -t, --topic T          a topic to read (repeatable; default every topic P.*)\n"
          "  -f, --file PATH        read a file-sink file (- for stdin) instead of Kafka\n"
          "  -B, --from-beginning   start at the oldest message (default: only new ones)\n"
          "  -F, --format F         json (default) or table\n"
          "  -n, --max-messages N   stop after N messages\n"
          "  -T, --timeout-ms MS    stop after MS milliseconds without a message, counted once\n"
          "                         reading has started: partitions assigned and each read\n"
          "                         to a message or its end (exit 1 if not within 30 s)\n",
          out);
}

int tail_command(int argc, char **argv, const TailConfig *cfg)
{
    TailOptions o = {.prefix = cfg->topic_prefix ? cfg->topic_prefix : "walrev"};
    o.topics = xcalloc((size_t)argc + 1, sizeof *o.topics);
    int rc = 0, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+" TAIL_SHORT_OPTIONS, tail_long_options, NULL)) != -1) {
        switch (c) {
        case 'b': o.brokers = optarg; break;
        case 'p': o.prefix = optarg; break;
        case 't': o.topics[o.ntopics++] = optarg; break;
        case 'f': o.file = optarg; break;
        case 'B': o.from_beginning = true; break;
        case 'F':
            if (strcmp(optarg, "json") == 0)
                o.format = FMT_JSON;
            else if (strcmp(optarg, "table") == 0)
                o.format = FMT_TABLE;
            else {
                fprintf(stderr, "walrev tail: --format must be json or table, not \"%s\"\n", optarg);
                rc = EXIT_USAGE;
            }
            break;
        case 'n':
            if (!parse_count(optarg, &o.max_messages)) {
                fprintf(stderr, "walrev tail: --max-messages needs a count, not \"%s\"\n", optarg);
                rc = EXIT_USAGE;
            }
            break;
        case 'T':
            if (!parse_count(optarg, &o.timeout_ms)) {
                fprintf(stderr, "walrev tail: --timeout-ms needs milliseconds, not \"%s\"\n", optarg);
                rc = EXIT_USAGE;
            }
            break;
        case 'h': tail_print_help(stdout); goto out;
        default: rc = EXIT_USAGE; break;
        }
    }
    if (!rc && optind < argc) {
        fprintf(stderr, "walrev tail: unexpected argument \"%s\"\n", argv[optind]);
        rc = EXIT_USAGE;
    }
    if (!o.brokers) o.brokers = cfg_prop(cfg, "bootstrap.servers");
    if (!rc && !o.file && !o.brokers) {
        fprintf(stderr, "walrev tail: no brokers: give --brokers or set bootstrap.servers in [kafka]\n");
        rc = EXIT_USAGE;
    }
    if (rc) {
        fputs("Try 'walrev tail --help'.\n", stderr);
        goto out;
    }
    TailState ts = {.opt = &o, .cfg = cfg};
    rc = o.file ? tail_file(&ts) : tail_kafka(&ts, cfg);
out:
    free(o.topics);
    return rc;
}
