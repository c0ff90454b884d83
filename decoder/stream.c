/*
 * stream.c — the replication connection (see stream.h): libpq in logical
 * walsender mode, slot creation, START_REPLICATION, CopyData receive with a
 * poll() timeout, standby status updates and a clean CopyDone. It parses and
 * logs nothing; errors are classified by SQLSTATE and connection status, never
 * by message text, and never carry the password.
 */
#include "decoder/stream.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "decoder/pgoutput.h"
#include "pgio/pgio.h"

/* How long repl_stream_finish waits for the server to end COPY. */
#define FINISH_TIMEOUT_MS 30000

struct ReplStream {
    PGconn *conn;
    char *copybuf;     /* last buffer from PQgetCopyData, freed on the next receive */
    bool streaming;    /* inside COPY BOTH */
    bool server_ended; /* the server sent CopyDone (we are in COPY IN) */
    char where[300];   /* "host:port/dbname", for messages; never the password */
    /* The error the server ended the stream with (its publication dropped,
     * say): a status update the caller sends on its way out repeats it,
     * rather than hiding it behind "not streaming". status WR_OK: none. */
    WrError ended;
};

static ReplStreamOptions options = {.slot_wait_s = 120};

void repl_stream_options_default(ReplStreamOptions *o) { *o = (ReplStreamOptions){.slot_wait_s = 120}; }
void repl_stream_configure(const ReplStreamOptions *o) { options = *o; }

/* ---- errors: classified by pgio's one SQLSTATE table ---- */

/* Copy the connection's message, one line, into out. */
static void conn_message(ReplStream *s, char *out, size_t size)
{
    const char *ignored;
    pgio_error_text(s->conn, NULL, out, size, &ignored);
}

/* Fill err from a failed result (res may be NULL: use the connection's message). */
static WrStatus result_error(ReplStream *s, PGresult *res, const char *what, WrError *err)
{
    const char *state;
    char msg[512];
    pgio_error_text(s->conn, res, msg, sizeof(msg), &state);
    WrStatus st = pgio_status(s->conn, state);
    wr_error_set(err, st, "%s on %s: %s (SQLSTATE %s)", what, s->where, msg, state ? state : "none");
    if (err && state) snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
    return st;
}

static void describe_target(PGconn *conn, char *out, size_t size)
{
    const char *host = PQhost(conn), *port = PQport(conn), *db = PQdb(conn);
    snprintf(out, size, "%s:%s/%s", host && host[0] ? host : "localhost", port && port[0] ? port : "5432",
             db ? db : "?");
}

/* ---- quoting for the replication grammar (no E'' strings there) ---- */

/*
 * The server accepts slot names of lower-case letters, digits and '_' up to
 * 63 bytes, and the replication grammar cannot escape '"' in an identifier:
 * check here so a bad name is the user's error, not a syntax error.
 */
