/*
 * notify.c — sd_notify(3) without libsystemd: an AF_UNIX datagram to
 * $NOTIFY_SOCKET. Kept dependency-free because the protocol is one sendto()
 * and the unit test can play systemd with a socket of its own.
 */
#include "worker/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

WrStatus notify_send(const char *state, WrError *err)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0]) return WR_DONE;

    struct sockaddr_un addr;
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (path[0] != '/' && path[0] != '@')
        return wr_error_set(err, WR_FATAL, "NOTIFY_SOCKET=%s: only unix socket paths are supported", path);
    if (len >= sizeof(addr.sun_path))
        return wr_error_set(err, WR_FATAL, "NOTIFY_SOCKET path is too long (%zu bytes)", len);
    memcpy(addr.sun_path, path, len);
    /* '@' names a socket in the abstract namespace: leading NUL, no terminator. */
    if (path[0] == '@') addr.sun_path[0] = '\0';
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return wr_error_set(err, WR_FATAL, "NOTIFY_SOCKET=%s: socket: %s", path, strerror(errno));
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&addr, alen);
    int saved = errno;
    close(fd);
    if (n < 0) return wr_error_set(err, WR_FATAL, "NOTIFY_SOCKET=%s: send: %s", path, strerror(saved));
    return WR_OK;
}

static bool send_quiet(const char *state)
{
    WrError err;
    return notify_send(state, &err) == WR_OK;
}

bool notify_ready(void) { return send_quiet("READY=1"); }
bool notify_stopping(void) { return send_quiet("STOPPING=1"); }
bool notify_watchdog(void) { return send_quiet("WATCHDOG=1"); }

bool notify_status(const char *fmt, ...)
{
    if (!getenv("NOTIFY_SOCKET")) return false; /* skip the formatting */
    char buf[512];
    int off = snprintf(buf, sizeof(buf), "STATUS=");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + off, sizeof(buf) - (size_t)off, fmt, ap);
    va_end(ap);
    /* One assignment per line in the protocol: a newline would start a new one. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return send_quiet(buf);
}

uint64_t notify_watchdog_interval_us(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !usec[0]) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (*end != '\0' || errno == ERANGE || usec[0] == '-' || v == 0) return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && pid[0]) {
        errno = 0;
        unsigned long long p = strtoull(pid, &end, 10);
        if (*end != '\0' || errno == ERANGE || p != (unsigned long long)getpid()) return 0;
    }
    return (uint64_t)v;
}
