/*
 * log.c — writes one logfmt line per event to stderr: ts=<UTC time>
 * level=<level> and the caller's msg="…" key=value fields, every string
 * argument escaped where it lands (wr_log_format), so no value can break a
 * line. Under systemd, when stderr is the journal's stream (JOURNAL_STREAM
 * names it), each line starts with its syslog priority (<3> error, <4> warn,
 * <6> info, <7> debug), which journald takes off and records, so
 * `journalctl -p err -u walrev` shows the errors. Plain stderr users get the
 * same lines without it.
 */
#include "common/log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

LogLevel wr_log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int level_priorities[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */

/* One string value is cut here: a line is an event, not a dump. */
#define LOG_VALUE_MAX 4096

void wr_log_set_level(LogLevel level) { wr_log_level = level; }

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

/* ---- escaping ---- */

/* s[0..len) escaped for the inside of a logfmt quoted value. */
static void append_escaped(StrBuf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': strbuf_append_str(out, "\\\""); break;
        case '\\': strbuf_append_str(out, "\\\\"); break;
        case '\n': strbuf_append_str(out, "\\n"); break;
        case '\r': strbuf_append_str(out, "\\r"); break;
        case '\t': strbuf_append_str(out, "\\t"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                strbuf_appendf(out, "\\u%04x", c);
            else
                strbuf_append_char(out, (char)c);
        }
    }
}

/* A bare logfmt value: not empty, and no space, '=', '"' or control byte. */
static bool plain_token(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == 0x7f) return false;
    }
    return true;
}

/* A string argument inside a quoted value, or raw into a bare value (which
 * is quoted as a whole when it ends: end_bare). */
static void append_value(StrBuf *out, const char *s, size_t len, bool in_quotes)
{
    bool cut = len > LOG_VALUE_MAX;
    if (cut) len = LOG_VALUE_MAX;
    if (in_quotes)
        append_escaped(out, s, len);
    else
        strbuf_append(out, s, len);
    if (cut) strbuf_append_str(out, "...");
}

/* A bare value out[start..] is complete: quoted and escaped unless it is a plain token. */
static void end_bare(StrBuf *out, size_t start)
{
    size_t len = out->len - start;
    if (plain_token(out->data + start, len)) return;
    char *raw = xstrndup(out->data + start, len);
    out->len = start;
    out->data[start] = '\0';
    strbuf_append_char(out, '"');
    append_escaped(out, raw, len);
    strbuf_append_char(out, '"');
    free(raw);
}

/* One non-string conversion, printf's own: spec is "%[flags][width][.prec][len]conv"
 * with any '*' already replaced by its number. The argument is read by type. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void append_number(StrBuf *out, const char *spec, char conv, const char *len, va_list *ap)
{
    bool hh = strcmp(len, "hh") == 0, h = strcmp(len, "h") == 0, l = strcmp(len, "l") == 0, ll = strcmp(len, "ll") == 0,
         z = strcmp(len, "z") == 0, j = strcmp(len, "j") == 0, t = strcmp(len, "t") == 0, L = strcmp(len, "L") == 0;
    (void)hh;
    (void)h;
    switch (conv) {
    case 'd':
    case 'i':
        if (l)
            strbuf_appendf(out, spec, va_arg(*ap, long));
        else if (ll)
            strbuf_appendf(out, spec, va_arg(*ap, long long));
        else if (z)
            strbuf_appendf(out, spec, va_arg(*ap, ssize_t));
        else if (j)
            strbuf_appendf(out, spec, va_arg(*ap, intmax_t));
        else if (t)
            strbuf_appendf(out, spec, va_arg(*ap, ptrdiff_t));
        else
            strbuf_appendf(out, spec, va_arg(*ap, int)); /* hh, h promote to int */
        break;
    case 'u':
    case 'o':
    case 'x':
    case 'X':
        if (l)
            strbuf_appendf(out, spec, va_arg(*ap, unsigned long));
        else if (ll)
            strbuf_appendf(out, spec, va_arg(*ap, unsigned long long));
        else if (z)
            strbuf_appendf(out, spec, va_arg(*ap, size_t));
        else if (j)
            strbuf_appendf(out, spec, va_arg(*ap, uintmax_t));
        else if (t)
            strbuf_appendf(out, spec, va_arg(*ap, ptrdiff_t));
        else
            strbuf_appendf(out, spec, va_arg(*ap, unsigned int));
        break;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (L)
            strbuf_appendf(out, spec, va_arg(*ap, long double));
        else
            strbuf_appendf(out, spec, va_arg(*ap, double));
        break;
    case 'p': strbuf_appendf(out, spec, va_arg(*ap, void *)); break;
    default: break; /* %n and unknown conversions write nothing */
    }
}
#pragma GCC diagnostic pop

