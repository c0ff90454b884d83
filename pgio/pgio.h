/*
 * pgio.h — the one path every walrev connection to PostgreSQL takes: connect
 * (connect timeout, TCP keepalives, authentication failures told apart from
 * outages), run a statement (bounded by a reply timeout where the caller asked
 * for one), the one-line text of a failure, and the one table that classifies
 * a SQLSTATE as retry, fatal or data error. It logs nothing and never puts a
 * password into a message; callers decide what to do with the WrError.
 */
#ifndef WALREV_PGIO_PGIO_H
#define WALREV_PGIO_PGIO_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "common/common.h"

/* What a failure with a given SQLSTATE asks of the caller. */
typedef enum {
    PGIO_RETRY, /* transient: connection lost, server shutting down, conflict, resources; back off, retry */
    PGIO_FATAL, /* retrying will not help: authentication, privileges, missing objects, bugs */
    PGIO_DATA   /* the data of this statement cannot be stored (class 22, 54); other data could */
} PgioClass;

/*
 * The SQLSTATE table. NULL or a string that is not five characters (no server
 * error: the connection failed or libpq gave up) is PGIO_RETRY. Unknown codes
 * are PGIO_FATAL: a code nobody listed is not known to pass.
 */
PgioClass pgio_classify_sqlstate(const char *sqlstate);
const char *pgio_class_name(PgioClass c);

/* The WrStatus for a failed call: WR_RETRY when the connection is gone
 * (PQstatus bad, a reply timeout) whatever the SQLSTATE, else by the table;
 * PGIO_DATA is WR_FATAL (err->sqlstate lets a caller that can set the data
 * aside tell it apart). */
WrStatus pgio_status(PGconn *conn, const char *sqlstate);

/* ---- connections ---- */

/* Process-wide connection settings; config values, set once at start. A
 * setting in a conninfo string wins over these (they are passed first). */
/* The output settings every connection walrev makes starts with (libpq's
 * options): the text of a value is the same on every path that records it. A
 * conninfo naming options of its own replaces them. */
#define PGIO_TEXT_SETTINGS "-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex"

typedef struct {
    int connect_timeout_s;     /* libpq connect_timeout; 0 = wait forever */
    int keepalives_idle_s;     /* TCP keepalives: idle seconds before the first probe; 0 = off */
    int keepalives_interval_s; /* seconds between probes */
    int keepalives_count;      /* probes lost before the connection is dead */
    int reply_timeout_ms;      /* bounded connections: longest wait for any reply while the server does not
                                * report the statement still running (a second connection asks); 0 = none */
} PgioOptions;

/* Defaults: connect 5 s, keepalives 30/10/3, reply 10 s: with the watchdog fed at half
 * of WatchdogSec (30 s), a connect (twice: the failure is asked again by
 * PQping) or a reply waited for in full still ends before systemd gives up. */
void pgio_options_default(PgioOptions *o);
/* Set the process-wide options (copy kept). Call before starting threads. */
void pgio_configure(const PgioOptions *o);
const PgioOptions *pgio_options(void);

typedef struct {
    const char *what;     /* for messages: "history store", "source" */
    const char *app_name; /* fallback_application_name */
    bool replication;     /* replication=database (walsender) */
    bool bounded;         /* every reply awaited at most reply_timeout_ms */
} PgioConnect;

/*
 * Connect with conninfo. WR_OK: *out is open (caller PQfinish-es it), libpq
 * notices are dropped. Otherwise *out is NULL and err says, without the
 * password, "<what>: could not connect: <libpq's message>": WR_RETRY when the
 * server did not answer or refuses everyone for now (starting, stopping);
 * WR_FATAL when it answered and refused us (authentication, pg_hba, missing
 * database or role): retrying changes nothing; WR_INVALID for a conninfo
 * libpq cannot parse.
 */
WrStatus pgio_connect(const char *conninfo, const PgioConnect *how, PGconn **out, WrError *err) WR_MUSTCHECK;

/* ---- statements ---- */

