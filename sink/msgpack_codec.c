/*
 * msgpack_codec.c — encoders and the validating decoder of walrev's msgpack
 * wire format (docs/kafka-format.md). Encoding packs straight into a StrBuf;
 * decoding is generic msgpack → JSON plus a per-type check of required keys.
 * Must not do I/O or log: the sinks and `walrev tail` do that.
 */
#include "sink/msgpack_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

/* ---- packing helpers ---- */

static int sb_write(void *data, const char *buf, size_t len)
{
    strbuf_append((StrBuf *)data, buf, len);
    return 0;
}

static void pk_key(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }

static void pk_cstr(msgpack_packer *pk, const char *s)
{
    if (s)
        msgpack_pack_str_with_body(pk, s, strlen(s));
    else
        msgpack_pack_nil(pk);
}

/* One map entry: key, then the boolean b. */
static void pk_field_bool(msgpack_packer *pk, const char *key, bool b)
{
    pk_key(pk, key);
    if (b)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/* One map entry: key, then the string s or nil. */
static void pk_field_str(msgpack_packer *pk, const char *key, const char *s)
{
    pk_key(pk, key);
    pk_cstr(pk, s);
}

/* RFC 3629 UTF-8 check (no overlongs, no surrogates, <= U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= need) return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

/*
 * A column value: str when its bytes are valid UTF-8 (every UTF8 database),
 * bin otherwise (SQL_ASCII databases) so that strict decoders never choke and
 * the bytes stay exact either way.
 */
static void pk_value(msgpack_packer *pk, const Value *v)
{
    if (!v->data)
        msgpack_pack_nil(pk);
    else if (utf8_valid((const unsigned char *)v->data, v->len))
        msgpack_pack_str_with_body(pk, v->data, v->len);
    else
        msgpack_pack_bin_with_body(pk, v->data, v->len);
}

static void pk_lsn(msgpack_packer *pk, Lsn lsn)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, LSN_FMT, LSN_ARGS(lsn));
    msgpack_pack_str_with_body(pk, buf, (size_t)n);
}

/* PostgreSQL µs since 2000 → µs since the Unix epoch. */
static int64_t unix_us(int64_t pg_us) { return pg_us + PG_EPOCH_OFFSET_US; }

const char *mpc_op_name(DeltaOp op)
{
    switch (op) {
    case DELTA_INSERT: return "insert";
    case DELTA_UPDATE: return "update";
    case DELTA_DELETE: return "delete";
    case DELTA_TRUNCATE: return "truncate";
    case DELTA_SNAPSHOT: return "snapshot";
    }
    return NULL;
}

void mpc_delta_id(const Revision *rev, int32_t seq, char out[MPC_ID_MAX])
{
    snprintf(out, MPC_ID_MAX, "%" PRId64 ".%" PRId32, rev->id, seq);
}

void mpc_revision_id(const Revision *rev, char out[MPC_ID_MAX]) { snprintf(out, MPC_ID_MAX, "%" PRId64, rev->id); }

static void pk_header(msgpack_packer *pk, const char *type, const char *id)
{
    pk_key(pk, "v");
    msgpack_pack_int(pk, MPC_FORMAT_VERSION);
    pk_key(pk, "type");
    pk_key(pk, type);
    pk_key(pk, "id");
    pk_key(pk, id);
}

static void pk_table(msgpack_packer *pk, const RelationVersion *rv)
{
    msgpack_pack_map(pk, 4);
    pk_field_str(pk, "schema", rv->nspname);
    pk_field_str(pk, "name", rv->relname);
    pk_key(pk, "relid");
    msgpack_pack_uint32(pk, rv->relid);
    pk_key(pk, "version");
    msgpack_pack_int32(pk, rv->version);
}

/* The actor map of a context, or nil when the context names no actor. */
static void pk_actor(msgpack_packer *pk, const RevisionContext *ctx)
{
    if (!ctx || (!ctx->actor_type && !ctx->actor_id && !ctx->actor_json)) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 3);
    pk_field_str(pk, "type", ctx->actor_type);
    pk_field_str(pk, "id", ctx->actor_id);
    pk_field_str(pk, "actor_json", ctx->actor_json);
}

