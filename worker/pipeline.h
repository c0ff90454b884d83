/*
 * pipeline.h — `walrev run`: the replication loop. Streams the slot, assembles
 * revisions, fans them out to the sinks, confirms to the slot only what every
 * sink has made durable, reconnects with capped backoff, stops cleanly on a
 * signal or at --stop-lsn.
 */
#ifndef WALREV_WORKER_PIPELINE_H
#define WALREV_WORKER_PIPELINE_H

#include "worker/config.h"

/* Set from signal handlers; the loop checks them. */
extern volatile int pipeline_stop_requested;

/* Run until stopped. Returns 0 on a clean stop, non-zero (and logs) on a fatal error. */
int pipeline_run(const Config *cfg);

#endif
