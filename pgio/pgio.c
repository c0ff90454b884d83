/* pgio.c — see pgio.h. */
#include "pgio/pgio.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-events.h>

#define COPY_CHUNK ((size_t)1 << 20)

/* ---- the SQLSTATE table ---- */

/* Prefixes, longest match first within each class; a class of two
 * characters covers every code in it. Everything unlisted is fatal. */
static const struct {
    const char *prefix;
    PgioClass cls;
} sqlstate_table[] = {
    /* The connection or the server went away: nothing of ours was wrong. */
    {"08", PGIO_RETRY},    /* connection exception */
    {"57P01", PGIO_RETRY}, /* admin_shutdown */
    {"57P02", PGIO_RETRY}, /* crash_shutdown */
    {"57P03", PGIO_RETRY}, /* cannot_connect_now (starting up, recovery) */
    {"57014", PGIO_RETRY}, /* query_canceled (statement_timeout, an operator's cancel) */
    {"25P03", PGIO_RETRY}, /* idle_in_transaction_session_timeout */
    /* Conflicts another session causes: the same statement succeeds later. */
    {"40001", PGIO_RETRY}, /* serialization_failure */
    {"40P01", PGIO_RETRY}, /* deadlock_detected */
    {"55P03", PGIO_RETRY}, /* lock_not_available */
    {"55006", PGIO_RETRY}, /* object_in_use: the slot is active in another process */
    /* Resources the operator can free (disk full, too many connections, memory). */
    {"53", PGIO_RETRY},    /* insufficient_resources */
    {"58030", PGIO_RETRY}, /* io_error */
    /* What was sent cannot be stored as it is; other data could. */
    {"22", PGIO_DATA}, /* data_exception: invalid text, NUL bytes, out of range */
    {"54", PGIO_DATA}, /* program_limit_exceeded: index row or statement too large */
    /* Explicitly fatal (as every unlisted code), named for the reader. */
    {"28", PGIO_FATAL},    /* invalid_authorization_specification: wrong password, pg_hba */
    {"42501", PGIO_FATAL}, /* insufficient_privilege */
    {"3D", PGIO_FATAL},    /* invalid_catalog_name: no such database */
    {"57P04", PGIO_FATAL}, /* database_dropped */
};

PgioClass pgio_classify_sqlstate(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5) return PGIO_RETRY;
    size_t best = 0;
    PgioClass cls = PGIO_FATAL;
    for (size_t i = 0; i < sizeof(sqlstate_table) / sizeof(sqlstate_table[0]); i++) {
        size_t n = strlen(sqlstate_table[i].prefix);
        if (n > best && strncmp(sqlstate, sqlstate_table[i].prefix, n) == 0) {
            best = n;
            cls = sqlstate_table[i].cls;
        }
    }
    return cls;
}

const char *pgio_class_name(PgioClass c)
{
    switch (c) {
    case PGIO_RETRY: return "retry";
    case PGIO_FATAL: return "fatal";
    case PGIO_DATA: return "data";
    }
    return "unknown";
}

/* ---- per-connection state (libpq instance data) ---- */

typedef struct {
    int reply_timeout_ms; /* 0: unbounded */
    bool timed_out;       /* the last wait hit the timeout and closed the connection */
} ConnState;

static int conn_event(PGEventId id, void *info, void *passthrough)
{
    (void)passthrough;
    if (id == PGEVT_CONNDESTROY) {
        PGEventConnDestroy *e = info;
        free(PQinstanceData(e->conn, conn_event));
    }
    return 1;
}

static ConnState *conn_state(const PGconn *conn) { return conn ? PQinstanceData(conn, conn_event) : NULL; }

bool pgio_timed_out(PGconn *conn)
{
    ConnState *cs = conn_state(conn);
    return cs && cs->timed_out;
}

WrStatus pgio_status(PGconn *conn, const char *sqlstate)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK || pgio_timed_out(conn)) return WR_RETRY;
    return pgio_classify_sqlstate(sqlstate) == PGIO_RETRY ? WR_RETRY : WR_FATAL;
}

/* ---- options ---- */

static PgioOptions options = {5, 30, 10, 3, 10000};

void pgio_options_default(PgioOptions *o)
{
    *o = (PgioOptions){.connect_timeout_s = 5,
                       .keepalives_idle_s = 30,
                       .keepalives_interval_s = 10,
                       .keepalives_count = 3,
                       .reply_timeout_ms = 10000};
}

void pgio_configure(const PgioOptions *o) { options = *o; }

const PgioOptions *pgio_options(void) { return &options; }

