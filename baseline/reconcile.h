/*
 * reconcile.h — compare what the history holds of a table with the live
 * table (docs/replay.md#walrev-verify---against-source): `walrev verify
 * --against-source` reports every differing key, and a gap revision
 * (docs/history-store.md#gaps) turns the differences into deltas. Both sides
 * are read at one consistent point: the caller opens the source transaction
 * on an exported snapshot and names the history revision that snapshot
 * corresponds to. Rows are compared by a digest of their tracked columns'
 * text (hidden and untracked columns are not compared).
 */
#ifndef WALREV_BASELINE_RECONCILE_H
#define WALREV_BASELINE_RECONCILE_H

#include <stdatomic.h>

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
    const char *key;    /* keyed tables: the stored key form (JSON array) */
    const char *row;    /* RECON_ROWS_DIFFER: the compared columns as ROW(...)::text */
    int64_t in_source;  /* RECON_ROWS_DIFFER: copies in the table */
    int64_t in_history; /* RECON_ROWS_DIFFER: copies in the history */
    const Value *vals;  /* RECON_ONLY_IN_SOURCE / RECON_DIFFERENT when values were asked:
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
    /* Chunked comparison (ReconQuery.chunked): chunks compared at every level,
     * how many differed, levels descended (0: not chunked), and the rows
     * compared row by row in the differing chunks. */
    int64_t chunks;
    int64_t chunks_differing;
    int levels;
    int64_t rows_compared;
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
    /* Compare by chunks first (docs/replay.md#walrev-verify---against-source):
     * each side's rows fall into 256 chunks by a hash of their key (of the
     * whole row without a key); each chunk's row count and the sum of its
     * rows' hashes are compared, differing chunks are split 256 ways again,
     * and only the rows of chunks that still differ are compared row by row
     * (with their keys crossing the wire). Differences found are the same as
     * unchunked; only what crosses the wire and what is held in memory shrink. */
    bool chunked;
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
WrStatus reconcile_history_at(PGconn *hist, const char *schema_q, Lsn before, int64_t *rev, WrError *err) WR_MUSTCHECK;
/*
 * The tables of publication walrev.publication on src (set by
 * reconcile_enter_snapshot), as rows (oid, qualified name, nspname, relname)
 * in qualified-name order, into *out: the caller's to PQclear, on failure too.
 * what names the step in an error (WR_RETRY on a lost connection, WR_FATAL on
 * another SQL error). Every published table is listed: reconcile_records_table
 * says which of them walrev records.
 */
WrStatus reconcile_list_published(PGconn *src, const char *what, PGresult **out, WrError *err) WR_MUSTCHECK;
/* Whether walrev records the published table nsp.rel: not excluded by the
 * tracking rules, and not one of walrev's own tables on the source (the table
 * log, in the history schema), which are machinery, not history. */
bool reconcile_records_table(const BaselineConfig *cfg, const char *nsp, const char *rel);

WrStatus reconcile_table(const ReconQuery *q, uint32_t relid, ReconFn fn, void *arg, ReconTable *out, bool *found,
                         WrError *err) WR_MUSTCHECK;
void reconcile_table_term(ReconTable *t);

/* Where one comparison of the history with the tables stood, and what it found. */
typedef struct {
    Lsn at;       /* the exported snapshot's consistent point */
    int64_t rev;  /* the history as of this revision (the last one committed before at) */
    int compared; /* tables compared */
    int64_t rows_source, rows_history, differences;
} ReconSummary;

/* One comparison of the history with the live tables (verify --against-source, the worker's reconciler). */
typedef struct {
    const BaselineConfig *cfg;
    const char *slot_name;     /* the worker's slot: it must pass the comparison point */
    const char *const *tables; /* ntables names, or none: every published table */
    int ntables;
    int wait_s;               /* longest wait for the worker to pass the point */
    int64_t rows_per_second;  /* 0: as fast as the servers go; else sleeps after each table */
    const atomic_int *stop; /* NULL, or a flag that ends the comparison early (WR_RETRY) */
    ReconFn fn;               /* each difference */
    void *arg;
    void (*on_start)(void *arg, const ReconSummary *sum);               /* at and rev known; may be NULL */
    WrStatus (*on_table)(void *arg, const ReconTable *t, WrError *err); /* after each table; may be NULL */
} ReconRun;

/*
 * A temporary slot exports a snapshot at its consistent point; once the
 * worker's slot has confirmed that point, the history as of it is compared,
 * chunk by chunk (ReconQuery.chunked), with the tables in that snapshot.
 * WR_OK: compared (sum says what was found); else not compared (err).
 */
WrStatus reconcile_run(const ReconRun *run, ReconSummary *sum, WrError *err) WR_MUSTCHECK;

/*
 * `walrev verify --against-source [--table T]... [--wait SECONDS]`: a
 * temporary slot exports a snapshot; once the worker's slot has confirmed
 * that position, the history as of it is compared with the tables in that
 * snapshot. Prints every differing key; returns 0 (equal), 1 (differences)
 * or 2 (could not compare). slot_name is the worker's slot.
 */
int reconcile_command(const BaselineConfig *cfg, const char *slot_name, int argc, char **argv);

#endif
