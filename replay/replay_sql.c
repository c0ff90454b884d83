/*
 * replay_sql.c — renders schema/sql/replay.sql (embedded by schema/CMakeLists
 * as schema_sql_replay[]) for a history schema, the way store_sql_render does
 * for history.sql. Pure: no connection, no I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "replay/replay.h"
#include "schema/store_sql.h"

extern const char schema_sql_replay[];

char *replay_sql_render(const char *schema)
{
    StrBuf q, out;
    strbuf_init(&q);
    strbuf_init(&out);
    /* the one quoter (store_quote_ident): keywords such as "order" are quoted too */
    char *qs = store_quote_ident(schema && *schema ? schema : "walrev");
    strbuf_append_str(&q, qs);
    free(qs);
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
