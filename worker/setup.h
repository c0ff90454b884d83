/*
 * setup.h — `walrev setup`: checks that the source can feed walrev (wal_level,
 * slots, senders, privileges) and says how to fix what is missing, then
 * creates what is missing: the history store, the walrev.context() functions,
 * the publication and the replication slot. Idempotent (docs/cli.md).
 */
#ifndef WALREV_WORKER_SETUP_H
#define WALREV_WORKER_SETUP_H

#include "worker/config.h"

typedef struct {
    bool check_only;            /* --check: run the checks, change nothing */
    bool replica_identity_full; /* --replica-identity-full: ALTER published tables */
    bool no_baseline;           /* --no-baseline: history starts empty at the slot */
    /*
     * Creates the slot and takes the baseline through the sinks (the worker's
     * pipeline_create_slot). NULL: plain slot creation without a baseline.
     */
    int (*create_slot)(const Config *cfg, bool baseline, bool *created);
} SetupOptions;

/*
 * Run setup against cfg (validated; source_conninfo set). Prints a summary
 * on stdout and each problem with its fix on stderr. Blocks on the network.
 * Returns the process exit code: 0 done (or nothing to do), 1 a check failed
 * or a step failed (nothing after it is attempted).
 */
int setup_command(const Config *cfg, const SetupOptions *opts);

#endif
