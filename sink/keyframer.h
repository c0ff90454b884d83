/*
 * keyframer.h — takes the history store's keyframes (a table's full image as
 * of a revision) in a background thread on its own connection, so the
 * stream never waits for one: a keyframe of a large table reads and folds
 * hundreds of thousands of rows, and taken inside the batch commit it held
 * every revision behind it (commit-to-durable lag) for as long.
 *
 * A keyframe as of revision R is derived from durable history only (the
 * previous keyframe and the deltas up to R, all committed before it is
 * asked for), so it can be taken at any later time without coordination.
 * The history sink asks for one after the batch that crossed the threshold
 * has committed; requests for a table already queued or in progress are
 * dropped (the counter stays above the threshold and asks again later).
 */
#ifndef WALREV_SINK_KEYFRAMER_H
#define WALREV_SINK_KEYFRAMER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct Keyframer Keyframer;

/* Starts the thread; its connection is opened on the first request.
 * qschema is the quoted history schema. Copies both strings. */
Keyframer *keyframer_start(const char *conninfo, const char *qschema);

/*
 * A keyframe of relid as of revision rev (committed). deltas_at and live_at
 * are tracked_table's deltas_since_keyframe and live_rows as of rev:
 * recording the keyframe subtracts them, so changes counted since stay
 * counted. small: the table has few live rows (read key by key if it has
 * had few keys).
 */
typedef struct {
    uint32_t relid;
    int64_t rev;
    bool small;
    int64_t deltas_at;
    int64_t live_at;
} KeyframeRequest;

/* Queue a copy of *r, unless one for the same table is queued or running. */
void keyframer_request(Keyframer *k, const KeyframeRequest *r);

/* Block until nothing is queued or in progress (tests; a clean stop that wants them). */
void keyframer_wait_idle(Keyframer *k);

typedef struct {
    uint64_t taken;
    uint64_t failed;
    double total_ms;
    double max_ms;
} KeyframerStats;
void keyframer_stats(Keyframer *k, KeyframerStats *out);

/* Drop what is queued, cancel the keyframe in progress (it is rolled back and
 * asked for again by a later run), join the thread and free. Accepts NULL. */
void keyframer_stop(Keyframer *k);

#endif
