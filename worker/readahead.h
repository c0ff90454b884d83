/*
 * readahead.h — replication messages received but not yet handled, in order.
 * The worker drains what the socket already holds into this queue before
 * handling any of it, so it can see which old images the coming changes need
 * and ask the history store for all of them in one round trip. Messages are
 * copied in; a popped message stays valid until the next push or clear.
 */
#ifndef WALREV_WORKER_READAHEAD_H
#define WALREV_WORKER_READAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
