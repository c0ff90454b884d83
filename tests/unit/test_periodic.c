/*
 * test_periodic.c — common/periodic.c's thread: a round runs an interval
 * after the start, a stop ends the wait at once, and a long round sees the
 * stop flag periodic_stop sets from another thread and ends early. The flag
 * is read without the mutex, so it must be an atomic: unit.test_periodic_tsan
 * builds this same file with ThreadSanitizer, which reported that read as a
 * data race while the flag was a volatile int.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "common/common.h"
#include "common/periodic.h"
#include "tests/support/unit_main.h"

typedef struct {
    atomic_int rounds;      /* rounds begun */
    atomic_int saw_stop;    /* rounds that ended because *stop was set */
    atomic_int spin;        /* 1: a round waits for the stop (up to 60 s) */
} Counts;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void round_fn(void *arg, const atomic_int *stop)
{
    Counts *c = arg;
    atomic_fetch_add(&c->rounds, 1);
    if (!atomic_load(&c->spin)) return;
    for (int i = 0; i < 60000 && !*stop; i++) sleep_ms(1);
    if (*stop) atomic_fetch_add(&c->saw_stop, 1);
}

/* A stop before the first interval ends the wait at once, with no round run. */
static void test_stop_ends_wait(void **state)
{
    (void)state;
    Counts c = {0};
    int64_t t0 = mono_now_us();
    Periodic *p = periodic_start(30, round_fn, &c);
    assert_non_null(p);
    periodic_stop(p);
    assert_true(mono_now_us() - t0 < 10 * 1000000LL);
    assert_int_equal(atomic_load(&c.rounds), 0);
    periodic_stop(NULL);
}

/* A round in progress is told to stop and ends early: one round, which saw the flag. */
static void test_round_sees_stop(void **state)
{
    (void)state;
    Counts c = {0};
    atomic_store(&c.spin, 1);
    Periodic *p = periodic_start(1, round_fn, &c);
    assert_non_null(p);
    for (int i = 0; i < 60000 && atomic_load(&c.rounds) == 0; i++) sleep_ms(1);
    assert_int_equal(atomic_load(&c.rounds), 1);
    periodic_stop(p);
    assert_int_equal(atomic_load(&c.rounds), 1);
    assert_int_equal(atomic_load(&c.saw_stop), 1);
}

TS_RUN_TESTS(cmocka_unit_test(test_stop_ends_wait), cmocka_unit_test(test_round_sees_stop))