static WrStatus check_slot_name(const ReplStream *s, const char *slot, const char *what, WrError *err)
{
    size_t n = slot ? strlen(slot) : 0;
    if (n == 0) return wr_error_set(err, WR_INVALID, "%s on %s: empty slot name", what, s->where);
    if (n > 63)
        return wr_error_set(err, WR_INVALID, "%s on %s: slot name \"%.80s...\" is longer than 63 bytes", what, s->where,
                            slot);
    for (size_t i = 0; i < n; i++) {
        char c = slot[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return wr_error_set(err, WR_INVALID, "%s on %s: slot name \"%.80s\" may only contain a-z, 0-9 and '_'",
                                what, s->where, slot);
    }
    return WR_OK;
}

static void append_quoted(StrBuf *b, const char *s, char quote)
{
    strbuf_append_char(b, quote);
    for (const char *p = s; *p; p++) {
        if (*p == quote) strbuf_append_char(b, quote);
        strbuf_append_char(b, *p);
    }
    strbuf_append_char(b, quote);
}

/* ---- connect / identify ---- */

WrStatus repl_stream_connect(const char *conninfo, ReplStream **out, WrError *err)
{
    *out = NULL;
    PGconn *conn;
    PgioConnect how = {.what = "source (replication connection)", .app_name = "walrev", .replication = true};
    WrStatus st = pgio_connect(conninfo, &how, &conn, err);
    if (st != WR_OK) return st;
    ReplStream *s = xcalloc(1, sizeof(*s));
    s->conn = conn;
    describe_target(conn, s->where, sizeof(s->where));
    *out = s;
    return WR_OK;
}

void repl_stream_destroy(ReplStream *s)
{
    if (!s) return;
    if (s->copybuf) PQfreemem(s->copybuf);
    PQfinish(s->conn);
    free(s);
}

int repl_stream_socket(const ReplStream *s) { return PQsocket(s->conn); }

/* Run a replication command expecting rows; *res owned by caller on WR_OK. */
static WrStatus exec_tuples(ReplStream *s, const char *sql, const char *what, PGresult **res, WrError *err)
{
    if (s->streaming) return wr_error_set(err, WR_FATAL, "%s on %s: connection is streaming", what, s->where);
    if (pgio_exec(s->conn, sql, 0, NULL, res) && PQresultStatus(*res) == PGRES_TUPLES_OK) return WR_OK;
    WrStatus st = result_error(s, *res, what, err);
    PQclear(*res);
    *res = NULL;
    return st;
}

WrStatus repl_stream_identify(ReplStream *s, ReplSystemInfo *info, WrError *err)
{
    PGresult *res;
    WrStatus st = exec_tuples(s, "IDENTIFY_SYSTEM", "IDENTIFY_SYSTEM", &res, err);
    if (st != WR_OK) return st;
    memset(info, 0, sizeof(*info));
    if (PQntuples(res) != 1 || PQnfields(res) < 4) {
        st = wr_error_set(err, WR_PROTOCOL, "IDENTIFY_SYSTEM on %s: got %d rows and %d fields, want 1 and 4", s->where,
                          PQntuples(res), PQnfields(res));
        goto done;
    }
    char *end = NULL;
    errno = 0;
    info->system_id = strtoull(PQgetvalue(res, 0, 0), &end, 10);
    if (errno || !end || *end) {
        st = wr_error_set(err, WR_PROTOCOL, "IDENTIFY_SYSTEM on %s: bad systemid \"%s\"", s->where,
                          PQgetvalue(res, 0, 0));
        goto done;
    }
    info->timeline = atoi(PQgetvalue(res, 0, 1));
    if (!lsn_parse(PQgetvalue(res, 0, 2), &info->xlogpos)) {
        st = wr_error_set(err, WR_PROTOCOL, "IDENTIFY_SYSTEM on %s: bad xlogpos \"%s\"", s->where,
                          PQgetvalue(res, 0, 2));
        goto done;
    }
    if (!PQgetisnull(res, 0, 3)) snprintf(info->dbname, sizeof(info->dbname), "%s", PQgetvalue(res, 0, 3));
done:
    PQclear(res);
    return st;
}

static WrStatus create_slot(ReplStream *s, const char *slot, bool temporary, bool export_snapshot,
                            Lsn *consistent_point, char *snapshot_name, size_t snapshot_size, bool *exists,
                            WrError *err);

WrStatus repl_stream_create_slot(ReplStream *s, const char *slot, bool export_snapshot, Lsn *consistent_point,
                                 char *snapshot_name, size_t snapshot_size, bool *exists, WrError *err)
{
    return create_slot(s, slot, false, export_snapshot, consistent_point, snapshot_name, snapshot_size, exists, err);
}

WrStatus repl_stream_create_temporary_slot(ReplStream *s, const char *slot, Lsn *consistent_point, char *snapshot_name,
                                           size_t snapshot_size, WrError *err)
{
    bool exists = false;
    WrStatus st = create_slot(s, slot, true, true, consistent_point, snapshot_name, snapshot_size, &exists, err);
    if (st == WR_OK && exists)
        st = wr_error_set(err, WR_FATAL, "CREATE_REPLICATION_SLOT \"%.150s\": a slot of that name exists", slot);
    return st;
}

/*
 * Send sql and wait for its result at most options.slot_wait_s, calling
 * options.waiting about once a second; past that (or when waiting says stop)
 * cancel it and set *gave_up. The last result (NULL when the connection
 * broke) is the caller's to clear.
 */
static PGresult *exec_bounded(ReplStream *s, const char *sql, bool *gave_up)
{
    *gave_up = false;
    if (!PQsendQuery(s->conn, sql)) return NULL;
    int64_t start = mono_now_us();
    while (PQisBusy(s->conn)) {
        bool stop = options.waiting && !options.waiting();
        if (stop || (options.slot_wait_s > 0 && mono_now_us() - start >= (int64_t)options.slot_wait_s * 1000000)) {
            char ignored[256];
            PGcancel *cancel = PQgetCancel(s->conn);
            if (cancel) {
                (void)PQcancel(cancel, ignored, sizeof(ignored));
                PQfreeCancel(cancel);
            }
            *gave_up = true;
            break;
        }
        struct pollfd pfd = {.fd = PQsocket(s->conn), .events = POLLIN};
        int rc = poll(&pfd, 1, 1000);
        if (rc < 0 && errno != EINTR) break;
        if (rc > 0 && !PQconsumeInput(s->conn)) break;
    }
    PGresult *last = NULL, *r;
    while ((r = PQgetResult(s->conn)) != NULL) {
        PQclear(last);
        last = r;
    }
    /* A result that came in just as the wait ended is a slot made after all. */
    if (*gave_up && PQresultStatus(last) == PGRES_TUPLES_OK) *gave_up = false;
    return last;
}

/* The transactions a new slot waits for, one line into out: prepared ones
 * (visible to every role) and the oldest holding an xid (pg_stat_activity
 * shows another role's only to members of pg_read_all_stats). */
static void describe_blockers(ReplStream *s, char *out, size_t size)
{
    static const char sql[] =
        "SELECT coalesce(string_agg(w, '; '), 'transactions this role cannot see (pg_read_all_stats shows them)')"
        " FROM ((SELECT format('prepared transaction %L in database %s by %s since %s', gid, database, owner,"
        "   date_trunc('second', prepared)) AS w FROM pg_prepared_xacts ORDER BY prepared LIMIT 5)"
        " UNION ALL (SELECT format('pid %s (%s) in database %s, in a transaction since %s', pid,"
        "   coalesce(nullif(application_name, ''), usename), datname, date_trunc('second', xact_start))"
        "   FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        "   ORDER BY xact_start LIMIT 5)) b";
    PGresult *res = NULL;
    if (pgio_exec(s->conn, sql, 0, NULL, &res) && PQntuples(res) == 1)
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    else
        snprintf(out, size, "(could not list them)");
    PQclear(res);
}

