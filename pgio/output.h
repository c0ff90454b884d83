/*
 * output.h — the one printer of query results for the CLI: an aligned table
 * (psql's layout, measured in terminal cells, NULL as the caller's text), CSV
 * with a header, or JSON. Used by replay/ and `walrev baseline`; prints only,
 * never queries. Everything here writes to the FILE given and keeps nothing.
 */
#ifndef WALREV_PGIO_OUTPUT_H
#define WALREV_PGIO_OUTPUT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/common.h"

/* --format of every command that prints rows. */
typedef enum { OUT_ALIGNED, OUT_CSV, OUT_JSON } OutFormat;

/* "aligned", "csv" or "json" into *fmt; false for any other name (a usage error). */
bool out_parse_format(const char *name, OutFormat *fmt);

/* Print a result as an aligned table (psql style, "(N rows)"), CSV with a
 * header, or a JSON array. null_text: how aligned output shows NULL (--null;
 * NULL: empty, as psql); CSV writes NULL as an empty unquoted field and ""
 * quoted, JSON as null. res stays the caller's. */
void out_print_result(FILE *f, const PGresult *res, OutFormat fmt, const char *null_text);

/* One row of a result as a JSON object (no newline) appended to b: integers
 * and booleans as JSON numbers and booleans, json/jsonb embedded, NULL null. */
void out_json_row(StrBuf *b, const PGresult *res, int row);

/* The terminal cells UTF-8 text takes in an aligned table: East Asian wide
 * and fullwidth characters two, combining marks and other zero-width ones
 * none, a newline two (printed as \n), a malformed byte one. */
size_t out_display_width(const char *text);

#endif
