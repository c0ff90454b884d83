/*
 * history_sink.c — the history store sink, its writing side: revisions,
 * contexts and object deltas into PostgreSQL tables (docs/history-store.md)
 * with COPY, one transaction per batch that also carries the checkpoint row,
 * so a crash never loses or duplicates a revision. Keyframes fall due at
 * batch commit and are taken by a background thread (keyframer.h). Old row
 * images are read by its reading side on the same connection
 * (history_reader.c). It never applies DDL (`walrev setup` does) and never
 * logs the conninfo.
 */
#include "sink/history_sink.h"
#include "sink/sink.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/textsafe.h"
#include "schema/checksum.h"
#include "schema/digest.h"
#include "schema/store_sql.h"
#include "sink/copy_format.h"
#include "sink/history_session.h"
#include "sink/keyframer.h"
#include "pgio/pgio.h"

/* The most of a context message stored as text (beyond: its hash). */
#define CONTEXT_RAW_STORED_MAX ((size_t)1 << 20)
#define KEYFRAME_FACTOR 1.0
/* A table of at most this many live rows is keyframed key by key (keyframer.c) */
#define KEYFRAME_MIN_ROWS 250
/* and no table before this many deltas: a small, busy table folds at most this many */
#define KEYFRAME_MIN_DELTAS 1000
/* A batch's window while the stream is busy, in batch_max_ms. */
#define BUSY_WINDOW_FACTOR 10
/* At idle a batch commits once this many of the last batch commit's
 * durations have passed since that commit was asked for (batch_due). */
#define IDLE_PACE_FACTOR 4
/* A batch commits once its buffers held this much (whatever the buffer size). */
#define BATCH_MAX_BYTES ((size_t)8 << 20)

static WrStatus maybe_send(HistorySink *h, int t, WrError *err)
{
    if (h->buf[t].len <= h->buffer_bytes) return WR_OK;
    return hsession_send_buffer(h, t, err);
}

static void tab(StrBuf *b) { strbuf_append_char(b, '\t'); }

static void append_lsn(StrBuf *b, Lsn l) { copy_append_lsn(b, l); }

/* n, then a tab. */
static void int_tab(StrBuf *b, int64_t n)
{
    copy_append_int(b, n);
    tab(b);
}

static void append_str_field(StrBuf *b, const char *s) { copy_append_field(b, s, s ? strlen(s) : 0); }

static RelCount *count_of(HistorySink *h, uint32_t relid)
{
    for (size_t i = 0; i < h->ncounts; i++)
        if (h->counts[i].relid == relid) return &h->counts[i];
    if (h->ncounts == h->capcounts) {
        h->capcounts = h->capcounts ? 2 * h->capcounts : 16;
        h->counts = xrealloc(h->counts, h->capcounts * sizeof(RelCount));
    }
    h->counts[h->ncounts] = (RelCount){relid, 0, 0, 0};
    return &h->counts[h->ncounts++];
}

/* What a recorded delta changes in row_digest. */
static WrStatus dg_note_delta(HistorySink *h, const ObjectDelta *d, WrError *err)
{
    const RelationVersion *rv = d->relver;
    if (d->op == DELTA_TRUNCATE) {
        hsession_dg_queue(h, rv->relid, NULL, 0, NULL, 0);
    } else if (d->op == DELTA_DELETE) {
        /* A keyless identity ('#rev.seq') has a row digest whatever version
         * deletes it: a rekey deletes it under the keyed one, and a digest
         * left behind would answer a later keyless version's lookup with the
         * dead identity (test_rekey_digest). */
        if (d->row_digest || hsession_rel_has_hidden(rv) || hsession_rel_marked(h, rv->relid) ||
            !digest_rel_has_key(rv) || (d->key && d->key[0] == '#'))
            hsession_dg_queue(h, rv->relid, d->key, DG_END_ROW, NULL, 0);
    } else {
        if (d->row_digest) hsession_dg_queue(h, rv->relid, d->key, 0, d->row_digest, DIGEST_LEN);
        for (uint16_t i = 0; i < d->nattrs; i++)
            if (d->attrs[i].flags & ATTR_HIDDEN)
                hsession_dg_queue(h, rv->relid, d->key, d->attrs[i].col_id, d->attrs[i].digest, DIGEST_LEN);
        /* A whole image again (or, for an UPDATE whose old values were
         * unknown, every column): the history's image is current from here. */
        if (hsession_rel_marked(h, rv->relid) && (d->op != DELTA_UPDATE || d->old_unknown))
            hsession_dg_queue(h, rv->relid, d->key, DG_STALE, NULL, 0);
    }
    return h->dg_n >= DG_APPLY_AT ? hsession_dg_apply(h, err) : WR_OK;
}

/* ---------- batch state ---------- */

static void reset_batch(HistorySink *h, bool committed)
{
    for (int t = 0; t < TB_COUNT; t++) strbuf_reset(&h->buf[t]);
    hsession_dg_clear(h);
    strbuf_reset(&h->erase_args);
    h->n_erase = 0;
    if (!committed) h->nredigested = 0; /* rebuilt in the batch rolled back */
    hsession_clear_unsent(h);
    h->in_tx = false;
    h->in_revision = false;
    h->batch_revisions = 0;
    h->ncounts = 0;
    size_t keep = 0;
    for (size_t i = 0; i < h->nrels; i++) {
        if (committed) h->rels[i].committed = true;
        if (h->rels[i].committed) h->rels[keep++] = h->rels[i];
    }
    h->nrels = keep;
    if (committed) {
        if (h->batch_last_id) {
            h->durable_id = h->batch_last_id;
            h->durable = h->batch_end_lsn;
        }
    } else {
        h->next_id_base = h->durable_id;
    }
    h->batch_last_id = 0;
}

/* ---------- open ---------- */

static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    log_debug("msg=\"history store notice\" text=\"%.*s\"", (int)strcspn(message, "\n"), message);
}

static WrStatus check_schema(HistorySink *h, WrError *err)
{
    const char *p[1] = {h->schema};
    PGresult *res = NULL;
    WrStatus st = hsession_run(h,
                               "SELECT n.oid IS NOT NULL, c.oid IS NOT NULL FROM (SELECT 1) x "
                               "LEFT JOIN pg_namespace n ON n.nspname = $1 "
                               "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'store_info'",
                               1, p, "checking the history schema", &res, err);
    if (st != WR_OK) return st;
    bool has_schema = PQgetvalue(res, 0, 0)[0] == 't';
    bool has_info = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (!has_schema || !has_info)
        return wr_error_set(err, WR_FATAL,
                            "history store: schema %s %s in the history database: run `walrev setup` "
                            "to create it",
                            h->qschema, has_schema ? "has no store_info table" : "does not exist");
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT value FROM %s.store_info WHERE key = 'format_version'", h->qschema);
    st = hsession_run(h, q.data, 0, NULL, "reading store_info.format_version", &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "7") != 0) {
        st = wr_error_set(err, WR_FATAL,
                          "history store: schema %s has format_version %s, this walrev needs 7: run "
                          "`walrev setup`",
                          h->qschema, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "(missing)");
    }
    PQclear(res);
    return st;
}

static WrStatus read_checkpoint(HistorySink *h, SinkPosition *pos, WrError *err)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT end_lsn::text, revision_id, '\\x' || encode(checksum, 'hex') "
                   "FROM %s.checkpoint WHERE slot_name = $1",
                   h->qschema);
    const char *p[1] = {h->slot_name};
    PGresult *res = NULL;
    WrStatus st = hsession_run(h, q.data, 1, p, "reading the checkpoint", &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    memset(pos, 0, sizeof(*pos));
    pos->known = true;
    if (PQntuples(res) == 1) {
        if (!lsn_parse(PQgetvalue(res, 0, 0), &pos->durable_end_lsn) ||
            !bytea_hex_decode(PQgetvalue(res, 0, 2), pos->last_checksum, WALREV_CHECKSUM_LEN)) {
            st = wr_error_set(err, WR_FATAL,
                              "history store: checkpoint row of slot %s in %s.checkpoint is malformed "
                              "(end_lsn %s, checksum not 32 bytes?)",
                              h->slot_name, h->qschema, PQgetvalue(res, 0, 0));
        } else {
            pos->last_revision_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        }
    }
    PQclear(res);
    if (st == WR_OK) {
        h->durable = pos->durable_end_lsn;
        h->durable_id = h->next_id_base = pos->last_revision_id;
    }
    return st;
}

static WrStatus read_digest_state(HistorySink *h, SinkPosition *pos, WrError *err);
static WrStatus prepare_batch_tail(HistorySink *h, WrError *err);

