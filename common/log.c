/*
 * log.c — writes one logfmt line per event to stderr: ts=<UTC time>
 * level=<level> and the caller's msg="…" key=value fields. Under systemd,
 * when stderr is the journal's stream (JOURNAL_STREAM names it), each line
 * starts with its syslog priority (<3> error, <4> warn, <6> info, <7> debug),
 * which journald takes off and records, so `journalctl -p err -u walrev`
 * shows the errors. Plain stderr users get the same lines without it.
 */
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

LogLevel wr_log_level = LOG_LEVEL_INFO;

void wr_log_set_level(LogLevel level)
{
    wr_log_level = level;
}

bool wr_log_to_journal(void)
{
    /* JOURNAL_STREAM is "device:inode" of the stream systemd connected; a
     * child whose stderr was redirected elsewhere inherits the variable, so
     * compare it with what stderr is. */
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0) return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void wr_log_write(LogLevel level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    static const int priorities[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
    static int journal = -1;                      /* asked once; a benign race between threads */
    if (journal < 0) journal = wr_log_to_journal();
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = journal ? snprintf(line, sizeof(line), "<%d>", priorities[level]) : 0;
    n += (int)strftime(line + n, sizeof(line) - (size_t)n, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03dZ level=%s ", (int)(tv.tv_usec / 1000), names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
