/*
 * capture.c — what setup installs on the source so that the WAL says what
 * pgoutput does not: the DDL capture and table rewrite event triggers
 * (renames, generated columns, values changed outside the WAL), the table
 * log (existence and partitions over time), the trigger that publishes new
 * schemas, and the report of unlogged tables.
 */
#include "setup/steps.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/store_sql.h"

/* ---- DDL capture: exact renames, generated columns ---- */

/*
 * pgoutput's Relation message names columns but does not identify them, so
 * a RENAME COLUMN looks like DROP + ADD, and it never mentions STORED
 * generated columns. This event trigger writes, in the DDL's own transaction
 * (so in WAL order), each created or altered table's columns with their
 * attnums and its generated columns' expressions into <schema>.ddl_capture.
 * That table is walrev's: owned by the role running setup, no privilege for
 * anyone else, written only through this SECURITY DEFINER function; its rows
 * reach the worker through the slot like any change, and the worker takes
 * column identities from nowhere else (a logical message under walrev's
 * prefix, which any user can emit, is only ever a warning). The worker
 * reads the rows from the WAL, so deleting old rows is harmless.
 */
static const char ddl_capture_table_fmt[] =
    "CREATE TABLE IF NOT EXISTS @s@.ddl_capture ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " captured_at timestamptz NOT NULL DEFAULT now(),"
    " relid oid NOT NULL,"
    " info jsonb NOT NULL);"
    " REVOKE ALL ON @s@.ddl_capture FROM PUBLIC;"
    " COMMENT ON TABLE @s@.ddl_capture IS 'walrev: column identities after each CREATE/ALTER TABLE, written by"
    " the DDL capture event trigger and read by walrev run from the WAL (docs/history-store.md)'";

/*
 * Values the capture reads (a missing value, a rewrite's filled-in constant
 * and rows) must print as the walsender prints them: a regclass, regtype,
 * regproc ... names its object schema-qualified only where the schema is
 * not on the search_path, and the walsender's is the server's default, not
 * the function's pg_catalog. USER_PATH sets the session's default behind
 * pg_catalog for a statement whose every name is qualified (pg_catalog
 * first: no user object shadows a built-in one); FUNCTION_PATH sets the
 * function's own back before anything else runs (its SET clause restores
 * it at exit too).
 */
#define USER_PATH                                                                                   \
    " PERFORM pg_catalog.set_config('search_path', 'pg_catalog' || coalesce(', ' || (SELECT"        \
    " NULLIF(g.reset_val, '') FROM pg_catalog.pg_settings g"                                        \
    " WHERE g.name OPERATOR(pg_catalog.=) 'search_path'), ''), true);"
#define FUNCTION_PATH " PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);"

