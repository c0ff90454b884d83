/*
 * steps.h — what the files of `walrev setup` share, and nothing else may
 * use: the run's state (Setup), its output (every problem counted, printed
 * with its fix), its SQL helpers, and the steps setup.c runs in order. Each
 * step prints what it found or made; a step that fails counts a problem and
 * returns false, and the command stops before the next one.
 */
#ifndef WALREV_SETUP_STEPS_H
#define WALREV_SETUP_STEPS_H

#include <libpq-fe.h>

#include "common/common.h"
#include "setup/setup.h"

/* How the publication selects tables (docs/cli.md#setup). */
typedef enum {
    PUB_ALL_TABLES, /* FOR ALL TABLES: history elsewhere (or off) */
    PUB_SCHEMAS,    /* FOR TABLES IN SCHEMA every user schema but the history's */
    PUB_TABLES      /* FOR TABLE the [source] tables list */
} PubMode;

/* walrev's own tables in the history schema on the source, published with
 * the user's (table log, DDL capture, erasure log): an SQL list for NOT IN. */
#define SETUP_OWN_TABLES_SQL "('table_log', 'ddl_capture', 'erasure_log')"

typedef struct {
    const SetupConfig *cfg;
    const SetupOptions *opts;
    PGconn *src;
    PGconn *hist; /* == src when the history store uses the same conninfo */
    bool same_db; /* history store lives in the source database */
    bool superuser;
    PubMode mode;
    bool pub_exists;
    bool pub_all; /* the existing publication is FOR ALL TABLES */
    bool slot_exists;
    int problems;
    int changes;
    int warnings;
} Setup;

/* ---- output (setup.c) ---- */

/* "<tag>  <text>" on stdout: ok, created, info. */
void setup_say(const char *tag, const char *fmt, ...) WR_PRINTF(2, 3);
/* One problem on stderr: what is wrong and, when fix is not NULL, how to fix it. */
void setup_problem(Setup *s, const char *fix, const char *fmt, ...) WR_PRINTF(3, 4);
void setup_warn(Setup *s, const char *fmt, ...) WR_PRINTF(2, 3);

/* ---- SQL (setup.c) ---- */

/* Run a query (parameters when n > 0); on failure a problem naming what was
 * being done, and NULL. The result is the caller's to clear. */
PGresult *setup_run(Setup *s, PGconn *c, const char *what, const char *sql, int n, const char *const *params);
/* The first value of setup_run's result ("" for no row or NULL); caller frees. NULL on failure. */
char *setup_scalar(Setup *s, PGconn *c, const char *what, const char *sql, int n, const char *const *params);
/* An identifier quoted as quote_ident() would; caller frees. */
char *setup_ident(PGconn *c, const char *name);
/* Run statements without a result; false (a problem counted) on failure. */
bool setup_exec(Setup *s, PGconn *c, const char *what, const char *sql);

/* ---- checks and the publication (publication.c) ---- */

void setup_check_server(Setup *s);
void setup_check_role(Setup *s);
void setup_decide_same_db(Setup *s);
void setup_check_history(Setup *s);
void setup_check_publication(Setup *s);
bool setup_ensure_publication(Setup *s);

/* ---- the history store and the context functions (store.c) ---- */

bool setup_ensure_history(Setup *s);
bool setup_ensure_context_functions(Setup *s);

/* ---- DDL capture, the table log, new schemas, unlogged tables (capture.c) ---- */

bool setup_ensure_ddl_trigger(Setup *s);
bool setup_ensure_table_log(Setup *s);
bool setup_ensure_table_log_published(Setup *s);
bool setup_ensure_schema_trigger(Setup *s);
bool setup_report_unlogged(Setup *s);
bool setup_ensure_capture_published(Setup *s);

/* ---- the slot and the replica identity report (slot.c) ---- */

bool setup_ensure_slot(Setup *s);
bool setup_report_replica_identity(Setup *s);

#endif
