/*
 * metrics_server.c — see metrics_server.h. libmicrohttpd runs the HTTP side
 * on its own thread (MHD_USE_INTERNAL_POLLING_THREAD) on a socket bound
 * here, so a bind failure is reported with its reason before anything
 * streams. The thread is started with SIGTERM and SIGINT blocked: the stop
 * signals belong to the worker's loop. libmicrohttpd's own messages go to
 * the logger.
 */
#include "exporter/metrics_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"

struct MetricsServer {
    struct MHD_Daemon *daemon;
    int fd;
    char address[128];
};

/* Prometheus text exposition, version 0.0.4 */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

bool metrics_parse_listen(const char *text, char *host, size_t host_size, char *port, size_t port_size)
{
    const char *colon, *h = text;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') return false;
        h = text + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0) return false;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text))) return false; /* bare IPv6 needs [] */
        hlen = (size_t)(colon - text);
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 5 || strspn(p, "0123456789") != plen || atol(p) > 65535) return false;
    if (hlen >= host_size || plen >= port_size) return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return true;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    struct MHD_Response *r;
    unsigned status;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char text[] = "only GET\n";
        r = MHD_create_response_from_buffer(sizeof(text) - 1, (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Allow", "GET, HEAD");
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        static const char text[] = "walrev serves /metrics\n";
        r = MHD_create_response_from_buffer(sizeof(text) - 1, (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    } else {
        MetricsSnapshot snap;
        metrics_snapshot(&snap);
        StrBuf body;
        strbuf_init(&body);
        metrics_render(&snap, &body);
        /* libmicrohttpd frees the body with free() */
        r = MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(r, "Content-Type", CONTENT_TYPE);
        status = MHD_HTTP_OK;
    }
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    vsnprintf(msg, sizeof(msg), fmt, ap);
#pragma GCC diagnostic pop
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("msg=\"metrics server: %s\"", msg);
}

/* A socket bound to host:port and listening; -1 with err set. */
static int bind_listen(const char *addr, const char *host, const char *port, bool *ipv6, WrError *err)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        wr_error_set(err, WR_FATAL, "metrics: cannot listen on %s: %s", addr, gai_strerror(gai));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
            *ipv6 = ai->ai_family == AF_INET6;
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) wr_error_set(err, WR_FATAL, "metrics: cannot listen on %s: %s", addr, strerror(saved));
    return fd;
}

/* "HOST:PORT" of the bound socket. */
static void bound_address(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
            snprintf(out, size, "[%s]:%u", host, port);
            return;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    snprintf(out, size, "%s:%u", host, port);
}

WrStatus metrics_server_start(const char *addr, MetricsServer **out, WrError *err)
{
    char host[256], port[8];
    *out = NULL;
    if (!metrics_parse_listen(addr, host, sizeof(host), port, sizeof(port)))
        return wr_error_set(err, WR_INVALID, "metrics: listen address '%s' is not HOST:PORT", addr);
    bool ipv6 = false;
    int fd = bind_listen(addr, host, port, &ipv6, err);
    if (fd < 0) return err->status;
    MetricsServer *s = xcalloc(1, sizeof(*s));
    s->fd = fd;
    bound_address(fd, s->address, sizeof(s->address));
    /* the daemon's thread inherits this mask: stop signals stay with the worker's loop */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0), 0,
                                 NULL, NULL, answer, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                 MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!s->daemon) {
        close(fd); /* not the daemon's yet: no other thread runs at this point of walrev run */
        free(s);
        return wr_error_set(err, WR_FATAL, "metrics: cannot start the HTTP server on %s", addr);
    }
    *out = s;
    return WR_OK;
}

const char *metrics_server_address(const MetricsServer *s) { return s->address; }

void metrics_server_stop(MetricsServer *s)
{
    if (!s) return;
    MHD_stop_daemon(s->daemon); /* closes the listening socket too */
    free(s);
}
