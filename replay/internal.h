/*
 * internal.h — shared by the replay/ sources only (never included outside
 * replay/): the command context, history queries, point/table/key
 * resolution, and the result printer. Functions here fill WrError and return;
 * replay_run prints the one error line and picks the exit code.
 */
#ifndef WALREV_REPLAY_INTERNAL_H
#define WALREV_REPLAY_INTERNAL_H

#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "pgio/output.h"
#include "replay/replay.h"

typedef struct {
    const ReplayOptions *opts;
    const char *cmd;
    FILE *out;
    FILE *err;
    PGconn *hist;   /* history store, in one REPEATABLE READ READ ONLY transaction */
    char *schema_q; /* quoted history schema identifier */
    const char *hist_conninfo;
    const char *source_conninfo;
    bool usage; /* the error is a usage error (bad option, missing operand): exit status 2 */
    /* set before rq_open_history by a command that reads the table log many times (snapshot):
     * it is copied once, in the transaction, and every read takes the copy */
    bool copy_table_log;
} ReplayCtx;

/* A resolved point. */
typedef struct {
    int64_t rev;
    char commit_lsn[32];
    char commit_time[64];
} Point;

/* One version of a tracked table (a row of relation_version). Owned by whoever fills it. */
typedef struct {
    uint32_t relid;
    int version;
    char *nspname;
    char *relname;
    int ncols;
    int *col_ids;
    char **col_names;
    uint32_t *type_oids;
    int *typmods;
    char **type_names; /* entries may be NULL */
    bool *is_key;
    char relkind;         /* 'r' a table with rows of its own, 'p' partitioned: rows in its partitions,
                          * 'i' (set by snapshot only) an INHERITS parent read as SELECT * FROM it shows it:
                          * its own rows and its children's (inherit_rows) */
    int64_t created_rev;  /* rq_relation_at found nothing: the revision that created it (0 unknown) */
    int64_t dropped_rev;  /* rq_relation_at found nothing: the revision that dropped it (0 none) */
    bool untracked;       /* ... and it existed then but was not tracked (unlogged, outside the publication):
                          * created_rev is where its history begins */
    int64_t unlogged_rev; /* rq_relation_at found nothing: made UNLOGGED in this revision, not tracked since (0 no) */
    bool unpublished;     /* ... unlogged_rev is where it was taken out of the publication instead */
    /* STORED generated columns (never in history: computed by snapshots from
     * gen_exprs over the row's other columns); gen_positions place them among
     * all the table's columns. */
    int ngen;
    char **gen_names;
    char **gen_types;
    int *gen_positions;
    char **gen_exprs;
    /* A parent read through its members (relkind 'p' or 'i', set by snapshot only): member k's
     * (relid member_relids[k]) own expression of generated column member_gens[k] (>= 0), or of
     * regular column -(member_gens[k] + 1), which the member generates where the parent does
     * not; a partition or child may have its own. Rows of other members use gen_exprs (the
     * regular column: its recorded value). */
    int nmember_exprs;
    uint32_t *member_relids;
    int *member_gens;
    char **member_exprs;
} RelVersion;

void relversion_term(RelVersion *rv);

/* ---- argument checks that need no database (args.c) ----
 * Every command checks its arguments with these, and its own rules, before
 * rq_open_history: a usage error is exit 2 even with the history store down
 * (docs/cli.md). Each is a usage error (rq_usage) naming the value. */
/* point of one of resolve_point()'s forms (what: the option or operand, for
 * the message); a time is only shaped here, its parse is the server's. */
WrStatus rq_check_point(ReplayCtx *ctx, const char *what, const char *text, WrError *err) WR_MUSTCHECK;
/* --since and --until (either NULL): each a point, and two revision ids not inverted. */
WrStatus rq_check_range(ReplayCtx *ctx, const char *since, const char *until, WrError *err) WR_MUSTCHECK;
/* A --table name as in SQL (table or schema.table), as rq_resolve_table parses it. */
WrStatus rq_check_table_name(ReplayCtx *ctx, const char *name, WrError *err) WR_MUSTCHECK;
WrStatus rq_check_table_names(ReplayCtx *ctx, const char *const *names, int n, WrError *err) WR_MUSTCHECK;
/* A --key of a form rq_parse_key takes. */
WrStatus rq_check_key(ReplayCtx *ctx, const char *arg, WrError *err) WR_MUSTCHECK;

