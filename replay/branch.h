/*
 * branch.h — inside replay/ only: branches of the tracked tables (issue 18).
 * A branch is a schema of the source database holding writable copies of
 * tracked tables as of a fork revision, recorded in the history store's
 * `branch` table; its changes are captured like any others. This header
 * shares the branch record, the per-table row sets that diff, merge and
 * review compare (base = the history at the fork, ours = live main, theirs =
 * live branch) and the commands. Row sets are held in memory, one table at
 * a time: a branch is for change requests, not for bulk copies.
 */
#ifndef WALREV_REPLAY_BRANCH_H
#define WALREV_REPLAY_BRANCH_H

#include <getopt.h>
#include <jansson.h>

#include "replay/internal.h"

/* The schema a branch's tables live in: BRANCH_SCHEMA_PREFIX + name. */
#define BRANCH_SCHEMA_PREFIX "branch_"

/* One table of a branch: the main table it copies and its copy. */
typedef struct {
    uint32_t relid;     /* the main table's relid (its source OID, as the history names it) */
    char *main_name;    /* "nsp.rel" as it was when branched */
    char *branch_table; /* its name in the branch schema (unquoted) */
} BranchTable;

/* A row of the history store's `branch` table. Owned by whoever fills it (branch_info_term). */
typedef struct {
    char *name;
    char *schema;
    int64_t fork_rev;
    char *fork_lsn;
    char *created_at;
    char *created_by;
    int ntables;
    BranchTable *tables;
} BranchInfo;

/* The options of `branch create`, `merge` and `review` (the CLI separates
 * them from the global options by these tables). */
extern const struct option rq_branch_options[];
extern const struct option rq_merge_options[];
extern const struct option rq_review_options[];

/* A branch name of the wrong form (1 to 48 of a-z, 0-9, _; not main) is a usage error (exit 2). */
WrStatus branch_check_name(ReplayCtx *ctx, const char *name, WrError *err) WR_MUSTCHECK;
void branch_info_term(BranchInfo *b);
/* The branch called name, read on ctx->hist; WR_INVALID naming it when there is none. */
WrStatus branch_load(ReplayCtx *ctx, const char *name, BranchInfo *b, WrError *err) WR_MUSTCHECK;
/* The table of b that copies relid, or NULL. */
const BranchTable *branch_table_for(const BranchInfo *b, uint32_t relid);

/* One row: its key (a JSON array of the key columns' text, as history keys are written) and values. */
typedef struct {
    char *key;
    char **vals; /* ncols entries; NULL for SQL NULL */
} BRow;

/* Rows of one table, sorted by key. */
typedef struct {
    BRow *rows;
    int n;
} BRowSet;

void browset_term(BRowSet *s, int ncols);
/* The row with key, or NULL (binary search). */
const BRow *browset_find(const BRowSet *s, const char *key);

/* A main table as it is live now: the columns a merge compares and writes. */
typedef struct {
    uint32_t relid;
    char *display; /* nsp.rel */
    char *qname;   /* quoted nsp.rel */
    int ncols;     /* regular columns (generated ones left out: they follow the others) */
    char **cols;
    char **types; /* format_type() of each */
    bool *is_key; /* primary key columns */
    int nkey;
} BTableShape;

void btable_shape_term(BTableShape *t);
/* The live main table relid on src (its columns and primary key); a table
 * without a primary key is refused by name (rows could not be matched). */
WrStatus btable_shape_load(ReplayCtx *ctx, PGconn *src, uint32_t relid, BTableShape *t, WrError *err) WR_MUSTCHECK;
/* The rows of qname (main, or a branch's copy) on src with t's columns. */
WrStatus browset_load_live(PGconn *src, const BTableShape *t, const char *qname, BRowSet *s, WrError *err) WR_MUSTCHECK;
/* The rows of t's table as of revision rev, from the history (columns absent then are NULL). */
WrStatus browset_load_base(ReplayCtx *ctx, const BTableShape *t, int64_t rev, BRowSet *s, WrError *err) WR_MUSTCHECK;
/* Quoted schema.table of a branch's copy. Caller frees. */
char *branch_qname(PGconn *conn, const BranchInfo *b, const BranchTable *bt);
/* Connect to the source (source conninfo, else the history's). */
WrStatus branch_connect_source(ReplayCtx *ctx, PGconn **src, WrError *err) WR_MUSTCHECK;
/* A connection to the history store that may write (the tables `branch` and
 * `branch_approval` made if missing), in no transaction. */
WrStatus branch_connect_history_rw(ReplayCtx *ctx, PGconn **conn, WrError *err) WR_MUSTCHECK;

/* ---- commands ---- */
WrStatus cmd_branch(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_merge(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_review(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
/* diff A..B's range before the store is opened: each side main or a branch name of the right form. */
WrStatus branch_check_range(ReplayCtx *ctx, const char *range, WrError *err) WR_MUSTCHECK;
/* `walrev diff A..B` (audit.c's cmd_diff hands a range with ".." here): what B changed since the fork point. */
WrStatus branch_diff(ReplayCtx *ctx, const char *range, const char *const *tables, int ntables, OutFormat fmt,
                     const char *null_text, WrError *err) WR_MUSTCHECK;

#endif