/*
 * Who acted as the server knows it and strict mode's verdict (the history
 * store's columns of the same names, docs/history-store.md#who-acted): six
 * pairs, appended to a context map and to a revision message.
 */
static void pk_server_identity(msgpack_packer *pk, const RevisionContext *ctx)
{
    pk_field_bool(pk, "attested", ctx && ctx->attested);
    pk_field_str(pk, "db_session_user", ctx ? ctx->session_user : NULL);
    pk_field_str(pk, "db_current_user", ctx ? ctx->current_user : NULL);
    pk_field_str(pk, "application_name", ctx ? ctx->application_name : NULL);
    pk_key(pk, "actor_verified");
    if (!ctx || !ctx->strict_checked)
        msgpack_pack_nil(pk);
    else if (ctx->verified)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    pk_field_str(pk, "verified_by", ctx && ctx->verified ? ctx->verified_by : NULL);
}

void mpc_encode_context(StrBuf *out, const RevisionContext *ctx)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sb_write);
    if (!ctx) {
        msgpack_pack_nil(&pk);
        return;
    }
    msgpack_pack_map(&pk, 10);
    pk_key(&pk, "no");
    msgpack_pack_int16(&pk, ctx->no);
    pk_key(&pk, "actor");
    pk_actor(&pk, ctx);
    pk_field_str(&pk, "description", ctx->description);
    pk_field_str(&pk, "meta_json", ctx->meta_json);
    pk_server_identity(&pk, ctx);
}

/* Column name by stable col_id; the attribute's position is tried first (the usual case). */
static const char *column_name(const RelationVersion *rv, uint16_t hint, int16_t col_id)
{
    if (hint < rv->ncols && rv->cols[hint].col_id == col_id) return rv->cols[hint].name;
    for (uint16_t i = 0; i < rv->ncols; i++)
        if (rv->cols[i].col_id == col_id) return rv->cols[i].name;
    return NULL;
}

/* The revision's identity map; end_lsn only once the revision is complete. */
static void pk_revision_identity(msgpack_packer *pk, const Revision *rev, bool with_end_lsn)
{
    msgpack_pack_map(pk, with_end_lsn ? 5 : 4);
    pk_key(pk, "id");
    msgpack_pack_int64(pk, rev->id);
    pk_key(pk, "xid");
    msgpack_pack_uint32(pk, rev->xid);
    pk_key(pk, "commit_lsn");
    pk_lsn(pk, rev->commit_lsn);
    if (with_end_lsn) {
        pk_key(pk, "end_lsn");
        pk_lsn(pk, rev->end_lsn);
    }
    pk_key(pk, "commit_time");
    msgpack_pack_int64(pk, unix_us(rev->commit_time));
}

void mpc_encode_delta(StrBuf *out, const Revision *rev, const ObjectDelta *d, const char *packed_ctx,
                      size_t packed_ctx_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sb_write);
    char id[MPC_ID_MAX];
    mpc_delta_id(rev, d->seq, id);
    bool has_old = d->op == DELTA_UPDATE || d->op == DELTA_DELETE;
    bool has_new = d->op == DELTA_INSERT || d->op == DELTA_UPDATE || d->op == DELTA_SNAPSHOT;

    msgpack_pack_map(&pk, 11);
    pk_header(&pk, "delta", id);
    pk_key(&pk, "revision");
    pk_revision_identity(&pk, rev, false);
    pk_key(&pk, "seq");
    msgpack_pack_int32(&pk, d->seq);
    pk_key(&pk, "table");
    pk_table(&pk, d->relver);
    pk_field_str(&pk, "op", mpc_op_name(d->op));
    pk_field_str(&pk, "key", d->key);
    pk_field_bool(&pk, "old_unknown", d->old_unknown);
    pk_key(&pk, "context");
    if (packed_ctx && packed_ctx_len > 0)
        strbuf_append(out, packed_ctx, packed_ctx_len);
    else
        msgpack_pack_nil(&pk);
    pk_key(&pk, "changes");
    msgpack_pack_array(&pk, d->nattrs);
    for (uint16_t i = 0; i < d->nattrs; i++) {
        const AttributeDelta *a = &d->attrs[i];
        bool hidden = (a->flags & ATTR_HIDDEN) != 0;
        bool old_here = has_old && !hidden, new_here = has_new && !hidden;
        msgpack_pack_map(&pk, 3 + (old_here ? 1 : 0) + (new_here ? 1 : 0));
        pk_field_str(&pk, "column", column_name(d->relver, i, a->col_id));
        pk_key(&pk, "col_id");
        msgpack_pack_int16(&pk, a->col_id);
        pk_key(&pk, "flags");
        msgpack_pack_uint8(&pk, a->flags);
        if (old_here) {
            pk_key(&pk, "old");
            pk_value(&pk, &a->old_value);
        }
        if (new_here) {
            pk_key(&pk, "new");
            pk_value(&pk, &a->new_value);
        }
    }
}

