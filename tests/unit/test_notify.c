/*
 * test_notify.c — unit tests of worker/notify.c: a real AF_UNIX datagram
 * socket (a path, and one in the abstract namespace) stands in for systemd
 * and receives exactly what walrev sends; without NOTIFY_SOCKET nothing is
 * sent; WATCHDOG_USEC/WATCHDOG_PID are honoured.
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

#include "tests/support/notify_socket.h"
#include "tests/support/unit_main.h"
#include "worker/notify.h"

static char sock_dir[128];
static char sock_path[256];

/* Receive one datagram (non-blocking: it was sent before we ask). */
static void expect_datagram(int fd, const char *want)
{
    char buf[1024];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void expect_nothing(int fd)
{
    char buf[16];
    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(sock_dir, sizeof(sock_dir), "/tmp/walrev-test-notify-XXXXXX");
    if (!mkdtemp(sock_dir)) return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/notify.sock", sock_dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink(sock_path);
    rmdir(sock_dir);
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

static void test_path_socket(void **state)
{
    (void)state;
    int fd = ts_listen_notify(sock_path);
    setenv("NOTIFY_SOCKET", sock_path, 1);
    assert_true(notify_ready());
    expect_datagram(fd, "READY=1");
    assert_true(notify_status("streaming slot=%s lag_ms=%d", "walrev", 12));
    expect_datagram(fd, "STATUS=streaming slot=walrev lag_ms=12");
    /* A newline would start a new assignment: it becomes a space. */
    assert_true(notify_status("two\nlines"));
    expect_datagram(fd, "STATUS=two lines");
    assert_true(notify_watchdog());
    expect_datagram(fd, "WATCHDOG=1");
    assert_true(notify_stopping());
    expect_datagram(fd, "STOPPING=1");
    WrError err;
    assert_int_equal(notify_send("RELOADING=1\nSTATUS=x", &err), WR_OK);
    expect_datagram(fd, "RELOADING=1\nSTATUS=x");
    expect_nothing(fd);
    close(fd);
    unlink(sock_path);
    unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof(name), "@walrev-test-notify-%d", (int)getpid());
    int fd = ts_listen_notify(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_true(notify_ready());
    expect_datagram(fd, "READY=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

static void test_no_socket_is_a_noop(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    WrError err;
    assert_int_equal(notify_send("READY=1", &err), WR_DONE);
    assert_false(notify_ready());
    assert_false(notify_status("x"));
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(notify_send("READY=1", &err), WR_DONE);
    unsetenv("NOTIFY_SOCKET");
}

static void test_errors(void **state)
{
    (void)state;
    WrError err;
    setenv("NOTIFY_SOCKET", "/nonexistent/walrev/notify.sock", 1);
    assert_int_equal(notify_send("READY=1", &err), WR_FATAL);
    assert_string_equal(err.msg, "NOTIFY_SOCKET=/nonexistent/walrev/notify.sock: send: No such file or directory");
    assert_false(notify_ready());
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(notify_send("READY=1", &err), WR_FATAL);
    assert_string_equal(err.msg, "NOTIFY_SOCKET=vsock:2:1234: only unix socket paths are supported");
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longpath, 1);
    assert_int_equal(notify_send("READY=1", &err), WR_FATAL);
    assert_string_equal(err.msg, "NOTIFY_SOCKET path is too long (199 bytes)");
    unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval(void **state)
{
    (void)state;
    char pid[32];
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(notify_watchdog_interval_us(), 0);
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_int_equal(notify_watchdog_interval_us(), 30000000);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_int_equal(notify_watchdog_interval_us(), 30000000);
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1); /* meant for another process */
    assert_int_equal(notify_watchdog_interval_us(), 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_int_equal(notify_watchdog_interval_us(), 0);
    setenv("WATCHDOG_USEC", "-5", 1);
    assert_int_equal(notify_watchdog_interval_us(), 0);
    setenv("WATCHDOG_USEC", "0", 1);
    assert_int_equal(notify_watchdog_interval_us(), 0);
    unsetenv("WATCHDOG_USEC");
}

TS_RUN_GROUP(setup_dir, teardown_dir, cmocka_unit_test(test_path_socket), cmocka_unit_test(test_abstract_socket),
             cmocka_unit_test(test_no_socket_is_a_noop), cmocka_unit_test(test_errors),
             cmocka_unit_test(test_watchdog_interval))