void wr_log_format(StrBuf *out, const char *fmt, va_list ap_in)
{
    va_list ap;
    va_copy(ap, ap_in);
    /* Where the output stands: inside a quoted value, or in a bare value
     * (after "key=" with no quote) that began at out[bare]. The format's own
     * text is logfmt already: it says where values start and end. */
    bool in_quotes = false;
    size_t bare = SIZE_MAX;
    const char *p = fmt;
    while (*p) {
        if (*p != '%') {
            char c = *p++;
            if (bare != SIZE_MAX) {
                if (c == ' ') {
                    end_bare(out, bare);
                    bare = SIZE_MAX;
                }
                strbuf_append_char(out, c);
                continue;
            }
            if (c == '"') in_quotes = !in_quotes;
            strbuf_append_char(out, c);
            if (c == '=' && !in_quotes && *p != '"') bare = out->len;
            continue;
        }
        if (p[1] == '%') {
            strbuf_append_char(out, '%');
            p += 2;
            continue;
        }
        /* %[flags][width][.precision][length]conversion */
        char spec[64];
        size_t n = 0;
        spec[n++] = *p++;
        while (*p && strchr("-+ #0'", *p) && n < 16) spec[n++] = *p++;
        if (*p == '*') {
            n += (size_t)snprintf(spec + n, sizeof(spec) - n, "%d", va_arg(ap, int));
            p++;
        } else {
            while (*p >= '0' && *p <= '9' && n < 32) spec[n++] = *p++;
        }
        long precision = -1;
        if (*p == '.') {
            p++;
            if (*p == '*') {
                precision = va_arg(ap, int);
                p++;
            } else {
                precision = 0;
                while (*p >= '0' && *p <= '9') precision = precision * 10 + (*p++ - '0');
            }
            n += (size_t)snprintf(spec + n, sizeof(spec) - n, ".%ld", precision < 0 ? 0 : precision);
        }
        char len[3] = "";
        size_t ln = 0;
        while (*p && strchr("hlzjtL", *p) && ln < 2) {
            len[ln++] = *p;
            spec[n++] = *p++;
        }
        len[ln] = '\0';
        char conv = *p;
        if (!conv) break;
        p++;
        spec[n++] = conv;
        spec[n] = '\0';
        if (conv == 's') {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "null";
            size_t sl = precision >= 0 ? strnlen(s, (size_t)precision) : strlen(s);
            append_value(out, s, sl, in_quotes);
        } else if (conv == 'c') {
            char c = (char)va_arg(ap, int);
            append_value(out, &c, 1, in_quotes);
        } else {
            append_number(out, spec, conv, len, &ap);
        }
    }
    if (bare != SIZE_MAX) end_bare(out, bare);
    va_end(ap);
}

/* ---- lines ---- */

void wr_log_write(LogLevel level, const char *fmt, ...)
{
    static int journal = -1; /* asked once; a benign race between threads */
    if (journal < 0) journal = wr_log_to_journal();
    StrBuf line;
    strbuf_init(&line);
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    if (journal) strbuf_appendf(&line, "<%d>", level_priorities[level]);
    strbuf_appendf(&line, "ts=%s.%03dZ level=%s ", ts, (int)(tv.tv_usec / 1000), level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    wr_log_format(&line, fmt, ap);
    va_end(ap);
    strbuf_append_char(&line, '\n');
    /* one write per line, so lines of different threads never interleave */
    fwrite(line.data, 1, line.len, stderr);
    fflush(stderr);
    strbuf_free(&line);
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm): gmtime
 * is not async-signal-safe. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

/* Append decimal v, zero-padded to width, at buf[*n]; false when it does not fit. */
static bool put_num(char *buf, size_t size, size_t *n, unsigned long v, int width)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && k < 20);
    while (k < width && k < 20) tmp[k++] = '0';
    if (*n + (size_t)k >= size) return false;
    while (k) buf[(*n)++] = tmp[--k];
    return true;
}

static bool put_str(char *buf, size_t size, size_t *n, const char *s)
{
    size_t l = strlen(s);
    if (*n + l >= size) return false;
    memcpy(buf + *n, s, l);
    *n += l;
    return true;
}

size_t wr_log_signal_line(char *buf, size_t size, LogLevel level, bool journal, const char *msg)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* async-signal-safe (POSIX) */
    int64_t secs = (int64_t)now.tv_sec, days = secs / 86400, sod = secs % 86400;
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    size_t n = 0;
    bool ok = true;
    if (journal) {
        ok = put_str(buf, size, &n, "<") && put_num(buf, size, &n, (unsigned long)level_priorities[level], 1) &&
             put_str(buf, size, &n, ">");
    }
    ok = ok && put_str(buf, size, &n, "ts=") && put_num(buf, size, &n, (unsigned long)y, 4) &&
         put_str(buf, size, &n, "-") && put_num(buf, size, &n, mo, 2) && put_str(buf, size, &n, "-") &&
         put_num(buf, size, &n, d, 2) && put_str(buf, size, &n, "T") &&
         put_num(buf, size, &n, (unsigned long)(sod / 3600), 2) && put_str(buf, size, &n, ":") &&
         put_num(buf, size, &n, (unsigned long)(sod / 60 % 60), 2) && put_str(buf, size, &n, ":") &&
         put_num(buf, size, &n, (unsigned long)(sod % 60), 2) && put_str(buf, size, &n, ".") &&
         put_num(buf, size, &n, (unsigned long)(now.tv_nsec / 1000000), 3) && put_str(buf, size, &n, "Z level=") &&
         put_str(buf, size, &n, level_names[level]) && put_str(buf, size, &n, " msg=\"") &&
         put_str(buf, size, &n, msg) && put_str(buf, size, &n, "\"\n");
    if (!ok) return 0;
    buf[n] = '\0';
    return n;
}
