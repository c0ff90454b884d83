/*
 * pgoutput.h — a pure parser of PostgreSQL's logical replication stream:
 * the CopyBoth envelope (XLogData 'w', keepalive 'k'), an encoder for the
 * standby status update ('r'), and every pgoutput message of protocol 1–4.
 * No I/O, no logging, no globals, no allocation: parsed messages are views
 * into the caller's buffer and stay valid only while that buffer does
 * (for the worker: until the next receive from libpq).
 */
#ifndef WALREV_DECODER_PGOUTPUT_H
#define WALREV_DECODER_PGOUTPUT_H

#include "common/common.h"

/* ---- CopyData envelope ---- */

typedef enum {
    PGO_COPY_XLOGDATA = 'w',
    PGO_COPY_KEEPALIVE = 'k',
    PGO_COPY_UNKNOWN = 0 /* a kind newer servers may send; skip it */
} PgoCopyKind;

typedef struct {
    PgoCopyKind kind;
    uint8_t raw_kind;       /* the byte as received */
    Lsn wal_start;          /* 'w': dataStart; 'k': unused (0) */
    Lsn wal_end;            /* 'w': walEnd; 'k': server's WAL end */
    int64_t send_time;      /* PostgreSQL µs since 2000-01-01 */
    bool reply_requested;   /* 'k' only */
    const uint8_t *payload; /* 'w': the pgoutput message */
    size_t payload_len;
} PgoCopyData;

/* Parse one CopyData payload from the server. WR_OK or WR_PROTOCOL (err names kind and offset). */
WrStatus pgo_parse_copydata(const uint8_t *buf, size_t len, PgoCopyData *out, WrError *err) WR_MUSTCHECK;

#define PGO_STATUS_UPDATE_SIZE 34
/* Encode a standby status update ('r') into out; returns PGO_STATUS_UPDATE_SIZE. */
size_t pgo_encode_status_update(uint8_t out[PGO_STATUS_UPDATE_SIZE], Lsn written, Lsn flushed, Lsn applied,
                                int64_t now_pg_us, bool reply_requested);

/* ---- pgoutput messages: enum values are the wire bytes ---- */

typedef enum {
    PGO_MSG_BEGIN = 'B',
    PGO_MSG_COMMIT = 'C',
    PGO_MSG_ORIGIN = 'O',
    PGO_MSG_RELATION = 'R',
    PGO_MSG_TYPE = 'Y',
    PGO_MSG_INSERT = 'I',
    PGO_MSG_UPDATE = 'U',
    PGO_MSG_DELETE = 'D',
    PGO_MSG_TRUNCATE = 'T',
    PGO_MSG_MESSAGE = 'M',
    PGO_MSG_STREAM_START = 'S',
    PGO_MSG_STREAM_STOP = 'E',
    PGO_MSG_STREAM_COMMIT = 'c',
    PGO_MSG_STREAM_ABORT = 'A',
    PGO_MSG_BEGIN_PREPARE = 'b',
    PGO_MSG_PREPARE = 'P',
    PGO_MSG_COMMIT_PREPARED = 'K',
    PGO_MSG_ROLLBACK_PREPARED = 'r',
    PGO_MSG_STREAM_PREPARE = 'p'
} PgoMessageType;

/* Kinds of a column inside TupleData; values are the wire bytes. */
typedef enum {
    PGO_COL_NULL = 'n',
    PGO_COL_UNCHANGED_TOAST = 'u',
    PGO_COL_TEXT = 't',
    PGO_COL_BINARY = 'b'
} PgoColumnKind;

typedef struct {
    PgoColumnKind kind;
    const uint8_t *data; /* 't'/'b': the value bytes (not NUL-terminated); else NULL */
    uint32_t len;
} PgoValue;

/* A validated TupleData: iterate it with pgo_tuple_next (cannot fail once parsed). */
typedef struct {
    uint16_t ncols;
    const uint8_t *data; /* first column's kind byte */
    size_t len;
} PgoTuple;

typedef struct {
    const PgoTuple *tuple;
    size_t offset;
    uint16_t index;
} PgoTupleIter;

void pgo_tuple_iter_init(PgoTupleIter *it, const PgoTuple *tuple);
/* Next column into out; false after the last one. */
bool pgo_tuple_next(PgoTupleIter *it, PgoValue *out);

/* Relation column descriptor, as sent. */
typedef struct {
    uint8_t flags;    /* bit 0 (value 1): part of the replica identity key */
    const char *name; /* NUL-terminated, inside the buffer */
    uint32_t type_oid;
    int32_t typmod;
} PgoRelColumn;

typedef struct {
    uint32_t xid; /* only inside a streaming block (has_xid) */
    bool has_xid;
    uint32_t relid;
    const char *nspname; /* "" means pg_catalog */
    const char *relname;
    char replident; /* 'd' default, 'n' nothing, 'f' full, 'i' index */
    uint16_t ncols;
    const uint8_t *columns; /* validated; iterate with pgo_relation_next_column */
    size_t columns_len;
} PgoRelation;

