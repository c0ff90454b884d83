/*
 * replay_sql.c — renders schema/sql/replay.sql (embedded by schema/CMakeLists
 * as schema_sql_replay[]) for a history schema, the way store_sql_render does
 * for history.sql. Pure: no connection, no I/O.
 */
#include <string.h>

#include "common/common.h"
#include "replay/replay.h"

extern const char schema_sql_replay[];

/* quote_ident's rule: lower-case letters, digits and _ not starting with a digit stay bare. */
static void append_quoted_ident(StrBuf *b, const char *ident)
{
    bool plain = ident[0] != '\0' && !(ident[0] >= '0' && ident[0] <= '9');
    for (const char *p = ident; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) plain = false;
    if (plain) {
        strbuf_append_str(b, ident);
        return;
    }
    strbuf_append_char(b, '"');
    for (const char *p = ident; *p; p++) {
        if (*p == '"') strbuf_append_char(b, '"');
        strbuf_append_char(b, *p);
    }
    strbuf_append_char(b, '"');
}

char *replay_sql_render(const char *schema)
{
    StrBuf q, out;
    strbuf_init(&q);
    strbuf_init(&out);
    append_quoted_ident(&q, schema && *schema ? schema : "walrev");
    static const char marker[] = "@schema@";
    const char *p = schema_sql_replay;
    const char *m;
    while ((m = strstr(p, marker)) != NULL) {
        strbuf_append(&out, p, (size_t)(m - p));
        strbuf_append(&out, q.data, q.len);
        p = m + sizeof(marker) - 1;
    }
    strbuf_append_str(&out, p);
    strbuf_free(&q);
    return out.data;
}