/* ---- connect ---- */

static void drop_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void one_line(const char *in, char *out, size_t size)
{
    snprintf(out, size, "%s", in ? in : "");
    out[strcspn(out, "\n")] = '\0';
    size_t n = strlen(out);
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\r')) out[--n] = '\0';
}

/*
 * PGDATESTYLE in walrev's environment reaches the server as a startup
 * parameter of its own, applied after the options' -c switches: the
 * walsender would print dates, timestamps and everything holding them (ranges,
 * arrays, composites) in that style, and the history would keep them so
 * while the baseline and the capture print ISO (issue 13, external.py on
 * PostgreSQL's rangetypes.sql: a tsrange stored as "Sat Jan 02 10:00:00 2010").
 * Both settings are reported by the server; a connection that did not end up
 * with PGIO_TEXT_SETTINGS' values is set to them before anything else runs.
 */
static bool text_settings_hold(PGconn *conn)
{
    const char *ds = PQparameterStatus(conn, "DateStyle"), *is = PQparameterStatus(conn, "IntervalStyle");
    return ds && is && strcmp(ds, "ISO, MDY") == 0 && strcmp(is, "postgres") == 0;
}

static WrStatus force_text_settings(PGconn *conn, const char *what, WrError *err)
{
    if (text_settings_hold(conn)) return WR_OK;
    PGresult *r = PQexec(conn, "SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && text_settings_hold(conn);
    char msg[512];
    one_line(PQerrorMessage(conn), msg, sizeof(msg));
    PQclear(r);
    if (ok) return WR_OK;
    return wr_error_set(err, WR_FATAL, "%s: could not set DateStyle 'ISO, MDY' and IntervalStyle 'postgres': %s", what,
                        msg[0] ? msg : "the server reports other values");
}

WrStatus pgio_connect(const char *conninfo, const PgioConnect *how, PGconn **out, WrError *err)
{
    *out = NULL;
    const PgioOptions *o = &options;
    char ct[16], ka[4], kai[16], kaiv[16], kac[16], tut[24];
    snprintf(ct, sizeof(ct), "%d", o->connect_timeout_s);
    snprintf(ka, sizeof(ka), "%d", o->keepalives_idle_s > 0 ? 1 : 0);
    snprintf(kai, sizeof(kai), "%d", o->keepalives_idle_s);
    snprintf(kaiv, sizeof(kaiv), "%d", o->keepalives_interval_s);
    snprintf(kac, sizeof(kac), "%d", o->keepalives_count);
    /* Unacknowledged data is given up after as long as the keepalives take. */
    long tu = o->keepalives_idle_s > 0
                  ? ((long)o->keepalives_idle_s + (long)o->keepalives_interval_s * o->keepalives_count) * 1000
                  : 0;
    snprintf(tut, sizeof(tut), "%ld", tu);
    /* Ours first: a key the conninfo (expanded from dbname) repeats wins. */
    const char *keys[12], *vals[12];
    int n = 0;
    keys[n] = "connect_timeout", vals[n++] = ct;
    keys[n] = "keepalives", vals[n++] = ka;
    if (o->keepalives_idle_s > 0) {
        keys[n] = "keepalives_idle", vals[n++] = kai;
        keys[n] = "keepalives_interval", vals[n++] = kaiv;
        keys[n] = "keepalives_count", vals[n++] = kac;
        keys[n] = "tcp_user_timeout", vals[n++] = tut;
    }
    /* Values travel as text: the walsender's output, the baseline's COPY and
     * the DDL capture (setup/capture.c, its functions' SET clauses) must all
     * print them alike, whatever DateStyle, IntervalStyle, extra_float_digits
     * or bytea_output the server, the database or the role defaults to. */
    keys[n] = "options", vals[n++] = PGIO_TEXT_SETTINGS;
    keys[n] = "dbname", vals[n++] = conninfo ? conninfo : "";
    keys[n] = "fallback_application_name", vals[n++] = how->app_name ? how->app_name : "walrev";
    if (how->replication) keys[n] = "replication", vals[n++] = "database";
    keys[n] = NULL, vals[n] = NULL;

    const char *what = how->what ? how->what : "database";
    /*
     * libpq exposes no SQLSTATE for a failed connection. Ask the server again
     * with PQping: no response or "rejecting" (starting up, shutting down) is
     * transient; a server that accepts connections refused us for a reason
     * retrying will not fix (password, pg_hba.conf, missing database or role).
     * A server that answers the ping may just have come back (resumed, or
     * restarted while we waited): only a second refusal is one.
     */
    for (int attempt = 0;; attempt++) {
        PGconn *conn = PQconnectdbParams(keys, vals, 1);
        if (!conn) return wr_error_set(err, WR_FATAL, "%s: could not connect: out of memory in libpq", what);
        if (PQstatus(conn) == CONNECTION_OK) {
            PQsetNoticeProcessor(conn, drop_notice, NULL);
            WrStatus set = force_text_settings(conn, what, err);
            if (set != WR_OK) {
                PQfinish(conn);
                return set;
            }
            if (how->bounded && o->reply_timeout_ms > 0) {
                ConnState *cs = xcalloc(1, sizeof(*cs));
                cs->reply_timeout_ms = o->reply_timeout_ms;
                if (!PQregisterEventProc(conn, conn_event, "walrev-pgio", NULL) ||
                    !PQsetInstanceData(conn, conn_event, cs)) {
                    free(cs);
                    PQfinish(conn);
                    return wr_error_set(err, WR_FATAL, "%s: could not register with libpq", what);
                }
            }
            *out = conn;
            return WR_OK;
        }
        char msg[512], where[300];
        one_line(PQerrorMessage(conn), msg, sizeof(msg));
        const char *host = PQhost(conn), *port = PQport(conn), *db = PQdb(conn);
        snprintf(where, sizeof(where), "%s:%s/%s", host && host[0] ? host : "localhost",
                 port && port[0] ? port : "5432", db ? db : "?");
        bool password = PQconnectionUsedPassword(conn) || PQconnectionNeedsPassword(conn);
        PQfinish(conn);
        WrStatus st;
        switch (PQpingParams(keys, vals, 1)) {
        case PQPING_NO_RESPONSE:
        case PQPING_REJECT: st = WR_RETRY; break;
        case PQPING_NO_ATTEMPT: st = WR_INVALID; break;
        default: st = WR_FATAL; break;
        }
        if (st == WR_FATAL && attempt == 0) continue;
        if (st == WR_FATAL)
            return wr_error_set(err, st,
                                "%s: could not connect: %s (at %s; the server refused this login%s; not retrying: "
                                "fix the conninfo, .pgpass or pg_hba.conf)",
                                what, msg, where, password ? ": authentication failed" : "");
        return wr_error_set(err, st, "%s: could not connect: %s (at %s)", what, msg, where);
    }
}

/* ---- statements ---- */

/*
 * Whether the server is alive and still running conn's statement: a second
 * connection (connect_timeout 2 s, conn's own options otherwise) finds conn's
 * backend active. A frozen server (every process stopped) or a lost one
 * accepts no connection, so this is false there and the timeout stands; a
 * long statement of a live server (a scan of a large table's rows inside a
 * big batch, a lock an application holds) is waited for instead of being
 * cut off and retried from the start, which on a loaded machine never ended
 * (issue 13, external.py on PostgreSQL's contrib amcheck: 80,000 keyless rows
 * given a primary key, retried every 10 s for 15 minutes).
 */
static bool backend_busy(PGconn *conn)
{
    PQconninfoOption *opts = PQconninfo(conn);
    if (!opts) return false;
    enum { MAX_KEYS = 64 };
    const char *keys[MAX_KEYS + 2], *vals[MAX_KEYS + 2];
    int n = 0;
    for (PQconninfoOption *o = opts; o->keyword && n < MAX_KEYS; o++) {
        if (!o->val || !o->val[0] || strcmp(o->keyword, "connect_timeout") == 0 ||
            strcmp(o->keyword, "replication") == 0)
            continue;
        keys[n] = o->keyword, vals[n++] = o->val;
    }
    keys[n] = "connect_timeout", vals[n++] = "2";
    keys[n] = NULL, vals[n] = NULL;
    PGconn *probe = PQconnectdbParams(keys, vals, 0);
    bool busy = false;
    if (probe && PQstatus(probe) == CONNECTION_OK) {
        char pid[16];
        snprintf(pid, sizeof(pid), "%d", PQbackendPID(conn));
        const char *p[1] = {pid};
        PGresult *r = PQexecParams(probe,
                                   "SELECT state OPERATOR(pg_catalog.=) 'active' FROM pg_catalog.pg_stat_activity"
                                   " WHERE pid OPERATOR(pg_catalog.=) $1::pg_catalog.int4",
                                   1, NULL, p, NULL, NULL, 0);
        busy = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
    }
    PQfinish(probe);
    PQconninfoFree(opts);
    return busy;
}

/*
 * Wait until a result can be read without blocking. On a bounded connection
 * a wait past the timeout shuts the socket down so libpq sees the connection
 * end (PQstatus becomes bad, the next result is the error), unless the
 * server is alive and still running the statement (backend_busy): then the
 * wait goes on for another timeout.
 */
static void await_ready(PGconn *conn)
{
    ConnState *cs = conn_state(conn);
    if (!cs || cs->reply_timeout_ms <= 0) return; /* PQgetResult blocks */
    cs->timed_out = false;
    int64_t deadline = mono_now_us() + (int64_t)cs->reply_timeout_ms * 1000;
    for (;;) {
        int pending = PQflush(conn);
        if (pending < 0) return;
        if (!pending && !PQisBusy(conn)) return;
        int fd = PQsocket(conn);
        if (fd < 0) return;
        int64_t left = deadline - mono_now_us();
        if (left <= 0 && backend_busy(conn)) {
            deadline = mono_now_us() + (int64_t)cs->reply_timeout_ms * 1000;
            continue;
        }
        if (left <= 0) {
            cs->timed_out = true;
            shutdown(fd, SHUT_RDWR);
            PQconsumeInput(conn); /* reads the end: the connection is now bad */
            return;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (pending ? POLLOUT : 0)};
        int r = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (r < 0 && errno != EINTR) return;
        if (r > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn)) return;
    }
}

