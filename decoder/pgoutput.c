/*
 * pgoutput.c — parser for the walsender's CopyData envelopes and for every
 * pgoutput message of protocol 1–4, plus a stable one-line text format of
 * parsed messages. Pure: no I/O, no logging, no allocation (except the
 * caller's StrBuf in pgo_format_message), no globals. Every read goes through
 * a bounds-checked Reader; parsed messages are views into the caller's buffer.
 */
#include "decoder/pgoutput.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*
 * A cursor over one message with a sticky failure flag (PgBouncer's
 * pktbuf style): once a read fails, the first error is kept, later reads
 * return zero values and move nothing, so a parser reads all fields and
 * checks r->failed once at the end. `what` names the message for errors;
 * `ctx`/`col` say which tuple and column are being read.
 */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool failed;
    const char *prefix; /* "pgoutput" or "copydata" */
    const char *what;   /* "insert", "xlogdata", … */
    const char *ctx;    /* NULL, "new tuple", "relation" … */
    int col;            /* column index inside ctx, or -1 */
    WrError *err;
} Reader;

static void reader_init(Reader *r, const uint8_t *buf, size_t len, const char *prefix, const char *what, WrError *err)
{
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->failed = false;
    r->prefix = prefix;
    r->what = what;
    r->ctx = NULL;
    r->col = -1;
    r->err = err;
}

static size_t remain(const Reader *r) { return r->len - r->pos; }

/* Record the first failure: "<prefix> <what>: <detail>[ (<ctx>, column N)]". */
static void fail(Reader *r, const char *fmt, ...) WR_PRINTF(2, 3);
static void fail(Reader *r, const char *fmt, ...)
{
    if (r->failed) return;
    r->failed = true;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    char where[96] = "";
    if (r->ctx && r->col >= 0)
        snprintf(where, sizeof(where), " (%s, column %d)", r->ctx, r->col);
    else if (r->ctx)
        snprintf(where, sizeof(where), " (%s)", r->ctx);
    wr_error_set(r->err, WR_PROTOCOL, "%s %s: %s%s", r->prefix, r->what, detail, where);
}

/* True when n more bytes are available; otherwise records a truncation error. */
static bool need(Reader *r, size_t n, const char *field)
{
    if (r->failed) return false;
    if (remain(r) < n) {
        fail(r, "truncated at offset %zu: need %zu bytes for %s, %zu remain", r->pos, n, field, remain(r));
        return false;
    }
    return true;
}

static uint8_t get_u8(Reader *r, const char *field)
{
    if (!need(r, 1, field)) return 0;
    return r->buf[r->pos++];
}

/* Int8 flags that protocol version 1-4 defines no bit of: anything but 0 is
 * a message this parser does not understand (proto.c rejects it too). */
static uint8_t get_flags(Reader *r)
{
    size_t at = r->pos;
    uint8_t f = get_u8(r, "flags");
    if (f != 0) fail(r, "unrecognized flags %u at offset %zu", (unsigned)f, at);
    return f;
}

static uint16_t get_u16(Reader *r, const char *field)
{
    if (!need(r, 2, field)) return 0;
    uint16_t v = wr_read_u16(r->buf + r->pos);
    r->pos += 2;
    return v;
}

static uint32_t get_u32(Reader *r, const char *field)
{
    if (!need(r, 4, field)) return 0;
    uint32_t v = wr_read_u32(r->buf + r->pos);
    r->pos += 4;
    return v;
}

static uint64_t get_u64(Reader *r, const char *field)
{
    if (!need(r, 8, field)) return 0;
    uint64_t v = wr_read_u64(r->buf + r->pos);
    r->pos += 8;
    return v;
}

/* An Int32 length or count that must not be negative. */
static uint32_t get_len(Reader *r, const char *field)
{
    size_t at = r->pos;
    uint32_t v = get_u32(r, field);
    if (v > INT32_MAX) {
        fail(r, "negative %s %" PRId64 " at offset %zu", field, (int64_t)v - INT64_C(4294967296), at);
        return 0;
    }
    return v;
}

