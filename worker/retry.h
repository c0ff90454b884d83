/*
 * retry.h — how `walrev run` waits between sessions after a retryable
 * failure: exponential backoff that starts over after a healthy session, and
 * a wait that keeps systemd's watchdog fed and says in STATUS= why it waits
 * (a worker that is retrying sanely is alive; one stuck in a call is not).
 */
#ifndef WALREV_WORKER_RETRY_H
#define WALREV_WORKER_RETRY_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 30000
/* A session that streamed this long was healthy: the next failure waits RETRY_FIRST_MS again. */
#define RETRY_HEALTHY_US (INT64_C(30) * 1000000)

/* The wait after a failure, given the one before it (0: none yet) and how
 * long the failed session streamed (0: it never reached streaming). Pure. */
int retry_next_backoff_ms(int prev_ms, int64_t streamed_us);

/* Sleep ms in ticks of at most 100 ms until *stop is set, sending
 * STATUS="retrying in Ns: why" and WATCHDOG=1 (at half its interval) while
 * it waits. Returns false when *stop ended the wait. */
bool retry_wait(int ms, const char *why, volatile sig_atomic_t *stop);

#endif
