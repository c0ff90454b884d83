/*
 * verify_reads.h — the checks of `walrev verify` beyond the checksum chain
 * (internal to replay/verify.c): every column that replay, blame, log and
 * show read and the chain does not hash must follow from what it hashes.
 * Both run inside verify's REPEATABLE READ, READ ONLY transaction and never
 * write.
 */
#ifndef WALREV_REPLAY_VERIFY_READS_H
#define WALREV_REPLAY_VERIFY_READS_H

#include <libpq-fe.h>

#include "common/common.h"

/*
 * Contexts and actors: each revision_context row's actor_type, actor_id,
 * actor, description and meta must be what the worker derives from its raw
 * message (context_parse), and each revision's must be its first context's.
 * qschema: the quoted history schema. *first_bad = the lowest revision id
 * that fails (0: none) with why filled; WR_FATAL/WR_RETRY on SQL errors.
 */
WrStatus verify_contexts(PGconn *conn, const char *qschema, int64_t *first_bad, char *why, size_t why_size,
                         WrError *err) WR_MUSTCHECK;

/*
 * Keyframes: each keyframe's rows (keyframe_row key and vals, and its
 * n_rows) must equal the table's image rebuilt without it, from the
 * keyframes before it and the deltas, which the chain covers — in order, so
 * each keyframe is checked against ones already checked. *bad_keyframe = the
 * first keyframe that fails (0: none), *bad_revision its revision, why
 * names the table and a key.
 */
WrStatus verify_keyframes(PGconn *conn, const char *qschema, int64_t *bad_keyframe, int64_t *bad_revision, char *why,
                          size_t why_size, WrError *err) WR_MUSTCHECK;

/*
 * Baseline records (the backfill table, docs/history-store.md#the-baseline),
 * against the chunk revisions the chain covers (their walrev:baseline
 * contexts' meta.backfill and their snapshot rows). A chunk that added
 * nothing makes no revision, so what is derived: rows_recorded is the
 * snapshot rows of a tail of the table's last run of chunk revisions (or
 * 0); chunks and rows_read at least what its last chunk revision says; a
 * record of recorded rows with no chunk revision fails; one of setup's
 * baseline (done, no chunks) counts its snapshot rows there. *first_bad =
 * the table's last chunk revision (setup's baseline revision; the newest
 * revision when there is none), why names the table and the column; 0 when
 * every record holds. A store without the backfill table passes.
 */
WrStatus verify_backfill(PGconn *conn, const char *qschema, int64_t *first_bad, char *why, size_t why_size,
                         WrError *err) WR_MUSTCHECK;

/*
 * The newest prune of the history (walrev prune, the prune table of store
 * format 6): revisions below *before were dropped, anchor is the checksum of
 * revision *before - 1 (the parent the chain after the cut starts from),
 * pruned_on its date (YYYY-MM-DD). *before = 0 when nothing was pruned or
 * the store has no prune table. WR_FATAL/WR_RETRY on SQL errors.
 */
WrStatus verify_prune_anchor(PGconn *conn, const char *qschema, int64_t *before, uint8_t anchor[32], char *pruned_on,
                             size_t pruned_on_size, WrError *err) WR_MUSTCHECK;

#endif
