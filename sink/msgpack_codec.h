/*
 * msgpack_codec.h — walrev's msgpack wire format (docs/kafka-format.md,
 * docs/file-format.md): encoders for the delta, revision and relation
 * messages shared by the Kafka and file sinks, and a validating decoder into
 * a JSON view for `walrev tail` and tests. Pure: no I/O, no logging, no globals.
 */
#ifndef WALREV_SINK_MSGPACK_CODEC_H
#define WALREV_SINK_MSGPACK_CODEC_H

#include <jansson.h>

#include "common/common.h"
#include "schema/revision.h"

/* The "v" key of every message and the walrev-format Kafka header. Bumped only on a breaking change. */
#define MPC_FORMAT_VERSION 1

/* A message id needs at most "<int64>.<int32>" + NUL. */
#define MPC_ID_MAX 40

/* Rows a revision touched in one table (revision message's "tables"). Strings borrowed. */
typedef struct {
    const char *schema;
    const char *name;
    int64_t count;
} MpcTableCount;

/*
 * Per-table row counts of the revision being streamed (relid → count), for the
 * revision message. Grows with the number of tables one revision touches, not
 * with its rows. Names are borrowed from the RelationVersion (relcache-owned,
 * valid for the worker's life). Zero-initialise; mpc_tally_free releases it.
 */
typedef struct {
    MpcTableCount *items;
    uint32_t *relids;
    size_t n, cap;
} MpcTableTally;

void mpc_tally_reset(MpcTableTally *t);
void mpc_tally_add(MpcTableTally *t, const RelationVersion *rv);
void mpc_tally_free(MpcTableTally *t);

/*
 * What a sink keeps while it streams one revision as messages (the file and
 * Kafka sinks through revision_encoder.h, which adds their sticky failure and
 * message buffer; the history store's quarantine directly): the context in
 * force, packed once, and the per-table tally for the revision message.
 * Zero-initialise; mpc_revision_free releases.
 */
typedef struct {
    StrBuf ctx;     /* packed context in force (mpc_encode_context) */
    int16_t ctx_no; /* its number, 0 = none */
    MpcTableTally tally;
} MpcRevision;

/* A revision begins: no context in force, nothing tallied. */
void mpc_revision_begin(MpcRevision *r);
/* ctx is in force from now on. */
void mpc_revision_context(MpcRevision *r, const RevisionContext *ctx);
/* WR_PROTOCOL (named for sink, e.g. "file sink") when d refers to a context
 * other than the one in force. */
WrStatus mpc_revision_check_delta(const MpcRevision *r, const Revision *rev, const ObjectDelta *d, const char *sink,
                                  WrError *err) WR_MUSTCHECK;
/* Tally d and append its message, with the context in force, to out. */
void mpc_revision_delta(MpcRevision *r, StrBuf *out, const Revision *rev, const ObjectDelta *d);
/* Append the revision message (with the tally) to out. */
void mpc_revision_end(MpcRevision *r, StrBuf *out, const Revision *rev);
void mpc_revision_free(MpcRevision *r);

/*
 * Encoders append one complete message to out (a caller-owned buffer; out of
 * memory aborts). They cannot fail otherwise. All inputs are borrowed for the
 * call only.
 */

/*
 * The "context" value of delta messages: ctx packed as a map, or nil when ctx
 * is NULL. Sinks pack it once per walrev.context() call and splice the bytes
 * into every delta that follows (mpc_encode_delta's packed_ctx).
 */
void mpc_encode_context(StrBuf *out, const RevisionContext *ctx);

/*
 * One object delta. packed_ctx/packed_ctx_len: the bytes from
 * mpc_encode_context for the context in force (NULL or 0 length: nil).
 * Hidden attributes (ATTR_HIDDEN) carry no "old"/"new" keys at all.
 */
void mpc_encode_delta(StrBuf *out, const Revision *rev, const ObjectDelta *d, const char *packed_ctx,
                      size_t packed_ctx_len);

/* The revision trailer: metadata, counts, per-table counts (ntables entries), checksums. */
void mpc_encode_revision(StrBuf *out, const Revision *rev, const MpcTableCount *tables, size_t ntables);

/* A relation version (the file sink writes one before the first delta that uses it). */
void mpc_encode_relation(StrBuf *out, const RelationVersion *rv);

/* Deterministic message ids: "<revision id>.<seq>" for deltas, "<revision id>" for revisions. */
void mpc_delta_id(const Revision *rev, int32_t seq, char out[MPC_ID_MAX]);
void mpc_revision_id(const Revision *rev, char out[MPC_ID_MAX]);

/* Lower-case operation name used on the wire ("insert", ...); NULL for an unknown op. */
const char *mpc_op_name(DeltaOp op);

/*
 * Decode the first message in buf[0..len) into a JSON view (*out, owned by the
 * caller: json_decref). Maps become objects in wire order; str becomes a JSON
 * string; bin becomes a string "\\x" followed by lower-case hex; nil null.
 * *used is set to the message's size so a stream can be decoded message by message.
 * Returns WR_OK; WR_AGAIN when buf holds only part of a message (nothing consumed);
 * WR_PROTOCOL when the bytes are not a walrev message: not msgpack, not a map,
 * "v" missing or not MPC_FORMAT_VERSION, unknown "type", a required key missing
 * or of the wrong msgpack type (err names the key). Unknown extra keys are
 * kept, as the evolution rules require.
 */
WrStatus mpc_decode_json(const void *buf, size_t len, size_t *used, json_t **out, WrError *err) WR_MUSTCHECK;

#endif
