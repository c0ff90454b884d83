/* queue.c — see readahead.h. One byte buffer and an offset per message;
 * both are reused once every message has been popped. */
#include "readahead/readahead.h"

#include <stdlib.h>
#include <string.h>

#include "common/common.h"

struct ReadAhead {
    uint8_t *data;
    size_t len, cap;
    size_t *off; /* start of message i; off[n] == len */
    size_t n, cap_n;
    size_t head;     /* next message to pop */
    WrStatus failed; /* what ended the last drain, handed on once the queue is empty; WR_OK: nothing */
    WrError failed_err;
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

void readahead_drain(ReadAhead *q, ReadAheadReceive receive, void *arg, size_t max_messages, size_t max_bytes)
{
    while (readahead_count(q) < max_messages && readahead_bytes(q) < max_bytes) {
        const uint8_t *buf;
        size_t len;
        WrStatus st = receive(arg, &buf, &len, &q->failed_err);
        if (st == WR_AGAIN) break;
        if (st != WR_OK) {
            q->failed = st;
            break;
        }
        readahead_push(q, buf, len);
    }
}

bool readahead_take(ReadAhead *q, const uint8_t **buf, size_t *len, WrStatus *st, WrError *err)
{
    *st = WR_OK;
    if (readahead_pop(q, buf, len)) return true;
    if (q->failed == WR_OK) return false;
    *st = q->failed;
    *err = q->failed_err;
    q->failed = WR_OK;
    return true;
}
