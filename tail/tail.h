/*
 * tail.h — `walrev tail`: a consumer for people. Reads walrev's Kafka topics
 * (or a file-sink file) and prints every message decoded, one JSON line each
 * or as an aligned table, proving the wire format round-trips. Only consumes:
 * it never commits offsets, so it never disturbs other consumers.
 */
#ifndef WALREV_TAIL_TAIL_H
#define WALREV_TAIL_TAIL_H

#include <getopt.h>
#include <stdio.h>
#include <signal.h>

/* What `walrev tail` takes from the configuration, borrowed for the call. */
typedef struct {
    const char *topic_prefix; /* [kafka] topic prefix; NULL: "walrev" */
    /* [kafka] properties for librdkafka (TLS, SASL, bootstrap.servers); a
     * producer's own (acks, linger.ms, ...) are passed over */
    const char *const *prop_names;
    const char *const *prop_values;
    int nprops;
    const volatile sig_atomic_t *stop; /* set by SIGINT/SIGTERM; NULL: never */
} TailConfig;

/* tail's options (getopt_long table and short options), for the CLI's split
 * of global options from tail's own. */
extern const struct option tail_long_options[];
#define TAIL_SHORT_OPTIONS "b:p:t:f:BF:n:T:h"

/* Print `walrev tail --help` to out. */
void tail_print_help(FILE *out);

/*
 * argv[0] is the command name ("tail"); options follow:
 *   --brokers B        bootstrap servers (default: bootstrap.servers among cfg's properties)
 *   --prefix P         topic prefix (default: cfg's kafka topic prefix, else "walrev")
 *   --topic T          a topic to read (repeatable; default: every topic matching ^P\.)
 *   --file PATH        read a file-sink file ("-" for stdin) instead of Kafka
 *   --from-beginning   start at the oldest message (default: only new ones)
 *   --format json|table
 *   --max-messages N   stop after N messages
 *   --timeout-ms N     stop after N ms without a message, counted once reading
 *                      has started (partitions assigned and read to a message
 *                      or their end); exit 1 if it has not within 30 s
 * Other librdkafka properties come from cfg (TLS/SASL). Stops when *cfg->stop
 * is set (SIGINT/SIGTERM). Returns 0 on a
 * normal end, 1 if a message could not be decoded or Kafka failed, 2 on usage errors.
 */
int tail_command(int argc, char **argv, const TailConfig *cfg);

#endif
