/*
 * metrics_server.h — `walrev run`'s /metrics endpoint ([metrics] listen,
 * docs/configuration.md#metrics--prometheus-metrics): the Prometheus text exposition of
 * common/metrics.h, served by libmicrohttpd on a thread of its own. It only
 * reads a snapshot of the counters; it never touches the stream, a
 * connection or the slot, so a slow scraper cannot slow the worker.
 */
#ifndef WALREV_EXPORTER_METRICS_SERVER_H
#define WALREV_EXPORTER_METRICS_SERVER_H

#include "common/common.h"

typedef struct MetricsServer MetricsServer;

/*
 * Split a listen address: "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every
 * address); PORT 0..65535 (0: the system picks a free one). host and port
 * are written NUL-terminated (host "" for every address). False: not that
 * form, or too long for the buffers.
 */
bool metrics_parse_listen(const char *text, char *host, size_t host_size, char *port, size_t port_size) WR_MUSTCHECK;

/*
 * Listen on addr (metrics_parse_listen's forms) and serve GET /metrics until
 * metrics_server_stop. The socket is bound here, so an address in use or not
 * local fails at once: WR_FATAL with the address and the system's reason.
 * *out is the caller's (metrics_server_stop). Non-blocking after the bind.
 */
WrStatus metrics_server_start(const char *addr, MetricsServer **out, WrError *err) WR_MUSTCHECK;

/* The address bound, "HOST:PORT" with the port the system chose for 0;
 * valid while the server runs. */
const char *metrics_server_address(const MetricsServer *s);

/* Stop serving and free s (NULL accepted); waits for its thread. */
void metrics_server_stop(MetricsServer *s);

#endif
