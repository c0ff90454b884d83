/*
 * pg_io.h — two libpq chores the history sink and its keyframe thread share:
 * the one-line text of a failed call, and COPY data sent in bounded chunks.
 */
#ifndef WALREV_SINK_PG_IO_H
#define WALREV_SINK_PG_IO_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/* Run sql (text parameters when nparams > 0); true when it returned
 * COMMAND_OK or TUPLES_OK. *res is set either way; the caller clears it (on
 * failure it carries the error for pg_error_text). */
bool pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res);

/* The server's primary message for a failed call (res may be NULL: then the
 * connection's message), cut to its first line, into msg[size]; *sqlstate
 * points into res (NULL when there is none). */
void pg_error_text(PGconn *conn, const PGresult *res, char *msg, size_t size, const char **sqlstate);

/* Send len bytes of COPY data in chunks of at most 1 MiB (libpq takes an int
 * length); false when libpq refused (the connection's message says why). */
bool pg_copy_put(PGconn *conn, const char *data, size_t len);

#endif