/* @s@: the quoted schema, @p@: the publication's name as a literal. Compared with prosrc on later runs. */
static const char *ddl_capture_body_fmt =
    " DECLARE r record; q text; fills jsonb; miss jsonb; fa record; nd bigint; fv text; rw text; drops oid[]; tys oid[];"
    " retext boolean := false; rt pg_catalog.tid; rts pg_catalog.tid[]; rejoined oid[] := '{}'; BEGIN"
    /* tables that rejoined the publication after leaving it (the table log's
     * publication_rejoined, when installed): logical decoding saw none of
     * their changes while they were out, so their history begins again here,
     * with the rows they have now, as a table SET LOGGED does (logged_row) */
    " IF TG_EVENT = 'ddl_command_end' AND TG_TAG IN ('ALTER PUBLICATION', 'CREATE PUBLICATION', 'ALTER TABLE')"
    "   AND EXISTS (SELECT 1"
    "   FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    "   WHERE p.proname = 'publication_rejoined' AND n.nspname = @h@) THEN"
    "   rejoined := @s@.publication_rejoined();"
    "   PERFORM pg_catalog.set_config('walrev.logged_' || c.oid::pg_catalog.text, 'y', true)"
    "     FROM pg_catalog.pg_class c WHERE c.oid = ANY (rejoined) AND c.relkind = 'r' AND c.relpersistence = 'p';"
    " END IF;"
    /* sql_drop (walrev_capture_drop): a DROP DOMAIN, TYPE, FUNCTION, COLLATION,
     * ... CASCADE that dropped columns of tables that remain (no ALTER TABLE
     * names them: it is captured at its ddl_command_end) */
    " IF TG_EVENT = 'sql_drop' THEN"
    "   IF TG_TAG = 'ALTER TABLE' THEN RETURN; END IF;"
    "   drops := ARRAY(SELECT DISTINCT o.objid FROM pg_catalog.pg_event_trigger_dropped_objects() o"
    "     WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND o.object_type = 'table column'"
    "     AND NOT o.is_temporary);"
    /* a DROP INDEX (or a DROP ... CASCADE) of a table's replica identity
     * index under USING INDEX: no ALTER TABLE names the table, and once it
     * has no index left VACUUM and ANALYZE make pgoutput mark no key even in
     * the transactions from before the drop. The tables of the dropped
     * index's schema left under USING INDEX without one are captured here,
     * at the drop (the worker takes their key from nowhere else) */
    "   drops := drops || ARRAY(SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relreplident = 'i'"
    "     AND c.relkind = 'r' AND c.relnamespace IN (SELECT n.oid FROM pg_catalog.pg_namespace n"
    "       JOIN pg_catalog.pg_event_trigger_dropped_objects() o ON o.schema_name = n.nspname"
    "       WHERE o.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND o.object_type = 'index'"
    "       AND NOT o.is_temporary)"
    "     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident));"
    " END IF;"
    /* ALTER TYPE, and ALTER TABLE ADD/DROP of a table whose row type is a
     * column's type elsewhere: the types the command altered (a composite
     * type and a table are named by their pg_class row) */
    " IF TG_EVENT = 'ddl_command_end' AND (TG_TAG = 'ALTER TYPE' OR (TG_TAG = 'ALTER TABLE'"
    "   AND pg_catalog.current_query() ~* '\\y(add|drop)\\y')) THEN"
    "   tys := ARRAY(SELECT CASE WHEN d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass THEN d.objid"
    "     ELSE (SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.oid = d.objid) END"
    "     FROM pg_catalog.pg_event_trigger_ddl_commands() d"
    "     WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass OR (d.classid = 'pg_catalog.pg_class'::"
    "pg_catalog.regclass AND d.object_type IN ('composite type', 'table', 'table column')));"
    /* RENAME VALUE (an enum's label), ADD, DROP or ALTER ATTRIBUTE (a
     * composite's fields), a column added to or dropped from a table used as
     * a row type: every value of the type reads differently now, and of
     * every type built on it, and no row change says so */
    "   retext := TG_TAG = 'ALTER TABLE' OR pg_catalog.current_query() ~*"
    "     '\\y(rename\\s+value|(add|drop|alter)\\s+attribute)\\y';"
    " END IF;"
    /* the tables the command names, and the partitions of a partitioned one and
     * the INHERITS children of a parent, at any depth (an ALTER of a parent
     * changes them too, and is reported for the parent only) */
    " FOR r IN SELECT x.objid, pg_catalog.bool_or(x.created) AS created,"
    " pg_catalog.bool_or(x.dep) AS dep FROM ("
    "   SELECT d.objid, d.command_tag = 'CREATE TABLE' AS created, false AS dep"
    "   FROM pg_catalog.pg_event_trigger_ddl_commands() d"
    "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.object_type IN ('table', 'table column')"
    "   UNION ALL"
    "   SELECT t.relid::pg_catalog.oid, false, false FROM pg_catalog.pg_event_trigger_ddl_commands() d,"
    "     pg_catalog.pg_partition_tree(d.objid) t"
    "   WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.object_type IN ('table', 'table column')"
    "     AND t.relid::pg_catalog.oid <> d.objid"
    "   UNION ALL SELECT u, false, false FROM pg_catalog.unnest(drops) u"
    "   UNION ALL SELECT u, false, false FROM pg_catalog.unnest(rejoined) u"
    "   UNION ALL SELECT u, false, false FROM pg_catalog.unnest(ARRAY(WITH RECURSIVE b(o) AS ("
    "     SELECT i.inhrelid FROM pg_catalog.pg_event_trigger_ddl_commands() d JOIN pg_catalog.pg_inherits i"
    "     ON i.inhparent = d.objid WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    "     AND d.object_type IN ('table', 'table column') AND TG_EVENT = 'ddl_command_end'"
    "     UNION SELECT i.inhrelid FROM b JOIN pg_catalog.pg_inherits i ON i.inhparent = b.o) SELECT o FROM b)) u"
    /* the tables with a column of an altered type, or of a type built on it
     * (its array, a domain over it, a composite or row type with a field of
     * it, a range of it), at any depth */
    "   UNION ALL SELECT DISTINCT c.oid, false, true FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c"
    "     ON c.oid = a.attrelid WHERE tys IS NOT NULL AND c.relkind IN ('r', 'p') AND a.attnum > 0"
    "     AND NOT a.attisdropped AND a.atttypid = ANY (ARRAY(WITH RECURSIVE e(base, dep) AS ("
    "       SELECT t.typelem, t.oid FROM pg_catalog.pg_type t WHERE t.typelem <> 0"
    "       UNION ALL SELECT t.typbasetype, t.oid FROM pg_catalog.pg_type t WHERE t.typbasetype <> 0"
    "       UNION ALL SELECT a2.atttypid, c2.reltype FROM pg_catalog.pg_attribute a2 JOIN pg_catalog.pg_class c2"
    "         ON c2.oid = a2.attrelid WHERE c2.reltype <> 0 AND a2.attnum > 0 AND NOT a2.attisdropped"
    "       UNION ALL SELECT g.rngsubtype, g.rngtypid FROM pg_catalog.pg_range g"
    "       UNION ALL SELECT g.rngtypid, g.rngmultitypid FROM pg_catalog.pg_range g),"
    "     ty(o) AS (SELECT u FROM pg_catalog.unnest(tys) u UNION SELECT e.dep FROM ty JOIN e ON e.base = ty.o)"
    "     SELECT o FROM ty))"
    /* the typed tables made OF an altered type (a DROP ATTRIBUTE ... CASCADE
     * drops their column; no ALTER TABLE names them) */
    "   UNION ALL SELECT c.oid, false, false FROM pg_catalog.pg_class c"
    "     WHERE c.reloftype = ANY (tys) AND c.relkind IN ('r', 'p')) x"
    "   GROUP BY x.objid LOOP"
    /* a rewrite that filled in defaults (walrev_capture_rewrite marked it):
     * a domain's default is no column default and no missing value, and a
     * rewrite keeps no missing value for any column it adds (a constant
     * default next to a generated column or a volatile default is in
     * neither the WAL nor the catalog), so what the rows that were there now
     * hold is read back from the table: one value in all of them is what
     * each holds; differing ones (a volatile default, an identity) are not
     * knowable. Columns that were there before are read too (the worker
     * uses this only for columns new to it). */
    "   fills := NULL;"
    "   IF pg_catalog.current_setting('walrev.filled_' || r.objid::pg_catalog.text, true) = 'y'"
    /* a retype's rewrite keeps no missing value for a column added in the same command either */
    "     OR pg_catalog.current_setting('walrev.retyped_' || r.objid::pg_catalog.text, true) = 'y' THEN"
    "     PERFORM pg_catalog.set_config('walrev.filled_' || r.objid::pg_catalog.text, '', true);"
    "     FOR fa IN SELECT a.attnum, a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t"
    "       ON t.oid = a.atttypid WHERE a.attrelid = r.objid AND a.attnum > 0"
    "       AND NOT a.attisdropped AND NOT a.atthasmissing AND a.attgenerated = ''"
    "       AND (t.typtype = 'd' OR a.atthasdef OR a.attidentity <> '') LOOP"
    /* format() makes '' of a NULL: a NULL stays one (a domain without a
     * default over rows that were there fills in NULL, not '') */
    "       " USER_PATH
    "       EXECUTE pg_catalog.format('SELECT pg_catalog.count(DISTINCT v) + pg_catalog.max((v IS NULL)::pg_catalog.int4),"
    " pg_catalog.min(v) FROM"
    " (SELECT CASE WHEN pg_catalog.num_nulls(%1$I) = 1 THEN NULL ELSE pg_catalog.format(''%%s'', %1$I) END AS v"
    " FROM ONLY %2$s) x', fa.attname, r.objid::pg_catalog.regclass)"
    "         INTO nd, fv;"
    "       " FUNCTION_PATH
    "       fills := coalesce(fills, '{}') || pg_catalog.jsonb_build_object(fa.attnum::pg_catalog.text,"
    "         CASE WHEN nd > 1 THEN '{\"varying\": true}'::pg_catalog.jsonb"
    "         ELSE pg_catalog.jsonb_build_object('v', fv) END);"
    "     END LOOP;"
    "   END IF;"
    /* values the rewrite computed row by row (a volatile default or identity
     * over rows that differ, an ALTER TYPE ... USING): the rows follow the
     * shape (rewrite_row, below), so the worker records what each holds */
    "   rw := NULL;"
    "   IF pg_catalog.current_setting('walrev.retyped_' || r.objid::pg_catalog.text, true) = 'y' THEN"
    "     PERFORM pg_catalog.set_config('walrev.retyped_' || r.objid::pg_catalog.text, '', true);"
    "     IF pg_catalog.current_query() ~* '\\yusing\\y' THEN rw := 'rewrite_row'; END IF;"
    "   END IF;"
    "   IF EXISTS (SELECT 1 FROM pg_catalog.jsonb_each(fills) e WHERE e.value ? 'varying') THEN"
    "     rw := 'rewrite_row'; END IF;"
    /* ALTER COLUMN ... DROP EXPRESSION: a STORED generated column becomes an
     * ordinary one that keeps the values it had, which the WAL never carried
     * (pgoutput leaves generated columns out): the rows follow as well */
    "   IF TG_EVENT = 'ddl_command_end' AND NOT r.created"
    "     AND pg_catalog.current_query() ~* '\\ydrop\\s+expression\\y' THEN rw := 'rewrite_row'; END IF;"
    /* values that read differently now (retext, above): the rows follow */
    "   IF retext AND (r.dep OR TG_TAG = 'ALTER TYPE') THEN rw := 'rewrite_row'; END IF;"
    /* the catalog's missing values, each in its type's text (read with the
     * session's search_path behind pg_catalog, USER_PATH) */
    "   " USER_PATH
    "   SELECT pg_catalog.jsonb_object_agg(a.attnum::pg_catalog.text,"
    "     (a.attmissingval::pg_catalog.text::pg_catalog.text[])[1]) INTO miss"
    "     FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) r.objid AND a.atthasmissing;"
    "   " FUNCTION_PATH
    "   INSERT INTO @s@.ddl_capture (relid, info)"
    "   SELECT c.oid, pg_catalog.jsonb_build_object('relid', c.oid::pg_catalog.int8,"
    "     'nspname', n.nspname, 'relname', c.relname, 'persistence', c.relpersistence, 'kind', c.relkind,"
    "     'replident', c.relreplident,"
    "     'attrs', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attnum, a.attname,"
    "        a.atttypid::pg_catalog.int8, a.atttypmod,"
    "        CASE WHEN a.atttypid >= 10000 THEN (SELECT CASE WHEN tn.nspname = 'pg_catalog' THEN t.typname::text"
    "          ELSE tn.nspname || '.' || t.typname END FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace tn"
    "          ON tn.oid = t.typnamespace WHERE t.oid = a.atttypid) END,"
    "        a.attnum = ANY (coalesce((SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i"
    "          WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary"
    "          WHEN 'i' THEN i.indisreplident ELSE false END LIMIT 1), '{}')),"
    "        a.attnum = ANY (coalesce((SELECT i.indkey::pg_catalog.int2[] FROM pg_catalog.pg_index i"
    "          WHERE i.indrelid = c.oid AND i.indisprimary), '{}')),"
    "        a.attgenerated <> '',"
    /* what rows that predate an ADD COLUMN read: the catalog's missing value (a
     * non-volatile default, never in the WAL), or whether the column has a
     * default or identity the rewrite filled in (volatile: not knowable) */
    "        CASE WHEN a.atthasmissing THEN miss ->> a.attnum::pg_catalog.text"
    "          ELSE fills -> a.attnum::pg_catalog.text ->> 'v' END,"
    "        (a.atthasmissing IS NOT TRUE AND (a.atthasdef OR a.attidentity <> '')"
    "          AND NOT coalesce(fills ? a.attnum::pg_catalog.text, false))"
    "          OR fills -> a.attnum::pg_catalog.text ? 'varying') ORDER BY a.attnum), '[]')"
    " FROM pg_catalog.pg_attribute a"
    "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
    "     'timezone', pg_catalog.current_setting('TimeZone'),"
    "     'created', r.created,"
    "     'logged_now', c.relpersistence = 'p' AND"
    "        pg_catalog.current_setting('walrev.logged_' || c.oid::pg_catalog.text, true) = 'y',"
    "     'using', pg_catalog.current_query() ~* '\\yusing\\y',"
    "     'rewrite_rows', rw IS NOT NULL AND c.relpersistence = 'p',"
    /* a key column the statement names may be one a USING rewrote */
    "     'key_named', EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a"
    "        ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::pg_catalog.int2[])"
    "        WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident) AND pg_catalog.current_query() ~*"
    "        ('\\y' || pg_catalog.regexp_replace(a.attname, '([^[:alnum:]_])', '\\\\\\1', 'g') || '\\y')),"
    "     'published', EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables pt WHERE pt.pubname = @p@"
    "        AND pt.schemaname = n.nspname AND pt.tablename = c.relname),"
    /* published through its root (publish_via_partition_root): named as such, not as unpublished */
    "     'via_root', c.relispartition AND EXISTS (SELECT 1 FROM pg_catalog.pg_publication p"
    "        WHERE p.pubname = @p@ AND p.pubviaroot),"
    /* a schema `snapshot --into` made (STORE_INTO_SCHEMA_MARK): never tracked, by design */
    "     'into_schema', pg_catalog.starts_with(coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), ''),"
    "        '" STORE_INTO_SCHEMA_MARK "'),"
    "     'columns', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attnum, a.attname)"
    "        ORDER BY a.attnum), '[]') FROM pg_catalog.pg_attribute a"
    "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
    "     'generated', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(a.attnum, a.attname,"
    "        pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.pg_get_expr(d.adbin, d.adrelid))"
    "        ORDER BY a.attnum), '[]') FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attrdef d"
    "        ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = 's'))"
    "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE c.oid = r.objid AND c.relpersistence <> 't';"
    /* SET LOGGED (walrev_capture_rewrite marked it): the rows it has now, which
     * logical decoding never saw, one row each, in WAL order after the shape,
     * each value in its output function's text (format %s; a cast to text
     * is not that for every type: true::text is 'true', its output 't'):
     * the table's history begins here with them (docs/history-store.md) */
    "   IF (SELECT c.relpersistence FROM pg_catalog.pg_class c WHERE c.oid = r.objid) IS DISTINCT FROM 'p' THEN"
    "     rw := NULL;"
    "   ELSIF pg_catalog.current_setting('walrev.logged_' || r.objid::pg_catalog.text, true) = 'y' THEN"
    "     PERFORM pg_catalog.set_config('walrev.logged_' || r.objid::pg_catalog.text, '', true);"
    "     rw := 'logged_row';"
    "   END IF;"
    /* the same for a rewrite's rows (rewrite_row): they follow the shape that
     * says so. An array literal, not jsonb_build_array: no limit of 100 columns */
    "   IF rw IS NOT NULL THEN"
    "     SELECT pg_catalog.format('INSERT INTO @s@.ddl_capture (relid, info) SELECT %s, pg_catalog.jsonb_build_object("
    "''relid'', %s::pg_catalog.int8, %L, pg_catalog.to_jsonb(ARRAY[%s]::pg_catalog.text[])) FROM ONLY %I.%I',"
    "       c.oid, c.oid, rw, COALESCE(pg_catalog.string_agg(pg_catalog.format("
    "'CASE WHEN pg_catalog.num_nulls(%1$I) = 1 THEN NULL ELSE pg_catalog.format(''%%s'', %1$I) END', a.attname), ', '"
    "       ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), ''), n.nspname, c.relname) INTO q"
    "     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    /* LEFT: a table without a column (CREATE TABLE t (), or only generated
     * ones) has rows too, each an empty array */
    "     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    "       AND a.attgenerated = ''"
    "     WHERE c.oid = r.objid AND c.relpersistence = 'p' AND EXISTS (SELECT 1 FROM"
    "       pg_catalog.pg_publication_tables pt WHERE pt.pubname = @p@ AND pt.schemaname = n.nspname"
    "       AND pt.tablename = c.relname)"
    "     GROUP BY c.oid, n.nspname, c.relname;"
    /* the rows reach the worker through the WAL; the table need not keep
     * them. Deleted by their ctids, a thousand at a time, through a TID
     * scan (seq scans off for it: the planner prefers one on a small
     * table): a scan of ddl_capture would read what concurrent DDL
     * transactions write, and under SERIALIZABLE one of two such
     * transactions would fail where without walrev both commit. A TID scan
     * reads only these rows, which this transaction wrote. Their text is
     * the walsender's: a regclass, regtype, regproc ... prints its name
     * schema-qualified only where the schema is not on the search_path, and
     * the walsender's is the server's default, not the function's
     * pg_catalog. So q (every name in it qualified) runs with the session's
     * default behind pg_catalog: an INSERT ... RETURNING runs whole at the
     * loop's first fetch, and the function's own search_path is back before
     * anything else runs (the SET clause restores it at exit too). */
    "     IF q IS NOT NULL THEN rts := '{}';"
    "       " USER_PATH
    "       FOR rt IN EXECUTE q || ' RETURNING ctid' LOOP"
    "         " FUNCTION_PATH
    "         rts := pg_catalog.array_append(rts, rt);"
    "         CONTINUE WHEN pg_catalog.cardinality(rts) < 1000;"
    "         PERFORM pg_catalog.set_config('enable_seqscan', 'off', true);"
    "         DELETE FROM @s@.ddl_capture WHERE ctid = ANY (rts); rts := '{}';"
    "         PERFORM pg_catalog.set_config('enable_seqscan', 'on', true);"
    "       END LOOP;"
    "       " FUNCTION_PATH
    "       PERFORM pg_catalog.set_config('enable_seqscan', 'off', true);"
    "       DELETE FROM @s@.ddl_capture WHERE ctid = ANY (rts);"
    "       PERFORM pg_catalog.set_config('enable_seqscan', 'on', true);"
    "     END IF;"
    "   END IF;"
    " END LOOP; END ";