void mpc_encode_revision(StrBuf *out, const Revision *rev, const MpcTableCount *tables, size_t ntables)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sb_write);
    char id[MPC_ID_MAX];
    mpc_revision_id(rev, id);
    const RevisionContext *ctx = rev->first_context;

    msgpack_pack_map(&pk, 19);
    pk_header(&pk, "revision", id);
    pk_key(&pk, "revision");
    pk_revision_identity(&pk, rev, true);
    pk_field_str(&pk, "origin", rev->origin);
    pk_field_str(&pk, "gid", rev->gid);
    pk_key(&pk, "actor");
    pk_actor(&pk, ctx);
    pk_field_str(&pk, "description", ctx ? ctx->description : NULL);
    const struct {
        const char *key;
        int64_t n;
    } counts[] = {{"insert", rev->n_insert},     {"update", rev->n_update},     {"delete", rev->n_delete},
                  {"truncate", rev->n_truncate}, {"snapshot", rev->n_snapshot}, {"suppressed", rev->n_suppressed}};
    pk_key(&pk, "counts");
    msgpack_pack_map(&pk, sizeof(counts) / sizeof(counts[0]));
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        pk_key(&pk, counts[i].key);
        msgpack_pack_int64(&pk, counts[i].n);
    }
    pk_key(&pk, "tables");
    msgpack_pack_array(&pk, ntables);
    for (size_t i = 0; i < ntables; i++) {
        msgpack_pack_map(&pk, 3);
        pk_field_str(&pk, "schema", tables[i].schema);
        pk_field_str(&pk, "name", tables[i].name);
        pk_key(&pk, "count");
        msgpack_pack_int64(&pk, tables[i].count);
    }
    pk_field_str(&pk, "warnings", rev->warnings);
    pk_key(&pk, "checksum");
    msgpack_pack_bin_with_body(&pk, rev->checksum, WALREV_CHECKSUM_LEN);
    pk_key(&pk, "parent_checksum");
    msgpack_pack_bin_with_body(&pk, rev->parent_checksum, WALREV_CHECKSUM_LEN);
    pk_server_identity(&pk, ctx); /* the first context's */
}

static const char *track_name(TrackMode t)
{
    switch (t) {
    case TRACK_FULL: return "full";
    case TRACK_UNTRACKED: return "untracked";
    case TRACK_HIDDEN: return "hidden";
    }
    return "full";
}