static WrStatus hs_open(Sink *s, SinkPosition *pos, WrError *err)
{
    HistorySink *h = s->impl;
    if (h->conn) return wr_error_set(err, WR_FATAL, "history store: sink opened twice");
    /* Bounded: a frozen server ends the session after reply_timeout_ms
     * instead of holding the worker; a refused login is fatal. */
    PgioConnect how = {.what = "history store", .app_name = "walrev-history", .bounded = true};
    WrStatus cst = pgio_connect(h->conninfo, &how, &h->conn, err);
    if (cst != WR_OK) {
        h->broken = true;
        return cst;
    }
    PQsetNoticeProcessor(h->conn, notice_to_log, NULL);
    WrStatus st = check_schema(h, err);
    if (st == WR_OK) st = read_checkpoint(h, pos, err);
    if (st == WR_OK) st = read_digest_state(h, pos, err);
    if (st == WR_OK) st = hreader_prepare(h, err);
    if (st == WR_OK) st = prepare_batch_tail(h, err);
    /* Off and auto: a batch's COMMIT returns without waiting for the WAL
     * flush, and the batch is reported durable only once the server's flush
     * position covers its commit record (note_commit, hs_poll; auto flushes it
     * itself when the server does not: hs_flush). On: set explicitly, whatever
     * the server's or the role's default. */
    if (st == WR_OK)
        st = hsession_run(
            h, h->commit == HISTORY_COMMIT_ON ? "SET synchronous_commit = on" : "SET synchronous_commit = off", 0, NULL,
            "setting synchronous_commit", NULL, err);
    /* The assembler records an UPDATE of a key as a delete and an insert: no
     * delta written here moves a row between keys, so object_delta's key_move
     * trigger has nothing to list for this session (history.sql). */
    if (st == WR_OK)
        st = hsession_run(h, "SET walrev.no_key_moves = on", 0, NULL, "setting walrev.no_key_moves", NULL, err);
    if (st != WR_OK) return st;
    fanout_await_term(&h->await);
    fanout_await_init(&h->await, pos->durable_end_lsn);
    h->flushed = pos->durable_end_lsn;
    h->waiting_for = 0;
    KeyframePolicy kp = {h->keyframe_factor, KEYFRAME_MIN_DELTAS, KEYFRAME_MIN_ROWS};
    h->keyframer = keyframer_start(h->conninfo, h->qschema, &kp);
    log_info("msg=\"history store open\" schema=%s slot=%s revision=%" PRId64 " lsn=" LSN_FMT, h->qschema, h->slot_name,
             pos->last_revision_id, LSN_ARGS(pos->durable_end_lsn));
    return WR_OK;
}

/* ---------- writes ---------- */

static void append_int_array_u32(StrBuf *b, const RelationVersion *rv, int which)
{
    strbuf_append_char(b, '{');
    for (uint16_t i = 0; i < rv->ncols; i++) {
        if (i) strbuf_append_char(b, ',');
        const RelColumn *c = &rv->cols[i];
        switch (which) {
        case 0: strbuf_appendf(b, "%d", (int)c->col_id); break;
        case 1: strbuf_appendf(b, "%" PRIu32, c->type_oid); break;
        case 2: strbuf_appendf(b, "%" PRId32, c->typmod); break;
        case 3: strbuf_append_char(b, c->is_key ? 't' : 'f'); break;
        default: strbuf_append_char(b, c->track == TRACK_HIDDEN ? 'h' : c->track == TRACK_UNTRACKED ? 'u' : 'f');
        }
    }
    strbuf_append_char(b, '}');
}

static WrStatus hs_write_relation(Sink *s, const RelationVersion *rv, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "write_relation");
    if (st != WR_OK) return st;
    for (size_t i = 0; i < h->nrels; i++)
        if (h->rels[i].relid == rv->relid && h->rels[i].version == rv->version) return WR_OK;
    st = hsession_ensure_tx(h, err);
    if (st != WR_OK) return st;

    StrBuf arr[11];
    for (int i = 0; i < 11; i++) strbuf_init(&arr[i]);
    size_t nv = (size_t)(rv->ncols > rv->ngen ? rv->ncols : rv->ngen) + 1;
    Value *names = xcalloc(nv, sizeof(Value));
    Value *types = xcalloc(nv, sizeof(Value));
    for (uint16_t i = 0; i < rv->ncols; i++) {
        names[i] = (Value){rv->cols[i].name, strlen(rv->cols[i].name)};
        if (rv->cols[i].type_name) types[i] = (Value){rv->cols[i].type_name, strlen(rv->cols[i].type_name)};
    }
    append_int_array_u32(&arr[0], rv, 0);
    pgarray_append_text(&arr[1], names, rv->ncols);
    append_int_array_u32(&arr[2], rv, 1);
    append_int_array_u32(&arr[3], rv, 2);
    pgarray_append_text(&arr[4], types, rv->ncols);
    append_int_array_u32(&arr[5], rv, 3);
    append_int_array_u32(&arr[6], rv, 4);
    /* Generated columns (NULL arrays when there are none). */
    if (rv->ngen > 0) {
        for (int part = 0; part < 3; part++) {
            for (uint16_t i = 0; i < rv->ngen; i++) {
                const char *v = part == 0 ? rv->gen[i].name : part == 1 ? rv->gen[i].type_name : rv->gen[i].expr;
                names[i] = (Value){v, strlen(v)};
            }
            pgarray_append_text(&arr[part == 0 ? 7 : part == 1 ? 8 : 10], names, rv->ngen);
        }
        strbuf_append_char(&arr[9], '{');
        for (uint16_t i = 0; i < rv->ngen; i++) strbuf_appendf(&arr[9], "%s%d", i ? "," : "", (int)rv->gen[i].position);
        strbuf_append_char(&arr[9], '}');
    }
    free(names);
    free(types);
    uint8_t digest[WALREV_CHECKSUM_LEN];
    revhash_relation_digest(rv, digest);
    char digest_hex[2 * WALREV_CHECKSUM_LEN + 3] = "\\x";
    checksum_to_hex(digest, digest_hex + 2);
    char relid[16], version[16], replident[2] = {rv->replident, 0}, lsn[32], revid[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, rv->relid);
    snprintf(version, sizeof(version), "%" PRId32, rv->version);
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(rv->valid_from));
    snprintf(revid, sizeof(revid), "%" PRId64, rv->revision_id);
    const char *p[19] = {relid,
                         version,
                         rv->nspname,
                         rv->relname,
                         replident,
                         lsn,
                         arr[0].data,
                         arr[1].data,
                         arr[2].data,
                         arr[3].data,
                         arr[4].data,
                         arr[5].data,
                         arr[6].data,
                         revid,
                         digest_hex,
                         rv->ngen ? arr[7].data : NULL,
                         rv->ngen ? arr[8].data : NULL,
                         rv->ngen ? arr[9].data : NULL,
                         rv->ngen ? arr[10].data : NULL};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.relation_version (relid, version, nspname, relname, replident, "
                   "valid_from, col_ids, col_names, col_type_oids, col_typmods, col_type_names, "
                   "col_is_key, col_track, covered_by, checksum, gen_names, gen_type_names, gen_positions, "
                   "gen_exprs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
                   "$17, $18, $19) ON CONFLICT DO NOTHING RETURNING 1",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "INSERT into %s.relation_version", h->qschema);
    PGresult *res = NULL;
    st = hsession_run(h, q.data, 19, p, what, &res, err);
    bool inserted = st == WR_OK && PQntuples(res) == 1;
    PQclear(res);
    res = NULL;
    if (st == WR_OK && !inserted) {
        /* The store has this version already: it must be this one. A
         * different one means the worker lost track of the table's columns
         * (every later change would be recorded under the wrong names). */
        strbuf_reset(&q);
        strbuf_appendf(&q,
                       "SELECT checksum IS NULL OR checksum = $3::bytea FROM %s.relation_version "
                       "WHERE relid = $1 AND version = $2",
                       h->qschema);
        const char *cp[3] = {relid, version, digest_hex};
        st = hsession_run(h, q.data, 3, cp, what, &res, err);
        if (st == WR_OK && (PQntuples(res) != 1 || PQgetvalue(res, 0, 0)[0] != 't'))
            st = wr_error_set(err, WR_FATAL,
                              "history store: relation version %s of %s.%s (relid %s) differs from the one "
                              "the store holds; refusing to record changes under the wrong columns",
                              version, rv->nspname, rv->relname, relid);
        PQclear(res);
    }
    strbuf_free(&q);
    for (int i = 0; i < 11; i++) strbuf_free(&arr[i]);
    if (st != WR_OK) return st;
    if (h->nrels == h->caprels) {
        h->caprels = h->caprels ? 2 * h->caprels : 16;
        h->rels = xrealloc(h->rels, h->caprels * sizeof(RelSeen));
    }
    h->rels[h->nrels++] = (RelSeen){rv->relid, rv->version, false};
    hquarantine_relation(h, rv);
    return WR_OK;
}

