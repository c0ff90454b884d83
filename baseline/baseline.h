/*
 * baseline.h — the history's starting rows. Two ways in, sharing one table
 * description (BaselineTable):
 *
 * The initial baseline (baseline_take, baseline/initial.c): at `walrev setup`
 * the slot's exported snapshot is read, every published table's rows
 * recorded as the first revision, so history starts complete and meets the
 * stream with no gap or overlap.
 *
 * The backfill (baseline/backfill.c): the baseline of a table that joins the publication after
 * `walrev setup` (docs/history-store.md#the-baseline): the worker reads it in
 * chunks of pages on a second, ordinary source connection, without locks or
 * long transactions, while streaming goes on, and records the rows the
 * history does not hold yet as snapshot rows, each chunk in a revision of its
 * own at its position in the stream. It must never record a row the stream
 * has already changed, nor advance the slot: chunks are ordinary revisions.
 * Also `walrev baseline`.
 *
 * Both log their progress and per-table outcomes (they run for minutes);
 * errors that end the session are returned, not logged.
 */
#ifndef WALREV_BASELINE_BASELINE_H
#define WALREV_BASELINE_BASELINE_H

#include "pgio/output.h"

#include <jansson.h>
#include <libpq-fe.h>

#include "decoder/assembler.h"
#include "decoder/pgoutput.h"
#include "schema/tracking.h"
#include "sink/fanout.h"
#include "sink/sink.h"

/* What the baselines need of walrev's configuration; strings borrowed. */
typedef struct {
    const char *source_conninfo;
    const char *history_conninfo;
    const char *history_schema;
    const char *publication;
    const TrackingRules *tracking; /* NULL tracks everything */
    int backfill_chunk_rows;       /* rows per chunk of a table's backfill */
    bool allow_unrecorded_leaves;  /* run although a leave cannot be recorded (baseline_check_leave_note) */
} BaselineConfig;

/*
 * A published table as pgoutput describes it, read from the catalog in the
 * caller's transaction, which must have set walrev.publication (column
 * lists and row filters apply as they do to the stream). Strings point into
 * res; free with backfill_table_free.
 */
typedef struct {
    PGresult *res;
    int ncols;
    RelColumnIn *cols;
    int16_t *attnums;
    const char *nspname;
    const char *relname;
    char replident;
    const char *qualified; /* format('%I.%I') */
    char *select_list;     /* quoted column names, comma-separated (owned) */
    const char *rowfilter; /* the publication's row filter, or NULL */
    /* STORED generated columns (pgoutput never sends them), for the relation
     * version: relcache_set_generated before assembler_baseline_relation. */
    PGresult *gen_res;
    uint16_t ngen;
    GenColumn *gen; /* strings point into gen_res */
} BackfillTable;

/* *found=false (and nothing to free) when the table is gone or not published.
 * WR_RETRY on a lost connection, WR_FATAL on another SQL error. */
WrStatus backfill_table_describe(PGconn *c, uint32_t relid, BackfillTable *t, bool *found, WrError *err) WR_MUSTCHECK;
/* The names of t's columns' types that are not built in (OID 10000 and up),
 * "schema.name" as a Type message gives them, told to rc so that the
 * relation version made from t records them as the stream's do: a type OID
 * means nothing on another server (a history store elsewhere, --into). */
void backfill_table_name_types(const BackfillTable *t, RelCache *rc);
void backfill_table_free(BackfillTable *t);

/* A snapshot's transaction ids (pg_current_snapshot()), epoch-extended. */
typedef struct {
    uint64_t xmin, xmax;
    uint64_t *xip; /* in progress when it was taken; owned, free() it */
    size_t nxip;
} XidSnapshot;

/* Parse "xmin:xmax:xip,xip,..."; false when malformed (s then holds what was
 * parsed so far and must still be freed). */
bool backfill_snapshot_parse(const char *text, XidSnapshot *s) WR_MUSTCHECK;
/* Did the snapshot see the committed transaction with this 32-bit xid (as
 * pgoutput sends it)? */
bool backfill_snapshot_sees(const XidSnapshot *s, uint32_t xid);

typedef struct Backfill Backfill;

typedef struct {
    void *ctx;
    /* Record p in every sink that keeps it; inside the revision in flight
     * when there is one, else in the open batch. */
    WrStatus (*progress)(void *ctx, const BackfillProgress *p, WrError *err);
} BackfillOutput;

/*
 * One per streaming session, after the relation versions are restored.
 * cfg is copied (its strings borrowed); a and out are borrowed for its life. Blocks on nothing until used.
 */
Backfill *backfill_create(const BaselineConfig *cfg, Assembler *a, const BackfillOutput *out);
/* Closes its connections; says in the log when a backfill was interrupted. */
void backfill_destroy(Backfill *b);

/*
 * Hooks from the pipeline. on_message: a logical message the assembler has
 * just handled (watermarks; the chunk message, whose rows it records in the
 * revision that message began). on_delta: every delta emitted.
 * on_relation: a new relation version. Errors are the sinks' or WR_PROTOCOL.
 */
WrStatus backfill_on_message(Backfill *b, const PgoLogicalMessage *m, WrError *err) WR_MUSTCHECK;
/*
 * Whether m is the watermark or chunk message this backfill emitted and
 * awaits now (by its random id): the assembler's own_message. Anything else
 * under walrev's prefixes is not acted on.
 */