void mpc_encode_relation(StrBuf *out, const RelationVersion *rv)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sb_write);
    char id[MPC_ID_MAX + 16];
    snprintf(id, sizeof id, "relation.%" PRIu32 ".%" PRId32, rv->relid, rv->version);

    msgpack_pack_map(&pk, 7);
    pk_header(&pk, "relation", id);
    pk_key(&pk, "table");
    pk_table(&pk, rv);
    pk_key(&pk, "replident");
    char ri[2] = {rv->replident, 0};
    pk_cstr(&pk, ri);
    pk_key(&pk, "valid_from");
    pk_lsn(&pk, rv->valid_from);
    pk_key(&pk, "columns");
    msgpack_pack_array(&pk, rv->ncols);
    for (uint16_t i = 0; i < rv->ncols; i++) {
        const RelColumn *c = &rv->cols[i];
        msgpack_pack_map(&pk, 7);
        pk_field_str(&pk, "name", c->name);
        pk_key(&pk, "col_id");
        msgpack_pack_int16(&pk, c->col_id);
        pk_key(&pk, "type_oid");
        msgpack_pack_uint32(&pk, c->type_oid);
        pk_key(&pk, "typmod");
        msgpack_pack_int32(&pk, c->typmod);
        pk_field_str(&pk, "type_name", c->type_name);
        pk_field_bool(&pk, "is_key", c->is_key);
        pk_key(&pk, "track");
        pk_key(&pk, track_name(c->track));
    }
}

/* ---- per-table counts ---- */

void mpc_tally_reset(MpcTableTally *t) { t->n = 0; }

void mpc_tally_add(MpcTableTally *t, const RelationVersion *rv)
{
    /* The last table is by far the most likely: bulk changes come table by table. */
    for (size_t i = t->n; i-- > 0;) {
        if (t->relids[i] == rv->relid) {
            t->items[i].count++;
            t->items[i].schema = rv->nspname; /* a rename mid-revision: report the newest name */
            t->items[i].name = rv->relname;
            return;
        }
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 8;
        t->items = xrealloc(t->items, t->cap * sizeof *t->items);
        t->relids = xrealloc(t->relids, t->cap * sizeof *t->relids);
    }
    t->relids[t->n] = rv->relid;
    t->items[t->n] = (MpcTableCount){rv->nspname, rv->relname, 1};
    t->n++;
}

void mpc_tally_free(MpcTableTally *t)
{
    free(t->items);
    free(t->relids);
    *t = (MpcTableTally){0};
}

/* ---- one revision as a stream of messages ---- */

void mpc_revision_begin(MpcRevision *r)
{
    mpc_tally_reset(&r->tally);
    strbuf_reset(&r->ctx);
    r->ctx_no = 0;
}

void mpc_revision_context(MpcRevision *r, const RevisionContext *ctx)
{
    strbuf_reset(&r->ctx);
    mpc_encode_context(&r->ctx, ctx);
    r->ctx_no = ctx->no;
}

WrStatus mpc_revision_check_delta(const MpcRevision *r, const Revision *rev, const ObjectDelta *d, const char *sink,
                                  WrError *err)
{
    if (d->context_no == 0 || d->context_no == r->ctx_no) return WR_OK;
    return wr_error_set(err, WR_PROTOCOL,
                        "%s: delta %" PRId64 ".%" PRId32 " refers to context %d but the context in force is %d", sink,
                        rev->id, d->seq, d->context_no, r->ctx_no);
}

void mpc_revision_delta(MpcRevision *r, StrBuf *out, const Revision *rev, const ObjectDelta *d)
{
    mpc_tally_add(&r->tally, d->relver);
    if (d->context_no)
        mpc_encode_delta(out, rev, d, r->ctx.data, r->ctx.len);
    else
        mpc_encode_delta(out, rev, d, NULL, 0);
}

void mpc_revision_end(MpcRevision *r, StrBuf *out, const Revision *rev)
{
    mpc_encode_revision(out, rev, r->tally.items, r->tally.n);
}

void mpc_revision_free(MpcRevision *r)
{
    strbuf_free(&r->ctx);
    mpc_tally_free(&r->tally);
    r->ctx_no = 0;
}

/* ---- decoding ---- */

enum {
    T_NIL = 1 << 0,
    T_BOOL = 1 << 1,
    T_INT = 1 << 2,
    T_STR = 1 << 3,
    T_BIN = 1 << 4,
    T_ARR = 1 << 5,
    T_MAP = 1 << 6,
    T_FLOAT = 1 << 7
};