typedef struct {
    const PgoRelation *rel;
    size_t offset;
    uint16_t index;
} PgoRelColumnIter;

void pgo_relation_iter_init(PgoRelColumnIter *it, const PgoRelation *rel);
bool pgo_relation_next_column(PgoRelColumnIter *it, PgoRelColumn *out);

typedef struct {
    Lsn final_lsn; /* LSN of the commit record */
    int64_t commit_time;
    uint32_t xid;
} PgoBegin;

typedef struct {
    uint8_t flags;
    Lsn commit_lsn;
    Lsn end_lsn; /* the value to confirm */
    int64_t commit_time;
} PgoCommit;

typedef struct {
    Lsn origin_lsn;
    const char *name;
} PgoOrigin;

typedef struct {
    uint32_t xid;
    bool has_xid;
    uint32_t type_oid;
    const char *nspname;
    const char *typname;
} PgoType;

typedef struct {
    uint32_t xid;
    bool has_xid;
    uint32_t relid;
    char old_kind;      /* 0 (none), 'K' (key columns) or 'O' (full old row); Update/Delete */
    PgoTuple old_tuple; /* valid when old_kind != 0 */
    PgoTuple new_tuple; /* Insert/Update */
} PgoChange;

#define PGO_TRUNCATE_CASCADE 1
#define PGO_TRUNCATE_RESTART_IDENTITY 2
typedef struct {
    uint32_t xid;
    bool has_xid;
    uint32_t nrelids;
    uint8_t options;       /* PGO_TRUNCATE_* bits */
    const uint8_t *relids; /* nrelids × Int32; read with pgo_truncate_relid */
} PgoTruncate;
uint32_t pgo_truncate_relid(const PgoTruncate *t, uint32_t i);

typedef struct {
    uint32_t xid;
    bool has_xid;
    bool transactional;
    Lsn lsn;
    const char *prefix;
    const uint8_t *content;
    uint32_t content_len;
} PgoLogicalMessage;

typedef struct {
    uint32_t xid;
    bool first_segment;
} PgoStreamStart;

typedef struct {
    uint32_t xid;
    uint8_t flags;
    Lsn commit_lsn;
    Lsn end_lsn;
    int64_t commit_time;
} PgoStreamCommit;

typedef struct {
    uint32_t xid;
    uint32_t subxid;
    bool has_abort_info; /* protocol 4 with streaming=parallel */
    Lsn abort_lsn;
    int64_t abort_time;
} PgoStreamAbort;

/* Begin Prepare, Prepare, Stream Prepare, Commit Prepared share this shape. */
typedef struct {
    uint8_t flags;
    Lsn lsn; /* prepare_lsn or commit_lsn */
    Lsn end_lsn;
    int64_t time; /* prepare or commit timestamp */
    uint32_t xid;
    const char *gid;
} PgoTwoPhase;

typedef struct {
    uint8_t flags;
    Lsn prepare_end_lsn;
    Lsn rollback_end_lsn;
    int64_t prepare_time;
    int64_t rollback_time;
    uint32_t xid;
    const char *gid;
} PgoRollbackPrepared;

typedef struct {
    PgoMessageType type;
    union {
        PgoBegin begin;
        PgoCommit commit;
        PgoOrigin origin;
        PgoRelation relation;
        PgoType type;
        PgoChange change; /* Insert, Update, Delete */
        PgoTruncate truncate;
        PgoLogicalMessage message;
        PgoStreamStart stream_start;
        PgoStreamCommit stream_commit;
        PgoStreamAbort stream_abort;
        PgoTwoPhase two_phase; /* Begin Prepare, Prepare, Stream Prepare, Commit Prepared */
        PgoRollbackPrepared rollback_prepared;
    } u;
} PgoMessage;

/*
 * Parser state that the wire format makes necessary: whether we are inside a
 * streaming block (changes then carry an xid) and which protocol options are
 * in force (Stream Abort's v4 fields).
 */
typedef struct {
    int proto_version;       /* 1..4 */
    bool streaming_parallel; /* streaming=parallel was requested (v4) */
    bool in_stream;          /* between Stream Start and Stream Stop */
} PgoParser;

void pgo_parser_init(PgoParser *p, int proto_version, bool streaming_parallel);

/*
 * Parse one pgoutput message (the payload of an XLogData). On WR_OK *out holds
 * views into buf. On WR_PROTOCOL err says which message type and byte offset
 * failed; the parser state is unchanged. Never reads outside buf[0..len).
 */
WrStatus pgo_parse_message(PgoParser *p, const uint8_t *buf, size_t len, PgoMessage *out, WrError *err) WR_MUSTCHECK;

/* A stable human-readable name for a message type ("insert", "stream commit"…). */
const char *pgo_message_type_name(PgoMessageType type);

/*
 * Append a one-line, deterministic text description of msg to out (golden
 * tests, the demo's "decode" mode). Values are printed escaped; binary values
 * as hex.
 */
void pgo_format_message(const PgoMessage *msg, StrBuf *out);

#endif
