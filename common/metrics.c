/*
 * metrics.c — see metrics.h. Every value is a C11 atomic updated with
 * relaxed ordering: the stream's thread and the keyframe thread count, the
 * HTTP thread reads. A snapshot is not one instant across series (a scrape
 * may see a revision counted before its changes), but each histogram's
 * buckets are kept non-cumulative and summed at render, so its +Inf bucket
 * always equals its _count as the format requires.
 */
#include "common/metrics.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

const double metrics_bucket_bounds[METRICS_NBUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                        0.25,  0.5,    1,     2.5,  5,     10,   60};

static const char *const sink_names[METRICS_NSINKS] = {"history", "file", "kafka"};

static _Atomic bool sink_enabled[METRICS_NSINKS];
static _Atomic uint64_t sink_counts[METRICS_NSINKS][METRICS_NSINK_COUNTERS];
static _Atomic bool sink_durable_set[METRICS_NSINKS];
static _Atomic uint64_t sink_durable[METRICS_NSINKS];
static _Atomic uint64_t counters[METRICS_NCOUNTERS];
static _Atomic uint64_t errors[WR_DONE + 1];
static _Atomic bool gauge_set[METRICS_NGAUGES];
static _Atomic int64_t gauges[METRICS_NGAUGES];
static _Atomic uint64_t buckets[METRICS_NHISTS][METRICS_NBUCKETS + 1];
static _Atomic uint64_t sums_us[METRICS_NHISTS];

static char version[64] = "unknown"; /* set once before the server starts */

#define RELAXED memory_order_relaxed

int metrics_sink_of(const char *name)
{
    for (int i = 0; i < METRICS_NSINKS; i++)
        if (strcmp(name, sink_names[i]) == 0) return i;
    return -1;
}

void metrics_sink_enable(MetricsSink s) { atomic_store_explicit(&sink_enabled[s], true, RELAXED); }

void metrics_sink_add(MetricsSink s, MetricsSinkCounter c, uint64_t n)
{
    atomic_fetch_add_explicit(&sink_counts[s][c], n, RELAXED);
}

void metrics_sink_set_durable(MetricsSink s, Lsn lsn)
{
    atomic_store_explicit(&sink_durable[s], lsn, RELAXED);
    atomic_store_explicit(&sink_durable_set[s], true, RELAXED);
}

void metrics_add(MetricsCounter c, uint64_t n) { atomic_fetch_add_explicit(&counters[c], n, RELAXED); }

void metrics_set_counter(MetricsCounter c, uint64_t total)
{
    uint64_t cur = atomic_load_explicit(&counters[c], RELAXED);
    while (total > cur && !atomic_compare_exchange_weak_explicit(&counters[c], &cur, total, RELAXED, RELAXED)) {
    }
}

void metrics_count_error(WrStatus st)
{
    if ((int)st >= 0 && st <= WR_DONE) atomic_fetch_add_explicit(&errors[st], 1, RELAXED);
}

void metrics_set(MetricsGauge g, int64_t v)
{
    atomic_store_explicit(&gauges[g], v, RELAXED);
    atomic_store_explicit(&gauge_set[g], true, RELAXED);
}

void metrics_unset(MetricsGauge g) { atomic_store_explicit(&gauge_set[g], false, RELAXED); }

void metrics_observe_us(MetricsHist h, int64_t us)
{
    if (us < 0) us = 0;
    double s = (double)us / 1e6;
    int b = 0;
    while (b < METRICS_NBUCKETS && s > metrics_bucket_bounds[b]) b++;
    atomic_fetch_add_explicit(&buckets[h][b], 1, RELAXED);
    atomic_fetch_add_explicit(&sums_us[h], (uint64_t)us, RELAXED);
}

void metrics_set_build_info(const char *v) { snprintf(version, sizeof(version), "%s", v); }

