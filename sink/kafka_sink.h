/*
 * kafka_sink.h — the Kafka sink: every object delta to `<prefix>.<schema>.<table>`
 * keyed by the row key, then the revision message to `<prefix>.revisions`,
 * msgpack-encoded (docs/kafka-format.md), through an idempotent librdkafka
 * producer with acks=all. Durability follows delivery reports, never produce calls.
 */
#ifndef WALREV_SINK_KAFKA_SINK_H
#define WALREV_SINK_KAFKA_SINK_H

#include "sink/sink.h"

/* One librdkafka property, passed through verbatim ("kafka.<name> = value" in the config). */
typedef struct {
    const char *name;
    const char *value;
} KafkaProp;

typedef struct {
    const char *brokers;      /* bootstrap.servers; may be NULL when props carry it */
    const char *topic_prefix; /* default "walrev" */
    /* Not NULL: after an erasure request (an insert into erase_schema.erasure_log,
     * `walrev erase`), also a tombstone (null value) keyed by the erased object on
     * its table's topic, so a compacted topic drops the object's messages
     * (docs/kafka-format.md#erase-events). Copied. */
    const char *erase_schema;
    const KafkaProp *props; /* applied after walrev's defaults, so they override them */
    int nprops;
    int flush_timeout_ms; /* how long flush() waits for delivery reports (default 10000) */
    /* Called about every 100 ms while a write waits for room in the bounded
     * local queue (brokers slow or down), so the caller can answer the
     * source's keepalives and feed its watchdog meanwhile. Returning false
     * gives up: the write returns WR_RETRY (a stop was asked for). May be NULL. */
    bool (*while_waiting)(void *arg);
    void *while_waiting_arg;
} KafkaSinkConfig;

/*
 * Create the producer (it connects in the background). walrev's defaults,
 * which props may override: queue.buffering.max.messages=100000,
 * queue.buffering.max.kbytes=65536 (bounded memory: a full queue blocks
 * write_delta until deliveries free room), message.timeout.ms=0 (a broker
 * outage stalls, never drops). Forced: enable.idempotence=true, acks=all;
 * props that contradict them are refused. librdkafka logs go to common/log.h.
 *
 * Returns NULL and fills err (WR_INVALID: unknown property or bad value,
 * conflicting acks/idempotence, empty prefix; WR_FATAL: producer creation
 * failed). The config is copied; the caller keeps ownership of its strings.
 *
 * Delivery: durable_lsn() advances to a revision's end LSN only once every
 * message of that revision and of all earlier ones has a successful delivery
 * report. A fatal producer error (rd_kafka_fatal_error) or a permanent
 * delivery error makes every later call return WR_FATAL. A delivery that
 * timed out (only if the user sets message.timeout.ms) makes calls return
 * WR_RETRY until abort() + open(): the worker then restarts from the slot's
 * confirmed position and whole revisions may be sent twice (same ids).
 *
 * Position: a revision message is produced only once every delta of its
 * revision has been delivered, and in commit order, so the last revision
 * message on <prefix>.revisions says what Kafka holds whole. open() reads it
 * back (a consumer of its own, with the connection and security properties
 * of props) and reports it with known = read_back = true (zeros for an empty
 * or missing topic); the fan-out then resends what Kafka lacks and skips what
 * it holds. open() returns WR_RETRY while the brokers cannot be reached and
 * WR_FATAL when that last message is not a walrev revision message.
 */
Sink *sink_kafka_create(const KafkaSinkConfig *cfg, WrError *err);

/* Counters for tests and metrics. */
typedef struct {
    uint64_t produced;  /* messages handed to librdkafka */
    uint64_t delivered; /* successful delivery reports */
    uint64_t failed;    /* failed delivery reports */
    uint64_t queue_full_waits;
    size_t revisions_in_flight;
} KafkaSinkStats;

/* s must be a Kafka sink. */
void sink_kafka_stats(Sink *s, KafkaSinkStats *out);

#endif