static int type_bit(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return T_NIL;
    case MSGPACK_OBJECT_BOOLEAN: return T_BOOL;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return T_INT;
    case MSGPACK_OBJECT_STR: return T_STR;
    case MSGPACK_OBJECT_BIN: return T_BIN;
    case MSGPACK_OBJECT_ARRAY: return T_ARR;
    case MSGPACK_OBJECT_MAP: return T_MAP;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return T_FLOAT;
    default: return 0;
    }
}

static bool str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_eq(&map->via.map.ptr[i].key, key)) return &map->via.map.ptr[i].val;
    return NULL;
}

/* One required key of a map: name, allowed types, and (for maps) the keys inside it. */
typedef struct Field Field;
struct Field {
    const char *name;
    int types;
    const Field *inner; /* required keys of the map value (or of each array element) */
};

static WrStatus check_fields(const msgpack_object *map, const Field *fields, const char *where, WrError *err)
{
    for (const Field *f = fields; f->name; f++) {
        const msgpack_object *v = map_get(map, f->name);
        if (!v) return wr_error_set(err, WR_PROTOCOL, "walrev message: required key %s%s is missing", where, f->name);
        if (!(type_bit(v) & f->types))
            return wr_error_set(err, WR_PROTOCOL, "walrev message: key %s%s has the wrong msgpack type", where,
                                f->name);
        if (!f->inner) continue;
        char sub[128];
        snprintf(sub, sizeof sub, "%s%s.", where, f->name);
        if (v->type == MSGPACK_OBJECT_MAP) {
            if (check_fields(v, f->inner, sub, err) != WR_OK) return err->status;
        } else if (v->type == MSGPACK_OBJECT_ARRAY) {
            for (uint32_t i = 0; i < v->via.array.size; i++) {
                const msgpack_object *e = &v->via.array.ptr[i];
                if (e->type != MSGPACK_OBJECT_MAP)
                    return wr_error_set(err, WR_PROTOCOL, "walrev message: %s[%u] is not a map", f->name, (unsigned)i);
                if (check_fields(e, f->inner, sub, err) != WR_OK) return err->status;
            }
        }
    }
    return WR_OK;
}

static const Field TABLE_FIELDS[] = {
    {"schema", T_STR, NULL}, {"name", T_STR, NULL}, {"relid", T_INT, NULL}, {"version", T_INT, NULL}, {0}};
static const Field DELTA_REV_FIELDS[] = {
    {"id", T_INT, NULL}, {"xid", T_INT, NULL}, {"commit_lsn", T_STR, NULL}, {"commit_time", T_INT, NULL}, {0}};
static const Field CONTEXT_FIELDS[] = {
    {"no", T_INT, NULL}, {"actor", T_MAP | T_NIL, NULL}, {"description", T_STR | T_NIL, NULL}, {0}};
static const Field CHANGE_FIELDS[] = {
    {"column", T_STR | T_NIL, NULL}, {"col_id", T_INT, NULL}, {"flags", T_INT, NULL}, {0}};
static const Field DELTA_FIELDS[] = {{"revision", T_MAP, DELTA_REV_FIELDS}, {"seq", T_INT, NULL},
                                     {"table", T_MAP, TABLE_FIELDS},        {"op", T_STR, NULL},
                                     {"key", T_STR | T_NIL, NULL},          {"context", T_MAP | T_NIL, CONTEXT_FIELDS},
                                     {"changes", T_ARR, CHANGE_FIELDS},     {0}};
static const Field REV_REV_FIELDS[] = {{"id", T_INT, NULL},          {"xid", T_INT, NULL},
                                       {"commit_lsn", T_STR, NULL},  {"end_lsn", T_STR, NULL},
                                       {"commit_time", T_INT, NULL}, {0}};
static const Field COUNT_FIELDS[] = {{"insert", T_INT, NULL},   {"update", T_INT, NULL},   {"delete", T_INT, NULL},
                                     {"truncate", T_INT, NULL}, {"snapshot", T_INT, NULL}, {0}};
