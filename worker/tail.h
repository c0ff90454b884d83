/*
 * tail.h — `walrev tail`: a consumer for people. Reads walrev's Kafka topics
 * (or a file-sink file) and prints every message decoded, one JSON line each
 * or as an aligned table, proving the wire format round-trips. Only consumes:
 * it never commits offsets, so it never disturbs other consumers.
 */
#ifndef WALREV_WORKER_TAIL_H
#define WALREV_WORKER_TAIL_H

#include "worker/config.h"

/*
 * argv[0] is the command name ("tail"); options follow:
 *   --brokers B        bootstrap servers (default: kafka bootstrap.servers from cfg)
 *   --prefix P         topic prefix (default: cfg's kafka topic prefix, else "walrev")
 *   --topic T          a topic to read (repeatable; default: every topic matching ^P\.)
 *   --file PATH        read a file-sink file ("-" for stdin) instead of Kafka
 *   --from-beginning   start at the oldest message (default: only new ones)
 *   --format json|table
 *   --max-messages N   stop after N messages
 *   --timeout-ms N     stop after N ms without a message
 * Other librdkafka properties come from cfg (TLS/SASL). cfg may be NULL.
 * Stops when pipeline_stop_requested is set (SIGINT/SIGTERM). Returns 0 on a
 * normal end, 1 if a message could not be decoded or Kafka failed, 2 on usage errors.
 */
int tail_command(int argc, char **argv, const Config *cfg);

#endif
