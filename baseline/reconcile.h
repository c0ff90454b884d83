/*
 * reconcile.h — compare what the history holds of a table with the live
 * table (docs/history-store.md#reconciliation): `walrev verify
 * --against-source` reports every differing key, and a gap revision
 * (docs/history-store.md#gaps) turns the differences into deltas. Both sides
 * are read at one consistent point: the caller opens the source transaction
 * on an exported snapshot and names the history revision that snapshot
 * corresponds to. Rows are compared by a digest of their tracked columns'
 * text (hidden and untracked columns are not compared).
 */
#ifndef WALREV_BASELINE_RECONCILE_H
#define WALREV_BASELINE_RECONCILE_H

#include <libpq-fe.h>

#include "baseline/baseline.h"
#include "schema/relcache.h"

typedef enum {
    RECON_ONLY_IN_HISTORY, /* the history holds the key, the table does not */
    RECON_ONLY_IN_SOURCE,  /* the table has the key, the history does not */
    RECON_DIFFERENT,       /* both have it, with different values */
    RECON_ROWS_DIFFER      /* a table without a key: the copies of a row differ in number */
} ReconKind;

/* One difference. Valid during the callback only. */
typedef struct {
    ReconKind kind;
    const char *key;       /* keyed tables: the stored key form (JSON array) */
    const char *row;       /* RECON_ROWS_DIFFER: the compared columns as ROW(...)::text */
    int64_t in_source;     /* RECON_ROWS_DIFFER: copies in the table */
    int64_t in_history;    /* RECON_ROWS_DIFFER: copies in the history */
    const Value *vals;     /* RECON_ONLY_IN_SOURCE / RECON_DIFFERENT when values were asked:
                            * the source row, in table.cols order; else NULL */
} ReconDiff;

/* The table as compared. table and rv are valid during reconcile_table's callbacks. */
typedef struct {
    uint32_t relid;
    BackfillTable table;       /* as pgoutput describes it at the snapshot */
    const RelationVersion *rv; /* its shape in the caller's relation cache (keys are built under it) */
    bool multiset;             /* no key: compared as a multiset of rows */
    bool in_history;           /* the history has a relation version of it */
    int64_t rows_source;
    int64_t rows_history;
    int64_t differences;
} ReconTable;

typedef WrStatus (*ReconFn)(void *arg, const ReconTable *t, const ReconDiff *d, WrError *err);

typedef struct {
    PGconn *src;          /* in the snapshot's transaction, walrev.publication set */
    PGconn *hist;         /* the history store, in a transaction that sees revision rev */
    const char *schema_q; /* quoted history schema */
    int64_t rev;          /* the history as of this revision (0: empty) */
    RelCache *rc;         /* the caller's; the table's version is applied to it */
    bool want_values;     /* hand the source row's values to the callback */
    /* A table without a key: instead of RECON_ROWS_DIFFER per differing row,
     * the surplus copies one by one: each row the history holds beyond the
     * table's copies as RECON_ONLY_IN_HISTORY (its identity in key), each
     * row the table has beyond the history's as RECON_ONLY_IN_SOURCE (its
     * values, when want_values). Equal copies are left alone. */
    bool multiset_rows;
} ReconQuery;

/*
 * Compare table relid. *found=false when the source does not publish it at
 * the snapshot (nothing compared). Calls fn once per difference; counts in
 * *out. Memory: the history's rows of the table (key and digest) are held
 * while the table's rows stream past. WR_RETRY on a lost connection,
 * WR_FATAL on another SQL error, or what fn returned.
 */
/*
 * The two sides at one point, for ReconQuery: src (connected) enters the
 * exported snapshot's REPEATABLE READ transaction with walrev.publication
 * set (what names the step in an error); hist (connected) begins a
 * REPEATABLE READ transaction and *rev gets the last revision whose commit
 * LSN is below before (0: the last revision of all). WR_RETRY on a lost
 * connection, WR_FATAL on another SQL error.
 */
WrStatus reconcile_enter_snapshot(PGconn *src, const char *snapshot, const char *publication, const char *what,
                                  WrError *err) WR_MUSTCHECK;
WrStatus reconcile_history_at(PGconn *hist, const char *schema_q, Lsn before, int64_t *rev,
                              WrError *err) WR_MUSTCHECK;

WrStatus reconcile_table(const ReconQuery *q, uint32_t relid, ReconFn fn, void *arg, ReconTable *out,
                         bool *found, WrError *err) WR_MUSTCHECK;
void reconcile_table_term(ReconTable *t);

/*
 * `walrev verify --against-source [--table T]... [--wait SECONDS]`: a
 * temporary slot exports a snapshot; once the worker's slot has confirmed
 * that position, the history as of it is compared with the tables in that
 * snapshot. Prints every differing key; returns 0 (equal), 1 (differences)
 * or 2 (could not compare). slot_name is the worker's slot.
 */
int reconcile_command(const BaselineConfig *cfg, const char *slot_name, int argc, char **argv);

#endif