/* ---- history queries (query.c) ---- */
/* Open ctx->hist: the history store in one REPEATABLE READ READ ONLY
 * transaction, checked to hold the replay functions. A command calls it once
 * its arguments are checked; a connection refused is a runtime error (exit 1). */
WrStatus rq_open_history(ReplayCtx *ctx, WrError *err) WR_MUSTCHECK;
/* err (WR_FATAL) from res's primary message, else the connection's, trimmed. */
void rq_server_error(WrError *err, PGconn *conn, const PGresult *res);
/* Run sql with text params on conn; NULL + err on failure (the server's primary message). Caller PQclears. */
PGresult *rq_exec(PGconn *conn, WrError *err, const char *sql, int nparams, const char *const *params);
/* rq_exec of a statement whose result is not wanted: WR_OK, or err's status. */
WrStatus rq_run(PGconn *conn, WrError *err, const char *sql, int nparams, const char *const *params) WR_MUSTCHECK;
/* Connect through pgio (connect timeout, keepalives, notices dropped); err
 * names what ("history store"). *out owned by the caller. */
WrStatus rq_connect(const char *conninfo, const char *what, PGconn **out, WrError *err) WR_MUSTCHECK;
/* The same with a printf-built statement (only for identifiers/numbers already made safe). */
PGresult *rq_execf(PGconn *conn, WrError *err, const char *fmt, ...) WR_PRINTF(3, 4);
/* rq_exec of a printf-built statement (identifiers/numbers already made safe) with text params. */
PGresult *rq_execp(PGconn *conn, WrError *err, int nparams, const char *const *params, const char *fmt, ...)
    WR_PRINTF(5, 6);
/* The yes-or-no a printf-built query answers (identifiers/numbers already made
 * safe): *out is its first row's first column ('t'), false when it returns no
 * row. WR_OK, or err's status (the server's primary message). */
WrStatus rq_boolf(PGconn *conn, bool *out, WrError *err, const char *fmt, ...) WR_PRINTF(4, 5) WR_MUSTCHECK;
/* Whether the history store has its table name yet (one a later store format added). */
WrStatus rq_has_table(ReplayCtx *ctx, const char *name, bool *have, WrError *err) WR_MUSTCHECK;
/* Resolve a point text (revision id, LSN, timestamp) as a state of the tables and report it on
 * ctx->err: an LSN or time inside a gap is an error naming the gap (resolve_point, replay.sql). */
WrStatus rq_resolve_point(ReplayCtx *ctx, const char *text, Point *pt, WrError *err) WR_MUSTCHECK;
/* n point texts into pts[0..n-1] in one statement, each reported on ctx->err in order; the first that
 * cannot be resolved is the error. */
WrStatus rq_resolve_points(ReplayCtx *ctx, int n, const char *const *texts, Point *pts, WrError *err) WR_MUSTCHECK;
/* As rq_resolve_points, for the ends of a range or the revision a listing starts from (log, history
 * --since/--until, show, prune --before): a point inside a gap gives the revision before it. */
WrStatus rq_resolve_bounds(ReplayCtx *ctx, int n, const char *const *texts, Point *pts, WrError *err) WR_MUSTCHECK;
/* The newest revision (error when the history is empty). */
WrStatus rq_newest(ReplayCtx *ctx, Point *pt, WrError *err) WR_MUSTCHECK;
/* "schema.table" or "table" (public) -> relid of the tracked table that had that name last. */
WrStatus rq_resolve_table(ReplayCtx *ctx, const char *name, uint32_t *relid, WrError *err) WR_MUSTCHECK;
/* A row named by --table and --key (rq_resolve_object). */
typedef struct {
    uint32_t relid;
    bool members;   /* partitioned or an INHERITS parent (rq_has_members): its rows are its members' */
    bool known;     /* without members: the key has a recorded change in the table (else not checked) */
    int64_t newest; /* asked for: the newest revision */
} ObjectRef;
/* rq_resolve_table of name, rq_has_members of the table and whether stored key
 * key has a recorded change, in one statement; with want_newest the newest
 * revision too (first: an empty history is the error then, as rq_newest's).
 * Errors as rq_resolve_table's. */
