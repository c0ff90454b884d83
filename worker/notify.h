/*
 * notify.h — the systemd service notification protocol (sd_notify(3)),
 * implemented directly: one datagram per call to $NOTIFY_SOCKET (a path, or
 * an abstract socket written with a leading '@'). Without NOTIFY_SOCKET every
 * call is a no-op, so the worker calls these unconditionally. Never blocks
 * for long: datagrams are sent with MSG_DONTWAIT. Never logs.
 */
#ifndef WALREV_WORKER_NOTIFY_H
#define WALREV_WORKER_NOTIFY_H

#include <stdint.h>

#include "common/common.h"

/* Send state (e.g. "READY=1", several assignments separated by '\n').
 * WR_OK when sent, WR_DONE when NOTIFY_SOCKET is unset (nothing to do),
 * WR_FATAL with err naming the socket when it cannot be reached. */
WrStatus notify_send(const char *state, WrError *err) WR_MUSTCHECK;

/* Convenience wrappers for the worker; true when a notification was sent.
 * A failure is not fatal for the worker, so these may be ignored. */
bool notify_ready(void);    /* READY=1: connected and streaming */
bool notify_stopping(void); /* STOPPING=1: clean shutdown begun */
bool notify_watchdog(void); /* WATCHDOG=1: the main loop is alive */
/* STATUS=<formatted text>, one line (newlines become spaces). */
bool notify_status(const char *fmt, ...) WR_PRINTF(1, 2);

/* The watchdog interval systemd expects (WATCHDOG_USEC), in microseconds, or
 * 0 when the watchdog is off or meant for another process (WATCHDOG_PID).
 * Ping with notify_watchdog() at least every half of it. */
uint64_t notify_watchdog_interval_us(void);

#endif
