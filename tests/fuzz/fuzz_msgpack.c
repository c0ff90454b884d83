/*
 * fuzz_msgpack.c — libFuzzer target for the msgpack decoder of `walrev tail`
 * (mpc_decode_json), which reads whatever a Kafka topic or a file-sink file
 * holds. The input is decoded as a stream, message by message, as tail does:
 * every accepted message must consume at least one byte and no more than is
 * there, and its JSON view must serialise.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sink/msgpack_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    size_t off = 0;
    while (off < size) {
        size_t used = 0;
        json_t *j = NULL;
        WrError err;
        WrStatus st = mpc_decode_json(buf + off, size - off, &used, &j, &err);
        if (st != WR_OK) {
            if (j) abort();
            if (st != WR_AGAIN && st != WR_PROTOCOL) abort();
            if (st == WR_PROTOCOL && strlen(err.msg) == 0) abort();
            break;
        }
        if (!j || used == 0 || used > size - off) abort();
        char *text = json_dumps(j, JSON_COMPACT);
        if (!text) abort();
        free(text);
        json_decref(j);
        off += used;
    }
    free(buf);
    return 0;
}