WrStatus rq_resolve_object(ReplayCtx *ctx, const char *name, const char *key, bool want_newest, ObjectRef *o,
                           WrError *err) WR_MUSTCHECK;
/* The same as of revision rev: the table that had that name then, when another has it now (a name dropped and
 * created again, or renamed away and given to another table); else as rq_resolve_table. */
WrStatus rq_resolve_table_at(ReplayCtx *ctx, const char *name, int64_t rev, uint32_t *relid, WrError *err) WR_MUSTCHECK;
/* rq_resolve_table_at, and the table it chose as of rev as rq_relation_at(*relid, rev) gives it (*rv, *found),
 * read while choosing: a caller that needs both resolves the name once and reads the version once (a
 * statement each, tens of ms on a busy store; `walrev snapshot` of a point's tables). *rv is the
 * caller's to relversion_term, whatever the status. */
WrStatus rq_resolve_table_rv(ReplayCtx *ctx, const char *name, int64_t rev, uint32_t *relid, RelVersion *rv,
                             bool *found, WrError *err) WR_MUSTCHECK;
/* The id of the default actor cli:ID of the commands that write: USER, else
 * LOGNAME, else the real user id's account name, else "unknown". The string is
 * the environment's or getpwuid()'s (valid until the next getpwuid call). */
const char *rq_cli_user(void);
/* The SQL of a walrev.context() call on conn (undo plans, branches, merges):
 * actor "TYPE:ID" (NULL: cli:rq_cli_user()), description, meta a JSON object or
 * NULL (borrowed). Caller frees. */
char *rq_context_sql(ReplayCtx *ctx, PGconn *conn, const char *actor, const char *description, json_t *meta);
/* Whether the source says the table (by name, or by relid) is unlogged or
 * temporary now; then err names it so (logical decoding cannot see it). */
bool rq_untracked_now(ReplayCtx *ctx, const char *name, uint32_t relid, WrError *err);
/* Every tracked table, ordered by name; caller frees *relids. */
WrStatus rq_all_tables(ReplayCtx *ctx, uint32_t **relids, int *n, WrError *err) WR_MUSTCHECK;
/* The ntables tables named, resolved in order (*n counts those resolved, on
 * an error too), or every tracked table when ntables is 0. Caller frees *relids. */
WrStatus rq_named_or_all_tables(ReplayCtx *ctx, const char *const *tables, int ntables, uint32_t **relids, int *n,
                                WrError *err) WR_MUSTCHECK;
/*
 * What the table was at rev (rev < 0: the newest): the relation version in
 * force, or the table log's columns for a partitioned table (relkind 'p',
 * col_ids the ordinal positions that parent_rows' vals follow) or a table
 * never written. *found=false if none; then rv->created_rev > 0 says the
 * table log shows it created after rev, rv->dropped_rev > 0 that the
 * table was dropped by then (whatever rows it had), rv->unlogged_rev > 0
 * that it was unlogged then (with the names the log gave it), or with
 * rv->unpublished out of the publication since that revision. rev < 0 finds
 * a table with rows of its own at its newest version, dropped or not (undo's
 * plans of what is live read it so). Found or not, the caller frees rv with
 * relversion_term.
 */
WrStatus rq_relation_at(ReplayCtx *ctx, uint32_t relid, int64_t rev, RelVersion *rv, bool *found,
                        WrError *err) WR_MUSTCHECK;
/* Is relid a partitioned table (the table log says so)? Its rows are its partitions'. */
WrStatus rq_is_partitioned(ReplayCtx *ctx, uint32_t relid, bool *partitioned, WrError *err) WR_MUSTCHECK;
/* Does relid answer for other tables' rows: partitioned, or an INHERITS parent at some point (the table log
 * says so)? Then its history is its members' (member_intervals), its own included when it has rows. */
