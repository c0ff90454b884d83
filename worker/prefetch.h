/*
 * prefetch.h — batched old-image lookups for messages read ahead. Under
 * REPLICA IDENTITY DEFAULT an UPDATE or DELETE carries no old row; when the
 * row is not in the row cache, its old image comes from the history store,
 * one round trip per change if asked one change at a time. Before the worker
 * handles a run of queued messages, this asks the store for every such image
 * the run will need, one statement per table (sink prefetch_rows), and puts
 * them in the row cache; handling then finds them there. What is emitted does
 * not change, only how many round trips it takes.
 */
#ifndef WALREV_WORKER_PREFETCH_H
#define WALREV_WORKER_PREFETCH_H

#include "decoder/assembler.h"
#include "decoder/pgoutput.h"
#include "sink/sink.h"
#include "worker/readahead.h"

/* At most this many keys go into one statement; more make several. */
#define PREFETCH_MAX_KEYS 512

/*
 * Scan the queued messages (stream order, after everything the assembler has
 * handled) and prefetch the old images they need from history (a sink with
 * prefetch_rows). parser is the stream's, copied, not changed. A message that
 * does not parse ends the scan: handling it reports the error. *fetched gets
 * the number of keys asked for.
 */
WrStatus prefetch_old_images(const ReadAhead *q, const PgoParser *parser, Assembler *a, Sink *history,
                             size_t *fetched, WrError *err) WR_MUSTCHECK;

#endif
