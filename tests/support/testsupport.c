/*
 * testsupport.c — see testsupport.h. Failures call cmocka's fail_msg so the
 * test reports the server's own message.
 */
#include "tests/support/testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char conninfo_buf[1024];

const char *ts_conninfo(const char *dbname)
{
    const char *dir = getenv("WALREV_TEST_PGDIR");
    if (!dir) fail_msg("WALREV_TEST_PGDIR is not set: run integration tests through ctest");
    char path[1024];
    snprintf(path, sizeof(path), "%s/port", dir);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("no test cluster at %s (pg.start fixture failed?)", dir);
    int port = 0;
    if (fscanf(f, "%d", &port) != 1) port = 0;
    fclose(f);
    snprintf(conninfo_buf, sizeof(conninfo_buf), "host=127.0.0.1 port=%d user=postgres dbname=%s", port, dbname);
    return conninfo_buf;
}

/* Server notices ("does not exist, skipping") would clutter test output. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *ts_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) fail_msg("connect %s: %s", conninfo, PQerrorMessage(conn));
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    return conn;
}

/* format(printf, 3, 0): clang checks the callers' formats through it instead of
 * warning -Wformat-nonliteral on the vasprintf. */
static void vexec(PGconn *conn, PGresult **res_out, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void vexec(PGconn *conn, PGresult **res_out, const char *fmt, va_list ap)
{
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0) fail_msg("out of memory");
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("sql failed: %s\n  in: %.500s", PQerrorMessage(conn), sql);
    free(sql);
    if (res_out)
        *res_out = res;
    else
        PQclear(res);
}

void ts_exec(PGconn *conn, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vexec(conn, NULL, fmt, ap);
    va_end(ap);
}

char *ts_query_value(PGconn *conn, const char *fmt, ...)
{
    PGresult *res;
    va_list ap;
    va_start(ap, fmt);
    vexec(conn, &res, fmt, ap);
    va_end(ap);
    if (PQntuples(res) < 1 || PQnfields(res) < 1) fail_msg("query returned no value");
    char *v = PQgetisnull(res, 0, 0) ? NULL : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

const char *ts_fresh_database(const char *dbname)
{
    PGconn *conn = ts_connect(ts_conninfo("postgres"));
    /* Slots pin a database: drop those of a previous run first. */
    ts_exec(conn, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '%s'", dbname);
    ts_exec(conn, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", dbname);
    ts_exec(conn, "CREATE DATABASE \"%s\"", dbname);
    PQfinish(conn);
    return ts_conninfo(dbname);
}

const char *ts_walrev_bin(void)
{
    const char *bin = getenv("WALREV_BIN");
    if (!bin) fail_msg("WALREV_BIN is not set: run through ctest");
    return bin;
}

int ts_run(char **out, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&cmd, fmt, ap) < 0) fail_msg("out of memory");
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p) fail_msg("popen %s failed", cmd);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int status = pclose(p);
    free(cmd);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

char *ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    buf[got] = '\0';
    if (len) *len = got;
    return buf;
}
