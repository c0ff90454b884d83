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