static WrStatus create_slot(ReplStream *s, const char *slot, bool temporary, bool export_snapshot,
                            Lsn *consistent_point, char *snapshot_name, size_t snapshot_size, bool *exists,
                            WrError *err)
{
    *exists = false;
    *consistent_point = 0;
    if (snapshot_name && snapshot_size) snapshot_name[0] = '\0';
    if (check_slot_name(s, slot, "CREATE_REPLICATION_SLOT", err) != WR_OK) return WR_INVALID;

    StrBuf sql;
    strbuf_init(&sql);
    strbuf_append_str(&sql, "CREATE_REPLICATION_SLOT ");
    append_quoted(&sql, slot, '"');
    strbuf_appendf(&sql, "%s LOGICAL pgoutput (SNAPSHOT '%s')", temporary ? " TEMPORARY" : "",
                   export_snapshot ? "export" : "nothing");
    char what[200];
    snprintf(what, sizeof(what), "CREATE_REPLICATION_SLOT \"%.150s\"", slot);

    bool gave_up = false;
    PGresult *res = exec_bounded(s, sql.data, &gave_up);
    strbuf_free(&sql);
    WrStatus st = WR_OK;
    if (gave_up) {
        char blockers[1024];
        describe_blockers(s, blockers, sizeof(blockers));
        st = wr_error_set(err, WR_FATAL,
                          "%s on %s: not consistent after %d s: a new slot waits for every transaction open "
                          "when it is created to end (a prepared one ends only by COMMIT PREPARED or ROLLBACK "
                          "PREPARED); waiting for: %s",
                          what, s->where, options.slot_wait_s, blockers);
        goto done;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42710") == 0) { /* duplicate_object: already there */
            *exists = true;
            goto done;
        }
        st = result_error(s, res, what, err);
        goto done;
    }
    /* slot_name, consistent_point, snapshot_name, output_plugin */
    if (PQntuples(res) != 1 || PQnfields(res) < 3) {
        st = wr_error_set(err, WR_PROTOCOL, "%s on %s: got %d rows and %d fields, want 1 and 4", what, s->where,
                          PQntuples(res), PQnfields(res));
        goto done;
    }
    if (!lsn_parse(PQgetvalue(res, 0, 1), consistent_point)) {
        st = wr_error_set(err, WR_PROTOCOL, "%s on %s: bad consistent_point \"%s\"", what, s->where,
                          PQgetvalue(res, 0, 1));
        goto done;
    }
    if (export_snapshot && snapshot_name && snapshot_size && !PQgetisnull(res, 0, 2))
        snprintf(snapshot_name, snapshot_size, "%s", PQgetvalue(res, 0, 2));
