/*
 * plan.h — inside replay/ only: an undo plan (restore, revert, rollback in
 * undo.c). Plain INSERT/UPDATE/DELETE statements against the live source
 * tables, built from history values as text literals cast to each live
 * column's type, printed as the SQL that --apply runs, and applied as one
 * transaction that first declares a walrev context (so the undo is itself a
 * new revision). Any error rolls the whole transaction back and names the
 * constraint; history is never edited. Fills WrError, prints only the plan
 * and its outcome.
 */
#ifndef WALREV_REPLAY_PLAN_H
#define WALREV_REPLAY_PLAN_H

#include "replay/internal.h"

enum { K_INSERT = 0, K_UPDATE = 1, K_DELETE = 2 };

/* A live table on the source, named and typed as it is now. */
typedef struct {
    uint32_t relid;
    uint32_t src_oid;
    char *qname;
    RelVersion now; /* newest relation version in the history: col_id -> current name, key */
    int nlive;
    char **live_names; /* columns of the live table */
    char **live_types; /* format_type() of each */
    int depth;         /* FK depth: parents before children */
} LiveTable;

typedef struct {
    int table;
    int kind;
    char *sql;
} Stmt;

typedef struct {
    ReplayCtx *ctx;
    PGconn *src; /* the source database, where the plan runs (plan_connect) */
    LiveTable *tables;
    int ntables;
    Stmt *stmts;
    int nstmts, cap;
    char *description; /* owned: the command line, recorded as the context's description */
} UndoPlan;

/* Empty plan for ctx; description (owned from now on) names the command. */
void plan_init(UndoPlan *u, ReplayCtx *ctx, char *description);
/* Frees everything, closes the source connection. */
void plan_term(UndoPlan *u);
/* Connect to the source (source conninfo, else the history's). */
WrStatus plan_connect(UndoPlan *u, WrError *err) WR_MUSTCHECK;
/* The live table for relid, loaded on first use. Returns its index or -1 with err set. */
int plan_live_table(UndoPlan *u, uint32_t relid, WrError *err);
/* The live column (index) a history column maps to: by col_id to its current name. -1 if gone. */
int plan_live_col(const LiveTable *t, int col_id);
/* val as a literal of type (NULL: NULL); name quoted as an identifier. */
void plan_append_literal(UndoPlan *u, StrBuf *b, const char *val, const char *type);
void plan_append_ident(UndoPlan *u, StrBuf *b, const char *name);
/* " WHERE" clause naming one live row of a table without a key (key #R.S)
 * by the values the history holds for it now (ctid of the first such row);
 * *gone: the history holds no such row now (nothing appended). */
WrStatus plan_append_where_multiset(UndoPlan *u, StrBuf *b, const LiveTable *t, const char *key, bool *gone,
                                    WrError *err) WR_MUSTCHECK;
/* " WHERE" clause for a stored key, with the key columns of the newest version
 * (a row without a key: plan_append_where_multiset, an error when it is gone). */
WrStatus plan_append_where_key(UndoPlan *u, StrBuf *b, const LiveTable *t, const char *key, WrError *err) WR_MUSTCHECK;

/* INSERT of (col_ids[i], vals[i]); columns no longer on the live table are left out. */
void plan_insert(UndoPlan *u, int ti, const int *col_ids, const char *const *vals, int n);
/* UPDATE setting (col_ids[i], vals[i]) on the row with key; nothing when no column maps. */
WrStatus plan_update(UndoPlan *u, int ti, const int *col_ids, const char *const *vals, int n, const char *key,
                     WrError *err) WR_MUSTCHECK;
WrStatus plan_delete(UndoPlan *u, int ti, const char *key, WrError *err) WR_MUSTCHECK;

/* Each table's depth under the source's foreign keys among the planned tables (parents 0). */
WrStatus plan_order_by_foreign_keys(UndoPlan *u, WrError *err) WR_MUSTCHECK;
/* Stable: inserts parents first, then updates parents first, then deletes children first. */
void plan_sort(UndoPlan *u);
/* Inserts parents first, among the places inserts already hold; every other
 * statement keeps its place. */
void plan_order_inserts(UndoPlan *u);

/* Print the plan; with apply, run it as one transaction or change nothing. */
WrStatus plan_finish(UndoPlan *u, const char *actor, bool apply, WrError *err) WR_MUSTCHECK;

#endif
