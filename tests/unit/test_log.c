/*
 * test_log.c — strict logfmt (issue 17.6): every string argument escaped
 * where it lands, quoted values and bare values alike, numbers as printf
 * writes them; whole lines (ts= level= first, the journal's priority when
 * asked); the signal handler's line made without stdio.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <inttypes.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "tests/support/unit_main.h"

static char *fmt(const char *f, ...) WR_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
    StrBuf b;
    strbuf_init(&b);
    va_list ap;
    va_start(ap, f);
    wr_log_format(&b, f, ap);
    va_end(ap);
    return b.data ? b.data : xstrdup("");
}

#define EXPECT(want, ...)                \
    do {                                 \
        char *got_ = fmt(__VA_ARGS__);   \
        assert_string_equal(got_, want); \
        free(got_);                      \
    } while (0)

/* hidden from the compiler, which would warn about a NULL %s */
static const char *volatile null_str = NULL;

static void test_quoted_values(void **state)
{
    (void)state;
    EXPECT("msg=\"plain\"", "msg=\"%s\"", "plain");
    EXPECT("msg=\"relation \\\"t\\\" does not exist\" status=fatal", "msg=\"%s\" status=%s",
           "relation \"t\" does not exist", "fatal");
    EXPECT("msg=\"a\\\\b\"", "msg=\"%s\"", "a\\b");
    EXPECT("msg=\"line1\\nline2\\r\\tend\"", "msg=\"%s\"", "line1\nline2\r\tend");
    EXPECT("msg=\"bell\\u0007 del\\u007f\"", "msg=\"%s\"", "bell\a del\x7f");
    EXPECT("msg=\"x: y; retrying\" backoff_ms=500", "msg=\"%s; retrying\" backoff_ms=%d", "x: y", 500);
    /* a precision bounds what is read */
    EXPECT("text=\"abc\"", "text=\"%.*s\"", 3, "abcdef");
    EXPECT("text=\"ab\"", "text=\"%.2s\"", "abcdef");
    EXPECT("msg=\"null\"", "msg=\"%s\"", null_str);
    EXPECT("c=\"\\\"\"", "c=\"%c\"", '"');
    /* UTF-8 passes through */
    EXPECT("msg=\"caf\xc3\xa9\"", "msg=\"%s\"", "caf\xc3\xa9");
}

static void test_bare_values(void **state)
{
    (void)state;
    EXPECT("msg=\"m\" slot=walrev", "msg=\"m\" slot=%s", "walrev");
    EXPECT("msg=\"m\" path=\"/tmp/a b\"", "msg=\"m\" path=%s", "/tmp/a b");
    EXPECT("msg=\"m\" path=\"\"", "msg=\"m\" path=%s", "");
    EXPECT("msg=\"m\" k=\"a=b\"", "msg=\"m\" k=%s", "a=b");
    EXPECT("msg=\"m\" k=\"say \\\"hi\\\"\"", "msg=\"m\" k=%s", "say \"hi\"");
    EXPECT("msg=\"m\" k=\"two\\nlines\" n=1", "msg=\"m\" k=%s n=%d", "two\nlines", 1);
    /* a value built of several parts is quoted as a whole */
    EXPECT("msg=\"m\" table=public.t x=1", "msg=\"m\" table=%s.%s x=%d", "public", "t", 1);
    EXPECT("msg=\"m\" table=\"My Schema.t\" x=1", "msg=\"m\" table=%s.%s x=%d", "My Schema", "t", 1);
    EXPECT("msg=\"m\" table=\"my schema.context_key\"", "msg=\"m\" table=%s.context_key", "my schema");
    /* the last field ends with the format */
    EXPECT("msg=\"m\" err=\"a b\"", "msg=\"m\" err=%s", "a b");
}

