/*
 * revision_encoder.h — what a message-stream sink (file, Kafka) keeps while it
 * turns revisions into msgpack messages (msgpack_codec.h): the sticky failure
 * that makes every later call return the first error, the context in force,
 * the per-table tally, and the buffer holding the message last encoded. Does
 * no I/O and no logging: the sink sends the bytes and logs, once.
 */
#ifndef WALREV_SINK_REVISION_ENCODER_H
#define WALREV_SINK_REVISION_ENCODER_H

#include <stdbool.h>

#include "common/common.h"
#include "schema/revision.h"
#include "sink/msgpack_codec.h"

/*
 * Embedded in the sink's own state. Lifetime: revenc_init .. revenc_term,
 * the sink's life. Grows with the tables one revision touches (the tally) and
 * with the largest message, never with a revision's rows. Fields are read by
 * the sink only through the functions below, except msg (read-only).
 */
typedef struct {
    const char *sink; /* "file sink", "kafka sink": prefix of its errors; borrowed, a static string */
    WrStatus failed;  /* WR_OK until the first failure; then every call returns it */
    char failed_msg[sizeof(((WrError *)0)->msg)];
    StrBuf msg;      /* the message last encoded, owned here; valid until the next revenc_encode_* */
    MpcRevision rev; /* the revision being encoded: context in force, tally */
} RevisionEncoder;

/* sink: the name its errors start with ("file sink"), a string that outlives e. */
void revenc_init(RevisionEncoder *e, const char *sink);
/* Release what e holds; e may be zeroed (never initialised). */
void revenc_term(RevisionEncoder *e);

/* ---- the sticky failure ---- */

/* WR_OK when nothing failed (err untouched); otherwise the first failure, copied into err. */
WrStatus revenc_check(const RevisionEncoder *e, WrError *err) WR_MUSTCHECK;
/*
 * Record a failure: the first one stays, except that a fatal one replaces a
 * retriable one. Returns true when this failure was recorded, so the caller
 * logs it once.
 */
bool revenc_fail(RevisionEncoder *e, WrStatus st, const char *fmt, ...) WR_PRINTF(3, 4);
/* The failure recorded (WR_OK for none). */
WrStatus revenc_failure(const RevisionEncoder *e);
/* Forget the failure: the sink has dropped what a retriable failure left unfinished
 * and is resent from its durable position (the Kafka sink's abort). */
void revenc_clear_failure(RevisionEncoder *e);

/* ---- one revision, step by step (each returns the sticky failure first) ---- */

/* A revision begins: no context in force, nothing tallied. */
WrStatus revenc_begin(RevisionEncoder *e, WrError *err) WR_MUSTCHECK;
/* ctx (borrowed for the call; packed here) is in force for the deltas that follow. */
WrStatus revenc_context(RevisionEncoder *e, const RevisionContext *ctx, WrError *err) WR_MUSTCHECK;
/* WR_PROTOCOL when d refers to a context other than the one in force; nothing changes. */
WrStatus revenc_check_delta(const RevisionEncoder *e, const Revision *rev, const ObjectDelta *d,
                            WrError *err) WR_MUSTCHECK;

/*
 * Encoders: e->msg holds exactly the one message afterwards (what was in it
 * before is gone). They cannot fail; out of memory aborts. Inputs are
 * borrowed for the call.
 */
/* d's delta message with the context in force; d is counted in the tally. */
void revenc_encode_delta(RevisionEncoder *e, const Revision *rev, const ObjectDelta *d);
/* The revision message, with the tally of the deltas encoded since revenc_begin. */
void revenc_encode_revision(RevisionEncoder *e, const Revision *rev);
/* A relation version's message (the file sink writes one before its first delta). */
void revenc_encode_relation(RevisionEncoder *e, const RelationVersion *rv);

#endif