done:
    PQclear(res);
    return st;
}

/* ---- streaming ---- */

WrStatus repl_stream_start(ReplStream *s, const char *slot, Lsn start, int proto_version, const char *publications,
                           const char *extra_options, WrError *err)
{
    if (check_slot_name(s, slot, "START_REPLICATION", err) != WR_OK) return WR_INVALID;
    if (!publications || !publications[0])
        return wr_error_set(err, WR_INVALID, "START_REPLICATION slot \"%.150s\" on %s: no publication names", slot,
                            s->where);
    if (proto_version < 1 || proto_version > 4)
        return wr_error_set(err, WR_INVALID, "START_REPLICATION slot \"%.150s\" on %s: proto_version %d not in 1..4",
                            slot, s->where, proto_version);
    if (s->streaming)
        return wr_error_set(err, WR_FATAL, "START_REPLICATION slot \"%.150s\" on %s: already streaming", slot,
                            s->where);

    StrBuf sql;
    strbuf_init(&sql);
    strbuf_append_str(&sql, "START_REPLICATION SLOT ");
    append_quoted(&sql, slot, '"');
    strbuf_appendf(&sql, " LOGICAL " LSN_FMT " (\"proto_version\" '%d', \"publication_names\" ", LSN_ARGS(start),
                   proto_version);
    append_quoted(&sql, publications, '\'');
    strbuf_append_str(&sql, ", \"messages\" 'true'");
    if (extra_options && extra_options[0]) {
        strbuf_append_str(&sql, ", ");
        strbuf_append_str(&sql, extra_options);
    }
    strbuf_append_char(&sql, ')');

    PGresult *res;
    (void)pgio_exec(s->conn, sql.data, 0, NULL, &res);
    strbuf_free(&sql);
    WrStatus st = WR_OK;
    if (PQresultStatus(res) == PGRES_COPY_BOTH) {
        s->streaming = true;
        s->ended = (WrError){0};
        s->server_ended = false;
    } else {
        char what[200];
        snprintf(what, sizeof(what), "START_REPLICATION slot \"%.150s\"", slot);
        st = result_error(s, res, what, err);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "42704") == 0) /* undefined_object: the slot is missing */
            st = wr_error_set(err, WR_FATAL,
                              "replication slot \"%.150s\" does not exist on %s (SQLSTATE 42704): walrev setup, with "
                              "the same --slot, creates it",
                              slot, s->where);
    }
    PQclear(res);
    return st;
}

