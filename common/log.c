/*
 * log.c — writes one line per event to stderr with a UTC timestamp and level.
 * journald adds its own timestamp, but plain stderr users need one.
 */
#include "common/log.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

LogLevel wr_log_level = LOG_LEVEL_INFO;

void wr_log_set_level(LogLevel level)
{
    wr_log_level = level;
}

void wr_log_write(LogLevel level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03dZ %s ", (int)(tv.tv_usec / 1000),
                  names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
