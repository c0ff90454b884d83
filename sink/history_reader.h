/*
 * history_reader.h — reading the history store while it is written: the old
 * row images the assembler needs (one key, or a read-ahead batch of keys of
 * one table), rows of tables without a key by their digest, every live row
 * of a table, and the notes a suppressed change leaves. The reader works on
 * its history sink's connection, inside the sink's open batch, so what the
 * batch has not committed yet counts too. It writes no history.
 *
 * Ownership: a reader belongs to its sink (sink_history_create) and is valid
 * until sink_destroy; it is usable once the sink is open. Images handed to
 * callbacks are valid during the call only.
 * Errors: WR_RETRY when the connection is lost, WR_FATAL otherwise, with the
 * SQLSTATE and the server's first line in err; either leaves the sink's
 * batch unusable until it is aborted, as a write error does. Nothing is
 * logged but the one line when a table's row digests are rebuilt.
 * Blocking: every call may wait on one or a few round trips to the store.
 */
#ifndef WALREV_SINK_HISTORY_READER_H
#define WALREV_SINK_HISTORY_READER_H

#include "schema/history_lookup.h"
#include "sink/sink.h"

typedef struct HistoryReader HistoryReader;

/* The reading side of a history sink; NULL when s is NULL or another sink. */
HistoryReader *history_reader_of(Sink *s);

/*
 * The worker's gate: skips(arg) says the writer does not record the revision
 * in flight (the fan-out skips it for this sink), and then find_row finds
 * nothing, scan_rows gives no rows and note_suppressed notes nothing, as the
 * sink has none of that revision. Old images are answered regardless.
 */
void history_reader_set_gate(HistoryReader *r, bool (*skips)(void *arg), void *arg);

/*
 * The reader as the assembler holds it (ctx is r; every member set). For r
 * NULL, the reader of no history: every member set and knowing nothing (no
 * image found, no row, nothing to note), so the assembler behaves as it does
 * beside a store that has never seen the table.
 */
HistoryLookup history_reader_lookup(HistoryReader *r);

/* HistoryLookup's members, on the history store (schema/history_lookup.h says what each answers). */
WrStatus history_reader_lookup_row(HistoryReader *r, const RelationVersion *rv, const char *key, RowImage *image,
                                   StrBuf *storage, bool *found, WrError *err) WR_MUSTCHECK;
/* Tables with hidden columns or stale marks are left to lookup_row (read key by key). */
WrStatus history_reader_prefetch_rows(HistoryReader *r, const RelationVersion *rv, const char *const *keys, int nkeys,
                                      void (*found)(void *arg, const char *key, const RowImage *image),
                                      void (*absent)(void *arg, const char *key), void *arg, WrError *err) WR_MUSTCHECK;
/* A miss from the stream (exclude NULL) rebuilds the table's row digests once per version and session. */
WrStatus history_reader_find_row(HistoryReader *r, const RelationVersion *rv, const uint8_t digest[DIGEST_LEN],
                                 const char *const *exclude, int nexclude, StrBuf *key, bool *found,
                                 WrError *err) WR_MUSTCHECK;
WrStatus history_reader_note_suppressed(HistoryReader *r, const RelationVersion *rv, DeltaOp op, const char *key,
                                        const uint8_t *row_digest, WrError *err) WR_MUSTCHECK;
/* Sends the open batch's buffers first, so the rows include it. */
WrStatus history_reader_scan_rows(HistoryReader *r, const RelationVersion *rv,
                                  WrStatus (*row)(void *arg, const char *key, const RowImage *image, WrError *err),
                                  void *arg, WrError *err) WR_MUSTCHECK;

/*
 * At start-up: the newest version of every relid the history store at
 * conninfo/schema holds, each handed to restore(arg, rv, max_col_id) (rv
 * valid during the call; max_col_id the highest column id any version of
 * the relid used), on a connection of its own. Every field is read with its
 * own type; a row that does not read back exactly stops the start (never a
 * version under a wrong relid or with guessed columns). Returns WR_OK,
 * WR_RETRY (connection), or WR_FATAL (a row that does not read back) with
 * err naming the relid and version. Blocks on one query.
 */
WrStatus history_reader_load_relations(const char *conninfo, const char *schema,
                                       void (*restore)(void *arg, const RelationVersion *rv, int16_t max_col_id),
                                       void *arg, WrError *err) WR_MUSTCHECK;

#endif
