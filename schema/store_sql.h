/*
 * store_sql.h — the history store's DDL, embedded from schema/sql/, rendered
 * for a given schema name. Pure: no connection.
 */
#ifndef WALREV_SCHEMA_STORE_SQL_H
#define WALREV_SCHEMA_STORE_SQL_H

/* The DDL with @schema@ replaced by the quoted identifier of schema. Caller frees. */
char *store_sql_render(const char *schema);
/*
 * The source side's table log (schema/sql/table_log.sql: the table_log
 * table, its event triggers and functions) for a history schema and a
 * publication. Caller frees.
 */
char *store_sql_render_table_log(const char *schema, const char *publication);
/*
 * The comment `walrev snapshot --into` puts on a schema it creates; `walrev
 * setup` never publishes a schema whose comment starts with it (its tables
 * are the history's own rows, loaded back: recording them would be a loop).
 */
#define STORE_INTO_SCHEMA_MARK "walrev snapshot --into"
#define STORE_INTO_SCHEMA_COMMENT \
    STORE_INTO_SCHEMA_MARK ": tables of the history as of a revision; walrev setup never publishes this schema"

/* schema as a quoted SQL identifier ("walrev" -> walrev or "My Schema"). Caller frees. */
char *store_quote_ident(const char *ident);

#endif