static const Field TABLE_COUNT_FIELDS[] = {{"schema", T_STR, NULL}, {"name", T_STR, NULL}, {"count", T_INT, NULL}, {0}};
static const Field REVISION_FIELDS[] = {{"revision", T_MAP, REV_REV_FIELDS},
                                        {"origin", T_STR | T_NIL, NULL},
                                        {"actor", T_MAP | T_NIL, NULL},
                                        {"description", T_STR | T_NIL, NULL},
                                        {"counts", T_MAP, COUNT_FIELDS},
                                        {"tables", T_ARR, TABLE_COUNT_FIELDS},
                                        {"checksum", T_BIN, NULL},
                                        {"parent_checksum", T_BIN, NULL},
                                        {0}};
static const Field COLUMN_FIELDS[] = {{"name", T_STR, NULL},   {"col_id", T_INT, NULL},  {"type_oid", T_INT, NULL},
                                      {"typmod", T_INT, NULL}, {"is_key", T_BOOL, NULL}, {0}};
static const Field RELATION_FIELDS[] = {{"table", T_MAP, TABLE_FIELDS},
                                        {"replident", T_STR, NULL},
                                        {"valid_from", T_STR, NULL},
                                        {"columns", T_ARR, COLUMN_FIELDS},
                                        {0}};

#define MAX_DEPTH 16

static json_t *to_json(const msgpack_object *o, int depth, WrError *err)
{
    static const char hex[] = "0123456789abcdef";
    if (depth > MAX_DEPTH) {
        wr_error_set(err, WR_PROTOCOL, "walrev message: nested deeper than %d levels", MAX_DEPTH);
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            wr_error_set(err, WR_PROTOCOL, "walrev message: integer %" PRIu64 " out of range", o->via.u64);
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        if (!s) wr_error_set(err, WR_PROTOCOL, "walrev message: a str is not valid UTF-8");
        return s;
    }
    case MSGPACK_OBJECT_BIN: {
        StrBuf b;
        strbuf_init(&b);
        strbuf_append_str(&b, "\\x");
        for (uint32_t i = 0; i < o->via.bin.size; i++) {
            unsigned char c = (unsigned char)o->via.bin.ptr[i];
            strbuf_append_char(&b, hex[c >> 4]);
            strbuf_append_char(&b, hex[c & 15]);
        }
        json_t *s = json_stringn(b.data, b.len);
        strbuf_free(&b);
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *e = to_json(&o->via.array.ptr[i], depth + 1, err);
            if (!e) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, e);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR || memchr(k->via.str.ptr, 0, k->via.str.size)) {
                wr_error_set(err, WR_PROTOCOL, "walrev message: a map key is not a string");
                json_decref(m);
                return NULL;
            }
            char *key = xstrndup(k->via.str.ptr, k->via.str.size);
            json_t *v = to_json(&o->via.map.ptr[i].val, depth + 1, err);
            if (!v) {
                free(key);
                json_decref(m);
                return NULL;
            }
            json_object_set_new(m, key, v);
            free(key);
        }
        return m;
    }
    default:
        wr_error_set(err, WR_PROTOCOL, "walrev message: unsupported msgpack type %d (ext?)", (int)o->type);
        return NULL;
    }
}

/* No message walrev writes comes near this; a header that claims more is not ours. */
#define SCAN_MAX ((uint64_t)64 << 20)

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/*
 * Walk the first msgpack object of p[0..len) without building it: 1 with
 * *size when it is complete, 0 when more bytes are needed, -1 when it is not
 * msgpack or claims more than SCAN_MAX bytes or elements. msgpack-c allocates
 * for a container's declared count before it reads the elements, so a header
 * claiming 2^32 elements in a few bytes cost 64 GiB (fuzz_msgpack found it);
 * after this walk every declared element is known to be there.
 */
