/*
 * context.c — walrev.context() JSON with jansson. Tolerant by design: every
 * problem is reported as a warning line and the valid parts are kept.
 */
#include "decoder/context.h"

#include <jansson.h>
#include <string.h>

void context_init(ParsedContext *c)
{
    memset(c, 0, sizeof(*c));
    strbuf_init(&c->actor_type);
    strbuf_init(&c->actor_id);
    strbuf_init(&c->actor_json);
    strbuf_init(&c->description);
    strbuf_init(&c->meta_json);
}

void context_term(ParsedContext *c)
{
    strbuf_free(&c->actor_type);
    strbuf_free(&c->actor_id);
    strbuf_free(&c->actor_json);
    strbuf_free(&c->description);
    strbuf_free(&c->meta_json);
}

static void reset(ParsedContext *c)
{
    strbuf_reset(&c->actor_type);
    strbuf_reset(&c->actor_id);
    strbuf_reset(&c->actor_json);
    strbuf_reset(&c->description);
    strbuf_reset(&c->meta_json);
    c->has_actor_type = c->has_actor_id = c->has_actor_json = c->has_description = c->has_meta = false;
    c->suppress = false;
}

static void dump_into(json_t *v, StrBuf *out)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (s) {
        strbuf_append_str(out, s);
        free(s);
    }
}

/* Scalars become their text; ids are often numbers in applications. */
static bool scalar_text(json_t *v, StrBuf *out)
{
    if (json_is_string(v)) {
        strbuf_append(out, json_string_value(v), json_string_length(v));
        return true;
    }
    if (json_is_integer(v) || json_is_real(v)) {
        dump_into(v, out);
        return true;
    }
    return false;
}

void context_parse(ParsedContext *c, const char *json, size_t len, StrBuf *warnings)
{
    reset(c);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        strbuf_appendf(warnings, "context: invalid JSON at line %d column %d: %s\n", jerr.line,
                       jerr.column, jerr.text);
        return;
    }
    if (!json_is_object(root)) {
        strbuf_append_str(warnings, "context: expected a JSON object\n");
        json_decref(root);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (strcmp(k, "actor") == 0) {
            if (json_is_object(v)) {
                json_t *t = json_object_get(v, "type");
                json_t *id = json_object_get(v, "id");
                if (t && !json_is_null(t)) {
                    if (scalar_text(t, &c->actor_type))
                        c->has_actor_type = true;
                    else
                        strbuf_append_str(warnings, "context: actor.type must be a string\n");
                }
                if (id && !json_is_null(id)) {
                    if (scalar_text(id, &c->actor_id))
                        c->has_actor_id = true;
                    else
                        strbuf_append_str(warnings, "context: actor.id must be a string or number\n");
                }
                dump_into(v, &c->actor_json);
                c->has_actor_json = true;
            } else if (json_is_string(v) || json_is_integer(v)) {
                /* "actor": "42" is a common shorthand: an id without a type. */
                scalar_text(v, &c->actor_id);
                c->has_actor_id = true;
                strbuf_append_str(warnings, "context: actor should be an object {\"type\",\"id\"}\n");
            } else if (!json_is_null(v)) {
                strbuf_append_str(warnings, "context: actor must be an object\n");
            }
        } else if (strcmp(k, "description") == 0) {
            if (json_is_string(v)) {
                strbuf_append(&c->description, json_string_value(v), json_string_length(v));
                c->has_description = true;
            } else if (!json_is_null(v)) {
                strbuf_append_str(warnings, "context: description must be a string\n");
            }
        } else if (strcmp(k, "meta") == 0) {
            dump_into(v, &c->meta_json);
            c->has_meta = true;
        } else if (strcmp(k, "suppress") == 0) {
            if (json_is_boolean(v))
                c->suppress = json_is_true(v);
            else
                strbuf_append_str(warnings, "context: suppress must be a boolean\n");
        } else {
            strbuf_appendf(warnings, "context: unknown field \"%s\" ignored\n", k);
        }
    }
    json_decref(root);
}
