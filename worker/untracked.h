/*
 * untracked.h — what `walrev run` says about tables it cannot track:
 * unlogged tables (logical decoding never sees their changes) and tables
 * outside the publication (one that cannot grow: FOR TABLE, or a schema
 * publication without the schema trigger). Each is named in a warning in
 * the log, never silently skipped. Logging only: nothing here stops the
 * worker.
 */
#ifndef WALREV_WORKER_UNTRACKED_H
#define WALREV_WORKER_UNTRACKED_H

#include <stddef.h>

/* A DDL capture row (its info JSON): warns when the table is unlogged or
 * not published by publication. */
void untracked_report_captured(const char *publication, const char *info, size_t len);

/* At start: one warning per unlogged table of the source outside
 * history_schema (connection failures are logged and ignored). */
void untracked_report_source(const char *conninfo, const char *history_schema);

#endif