WrStatus rq_has_members(ReplayCtx *ctx, uint32_t relid, bool *members, WrError *err) WR_MUSTCHECK;
/* An error naming a table below parent relid (partition or INHERITS child, any depth) that was unlogged
 * while below it in the state after some revision from `from` to `to`: the parent's rows and history
 * would lack its rows (members_logged() in replay.sql). WR_OK when there is none. */
WrStatus rq_members_logged(ReplayCtx *ctx, uint32_t relid, int64_t from, int64_t to, WrError *err) WR_MUSTCHECK;
/* Is relid an INHERITS parent with a child after revision rev (SELECT * FROM it shows the child's rows)? */
WrStatus rq_inherits_at(ReplayCtx *ctx, uint32_t relid, int64_t rev, bool *parent, WrError *err) WR_MUSTCHECK;
/* Whether the history holds all of table relid (named table in messages; members: a partitioned or
 * INHERITS parent, rq_has_members) at rev, as snapshot requires: WR_OK, also where it was dropped or
 * not created yet (no rows); else an error naming it: not tracked yet or unlogged then, or incomplete
 * (it or a member joined the publication after setup and its baseline completed later; snapshot.c). */
WrStatus rq_table_whole_at(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                           WrError *err) WR_MUSTCHECK;
/* rq_table_whole_at where a table that did not exist at rev (dropped by then, not created yet) is an
 * error naming why too: a row of it at rev has no answer (blame --at). */
WrStatus rq_table_there_at(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                           WrError *err) WR_MUSTCHECK;
/* Either check (absent_ok: rq_table_whole_at) on rv and found as rq_relation_at(relid, rev) gave them,
 * for a caller that reads the relation version anyway. rv stays the caller's. */
WrStatus rq_table_whole_rv(ReplayCtx *ctx, const char *table, uint32_t relid, bool members, int64_t rev,
                           const RelVersion *rv, bool found, bool absent_ok, WrError *err) WR_MUSTCHECK;
/* A --key argument to the stored key form: 42 -> ["42"]; a JSON array is re-encoded compactly. Caller frees. */
WrStatus rq_parse_key(const char *arg, char **key, WrError *err) WR_MUSTCHECK;
/* --actor TYPE:ID (NULL passes): a usage error (exit 2) for another form or
 * the type walrev, which is walrev's own: a context claiming it is recorded
 * without an actor, so an undo or a branch would lose its attribution. */
WrStatus rq_check_actor(ReplayCtx *ctx, const char *actor, WrError *err) WR_MUSTCHECK;
/* rq_parse_key for a command-line --key: a key of the wrong form is a usage error (exit 2). */
WrStatus rq_parse_key_arg(ReplayCtx *ctx, const char *arg, char **key, WrError *err) WR_MUSTCHECK;
/* The elements of a stored key (JSON array of strings/null). Caller frees with rq_free_strv. */
WrStatus rq_key_values(const char *key, char ***vals, int *n, WrError *err) WR_MUSTCHECK;
void rq_free_strv(char **v, int n);
/* Parse a PostgreSQL text array ("{a,NULL,"b c"}") into strings (NULL for NULL). */
WrStatus rq_parse_text_array(const char *text, char ***vals, int *n, WrError *err) WR_MUSTCHECK;
/* A libpq notice processor that drops notices ("schema exists, skipping"). */
void rq_quiet_notices(void *arg, const char *message);
/* name quoted as the server's quote_ident() does (bare when it can be). Caller frees. */
char *rq_quote_ident(PGconn *conn, const char *name);
/* Parse --format aligned|csv|json. */
WrStatus rq_parse_format(const char *arg, OutFormat *fmt, WrError *err) WR_MUSTCHECK;
/* The stored relid as the decimal text libpq params want. */
void rq_oid_text(uint32_t relid, char buf[16]);

/* ---- output: pgio/output.h (out_print_result, out_json_row, out_display_width) ---- */

