/*
 * test_retry.c — the wait between sessions of `walrev run`: backoff doubles
 * to 30 s and starts over after a healthy session; while it waits, systemd
 * (a real AF_UNIX datagram socket standing in) is told why in STATUS= and
 * the watchdog is fed; a stop request ends the wait at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/common.h"
#include "worker/retry.h"
#include "tests/support/notify_socket.h"
#include "tests/support/unit_main.h"

static void test_backoff(void **state)
{
    (void)state;
    int want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    int ms = 0;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ms = retry_next_backoff_ms(ms, 0);
        assert_int_equal(ms, want[i]);
    }
    /* A session that streamed a while but less than healthy keeps climbing. */
    assert_int_equal(retry_next_backoff_ms(4000, RETRY_HEALTHY_US - 1), 8000);
    /* A healthy session: the next failure is retried quickly again. */
    assert_int_equal(retry_next_backoff_ms(30000, RETRY_HEALTHY_US), 500);
    assert_int_equal(retry_next_backoff_ms(30000, RETRY_HEALTHY_US * 10), 500);
}

/* Count the datagrams received so far that equal want / start with prefix. */
static void drain(int fd, int *watchdogs, int *statuses, char *last_status, size_t size)
{
    char buf[1024];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) >= 0) {
        buf[n] = '\0';
        if (strcmp(buf, "WATCHDOG=1") == 0)
            (*watchdogs)++;
        else if (strncmp(buf, "STATUS=", 7) == 0) {
            (*statuses)++;
            size_t len = (size_t)n < size - 1 ? (size_t)n : size - 1;
            memcpy(last_status, buf, len);
            last_status[len] = '\0';
        } else
            fail_msg("unexpected datagram %s", buf);
    }
}

static void test_wait_feeds_watchdog(void **state)
{
    (void)state;
    char dir[] = "/tmp/walrev-test-retry-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = ts_listen_notify(path);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "400000", 1); /* ping every 200 ms */
    unsetenv("WATCHDOG_PID");

    volatile sig_atomic_t stop = 0;
    int64_t t0 = mono_now_us();
    assert_true(retry_wait(1500, "history store: could not connect", &stop));
    int64_t took = mono_now_us() - t0;
    assert_true(took >= 1500000 && took < 2500000);
    int dogs = 0, statuses = 0;
    char last[256] = "";
    drain(fd, &dogs, &statuses, last, sizeof(last));
    /* 1.5 s at one ping per 200 ms: 7 or 8; a status line each second: 2. */
    assert_in_range(dogs, 7, 9);
    assert_int_equal(statuses, 2);
    assert_string_equal(last, "STATUS=retrying in 1s: history store: could not connect");

    /* A stop ends the wait at once. */
    stop = 1;
    t0 = mono_now_us();
    assert_false(retry_wait(30000, "x", &stop));
    assert_true(mono_now_us() - t0 < 100000);

    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(path);
    rmdir(dir);
}

TS_RUN_TESTS(cmocka_unit_test(test_backoff), cmocka_unit_test(test_wait_feeds_watchdog))