void metrics_snapshot(MetricsSnapshot *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->version, sizeof(out->version), "%s", version);
    for (int s = 0; s < METRICS_NSINKS; s++) {
        out->sink_enabled[s] = atomic_load_explicit(&sink_enabled[s], RELAXED);
        for (int c = 0; c < METRICS_NSINK_COUNTERS; c++)
            out->sink[s][c] = atomic_load_explicit(&sink_counts[s][c], RELAXED);
        out->sink_durable_set[s] = atomic_load_explicit(&sink_durable_set[s], RELAXED);
        out->sink_durable[s] = atomic_load_explicit(&sink_durable[s], RELAXED);
    }
    for (int c = 0; c < METRICS_NCOUNTERS; c++) out->counters[c] = atomic_load_explicit(&counters[c], RELAXED);
    for (int e = 0; e <= WR_DONE; e++) out->errors[e] = atomic_load_explicit(&errors[e], RELAXED);
    for (int g = 0; g < METRICS_NGAUGES; g++) {
        out->gauge_set[g] = atomic_load_explicit(&gauge_set[g], RELAXED);
        out->gauges[g] = atomic_load_explicit(&gauges[g], RELAXED);
    }
    for (int h = 0; h < METRICS_NHISTS; h++) {
        for (int b = 0; b <= METRICS_NBUCKETS; b++) out->buckets[h][b] = atomic_load_explicit(&buckets[h][b], RELAXED);
        out->sum_us[h] = atomic_load_explicit(&sums_us[h], RELAXED);
    }
}

void metrics_reset(void)
{
    for (int s = 0; s < METRICS_NSINKS; s++) {
        atomic_store(&sink_enabled[s], false);
        for (int c = 0; c < METRICS_NSINK_COUNTERS; c++) atomic_store(&sink_counts[s][c], 0);
        atomic_store(&sink_durable_set[s], false);
        atomic_store(&sink_durable[s], 0);
    }
    for (int c = 0; c < METRICS_NCOUNTERS; c++) atomic_store(&counters[c], 0);
    for (int e = 0; e <= WR_DONE; e++) atomic_store(&errors[e], 0);
    for (int g = 0; g < METRICS_NGAUGES; g++) {
        atomic_store(&gauge_set[g], false);
        atomic_store(&gauges[g], 0);
    }
    for (int h = 0; h < METRICS_NHISTS; h++) {
        for (int b = 0; b <= METRICS_NBUCKETS; b++) atomic_store(&buckets[h][b], 0);
        atomic_store(&sums_us[h], 0);
    }
    snprintf(version, sizeof(version), "unknown");
}

/* ---- the text exposition ---- */

static void family(StrBuf *out, const char *name, const char *type, const char *help)
{
    strbuf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void append_label_value(StrBuf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            strbuf_append_str(out, "\\\\");
        else if (*v == '"')
            strbuf_append_str(out, "\\\"");
        else if (*v == '\n')
            strbuf_append_str(out, "\\n");
        else
            strbuf_append_char(out, *v);
    }
}

static void gauge(StrBuf *out, const MetricsSnapshot *s, MetricsGauge g, const char *name, const char *help)
{
    if (!s->gauge_set[g]) return;
    family(out, name, "gauge", help);
    strbuf_appendf(out, "%s %lld\n", name, (long long)s->gauges[g]);
}

static void counter(StrBuf *out, const char *name, const char *help, uint64_t v)
{
    family(out, name, "counter", help);
    strbuf_appendf(out, "%s %llu\n", name, (unsigned long long)v);
}

static void sink_family(StrBuf *out, const MetricsSnapshot *s, const char *name, const char *type, const char *help,
                        int which)
{
    bool any = false;
    for (int i = 0; i < METRICS_NSINKS; i++) any |= s->sink_enabled[i];
    if (!any) return;
    family(out, name, type, help);
    for (int i = 0; i < METRICS_NSINKS; i++) {
        if (!s->sink_enabled[i]) continue;
        if (which < 0) {
            if (s->sink_durable_set[i])
                strbuf_appendf(out, "%s{sink=\"%s\"} %llu\n", name, sink_names[i],
                               (unsigned long long)s->sink_durable[i]);
        } else {
            strbuf_appendf(out, "%s{sink=\"%s\"} %llu\n", name, sink_names[i], (unsigned long long)s->sink[i][which]);
        }
    }
}

static void histogram(StrBuf *out, const MetricsSnapshot *s, MetricsHist h, const char *name, const char *help)
{
    family(out, name, "histogram", help);
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_NBUCKETS; b++) {
        cum += s->buckets[h][b];
        strbuf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_bucket_bounds[b], (unsigned long long)cum);
    }
    cum += s->buckets[h][METRICS_NBUCKETS];
    strbuf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
    strbuf_appendf(out, "%s_sum %.6f\n", name, (double)s->sum_us[h] / 1e6);
    strbuf_appendf(out, "%s_count %llu\n", name, (unsigned long long)cum);
}

