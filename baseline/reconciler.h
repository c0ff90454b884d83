/*
 * reconciler.h — `walrev run`'s continuous reconciliation ([worker]
 * reconcile_interval, reconcile_rows_per_second; docs/configuration.md): a
 * thread of its own compares the history with the live tables as `walrev
 * verify --against-source` does (reconcile.h: chunked, under an exported
 * snapshot the worker's slot has passed), one round every interval, reading
 * at most about rows_per_second rows a second on average. Each table found
 * to differ is recorded as a warning revision: the thread emits a logical
 * message under the prefix walrev.reconcile on the source (actor
 * walrev:reconcile, the differing keys in meta.reconcile) carrying a random
 * id only this process knows, so the stream brings it back as a revision
 * like any other and the assembler trusts it (reconciler_owns_message);
 * anyone else's message under that prefix is recorded as a warning and
 * never trusted. Counters for metrics: reconciler_counters.
 */
#ifndef WALREV_BASELINE_RECONCILER_H
#define WALREV_BASELINE_RECONCILER_H

#include <stdint.h>

#include "baseline/baseline.h"
#include "decoder/pgoutput.h"

#define RECONCILE_PREFIX "walrev.reconcile"
/* Keys named in one warning revision's meta.reconcile.keys at most (the count is exact). */
#define RECONCILE_KEYS_MAX 100

typedef struct Reconciler Reconciler;

typedef struct {
    BaselineConfig baseline; /* strings borrowed; they outlive the reconciler */
    const char *slot_name;
    int interval_s;          /* between the end of one round and the start of the next; > 0 */
    int64_t rows_per_second; /* 0: unbounded */
    int wait_s;              /* longest wait for the worker's slot to pass a round's point */
} ReconcilerConfig;

/* Start the thread (first round after interval_s). NULL when it could not start (logged). */
Reconciler *reconciler_start(const ReconcilerConfig *cfg);
/* Stop and join; accepts NULL. A round in progress ends at its next table or wait. */
void reconciler_stop(Reconciler *r);
/* Whether m is a warning message this reconciler emitted (then it is walrev's own). Thread-safe. */
bool reconciler_owns_message(Reconciler *r, const PgoLogicalMessage *m);

/* Process-wide counters since start, for metrics and status. */
typedef struct {
    uint64_t rounds;        /* rounds completed */
    uint64_t rounds_failed; /* rounds that could not compare (logged) */
    uint64_t tables_compared;
    uint64_t tables_diverged; /* warning revisions emitted */
    uint64_t differences;     /* differing keys (or rows) found, all rounds */
} ReconcilerCounters;
void reconciler_counters(ReconcilerCounters *out);

#endif