/* table_rewrite: marks, for the transaction, a table whose persistence
 * changes (SET LOGGED/UNLOGGED, reason 1), whose rewrite fills in defaults
 * (reason 2) or rewrites a column (ALTER TYPE, reason 4), for capture_ddl at
 * the command's end. */
static const char *ddl_rewrite_body = " BEGIN"
                                      " IF pg_catalog.pg_event_trigger_table_rewrite_reason() & 1 = 1 THEN"
                                      "   PERFORM pg_catalog.set_config('walrev.logged_' || "
                                      "pg_catalog.pg_event_trigger_table_rewrite_oid()::pg_catalog.text,"
                                      "     'y', true);"
                                      " END IF;"
                                      " IF pg_catalog.pg_event_trigger_table_rewrite_reason() & 2 = 2 THEN"
                                      "   PERFORM pg_catalog.set_config('walrev.filled_' || "
                                      "pg_catalog.pg_event_trigger_table_rewrite_oid()::pg_catalog.text,"
                                      "     'y', true);"
                                      " END IF;"
                                      " IF pg_catalog.pg_event_trigger_table_rewrite_reason() & 4 = 4 THEN"
                                      "   PERFORM pg_catalog.set_config('walrev.retyped_' || "
                                      "pg_catalog.pg_event_trigger_table_rewrite_oid()::pg_catalog.text,"
                                      "     'y', true);"
                                      " END IF; END ";