static WrStatus hs_begin_revision(Sink *s, const Revision *rev, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "begin_revision");
    if (st != WR_OK) return st;
    if (h->in_revision)
        return wr_error_set(err, WR_FATAL, "history store: revision %" PRId64 " begun while %" PRId64 " is still open",
                            rev->id, h->cur_id);
    if (rev->id != h->next_id_base + 1)
        return wr_error_set(err, WR_FATAL,
                            "history store: revision id %" PRId64 " is not the next one (expected %" PRId64
                            "); refusing to write a gap or a duplicate",
                            rev->id, h->next_id_base + 1);
    st = hpart_before_revision(h, rev->id, err);
    if (st == WR_OK) st = hsession_ensure_tx(h, err);
    if (st == WR_OK) st = hquarantine_begin(h, rev, err);
    if (st != WR_OK) return st;
    h->in_revision = true;
    h->cur_id = rev->id;
    return WR_OK;
}

static WrStatus check_in_revision(HistorySink *h, const Revision *rev, const char *what, WrError *err)
{
    WrStatus st = hsession_check_usable(h, err, what);
    if (st != WR_OK) return st;
    if (!h->in_revision || rev->id != h->cur_id)
        return wr_error_set(err, WR_FATAL, "history store: %s for revision %" PRId64 " which was not begun", what,
                            rev->id);
    return WR_OK;
}

/* actor_type, actor_id, actor, description, meta (each followed by a tab; all NULL without a context):
 * a context's row and its revision's (the first context's) hold the same. */
static void append_actor(StrBuf *b, const RevisionContext *ctx)
{
    const char *f[5] = {NULL};
    if (ctx) {
        f[0] = ctx->actor_type;
        f[1] = ctx->actor_id;
        f[2] = ctx->actor_json;
        f[3] = ctx->description;
        f[4] = ctx->meta_json;
    }
    for (int i = 0; i < 5; i++) {
        append_str_field(b, f[i]);
        tab(b);
    }
}

/* attested, db_session_user, db_current_user, application_name, actor_verified (NULL: strict mode off),
 * verified_by (each after a tab). */
static void append_identity(StrBuf *b, const RevisionContext *ctx)
{
    strbuf_append_str(b, ctx && ctx->attested ? "\tt\t" : "\tf\t");
    append_str_field(b, ctx ? ctx->session_user : NULL);
    tab(b);
    append_str_field(b, ctx ? ctx->current_user : NULL);
    tab(b);
    append_str_field(b, ctx ? ctx->application_name : NULL);
    strbuf_append_str(b, !ctx || !ctx->strict_checked ? "\t\\N\t" : ctx->verified ? "\tt\t" : "\tf\t");
    append_str_field(b, ctx && ctx->verified ? ctx->verified_by : NULL);
}

static void copybin_str(StrBuf *b, const char *s) { copybin_text(b, s, s ? strlen(s) : 0); }

/* append_actor's five fields in binary; jsonb's binary form is a version byte (1) and the text. */
static void copybin_actor(StrBuf *b, const RevisionContext *ctx)
{
    copybin_str(b, ctx ? ctx->actor_type : NULL);
    copybin_str(b, ctx ? ctx->actor_id : NULL);
    copybin_jsonb(b, ctx ? ctx->actor_json : NULL);
    copybin_str(b, ctx ? ctx->description : NULL);
    copybin_jsonb(b, ctx ? ctx->meta_json : NULL);
}

/* append_identity's six fields in binary. */
static void copybin_identity(StrBuf *b, const RevisionContext *ctx)
{
    copybin_byte(b, ctx && ctx->attested ? 1 : 0);
    copybin_str(b, ctx ? ctx->session_user : NULL);
    copybin_str(b, ctx ? ctx->current_user : NULL);
    copybin_str(b, ctx ? ctx->application_name : NULL);
    if (!ctx || !ctx->strict_checked)
        copybin_null(b);
    else
        copybin_byte(b, ctx->verified ? 1 : 0);
    copybin_str(b, ctx && ctx->verified ? ctx->verified_by : NULL);
}

/* A revision's count (an integer column). One past int4 is sent at its full
 * width, which the server refuses as a data error, as it refused the text. */
static void copybin_count(StrBuf *b, int64_t n)
{
    if (n >= INT32_MIN && n <= INT32_MAX)
        copybin_int4(b, (int32_t)n);
    else
        copybin_int8(b, n);
}

static WrStatus hs_write_context(Sink *s, const Revision *rev, const RevisionContext *ctx, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_in_revision(h, rev, "write_context", err);
    if (st != WR_OK) return st;
    if (h->quarantining) {
        hquarantine_context(h, ctx);
        return WR_OK;
    }
    StrBuf *b = &h->buf[TB_CONTEXT];
    int_tab(b, rev->id);
    int_tab(b, ctx->no);
    append_lsn(b, ctx->lsn);
    tab(b);
    append_actor(b, ctx);
    /* Any user can send any bytes as a context: text takes neither NUL nor
     * ill-formed UTF-8, and a message can be ~1 GB. Those are stored
     * sanitised and bounded, with raw_sha256 = SHA-256 of the exact bytes,
     * which is what the checksum covers (docs/checksums.md). */
    if (ctx->raw_len <= CONTEXT_RAW_STORED_MAX && text_is_safe(ctx->raw, ctx->raw_len)) {
        copy_append_field(b, ctx->raw, ctx->raw_len);
        strbuf_append(b, "\t\\N", 3);
    } else {
        strbuf_reset(&h->tmp);
        text_sanitize(&h->tmp, ctx->raw, ctx->raw_len, CONTEXT_RAW_STORED_MAX);
        copy_append_field(b, h->tmp.data, h->tmp.len);
        tab(b);
        uint8_t sum[WALREV_CHECKSUM_LEN];
        revhash_value(&(Value){.data = ctx->raw ? ctx->raw : "", .len = ctx->raw_len}, sum);
        copy_append_bytea(b, sum, WALREV_CHECKSUM_LEN);
    }
    append_identity(b, ctx);
    strbuf_append_char(b, '\n');
    return maybe_send(h, TB_CONTEXT, err);
}

/* The old or new values of a delta as a binary text[] field; NULL when every one is NULL. */
static void append_values(HistorySink *h, StrBuf *b, const ObjectDelta *d, bool old)
{
    bool any = false;
    if (d->nattrs > h->vals_cap) {
        h->vals = xrealloc(h->vals, d->nattrs * sizeof(Value));
        h->vals_cap = d->nattrs;
    }
    for (uint16_t i = 0; i < d->nattrs; i++) {
        h->vals[i] = old ? d->attrs[i].old_value : d->attrs[i].new_value;
        if (h->vals[i].data) any = true;
    }
    if (!any)
        copybin_null(b);
    else
        copybin_text_array(b, h->vals, d->nattrs);
}

/* col_ids, or attr_flags (NULL when every flag is 0), of a delta as a binary smallint[] field. */
static void append_attr_ints(HistorySink *h, StrBuf *b, const ObjectDelta *d, bool flags)
{
    if (d->nattrs > h->ints_cap) {
        h->ints = xrealloc(h->ints, d->nattrs * sizeof(int16_t));
        h->ints_cap = d->nattrs;
    }
    bool any = !flags;
    for (uint16_t i = 0; i < d->nattrs; i++) {
        h->ints[i] = flags ? (int16_t)d->attrs[i].flags : d->attrs[i].col_id;
        if (h->ints[i]) any = true;
    }
    if (!any)
        copybin_null(b);
    else
        copybin_int2_array(b, h->ints, d->nattrs);
}

/* A truncate empties the table: its live-row count restarts from zero. */
static WrStatus reset_live_rows(HistorySink *h, uint32_t relid, WrError *err)
{
    char rel[16];
    snprintf(rel, sizeof(rel), "%" PRIu32, relid);
    const char *p[1] = {rel};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.tracked_table AS t (relid, live_rows) VALUES ($1, 0) "
                   "ON CONFLICT (relid) DO UPDATE SET live_rows = 0",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "resetting the live rows of a truncated table in %s.tracked_table", h->qschema);
    WrStatus st = hsession_run(h, q.data, 1, p, what, NULL, err);
    strbuf_free(&q);
    return st;
}

/*
 * A row inserted into the source's <schema>.erasure_log (`walrev erase
 * --apply`; only walrev's role can write it) asks to erase the values of
 * some columns of one object from the history before this revision. The row
 * itself is history (the erase revision: who, what, why); the erasure is
 * queued here and done at the batch's end.
 */
static void note_erasure(HistorySink *h, const Revision *rev, const ObjectDelta *d)
{
    const RelationVersion *rv = d->relver;
    if (d->op != DELTA_INSERT || !rv->nspname || !rv->relname || strcmp(rv->relname, "erasure_log") != 0 ||
        strcmp(rv->nspname, h->schema) != 0)
        return;
    const Value *relid = revision_delta_new_value(d, "relid"), *key = revision_delta_new_value(d, "key"),
                *cols = revision_delta_new_value(d, "col_ids");
    if (!relid || !key || !cols) {
        log_warn("msg=\"erasure request without relid, key or col_ids: ignored\" revision=%" PRId64, rev->id);
        return;
    }
    const Value *parts[3] = {relid, key, cols};
    for (int i = 0; i < 3; i++) {
        /* Tabs and newlines separate the queue's fields: a key holding one is escaped as COPY does. */
        for (size_t j = 0; j < parts[i]->len; j++) {
            char ch = parts[i]->data[j];
            if (ch == '\\' || ch == '\t' || ch == '\n')
                strbuf_appendf(&h->erase_args, "\\%03o", (unsigned char)ch);
            else
                strbuf_append_char(&h->erase_args, ch);
        }
        strbuf_append_char(&h->erase_args, '\t');
    }
    strbuf_appendf(&h->erase_args, "%" PRId64 "\n", rev->id);
    h->n_erase++;
}