PGresult *pgio_get_result(PGconn *conn)
{
    await_ready(conn);
    return PQgetResult(conn);
}

PGresult *pgio_next_row(PGconn *conn, WrStatus *st, const char *what, WrError *err)
{
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(r);
        if (rs == PGRES_SINGLE_TUPLE && *st == WR_OK) return r;
        if (rs != PGRES_SINGLE_TUPLE && rs != PGRES_TUPLES_OK && *st == WR_OK)
            *st = pgio_fail(conn, r, err, "%s", what);
        PQclear(r);
    }
    return NULL;
}

static bool result_ok(const PGresult *res)
{
    ExecStatusType rs = PQresultStatus(res);
    return rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK || rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT ||
           rs == PGRES_COPY_BOTH;
}

/* How a statement is sent: simple protocol, parameters, or a prepared name. */
typedef struct {
    const char *sql; /* or the prepared statement's name */
    bool prepared;
    int nparams;
    const char *const *params;
    int format;          /* result format: 0 text, 1 binary */
    const int *lengths;  /* NULL: every parameter is text */
    const int *pformats; /* NULL: every parameter is text */
} Stmt;

static bool run_stmt(PGconn *conn, const Stmt *q, PGresult **res)
{
    ConnState *cs = conn_state(conn);
    if (!cs || cs->reply_timeout_ms <= 0) {
        if (q->prepared)
            *res = PQexecPrepared(conn, q->sql, q->nparams, q->params, NULL, NULL, q->format);
        else if (q->nparams || q->format)
            *res = PQexecParams(conn, q->sql, q->nparams, NULL, q->params, q->lengths, q->pformats, q->format);
        else
            *res = PQexec(conn, q->sql);
        return result_ok(*res);
    }
    *res = NULL;
    cs->timed_out = false;
    int sent = q->prepared ? PQsendQueryPrepared(conn, q->sql, q->nparams, q->params, NULL, NULL, q->format)
               : q->nparams || q->format
                   ? PQsendQueryParams(conn, q->sql, q->nparams, NULL, q->params, q->lengths, q->pformats, q->format)
                   : PQsendQuery(conn, q->sql);
    if (!sent) return false;
    /* As PQexec: the last result, but an error wins; COPY returns at once. */
    PGresult *r;
    while ((r = pgio_get_result(conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(r);
        if (*res && PQresultStatus(*res) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(*res);
            *res = r;
        }
        if (rs == PGRES_COPY_IN || rs == PGRES_COPY_OUT || rs == PGRES_COPY_BOTH) break;
        if (PQstatus(conn) != CONNECTION_OK) break;
    }
    return *res && result_ok(*res);
}

bool pgio_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res)
{
    Stmt q = {sql, false, nparams, params, 0, NULL, NULL};
    return run_stmt(conn, &q, res);
}

bool pgio_exec_binary(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res)
{
    Stmt q = {sql, false, nparams, params, 1, NULL, NULL};
    return run_stmt(conn, &q, res);
}

bool pgio_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *params, const int *lengths,
                      const int *formats, PGresult **res)
{
    Stmt q = {sql, false, nparams, params, 0, lengths, formats};
    return run_stmt(conn, &q, res);
}