static int scan_object(const uint8_t *p, size_t len, size_t *size)
{
    size_t off = 0;
    uint64_t pending = 1;
    while (pending) {
        if (off >= len) return 0;
        uint8_t t = p[off++];
        pending--;
        uint64_t skip = 0, children = 0;
        size_t lenbytes = 0, extra = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
        } else if ((t & 0xf0) == 0x80) {
            children = (uint64_t)(t & 0x0f) * 2;
        } else if ((t & 0xf0) == 0x90) {
            children = t & 0x0f;
        } else if ((t & 0xe0) == 0xa0) {
            skip = t & 0x1f;
        } else {
            switch (t) {
            case 0xcc:
            case 0xd0: skip = 1; break;
            case 0xcd:
            case 0xd1:
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xce:
            case 0xd2:
            case 0xca: skip = 4; break;
            case 0xd6: skip = 5; break;
            case 0xcf:
            case 0xd3:
            case 0xcb: skip = 8; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xc4:
            case 0xd9: lenbytes = 1; break;
            case 0xc5:
            case 0xda: lenbytes = 2; break;
            case 0xc6:
            case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1, extra = 1; break; /* ext 8/16/32: length, then a type byte */
            case 0xc8: lenbytes = 2, extra = 1; break;
            case 0xc9: lenbytes = 4, extra = 1; break;
            case 0xdc:
            case 0xde: lenbytes = 2; break;
            case 0xdd:
            case 0xdf: lenbytes = 4; break;
            default: return -1; /* 0xc1: never used */
            }
        }
        if (lenbytes) {
            if (len - off < lenbytes) return 0;
            uint64_t n = be(p + off, lenbytes);
            off += lenbytes;
            if (t == 0xdc || t == 0xdd)
                children = n;
            else if (t == 0xde || t == 0xdf)
                children = n * 2;
            else
                skip = n + extra;
        }
        if (skip > SCAN_MAX) return -1;
        if (skip > len - off) return 0;
        off += (size_t)skip;
        pending += children;
        if (pending > SCAN_MAX) return -1;
    }
    *size = off;
    return 1;
}

WrStatus mpc_decode_json(const void *buf, size_t len, size_t *used, json_t **out, WrError *err)
{
    WrError local;
    if (!err) err = &local;
    *out = NULL;
    *used = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0, whole = 0;
    WrStatus st = WR_OK;
    int scanned = scan_object(buf, len, &whole);
    if (scanned == 0) {
        st = wr_error_set(err, WR_AGAIN, "walrev message: incomplete (%zu bytes)", len);
        goto done;
    }
    if (scanned < 0) {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: not valid msgpack");
        goto done;
    }
    msgpack_unpack_return r = msgpack_unpack_next(&u, buf, whole, &off);
    if (r == MSGPACK_UNPACK_CONTINUE) {
        st = wr_error_set(err, WR_AGAIN, "walrev message: incomplete (%zu bytes)", len);
        goto done;
    }
    if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: not valid msgpack");
        goto done;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: top level is not a map");
        goto done;
    }
    const msgpack_object *v = map_get(o, "v");
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: key v (format version) missing");
        goto done;
    }
    if (v->via.u64 != MPC_FORMAT_VERSION) {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: format version %" PRIu64 " is not supported (%d is)",
                          v->via.u64, MPC_FORMAT_VERSION);
        goto done;
    }
    const msgpack_object *type = map_get(o, "type");
    const msgpack_object *id = map_get(o, "id");
    if (!type || type->type != MSGPACK_OBJECT_STR || !id || id->type != MSGPACK_OBJECT_STR) {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: key type or id missing or not a str");
        goto done;
    }
    const Field *fields;
    if (str_eq(type, "delta"))
        fields = DELTA_FIELDS;
    else if (str_eq(type, "revision"))
        fields = REVISION_FIELDS;
    else if (str_eq(type, "relation"))
        fields = RELATION_FIELDS;
    else {
        st = wr_error_set(err, WR_PROTOCOL, "walrev message: unknown type \"%.*s\"",
                          (int)(type->via.str.size > 40 ? 40 : type->via.str.size), type->via.str.ptr);
        goto done;
    }
    if (check_fields(o, fields, "", err) != WR_OK) {
        st = err->status;
        goto done;
    }
    json_t *j = to_json(o, 0, err);
    if (!j) {
        st = err->status;
        goto done;
    }
    *out = j;
    *used = off;
done:
    msgpack_unpacked_destroy(&u);
    return st;
}