/* tmpl with every @s@ replaced by schema, @p@ by pub and @h@ by hist (each already quoted). */
static void append_with_schema(StrBuf *b, const char *tmpl, const char *schema, const char *pub, const char *hist)
{
    for (const char *p = tmpl; *p;) {
        const char *at = strstr(p, "@");
        size_t n = at ? (size_t)(at - p) : strlen(p);
        strbuf_append(b, p, n);
        if (!at) break;
        const char *with = strncmp(at, "@s@", 3) == 0   ? schema
                           : strncmp(at, "@p@", 3) == 0 ? pub
                           : strncmp(at, "@h@", 3) == 0 ? hist
                                                        : NULL;
        if (with) {
            strbuf_append_str(b, with);
            p = at + 3;
        } else {
            strbuf_append_char(b, '@');
            p = at + 1;
        }
    }
}

/* One of setup's SECURITY DEFINER event triggers on ddl_command_end. */
typedef struct {
    const char *trigger;  /* its name: walrev_capture_ddl */
    const char *function; /* <schema>.function(): capture_ddl */
    const char *tags;     /* the WHEN TAG IN list, quoted; NULL: none */
    const char *event;    /* NULL: ddl_command_end */
    const char *reading;  /* for an error: "reading the DDL capture function" */
    const char *doing;    /* for an error: "installing the DDL capture event trigger" */
    /* A table the function writes: it must exist too (<schema>.table), and
     * table_sql (with @s@) creates it before the function. NULL: none. */
    const char *table;
    const char *table_sql;
} EventTrigger;

