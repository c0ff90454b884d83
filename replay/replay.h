/*
 * replay.h — the replay module's one public header: time travel (snapshot),
 * audit (log, show, history, blame, diff), undo (restore, revert, rollback)
 * and `walrev verify`, as CLI commands over the history store. Replay reads
 * the history with SQL only; it never touches a replication slot, and it
 * writes to the source database only for an undo run with --apply.
 */
#ifndef WALREV_REPLAY_H
#define WALREV_REPLAY_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* What the commands need from the configuration; main.c fills it. Borrowed. */
typedef struct {
    const char *history_conninfo; /* the history store; NULL: source_conninfo, then libpq's defaults */
    const char *source_conninfo;  /* the tracked database: undo target, default --into target */
    const char *schema;           /* history schema; NULL: "walrev" */
    int required_approvals;       /* [branches] required_approvals: merge --apply needs this many (0: none) */
} ReplayOptions;

/* True if cmd is one of the commands replay_command handles. */
bool replay_is_command(const char *cmd);

/* cmd's long options (a getopt_long table, static), so the CLI can tell a
 * command's options and their values from global options; NULL if cmd is
 * not a replay command. */
const struct option *replay_command_options(const char *cmd);

/* Print `walrev cmd --help` (usage, options, what a point is) to out. */
void replay_print_help(const char *cmd, FILE *out);

/*
 * Run `walrev <cmd> ...`: cmd is one of verify, snapshot, log, show, history,
 * blame, diff, restore, revert, rollback; argv[0] is the command name and the
 * rest its options (getopt_long). Writes results to stdout and messages to
 * stderr. Returns the process exit code: 0 done, 1 error (one message line
 * on stderr, nothing changed), 2 a usage error (bad option or operand). Blocking; opens and closes its own connections.
 */
int replay_command(const char *cmd, int argc, char **argv, const ReplayOptions *opts);

/* The same with explicit streams (tests, embedding). out and err stay the caller's. */
int replay_run(const char *cmd, int argc, char **argv, const ReplayOptions *opts, FILE *out, FILE *err);

/*
 * `walrev run`'s background jobs on the history store (replay/history_job.c):
 * a thread each that runs a round every interval_s on a connection of its
 * own (a round that cannot connect is logged and tried again at the next).
 * Retention ([history] retain, replay/retain.c) prunes the history older
 * than retain_s under a short lock_timeout (a round that cannot take its
 * locks is logged and tried again later; it never holds up the stream).
 * Compaction ([history] compact_interval, replay/compact.c) rebuilds the
 * B-tree indexes of the history partitions no longer written at fillfactor
 * 100 (REINDEX CONCURRENTLY, one index at a time; a rebuild in progress is
 * cancelled by the stop and tried again by a later round).
 */
typedef struct HistoryJob HistoryJob;
typedef struct {
    const char *history_conninfo; /* copied */
    const char *schema;           /* history schema; NULL: "walrev"; copied */
    int interval_s;               /* between rounds (the first after one interval); > 0 */
    long long retain_s;           /* retention only: prune what committed longer ago than this; > 0 */
} HistoryJobConfig;
/* Start the retention thread; NULL when it could not start (logged). */
HistoryJob *replay_retainer_start(const HistoryJobConfig *cfg);
/* Start the compaction thread; NULL when it could not start (logged). */
HistoryJob *replay_compactor_start(const HistoryJobConfig *cfg);
/* Stop and join either (a round in progress is told to stop and waited for); accepts NULL. */
void replay_history_job_stop(HistoryJob *job);

/*
 * schema/sql/replay.sql (views and functions over the history store) with
 * @schema@ replaced by the quoted identifier of schema. Apply it after
 * history.sql; idempotent. Caller frees. Pure: no connection.
 */
char *replay_sql_render(const char *schema);

#endif