bool pgio_exec_prepared(PGconn *conn, const char *name, int nparams, const char *const *params, int result_format,
                        PGresult **res)
{
    Stmt q = {name, true, nparams, params, result_format, NULL, NULL};
    return run_stmt(conn, &q, res);
}

void pgio_error_text(PGconn *conn, const PGresult *res, char *msg, size_t size, const char **sqlstate)
{
    *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    ConnState *cs = conn_state(conn);
    if (cs && cs->timed_out) {
        snprintf(msg, size, "no reply from the server within %d ms (connection closed)", cs->reply_timeout_ms);
        return;
    }
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    one_line(primary ? primary : conn ? PQerrorMessage(conn) : "no connection", msg, size);
    if (!msg[0]) snprintf(msg, size, "no message");
}

WrStatus pgio_fail(PGconn *conn, const PGresult *res, WrError *err, const char *what, ...)
{
    char w[256], msg[512];
    const char *sqlstate;
    va_list ap;
    va_start(ap, what);
    vsnprintf(w, sizeof(w), what, ap);
    va_end(ap);
    pgio_error_text(conn, res, msg, sizeof(msg), &sqlstate);
    WrStatus st = pgio_status(conn, sqlstate);
    wr_error_set(err, st, "%s failed: SQLSTATE %s: %s", w, sqlstate ? sqlstate : "none", msg);
    if (err && sqlstate) snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
    return st;
}

