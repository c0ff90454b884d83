/*
 * pipeline.h — `walrev run` and the slot's creation, wired from the
 * configuration: the sinks, the replication session (session/session.h:
 * streams the slot, assembles revisions, fans them out, confirms to the slot
 * only what every sink has made durable, stops cleanly on a signal or at
 * --stop-lsn) and the background jobs; sessions run again with capped backoff.
 */
#ifndef WALREV_WORKER_PIPELINE_H
#define WALREV_WORKER_PIPELINE_H

#include <signal.h>

#include "baseline/baseline.h"
#include "status/status.h"
#include "worker/config.h"

/* Set from signal handlers; the loop checks it. */
extern volatile sig_atomic_t pipeline_stop_requested;

/* The part of cfg that walrev status and the worker's state row read
 * (points into cfg; valid while cfg is). */
void pipeline_status_target(const Config *cfg, StatusTarget *out);

/* Run until stopped. Returns 0 on a clean stop, non-zero (and logs) on a fatal error. */
int pipeline_run(const Config *cfg);

/*
 * Create the replication slot (walrev setup). With baseline, the slot exports
 * its snapshot and every published table's existing rows are recorded, read
 * in that snapshot, as the first revision (operation snapshot) in every sink,
 * so history starts complete and meets the stream with no gap or overlap.
 * A slot left by an interrupted baseline (no checkpoint in the history store)
 * is dropped and the baseline taken again. Returns 0, or 1 after logging.
 * *created says whether a slot was made.
 */
int pipeline_create_slot(const Config *cfg, bool baseline, bool *created);

/* The part of cfg the baselines read (strings borrowed from cfg). */
void pipeline_baseline_config(const Config *cfg, BaselineConfig *out);

#endif
