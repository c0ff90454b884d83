/*
 * periodic.h — one background thread that runs a round every interval until
 * stopped: the worker's continuous reconciliation and its history jobs
 * (retention, compaction: replay/history_job.c) use it.
 * The wait is a condition variable, so periodic_stop ends it at once rather
 * than after the interval; a round in progress is never interrupted, only
 * told (through the stop flag) that it may end early. No logging here: the
 * caller says what a thread that did not start means.
 */
#ifndef WALREV_COMMON_PERIODIC_H
#define WALREV_COMMON_PERIODIC_H

#include <stdatomic.h>

#include "common/common.h"

typedef struct Periodic Periodic;

/*
 * One round, run on the thread with no lock held. stop becomes non-zero
 * when periodic_stop is called (from another thread: an atomic, so a plain
 * read of *stop is a well-defined one): a long round may read it to end
 * early, and it stays valid for the thread's life.
 */
typedef void (*PeriodicRound)(void *arg, const atomic_int *stop);

/*
 * Start a thread that calls round(arg, stop) every interval_s seconds, the
 * first one interval after the start. arg stays the caller's and must outlive
 * periodic_stop. NULL when the thread cannot be created (nothing to free).
 */
Periodic *periodic_start(int interval_s, PeriodicRound round, void *arg);

/* Wake the thread, wait for a round in progress to end, join and free. Accepts NULL. */
void periodic_stop(Periodic *p);

#endif