/* Unescape note_erasure's field in place. */
static void erase_unescape(char *f)
{
    char *o = f;
    for (char *p = f; *p; p++) {
        if (p[0] == '\\' && p[1] && p[2] && p[3]) {
            *o++ = (char)(((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* Every delta of the batch is in the tables: do the erasures it asked for. */
static WrStatus apply_erasures(HistorySink *h, WrError *err)
{
    if (h->n_erase == 0) return WR_OK;
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "SELECT coalesce(sum(delta_values), 0)::text, coalesce(sum(keyframe_values), 0)::text "
                   "FROM %s.erase_apply($1::oid, $2, $3::smallint[], $4::bigint, true)",
                   h->qschema);
    char *list = xstrndup(h->erase_args.data, h->erase_args.len);
    WrStatus st = WR_OK;
    char *save = NULL;
    for (char *line = strtok_r(list, "\n", &save); line && st == WR_OK; line = strtok_r(NULL, "\n", &save)) {
        char *f[4] = {NULL};
        char *p = line;
        for (int i = 0; i < 4; i++) {
            f[i] = p;
            char *t = strchr(p, '\t');
            if (t) *t = '\0';
            p = t ? t + 1 : p + strlen(p);
        }
        for (int i = 0; i < 3; i++) erase_unescape(f[i]);
        const char *params[4] = {f[0], f[1], f[2], f[3]};
        PGresult *res = NULL;
        st = hsession_run(h, q.data, 4, params, "erasing values (erase_apply)", &res, err);
        if (st == WR_OK)
            log_info("msg=\"values erased\" revision=%s relid=%s key=%s col_ids=%s delta_values=%s keyframe_values=%s",
                     f[3], f[0], f[1], f[2], PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        PQclear(res);
    }
    free(list);
    strbuf_free(&q);
    return st;
}

static WrStatus hs_write_delta(Sink *s, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = check_in_revision(h, rev, "write_delta", err);
    if (st != WR_OK) return st;
    if (h->quarantining) return hquarantine_delta(h, rev, d, err);
    const RelationVersion *rv = d->relver;
    /* Binary COPY (copy_format.h): the fields in the order of copy_sql's columns. */
    StrBuf *b = &h->buf[TB_DELTA];
    copybin_row(b, 15);
    copybin_int8(b, rev->id);
    copybin_int4(b, d->seq);
    copybin_int4(b, (int32_t)rv->relid);
    copybin_int4(b, rv->version);
    copybin_byte(b, (uint8_t)d->op);
    if (hquarantine_injects(h, d) && d->key) {
        /* test-only: a NUL in the key, which the server refuses as text */
        size_t n = strlen(d->key);
        char *k = xmalloc(n + 1);
        memcpy(k, d->key, n + 1);
        copybin_text(b, k, n + 1);
        free(k);
    } else {
        copybin_text(b, d->key, d->key ? strlen(d->key) : 0);
    }
    copybin_int2(b, d->context_no);
    /* Scalar form (format 3): one attribute with no flag, the common
     * single-column UPDATE, skips four array headers (~70 bytes a row). */
    bool scalar = d->nattrs == 1 && d->attrs[0].flags == 0;
    if (d->nattrs == 0 || scalar) {
        for (int i = 0; i < 4; i++) copybin_null(b);
    } else {
        append_attr_ints(h, b, d, false);
        append_values(h, b, d, true);
        append_values(h, b, d, false);
        append_attr_ints(h, b, d, true);
    }
    copybin_byte(b, d->old_unknown ? 1 : 0);
    if (scalar) {
        copybin_int2(b, d->attrs[0].col_id);
        copybin_text(b, d->attrs[0].old_value.data, d->attrs[0].old_value.len);
        copybin_text(b, d->attrs[0].new_value.data, d->attrs[0].new_value.len);
    } else {
        for (int i = 0; i < 3; i++) copybin_null(b);
    }

    /* Live rows only steer when keyframes are taken: counting begins and
     * ends is enough (an UPDATE that moves a row ends one key and begins
     * another, which nets to zero). */
    /* A truncate (no key) changes every key's image: any lookup must send it. */
    hsession_note_unsent(h, rv->relid, d->key ? d->key : "");
    RelCount *c = count_of(h, rv->relid);
    c->deltas++;
    if (d->op == DELTA_INSERT || d->op == DELTA_SNAPSHOT)
        c->live_change++;
    else if (d->op == DELTA_DELETE)
        c->live_change--;
    if (d->op == DELTA_SNAPSHOT) c->snapshots++;
    if (d->op == DELTA_TRUNCATE) {
        c->live_change = 0;
        st = reset_live_rows(h, rv->relid, err);
    }
    if (st == WR_OK) st = dg_note_delta(h, d, err);
    if (st == WR_OK) note_erasure(h, rev, d);
    if (st == WR_OK) st = maybe_send(h, TB_DELTA, err);
    return st;
}

/* The revision is in the batch (its row, or the quarantine's): the batch's end moves to it. */
static void revision_done(HistorySink *h, const Revision *rev)
{
    h->in_revision = false;
    h->next_id_base = rev->id;
    h->batch_last_id = rev->id;
    h->batch_end_lsn = rev->end_lsn;
    memcpy(h->batch_checksum, rev->checksum, WALREV_CHECKSUM_LEN);
    h->batch_revisions++;
}

static WrStatus hs_commit_revision(Sink *s, const Revision *rev, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "commit_revision");
    if (st != WR_OK) return st;
    if (rev->id != h->next_id_base + 1)
        return wr_error_set(err, WR_FATAL,
                            "history store: commit of revision id %" PRId64 " but the next one is %" PRId64
                            "; refusing to write a gap or a duplicate",
                            rev->id, h->next_id_base + 1);
    if (!h->in_revision || h->cur_id != rev->id)
        return wr_error_set(err, WR_FATAL, "history store: commit of revision %" PRId64 " which was not begun",
                            rev->id);
    if (h->quarantining) {
        st = hquarantine_commit(h, rev, err);
        if (st == WR_OK) revision_done(h, rev);
        return st;
    }
    /* Binary COPY (copy_format.h), the fields in the order of copy_sql's
     * columns: a revision per source transaction, so on a stream of small
     * transactions this row is parsed as often as the deltas are. */
    StrBuf *b = &h->buf[TB_REVISION];
    const RevisionContext *c = rev->first_context;
    copybin_row(b, 26);
    copybin_int8(b, rev->id);
    copybin_int8(b, rev->xid);
    copybin_int8(b, (int64_t)rev->commit_lsn); /* pg_lsn: 8 bytes */
    copybin_int8(b, (int64_t)rev->end_lsn);
    copybin_int8(b, rev->commit_time); /* timestamptz: µs since 2000-01-01 UTC */
    copybin_text(b, rev->origin, rev->origin ? strlen(rev->origin) : 0);
    copybin_text(b, rev->gid, rev->gid ? strlen(rev->gid) : 0);
    copybin_actor(b, c);
    const int64_t counts[6] = {rev->n_insert,   rev->n_update,   rev->n_delete,
                               rev->n_truncate, rev->n_snapshot, rev->n_suppressed};
    for (int i = 0; i < 6; i++) copybin_count(b, counts[i]);
    copybin_text(b, rev->warnings, rev->warnings ? strlen(rev->warnings) : 0);
    /* No parent checksum (format 3): it is the previous revision's. */
    copybin_text(b, (const char *)rev->checksum, WALREV_CHECKSUM_LEN); /* bytea: its bytes */
    copybin_identity(b, c);
    revision_done(h, rev);
    return maybe_send(h, TB_REVISION, err);
}

/* ---------- the batch's end ---------- */

/*
 * The batch tail's statements, prepared once per connection (at open): each
 * batch runs them with new parameters and no parse, analysis or planning.
 * Run as unnamed statements they were parsed and planned every batch,
 * tracked_table's upsert with its three unnests costliest (0.1 ms of
 * planning a batch, issue 16; bench/issue16-cost.md, session 11).
 */
#define TRACKED_STMT "walrev_tracked_tables"
#define CHECKPOINT_STMT "walrev_checkpoint"
#define WAL_POSITIONS_STMT "walrev_wal_positions"

static WrStatus prepare_batch_tail(HistorySink *h, WrError *err)
{
    /* tracked_statement's parameters: relids, deltas, live-row changes and snapshot rows per table. */
    char *sql = xasprintf(
        "INSERT INTO %1$s.tracked_table AS t (relid, deltas_since_keyframe, live_rows) "
        "SELECT r, d, greatest(l, 0) FROM unnest($1::oid[], $2::bigint[], $3::bigint[]) AS u(r, d, l) "
        "ON CONFLICT (relid) DO UPDATE SET deltas_since_keyframe = "
        "t.deltas_since_keyframe + EXCLUDED.deltas_since_keyframe, "
        "live_rows = greatest(t.live_rows + (SELECT u.l FROM unnest($1::oid[], $3::bigint[]) AS u(r, l) "
        "  WHERE u.r = t.relid), 0) "
        "RETURNING relid, deltas_since_keyframe > greatest(%2$.6g * live_rows, %4$d) "
        "  OR (last_keyframe_id IS NULL AND live_rows > %3$d AND (SELECT u.s FROM "
        "  unnest($1::oid[], $4::bigint[]) AS u(r, s) WHERE u.r = t.relid) > 0), live_rows, "
        "deltas_since_keyframe",
        h->qschema, h->keyframe_factor, KEYFRAME_MIN_ROWS, KEYFRAME_MIN_DELTAS);
    WrStatus st = hsession_prepare(h, TRACKED_STMT, sql, 4, err);
    free(sql);
    /* checkpoint_statement's: slot, end LSN, revision id, checksum in hex. */
    sql = xasprintf("INSERT INTO %s.checkpoint (slot_name, end_lsn, revision_id, checksum, updated_at) "
                    "VALUES ($1, $2::pg_lsn, $3, decode($4, 'hex'), now()) ON CONFLICT (slot_name) DO UPDATE "
                    "SET end_lsn = EXCLUDED.end_lsn, revision_id = EXCLUDED.revision_id, "
                    "checksum = EXCLUDED.checksum, updated_at = EXCLUDED.updated_at",
                    h->qschema);
    if (st == WR_OK) st = hsession_prepare(h, CHECKPOINT_STMT, sql, 4, err);
    free(sql);
    if (st == WR_OK)
        st = hsession_prepare(h, WAL_POSITIONS_STMT,
                              "SELECT pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text", 0, err);
    if (st == WR_OK) st = hsession_dg_prepare(h, err);
    return st;
}

/* The batch's closing statements, built before they are sent together
 * (commit_batch): each is a round trip less than when run one by one. */
typedef struct {
    StrBuf relids, counts, live, snaps;
    const char *tracked_p[4], *cp_p[4];
    char lsn[32], id[32], sum[2 * WALREV_CHECKSUM_LEN + 1];
    char tracked_what[160], cp_what[160];
    HsessionDgStmt dg;
    bool has_dg;
} BatchTail;

static void batch_tail_free(BatchTail *t)
{
    StrBuf *b[] = {&t->relids, &t->counts, &t->live, &t->snaps};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) strbuf_free(b[i]);
    if (t->has_dg) hsession_dg_statement_free(&t->dg);
}

/*
 * Bump deltas_since_keyframe and live_rows of every touched table in the
 * batch; a table past the threshold gets a keyframe as of the batch's last
 * revision, asked of the keyframe thread once the batch has committed
 * (kf_due). Its cost, a sort and fold of (1 + factor) x rows, is spread over
 * the factor x rows changes that led to it, and paid off the stream's path.
 * A table's first keyframe is also due as soon as a batch records snapshot
 * rows of it (its baseline, or a backfill chunk) and it has more than
 * KEYFRAME_MIN_ROWS live rows: the baseline then serves as a keyframe, where
 * by the ratio alone a 1M-row table waited for 4M deltas and every snapshot
 * folded the baseline's 1M deltas and all since.
 */
static void tracked_statement(HistorySink *h, BatchTail *t, HsessionStmt *out)
{
    StrBuf *arrs[4] = {&t->relids, &t->counts, &t->live, &t->snaps};
    for (int a = 0; a < 4; a++) strbuf_append_char(arrs[a], '{');
    for (size_t i = 0; i < h->ncounts; i++) {
        int64_t v[4] = {h->counts[i].relid, h->counts[i].deltas, h->counts[i].live_change, h->counts[i].snapshots};
        for (int a = 0; a < 4; a++) {
            if (i) strbuf_append_char(arrs[a], ',');
            copy_append_int(arrs[a], v[a]);
        }
    }
    for (int a = 0; a < 4; a++) {
        strbuf_append_char(arrs[a], '}');
        t->tracked_p[a] = arrs[a]->data;
    }
    snprintf(t->tracked_what, sizeof(t->tracked_what), "updating %s.tracked_table", h->qschema);
    *out = (HsessionStmt){
        .name = TRACKED_STMT, .nparams = 4, .params = t->tracked_p, .what = t->tracked_what, .keep = true};
}

/* The keyframes tracked_statement's result made due (kf_due). */
static void note_keyframes_due(HistorySink *h, const PGresult *res)
{
    h->nkf_due = 0;
    int64_t rev = h->batch_last_id ? h->batch_last_id : h->durable_id;
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetvalue(res, i, 1)[0] != 't') continue;
        if (h->nkf_due == h->capkf_due) {
            h->capkf_due = h->capkf_due ? 2 * h->capkf_due : 8;
            h->kf_due = xrealloc(h->kf_due, h->capkf_due * sizeof(KeyframeRequest));
        }
        int64_t live_rows = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        h->kf_due[h->nkf_due++] =
            (KeyframeRequest){(uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10), rev, live_rows <= KEYFRAME_MIN_ROWS,
                              strtoll(PQgetvalue(res, i, 3), NULL, 10), live_rows};
    }
}

static void checkpoint_statement(HistorySink *h, BatchTail *t, HsessionStmt *out)
{
    snprintf(t->lsn, sizeof(t->lsn), LSN_FMT, LSN_ARGS(h->batch_end_lsn));
    snprintf(t->id, sizeof(t->id), "%" PRId64, h->batch_last_id);
    checksum_to_hex(h->batch_checksum, t->sum);
    t->cp_p[0] = h->slot_name;
    t->cp_p[1] = t->lsn;
    t->cp_p[2] = t->id;
    t->cp_p[3] = t->sum;
    snprintf(t->cp_what, sizeof(t->cp_what), "writing %s.checkpoint", h->qschema);
    *out = (HsessionStmt){.name = CHECKPOINT_STMT, .nparams = 4, .params = t->cp_p, .what = t->cp_what};
}

#define WAL_POSITIONS_WHAT "reading the history server's WAL position"

/* The server's WAL insert and flush positions from WAL_POSITIONS_STMT's result. */
static WrStatus parse_wal_positions(const PGresult *res, Lsn *insert, Lsn *flush, WrError *err)
{
    Lsn i = 0, f = 0;
    if (PQntuples(res) != 1 || !lsn_parse(PQgetvalue(res, 0, 0), &i) || !lsn_parse(PQgetvalue(res, 0, 1), &f))
        return wr_error_set(err, WR_FATAL, "history store: unreadable WAL position from the history server");
    if (insert) *insert = i;
    if (flush) *flush = f;
    return WR_OK;
}

/* The server's WAL insert and flush positions (either may be NULL). */
static WrStatus read_wal_positions(HistorySink *h, Lsn *insert, Lsn *flush, WrError *err)
{
    HsessionStmt s = {.name = WAL_POSITIONS_STMT, .what = WAL_POSITIONS_WHAT, .keep = true};
    WrStatus st = hsession_pipeline(h, &s, 1, err);
    if (st != WR_OK) return st;
    st = parse_wal_positions(s.res, insert, flush, err);
    PQclear(s.res);
    return st;
}

/* The server flushed its WAL through flush (read at h->flush_polled_us):
 * what is durable now, and since when the oldest commit still waits. */
static void note_flushed(HistorySink *h, Lsn flush)
{
    h->flushed = fanout_await_flushed(&h->await, flush);
    Lsn oldest = fanout_await_oldest(&h->await);
    if (oldest != h->waiting_for) {
        h->waiting_for = oldest;
        h->waiting_since_us = oldest ? h->flush_polled_us : 0;
    }
}

/*
 * A batch just committed (h->durable is its end). Committed synchronously it
 * is durable now, and so is every earlier commit of the session (the flush
 * went through its commit record, after theirs). Asynchronously: its commit
 * record ends at or before the server's insert position read after the
 * COMMIT returned (positions: that read's result), so the batch is durable
 * once the flush position reaches that (fanout.h, FanoutAwait).
 */
static WrStatus note_commit(HistorySink *h, bool synchronous, const PGresult *positions, WrError *err)
{
    if (synchronous) {
        fanout_await_push(&h->await, h->durable, 0);
        note_flushed(h, UINT64_MAX);
        return WR_OK;
    }
    Lsn insert, flush;
    WrStatus st =
        positions ? parse_wal_positions(positions, &insert, &flush, err) : read_wal_positions(h, &insert, &flush, err);
    if (st != WR_OK) return st;
    fanout_await_push(&h->await, h->durable, insert);
    h->flush_polled_us = mono_now_us();
    note_flushed(h, flush);
    return WR_OK;
}

/*
 * The batch's end in one round trip: the queued row digests, the tracked
 * tables' counters, the checkpoint row, COMMIT and (not synchronous) the WAL
 * positions read after it. Erasures, rare, run before, one by one. Before,
 * each was a statement of its own: five round trips a batch, under pgbench
 * (a batch every 20-200 ms of a few dozen small transactions) as many as the
 * old-image lookups (issue 16).
 */
static WrStatus commit_batch(HistorySink *h, bool synchronous, WrError *err)
{
    WrStatus st = WR_OK;
    if (h->n_erase) {
        st = hsession_dg_apply(h, err);
        if (st == WR_OK) st = apply_erasures(h, err);
        if (st != WR_OK) return st;
    }
    BatchTail t = {0};
    StrBuf *bufs[] = {&t.relids, &t.counts, &t.live, &t.snaps};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) strbuf_init(bufs[i]);
    HsessionStmt s[5];
    int n = 0, tracked = -1, positions = -1;
    if (h->dg_n) {
        hsession_dg_statement(h, &t.dg, &s[n++]);
        t.has_dg = true;
    }
    if (h->ncounts) {
        tracked = n;
        tracked_statement(h, &t, &s[n++]);
    }
    if (h->batch_last_id) checkpoint_statement(h, &t, &s[n++]);
    s[n++] = (HsessionStmt){.sql = "COMMIT", .what = "COMMIT of a batch"};
    if (h->batch_last_id && !synchronous) {
        positions = n;
        s[n++] = (HsessionStmt){.name = WAL_POSITIONS_STMT, .what = WAL_POSITIONS_WHAT, .keep = true};
    }
    int commit = positions >= 0 ? positions - 1 : n - 1;
    st = hsession_pipeline(h, s, n, err);
    batch_tail_free(&t);
    if (st != WR_OK) {
        /* Committed, though the position read after it failed: the batch is
         * in the store (its revisions must not be written again). */
        if (s[commit].ok) reset_batch(h, true);
        return st;
    }
    hsession_dg_clear(h);
    h->nkf_due = 0;
    if (tracked >= 0) note_keyframes_due(h, s[tracked].res);
    bool had_revisions = h->batch_last_id != 0;
    reset_batch(h, true);
    if (had_revisions) st = note_commit(h, synchronous, positions >= 0 ? s[positions].res : NULL, err);
    for (int i = 0; i < n; i++) PQclear(s[i].res);
    return st;
}

static WrStatus hs_sync(Sink *s, WrError *err);

static WrStatus hs_flush(Sink *s, bool caught_up, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "flush");
    if (st != WR_OK) return st;
    /* No batch: with auto, the caught-up worker flushes commits the server
     * left unflushed (wants_flush said so; or a stop wants all durable). */
    if (!h->in_tx)
        return caught_up && h->commit == HISTORY_COMMIT_AUTO && fanout_await_pending(&h->await) ? hs_sync(s, err)
                                                                                                : WR_OK;
    if (h->in_revision)
        return wr_error_set(err, WR_FATAL,
                            "history store: flush while revision %" PRId64 " is open; a batch ends between "
                            "revisions",
                            h->cur_id);
    int64_t t0 = mono_now_us();
    st = hsession_send_all(h, err);
    if (st == WR_OK) st = hsession_await_copy(h, err);
    int64_t t1 = mono_now_us();
    int n = h->batch_revisions;
    bool synchronous = h->commit == HISTORY_COMMIT_ON;
    if (st == WR_OK) st = commit_batch(h, synchronous, err);
    if (st != WR_OK) return st;
    int64_t t2 = mono_now_us();
    metrics_observe_us(METRICS_HIST_BATCH_COMMIT, t2 - t0);
    h->last_commit_us = t2 - t0 > 0 ? t2 - t0 : 1;
    for (size_t i = 0; i < h->nkf_due; i++) keyframer_request(h->keyframer, &h->kf_due[i]);
    h->nkf_due = 0;
    log_debug("msg=\"history batch committed\" revisions=%d revision=%" PRId64 " lsn=" LSN_FMT
              " synchronous=%s copy_ms=%.1f commit_ms=%.1f copy_statements=%" PRId64 " copy_chunks=%" PRId64,
              n, h->durable_id, LSN_ARGS(h->durable), synchronous ? "yes" : "no", (double)(t1 - t0) / 1000.0,
              (double)(t2 - t1) / 1000.0, h->copy_statements, h->copy_chunks);
    return WR_OK;
}