void metrics_render(const MetricsSnapshot *s, StrBuf *out)
{
    family(out, "walrev_build_info", "gauge", "walrev's version, as a label; always 1.");
    strbuf_append_str(out, "walrev_build_info{version=\"");
    append_label_value(out, s->version);
    strbuf_append_str(out, "\"} 1\n");

    gauge(out, s, METRICS_STREAMING, "walrev_streaming",
          "1 while walrev run streams from the slot, 0 while it waits to retry.");
    gauge(out, s, METRICS_LAG_BYTES, "walrev_lag_bytes",
          "Bytes of WAL between the source server's WAL end and the position confirmed to the slot.");
    if (s->gauge_set[METRICS_LAG_US]) {
        family(
            out, "walrev_lag_seconds", "gauge",
            "Seconds from the source's commit of the last revision to its hand-over to every sink; 0 when caught up.");
        strbuf_appendf(out, "walrev_lag_seconds %.6f\n", (double)s->gauges[METRICS_LAG_US] / 1e6);
    }
    gauge(out, s, METRICS_RETAINED_WAL, "walrev_slot_retained_wal_bytes",
          "WAL the slot keeps on the source: current WAL position minus the slot's restart_lsn.");
    gauge(out, s, METRICS_CONFIRMED_LSN, "walrev_slot_confirmed_lsn",
          "The position confirmed to the slot (flush LSN), as a byte position.");
    gauge(out, s, METRICS_LAST_REVISION, "walrev_last_revision_id", "Id of the last revision assembled.");

    sink_family(out, s, "walrev_sink_revisions_total", "counter", "Revisions handed to each sink.",
                METRICS_SINK_REVISIONS);
    sink_family(out, s, "walrev_sink_changes_total", "counter", "Row changes (object deltas) handed to each sink.",
                METRICS_SINK_CHANGES);
    sink_family(out, s, "walrev_sink_written_bytes_total", "counter",
                "Bytes each sink wrote: COPY data to the history store, msgpack to the file, delivered Kafka messages.",
                METRICS_SINK_BYTES);
    sink_family(out, s, "walrev_sink_durable_lsn", "gauge",
                "End LSN of the last revision each sink holds durably, as a byte position.", -1);

    counter(out, "walrev_row_lookups_total",
            "Old row images read from the history store one by one (row cache misses).",
            s->counters[METRICS_ROW_LOOKUPS]);
    counter(out, "walrev_row_cache_hits_total", "Old row images the row cache answered.",
            s->counters[METRICS_ROW_CACHE_HITS]);
    counter(out, "walrev_row_prefetched_total", "Old row images read ahead in batches into the row cache.",
            s->counters[METRICS_ROW_PREFETCHED]);
    counter(out, "walrev_keyframes_total", "Keyframes written to the history store.", s->counters[METRICS_KEYFRAMES]);
    histogram(out, s, METRICS_HIST_KEYFRAME, "walrev_keyframe_duration_seconds", "Time to take one keyframe.");
    histogram(out, s, METRICS_HIST_BATCH_COMMIT, "walrev_history_batch_commit_duration_seconds",
              "Time to commit one history batch: COPY, bookkeeping and COMMIT.");
    counter(out, "walrev_retries_total", "Sessions started again after a retriable error.",
            s->counters[METRICS_RETRIES]);
    counter(out, "walrev_quarantined_revisions_total",
            "Revisions the history store refused twice with a data error, stored quarantined.",
            s->counters[METRICS_QUARANTINED]);
    counter(out, "walrev_reconcile_rounds_total", "Rounds of the continuous reconciliation that compared.",
            s->counters[METRICS_RECONCILE_ROUNDS]);
    counter(out, "walrev_reconcile_rounds_failed_total",
            "Rounds of the continuous reconciliation that could not compare.", s->counters[METRICS_RECONCILE_FAILED]);
    counter(out, "walrev_reconcile_divergences_total",
            "Warning revisions the reconciliation recorded: a table found to differ from the history.",
            s->counters[METRICS_RECONCILE_DIVERGENCES]);
    counter(out, "walrev_reconcile_differences_total", "Differing keys or rows the reconciliation found, every round.",
            s->counters[METRICS_RECONCILE_DIFFERENCES]);
    family(out, "walrev_errors_total", "counter", "Errors that ended a session of walrev run, by class.");
    static const WrStatus classes[] = {WR_RETRY, WR_PROTOCOL, WR_INVALID, WR_FATAL};
    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        strbuf_appendf(out, "walrev_errors_total{class=\"%s\"} %llu\n", wr_status_name(classes[i]),
                       (unsigned long long)s->errors[classes[i]]);
}