/* Deadlines run on the process's one monotonic clock (common.h). */
static int64_t now_ms(void) { return mono_now_us() / 1000; }

/* Read the result that ends COPY after PQgetCopyData returned -1. */
static WrStatus end_of_copy(ReplStream *s, WrError *err)
{
    PGresult *res = PQgetResult(s->conn);
    ExecStatusType rs = PQresultStatus(res);
    WrStatus st;
    if (rs == PGRES_COPY_IN) {
        /* The server sent CopyDone first; we may still send ours in finish. */
        s->server_ended = true;
        st = wr_error_set(err, WR_DONE, "replication stream on %s ended by the server", s->where);
    } else if (rs == PGRES_COMMAND_OK || rs == PGRES_COPY_OUT) {
        s->streaming = rs == PGRES_COPY_OUT;
        st = wr_error_set(err, WR_DONE, "replication stream on %s ended", s->where);
    } else {
        s->streaming = false;
        st = result_error(s, res, "replication stream", err);
        /* The slot's publication was dropped (by a user: walrev never drops
         * it). pgoutput fails on the first change decoded in a catalog
         * without it, and on that change again at every start: made again
         * since, it does not help the changes made while it did not exist,
         * which PostgreSQL 15 cannot decode (a DROP and CREATE PUBLICATION in
         * one transaction, or with no change between, is no such gap). */
        if (err && strcmp(err->sqlstate, "42704") == 0 && strstr(err->msg, "publication") != NULL) {
            size_t n = strlen(err->msg);
            snprintf(err->msg + n, sizeof(err->msg) - n,
                     ": the slot's publication was dropped; if it was made again since, the changes made while it "
                     "did not exist cannot be decoded (PostgreSQL 15): drop the slot and run walrev setup (the "
                     "history records a gap revision that brings every table to its rows then)");
        }
        s->ended = *err;
    }
    PQclear(res);
    return st;
}

/*
 * Wait until the socket is readable (and writable if libpq still has output
 * queued), at most timeout_ms. WR_OK: readable, input consumed. WR_AGAIN:
 * timeout or a signal. WR_RETRY: connection lost.
 */
static WrStatus wait_socket(ReplStream *s, int timeout_ms, WrError *err)
{
    int fd = PQsocket(s->conn);
    if (fd < 0) return wr_error_set(err, WR_RETRY, "replication stream on %s: connection lost (no socket)", s->where);
    int pending = PQflush(s->conn);
    if (pending < 0) goto lost;
    struct pollfd pfd = {.fd = fd, .events = POLLIN | (pending ? POLLOUT : 0)};
    int r = poll(&pfd, 1, timeout_ms);
    if (r < 0) {
        if (errno == EINTR) return WR_AGAIN; /* let the caller look at its signal flags */
        return wr_error_set(err, WR_RETRY, "replication stream on %s: poll: %s", s->where, strerror(errno));
    }
    if (r == 0) return WR_AGAIN;
    if (!PQconsumeInput(s->conn)) goto lost;
    return WR_OK;
lost : {
    char msg[512];
    conn_message(s, msg, sizeof(msg));
    return wr_error_set(err, WR_RETRY, "replication stream on %s: connection lost: %s", s->where, msg);
}
}

