/*
 * setup.h — `walrev setup`: checks that the source can feed walrev (wal_level,
 * slots, senders, privileges) and says how to fix what is missing, then
 * creates what is missing: the history store, the walrev.context() functions,
 * the publication and the replication slot. Idempotent (docs/cli.md). Also
 * what `walrev run` says of tables it cannot track (untracked_report_*).
 */
#ifndef WALREV_SETUP_SETUP_H
#define WALREV_SETUP_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* What setup reads of the configuration (docs/configuration.md), borrowed for the call. */
typedef struct {
    const char *source_conninfo; /* required */
    const char *slot_name;
    const char *publication;
    char *const *tables; /* [source] tables for the publication; NULL = all tables */
    int ntables;
    bool history_enabled;
    const char *history_conninfo; /* set when history_enabled */
    const char *history_schema;
    int partition_revisions; /* [history] partition_revisions for new partitions; 0: keep the store's */
} SetupConfig;

typedef struct {
    bool check_only;            /* --check: run the checks, change nothing */
    bool replica_identity_full; /* --replica-identity-full: ALTER published tables */
    bool no_baseline;           /* --no-baseline: history starts empty at the slot */
    /*
     * Creates the slot and takes the baseline through the sinks (the worker's
     * pipeline_create_slot), called as create_slot(create_slot_arg, ...);
     * returns 0 on success. NULL: plain slot creation without a baseline.
     */
    int (*create_slot)(const void *arg, bool baseline, bool *created);
    const void *create_slot_arg;
} SetupOptions;

/*
 * Run setup against cfg (validated; source_conninfo set). Prints a summary
 * on stdout and each problem with its fix on stderr. Blocks on the network.
 * Returns the process exit code: 0 done (or nothing to do), 1 a check failed
 * or a step failed (nothing after it is attempted).
 */
int setup_command(const SetupConfig *cfg, const SetupOptions *opts);

/*
 * The context attestation key's pads (ipad || opad, 128 bytes) from
 * <history_schema>.context_key on the source, which setup makes and only
 * walrev's role may read (docs/history-store.md#who-acted). *found=false
 * when the table is missing or unreadable to this role (nothing logged: the
 * caller says so). WR_RETRY / WR_FATAL from pgio. Blocks on a connection.
 */
WrStatus setup_read_context_key(const char *conninfo, const char *history_schema, uint8_t pads[128], bool *found,
                                WrError *err);

/*
 * Whether the source's DDL capture event trigger (walrev_capture_ddl, which
 * setup installs as a superuser) exists and is enabled (*on), and whether,
 * besides, its drop capture (walrev_capture_drop) is enabled and reports the
 * DROP INDEX of a replica identity index (*index_drops_on; an older setup's
 * does not). WR_RETRY / WR_FATAL from pgio. Blocks on a connection.
 */
WrStatus setup_read_ddl_capture_on(const char *conninfo, bool *on, bool *index_drops_on, WrError *err);

/* ---- tables `walrev run` cannot track: warnings in the log, logging only ---- */

/* A DDL capture row (its info JSON): warns when the table is unlogged or
 * not published by publication. The history store's own partitions
 * (history_schema's revision_pN, revision_context_pN, object_delta_pN, made
 * by the history sink as ids grow) are walrev's, not the source's: no warning. */
void untracked_report_captured(const char *publication, const char *history_schema, const char *info, size_t len);

/* At start: one warning per unlogged table of the source outside
 * history_schema, and one when publication is WITH
 * (publish_via_partition_root = true) (connection failures are logged and
 * ignored). */
void untracked_report_source(const char *conninfo, const char *publication, const char *history_schema);
/* The query naming unlogged tables (and partitioned ones) outside the history schema ($1), "schema.table". */
extern const char untracked_unlogged_sql[];

#endif