void pgio_hand_result(PGresult *res, PGresult **out)
{
    if (out)
        *out = res;
    else
        PQclear(res);
}

static WrStatus run_as(bool binary, PGconn *conn, const char *sql, int nparams, const char *const *params,
                       PGresult **out, WrError *err, const char *what)
{
    PGresult *res;
    if (out) *out = NULL;
    bool ok = binary ? pgio_exec_binary(conn, sql, nparams, params, &res) : pgio_exec(conn, sql, nparams, params, &res);
    if (!ok) {
        WrStatus st = pgio_fail(conn, res, err, "%s", what);
        PQclear(res);
        return st;
    }
    pgio_hand_result(res, out);
    return WR_OK;
}

WrStatus pgio_run(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **out, WrError *err,
                  const char *what)
{
    return run_as(false, conn, sql, nparams, params, out, err, what);
}

WrStatus pgio_run_binary(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **out,
                         WrError *err, const char *what)
{
    return run_as(true, conn, sql, nparams, params, out, err, what);
}

void pgio_run_unchecked(PGconn *conn, const char *sql)
{
    PGresult *res;
    (void)pgio_exec(conn, sql, 0, NULL, &res);
    PQclear(res);
}

bool pgio_copy_put(PGconn *conn, const char *data, size_t len)
{
    for (size_t off = 0; off < len; off += COPY_CHUNK) {
        size_t n = len - off < COPY_CHUNK ? len - off : COPY_CHUNK;
        if (PQputCopyData(conn, data + off, (int)n) != 1) return false;
    }
    return true;
}

/* ---- redaction ---- */

/* Settings that identify a server and are safe to show; everything else
 * (password, sslpassword, options that might carry one) is dropped. */
static const char *const redact_keep[] = {"host",
                                          "hostaddr",
                                          "port",
                                          "dbname",
                                          "user",
                                          "service",
                                          "sslmode",
                                          "application_name",
                                          "target_session_attrs",
                                          "replication"};

static void append_conn_value(StrBuf *b, const char *v)
{
    bool plain = v[0] != '\0';
    for (const char *p = v; *p; p++)
        if (*p == ' ' || *p == '\'' || *p == '\\' || *p == '=') plain = false;
    if (plain) {
        strbuf_append_str(b, v);
        return;
    }
    strbuf_append_quoted(b, v, '\'');
}

char *pgio_redact_conninfo(const char *conninfo)
{
    if (!conninfo) return xstrdup("(none)");
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts) return xstrdup("(unparsable conninfo)");
    StrBuf b;
    strbuf_init(&b);
    for (size_t k = 0; k < sizeof(redact_keep) / sizeof(redact_keep[0]); k++) {
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (strcmp(o->keyword, redact_keep[k]) != 0 || !o->val || !o->val[0]) continue;
            if (b.len) strbuf_append_char(&b, ' ');
            strbuf_appendf(&b, "%s=", o->keyword);
            append_conn_value(&b, o->val);
        }
    }
    PQconninfoFree(opts);
    if (b.len == 0) strbuf_append_str(&b, "(defaults)");
    return b.data;
}