/* How often poll asks for the server's flush position while commits wait
 * for it (the WAL writer flushes every wal_writer_delay, 200 ms by default). */
#define FLUSH_POLL_US (20 * 1000)

static WrStatus hs_poll(Sink *s, WrError *err)
{
    HistorySink *h = s->impl;
    if (!fanout_await_pending(&h->await) || hsession_check_usable(h, err, "poll") != WR_OK) return WR_OK;
    int64_t now = mono_now_us();
    if (now - h->flush_polled_us < FLUSH_POLL_US) return WR_OK;
    h->flush_polled_us = now;
    Lsn flush;
    WrStatus st = read_wal_positions(h, NULL, &flush, err);
    if (st != WR_OK) return st;
    note_flushed(h, flush);
    return WR_OK;
}

/* With auto: a poll at least FLUSH_POLL_US after the oldest waiting commit
 * still found it unflushed, so the server is not flushing by itself (under
 * load its other commits flush it within a few ms; a quiet server's WAL
 * writer only every wal_writer_delay). */
static bool flush_overdue(const HistorySink *h)
{
    return h->commit == HISTORY_COMMIT_AUTO && h->waiting_for &&
           h->flush_polled_us - h->waiting_since_us >= FLUSH_POLL_US;
}

/*
 * Everything committed durable now: a transaction that writes WAL and commits
 * with synchronous_commit = on flushes the WAL through its own commit record,
 * which lies after every earlier commit of this session. It must write WAL:
 * PostgreSQL flushes at commit only for a transaction that wrote some (a
 * transaction id alone, `SELECT pg_current_xact_id()` as this did before,
 * commits asynchronously and flushed nothing), so it touches the slot's
 * checkpoint row, there since the first batch that committed a revision.
 * One round trip; between batches only (an open one is left to poll).
 */
