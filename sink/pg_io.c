/* pg_io.c — see pg_io.h. */
#include "sink/pg_io.h"

#include <stdio.h>
#include <string.h>

#define COPY_CHUNK ((size_t)1 << 20)

bool pg_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res)
{
    *res = nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(conn, sql);
    ExecStatusType rs = PQresultStatus(*res);
    return rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK;
}

void pg_error_text(PGconn *conn, const PGresult *res, char *msg, size_t size, const char **sqlstate)
{
    *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    snprintf(msg, size, "%s", primary ? primary : PQerrorMessage(conn));
    msg[strcspn(msg, "\n")] = '\0';
    size_t n = strlen(msg);
    while (n && msg[n - 1] == ' ') msg[--n] = '\0';
}

bool pg_copy_put(PGconn *conn, const char *data, size_t len)
{
    for (size_t off = 0; off < len; off += COPY_CHUNK) {
        size_t n = len - off < COPY_CHUNK ? len - off : COPY_CHUNK;
        if (PQputCopyData(conn, data + off, (int)n) != 1) return false;
    }
    return true;
}