static void test_numbers(void **state)
{
    (void)state;
    EXPECT("msg=\"m\" lsn=0/16B3748 n=-7 u=18446744073709551615 z=42 f=1.5 g=3 x=ff",
           "msg=\"m\" lsn=" LSN_FMT " n=%d u=%llu z=%zu f=%.1f g=%.0f x=%x", LSN_ARGS(0x16B3748ULL), -7,
           18446744073709551615ULL, (size_t)42, 1.5, 3.2, 255u);
    /* a padded number in a bare value holds spaces: quoted */
    EXPECT("msg=\"m\" i64=-9223372036854775807 w=\"  7\" pct=100%", "msg=\"m\" i64=%" PRId64 " w=%*d pct=100%%",
           (int64_t)-9223372036854775807LL, 3, 7);
    EXPECT("msg=\"m\" v=5.25 ld=2.5", "msg=\"m\" v=%.*f ld=%.1Lf", 2, 5.25, (long double)2.5);
    EXPECT("msg=\"m\" h=7 hh=8 l=9", "msg=\"m\" h=%hd hh=%hhu l=%ld", (short)7, (unsigned char)8, 9L);
}

/* One line written by wr_log_write, read back from stderr. */
static char *capture_line(LogLevel level, const char *journal_stream, const char *f, const char *arg)
{
    char path[] = "/tmp/walrev_test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    (void)journal_stream;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    wr_log_write(level, f, arg);
#pragma GCC diagnostic pop
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *buf = xcalloc(1, 8192);
    ssize_t n = pread(fd, buf, 8191, 0);
    assert_true(n > 0);
    close(fd);
    unlink(path);
    return buf;
}

static void test_whole_line(void **state)
{
    (void)state;
    unsetenv("JOURNAL_STREAM");
    char *line = capture_line(LOG_LEVEL_ERROR, NULL, "msg=\"%s\" status=fatal", "quote \" and\nnewline");
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ: 24 characters after "ts=" */
    assert_int_equal(strncmp(line, "ts=", 3), 0);
    assert_int_equal(line[3 + 4], '-');
    assert_int_equal(line[3 + 10], 'T');
    assert_int_equal(line[3 + 23], 'Z');
    assert_string_equal(line + 3 + 24, " level=error msg=\"quote \\\" and\\nnewline\" status=fatal\n");
    free(line);
}

static void test_signal_line(void **state)
{
    (void)state;
    char buf[256];
    size_t n = wr_log_signal_line(buf, sizeof(buf), LOG_LEVEL_WARN, false, "second stop signal: exiting now");
    assert_int_equal(n, strlen(buf));
    assert_int_equal(strncmp(buf, "ts=", 3), 0);
    assert_int_equal(buf[3 + 4], '-');
    assert_int_equal(buf[3 + 7], '-');
    assert_int_equal(buf[3 + 10], 'T');
    assert_int_equal(buf[3 + 13], ':');
    assert_int_equal(buf[3 + 19], '.');
    assert_int_equal(buf[3 + 23], 'Z');
    assert_string_equal(buf + 3 + 24, " level=warn msg=\"second stop signal: exiting now\"\n");
    /* the same date as gmtime says (the test runs far from midnight UTC or retries once) */
    for (int attempt = 0; attempt < 2; attempt++) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char want[32];
        strftime(want, sizeof(want), "ts=%Y-%m-%dT%H:%M", &tm);
        wr_log_signal_line(buf, sizeof(buf), LOG_LEVEL_WARN, false, "m");
        if (strncmp(buf, want, strlen(want)) == 0) break;
        assert_int_equal(attempt, 0);
    }
    n = wr_log_signal_line(buf, sizeof(buf), LOG_LEVEL_WARN, true, "m");
    assert_int_equal(strncmp(buf, "<4>ts=", 6), 0);
    assert_string_equal(buf + n - strlen(" level=warn msg=\"m\"\n"), " level=warn msg=\"m\"\n");
    /* too small: nothing */
    assert_int_equal(wr_log_signal_line(buf, 20, LOG_LEVEL_WARN, false, "m"), 0);
}

TS_RUN_TESTS(cmocka_unit_test(test_quoted_values), cmocka_unit_test(test_bare_values), cmocka_unit_test(test_numbers),
             cmocka_unit_test(test_whole_line), cmocka_unit_test(test_signal_line))
