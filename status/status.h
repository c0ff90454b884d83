/*
 * status.h — `walrev status`, one screen for an operator (docs/cli.md): the
 * slot, lag, rates, the last revision, each sink's durable position,
 * baselines in progress, gaps and the worker's last error; and the worker's
 * side of it, the row it keeps in <schema>.worker_state. Reads catalogs and
 * the history store only; never touches the slot.
 */
#ifndef WALREV_STATUS_STATUS_H
#define WALREV_STATUS_STATUS_H

#include <getopt.h>
#include <stdio.h>

#include "common/common.h"

/* Where status looks and what it records: the source's slot and the history
 * store. The strings are the caller's and must outlive every call given them
 * (status_record's thread copies what it keeps). */
typedef struct {
    const char *source_conninfo;  /* libpq conninfo of the source ("" = libpq's defaults) */
    const char *slot_name;        /* the replication slot walrev streams from */
    bool history_enabled;         /* false: no history store, status_record does nothing */
    const char *history_conninfo; /* the history store's conninfo */
    const char *history_schema;   /* its schema (unquoted) */
} StatusTarget;

/* status's options (a getopt_long table), for the CLI's split of global options. */
extern const struct option status_long_options[];

/* Print `walrev status --help` to out. */
void status_print_help(FILE *out);

/*
 * argv[0] is "status"; options --format aligned|json, --max-lag-bytes N,
 * --max-lag-seconds N. Prints to stdout. Returns the exit code: 0 healthy,
 * 1 degraded (each reason printed: slot missing or inactive, WAL lost or
 * unreserved, lag over a limit, a database unreachable), 2 usage. Blocking;
 * opens and closes its own connections.
 */
int status_command(const StatusTarget *cfg, int argc, char **argv);

/*
 * Record the worker's state in <schema>.worker_state (one row per slot):
 * state is "streaming", "retrying", "failed" or "stopped"; err (may be NULL)
 * becomes the last error, with its status class and time. Does not block:
 * a background thread writes the latest state on a connection of its own
 * (the first call starts it and copies cfg's history settings). Best effort:
 * a store it cannot reach (often the very error being recorded) or without
 * the table (set up before it: run setup) is logged at debug level. No-op
 * when the history store is off.
 */
void status_record(const StatusTarget *cfg, const char *state, const WrError *err);

/* Record each sink's durable position (as the run loop last published it
 * into common/metrics.h) in the worker's row, leaving its state as it is.
 * Does not block; a no-op before the first status_record. status_record
 * records the positions too. */
void status_record_positions(const StatusTarget *cfg);

/* Wait until the state last recorded is written (or given up), at most
 * timeout_ms: before the process exits. */
void status_record_flush(int timeout_ms);

#endif
