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
 * has committed; a request for a table already queued replaces the queued
 * one (the newer revision), and one that waited — queued behind another,
 * replaced, or held while the worker catches up — is taken as the chain of
 * keyframes the table would have had (one wherever its deltas since the
 * previous passed the threshold), so the as-of bound does not depend on when
 * keyframes are taken.
 *
 * While the worker is behind the source (keyframer_hold), keyframes wait: a
 * keyframe folds (1 + factor) × rows, as much work as the changes it
 * follows, and on a busy machine it competed with the catch-up for the same
 * cores. A table owing KEYFRAME_DEFER_MAX keyframes' worth of deltas is
 * taken even then.
 */
#ifndef WALREV_SINK_KEYFRAMER_H
#define WALREV_SINK_KEYFRAMER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct Keyframer Keyframer;

/* While held, a table's keyframes wait until its deltas since its last
 * keyframe exceed this many times its threshold. */
#define KEYFRAME_DEFER_MAX 8

/* When a table's keyframe is due: its deltas since the previous exceed
 * max(factor × live rows, min_deltas); a table of at most small_rows live
 * rows is read key by key. */
typedef struct {
    double factor;
    int64_t min_deltas;
    int64_t small_rows;
} KeyframePolicy;

/* The threshold of p for a table of live rows: a keyframe is due past it. */
int64_t keyframe_threshold(const KeyframePolicy *p, int64_t live);

/*
 * Walking a table's history from a keyframe, revision by revision, to find
 * where the next keyframes fall (the chain of a request that waited). Start
 * zeroed with live = the keyframe's rows; feed each revision's counts of the
 * table's deltas (net: rows begun minus rows ended; truncated: a TRUNCATE in
 * it, after which net counts the rows begun). Returns true when a keyframe
 * falls on this revision: *deltas_at and *live_at get the deltas since the
 * previous one and the live rows, and the walk goes on from here. Pure.
 */
typedef struct {
    int64_t live;
    int64_t deltas;
} KeyframeWalk;
bool keyframe_walk_step(KeyframeWalk *w, const KeyframePolicy *p, int64_t deltas, int64_t net, bool truncated,
                        int64_t *deltas_at, int64_t *live_at);

/* Starts the thread; its connection is opened on the first request.
 * qschema is the quoted history schema. Copies both strings and *policy. */
Keyframer *keyframer_start(const char *conninfo, const char *qschema, const KeyframePolicy *policy);

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

/* Queue a copy of *r; one queued for the same table is replaced by it (a
 * later revision: the chain up to it is taken). Never blocks on a keyframe. */
void keyframer_request(Keyframer *k, const KeyframeRequest *r);

/* behind: the worker is catching up; queued keyframes wait (up to
 * KEYFRAME_DEFER_MAX thresholds of deltas per table). false: take them. */
void keyframer_hold(Keyframer *k, bool behind);

/* Release the hold and block until nothing is queued or in progress (a stop
 * at --stop-lsn, which has caught up to where it was asked to; tests). */
void keyframer_wait_idle(Keyframer *k);

typedef struct {
    uint64_t taken;
    uint64_t failed;
    uint64_t deferred; /* requests that waited for the hold to end (or for their cap) */
    double total_ms;
    double max_ms;
} KeyframerStats;
void keyframer_stats(Keyframer *k, KeyframerStats *out);

/* Drop what is queued, cancel the keyframe in progress (it is rolled back and
 * asked for again by a later run), join the thread and free. Accepts NULL. */
void keyframer_stop(Keyframer *k);

#endif
