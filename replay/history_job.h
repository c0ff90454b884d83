/*
 * history_job.h — inside replay/ only: what a background job of `walrev run`
 * on the history store (retention in retain.c, compaction in compact.c)
 * tells history_job.c, which owns the thread, the copied settings and the
 * connection: opened before each round and closed after it, so a job never
 * shares the stream's connection nor holds one between rounds. A round that
 * cannot connect is logged and skipped (the next one tries again); what a
 * round does, its locks and its log lines are the job's own.
 */
#ifndef WALREV_REPLAY_HISTORY_JOB_H
#define WALREV_REPLAY_HISTORY_JOB_H

#include <stdatomic.h>

#include <libpq-fe.h>

#include "replay/replay.h"

/*
 * One round on conn (the job's own: connected, idle, autocommit; closed
 * after the round). cfg is the job's copy (schema never NULL) and schema_q
 * the schema's quoted identifier, both valid for the job's life. stop turns
 * non-zero when the job is being stopped: a long round may end early.
 */
typedef void (*HistoryJobRound)(PGconn *conn, const HistoryJobConfig *cfg, const char *schema_q,
                                const atomic_int *stop);

typedef struct {
    const char *name;        /* "retention": the connection is "history store (retention)" in errors */
    const char *not_done;    /* "history not pruned": the log line of a round that cannot connect */
    const char *not_started; /* logged when the thread cannot be created */
    HistoryJobRound round;
} HistoryJobKind;

/* Start a job of that kind (kind must outlive it: a static); NULL when its
 * thread could not be created (kind->not_started is logged). */
HistoryJob *history_job_start(const HistoryJobKind *kind, const HistoryJobConfig *cfg);

#endif
