/*
 * periodic.c — a background thread running a round every interval (see
 * periodic.h). The wait is on CLOCK_REALTIME because pthread_cond_timedwait's
 * default clock is; a clock step moves at most one round.
 */
#include "common/periodic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

struct Periodic {
    int interval_s;
    PeriodicRound round;
    void *arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int stop; /* written under mu, read by the round without it: atomic, not volatile */
};

static void *thread_main(void *arg)
{
    Periodic *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->interval_s;
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0) {
        }
        if (p->stop) break;
        pthread_mutex_unlock(&p->mu);
        p->round(p->arg, &p->stop);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

Periodic *periodic_start(int interval_s, PeriodicRound round, void *arg)
{
    Periodic *p = xcalloc(1, sizeof(*p));
    p->interval_s = interval_s;
    p->round = round;
    p->arg = arg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, thread_main, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        return NULL;
    }
    return p;
}

void periodic_stop(Periodic *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
