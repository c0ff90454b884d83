/*
 * capture.c — walrev-capture: records the raw pgoutput stream of a scripted
 * workload for golden tests, and prints decoded messages live (the demo's
 * fallback). Runs the workload's setup, creates a named slot, runs the
 * workload on a normal connection, streams up to an end-marker message emitted
 * after it, writes every XLogData as "uint32 big-endian length + CopyData bytes",
 * then drops the slot. A developer tool: it never confirms a position.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/common.h"
#include "common/log.h"
#include "decoder/pgoutput.h"
#include "decoder/stream.h"

typedef struct {
    const char *source;
    const char *slot;
    const char *publication;
    const char *workload;
    const char *out;
    int proto;
    const char *streaming; /* NULL, "on", "off", "parallel" */
    bool two_phase;
    bool binary;
    bool print;
    bool keep_slot;
} Options;

/* ---- the workload file ---- */

/*
 * A workload file is SQL with two conventions: "-- @capture key=value ..."
 * lines set stream options (proto, streaming, two_phase, binary), and a
 * "-- @workload" line separates setup (run before the slot exists, so it is
 * not captured) from the captured workload.
 */
static WrStatus apply_capture_line(Options *o, const char *line, const char *path, int lineno, WrError *err)
{
    char buf[8192]; /* a whole workload line */
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *tok = strtok(buf, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
        char *eq = strchr(tok, '=');
        if (!eq) return wr_error_set(err, WR_INVALID, "%s:%d: \"%s\" is not key=value", path, lineno, tok);
        *eq = '\0';
        const char *v = eq + 1;
        bool on = strcmp(v, "on") == 0 || strcmp(v, "true") == 0;
        if (strcmp(tok, "proto") == 0) {
            o->proto = atoi(v);
        } else if (strcmp(tok, "streaming") == 0) {
            o->streaming = strcmp(v, "on") == 0 ? "on" : strcmp(v, "parallel") == 0 ? "parallel" : "off";
        } else if (strcmp(tok, "two_phase") == 0) {
            o->two_phase = on;
        } else if (strcmp(tok, "binary") == 0) {
            o->binary = on;
        } else {
            return wr_error_set(err, WR_INVALID, "%s:%d: unknown capture option \"%s\"", path, lineno, tok);
        }
    }
    return WR_OK;
}

/* Split the file into setup and workload SQL and read its @capture options. */
static WrStatus read_workload(Options *o, StrBuf *setup, StrBuf *work, WrError *err)
{
    FILE *f = fopen(o->workload, "r");
    if (!f) return wr_error_set(err, WR_INVALID, "cannot open workload %s: %s", o->workload, strerror(errno));
    char line[8192];
    int lineno = 0;
    bool in_work = false;
    WrStatus st = WR_OK;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        if (strncmp(line, "-- @capture", 11) == 0) {
            st = apply_capture_line(o, line + 11, o->workload, lineno, err);
            if (st != WR_OK) break;
        } else if (strncmp(line, "-- @workload", 12) == 0) {
            in_work = true;
        } else {
            strbuf_append_str(in_work ? work : setup, line);
        }
    }
    fclose(f);
    if (st == WR_OK && !in_work) st = wr_error_set(err, WR_INVALID, "%s: no \"-- @workload\" line", o->workload);
    return st;
}

/*
 * Run SQL one statement at a time in autocommit, so BEGIN/COMMIT, PREPARE
 * TRANSACTION and friends behave as in psql. Splits at ';' outside quotes,
 * dollar quotes and comments.
 */
