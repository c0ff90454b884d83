/*
 * log.h — the one logger: one line per event to stderr, lowercase message,
 * key=value fields at the end. Macros do not format below the active level.
 * Only the worker, CLI and sink drivers log; leaf modules return WrError.
 * Never pass a secret or a hidden column's value.
 */
#ifndef WALREV_LOG_H
#define WALREV_LOG_H

#include "common/common.h"

typedef enum { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } LogLevel;

extern LogLevel wr_log_level;

void wr_log_set_level(LogLevel level);
/* True when stderr is systemd's journal stream (JOURNAL_STREAM matches it). */
bool wr_log_to_journal(void);
/* Use through the macros below. Prints "ts=<time> level=<level> <message>\n"
 * to stderr, after "<priority>" when stderr is the journal (log.c). */
void wr_log_write(LogLevel level, const char *fmt, ...) WR_PRINTF(2, 3);

#define WR_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= wr_log_level) wr_log_write((level), __VA_ARGS__);                           \
    } while (0)
#define log_error(...) WR_LOG(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) WR_LOG(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) WR_LOG(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) WR_LOG(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
