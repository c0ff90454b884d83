/*
 * test_metrics.c — the metrics module and its HTTP server (issue 17.4):
 * counters, gauges and histograms rendered in the Prometheus text format
 * exactly; listen addresses parsed; the server answers GET /metrics on a
 * real loopback socket, 404 elsewhere, 405 for POST, and a port in use is
 * refused with its reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/metrics.h"
#include "exporter/metrics_server.h"
#include "tests/support/unit_main.h"

static char *render(void)
{
    MetricsSnapshot s;
    metrics_snapshot(&s);
    StrBuf b;
    strbuf_init(&b);
    metrics_render(&s, &b);
    return b.data;
}

/* The lines of text that start with prefix, joined with '\n'. */
static char *lines_of(const char *text, const char *prefix)
{
    StrBuf b;
    strbuf_init(&b);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            strbuf_append(&b, p, len);
            strbuf_append_char(&b, '\n');
        }
        p += len + (nl ? 1 : 0);
    }
    return b.data ? b.data : xstrdup("");
}

static void expect_lines(const char *text, const char *prefix, const char *want)
{
    char *got = lines_of(text, prefix);
    assert_string_equal(got, want);
    free(got);
}

static void test_empty(void **state)
{
    (void)state;
    metrics_reset();
    metrics_set_build_info("1.2.3 \"q\"");
    char *t = render();
    expect_lines(t, "walrev_build_info", "walrev_build_info{version=\"1.2.3 \\\"q\\\"\"} 1\n");
    /* unknown gauges and unconfigured sinks are left out; counters are there at 0 */
    assert_null(strstr(t, "walrev_lag_bytes"));
    assert_null(strstr(t, "walrev_slot_retained_wal_bytes"));
    assert_null(strstr(t, "walrev_sink_"));
    expect_lines(t, "walrev_row_lookups_total", "walrev_row_lookups_total 0\n");
    expect_lines(t, "walrev_errors_total",
                 "walrev_errors_total{class=\"retry\"} 0\nwalrev_errors_total{class=\"protocol\"} 0\n"
                 "walrev_errors_total{class=\"invalid\"} 0\nwalrev_errors_total{class=\"fatal\"} 0\n");
    expect_lines(t, "# TYPE walrev_history_batch_commit_duration_seconds",
                 "# TYPE walrev_history_batch_commit_duration_seconds histogram\n");
    expect_lines(t, "walrev_history_batch_commit_duration_seconds_count",
                 "walrev_history_batch_commit_duration_seconds_count 0\n");
    free(t);
}

