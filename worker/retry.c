/* retry.c — see retry.h. */
#include "worker/retry.h"

#include <time.h>

#include "common/common.h"
#include "worker/notify.h"

int retry_next_backoff_ms(int prev_ms, int64_t streamed_us)
{
    if (prev_ms <= 0 || streamed_us >= RETRY_HEALTHY_US) return RETRY_FIRST_MS;
    return prev_ms >= RETRY_MAX_MS / 2 ? RETRY_MAX_MS : prev_ms * 2;
}

bool retry_wait(int ms, const char *why, volatile sig_atomic_t *stop)
{
    uint64_t watchdog_us = notify_watchdog_interval_us();
    int64_t start = mono_now_us(), end = start + (int64_t)ms * 1000, last_dog = 0, last_status = 0;
    for (;;) {
        if (*stop) return false;
        int64_t now = mono_now_us();
        if (now >= end) return true;
        if (watchdog_us && (uint64_t)(now - last_dog) >= watchdog_us / 2) {
            notify_watchdog();
            last_dog = now;
        }
        if (!last_status || now - last_status >= 1000000) {
            notify_status("retrying in %llds: %s", (long long)((end - now + 999999) / 1000000), why);
            last_status = now;
        }
        int64_t left = end - now;
        struct timespec ts = {0, (long)((left < 100000 ? left : 100000) * 1000)};
        nanosleep(&ts, NULL);
    }
}