/* ---- fold.c: the CLI's snapshot of a table from its keyframe and deltas ---- */
/* Receives each output line (with its newline); a non-OK status stops the fold. */
typedef WrStatus (*FoldSink)(void *arg, const char *line, size_t len, WrError *err);
typedef struct Fold Fold;
/*
 * Read the deltas of table rv (the version in force at rev) since its
 * keyframe at or before rev, inside the history connection's transaction,
 * into a hash of the keys they touch of at most max_bytes (0: none; past the
 * limit fold_emit has the server sort instead). render (NULL: none) names,
 * per column of rv, the type through which the history server prints that
 * column's values again in its session's TimeZone (snapshot.c's
 * zoned_columns; NULL: given as stored); borrowed until fold_destroy.
 * *usable=false: an UPDATE in there changed a key, which only
 * snapshot_rows() follows, or a column to print again did not fit the hash;
 * nothing was emitted either way. On WR_OK *out is the caller's (fold_destroy).
 */
WrStatus fold_open(ReplayCtx *ctx, const RelVersion *rv, int64_t rev, size_t max_bytes, char *const *render,
                   Fold **out, bool *usable, WrError *err) WR_MUSTCHECK;
/* Stream the table at rev as COPY text (csv=false) or CSV lines to sink; *rows counts them. */
WrStatus fold_emit(Fold *fo, bool csv, FoldSink sink, void *sink_arg, long long *rows, WrError *err) WR_MUSTCHECK;
void fold_destroy(Fold *fo);

/* ---- zone.c: values that print by the session's TimeZone ---- */
/*
 * The SQL type of each of rv's columns as conn names it (caller frees with
 * rq_free_strv(types, rv->ncols); NULL + err on failure). Type OIDs are the
 * source database's: a built-in one (below FirstGenbkiObjectId, fixed in
 * pg_type.dat) names the same type on every server, any other only in the
 * source's own database. A history server in another cluster may have
 * another type under the same number (issue 13: a domain read as one of the
 * history server's timestamptz arrays failed every snapshot of its table),
 * so conn's format_type() of such an OID is taken only when conn is the
 * source's database: the table itself is there under rv's relid, or (store,
 * the quoted history schema when conn is the history store) any table of
 * relation_version is. Otherwise the recorded name, and text when that names
 * no type there either (or is not recorded): a column whose type was dropped
 * since (DROP TYPE/DOMAIN … CASCADE dropped the column later) is given to a
 * generated column's expression as text (an expression that used it went
 * with the type).
 */
char **rq_column_types(PGconn *conn, const char *store, const RelVersion *rv, WrError *err);
/*
 * Which of n types (conn's names, rq_column_types) print by the session's
 * TimeZone (issue 13): a timestamptz, or an array, range, multirange, domain
 * or composite holding one. The walsender printed such a value in the
 * worker's TimeZone; readers print it again in their session's, as a COPY
 * or SELECT in the reader's environment would. (*render)[i] is the type to
 * print through (stored::type::text): a domain's base type (its CHECK or
 * NOT NULL is no business of a re-rendering), an array's of its element's
 * base type (stamp[] as timestamptz[]: a CHECK added since NOT VALID must
 * not fail an old value); NULL for every other type, whose stored text is
 * given as it is. A composite's or range's domains are checked still: their
 * types name them. Caller frees with rq_free_strv(*render, n).
 */
WrStatus rq_zoned_types(PGconn *conn, int n, char *const *types, char ***render, WrError *err) WR_MUSTCHECK;
/* One value of a result to print again: its row and column, and the type to print it through (borrowed). */
typedef struct {
    int row, col;
    const char *render;
} ZoneCell;
/*
 * *res with the values of cells[0..ncells) printed again by conn through
 * their render types in its session's TimeZone (one statement per type,
 * under a savepoint), and without its last `hidden` columns (which told the
 * caller the types). NULL and <erased> stay; a value its type refuses (an
 * old value a retype restated: text of the type before) keeps its recorded
 * text. Replaces *res (the old one cleared) on WR_OK; reorders cells. Errors:
 * the connection's.
 */
WrStatus rq_rezone_cells(PGconn *conn, PGresult **res, ZoneCell *cells, int ncells, int hidden,
                         WrError *err) WR_MUSTCHECK;

