/*
 * context.h — parsing of walrev.context() messages (internal to the
 * assembler). The JSON carries actor {type, id, ...}, description, meta and
 * suppress; anything else, or invalid JSON, becomes a warning on the revision,
 * never an error: a bad context must not stop history.
 */
#ifndef WALREV_DECODER_CONTEXT_H
#define WALREV_DECODER_CONTEXT_H

#include "common/common.h"

typedef struct {
    StrBuf actor_type;
    StrBuf actor_id;
    StrBuf actor_json;
    StrBuf description;
    StrBuf meta_json;
    bool has_actor_type, has_actor_id, has_actor_json, has_description, has_meta;
    bool suppress;
} ParsedContext;

void context_init(ParsedContext *c);
void context_term(ParsedContext *c);
/* Parse json into c (reset first); problems are appended to warnings (one line each). */
void context_parse(ParsedContext *c, const char *json, size_t len, StrBuf *warnings);

#endif