static const uint8_t *get_bytes(Reader *r, size_t n, const char *field)
{
    if (!need(r, n, field)) return NULL;
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

/* A NUL-terminated String; the NUL must lie inside the buffer. "" after a failure. */
static const char *get_string(Reader *r, const char *field)
{
    if (!need(r, 1, field)) return "";
    const uint8_t *start = r->buf + r->pos;
    const uint8_t *nul = memchr(start, 0, remain(r));
    if (!nul) {
        fail(r, "unterminated string for %s at offset %zu: no NUL in the %zu remaining bytes", field, r->pos,
             remain(r));
        return "";
    }
    r->pos += (size_t)(nul - start) + 1;
    return (const char *)start;
}

/* ---- CopyData envelope ---- */

WrStatus pgo_parse_copydata(const uint8_t *buf, size_t len, PgoCopyData *out, WrError *err)
{
    Reader r;
    PgoCopyData c;
    memset(&c, 0, sizeof(c));
    if (len == 0 || buf == NULL) return wr_error_set(err, WR_PROTOCOL, "copydata: empty message at offset 0");
    c.raw_kind = buf[0];
    switch (buf[0]) {
    case 'w':
        reader_init(&r, buf, len, "copydata", "xlogdata", err);
        r.pos = 1;
        c.kind = PGO_COPY_XLOGDATA;
        c.wal_start = get_u64(&r, "dataStart");         /* Int64 dataStart */
        c.wal_end = get_u64(&r, "walEnd");              /* Int64 walEnd */
        c.send_time = (int64_t)get_u64(&r, "sendTime"); /* Int64 sendTime */
        if (r.failed) return WR_PROTOCOL;
        c.payload = buf + r.pos; /* Byte(n) pgoutput message */
        c.payload_len = remain(&r);
        break;
    case 'k':
        reader_init(&r, buf, len, "copydata", "keepalive", err);
        r.pos = 1;
        c.kind = PGO_COPY_KEEPALIVE;
        c.wal_end = get_u64(&r, "walEnd");                     /* Int64 walEnd */
        c.send_time = (int64_t)get_u64(&r, "sendTime");        /* Int64 sendTime */
        c.reply_requested = get_u8(&r, "replyRequested") != 0; /* Byte1 replyRequested */
        if (r.failed) return WR_PROTOCOL;
        /* Like pg_recvlogical, accept bytes after the known fields (future extensions). */
        break;
    default: c.kind = PGO_COPY_UNKNOWN; break;
    }
    *out = c;
    return WR_OK;
}

size_t pgo_encode_status_update(uint8_t out[PGO_STATUS_UPDATE_SIZE], Lsn written, Lsn flushed, Lsn applied,
                                int64_t now_pg_us, bool reply_requested)
{
    out[0] = 'r';                                /* Byte1 'r' */
    wr_write_u64(out + 1, written);              /* Int64 written */
    wr_write_u64(out + 9, flushed);              /* Int64 flushed */
    wr_write_u64(out + 17, applied);             /* Int64 applied */
    wr_write_u64(out + 25, (uint64_t)now_pg_us); /* Int64 clientTime */
    out[33] = reply_requested ? 1 : 0;           /* Byte1 replyRequested */
    return PGO_STATUS_UPDATE_SIZE;
}

/* ---- tuples and relation columns ---- */

/* A section read whole: its context leaves the reader (after a failure it
 * stays, for the error message). */
static void leave_section(Reader *r)
{
    if (r->failed) return;
    r->ctx = NULL;
    r->col = -1;
}

/* TupleData: Int16 ncols, then per column Byte1 kind ['t'/'b': Int32 len, Byte(len)]. */
static void read_tuple(Reader *r, PgoTuple *t, const char *which)
{
    r->ctx = which;
    r->col = -1;
    t->ncols = get_u16(r, "column count");
    size_t start = r->pos;
    for (uint16_t i = 0; i < t->ncols && !r->failed; i++) {
        r->col = i;
        size_t at = r->pos;
        uint8_t kind = get_u8(r, "column kind");
        switch (kind) {
        case PGO_COL_NULL:
        case PGO_COL_UNCHANGED_TOAST: break;
        case PGO_COL_TEXT:
        case PGO_COL_BINARY: {
            uint32_t n = get_len(r, "value length");
            (void)get_bytes(r, n, "value");
            break;
        }
        default:
            if (!r->failed) fail(r, "unknown column kind 0x%02x at offset %zu", kind, at);
            break;
        }
    }
    t->data = r->buf + start;
    t->len = r->pos - start;
    leave_section(r);
}

void pgo_tuple_iter_init(PgoTupleIter *it, const PgoTuple *tuple) { *it = (PgoTupleIter){.tuple = tuple}; }

bool pgo_tuple_next(PgoTupleIter *it, PgoValue *out)
{
    const PgoTuple *t = it->tuple;
    /* The tuple was validated at parse time; these checks only guard hand-made tuples. */
    if (it->index >= t->ncols || it->offset >= t->len) return false;
    const uint8_t *p = t->data + it->offset;
    out->kind = (PgoColumnKind)p[0];
    out->data = NULL;
    out->len = 0;
    size_t used = 1;
    if (p[0] == PGO_COL_TEXT || p[0] == PGO_COL_BINARY) {
        if (t->len - it->offset < 5) return false;
        uint32_t n = wr_read_u32(p + 1);
        if (t->len - it->offset - 5 < n) return false;
        out->data = p + 5;
        out->len = n;
        used = 5 + (size_t)n;
    }
    it->offset += used;
    it->index++;
    return true;
}

/* Relation columns: per column Int8 flags, String name, Int32 type OID, Int32 typmod. */
static void read_rel_columns(Reader *r, PgoRelation *rel)
{
    r->ctx = "relation columns";
    size_t start = r->pos;
    for (uint16_t i = 0; i < rel->ncols && !r->failed; i++) {
        r->col = i;
        (void)get_u8(r, "column flags");
        (void)get_string(r, "column name");
        (void)get_u32(r, "column type oid");
        (void)get_u32(r, "column typmod");
    }
    rel->columns = r->buf + start;
    rel->columns_len = r->pos - start;
    leave_section(r);
}

void pgo_relation_iter_init(PgoRelColumnIter *it, const PgoRelation *rel) { *it = (PgoRelColumnIter){.rel = rel}; }

bool pgo_relation_next_column(PgoRelColumnIter *it, PgoRelColumn *out)
{
    const PgoRelation *rel = it->rel;
    if (it->index >= rel->ncols || it->offset >= rel->columns_len) return false;
    const uint8_t *p = rel->columns + it->offset;
    size_t avail = rel->columns_len - it->offset;
    const uint8_t *nul = memchr(p + 1, 0, avail - 1);
    if (!nul) return false;
    size_t name_end = (size_t)(nul - p) + 1;
    if (avail - name_end < 8) return false;
    out->flags = p[0];
    out->name = (const char *)(p + 1);
    out->type_oid = wr_read_u32(p + name_end);
    out->typmod = (int32_t)wr_read_u32(p + name_end + 4);
    it->offset += name_end + 8;
    it->index++;
    return true;
}

uint32_t pgo_truncate_relid(const PgoTruncate *t, uint32_t i)
{
    return i < t->nrelids ? wr_read_u32(t->relids + (size_t)i * 4) : 0;
}

/* ---- messages ---- */

const char *pgo_message_type_name(PgoMessageType type)
{
    switch (type) {
    case PGO_MSG_BEGIN: return "begin";
    case PGO_MSG_COMMIT: return "commit";
    case PGO_MSG_ORIGIN: return "origin";
    case PGO_MSG_RELATION: return "relation";
    case PGO_MSG_TYPE: return "type";
    case PGO_MSG_INSERT: return "insert";
    case PGO_MSG_UPDATE: return "update";
    case PGO_MSG_DELETE: return "delete";
    case PGO_MSG_TRUNCATE: return "truncate";
    case PGO_MSG_MESSAGE: return "message";
    case PGO_MSG_STREAM_START: return "stream start";
    case PGO_MSG_STREAM_STOP: return "stream stop";
    case PGO_MSG_STREAM_COMMIT: return "stream commit";
    case PGO_MSG_STREAM_ABORT: return "stream abort";
    case PGO_MSG_BEGIN_PREPARE: return "begin prepare";
    case PGO_MSG_PREPARE: return "prepare";
    case PGO_MSG_COMMIT_PREPARED: return "commit prepared";
    case PGO_MSG_ROLLBACK_PREPARED: return "rollback prepared";
    case PGO_MSG_STREAM_PREPARE: return "stream prepare";
    }
    return "unknown";
}

static bool is_known_type(uint8_t b) { return strchr("BCORYIUDTMSEcAbPKrp", b) != NULL && b != 0; }

/* [xid]: Int32, present only inside a streaming block. */
static void read_stream_xid(Reader *r, const PgoParser *p, uint32_t *xid, bool *has_xid)
{
    *has_xid = p->in_stream;
    *xid = p->in_stream ? get_u32(r, "xid") : 0;
}

/* Begin Prepare: Int64 prepare_lsn, Int64 end_lsn, Int64 prepare_time, Int32 xid, String gid.
 * The others add a leading Int8 flags. */
static void read_two_phase(Reader *r, PgoTwoPhase *tp, bool has_flags, const char *lsn_name, const char *time_name)
{
    tp->flags = has_flags ? get_flags(r) : 0;
    tp->lsn = get_u64(r, lsn_name);
    tp->end_lsn = get_u64(r, "end_lsn");
    tp->time = (int64_t)get_u64(r, time_name);
    tp->xid = get_u32(r, "xid");
    tp->gid = get_string(r, "gid");
}

/* Insert, Update, Delete: [Int32 xid], Int32 relation OID, then the tuples
 * each allows: Insert 'N'; Delete 'K' or 'O'; Update ['K' or 'O'] 'N'. */
static void read_change(Reader *r, const PgoParser *p, PgoMessageType type, PgoChange *c)
{
    read_stream_xid(r, p, &c->xid, &c->has_xid); /* [Int32 xid] */
    c->relid = get_u32(r, "relation id");        /* Int32 relation OID */
    size_t at = r->pos;
    uint8_t marker = get_u8(r, "tuple marker"); /* Byte1 'K'/'O'/'N' */
    if (r->failed) return;
    if (type == PGO_MSG_INSERT && marker != 'N') {
        fail(r, "expected 'N' at offset %zu, got 0x%02x", at, marker);
        return;
    }
    if (type == PGO_MSG_DELETE && marker != 'K' && marker != 'O') {
        fail(r, "expected 'K' or 'O' at offset %zu, got 0x%02x", at, marker);
        return;
    }
    if (type == PGO_MSG_UPDATE && marker != 'K' && marker != 'O' && marker != 'N') {
        fail(r, "expected 'K', 'O' or 'N' at offset %zu, got 0x%02x", at, marker);
        return;
    }
    if (marker == 'K' || marker == 'O') {
        c->old_kind = (char)marker;
        read_tuple(r, &c->old_tuple, marker == 'K' ? "key tuple" : "old tuple");
        if (type == PGO_MSG_DELETE || r->failed) return;
        at = r->pos;
        marker = get_u8(r, "new tuple marker"); /* Byte1 'N' */
        if (r->failed) return;
        if (marker != 'N') {
            fail(r, "expected 'N' at offset %zu, got 0x%02x", at, marker);
            return;
        }
    }
    read_tuple(r, &c->new_tuple, "new tuple"); /* TupleData */
}

/* Truncate: [Int32 xid], Int32 nrelids, Int8 options, nrelids × Int32 OID. */
static void read_truncate(Reader *r, const PgoParser *p, PgoTruncate *t)
{
    read_stream_xid(r, p, &t->xid, &t->has_xid);  /* [Int32 xid] */
    t->nrelids = get_len(r, "relation count");    /* Int32 nrelids */
    t->options = get_u8(r, "options");            /* Int8 options */
    if (!r->failed && t->nrelids > remain(r) / 4) /* nrelids × 4 may not fit a 32-bit size_t */
        fail(r, "truncated at offset %zu: need %" PRIu64 " bytes for relation ids, %zu remain", r->pos,
             (uint64_t)t->nrelids * 4, remain(r));
    else
        t->relids = get_bytes(r, (size_t)t->nrelids * 4, "relation ids"); /* nrelids × Int32 */
}

WrStatus pgo_parse_message(PgoParser *p, const uint8_t *buf, size_t len, PgoMessage *out, WrError *err)
{
    if (len == 0 || buf == NULL) return wr_error_set(err, WR_PROTOCOL, "pgoutput: empty message at offset 0");
    uint8_t type = buf[0];
    if (!is_known_type(type)) {
        if (type >= 0x20 && type < 0x7f)
            return wr_error_set(err, WR_PROTOCOL, "pgoutput: unknown message type '%c' (0x%02x) at offset 0", type,
                                type);
        return wr_error_set(err, WR_PROTOCOL, "pgoutput: unknown message type 0x%02x at offset 0", type);
    }

    Reader rd;
    Reader *r = &rd;
    reader_init(r, buf, len, "pgoutput", pgo_message_type_name((PgoMessageType)type), err);
    r->pos = 1;
    PgoMessage m;
    memset(&m, 0, sizeof(m));
    m.type = (PgoMessageType)type;
    bool in_stream_after = p->in_stream;

    switch (m.type) {
    case PGO_MSG_BEGIN:
        m.u.begin.final_lsn = get_u64(r, "final_lsn");              /* Int64 final_lsn */
        m.u.begin.commit_time = (int64_t)get_u64(r, "commit_time"); /* Int64 commit timestamp */
        m.u.begin.xid = get_u32(r, "xid");                          /* Int32 xid */
        break;
    case PGO_MSG_COMMIT:
        m.u.commit.flags = get_flags(r);                             /* Int8 flags (0) */
        m.u.commit.commit_lsn = get_u64(r, "commit_lsn");            /* Int64 commit_lsn */
        m.u.commit.end_lsn = get_u64(r, "end_lsn");                  /* Int64 end_lsn */
        m.u.commit.commit_time = (int64_t)get_u64(r, "commit_time"); /* Int64 commit timestamp */
        break;
    case PGO_MSG_ORIGIN:
        m.u.origin.origin_lsn = get_u64(r, "origin_lsn"); /* Int64 origin commit LSN */
        m.u.origin.name = get_string(r, "origin name");   /* String name */
        break;
    case PGO_MSG_RELATION: {
        PgoRelation *rel = &m.u.relation;
        read_stream_xid(r, p, &rel->xid, &rel->has_xid);      /* [Int32 xid] */
        rel->relid = get_u32(r, "relation id");               /* Int32 relation OID */
        rel->nspname = get_string(r, "namespace");            /* String namespace */
        rel->relname = get_string(r, "relation name");        /* String relname */
        rel->replident = (char)get_u8(r, "replica identity"); /* Int8 relreplident */
        rel->ncols = get_u16(r, "column count");              /* Int16 ncols */
        read_rel_columns(r, rel);                             /* ncols × column */
        break;
    }
    case PGO_MSG_TYPE:
        read_stream_xid(r, p, &m.u.type.xid, &m.u.type.has_xid); /* [Int32 xid] */
        m.u.type.type_oid = get_u32(r, "type oid");              /* Int32 type OID */
        m.u.type.nspname = get_string(r, "namespace");           /* String namespace */
        m.u.type.typname = get_string(r, "type name");           /* String type name */
        break;
    case PGO_MSG_INSERT:
    case PGO_MSG_UPDATE:
    case PGO_MSG_DELETE: read_change(r, p, m.type, &m.u.change); break;
    case PGO_MSG_TRUNCATE: read_truncate(r, p, &m.u.truncate); break;
    case PGO_MSG_MESSAGE: {
        PgoLogicalMessage *lm = &m.u.message;
        read_stream_xid(r, p, &lm->xid, &lm->has_xid);          /* [Int32 xid] */
        lm->transactional = (get_u8(r, "flags") & 1) != 0;      /* Int8 flags */
        lm->lsn = get_u64(r, "message lsn");                    /* Int64 message LSN */
        lm->prefix = get_string(r, "prefix");                   /* String prefix */
        lm->content_len = get_len(r, "content length");         /* Int32 length */
        lm->content = get_bytes(r, lm->content_len, "content"); /* Byte(length) */
        break;
    }
    case PGO_MSG_STREAM_START:
        if (p->in_stream) {
            fail(r, "unexpected inside a streaming block, at offset 0");
            break;
        }
        m.u.stream_start.xid = get_u32(r, "xid");                         /* Int32 xid */
        m.u.stream_start.first_segment = get_u8(r, "first_segment") != 0; /* Int8 */
        in_stream_after = true;
        break;
    case PGO_MSG_STREAM_STOP:
        if (!p->in_stream) {
            fail(r, "unexpected outside a streaming block, at offset 0");
            break;
        }
        in_stream_after = false;
        break;
    case PGO_MSG_STREAM_COMMIT:
        m.u.stream_commit.xid = get_u32(r, "xid");                          /* Int32 xid */
        m.u.stream_commit.flags = get_flags(r);                             /* Int8 flags (0) */
        m.u.stream_commit.commit_lsn = get_u64(r, "commit_lsn");            /* Int64 commit_lsn */
        m.u.stream_commit.end_lsn = get_u64(r, "end_lsn");                  /* Int64 end_lsn */
        m.u.stream_commit.commit_time = (int64_t)get_u64(r, "commit_time"); /* Int64 */
        break;
    case PGO_MSG_STREAM_ABORT:
        m.u.stream_abort.xid = get_u32(r, "xid");       /* Int32 xid */
        m.u.stream_abort.subxid = get_u32(r, "subxid"); /* Int32 subxid */
        if (p->proto_version >= 4 && p->streaming_parallel) {
            m.u.stream_abort.has_abort_info = true;
            m.u.stream_abort.abort_lsn = get_u64(r, "abort_lsn");            /* Int64 abort_lsn */
            m.u.stream_abort.abort_time = (int64_t)get_u64(r, "abort_time"); /* Int64 */
        }
        break;
    case PGO_MSG_BEGIN_PREPARE: read_two_phase(r, &m.u.two_phase, false, "prepare_lsn", "prepare_time"); break;
    case PGO_MSG_PREPARE:
    case PGO_MSG_STREAM_PREPARE: read_two_phase(r, &m.u.two_phase, true, "prepare_lsn", "prepare_time"); break;
    case PGO_MSG_COMMIT_PREPARED: read_two_phase(r, &m.u.two_phase, true, "commit_lsn", "commit_time"); break;
    case PGO_MSG_ROLLBACK_PREPARED: {
        PgoRollbackPrepared *rp = &m.u.rollback_prepared;
        rp->flags = get_flags(r);                                 /* Int8 flags (0) */
        rp->prepare_end_lsn = get_u64(r, "prepare_end_lsn");      /* Int64 */
        rp->rollback_end_lsn = get_u64(r, "rollback_end_lsn");    /* Int64 */
        rp->prepare_time = (int64_t)get_u64(r, "prepare_time");   /* Int64 */
        rp->rollback_time = (int64_t)get_u64(r, "rollback_time"); /* Int64 */
        rp->xid = get_u32(r, "xid");                              /* Int32 xid */
        rp->gid = get_string(r, "gid");                           /* String gid */
        break;
    }
    }

    if (!r->failed && remain(r) != 0) fail(r, "%zu trailing bytes at offset %zu", remain(r), r->pos);
    if (r->failed) return WR_PROTOCOL;
    p->in_stream = in_stream_after;
    *out = m;
    return WR_OK;
}

void pgo_parser_init(PgoParser *p, int proto_version, bool streaming_parallel)
{
    p->proto_version = proto_version;
    p->streaming_parallel = streaming_parallel;
    p->in_stream = false;
}

/* ---- text format ----
 *
 * One line per message, no trailing newline, fields in wire order:
 *   <type name> [xid=N ]field=value ...
 * Numbers are decimal, LSNs X/X (hex), timestamps raw PostgreSQL µs since
 * 2000-01-01 (exact, and safe for any value), booleans true/false.
 * Strings (names, prefixes, gids, text values, message content) are quoted
 * '...': bytes 0x20..0x7e print as themselves except ' → \' and \ → \\;
 * every other byte is \xNN (lower-case hex).
 * Tuples: (v,v,...) with v one of n (NULL), u (unchanged TOAST), t:'text',
 * b:\x<hex bytes> (binary, possibly empty "b:\x").
 * Relation columns: ('name':typeoid:typmod[:key][:flags=N], ...), where key
 * means flag bit 1 and flags=N appears only when other bits are set.
 * Examples:
 *   begin final_lsn=0/16B3748 commit_time=757382400000000 xid=735
 *   insert rel=16385 new=(t:'1',n,u,t:'abc')
 *   update xid=736 rel=16385 key=(t:'1',n) new=(t:'2',t:'x')
 *   truncate rels=(16385,16390) options=cascade,restart_identity
 * Changing this format means regenerating the golden files.
 */

static void append_quoted(StrBuf *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_reserve(out, n + 2);
    strbuf_append_char(out, '\'');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') continue;
        strbuf_append(out, s + run, i - run);
        run = i + 1;
        if (c == '\'' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            strbuf_append(out, esc, 2);
        } else {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            strbuf_append(out, esc, 4);
        }
    }
    strbuf_append(out, s + run, n - run);
    strbuf_append_char(out, '\'');
}

