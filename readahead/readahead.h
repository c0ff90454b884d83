/*
 * readahead.h — reading ahead of the assembler: replication messages
 * received but not yet handled, in order, and the old images the coming
 * changes will need, fetched in batches. Under REPLICA IDENTITY DEFAULT an
 * UPDATE or DELETE carries no old row; when the row is not in the row cache
 * its old image comes from the history, one round trip per change if asked
 * one change at a time. The worker drains what the socket already holds into
 * the queue; before any of it is handled, prefetch_old_images asks the
 * assembler's history reader for every such image, one statement per table,
 * and puts them in the row cache, where handling then finds them. What is
 * emitted does not change, only how many round trips it takes. No I/O of its
 * own, no logging.
 */
#ifndef WALREV_READAHEAD_READAHEAD_H
#define WALREV_READAHEAD_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decoder/assembler.h"
#include "decoder/pgoutput.h"

/* ---- the queue; messages are copied in; a popped message stays valid until the next push or clear ---- */

typedef struct ReadAhead ReadAhead;

ReadAhead *readahead_create(void);
void readahead_destroy(ReadAhead *q);

void readahead_push(ReadAhead *q, const uint8_t *buf, size_t len);
/* The oldest message not popped yet; false when there is none. */
bool readahead_pop(ReadAhead *q, const uint8_t **buf, size_t *len);
/* Message i (0 = oldest not popped) without popping it. */
const uint8_t *readahead_peek(const ReadAhead *q, size_t i, size_t *len);
void readahead_clear(ReadAhead *q);

size_t readahead_count(const ReadAhead *q); /* not popped yet */
size_t readahead_bytes(const ReadAhead *q); /* held, popped ones included until the queue empties */

/* One more message if one is there without waiting: WR_OK with *buf, *len
 * (valid until the next call), WR_AGAIN when none is, else a failure. */
typedef WrStatus (*ReadAheadReceive)(void *arg, const uint8_t **buf, size_t *len, WrError *err);

/*
 * Queue what receive(arg) hands over without waiting, until it has no more
 * or the queue holds max_messages or max_bytes (memory stays bounded with
 * large rows). A failure of receive ends the drain and is kept: readahead_take
 * returns it once the messages before it are handled.
 */
void readahead_drain(ReadAhead *q, ReadAheadReceive receive, void *arg, size_t max_messages, size_t max_bytes);

/*
 * The next thing to handle from the queue: true with *st WR_OK and the
 * oldest message (as readahead_pop), or true with the kept failure in *st
 * and *err (once); false when the queue has nothing: receive from the socket.
 */
bool readahead_take(ReadAhead *q, const uint8_t **buf, size_t *len, WrStatus *st, WrError *err);

/* ---- old images for the queued messages ---- */

/* At most this many keys go into one statement; more make several. */
#define PREFETCH_MAX_KEYS 512

/*
 * Scan the queued messages (stream order, after everything the assembler has
 * handled) and prefetch the old images they need through the assembler's
 * history reader (AssemblerConfig.history; nothing without its prefetch).
 * parser is the stream's, copied, not changed. A message that does not parse
 * ends the scan: handling it reports the error. *fetched gets the number of
 * keys asked for. Errors are the reader's.
 */
WrStatus prefetch_old_images(const ReadAhead *q, const PgoParser *parser, Assembler *a, size_t *fetched,
                             WrError *err) WR_MUSTCHECK;

#endif