/*
 * The settings the functions run under, whatever the DDL's session set: the
 * text they write for values (a filled or missing value, a rewrite's rows)
 * must be the text pgoutput sends, in the walsender's settings (the server's
 * defaults), not in the application's DateStyle (PGDATESTYLE, SET DateStyle
 * 'Postgres': 'Thu Sep 01 12:00:00 2016' for '2016-09-01 12:00:00'). The
 * server defaults assumed are initdb's: docs/tracking.md. TimeZone is left
 * alone: the capture records the session's for casts (a retype under it).
 * enable_seqscan is listed so that the capture's own SET LOCAL of it (for
 * its TID scan) ends with the function, never reaching the application.
 * TRIGGER_SETTINGS_PROCONFIG is how pg_proc.proconfig lists them.
 */
#define TRIGGER_SETTINGS_SQL                                                                                   \
    "SET DateStyle = 'ISO, MDY' SET IntervalStyle = 'postgres' SET extra_float_digits = 1 SET bytea_output = 'hex'" \
    " SET enable_seqscan = on"
#define TRIGGER_SETTINGS_PROCONFIG                                                                              \
    "search_path=pg_catalog, pg_temp,DateStyle=ISO, MDY,IntervalStyle=postgres,extra_float_digits=1,bytea_output=hex" \
    ",enable_seqscan=on"

typedef enum { TRIGGER_FAILED, TRIGGER_CURRENT, TRIGGER_NO_SUPERUSER, TRIGGER_INSTALLED } TriggerOutcome;

/*
 * Install t with body (rendered) unless the function's source, the enabled
 * trigger and the table are already as wanted. Enabled ALWAYS: under
 * session_replication_role = replica an ORIGIN trigger fires for nothing,
 * while the DDL's WAL still reaches the slot (issue 13, external.py on
 * PostgreSQL's event_trigger.sql: tables created so were unknown, and a
 * rewrite's values would be lost). An older ORIGIN one is reinstalled. Without superuser nothing is
 * changed (TRIGGER_NO_SUPERUSER: the caller says what is lost). Replaces an
 * older version in place.
 */