static void append_cstr(StrBuf *out, const char *s) { append_quoted(out, (const uint8_t *)s, strlen(s)); }

static void append_hex(StrBuf *out, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    strbuf_reserve(out, 2 + 2 * n);
    strbuf_append(out, "\\x", 2);
    for (size_t i = 0; i < n; i++) {
        char h[2] = {hex[s[i] >> 4], hex[s[i] & 15]};
        strbuf_append(out, h, 2);
    }
}

static void append_tuple(StrBuf *out, const char *label, const PgoTuple *t)
{
    strbuf_appendf(out, " %s=(", label);
    PgoTupleIter it;
    PgoValue v;
    pgo_tuple_iter_init(&it, t);
    bool first = true;
    while (pgo_tuple_next(&it, &v)) {
        if (!first) strbuf_append_char(out, ',');
        first = false;
        switch (v.kind) {
        case PGO_COL_NULL: strbuf_append_char(out, 'n'); break;
        case PGO_COL_UNCHANGED_TOAST: strbuf_append_char(out, 'u'); break;
        case PGO_COL_TEXT:
            strbuf_append(out, "t:", 2);
            append_quoted(out, v.data, v.len);
            break;
        case PGO_COL_BINARY:
            strbuf_append(out, "b:", 2);
            append_hex(out, v.data, v.len);
            break;
        default: strbuf_appendf(out, "?%02x", (unsigned)v.kind); break;
        }
    }
    strbuf_append_char(out, ')');
}

