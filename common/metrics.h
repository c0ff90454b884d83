/*
 * metrics.h — the process's counters, gauges and histograms for Prometheus
 * (docs/configuration.md#metrics--prometheus-metrics), and their text exposition. Any thread may
 * update them (relaxed atomics: a counter never blocks the stream); the HTTP
 * server (exporter/metrics_server.h) takes a snapshot and renders it. Nothing
 * here does I/O, logs or allocates outside metrics_render. Counters live for
 * the process and only grow, across the worker's sessions.
 */
#ifndef WALREV_METRICS_H
#define WALREV_METRICS_H

#include "common/common.h"

/* The sinks, as the label sink="…" names them. */
typedef enum { METRICS_SINK_HISTORY, METRICS_SINK_FILE, METRICS_SINK_KAFKA, METRICS_NSINKS } MetricsSink;

/* Per sink, counted as handed to it (revisions, changes) or written by it (bytes). */
typedef enum {
    METRICS_SINK_REVISIONS,
    METRICS_SINK_CHANGES,
    METRICS_SINK_BYTES,
    METRICS_NSINK_COUNTERS
} MetricsSinkCounter;

/* Process-wide counters. */
typedef enum {
    METRICS_ROW_LOOKUPS,           /* old row images read from the history store one by one (row cache misses) */
    METRICS_ROW_CACHE_HITS,        /* old row images the row cache answered */
    METRICS_ROW_PREFETCHED,        /* old row images read ahead in batches into the cache */
    METRICS_KEYFRAMES,             /* keyframes written */
    METRICS_RETRIES,               /* sessions started again after a retriable error */
    METRICS_QUARANTINED,           /* revisions stored quarantined (sink/history_quarantine.c) */
    METRICS_RECONCILE_ROUNDS,      /* rounds of the continuous reconciliation compared (baseline/reconciler.h) */
    METRICS_RECONCILE_FAILED,      /* its rounds that could not compare */
    METRICS_RECONCILE_DIVERGENCES, /* warning revisions it recorded (a table found to differ) */
    METRICS_RECONCILE_DIFFERENCES, /* differing keys (or rows) it found, every round */
    METRICS_NCOUNTERS
} MetricsCounter;

/* Gauges: set by their one writer, the replication session (session/session.c). */
typedef enum {
    METRICS_LAG_BYTES,     /* the server's WAL end − what is confirmed to the slot */
    METRICS_LAG_US,        /* µs from the source's commit of the last revision to its hand-over */
    METRICS_RETAINED_WAL,  /* the slot's retained WAL: current WAL position − restart_lsn */
    METRICS_CONFIRMED_LSN, /* confirmed to the slot */
    METRICS_LAST_REVISION, /* id of the last revision assembled */
    METRICS_STREAMING,     /* 1 while a session streams, 0 between sessions */
    METRICS_NGAUGES
} MetricsGauge;

typedef enum {
    METRICS_HIST_BATCH_COMMIT, /* a history batch: COPY, bookkeeping and COMMIT */
    METRICS_HIST_KEYFRAME,     /* one keyframe taken */
    METRICS_NHISTS
} MetricsHist;

/* Upper bounds of the histogram buckets, in seconds (+Inf besides). */
#define METRICS_NBUCKETS 14
extern const double metrics_bucket_bounds[METRICS_NBUCKETS];

/* The sink a fan-out name ("history", "file", "kafka") stands for; -1 for another. */
int metrics_sink_of(const char *name);
/* Make sink s's series appear (a configured sink), even while all zero. */
void metrics_sink_enable(MetricsSink s);
void metrics_sink_add(MetricsSink s, MetricsSinkCounter c, uint64_t n);
/* The end LSN sink s holds durably. */
void metrics_sink_set_durable(MetricsSink s, Lsn lsn);

void metrics_add(MetricsCounter c, uint64_t n);
/* For counters kept elsewhere per session (the assembler's): the process
 * total is base + the session's, set whole. Never lowers a counter. */
void metrics_set_counter(MetricsCounter c, uint64_t total);
/* One error of status class st (retry, protocol, invalid, fatal) that ended a session. */
void metrics_count_error(WrStatus st);

void metrics_set(MetricsGauge g, int64_t v);
/* A gauge not known (yet) is left out of the exposition. */
void metrics_unset(MetricsGauge g);

void metrics_observe_us(MetricsHist h, int64_t us);

/* The version reported by walrev_build_info (copied; at most 63 bytes). */
void metrics_set_build_info(const char *version);

/* Everything at one moment, for rendering (plain values, no atomics). */
typedef struct {
    char version[64];
    bool sink_enabled[METRICS_NSINKS];
    uint64_t sink[METRICS_NSINKS][METRICS_NSINK_COUNTERS];
    bool sink_durable_set[METRICS_NSINKS];
    uint64_t sink_durable[METRICS_NSINKS];
    uint64_t counters[METRICS_NCOUNTERS];
    uint64_t errors[WR_DONE + 1]; /* by WrStatus */
    bool gauge_set[METRICS_NGAUGES];
    int64_t gauges[METRICS_NGAUGES];
    uint64_t buckets[METRICS_NHISTS][METRICS_NBUCKETS + 1]; /* not cumulative; the last is above every bound */
    uint64_t sum_us[METRICS_NHISTS];
} MetricsSnapshot;

void metrics_snapshot(MetricsSnapshot *out);
/* Append the Prometheus text exposition (format 0.0.4) of s to out. */
void metrics_render(const MetricsSnapshot *s, StrBuf *out);
/* Everything back to zero and unset (tests). */
void metrics_reset(void);

#endif