static void test_values(void **state)
{
    (void)state;
    metrics_reset();
    assert_int_equal(metrics_sink_of("history"), METRICS_SINK_HISTORY);
    assert_int_equal(metrics_sink_of("kafka"), METRICS_SINK_KAFKA);
    assert_int_equal(metrics_sink_of("ahead"), -1);
    metrics_sink_enable(METRICS_SINK_HISTORY);
    metrics_sink_enable(METRICS_SINK_KAFKA);
    metrics_sink_add(METRICS_SINK_HISTORY, METRICS_SINK_REVISIONS, 3);
    metrics_sink_add(METRICS_SINK_HISTORY, METRICS_SINK_CHANGES, 7);
    metrics_sink_add(METRICS_SINK_HISTORY, METRICS_SINK_BYTES, 1000);
    metrics_sink_add(METRICS_SINK_KAFKA, METRICS_SINK_REVISIONS, 2);
    metrics_sink_set_durable(METRICS_SINK_HISTORY, 0x16B3748);
    metrics_add(METRICS_ROW_LOOKUPS, 5);
    metrics_set_counter(METRICS_ROW_CACHE_HITS, 4);
    metrics_set_counter(METRICS_ROW_CACHE_HITS, 2); /* never lowered */
    metrics_add(METRICS_RETRIES, 2);
    metrics_add(METRICS_QUARANTINED, 1);
    metrics_add(METRICS_RECONCILE_ROUNDS, 6);
    metrics_add(METRICS_RECONCILE_DIFFERENCES, 11);
    metrics_count_error(WR_RETRY);
    metrics_count_error(WR_RETRY);
    metrics_count_error(WR_FATAL);
    metrics_set(METRICS_LAG_BYTES, 4096);
    metrics_set(METRICS_LAG_US, 1500000);
    metrics_set(METRICS_RETAINED_WAL, 123456);
    metrics_set(METRICS_STREAMING, 1);
    metrics_set(METRICS_LAST_REVISION, 42);
    metrics_set(METRICS_CONFIRMED_LSN, 77);
    metrics_unset(METRICS_CONFIRMED_LSN);
    char *t = render();
    expect_lines(t, "walrev_sink_revisions_total",
                 "walrev_sink_revisions_total{sink=\"history\"} 3\nwalrev_sink_revisions_total{sink=\"kafka\"} 2\n");
    expect_lines(t, "walrev_sink_changes_total",
                 "walrev_sink_changes_total{sink=\"history\"} 7\nwalrev_sink_changes_total{sink=\"kafka\"} 0\n");
    expect_lines(t, "walrev_sink_written_bytes_total{sink=\"history\"}",
                 "walrev_sink_written_bytes_total{sink=\"history\"} 1000\n");
    /* a sink whose position is not known yet has no sample */
    expect_lines(t, "walrev_sink_durable_lsn", "walrev_sink_durable_lsn{sink=\"history\"} 23803720\n");
    expect_lines(t, "walrev_row_",
                 "walrev_row_lookups_total 5\nwalrev_row_cache_hits_total 4\nwalrev_row_prefetched_total 0\n");
    expect_lines(t, "walrev_retries_total", "walrev_retries_total 2\n");
    expect_lines(t, "walrev_quarantined_revisions_total", "walrev_quarantined_revisions_total 1\n");
    expect_lines(t, "walrev_reconcile_",
                 "walrev_reconcile_rounds_total 6\nwalrev_reconcile_rounds_failed_total 0\n"
                 "walrev_reconcile_divergences_total 0\nwalrev_reconcile_differences_total 11\n");
    expect_lines(t, "walrev_errors_total{class=\"retry\"}", "walrev_errors_total{class=\"retry\"} 2\n");
    expect_lines(t, "walrev_errors_total{class=\"fatal\"}", "walrev_errors_total{class=\"fatal\"} 1\n");
    expect_lines(t, "walrev_lag_", "walrev_lag_bytes 4096\nwalrev_lag_seconds 1.500000\n");
    expect_lines(t, "walrev_slot_", "walrev_slot_retained_wal_bytes 123456\n");
    expect_lines(t, "walrev_streaming", "walrev_streaming 1\n");
    expect_lines(t, "walrev_last_revision_id", "walrev_last_revision_id 42\n");
    /* every family has its HELP and TYPE once */
    expect_lines(t, "# TYPE walrev_lag_bytes", "# TYPE walrev_lag_bytes gauge\n");
    expect_lines(t, "# TYPE walrev_sink_revisions_total", "# TYPE walrev_sink_revisions_total counter\n");
    free(t);
}

static void test_histogram(void **state)
{
    (void)state;
    metrics_reset();
    metrics_observe_us(METRICS_HIST_BATCH_COMMIT, 500);      /* 0.0005 s: le 0.001 */
    metrics_observe_us(METRICS_HIST_BATCH_COMMIT, 1000);     /* exactly on the bound: le 0.001 */
    metrics_observe_us(METRICS_HIST_BATCH_COMMIT, 20000);    /* le 0.025 */
    metrics_observe_us(METRICS_HIST_BATCH_COMMIT, 90000000); /* 90 s: only +Inf */
    metrics_observe_us(METRICS_HIST_KEYFRAME, 300000);
    metrics_add(METRICS_KEYFRAMES, 1);
    char *t = render();
    expect_lines(t, "walrev_history_batch_commit_duration_seconds_",
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.001\"} 2\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.0025\"} 2\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.005\"} 2\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.01\"} 2\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.025\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.05\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.1\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.25\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"0.5\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"1\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"2.5\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"5\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"10\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"60\"} 3\n"
                 "walrev_history_batch_commit_duration_seconds_bucket{le=\"+Inf\"} 4\n"
                 "walrev_history_batch_commit_duration_seconds_sum 90.021500\n"
                 "walrev_history_batch_commit_duration_seconds_count 4\n");
    expect_lines(t, "walrev_keyframe_duration_seconds_count", "walrev_keyframe_duration_seconds_count 1\n");
    expect_lines(t, "walrev_keyframe_duration_seconds_sum", "walrev_keyframe_duration_seconds_sum 0.300000\n");
    expect_lines(t, "walrev_keyframe_duration_seconds_bucket{le=\"0.25\"}",
                 "walrev_keyframe_duration_seconds_bucket{le=\"0.25\"} 0\n");
    expect_lines(t, "walrev_keyframe_duration_seconds_bucket{le=\"0.5\"}",
                 "walrev_keyframe_duration_seconds_bucket{le=\"0.5\"} 1\n");
    expect_lines(t, "walrev_keyframes_total", "walrev_keyframes_total 1\n");
    free(t);
}