/*
 * Run sql (text parameters when nparams > 0: extended protocol, one
 * statement; else the simple protocol, several allowed); true when it
 * returned COMMAND_OK, TUPLES_OK or entered COPY. *res is set either way (may
 * be NULL on failure); the caller clears it. On a bounded connection a reply
 * that takes longer than reply_timeout_ms closes the connection (PQstatus is
 * then CONNECTION_BAD, the text says it timed out).
 */
bool pgio_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res);

/* pgio_exec with results in binary format (extended protocol). */
bool pgio_exec_binary(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **res);
/* pgio_exec with parameters in text (formats[i] 0) or the type's binary
 * format (formats[i] 1, lengths[i] bytes); results in text. */
bool pgio_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *params, const int *lengths,
                      const int *formats, PGresult **res);
/* pgio_exec of a statement prepared as name; result_format 0 text, 1 binary. */
bool pgio_exec_prepared(PGconn *conn, const char *name, int nparams, const char *const *params, int result_format,
                        PGresult **res);

/* The next result of a command already sent (after COPY data, for example),
 * waiting as pgio_exec does; NULL when there is none. Caller clears it. */
PGresult *pgio_get_result(PGconn *conn);

/*
 * The rows of a query sent in single-row mode (PQsendQuery*, then
 * PQsetSingleRowMode), one at a time, as long as *st is WR_OK: the caller
 * reads the one-row result, may set *st, and clears it. A failed result sets
 * *st with pgio_fail ("<what> failed: ..."). NULL at the end, or once *st is
 * not WR_OK: then the connection's results have been read to the end, so it
 * is ready for the next command. Usage:
 *     while ((r = pgio_next_row(conn, &st, what, err)) != NULL) { ...; PQclear(r); }
 */
PGresult *pgio_next_row(PGconn *conn, WrStatus *st, const char *what, WrError *err);

/* The server's primary message for a failed call (res may be NULL: then the
 * connection's message), cut to its first line, into msg[size]; *sqlstate
 * points into res (NULL when there is none). */
void pgio_error_text(PGconn *conn, const PGresult *res, char *msg, size_t size, const char **sqlstate);

/*
 * Fill err for a failed call as "<what> failed: SQLSTATE <code>: <message>"
 * (code "none" when the server sent none) with pgio_status's status, and
 * err->sqlstate; returns the status. what is a printf format.
 */
WrStatus pgio_fail(PGconn *conn, const PGresult *res, WrError *err, const char *what, ...) WR_PRINTF(4, 5);

/* A successful result to its caller: *out takes it, or it is cleared when out is NULL. */
void pgio_hand_result(PGresult *res, PGresult **out);

/* pgio_exec, and pgio_fail on failure (*out is NULL then). out may be NULL:
 * the result is cleared. */
WrStatus pgio_run(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **out, WrError *err,
                  const char *what) WR_MUSTCHECK;
/* pgio_run with results in binary format (pgio_exec_binary). */
WrStatus pgio_run_binary(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **out,
                         WrError *err, const char *what) WR_MUSTCHECK;

/* Run sql (simple protocol) whose outcome the caller has no use for: a
 * ROLLBACK after a failure already reported, a best-effort session setting.
 * The result is cleared; a lost connection shows in PQstatus and at the next
 * statement, which is where the caller learns of it. */
void pgio_run_unchecked(PGconn *conn, const char *sql);

/* Send len bytes of COPY data in chunks of at most 1 MiB (libpq takes an int
 * length); false when libpq refused (the connection's message says why). */
bool pgio_copy_put(PGconn *conn, const char *data, size_t len);

/* True when the last wait on conn ended by the reply timeout. */
bool pgio_timed_out(PGconn *conn);

/* A conninfo with password and other secrets removed, for logs and
 * messages; caller frees. Keeps only host, hostaddr, port, dbname, user,
 * service, sslmode, application_name, target_session_attrs, replication.
 * Never returns a password. */
char *pgio_redact_conninfo(const char *conninfo);

#endif