static TriggerOutcome ensure_event_trigger(Setup *s, const EventTrigger *t, const char *schema, const char *body)
{
    StrBuf sql;
    strbuf_init(&sql);
    strbuf_appendf(&sql, "%s.%s()", schema, t->function);
    const char *p[] = {sql.data, t->trigger, s->cfg->history_schema, t->table ? t->table : ""};
    char *src =
        setup_scalar(s, s->src, t->reading,
                     "SELECT coalesce((SELECT prosrc || '|' || array_to_string(proconfig, ',') FROM pg_proc"
                     " WHERE oid = to_regprocedure($1) AND prosecdef), '')"
                     " || '|' || (SELECT count(*) FROM pg_event_trigger WHERE evtname = $2 AND evtenabled = 'A')"
                     " || '|' || ($4 = '' OR to_regclass(format('%I.%I', $3::text, $4::text)) IS NOT NULL)",
                     4, p);
    TriggerOutcome out = TRIGGER_FAILED;
    if (src) {
        StrBuf want;
        strbuf_init(&want);
        strbuf_appendf(&want, "%s|%s|1|true", body, TRIGGER_SETTINGS_PROCONFIG);
        if (strcmp(src, want.data) == 0) {
            out = TRIGGER_CURRENT;
        } else if (!s->superuser) {
            out = TRIGGER_NO_SUPERUSER;
        } else {
            strbuf_reset(&sql);
            if (t->table_sql) {
                strbuf_appendf(&sql, "CREATE SCHEMA IF NOT EXISTS %s; ", schema);
                append_with_schema(&sql, t->table_sql, schema, "", "");
                strbuf_append_str(&sql, "; ");
            }
            strbuf_appendf(&sql,
                           "CREATE OR REPLACE FUNCTION %s.%s() RETURNS event_trigger"
                           " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
                           " " TRIGGER_SETTINGS_SQL " AS $walrev$%s$walrev$;"
                           " REVOKE ALL ON FUNCTION %s.%s() FROM PUBLIC;"
                           " DROP EVENT TRIGGER IF EXISTS %s;"
                           " CREATE EVENT TRIGGER %s ON %s%s%s%s EXECUTE FUNCTION %s.%s();"
                           " ALTER EVENT TRIGGER %s ENABLE ALWAYS",
                           schema, t->function, body, schema, t->function, t->trigger, t->trigger,
                           t->event ? t->event : "ddl_command_end", t->tags ? " WHEN TAG IN (" : "",
                           t->tags ? t->tags : "", t->tags ? ")" : "", schema, t->function, t->trigger);
            if (setup_exec(s, s->src, t->doing, sql.data)) {
                out = TRIGGER_INSTALLED;
                s->changes++;
            }
        }
        strbuf_free(&want);
    }
    free(src);
    strbuf_free(&sql);
    return out;
}

bool setup_ensure_ddl_trigger(Setup *s)
{
    static const EventTrigger t = {
        .trigger = "walrev_capture_ddl",
        .function = "capture_ddl",
        /* ALTER INDEX t RENAME TO renames a table too (PostgreSQL allows it) */
        .tags = "'CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER INDEX', 'ALTER TYPE', "
                "'ALTER PUBLICATION', 'CREATE PUBLICATION'",
        .reading = "reading the DDL capture function",
        .doing = "installing the DDL capture event trigger",
        .table = "ddl_capture",
        .table_sql = ddl_capture_table_fmt,
    };
    char *schema = setup_ident(s->src, s->cfg->history_schema);
    StrBuf body;
    strbuf_init(&body);
    char *pub = PQescapeLiteral(s->src, s->cfg->publication, strlen(s->cfg->publication));
    char *hist = PQescapeLiteral(s->src, s->cfg->history_schema, strlen(s->cfg->history_schema));
    append_with_schema(&body, ddl_capture_body_fmt, schema, pub, hist);
    PQfreemem(pub);
    PQfreemem(hist);
    /* Replaces an older capture (logical messages, which any user can forge) in place. */
    TriggerOutcome out = ensure_event_trigger(s, &t, schema, body.data);
    if (out == TRIGGER_CURRENT)
        setup_say("ok", "DDL capture event trigger and %s.ddl_capture exist (renames keep their history)",
                  s->cfg->history_schema);
    else if (out == TRIGGER_NO_SUPERUSER)
        setup_warn(s, "cannot install the DDL capture event trigger without superuser: a RENAME COLUMN will be "
                      "recorded as a drop and an add, and generated columns are missing from snapshots (run walrev "
                      "setup once as a superuser to fix)");
    else if (out == TRIGGER_INSTALLED)
        setup_say("created",
                  "DDL capture event trigger walrev_capture_ddl writing %s.ddl_capture (renames keep "
                  "their history)",
                  s->cfg->history_schema);
    /* SET LOGGED: marks the table for the capture above (docs/history-store.md#values-changed-outside-the-wal) */
    static const EventTrigger rw = {
        .trigger = "walrev_capture_rewrite",
        .function = "capture_rewrite",
        .event = "table_rewrite",
        .reading = "reading the table rewrite capture function",
        .doing = "installing the table rewrite capture event trigger",
    };
    TriggerOutcome out2 =
        out == TRIGGER_FAILED ? TRIGGER_FAILED : ensure_event_trigger(s, &rw, schema, ddl_rewrite_body);
    /* Columns a DROP DOMAIN/TYPE/FUNCTION ... CASCADE drops (no ALTER TABLE
     * names the table): the same capture on sql_drop, at the drop's point */
    static const EventTrigger dr = {
        .trigger = "walrev_capture_drop",
        .function = "capture_ddl",
        .event = "sql_drop",
        .reading = "reading the DDL capture function",
        .doing = "installing the column drop capture event trigger",
        .table = "ddl_capture",
        .table_sql = ddl_capture_table_fmt,
    };
    TriggerOutcome out3 = out == TRIGGER_FAILED ? TRIGGER_FAILED : ensure_event_trigger(s, &dr, schema, body.data);
    if (out3 == TRIGGER_INSTALLED)
        setup_say("created", "event trigger walrev_capture_drop (columns a DROP ... CASCADE removes are recorded "
                             "at the drop)");
    if (out2 == TRIGGER_NO_SUPERUSER && out != TRIGGER_NO_SUPERUSER)
        setup_warn(s,
                   "cannot install the table rewrite event trigger without superuser: a table made LOGGED starts its "
                   "history only with its baseline (run walrev setup once as a superuser to fix)");
    else if (out2 == TRIGGER_INSTALLED)
        setup_say("created",
                  "table rewrite event trigger walrev_capture_rewrite (a table made LOGGED starts its history "
                  "at the DDL)");
    strbuf_free(&body);
    free(schema);
    return out != TRIGGER_FAILED && out2 != TRIGGER_FAILED && out3 != TRIGGER_FAILED;
}