static WrStatus hs_sync(Sink *s, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "sync");
    if (st != WR_OK || !fanout_await_pending(&h->await) || h->in_tx) return st;
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "UPDATE %s.checkpoint SET updated_at = now() WHERE slot_name = $1", h->qschema);
    const char *p[1] = {h->slot_name};
    HsessionStmt stmts[] = {
        {.sql = "BEGIN", .what = "BEGIN of a WAL flush"},
        {.sql = "SET LOCAL synchronous_commit = on", .what = "a WAL flush"},
        {.sql = q.data, .nparams = 1, .params = p, .what = "a WAL flush (the checkpoint row)", .keep = true},
        {.sql = "COMMIT", .what = "COMMIT of a WAL flush"},
    };
    st = hsession_pipeline(h, stmts, 4, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    bool wrote = strcmp(PQcmdTuples(stmts[2].res), "1") == 0;
    PQclear(stmts[2].res);
    if (!wrote)
        return wr_error_set(err, WR_FATAL, "history store: no checkpoint row of slot %s in %s.checkpoint to flush with",
                            h->slot_name, h->qschema);
    note_flushed(h, UINT64_MAX);
    return WR_OK;
}

static Lsn hs_durable_lsn(Sink *s)
{
    HistorySink *h = s->impl;
    return h->flushed;
}

/* The open batch's window starts the first time the caller's clock sees it
 * (the sink has no clock of its own that the worker's timers agree with). */
static void start_batch_timer(HistorySink *h, int64_t now_us)
{
    if (!h->batch_timer_us) h->batch_timer_us = now_us;
}

/*
 * At idle, when the open batch falls due by the pace: IDLE_PACE_FACTOR times
 * the last batch commit's duration after that commit was asked for, so the
 * history session spends at most about a quarter of its time committing
 * batches at idle; 0 before the first commit (then only the window counts).
 * The pace is the commit-to-durable lag of a stream that never waits long:
 * at 70% of pgbench's maximum the worker finds the stream idle between
 * almost every two transactions, and the window alone (a commit every
 * batch_max_ms) made the lag up to that window plus a commit. A slower
 * commit (a loaded server) stretches the pace, so commits grow fewer as they
 * grow dearer; the window still bounds it.
 */
static int64_t idle_pace_due_us(const HistorySink *h)
{
    if (!h->commit_asked_us || !h->last_commit_us) return 0;
    return h->commit_asked_us + IDLE_PACE_FACTOR * h->last_commit_us;
}

/* The open batch's window's end at idle (caller's clock), the pace's if sooner. */
static int64_t idle_due_us(const HistorySink *h)
{
    int64_t due = h->batch_timer_us + (int64_t)h->batch_max_ms * 1000;
    int64_t pace = idle_pace_due_us(h);
    return pace && pace < due ? pace : due;
}

