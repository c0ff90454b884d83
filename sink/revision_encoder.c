/*
 * revision_encoder.c — the per-revision msgpack state and sticky failure the
 * file and Kafka sinks share (revision_encoder.h). The message bytes are
 * msgpack_codec.c's; this file only decides what is in force when each
 * message is encoded. No I/O, no logging.
 */
#include "sink/revision_encoder.h"

#include <stdarg.h>
#include <stdio.h>

void revenc_init(RevisionEncoder *e, const char *sink)
{
    *e = (RevisionEncoder){.sink = sink};
    strbuf_init(&e->msg);
}

void revenc_term(RevisionEncoder *e)
{
    strbuf_free(&e->msg);
    mpc_revision_free(&e->rev);
}

WrStatus revenc_check(const RevisionEncoder *e, WrError *err)
{
    if (e->failed == WR_OK) return WR_OK;
    return wr_error_set(err, e->failed, "%s", e->failed_msg);
}

bool revenc_fail(RevisionEncoder *e, WrStatus st, const char *fmt, ...)
{
    if (e->failed == WR_FATAL || (e->failed && st != WR_FATAL)) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->failed_msg, sizeof e->failed_msg, fmt, ap);
    va_end(ap);
    e->failed = st;
    return true;
}

WrStatus revenc_failure(const RevisionEncoder *e) { return e->failed; }

void revenc_clear_failure(RevisionEncoder *e)
{
    e->failed = WR_OK;
    e->failed_msg[0] = '\0';
}

WrStatus revenc_begin(RevisionEncoder *e, WrError *err)
{
    if (revenc_check(e, err) != WR_OK) return err->status;
    mpc_revision_begin(&e->rev);
    return WR_OK;
}

WrStatus revenc_context(RevisionEncoder *e, const RevisionContext *ctx, WrError *err)
{
    if (revenc_check(e, err) != WR_OK) return err->status;
    mpc_revision_context(&e->rev, ctx);
    return WR_OK;
}

WrStatus revenc_check_delta(const RevisionEncoder *e, const Revision *rev, const ObjectDelta *d, WrError *err)
{
    if (revenc_check(e, err) != WR_OK) return err->status;
    return mpc_revision_check_delta(&e->rev, rev, d, e->sink, err);
}

void revenc_encode_delta(RevisionEncoder *e, const Revision *rev, const ObjectDelta *d)
{
    strbuf_reset(&e->msg);
    mpc_revision_delta(&e->rev, &e->msg, rev, d);
}

void revenc_encode_revision(RevisionEncoder *e, const Revision *rev)
{
    strbuf_reset(&e->msg);
    mpc_revision_end(&e->rev, &e->msg, rev);
}

void revenc_encode_relation(RevisionEncoder *e, const RelationVersion *rv)
{
    strbuf_reset(&e->msg);
    mpc_encode_relation(&e->msg, rv);
}