/* ---- the table log: tables' existence and partition membership over time ---- */

/*
 * schema/sql/table_log.sql on the source: the table_log table and the event
 * triggers that write it (docs/history-store.md#the-table-log). Reinstalled
 * when the rendered SQL differs from what the table's comment records, then
 * seeded with the partition trees that exist now. Needs a superuser (event
 * triggers); without one, an existing installation is kept and a missing
 * one is a warning: replay then knows no partitioned table and no table
 * that was never written.
 */
bool setup_ensure_table_log(Setup *s)
{
    char *sql = store_sql_render_table_log(s->cfg->history_schema, s->cfg->publication);
    char *schema = setup_ident(s->src, s->cfg->history_schema);
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.table_log", schema);
    const char *p[] = {name.data, sql};
    char *state = setup_scalar(s, s->src, "reading the table log's state",
                               "SELECT CASE WHEN to_regclass($1) IS NULL THEN 'missing'"
                               " WHEN obj_description(to_regclass($1), 'pg_class') = 'walrev table log ' || md5($2)"
                               " THEN 'current' ELSE 'old' END",
                               2, p);
    bool ok = state != NULL;
    if (!ok) goto out;
    if (strcmp(state, "current") == 0) {
        setup_say("ok", "table log %s and its event triggers exist (partitions, tables never written)", name.data);
    } else if (!s->superuser) {
        setup_warn(s,
                   "cannot %s the table log %s without superuser (event triggers): partitioned tables and tables "
                   "never written are unknown to replay, and a table that leaves the publication is not recorded, "
                   "so walrev run refuses to start on one not FOR ALL TABLES unless [source] "
                   "allow_unrecorded_leaves = true (run walrev setup once as a superuser to fix)",
                   strcmp(state, "missing") == 0 ? "install" : "update", name.data);
        goto out;
    } else {
        ok = setup_exec(s, s->src, "installing the table log", sql);
        if (ok) {
            /* COMMENT takes no expression: hash first, then mark the installed version */
            const char *pp[] = {sql};
            char *md5 = setup_scalar(s, s->src, "hashing the table log's SQL", "SELECT md5($1)", 1, pp);
            ok = md5 != NULL;
            if (ok) {
                StrBuf c;
                strbuf_init(&c);
                strbuf_appendf(&c, "COMMENT ON TABLE %s IS 'walrev table log %s'", name.data, md5);
                ok = setup_exec(s, s->src, "marking the table log", c.data);
                strbuf_free(&c);
            }
            free(md5);
        }
        if (!ok) goto out;
        setup_say("created",
                  "table log %s and event triggers walrev_log_tables, walrev_schema_tables, walrev_log_drops, "
                  "walrev_log_detach_pending",
                  name.data);
        s->changes++;
    }
out:
    free(state);
    strbuf_free(&name);
    free(schema);
    free(sql);
    return ok;
}

static bool ensure_log_published(Setup *s, const char *table, const char *what);

/* The publication must carry the table log and the erasure log unless it is
 * FOR ALL TABLES (which does already); a schema publication leaves the
 * history schema out. Then the partition trees that exist now are logged. */
bool setup_ensure_table_log_published(Setup *s)
{
    return ensure_log_published(s, "erasure_log", "the erasure log") &&
           ensure_log_published(s, "table_log", "the table log");
}

static bool ensure_log_published(Setup *s, const char *table, const char *what)
{
    char *schema = setup_ident(s->src, s->cfg->history_schema);
    StrBuf name;
    strbuf_init(&name);
    strbuf_appendf(&name, "%s.%s", schema, table);
    bool table_log = strcmp(table, "table_log") == 0;
    const char *p[] = {name.data, s->cfg->publication};
    char check[96], adding[96];
    snprintf(check, sizeof(check), "checking that the publication carries %s", what);
    snprintf(adding, sizeof(adding), "adding %s to the publication", what);
    char *state = setup_scalar(s, s->src, check,
                               "SELECT CASE WHEN to_regclass($1) IS NULL THEN 'missing'"
                               " WHEN EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = $2"
                               "  AND format('%I.%I', t.schemaname, t.tablename)::regclass = to_regclass($1))"
                               " THEN 'published' ELSE 'unpublished' END",
                               2, p);
    bool ok = state != NULL;
    if (ok && strcmp(state, "unpublished") == 0) {
        char *pub = setup_ident(s->src, s->cfg->publication);
        StrBuf sql;
        strbuf_init(&sql);
        strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLE %s", pub, name.data);
        ok = setup_exec(s, s->src, adding, sql.data);
        if (ok) {
            setup_say("changed", "publication %s: added %s %s", s->cfg->publication, what, name.data);
            s->changes++;
        }
        strbuf_free(&sql);
        free(pub);
    }
    /* Seeded once the publication exists: the triggers log only what it covers.
     * Before the slot, so a new slot's baseline holds these rows. */
    if (ok && table_log && s->superuser && strcmp(state, "missing") != 0) {
        StrBuf q;
        strbuf_init(&q);
        strbuf_appendf(&q, "SELECT %s.log_seed()", schema);
        ok = setup_exec(s, s->src, "logging the partition trees that exist now", q.data);
        strbuf_free(&q);
    }
    free(state);
    strbuf_free(&name);
    free(schema);
    return ok;
}