/* Is the open batch due for a commit? Asks, changes nothing. */
static bool batch_due(const HistorySink *h, int64_t now_us, bool idle)
{
    /* A batch ends between revisions: inside one, wait for its commit. */
    if (h->in_revision) return false;
    if (h->batch_revisions >= h->batch_max_revisions) return true;
    /* While the stream is busy (the worker is catching up) the window is
     * longer and the pace does not count: each commit costs five statements,
     * and the lag of what waits in the stream is its backlog's, not the
     * batch's. */
    if (idle ? now_us >= idle_due_us(h)
             : now_us - h->batch_timer_us >= (int64_t)h->batch_max_ms * BUSY_WINDOW_FACTOR * 1000)
        return true;
    size_t total = 0;
    for (int t = 0; t < TB_COUNT; t++) total += h->buf[t].len;
    return total > BATCH_MAX_BYTES;
}

/* Its open batch's window or pace at idle, or the next read of the flush position
 * while commits wait for it (hs_poll), whichever comes first. */
static int64_t hs_idle_wake_in_us(Sink *s, int64_t now_us)
{
    HistorySink *h = s->impl;
    int64_t wake = -1;
    if (h->in_tx && !h->in_revision && h->batch_timer_us)
        wake = batch_due(h, now_us, true) ? 0 : idle_due_us(h) - now_us;
    /* Overdue, the flush is made between batches only (hs_flush): with one
     * open the batch's own window says when. */
    if (!h->in_tx && flush_overdue(h)) return 0;
    if (fanout_await_pending(&h->await)) {
        int64_t poll = h->flush_polled_us + FLUSH_POLL_US - now_us;
        if (poll < 0) poll = 0;
        if (wake < 0 || poll < wake) wake = poll;
    }
    return wake;
}

static bool hs_wants_flush(Sink *s, int64_t now_us, bool idle)
{
    HistorySink *h = s->impl;
    if (!h->in_tx) return idle && flush_overdue(h);
    /* Isolating a data error: each revision through isolate_until is a batch of its own. */
    if (h->isolate_until && !h->in_revision && h->batch_revisions > 0 && h->cur_commit_lsn <= h->isolate_until)
        return true;
    start_batch_timer(h, now_us);
    if (!batch_due(h, now_us, idle)) return false;
    h->commit_asked_us = now_us; /* the pace counts from here (batch_due) */
    return true;
}

/* The digest key, and the tables with stale marks. */
static WrStatus read_digest_state(HistorySink *h, SinkPosition *pos, WrError *err)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT encode(key, 'hex') FROM %s.digest_key", h->qschema);
    PGresult *res = NULL;
    if (!pgio_exec(h->conn, q.data, 0, NULL, &res) || PQntuples(res) != 1 ||
        PQgetlength(res, 0, 0) != 2 * DIGEST_KEY_LEN) {
        PQclear(res);
        strbuf_free(&q);
        return wr_error_set(err, WR_FATAL,
                            "history store: %s.digest_key is missing or unreadable; run walrev setup "
                            "(as the worker's role)",
                            h->qschema);
    }
    const char *hex = PQgetvalue(res, 0, 0);
    for (int k = 0; k < DIGEST_KEY_LEN; k++) {
        unsigned v = 0;
        sscanf(hex + 2 * k, "%2x", &v);
        h->dkey.key[k] = (uint8_t)v;
    }
    PQclear(res);
    pos->has_digest_key = true;
    memcpy(pos->digest_key, h->dkey.key, DIGEST_KEY_LEN);
    strbuf_reset(&q);
    strbuf_appendf(&q, "SELECT DISTINCT relid::text FROM %s.row_digest WHERE col_id = %d", h->qschema, DG_STALE);
    char what[160];
    snprintf(what, sizeof(what), "reading %s.row_digest", h->qschema);
    WrStatus st = hsession_run(h, q.data, 0, NULL, what, &res, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    for (int i = 0; i < PQntuples(res); i++) hsession_rel_mark(h, (uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10));
    PQclear(res);
    return WR_OK;
}

/* The backfill row goes into the open batch: durable with the revisions before it, never ahead of them. */
static WrStatus hs_write_backfill(Sink *s, const BackfillProgress *p, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "write_backfill");
    if (st == WR_OK) st = hsession_ensure_tx(h, err);
    if (st != WR_OK) return st;
    char relid[16], request_no[16], chunks[16], rows_read[24], rows_recorded[24];
    snprintf(relid, sizeof(relid), "%" PRIu32, p->relid);
    snprintf(request_no, sizeof(request_no), "%" PRId32, p->request_no);
    snprintf(chunks, sizeof(chunks), "%" PRId32, p->chunks);
    snprintf(rows_read, sizeof(rows_read), "%" PRId64, p->rows_read);
    snprintf(rows_recorded, sizeof(rows_recorded), "%" PRId64, p->rows_recorded);
    /* The table is whole from the revision this batch has reached: the
     * last chunk's own, or, when that chunk added nothing, the last before. */
    char whole_rev[24];
    snprintf(whole_rev, sizeof(whole_rev), "%" PRId64, h->in_revision ? h->cur_id : h->next_id_base);
    const char *params[12] = {relid,       p->nspname, p->relname, p->state,      request_no,
                              p->last_key, chunks,     rows_read,  rows_recorded, p->error,
                              p->partial_until_done ? "t" : "f", whole_rev};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "INSERT INTO %s.backfill AS b (relid, nspname, relname, state, request_no, last_key, chunks, "
                   "rows_read, rows_recorded, error, started_at, finished_at, whole_from) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), "
                   "CASE WHEN $4 NOT IN ('running', 'requested') THEN now() END, "
                   "CASE WHEN $11::boolean THEN CASE WHEN $4 = 'done' THEN $12::bigint ELSE -1 END END) "
                   "ON CONFLICT (relid) DO UPDATE SET nspname = EXCLUDED.nspname, relname = EXCLUDED.relname, "
                   "state = EXCLUDED.state, last_key = EXCLUDED.last_key, chunks = EXCLUDED.chunks, "
                   "rows_read = EXCLUDED.rows_read, rows_recorded = EXCLUDED.rows_recorded, error = EXCLUDED.error, "
                   "started_at = CASE WHEN b.state = 'running' THEN b.started_at ELSE now() END, "
                   "finished_at = EXCLUDED.finished_at, updated_at = now(), "
                   "whole_from = CASE WHEN b.whole_from = -1 AND EXCLUDED.state = 'done' "
                   "THEN $12::bigint ELSE b.whole_from END "
                   "WHERE b.request_no <= EXCLUDED.request_no",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "writing %s.backfill", h->qschema);
    st = hsession_run(h, q.data, 12, params, what, NULL, err);
    strbuf_free(&q);
    return st;
}

/* Only moves the slot's checkpoint forward and only past its last revision:
 * revision_id and checksum stay the last revision's, so verify and the chain
 * are untouched; resolve_point reads end_lsn as "complete through". */
static WrStatus hs_record_position(Sink *s, Lsn end_lsn, WrError *err)
{
    HistorySink *h = s->impl;
    WrStatus st = hsession_check_usable(h, err, "record_position");
    if (st != WR_OK) return st;
    /* A batch the reader opened (a keyless row's lookup, row digests rebuilt)
     * holds no revision, and the fan-out does not count it as pending: it is
     * committed here rather than refused (the worker died of that when a
     * baseline's read met the idle position record). */
    if (h->in_tx && !h->in_revision && h->batch_revisions == 0) st = hs_flush(s, true, err);
    if (st != WR_OK) return st;
    if (h->in_tx)
        return wr_error_set(err, WR_FATAL,
                            "history store: position " LSN_FMT " recorded while a batch is open; it is recorded "
                            "between batches",
                            LSN_ARGS(end_lsn));
    if (end_lsn <= h->durable) return WR_OK;
    char lsn[32];
    snprintf(lsn, sizeof(lsn), LSN_FMT, LSN_ARGS(end_lsn));
    const char *p[2] = {h->slot_name, lsn};
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q,
                   "UPDATE %s.checkpoint SET end_lsn = $2::pg_lsn, updated_at = now() "
                   "WHERE slot_name = $1 AND end_lsn < $2::pg_lsn",
                   h->qschema);
    char what[160];
    snprintf(what, sizeof(what), "recording the stop position in %s.checkpoint", h->qschema);
    /* Synchronously, whatever the session's setting: the slot is confirmed
     * up to this position as soon as it is reported, and a crash that lost
     * it would make the next start see a slot past the store (a gap). Rare
     * (every 5 s at most), and it flushes every earlier commit with it. */
    st = hsession_run(h, "BEGIN", 0, NULL, what, NULL, err);
    if (st == WR_OK) st = hsession_run(h, "SET LOCAL synchronous_commit = on", 0, NULL, what, NULL, err);
    if (st == WR_OK) st = hsession_run(h, q.data, 2, p, what, NULL, err);
    if (st == WR_OK) st = hsession_run(h, "COMMIT", 0, NULL, what, NULL, err);
    strbuf_free(&q);
    if (st != WR_OK) return st;
    h->durable = end_lsn;
    note_flushed(h, UINT64_MAX);
    if (end_lsn > h->flushed) h->flushed = end_lsn;
    return WR_OK;
}

