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
/* schema as a quoted SQL identifier ("walrev" -> walrev or "My Schema"). Caller frees. */
char *store_quote_ident(const char *ident);

#endif