/*
 * Schemas created after setup (issue 13.6): with a publication FOR TABLES IN
 * SCHEMA (setup's choice when the history shares the source database), an
 * event trigger adds each new schema to it in the CREATE SCHEMA's own
 * transaction, so its tables are tracked from their first row with no one
 * running setup again. SECURITY DEFINER: the superuser who ran setup may
 * alter the publication, the role creating the schema need not. A session
 * that sets walrev.publish_new_schema = off (snapshot --into does) is left
 * alone. Publications of other kinds cannot grow this way: `walrev run`
 * names each table it sees created outside them.
 */
static const char *schema_trigger_body_fmt =
    " DECLARE r record; BEGIN"
    " IF pg_catalog.current_setting('walrev.publish_new_schema', true) = 'off' THEN RETURN; END IF;"
    " IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace pn JOIN pg_catalog.pg_publication p"
    "   ON p.oid = pn.pnpubid WHERE p.pubname = @p@) THEN RETURN; END IF;"
    " FOR r IN SELECT n.nspname FROM pg_catalog.pg_event_trigger_ddl_commands() d"
    "   JOIN pg_catalog.pg_namespace n ON n.oid = d.objid"
    "   WHERE d.object_type = 'schema' AND n.nspname <> @h@ AND n.nspname !~ '^pg_' LOOP"
    "   EXECUTE pg_catalog.format('ALTER PUBLICATION %I ADD TABLES IN SCHEMA %I', @p@, r.nspname);"
    " END LOOP; END ";

bool setup_ensure_schema_trigger(Setup *s)
{
    const char *p1[] = {s->cfg->publication};
    char *v = setup_scalar(s, s->src, "reading the publication's kind",
                           "SELECT EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_publication p"
                           " ON p.oid = pn.pnpubid WHERE p.pubname = $1)",
                           1, p1);
    if (!v) return false;
    bool schemas = strcmp(v, "t") == 0;
    free(v);
    if (!schemas) return true; /* FOR ALL TABLES grows by itself; FOR TABLE does not: run warns */
    static const EventTrigger t = {
        .trigger = "walrev_publish_schema",
        .function = "publish_new_schema",
        .tags = "'CREATE SCHEMA'",
        .reading = "reading the schema trigger's function",
        .doing = "installing the event trigger for new schemas",
    };
    char *schema = setup_ident(s->src, s->cfg->history_schema);
    char *pub = PQescapeLiteral(s->src, s->cfg->publication, strlen(s->cfg->publication));
    char *hist = PQescapeLiteral(s->src, s->cfg->history_schema, strlen(s->cfg->history_schema));
    StrBuf body;
    strbuf_init(&body);
    append_with_schema(&body, schema_trigger_body_fmt, schema, pub, hist);
    TriggerOutcome out = ensure_event_trigger(s, &t, schema, body.data);
    if (out == TRIGGER_CURRENT)
        setup_say("ok", "event trigger walrev_publish_schema adds new schemas to publication %s", s->cfg->publication);
    else if (out == TRIGGER_NO_SUPERUSER)
        setup_warn(s,
                   "cannot install the event trigger that adds new schemas to publication %s without superuser: "
                   "a schema created later is not tracked until walrev setup runs again (walrev run names its "
                   "tables)",
                   s->cfg->publication);
    else if (out == TRIGGER_INSTALLED)
        setup_say("created", "event trigger walrev_publish_schema: new schemas join publication %s",
                  s->cfg->publication);
    strbuf_free(&body);
    PQfreemem(pub);
    PQfreemem(hist);
    free(schema);
    return out != TRIGGER_FAILED;
}

/*
 * Unlogged tables (issue 13.7): logical decoding never sees their changes,
 * so no publication carries them. Named here, so no one waits for a history
 * that cannot come; ALTER TABLE ... SET LOGGED later starts one (the worker
 * takes its baseline once the publication has it).
 */
bool setup_report_unlogged(Setup *s)
{
    const char *p[] = {s->cfg->history_schema};
    PGresult *res = setup_run(s, s->src, "listing unlogged tables", untracked_unlogged_sql, 1, p);
    if (!res) return false;
    for (int i = 0; i < PQntuples(res); i++)
        setup_warn(s,
                   "table %s is UNLOGGED: logical decoding cannot capture it, so walrev cannot track it "
                   "(ALTER TABLE %s SET LOGGED starts its history with a baseline)",
                   PQgetvalue(res, i, 0), PQgetvalue(res, i, 0));
    PQclear(res);
    return true;
}

/*
 * The capture table's rows must reach the slot: a publication FOR ALL
 * TABLES has it already; one FOR TABLES IN SCHEMA (which leaves the history
 * schema out) or FOR TABLE gets it added by name.
 */
bool setup_ensure_capture_published(Setup *s)
{
    const char *p[] = {s->cfg->history_schema, s->cfg->publication};
    char *v = setup_scalar(s, s->src, "checking the DDL capture table's publication",
                           "SELECT CASE WHEN to_regclass(format('%I.ddl_capture', $1::text)) IS NULL THEN 'absent'"
                           " WHEN EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $2 AND schemaname = $1"
                           " AND tablename = 'ddl_capture') THEN 'yes' ELSE 'no' END",
                           2, p);
    if (!v) return false;
    bool ok = true;
    if (strcmp(v, "no") == 0) {
        char *pub = setup_ident(s->src, s->cfg->publication), *schema = setup_ident(s->src, s->cfg->history_schema);
        StrBuf sql;
        strbuf_init(&sql);
        strbuf_appendf(&sql, "ALTER PUBLICATION %s ADD TABLE %s.ddl_capture", pub, schema);
        ok = setup_exec(s, s->src, "adding the DDL capture table to the publication", sql.data);
        if (ok) {
            setup_say("changed", "publication %s: added %s.ddl_capture (walrev's DDL capture)", s->cfg->publication,
                      s->cfg->history_schema);
            s->changes++;
        }
        strbuf_free(&sql);
        free(pub);
        free(schema);
    }
    free(v);
    return ok;
}