bool backfill_owns_message(Backfill *b, const PgoLogicalMessage *m);
/* A DDL capture row went by (CREATE TABLE in a published schema, an ALTER): look for tables soon. */
void backfill_on_ddl(Backfill *b);
void backfill_on_delta(Backfill *b, const Revision *rev, const ObjectDelta *d);
void backfill_on_relation(Backfill *b, const RelationVersion *rv);

/*
 * The driver; call between transactions (never inside one). Looks for tables
 * to baseline (at the first call, every 10 s, and after a DDL message or a new
 * table on the stream), emits watermarks and reads chunks on the source.
 * Returns WR_RETRY when a connection is lost; a failure that concerns one
 * table only is logged and recorded as its state, and returns WR_OK.
 */
WrStatus backfill_step(Backfill *b, WrError *err) WR_MUSTCHECK;

/*
 * `walrev baseline [--table T]...`: request a (new) baseline of each table,
 * then print the state of every table's baseline to stdout in fmt (NULL in
 * aligned output as null_text). Returns the exit code.
 */
int backfill_command(const BaselineConfig *cfg, char *const *tables, int ntables, OutFormat fmt, const char *null_text);

/*
 * The initial baseline, on the connection that just created the slot with an
 * exported snapshot (it must stay idle meanwhile): every table published in
 * cfg->publication, read in that snapshot, becomes one revision of snapshot
 * rows at consistent_point, given to the sinks of f through a (its output is
 * f). Each table's progress is recorded as done in the same revision. Waits
 * until every sink has made it durable (60 s at most), since setup exits next.
 * WR_RETRY on a lost connection, WR_FATAL on another SQL error.
 */
WrStatus baseline_take(const BaselineConfig *cfg, Assembler *a, Fanout *f, const char *snapshot, Lsn consistent_point,
                       WrError *err) WR_MUSTCHECK;

/*
 * The primary key of relid on the source (catalog c): is_key[i] set for
 * names[i] among its columns and *found=true when every column of the key
 * is among names (only a key whose columns are all published can identify
 * rows); else *found=false. WR_RETRY / WR_FATAL from pgio with the relid.
 */
WrStatus baseline_primary_key(PGconn *c, uint32_t relid, uint16_t ncols, const char *const *names, bool *is_key,
                              bool *found, WrError *err) WR_MUSTCHECK;

/*
 * Whether a table can leave cfg->publication without the table log
 * recording it: the publication is not FOR ALL TABLES and the
 * walrev_note_published event trigger is missing, disabled or enabled only
 * for replicas (setup not run as a superuser, or dropped since). Snapshot,
 * diff and blame would then answer such a table's rows as of its leave,
 * silently, at every later point. WR_FATAL naming the publication, the
 * trigger's state and both remedies, unless cfg->allow_unrecorded_leaves
 * (then WR_OK, and at_start logs it once as a warning). WR_OK when the
 * publication does not exist (setup and the stream say so). c: a source
 * connection outside a transaction or in a read-only one.
 */
WrStatus baseline_check_leave_note(PGconn *c, const BaselineConfig *cfg, bool at_start, WrError *err) WR_MUSTCHECK;

/*
 * Whether relid is a partitioned table (relkind 'p') on the source (catalog
 * c). A table dropped since is answered by its last row in
 * control_schema.table_log when the source has one; else *partitioned=false.
 * WR_RETRY / WR_FATAL from pgio with the relid.
 */
WrStatus baseline_is_partitioned(PGconn *c, const char *control_schema, uint32_t relid, bool *partitioned,
                                 WrError *err) WR_MUSTCHECK;

/*
 * Values an ALTER COLUMN ... TYPE rewrote (in[0..n), text as pgoutput sent
 * them for from_oid/from_typmod), cast by the source itself (it has the
 * types and casts) to to_oid/to_typmod: parsed and cast under the DDL
 * session's timezone (NULL: the session's own), then written out as text
 * under the catalog session's own settings, which are the walsender's (same
 * role and database), so the text is what pgoutput would have sent. out[i]
 * is malloc'd and the caller's (NULL for SQL NULL). One
 * read-only transaction on catalog connection c, rolled back. WR_RETRY when
 * c was lost (the caller connects again), WR_FATAL when a value does not
 * cast, with the source's message.
 */
WrStatus baseline_cast_values(PGconn *c, uint32_t from_oid, int32_t from_typmod, uint32_t to_oid, int32_t to_typmod,
                              const char *timezone, size_t n, const Value *in, char **out, WrError *err) WR_MUSTCHECK;

/*
 * The context JSON of a revision walrev writes itself (a backfill chunk, a
 * gap): {"actor": {"type": "walrev", "id": actor_id}, "description": ...,
 * "meta": {meta_key: meta}}. Takes meta (a jansson reference); the string is
 * the caller's (free).
 */
char *baseline_own_context(const char *actor_id, const char *description, const char *meta_key, json_t *meta);

/* Drop slot_name, left by a baseline that was interrupted (the history store
 * holds no checkpoint), so setup can take it again. WR_RETRY when the source
 * cannot be reached. */
WrStatus baseline_drop_slot(const char *source_conninfo, const char *slot_name, WrError *err) WR_MUSTCHECK;

#endif