static void test_parse_listen(void **state)
{
    (void)state;
    char h[64], p[8];
    assert_true(metrics_parse_listen("127.0.0.1:9187", h, sizeof(h), p, sizeof(p)));
    assert_string_equal(h, "127.0.0.1");
    assert_string_equal(p, "9187");
    assert_true(metrics_parse_listen("[::1]:0", h, sizeof(h), p, sizeof(p)));
    assert_string_equal(h, "::1");
    assert_string_equal(p, "0");
    assert_true(metrics_parse_listen(":9187", h, sizeof(h), p, sizeof(p)));
    assert_string_equal(h, "");
    assert_true(metrics_parse_listen("localhost:65535", h, sizeof(h), p, sizeof(p)));
    const char *bad[] = {"9187",     "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x",
                         "::1:9187", "[::1]9187", "[]:1",       "h:123456",        "h:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(metrics_parse_listen(bad[i], h, sizeof(h), p, sizeof(p)));
    /* too long for the buffers */
    assert_false(metrics_parse_listen("a-very-long-host-name:1", h, 8, p, sizeof(p)));
}

/* One HTTP/1.0 exchange with 127.0.0.1:port; the whole answer, owned by the caller. */
static char *http(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    StrBuf b;
    strbuf_init(&b);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) strbuf_append(&b, buf, (size_t)n);
    close(fd);
    return b.data ? b.data : xstrdup("");
}

static void test_server(void **state)
{
    (void)state;
    metrics_reset();
    metrics_set_build_info("9.9.9");
    metrics_add(METRICS_RETRIES, 3);
    MetricsServer *s = NULL;
    WrError err;
    assert_int_equal(metrics_server_start("127.0.0.1:0", &s, &err), WR_OK);
    const char *addr = metrics_server_address(s);
    assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);
    int port = atoi(addr + 10);
    assert_true(port > 0);

    char *r = http(port, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_int_equal(strncmp(r, "HTTP/1.0 200", 12) == 0 || strncmp(r, "HTTP/1.1 200", 12) == 0, 1);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_non_null(strstr(r, "\r\n\r\n# HELP walrev_build_info "));
    assert_non_null(strstr(r, "\nwalrev_build_info{version=\"9.9.9\"} 1\n"));
    assert_non_null(strstr(r, "\nwalrev_retries_total 3\n"));
    free(r);
    r = http(port, "GET / HTTP/1.0\r\n\r\n");
    assert_non_null(strstr(r, " 404 "));
    free(r);
    r = http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(r, " 405 "));
    free(r);

    /* the same port again: refused with the system's reason */
    char again[64];
    snprintf(again, sizeof(again), "127.0.0.1:%d", port);
    MetricsServer *s2 = NULL;
    assert_int_equal(metrics_server_start(again, &s2, &err), WR_FATAL);
    assert_null(s2);
    char want[128];
    snprintf(want, sizeof(want), "metrics: cannot listen on 127.0.0.1:%d: Address already in use", port);
    assert_string_equal(err.msg, want);
    /* not an address of this machine */
    assert_int_equal(metrics_server_start("192.0.2.1:9187", &s2, &err), WR_FATAL);
    assert_string_equal(err.msg, "metrics: cannot listen on 192.0.2.1:9187: Cannot assign requested address");
    assert_int_equal(metrics_server_start("nonsense", &s2, &err), WR_INVALID);

    metrics_server_stop(s);
    metrics_server_stop(NULL);
    /* stopped: the port is free again */
    assert_int_equal(metrics_server_start(again, &s2, &err), WR_OK);
    metrics_server_stop(s2);
}

TS_RUN_TESTS(cmocka_unit_test(test_empty), cmocka_unit_test(test_values), cmocka_unit_test(test_histogram),
             cmocka_unit_test(test_parse_listen), cmocka_unit_test(test_server))