static void hs_abort(Sink *s)
{
    HistorySink *h = s->impl;
    if (h->copy_pending && h->conn) {
        WrError ignored;
        (void)hsession_await_copy(h, &ignored); /* its error, if any, is moot: the batch is rolled back */
    }
    if (h->conn && !h->broken && PQstatus(h->conn) == CONNECTION_OK &&
        (h->in_tx || PQtransactionStatus(h->conn) != PQTRANS_IDLE)) {
        PGresult *res;
        if (!pgio_exec(h->conn, "ROLLBACK", 0, NULL, &res)) {
            char msg[512];
            const char *sqlstate;
            pgio_error_text(h->conn, res, msg, sizeof(msg), &sqlstate);
            log_warn("msg=\"history store rollback failed\" sqlstate=%s error=\"%s\"", sqlstate ? sqlstate : "none",
                     msg);
            h->broken = true;
        }
        PQclear(res);
    }
    reset_batch(h, false);
    hquarantine_reset(h);
    h->nkf_due = 0;
    if (!h->broken) h->failed = false;
}

static void hs_destroy(Sink *s)
{
    HistorySink *h = s->impl;
    if (h->keyframer) {
        KeyframerStats ks;
        keyframer_stats(h->keyframer, &ks);
        if (ks.taken || ks.failed)
            log_info("msg=\"keyframes\" taken=%llu failed=%llu total_ms=%.0f max_ms=%.0f deferred=%llu",
                     (unsigned long long)ks.taken, (unsigned long long)ks.failed, ks.total_ms, ks.max_ms,
                     (unsigned long long)ks.deferred);
        keyframer_stop(h->keyframer);
    }
    if (h->conn) PQfinish(h->conn);
    hquarantine_reset(h);
    free(h->quarantine_error);
    for (int t = 0; t < TB_COUNT; t++) {
        strbuf_free(&h->buf[t]);
        free(h->copy_sql[t]);
        free(h->table_name[t]);
    }
    strbuf_free(&h->tmp);
    strbuf_free(&h->erase_args);
    for (int i = 0; i < 4; i++) strbuf_free(&h->dg[i]);
    free(h->marked);
    free(h->redigested);
    free(h->vals);
    free(h->ints);
    free(h->counts);
    free(h->kf_due);
    free(h->unsent_keys);
    free(h->rels);
    fanout_await_term(&h->await);
    free(h->conninfo);
    free(h->schema);
    free(h->qschema);
    free(h->slot_name);
    free(h);
    free(s);
}

static const SinkOps history_ops = {
    .name = "history",
    .open = hs_open,
    .write_relation = hs_write_relation,
    .begin_revision = hs_begin_revision,
    .write_context = hs_write_context,
    .write_delta = hs_write_delta,
    .commit_revision = hs_commit_revision,
    .flush = hs_flush,
    .poll = hs_poll,
    .durable_lsn = hs_durable_lsn,
    .holds_batch_at_idle = true,
    .wants_flush = hs_wants_flush,
    .idle_wake_in_us = hs_idle_wake_in_us,
    .write_backfill = hs_write_backfill,
    .record_position = hs_record_position,
    .sync = hs_sync,
    .abort = hs_abort,
    .destroy = hs_destroy,
};

/* The sink hands out its reading side (history_reader.h): the reader lives in the sink. */
HistoryReader *history_reader_of(Sink *s)
{
    if (!s || s->ops != &history_ops) return NULL;
    HistorySink *h = s->impl;
    return &h->reader;
}

void sink_history_lookup_as_of(Sink *s, int64_t revision_id)
{
    ((HistorySink *)s->impl)->lookup_as_of = revision_id > 0 ? revision_id : 0;
}

bool sink_history_failure(Sink *s, HistoryFailure *f)
{
    memset(f, 0, sizeof(*f));
    if (!s || s->ops != &history_ops) return false;
    HistorySink *h = s->impl;
    if (!h->failed || !h->data_failed) return false;
    f->first_id = h->durable_id + 1;
    f->last_id = h->in_revision ? h->cur_id : h->next_id_base;
    f->last_commit_lsn = h->cur_commit_lsn;
    f->last_xid = h->cur_xid;
    snprintf(f->sqlstate, sizeof(f->sqlstate), "%s", h->data_sqlstate);
    snprintf(f->error, sizeof(f->error), "%s", h->data_error);
    return true;
}

void sink_history_copy_counts(Sink *s, int64_t *statements, int64_t *chunks)
{
    const HistorySink *h = s->impl;
    *statements = h->copy_statements;
    *chunks = h->copy_chunks;
}

void sink_history_isolate(Sink *s, Lsn until) { ((HistorySink *)s->impl)->isolate_until = until; }

void sink_history_quarantine(Sink *s, Lsn commit_lsn, const char *sqlstate, const char *error)
{
    HistorySink *h = s->impl;
    h->quarantine_lsn = commit_lsn;
    free(h->quarantine_error);
    h->quarantine_error = error ? xstrdup(error) : NULL;
    snprintf(h->quarantine_sqlstate, sizeof(h->quarantine_sqlstate), "%s", sqlstate ? sqlstate : "");
}

void sink_history_wait_keyframes(Sink *s)
{
    HistorySink *h = s->impl;
    if (h->keyframer) keyframer_wait_idle(h->keyframer);
}

void sink_history_hold_keyframes(Sink *s, bool behind)
{
    HistorySink *h = s->impl;
    if (h->keyframer) keyframer_hold(h->keyframer, behind);
}

Sink *sink_history_create(const HistorySinkConfig *cfg)
{
    HistorySink *h = xcalloc(1, sizeof(*h));
    h->reader.h = h;
    h->conninfo = xstrdup(cfg->conninfo ? cfg->conninfo : "");
    h->schema = xstrdup(cfg->schema && cfg->schema[0] ? cfg->schema : "walrev");
    h->qschema = store_quote_ident(h->schema);
    h->slot_name = xstrdup(cfg->slot_name ? cfg->slot_name : "walrev");
    h->batch_max_revisions = cfg->batch_max_revisions > 0 ? cfg->batch_max_revisions : 2000;
    h->batch_max_ms = cfg->batch_max_ms > 0 ? cfg->batch_max_ms : 20;
    h->keyframe_factor = cfg->keyframe_factor > 0 ? cfg->keyframe_factor : KEYFRAME_FACTOR;
    h->buffer_bytes = cfg->buffer_bytes > 0 ? cfg->buffer_bytes : (size_t)256 << 10;
    h->copy_open = -1;
    h->commit = cfg->commit;
    static const char *const tables[TB_COUNT] = {"revision_context", "revision", "object_delta"};
    static const char *const columns[TB_COUNT] = {
        "revision_id, context_no, lsn, actor_type, actor_id, actor, description, meta, raw, raw_sha256, attested, "
        "db_session_user, db_current_user, application_name, actor_verified, verified_by",
        "id, xid, commit_lsn, end_lsn, commit_time, origin, gid, actor_type, actor_id, actor, "
        "description, meta, n_insert, n_update, n_delete, n_truncate, n_snapshot, n_suppressed, "
        "warnings, checksum, attested, db_session_user, db_current_user, application_name, actor_verified, "
        "verified_by",
        "revision_id, seq, relid, relversion, op, key, context_no, col_ids, old_values, new_values, "
        "attr_flags, old_unknown, col_id, old_value, new_value"};
    /* revision and object_delta, the bulk of every batch, go in COPY's
     * binary format (hsession_send_buffer adds its header and trailer). */
    static const char *const options[TB_COUNT] = {"", " WITH (FORMAT binary)", " WITH (FORMAT binary)"};
    for (int t = 0; t < TB_COUNT; t++) {
        StrBuf b;
        strbuf_init(&b);
        strbuf_appendf(&b, "%s.%s", h->qschema, tables[t]);
        h->table_name[t] = b.data;
        strbuf_init(&b);
        strbuf_appendf(&b, "COPY %s (%s) FROM STDIN%s", h->table_name[t], columns[t], options[t]);
        h->copy_sql[t] = b.data;
        strbuf_init(&h->buf[t]);
    }
    strbuf_init(&h->tmp);
    strbuf_init(&h->erase_args);
    for (int i = 0; i < 4; i++) strbuf_init(&h->dg[i]);
    const char *inject = getenv("WALREV_TEST_INJECT_DATA_ERROR");
    if (inject && inject[0]) {
        h->inject_data_error = inject;
        log_warn("msg=\"test fault injection on: deltas with this value fail in the history store\" "
                 "WALREV_TEST_INJECT_DATA_ERROR=\"%s\"",
                 inject);
    }
    Sink *s = xcalloc(1, sizeof(*s));
    s->ops = &history_ops;
    s->impl = h;
    return s;
}