static WrStatus run_sql(PGconn *conn, const char *sql, const char *path, WrError *err)
{
    if (!sql) return WR_OK; /* an empty StrBuf has no data yet */
    const char *p = sql, *start = sql;
    StrBuf stmt;
    strbuf_init(&stmt);
    WrStatus st = WR_OK;
    for (;;) {
        char c = *p;
        bool end = c == '\0';
        if (c == '\'' || c == '"') {
            for (p++; *p && *p != c; p++) {
            }
            if (*p) p++;
            continue;
        }
        if (c == '-' && p[1] == '-') {
            while (*p && *p != '\n') p++;
            continue;
        }
        if (c == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
            continue;
        }
        if (c == '$') {
            const char *q = p + 1;
            while (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9')) q++;
            if (*q == '$') {
                size_t taglen = (size_t)(q - p + 1);
                char tag[64];
                if (taglen < sizeof(tag)) {
                    memcpy(tag, p, taglen);
                    tag[taglen] = '\0';
                    const char *e = strstr(q + 1, tag);
                    p = e ? e + taglen : p + strlen(p);
                    continue;
                }
            }
        }
        if (c == ';' || end) {
            strbuf_reset(&stmt);
            strbuf_append(&stmt, start, (size_t)(p - start));
            bool blank = true;
            /* Skip statements that are only whitespace and comments. */
            for (const char *q = stmt.data; *q && blank; q++) {
                if (*q == '-' && q[1] == '-') {
                    while (*q && *q != '\n') q++;
                    if (!*q) break;
                } else if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') {
                    blank = false;
                }
            }
            if (!blank) {
                PGresult *res = PQexec(conn, stmt.data);
                ExecStatusType rs = PQresultStatus(res);
                if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
                    st = wr_error_set(err, WR_FATAL, "%s: statement failed: %s  in: %.300s", path,
                                      PQresultErrorMessage(res), stmt.data);
                    PQclear(res);
                    break;
                }
                PQclear(res);
            }
            if (end) break;
            start = p + 1;
        }
        p++;
    }
    strbuf_free(&stmt);
    return st;
}

static WrStatus query_lsn(PGconn *conn, const char *sql, Lsn *out, WrError *err)
{
    PGresult *res = PQexec(conn, sql);
    WrStatus st = WR_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || !lsn_parse(PQgetvalue(res, 0, 0), out))
        st = wr_error_set(err, WR_FATAL, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    return st;
}

/* ---- capture ---- */

static WrStatus write_record(FILE *f, const uint8_t *buf, size_t len, const char *path, WrError *err)
{
    uint8_t hdr[4];
    wr_write_u32(hdr, (uint32_t)len);
    if (fwrite(hdr, 1, 4, f) != 4 || fwrite(buf, 1, len, f) != len)
        return wr_error_set(err, WR_FATAL, "write %s: %s", path, strerror(errno));
    return WR_OK;
}

/*
 * After the workload a non-transactional logical message with this prefix is
 * emitted; it is decoded after everything the workload wrote, so reaching it
 * means the capture is complete. It is not written to the fixture.
 */
#define END_MARKER_PREFIX "walrev-capture-end"

/* Stream from the slot until the end marker; write and/or print everything before it. */
static WrStatus stream_until_marker(ReplStream *s, const Options *o, FILE *out, size_t *records, WrError *err)
{
    PgoParser parser;
    pgo_parser_init(&parser, o->proto, o->streaming && strcmp(o->streaming, "parallel") == 0);
    StrBuf line;
    strbuf_init(&line);
    WrStatus st = WR_OK;
    for (;;) {
        const uint8_t *buf;
        size_t len;
        st = repl_stream_receive(s, 1000, &buf, &len, err);
        if (st == WR_AGAIN) continue;
        if (st != WR_OK) break;
        PgoCopyData cd;
        st = pgo_parse_copydata(buf, len, &cd, err);
        if (st != WR_OK) break;
        if (cd.kind == PGO_COPY_KEEPALIVE) {
            /* Answer at once, confirming nothing (flush 0 leaves the slot where it is). */
            if (cd.reply_requested && (st = repl_stream_send_status(s, 0, 0, 0, false, err)) != WR_OK) break;
            continue;
        }
        if (cd.kind != PGO_COPY_XLOGDATA) continue;
        PgoMessage m;
        if ((st = pgo_parse_message(&parser, cd.payload, cd.payload_len, &m, err)) != WR_OK) break;
        if (m.type == PGO_MSG_MESSAGE && !m.u.message.transactional &&
            strcmp(m.u.message.prefix, END_MARKER_PREFIX) == 0)
            break;
        if (out && (st = write_record(out, buf, len, o->out, err)) != WR_OK) break;
        if (o->print) {
            strbuf_reset(&line);
            strbuf_appendf(&line, LSN_FMT " ", LSN_ARGS(cd.wal_start));
            pgo_format_message(&m, &line);
            puts(line.data);
            fflush(stdout);
        }
        (*records)++;
    }
    strbuf_free(&line);
    return st;
}

