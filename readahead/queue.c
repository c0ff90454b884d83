/* queue.c — see readahead.h. One byte buffer and an offset per message;
 * both are reused once every message has been popped. */
#include "readahead/readahead.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"

struct ReadAhead {
    uint8_t *data;
    size_t len, cap;
    size_t *off;  /* start of message i; off[n] == len */
    size_t n, cap_n;
    size_t head;  /* next message to pop */
};

ReadAhead *readahead_create(void)
{
    ReadAhead *q = xcalloc(1, sizeof(*q));
    q->cap_n = 64;
    q->off = xcalloc(q->cap_n + 1, sizeof(size_t));
    return q;
}

void readahead_destroy(ReadAhead *q)
{
    if (!q) return;
    free(q->data);
    free(q->off);
    free(q);
}

void readahead_clear(ReadAhead *q)
{
    q->len = q->n = q->head = 0;
    q->off[0] = 0;
}

void readahead_push(ReadAhead *q, const uint8_t *buf, size_t len)
{
    if (q->head == q->n) readahead_clear(q);
    if (q->len + len > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + len) cap *= 2;
        q->data = xrealloc(q->data, cap);
        q->cap = cap;
    }
    if (q->n == q->cap_n) {
        q->cap_n *= 2;
        q->off = xrealloc(q->off, (q->cap_n + 1) * sizeof(size_t));
    }
    if (len) memcpy(q->data + q->len, buf, len);
    q->len += len;
    q->off[++q->n] = q->len;
}

const uint8_t *readahead_peek(const ReadAhead *q, size_t i, size_t *len)
{
    size_t k = q->head + i;
    if (k >= q->n) {
        *len = 0;
        return NULL;
    }
    *len = q->off[k + 1] - q->off[k];
    return q->data + q->off[k];
}

bool readahead_pop(ReadAhead *q, const uint8_t **buf, size_t *len)
{
    if (q->head == q->n) return false;
    *buf = readahead_peek(q, 0, len);
    q->head++;
    return true;
}

size_t readahead_count(const ReadAhead *q) { return q->n - q->head; }
size_t readahead_bytes(const ReadAhead *q) { return q->len; }
