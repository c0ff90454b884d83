/*
 * testsupport.h — helpers shared by the C tests: the throwaway cluster's
 * conninfo (started by the pg.start CTest fixture), a fresh database per test,
 * SQL helpers that fail the test with the server's message, and running the
 * walrev binary.
 */
#ifndef WALREV_TESTSUPPORT_H
#define WALREV_TESTSUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libpq-fe.h>

/* Conninfo of database dbname on the test cluster; static buffer. Skips the test if no cluster. */
const char *ts_conninfo(const char *dbname);
/* Drop and create database dbname; returns its conninfo (static buffer). */
const char *ts_fresh_database(const char *dbname);
/* Connect or fail the test. Caller PQfinish()es. */
PGconn *ts_connect(const char *conninfo);
/* Run SQL (several statements allowed) or fail the test with the server's message. */
void ts_exec(PGconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run a query returning one value; returns a malloc'd string (NULL for SQL NULL). Caller frees. */
char *ts_query_value(PGconn *conn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run a command through /bin/sh; returns its exit status. Output captured into *out if not NULL (caller frees). */
int ts_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Path of the walrev binary under test. */
const char *ts_walrev_bin(void);
/* Read a whole file; caller frees; NULL if missing. */
char *ts_read_file(const char *path, size_t *len);

#endif