static void append_xid(StrBuf *out, bool has_xid, uint32_t xid)
{
    if (has_xid) strbuf_appendf(out, " xid=%" PRIu32, xid);
}

static void append_lsn(StrBuf *out, const char *label, Lsn lsn)
{
    strbuf_appendf(out, " %s=" LSN_FMT, label, LSN_ARGS(lsn));
}

static void append_time(StrBuf *out, const char *label, int64_t t) { strbuf_appendf(out, " %s=%" PRId64, label, t); }

static void append_two_phase(StrBuf *out, const PgoTwoPhase *tp, bool has_flags, const char *lsn_name,
                             const char *time_name)
{
    if (has_flags) strbuf_appendf(out, " flags=%u", (unsigned)tp->flags);
    append_lsn(out, lsn_name, tp->lsn);
    append_lsn(out, "end_lsn", tp->end_lsn);
    append_time(out, time_name, tp->time);
    strbuf_appendf(out, " xid=%" PRIu32 " gid=", tp->xid);
    append_cstr(out, tp->gid);
}

void pgo_format_message(const PgoMessage *msg, StrBuf *out)
{
    strbuf_append_str(out, pgo_message_type_name(msg->type));
    switch (msg->type) {
    case PGO_MSG_BEGIN:
        append_lsn(out, "final_lsn", msg->u.begin.final_lsn);
        append_time(out, "commit_time", msg->u.begin.commit_time);
        strbuf_appendf(out, " xid=%" PRIu32, msg->u.begin.xid);
        break;
    case PGO_MSG_COMMIT:
        strbuf_appendf(out, " flags=%u", (unsigned)msg->u.commit.flags);
        append_lsn(out, "commit_lsn", msg->u.commit.commit_lsn);
        append_lsn(out, "end_lsn", msg->u.commit.end_lsn);
        append_time(out, "commit_time", msg->u.commit.commit_time);
        break;
    case PGO_MSG_ORIGIN:
        append_lsn(out, "origin_lsn", msg->u.origin.origin_lsn);
        strbuf_append_str(out, " name=");
        append_cstr(out, msg->u.origin.name);
        break;
    case PGO_MSG_RELATION: {
        const PgoRelation *rel = &msg->u.relation;
        append_xid(out, rel->has_xid, rel->xid);
        strbuf_appendf(out, " rel=%" PRIu32 " nsp=", rel->relid);
        append_cstr(out, rel->nspname);
        strbuf_append_str(out, " name=");
        append_cstr(out, rel->relname);
        strbuf_append_str(out, " replident=");
        uint8_t ri = (uint8_t)rel->replident;
        if (ri >= 0x21 && ri < 0x7f && ri != '\'' && ri != '\\')
            strbuf_append_char(out, (char)ri);
        else
            strbuf_appendf(out, "\\x%02x", (unsigned)ri);
        strbuf_append_str(out, " cols=(");
        PgoRelColumnIter it;
        PgoRelColumn col;
        pgo_relation_iter_init(&it, rel);
        bool first = true;
        while (pgo_relation_next_column(&it, &col)) {
            if (!first) strbuf_append_char(out, ',');
            first = false;
            append_cstr(out, col.name);
            strbuf_appendf(out, ":%" PRIu32 ":%" PRId32, col.type_oid, col.typmod);
            if (col.flags & 1) strbuf_append_str(out, ":key");
            if (col.flags & ~1u) strbuf_appendf(out, ":flags=%u", (unsigned)col.flags);
        }
        strbuf_append_char(out, ')');
        break;
    }
    case PGO_MSG_TYPE:
        append_xid(out, msg->u.type.has_xid, msg->u.type.xid);
        strbuf_appendf(out, " oid=%" PRIu32 " nsp=", msg->u.type.type_oid);
        append_cstr(out, msg->u.type.nspname);
        strbuf_append_str(out, " name=");
        append_cstr(out, msg->u.type.typname);
        break;
    case PGO_MSG_INSERT:
    case PGO_MSG_UPDATE:
    case PGO_MSG_DELETE: {
        const PgoChange *c = &msg->u.change;
        append_xid(out, c->has_xid, c->xid);
        strbuf_appendf(out, " rel=%" PRIu32, c->relid);
        if (c->old_kind == 'K') append_tuple(out, "key", &c->old_tuple);
        if (c->old_kind == 'O') append_tuple(out, "old", &c->old_tuple);
        if (msg->type != PGO_MSG_DELETE) append_tuple(out, "new", &c->new_tuple);
        break;
    }
    case PGO_MSG_TRUNCATE: {
        const PgoTruncate *t = &msg->u.truncate;
        append_xid(out, t->has_xid, t->xid);
        strbuf_append_str(out, " rels=(");
        for (uint32_t i = 0; i < t->nrelids; i++)
            strbuf_appendf(out, "%s%" PRIu32, i ? "," : "", pgo_truncate_relid(t, i));
        strbuf_append_str(out, ") options=");
        unsigned opt = t->options;
        if (opt == 0) strbuf_append_str(out, "none");
        if (opt & PGO_TRUNCATE_CASCADE) strbuf_append_str(out, "cascade");
        if (opt & PGO_TRUNCATE_RESTART_IDENTITY)
            strbuf_append_str(out, (opt & PGO_TRUNCATE_CASCADE) ? ",restart_identity" : "restart_identity");
        unsigned rest = opt & ~(unsigned)(PGO_TRUNCATE_CASCADE | PGO_TRUNCATE_RESTART_IDENTITY);
        if (rest) strbuf_appendf(out, "%s0x%02x", (opt & 3) ? "," : "", rest);
        break;
    }
    case PGO_MSG_MESSAGE: {
        const PgoLogicalMessage *lm = &msg->u.message;
        append_xid(out, lm->has_xid, lm->xid);
        strbuf_appendf(out, " transactional=%s", lm->transactional ? "true" : "false");
        append_lsn(out, "lsn", lm->lsn);
        strbuf_append_str(out, " prefix=");
        append_cstr(out, lm->prefix);
        strbuf_append_str(out, " content=");
        append_quoted(out, lm->content, lm->content_len);
        break;
    }
    case PGO_MSG_STREAM_START:
        strbuf_appendf(out, " xid=%" PRIu32 " first_segment=%s", msg->u.stream_start.xid,
                       msg->u.stream_start.first_segment ? "true" : "false");
        break;
    case PGO_MSG_STREAM_STOP: break;
    case PGO_MSG_STREAM_COMMIT: {
        const PgoStreamCommit *sc = &msg->u.stream_commit;
        strbuf_appendf(out, " xid=%" PRIu32 " flags=%u", sc->xid, (unsigned)sc->flags);
        append_lsn(out, "commit_lsn", sc->commit_lsn);
        append_lsn(out, "end_lsn", sc->end_lsn);
        append_time(out, "commit_time", sc->commit_time);
        break;
    }
    case PGO_MSG_STREAM_ABORT: {
        const PgoStreamAbort *sa = &msg->u.stream_abort;
        strbuf_appendf(out, " xid=%" PRIu32 " subxid=%" PRIu32, sa->xid, sa->subxid);
        if (sa->has_abort_info) {
            append_lsn(out, "abort_lsn", sa->abort_lsn);
            append_time(out, "abort_time", sa->abort_time);
        }
        break;
    }
    case PGO_MSG_BEGIN_PREPARE: append_two_phase(out, &msg->u.two_phase, false, "prepare_lsn", "prepare_time"); break;
    case PGO_MSG_PREPARE:
    case PGO_MSG_STREAM_PREPARE: append_two_phase(out, &msg->u.two_phase, true, "prepare_lsn", "prepare_time"); break;
    case PGO_MSG_COMMIT_PREPARED: append_two_phase(out, &msg->u.two_phase, true, "commit_lsn", "commit_time"); break;
    case PGO_MSG_ROLLBACK_PREPARED: {
        const PgoRollbackPrepared *rp = &msg->u.rollback_prepared;
        strbuf_appendf(out, " flags=%u", (unsigned)rp->flags);
        append_lsn(out, "prepare_end_lsn", rp->prepare_end_lsn);
        append_lsn(out, "rollback_end_lsn", rp->rollback_end_lsn);
        append_time(out, "prepare_time", rp->prepare_time);
        append_time(out, "rollback_time", rp->rollback_time);
        strbuf_appendf(out, " xid=%" PRIu32 " gid=", rp->xid);
        append_cstr(out, rp->gid);
        break;
    }
    }
}