/* ---- commands ---- */
WrStatus cmd_snapshot(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_log(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_show(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_history(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_blame(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_diff(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_restore(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_revert(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_rollback(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_erase(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
WrStatus cmd_prune(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;
/* `walrev compact` (compact.c): one compaction round on a connection of its own. */
WrStatus cmd_compact(ReplayCtx *ctx, int argc, char **argv, WrError *err) WR_MUSTCHECK;

/* What a compaction round did (compact.c). */
typedef struct {
    bool busy;                           /* another session holds the store's compaction lock: nothing done */
    int indexes;                         /* indexes rebuilt */
    long long bytes_before, bytes_after; /* the rebuilt indexes' sizes */
} CompactResult;
/*
 * One compaction round on conn (idle, autocommit; REINDEX CONCURRENTLY runs
 * outside a transaction): rebuild every B-tree index of the history
 * partitions no longer written at fillfactor 100, one at a time, oldest
 * partition first; a line per index to report when not NULL, else a log
 * line. A statement in progress is cancelled once *stop is non-zero (stop
 * NULL: never). WR_OK (see
 * out->busy), or err's status at the first failure (that index's rebuild is
 * undone: it is tried again next time). Blocking; sets lock_timeout on conn.
 */
WrStatus rq_compact(PGconn *conn, const char *schema_q, const char *schema, const atomic_int *stop, FILE *report,
                    CompactResult *out, WrError *err) WR_MUSTCHECK;

/* getopt_long reset + unknown option report shared by the commands (query.c). */
WrStatus rq_bad_option(ReplayCtx *ctx, int argc, char **argv, WrError *err);
/* A usage error (wrong options or operands): fills err like wr_error_set with
 * WR_INVALID and marks ctx so the command exits 2. */
WrStatus rq_usage(ReplayCtx *ctx, WrError *err, const char *fmt, ...) WR_PRINTF(3, 4);

/* The long options of each command (getopt_long tables), for the parsers and
 * for the CLI's split of global options from a command's own (replay.h). */
extern const struct option rq_audit_options[];
extern const struct option rq_snapshot_options[];
extern const struct option rq_undo_options[];
extern const struct option rq_erase_options[];
extern const struct option rq_prune_options[];

/* ---------------------------------------------------------------- binary COPY reading (copyin.c) */

/* A binary COPY OUT stream, tuple by tuple, reassembled across CopyData messages. */
typedef struct {
    PGconn *conn;
    StrBuf buf;
    size_t pos;
    bool header_done;
    bool trailer;
} CopyReader;

#define COPY_MAX_FIELDS 9

/* One tuple of a batch: fields and lengths (-1: NULL), pointing into the reader's buffer. */
typedef struct {
    const unsigned char *f[COPY_MAX_FIELDS];
    int32_t fl[COPY_MAX_FIELDS];
} CopyTuple;

/* Tuples per batch: enough that the hash slots of a batch's keys, asked of
 * memory in one pass, arrive while the pass before the fold still runs. */
#define COPY_BATCH 64

/*
 * Start COPY query on conn. The reader is ready for replay_copy_next;
 * replay_copy_close ends it in every case.
 */
WrStatus replay_copy_open(CopyReader *r, PGconn *conn, const char *query, const char *what, WrError *err) WR_MUSTCHECK;

/*
 * The next tuples of nf fields (at most COPY_MAX_FIELDS), up to max (at most
 * COPY_BATCH) of them, into t (fields valid until the next call: the buffer
 * moves only then; they point into r->buf, which the caller may write, e.g.
 * to unescape a keyframe chunk's literals in place). Reading a batch at once
 * lets the caller look up every key of it before it folds the first.
 * Returns how many (0 at the end of the data), -1 with err set.
 */
int replay_copy_next(CopyReader *r, int nf, CopyTuple *t, int max, const char *what, WrError *err);

/* Drain what is left of the COPY and take its result; st is what the caller has so far, returned unless OK. */
WrStatus replay_copy_close(CopyReader *r, WrStatus st, const char *what, WrError *err);

#endif
