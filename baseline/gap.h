/*
 * gap.h — a slot that no longer continues the history (dropped, invalidated
 * by max_slot_wal_keep_size, advanced by someone else) is never silent
 * (docs/history-store.md#gaps). The worker and setup compare the slot with
 * the history store's checkpoint; on a gap the slot is made anew with an
 * exported snapshot and one **gap revision** (actor walrev:gap) at its
 * consistent point reconciles the history with every published table as of
 * that snapshot, so the stream goes on from exactly there. It must never
 * leave the history believing a row the table lost, nor drop a slot that
 * continues the history.
 */
#ifndef WALREV_BASELINE_GAP_H
#define WALREV_BASELINE_GAP_H

#include "baseline/baseline.h"

typedef struct {
    bool found; /* the slot does not continue the history */
    bool slot_exists;
    Lsn history_lsn;  /* where the history is complete to (its checkpoint) */
    Lsn slot_lsn;     /* the slot's confirmed_flush_lsn; 0 when it is missing */
    char reason[200]; /* "dropped", "invalidated", "advanced", with details */
    char kind[16];    /* slot_missing | slot_lost | slot_advanced */
} GapCheck;

/*
 * Read the slot (pg_replication_slots) and compare it with the history's
 * checkpoint history_lsn (> 0). WR_RETRY when the source is unreachable.
 */
WrStatus gap_check(const char *source_conninfo, const char *slot_name, Lsn history_lsn, GapCheck *out,
                   WrError *err) WR_MUSTCHECK;

/*
 * Record the gap g: drop the slot if it still exists, create it again with an
 * exported snapshot, and write one gap revision at its consistent point:
 * each published table compared with the history (reconcile.h), rows the
 * history holds and the table lacks as deletes, differing rows as updates,
 * new rows as inserts (old values flagged unknown); a table without a key
 * that differs is truncated and inserted again. a must hold the history's
 * relation versions and position and be outside a transaction; its output
 * is f and its history reader (AssemblerConfig.history) reads the history
 * store. Returns once every sink of f holds the gap revision;
 * *consistent_point is where the stream goes on. Blocking; logs the gap as
 * an error, loudly.
 */
WrStatus gap_record(const BaselineConfig *cfg, const char *slot_name, Assembler *a, Fanout *f, const GapCheck *g,
                    Lsn *consistent_point, WrError *err) WR_MUSTCHECK;

#endif
