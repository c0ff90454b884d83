/*
 * store_sql.c — renders the embedded history-store DDL (schema/sql/history.sql,
 * compiled in by schema/CMakeLists.txt) for a schema name, and quotes
 * identifiers the way PostgreSQL's quote_ident does. Pure string work: it
 * never connects and never logs.
 */
#include "schema/store_sql.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

extern const char schema_sql_history[];
extern const char schema_sql_table_log[];

/*
 * Keywords that cannot be used as a bare identifier in every position
 * (PostgreSQL's reserved, type/function-name and column-name keywords).
 * Quoting a word that did not need it is harmless; missing one is not, so
 * the list errs on the side of quoting.
 */
static const char *const quoted_keywords[] = {
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_object",
    "json_objectagg",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
};

static bool needs_quotes(const char *ident)
{
    if (!ident[0]) return true;
    if (!((ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_')) return true;
    for (const char *p = ident; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return true;
    }
    for (size_t i = 0; i < sizeof(quoted_keywords) / sizeof(quoted_keywords[0]); i++)
        if (strcmp(ident, quoted_keywords[i]) == 0) return true;
    return false;
}

char *store_quote_ident(const char *ident)
{
    StrBuf b;
    strbuf_init(&b);
    if (!needs_quotes(ident)) {
        strbuf_append_str(&b, ident);
        return b.data;
    }
    strbuf_append_char(&b, '"');
    for (const char *p = ident; *p; p++) {
        if (*p == '"') strbuf_append_char(&b, '"');
        strbuf_append_char(&b, *p);
    }
    strbuf_append_char(&b, '"');
    return b.data;
}

char *store_sql_render(const char *schema)
{
    static const char marker[] = "@schema@";
    char *q = store_quote_ident(schema);
    StrBuf b;
    strbuf_init(&b);
    const char *p = schema_sql_history;
    for (;;) {
        const char *m = strstr(p, marker);
        if (!m) break;
        strbuf_append(&b, p, (size_t)(m - p));
        strbuf_append_str(&b, q);
        p = m + sizeof(marker) - 1;
    }
    strbuf_append_str(&b, p);
    free(q);
    return b.data;
}

/* s as a standard-conforming SQL string literal ('it''s'). */
static void append_literal(StrBuf *b, const char *s)
{
    strbuf_append_char(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\'') strbuf_append_char(b, '\'');
        strbuf_append_char(b, *p);
    }
    strbuf_append_char(b, '\'');
}

char *store_sql_render_table_log(const char *schema, const char *publication)
{
    char *q = store_quote_ident(schema);
    StrBuf lit_schema, lit_pub, b;
    strbuf_init(&lit_schema);
    strbuf_init(&lit_pub);
    strbuf_init(&b);
    append_literal(&lit_schema, schema);
    append_literal(&lit_pub, publication);
    /* longest marker first: "@schema@" is a prefix of nothing else, but keep the order explicit */
    static const struct {
        const char *marker;
        int which;
    } markers[] = {{"@schema_literal@", 1}, {"@schema@", 0}, {"@publication@", 2}};
    const char *p = schema_sql_table_log;
    while (*p) {
        const char *best = NULL;
        int which = -1;
        size_t mlen = 0;
        for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
            const char *m = strstr(p, markers[i].marker);
            if (m && (!best || m < best)) {
                best = m;
                which = markers[i].which;
                mlen = strlen(markers[i].marker);
            }
        }
        if (!best) break;
        strbuf_append(&b, p, (size_t)(best - p));
        strbuf_append_str(&b, which == 0 ? q : which == 1 ? lit_schema.data : lit_pub.data);
        p = best + mlen;
    }
    strbuf_append_str(&b, p);
    free(q);
    strbuf_free(&lit_schema);
    strbuf_free(&lit_pub);
    return b.data;
}
