/*
 * log.h — the one logger: one logfmt line per event to stderr,
 * `ts=… level=… msg="…" key=value …`, lowercase message. Macros do not
 * format below the active level. Only the worker, CLI and sink drivers log;
 * leaf modules return WrError. Never pass a secret or a hidden column's value.
 *
 * Callers write the format as logfmt (`msg=\"could not connect\" target=%s
 * error=\"%s\"`) and pass raw strings: every %s is escaped where it lands
 * (wr_log_format), so a value with quotes, spaces or newlines never breaks
 * the line.
 */
#ifndef WALREV_LOG_H
#define WALREV_LOG_H

#include "common/common.h"

typedef enum { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } LogLevel;

extern LogLevel wr_log_level;

void wr_log_set_level(LogLevel level);
/* True when stderr is systemd's journal stream (JOURNAL_STREAM matches it). */
bool wr_log_to_journal(void);
/* Use through the macros below. Prints "ts=<time> level=<level> <fields>\n"
 * to stderr, after "<priority>" when stderr is the journal (log.c). */
void wr_log_write(LogLevel level, const char *fmt, ...) WR_PRINTF(2, 3);

/*
 * Append the logfmt fields fmt describes to out, printf-like, with every %s
 * (and %c) argument escaped for where it stands in fmt:
 *   inside a quoted value (`error=\"%s\"`): `"` and `\` are backslashed,
 *     newline, CR and tab become \n \r \t, other control bytes \u00XX;
 *   a bare value (`slot=%s`, `table=%s.%s`: from "key=" to the format's next
 *     space): written as is when the whole value is a plain token, else
 *     quoted and escaped as above (empty, space, `=`, `"`, control bytes).
 * A precision (`%.*s`, `%.40s`) bounds the bytes read; a field width is
 * ignored for strings; a NULL string is written as `null`; one string value
 * is cut at 4 KiB. Numbers and every other conversion are printf's.
 */
void wr_log_format(StrBuf *out, const char *fmt, va_list ap) WR_PRINTF(2, 0);

/*
 * For a signal handler, which may call only async-signal-safe functions
 * (no stdio, no gmtime): a whole line "ts=… level=<level> msg=\"<msg>\"\n",
 * msg written as is (a literal without quotes or backslashes), with the
 * journal's "<priority>" first when journal. Returns its length (0 when it
 * does not fit in size).
 */
size_t wr_log_signal_line(char *buf, size_t size, LogLevel level, bool journal, const char *msg);

#define WR_LOG(level, ...)                                               \
    do {                                                                 \
        if ((level) <= wr_log_level) wr_log_write((level), __VA_ARGS__); \
    } while (0)
#define log_error(...) WR_LOG(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) WR_LOG(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) WR_LOG(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) WR_LOG(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