static WrStatus create_slot(PGconn *sql, ReplStream *s, const Options *o, WrError *err)
{
    if (o->two_phase) {
        /* The replication-protocol call in stream.h has no TWO_PHASE option; SQL has. */
        const char *params[1] = {o->slot};
        PGresult *res = PQexecParams(sql, "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, true)", 1,
                                     NULL, params, NULL, NULL, 0);
        WrStatus st = WR_OK;
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            st = wr_error_set(err, WR_FATAL, "create two-phase slot \"%s\": %s", o->slot, PQresultErrorMessage(res));
        PQclear(res);
        return st;
    }
    Lsn cp;
    bool exists;
    WrStatus st = repl_stream_create_slot(s, o->slot, false, &cp, NULL, 0, &exists, err);
    if (st == WR_OK && exists)
        st = wr_error_set(err, WR_FATAL, "slot \"%s\" already exists: drop it or pick another name", o->slot);
    return st;
}

static void drop_slot(PGconn *sql, const char *slot)
{
    const char *params[1] = {slot};
    PGresult *res = PQexecParams(sql,
                                 "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                 "WHERE slot_name = $1",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("msg=\"could not drop slot\" slot=%s error=\"%s\"", slot, PQresultErrorMessage(res));
    PQclear(res);
}

/* Workload notices ("truncate cascades to ...") are expected; keep the output to what matters. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int capture(const Options *o, const StrBuf *setup, const StrBuf *work)
{
    WrError err = {0};
    StrBuf extra;
    strbuf_init(&extra);
    PGconn *sql = NULL;
    ReplStream *s = NULL;
    FILE *out = NULL;
    bool slot_made = false;
    size_t records = 0;
    WrStatus st = WR_OK;

    sql = PQconnectdb(o->source);
    if (PQstatus(sql) != CONNECTION_OK) {
        st = wr_error_set(&err, WR_FATAL, "connect: %s", PQerrorMessage(sql));
        goto done;
    }
    PQsetNoticeProcessor(sql, ignore_notice, NULL);
    if ((st = run_sql(sql, setup->data, o->workload, &err)) != WR_OK) goto done;
    if ((st = repl_stream_connect(o->source, &s, &err)) != WR_OK) goto done;
    if ((st = create_slot(sql, s, o, &err)) != WR_OK) goto done;
    slot_made = true;
    if ((st = run_sql(sql, work->data, o->workload, &err)) != WR_OK) goto done;
    Lsn stop;
    if ((st = query_lsn(sql, "SELECT pg_logical_emit_message(false, '" END_MARKER_PREFIX "', '')", &stop, &err)) !=
        WR_OK)
        goto done;

    if (o->streaming) strbuf_appendf(&extra, "\"streaming\" '%s'", o->streaming);
    if (o->two_phase) strbuf_appendf(&extra, "%s\"two_phase\" 'on'", extra.len ? ", " : "");
    if (o->binary) strbuf_appendf(&extra, "%s\"binary\" 'true'", extra.len ? ", " : "");
    if ((st = repl_stream_start(s, o->slot, 0, o->proto, o->publication, extra.data, &err)) != WR_OK) goto done;
    if (o->out && !(out = fopen(o->out, "wb"))) {
        st = wr_error_set(&err, WR_FATAL, "cannot create %s: %s", o->out, strerror(errno));
        goto done;
    }
    if ((st = stream_until_marker(s, o, out, &records, &err)) != WR_OK) goto done;
    if ((st = repl_stream_finish(s, &err)) != WR_OK) goto done;
    log_info("msg=\"captured\" records=%zu end_marker_lsn=" LSN_FMT " out=%s", records, LSN_ARGS(stop),
             o->out ? o->out : "-");
done:
    if (out && fclose(out) != 0 && st == WR_OK)
        st = wr_error_set(&err, WR_FATAL, "close %s: %s", o->out, strerror(errno));
    repl_stream_destroy(s);
    if (slot_made && !o->keep_slot) drop_slot(sql, o->slot);
    if (st != WR_OK) log_error("msg=\"capture failed\" status=%s error=\"%s\"", wr_status_name(st), err.msg);
    PQfinish(sql);
    strbuf_free(&extra);
    return st == WR_OK ? 0 : 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: walrev-capture --source CONNINFO --slot NAME --publication PUB --workload FILE\n"
               "                      [--out FILE.bin] [--print] [--proto N] [--streaming on|off|parallel]\n"
               "                      [--two-phase] [--binary] [--keep-slot]\n"
               "Runs FILE's setup (before its \"-- @workload\" line), creates slot NAME, runs the workload,\n"
               "streams up to an end-marker message emitted after it, writes each XLogData record as a 4-byte\n"
               "big-endian length plus the CopyData bytes to --out and/or prints decoded messages\n"
               "(--print), then drops the slot. \"-- @capture key=value\" lines in FILE set defaults.\n");
}

int main(int argc, char **argv)
{
    Options o = {.proto = 1};
    Options cli = {0};
    int cli_proto = 0;
    const char *cli_streaming = NULL;
    bool cli_two_phase = false, cli_binary = false;
    static const struct option longopts[] = {{"source", required_argument, NULL, 's'},
                                             {"slot", required_argument, NULL, 'S'},
                                             {"publication", required_argument, NULL, 'p'},
                                             {"workload", required_argument, NULL, 'w'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"proto", required_argument, NULL, 'P'},
                                             {"streaming", required_argument, NULL, 'x'},
                                             {"two-phase", no_argument, NULL, 't'},
                                             {"binary", no_argument, NULL, 'b'},
                                             {"print", no_argument, NULL, 'r'},
                                             {"keep-slot", no_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's': cli.source = optarg; break;
        case 'S': cli.slot = optarg; break;
        case 'p': cli.publication = optarg; break;
        case 'w': cli.workload = optarg; break;
        case 'o': cli.out = optarg; break;
        case 'P': cli_proto = atoi(optarg); break;
        case 'x': cli_streaming = optarg; break;
        case 't': cli_two_phase = true; break;
        case 'b': cli_binary = true; break;
        case 'r': cli.print = true; break;
        case 'k': cli.keep_slot = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !cli.source || !cli.slot || !cli.publication || !cli.workload || (!cli.out && !cli.print)) {
        usage(stderr);
        return 2;
    }
    o.source = cli.source;
    o.slot = cli.slot;
    o.publication = cli.publication;
    o.workload = cli.workload;
    o.out = cli.out;
    o.print = cli.print;
    o.keep_slot = cli.keep_slot;
    wr_log_set_level(LOG_LEVEL_INFO);
    /* The file's @capture lines are read with the workload; command-line flags win. */
    WrError err = {0};
    StrBuf setup, work;
    strbuf_init(&setup);
    strbuf_init(&work);
    int rc = 2;
    if (read_workload(&o, &setup, &work, &err) != WR_OK) {
        log_error("msg=\"bad workload\" error=\"%s\"", err.msg);
        goto done;
    }
    if (cli_proto) o.proto = cli_proto;
    if (cli_streaming) o.streaming = cli_streaming;
    if (cli_two_phase) o.two_phase = true;
    if (cli_binary) o.binary = true;
    if (o.proto < 1 || o.proto > 4) {
        log_error("msg=\"bad --proto\" proto=%d want=1..4", o.proto);
        goto done;
    }
    if (o.streaming && strcmp(o.streaming, "on") && strcmp(o.streaming, "off") && strcmp(o.streaming, "parallel")) {
        log_error("msg=\"bad --streaming\" value=%s want=on|off|parallel", o.streaming);
        goto done;
    }
    rc = capture(&o, &setup, &work);
done:
    strbuf_free(&setup);
    strbuf_free(&work);
    return rc;
}