WrStatus repl_stream_receive(ReplStream *s, int timeout_ms, const uint8_t **buf, size_t *len, WrError *err)
{
    *buf = NULL;
    *len = 0;
    if (s->copybuf) {
        PQfreemem(s->copybuf);
        s->copybuf = NULL;
    }
    if (!s->streaming || s->server_ended)
        return wr_error_set(err, WR_DONE, "replication stream on %s is not streaming", s->where);

    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    bool consumed = false;
    for (;;) {
        char *data = NULL;
        int r = PQgetCopyData(s->conn, &data, 1);
        if (r > 0) {
            s->copybuf = data;
            *buf = (const uint8_t *)data;
            *len = (size_t)r;
            return WR_OK;
        }
        if (r == -1) return end_of_copy(s, err);
        if (r == -2) {
            char msg[512];
            conn_message(s, msg, sizeof(msg));
            s->streaming = false;
            return wr_error_set(err, PQstatus(s->conn) == CONNECTION_OK ? WR_PROTOCOL : WR_RETRY,
                                "replication stream on %s: could not read COPY data: %s", s->where, msg);
        }
        /* r == 0: nothing buffered. Pull from the socket once before waiting. */
        if (!consumed) {
            consumed = true;
            if (!PQconsumeInput(s->conn)) {
                char msg[512];
                conn_message(s, msg, sizeof(msg));
                return wr_error_set(err, WR_RETRY, "replication stream on %s: connection lost: %s", s->where, msg);
            }
            continue;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) return WR_AGAIN;
        WrStatus st = wait_socket(s, (int)left, err);
        if (st != WR_OK) return st;
    }
}

WrStatus repl_stream_send_status(ReplStream *s, Lsn written, Lsn flushed, Lsn applied, bool reply_requested,
                                 WrError *err)
{
    if (!s->streaming && s->ended.status != WR_OK) {
        *err = s->ended;
        return err->status;
    }
    if (!s->streaming) return wr_error_set(err, WR_FATAL, "status update on %s: connection is not streaming", s->where);
    uint8_t msg[PGO_STATUS_UPDATE_SIZE];
    size_t n = pgo_encode_status_update(msg, written, flushed, applied, pg_now_us(), reply_requested);
    if (PQputCopyData(s->conn, (const char *)msg, (int)n) <= 0 || PQflush(s->conn) < 0) {
        char text[512];
        conn_message(s, text, sizeof(text));
        return wr_error_set(err, WR_RETRY, "status update on %s (flush " LSN_FMT "): %s", s->where, LSN_ARGS(flushed),
                            text);
    }
    return WR_OK;
}

WrStatus repl_stream_finish(ReplStream *s, WrError *err)
{
    if (s->copybuf) {
        PQfreemem(s->copybuf);
        s->copybuf = NULL;
    }
    if (!s->streaming) return WR_OK;
    if (PQputCopyEnd(s->conn, NULL) <= 0 || PQflush(s->conn) < 0) {
        char msg[512];
        conn_message(s, msg, sizeof(msg));
        s->streaming = false;
        return wr_error_set(err, WR_RETRY, "ending replication on %s: %s", s->where, msg);
    }
    /* Drain what the server still sends until it acknowledges with its own CopyDone. */
    int64_t deadline = now_ms() + FINISH_TIMEOUT_MS;
    while (!s->server_ended) {
        char *data = NULL;
        int r = PQgetCopyData(s->conn, &data, 1);
        if (r > 0) {
            PQfreemem(data);
            continue;
        }
        if (r == -1) break;
        if (r == -2) {
            char msg[512];
            conn_message(s, msg, sizeof(msg));
            s->streaming = false;
            return wr_error_set(err, WR_RETRY, "ending replication on %s: %s", s->where, msg);
        }
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            s->streaming = false;
            return wr_error_set(err, WR_RETRY, "ending replication on %s: no CopyDone from the server after %d ms",
                                s->where, FINISH_TIMEOUT_MS);
        }
        WrStatus st = wait_socket(s, (int)left, err);
        if (st == WR_RETRY) {
            s->streaming = false;
            return st;
        }
    }
    s->streaming = false;
    s->server_ended = false;
    /* Remaining results: COPY's end, the command's completion. Blocking, but the server has finished. */
    WrStatus st = WR_OK;
    PGresult *res;
    while ((res = PQgetResult(s->conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(res);
        if (rs == PGRES_FATAL_ERROR && st == WR_OK) st = result_error(s, res, "ending replication", err);
        PQclear(res);
        if (PQstatus(s->conn) != CONNECTION_OK) break;
    }
    return st;
}
