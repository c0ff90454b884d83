/*
 * status.c — `walrev status` and the worker's state row (status.h). The
 * answer is built once as a JSON object and printed either as JSON or as
 * aligned lines, so the two never disagree. Health is decided here, from
 * facts only: the slot, its WAL, lag against the limits, reachability, and
 * the state the worker last recorded. Never touches the slot.
 */
#include "status/status.h"

#include <jansson.h>
#include <pthread.h>
#include <time.h>
#include <stdarg.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "pgio/pgio.h"
#include "schema/store_sql.h"

#define EXIT_USAGE 2
/* revisions and changes per second are averaged over this window */
#define RATE_WINDOW_S 60

enum { OPT_FORMAT = 1000, OPT_MAX_LAG_BYTES, OPT_MAX_LAG_SECONDS };

const struct option status_long_options[] = {{"format", required_argument, NULL, OPT_FORMAT},
                                             {"max-lag-bytes", required_argument, NULL, OPT_MAX_LAG_BYTES},
                                             {"max-lag-seconds", required_argument, NULL, OPT_MAX_LAG_SECONDS},
                                             {NULL, 0, NULL, 0}};

void status_print_help(FILE *out)
{
    fputs("usage: walrev [global options] status [--format aligned|json] [--max-lag-bytes N]\n"
          "                [--max-lag-seconds N]\n\n"
          "The slot, lag, rates, the last revision, each sink's durable position, baselines\n"
          "in progress, gaps and the worker's last error. Exit status: 0 healthy, 1 degraded\n"
          "(slot missing or inactive, WAL lost, lag over a limit, a database unreachable, the\n"
          "worker failed or retrying), 2 usage.\n\n"
          "  --format F            aligned (default) or json\n"
          "  --max-lag-bytes N     degraded above N bytes of lag (default 67108864)\n"
          "  --max-lag-seconds N   degraded above N seconds of lag (default 60)\n",
          out);
}

/* ---- the worker's row ----
 *
 * Written by one background thread from a one-slot mailbox (the latest state
 * wins), so the run loop never waits on it: the history store being recorded
 * as unreachable is often the one that is frozen, and a connect to it would
 * stretch every retry by the connect timeout. status_record_flush waits for
 * it, bounded, before the process exits. */

typedef struct {
    char *conninfo, *schema, *slot;
    char state[16];
    char error[sizeof(((WrError *)0)->msg)];
    const char *error_class; /* static (wr_status_name); NULL: no error */
    char sinks[1024];        /* JSON array of the sinks' positions; "" when none is known */
    bool positions_only;     /* update sinks only: the state has not changed */
} StateRow;

static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t state_cv = PTHREAD_COND_INITIALIZER;
static StateRow state_want;
static bool state_pending, state_busy, state_started;
/* The store's worker_state has no sinks column (set up before it; walrev
 * setup adds it): the state is written without positions. Writer thread only. */
static bool store_lacks_sinks;

#define SQLSTATE_UNDEFINED_COLUMN "42703"

/* Each sink's durable position from the metrics (the run loop publishes them),
 * as a JSON array, or "" when none is known. */
static void sinks_json(char *out, size_t size)
{
    MetricsSnapshot m;
    metrics_snapshot(&m);
    static const char *const names[METRICS_NSINKS] = {"history", "file", "kafka"};
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < METRICS_NSINKS && n < size; i++) {
        if (!m.sink_enabled[i] || !m.sink_durable_set[i]) continue;
        n += (size_t)snprintf(out + n, size - n, "%s{\"sink\": \"%s\", \"durable_end_lsn\": \"" LSN_FMT "\"}",
                              n ? ", " : "[", names[i], LSN_ARGS(m.sink_durable[i]));
    }
    if (n && n + 2 < size)
        snprintf(out + n, size - n, "]");
    else
        out[0] = '\0';
}

/* Run sql; true when it succeeded. *undefined_column: it failed on a column the store lacks. */
static bool run_state_sql(PGconn *conn, const StateRow *r, const char *sql, int n, const char *const *params,
                          bool *undefined_column)
{
    PGresult *res;
    bool ok = pgio_exec(conn, sql, n, params, &res);
    *undefined_column = false;
    if (!ok) {
        char msg[256];
        const char *sqlstate = NULL;
        pgio_error_text(conn, res, msg, sizeof(msg), &sqlstate);
        *undefined_column = sqlstate && strcmp(sqlstate, SQLSTATE_UNDEFINED_COLUMN) == 0;
        if (!*undefined_column)
            log_debug("msg=\"could not record the worker state\" state=%s sqlstate=%s error=\"%s\"", r->state,
                      sqlstate ? sqlstate : "none", msg);
    }
    PQclear(res);
    return ok;
}

static void write_state(const StateRow *r)
{
    PgioConnect how = {.what = "history store (worker state)", .app_name = "walrev", .bounded = true};
    PGconn *conn = NULL;
    WrError cerr = {0};
    if (pgio_connect(r->conninfo, &how, &conn, &cerr) != WR_OK) {
        log_debug("msg=\"could not record the worker state\" state=%s error=\"%s\"", r->state, cerr.msg);
        return;
    }
    char *schema = store_quote_ident(r->schema);
    const char *sinks = r->sinks[0] ? r->sinks : NULL;
    bool undefined_column = false;
    char *sql = NULL;
    if (r->positions_only) {
        if (!store_lacks_sinks && sinks) {
            sql = xasprintf("UPDATE %s.worker_state SET sinks = $2::jsonb, sinks_at = now() WHERE slot_name = $1",
                            schema);
            const char *params[2] = {r->slot, sinks};
            if (!run_state_sql(conn, r, sql, 2, params, &undefined_column) && undefined_column)
                store_lacks_sinks = true;
        }
        goto out;
    }
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    const char *params[6] = {r->slot, r->state, pid, r->error_class ? r->error : NULL, r->error_class, sinks};
    /* Without the sinks columns (a store set up before them): the same row without positions. */
    for (int with_sinks = !store_lacks_sinks; with_sinks >= 0; with_sinks--) {
        free(sql);
        sql = xasprintf(
            "INSERT INTO %1$s.worker_state AS w (slot_name, state, pid, state_at, last_error, last_error_class, "
            "last_error_at, errors%2$s) VALUES ($1, $2, $3::int, now(), $4::text, $5::text, "
            "CASE WHEN $4::text IS NOT NULL THEN now() END, CASE WHEN $4::text IS NOT NULL THEN 1 ELSE 0 END%3$s) "
            "ON CONFLICT (slot_name) DO UPDATE SET state = EXCLUDED.state, pid = EXCLUDED.pid, state_at = now(), "
            "last_error = coalesce(EXCLUDED.last_error, w.last_error), "
            "last_error_class = coalesce(EXCLUDED.last_error_class, w.last_error_class), "
            "last_error_at = coalesce(EXCLUDED.last_error_at, w.last_error_at), errors = w.errors + "
            "EXCLUDED.errors%4$s",
            schema, with_sinks ? ", sinks, sinks_at" : "",
            with_sinks ? ", $6::jsonb, CASE WHEN $6::jsonb IS NOT NULL THEN now() END" : "",
            with_sinks
                ? ", sinks = coalesce(EXCLUDED.sinks, w.sinks), sinks_at = coalesce(EXCLUDED.sinks_at, w.sinks_at)"
                : "");
        if (run_state_sql(conn, r, sql, with_sinks ? 6 : 5, params, &undefined_column) || !undefined_column) break;
        if (with_sinks) store_lacks_sinks = true;
    }
out:
    free(sql);
    free(schema);
    PQfinish(conn);
}

static void *state_writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&state_mu);
    for (;;) {
        while (!state_pending) pthread_cond_wait(&state_cv, &state_mu);
        StateRow r = state_want; /* the strings stay: only this thread frees them, below */
        state_pending = false;
        state_busy = true;
        pthread_mutex_unlock(&state_mu);
        write_state(&r);
        pthread_mutex_lock(&state_mu);
        state_busy = false;
        pthread_cond_broadcast(&state_cv);
    }
    return NULL;
}

void status_record(const StatusTarget *cfg, const char *state, const WrError *err)
{
    if (!cfg->history_enabled) return;
    pthread_mutex_lock(&state_mu);
    if (!state_started) {
        /* the connection settings do not change while the process runs: copied once */
        state_want.conninfo = xstrdup(cfg->history_conninfo);
        state_want.schema = xstrdup(cfg->history_schema);
        state_want.slot = xstrdup(cfg->slot_name);
        pthread_t t;
        if (pthread_create(&t, NULL, state_writer, NULL) != 0) {
            pthread_mutex_unlock(&state_mu);
            log_debug("msg=\"could not start the worker state writer\"");
            return;
        }
        pthread_detach(t);
        state_started = true;
    }
    snprintf(state_want.state, sizeof(state_want.state), "%s", state);
    state_want.error_class = err && err->msg[0] ? wr_status_name(err->status) : NULL;
    snprintf(state_want.error, sizeof(state_want.error), "%s", err && err->msg[0] ? err->msg : "");
    sinks_json(state_want.sinks, sizeof(state_want.sinks));
    state_want.positions_only = false;
    state_pending = true;
    pthread_cond_broadcast(&state_cv);
    pthread_mutex_unlock(&state_mu);
}

void status_record_positions(const StatusTarget *cfg)
{
    if (!cfg->history_enabled) return;
    pthread_mutex_lock(&state_mu);
    /* only after a state was recorded (the row exists); a state still waiting carries the positions too */
    if (state_started) {
        sinks_json(state_want.sinks, sizeof(state_want.sinks));
        if (!state_pending) {
            state_want.positions_only = true;
            state_pending = true;
            pthread_cond_broadcast(&state_cv);
        }
    }
    pthread_mutex_unlock(&state_mu);
}

void status_record_flush(int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&state_mu);
    while (state_started && (state_pending || state_busy))
        if (pthread_cond_timedwait(&state_cv, &state_mu, &until) != 0) break;
    pthread_mutex_unlock(&state_mu);
}

/* ---- reading ---- */

typedef struct {
    json_t *problems; /* array of strings */
} Health;

static void problem(Health *h, const char *fmt, ...) WR_PRINTF(2, 3);
static void problem(Health *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = xvasprintf(fmt, ap);
    va_end(ap);
    json_array_append_new(h->problems, json_string(s));
    free(s);
}

/* A column as JSON: NULL -> null; kind 'i' integer, 'f' real, 'b' boolean, else string. */
static json_t *col(const PGresult *res, int row, int c, char kind)
{
    if (PQgetisnull(res, row, c)) return json_null();
    const char *v = PQgetvalue(res, row, c);
    switch (kind) {
    case 'i': return json_integer(strtoll(v, NULL, 10));
    case 'f': return json_real(strtod(v, NULL));
    case 'b': return json_boolean(v[0] == 't');
    default: return json_string(v);
    }
}

/* One row of res as an object of the given names and kinds ("name:k"); NULL when no row. */
static json_t *row_object(const PGresult *res, int row, const char *const *names)
{
    if (row >= PQntuples(res)) return json_null();
    json_t *o = json_object();
    for (int c = 0; names[c]; c++) {
        const char *colon = strchr(names[c], ':');
        char *key = xstrndup(names[c], (size_t)(colon - names[c]));
        json_object_set_new(o, key, col(res, row, c, colon[1]));
        free(key);
    }
    return o;
}

static PGresult *query(PGconn *conn, const char *sql, int n, const char *const *params, char *why, size_t size)
{
    PGresult *res;
    const char *sqlstate;
    if (pgio_exec(conn, sql, n, params, &res)) return res;
    pgio_error_text(conn, res, why, size, &sqlstate);
    PQclear(res);
    return NULL;
}

/* query() of a statement built for it (the store's schema in it), freed here. */
static PGresult *query_take(PGconn *conn, char *sql, int n, const char *const *params, char *why, size_t size)
{
    PGresult *res = query(conn, sql, n, params, why, size);
    free(sql);
    return res;
}

static void read_source(const StatusTarget *cfg, json_t *out, Health *h)
{
    PgioConnect how = {.what = "source", .app_name = "walrev status", .bounded = true};
    PGconn *conn = NULL;
    WrError err = {0};
    json_t *slot = json_object();
    json_object_set_new(slot, "name", json_string(cfg->slot_name));
    json_object_set_new(out, "slot", slot);
    json_t *lag = json_object();
    json_object_set_new(out, "lag", lag);
    if (pgio_connect(cfg->source_conninfo, &how, &conn, &err) != WR_OK) {
        problem(h, "%s", err.msg);
        return;
    }
    char why[256];
    const char *params[1] = {cfg->slot_name};
    PGresult *res = query(conn,
                          "SELECT s.active, s.active_pid, s.confirmed_flush_lsn::text, s.restart_lsn::text, "
                          "pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, s.wal_status, "
                          "s.safe_wal_size, pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, "
                          "extract(epoch FROM r.flush_lag)::float8, pg_current_wal_lsn()::text "
                          "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
                          "WHERE s.slot_name = $1",
                          1, params, why, sizeof(why));
    if (!res) {
        problem(h, "source: reading the slot failed: %s", why);
    } else if (PQntuples(res) == 0) {
        json_object_set_new(slot, "exists", json_false());
        problem(h, "slot %s does not exist (walrev setup creates it)", cfg->slot_name);
    } else {
        static const char *const names[] = {"active:b",
                                            "active_pid:i",
                                            "confirmed_flush_lsn:s",
                                            "restart_lsn:s",
                                            "retained_wal_bytes:i",
                                            "wal_status:s",
                                            "safe_wal_size:i",
                                            NULL};
        json_t *o = row_object(res, 0, names);
        json_object_set_new(o, "name", json_string(cfg->slot_name));
        json_object_set_new(o, "exists", json_true());
        json_object_set_new(out, "slot", o);
        json_object_set_new(out, "source_wal_lsn", col(res, 0, 9, 's'));
        json_object_set_new(lag, "bytes", col(res, 0, 7, 'i'));
        bool active = PQgetvalue(res, 0, 0)[0] == 't';
        if (!active) problem(h, "slot %s is inactive: no walrev run is streaming from it", cfg->slot_name);
        const char *ws = PQgetisnull(res, 0, 5) ? "" : PQgetvalue(res, 0, 5);
        if (strcmp(ws, "lost") == 0 || strcmp(ws, "unreserved") == 0)
            problem(h, "slot %s: wal_status %s: WAL it needs is %s", cfg->slot_name, ws,
                    strcmp(ws, "lost") == 0 ? "gone (the history will record a gap)" : "about to be removed");
        /* the walsender's own measure while streaming; else unknown here (the
         * history's side fills it in from its checkpoint's age) */
        json_object_set_new(lag, "seconds",
                            active && !PQgetisnull(res, 0, 8) ? col(res, 0, 8, 'f')
                            : active                          ? json_real(0)
                                                              : json_null());
    }
    PQclear(res);
    PQfinish(conn);
}

static void read_history(const StatusTarget *cfg, json_t *out, Health *h)
{
    PgioConnect how = {.what = "history store", .app_name = "walrev status", .bounded = true};
    PGconn *conn = NULL;
    WrError err = {0};
    if (!cfg->history_enabled) {
        json_object_set_new(out, "history", json_null());
        return;
    }
    if (pgio_connect(cfg->history_conninfo, &how, &conn, &err) != WR_OK) {
        problem(h, "%s", err.msg);
        return;
    }
    char *s = store_quote_ident(cfg->history_schema);
    char why[256], *sql;
    const char *slot[1] = {cfg->slot_name};
    PGresult *res;

    sql = xasprintf("SELECT id, commit_time::text, end_lsn::text FROM %s.revision ORDER BY id DESC LIMIT 1", s);
    if ((res = query_take(conn, sql, 0, NULL, why, sizeof(why)))) {
        static const char *const names[] = {"id:i", "commit_time:s", "end_lsn:s", NULL};
        json_object_set_new(out, "last_revision", row_object(res, 0, names));
        PQclear(res);
    } else {
        problem(h, "history store: %s (run walrev setup?)", why);
        goto out;
    }

    sql =
        xasprintf("SELECT count(*) / %d.0, coalesce(sum(n_insert + n_update + n_delete + n_truncate + n_snapshot), 0) "
                  "/ %d.0 FROM %s.revision WHERE commit_time > now() - interval '%d seconds'",
                  RATE_WINDOW_S, RATE_WINDOW_S, s, RATE_WINDOW_S);
    if ((res = query_take(conn, sql, 0, NULL, why, sizeof(why)))) {
        json_t *r = json_object();
        json_object_set_new(r, "window_seconds", json_integer(RATE_WINDOW_S));
        json_object_set_new(r, "revisions_per_second", col(res, 0, 0, 'f'));
        json_object_set_new(r, "changes_per_second", col(res, 0, 1, 'f'));
        json_object_set_new(out, "rates", r);
        PQclear(res);
    }

    /* the history sink's durable position; the slot's confirmed LSN is what every sink holds */
    sql =
        xasprintf("SELECT end_lsn::text, revision_id, updated_at::text, extract(epoch FROM now() - updated_at)::float8 "
                  "FROM %s.checkpoint WHERE slot_name = $1",
                  s);
    json_t *sinks = json_array();
    if ((res = query_take(conn, sql, 1, slot, why, sizeof(why)))) {
        static const char *const names[] = {"durable_end_lsn:s", "revision_id:i", "updated_at:s", NULL};
        json_t *o = row_object(res, 0, names);
        if (json_is_object(o)) {
            json_object_set_new(o, "sink", json_string("history"));
            json_array_append(sinks, o);
            /* not streaming: lag in seconds is how long the history has not advanced */
            json_t *lag = json_object_get(out, "lag");
            json_t *bytes = lag ? json_object_get(lag, "bytes") : NULL;
            if (lag && json_is_null(json_object_get(lag, "seconds")) && json_is_integer(bytes))
                json_object_set_new(lag, "seconds", json_integer_value(bytes) > 0 ? col(res, 0, 3, 'f') : json_real(0));
        }
        json_decref(o);
        PQclear(res);
    }
    /* every other sink as the worker last recorded it (to_jsonb: a store set up before those columns has none) */
    sql = xasprintf("SELECT to_jsonb(w)->'sinks', (to_jsonb(w)->>'sinks_at')::timestamptz::text "
                    "FROM %s.worker_state w WHERE slot_name = $1",
                    s);
    if ((res = query_take(conn, sql, 1, slot, why, sizeof(why)))) {
        json_t *recorded =
            PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
        size_t i;
        json_t *v;
        json_array_foreach(recorded, i, v)
        {
            const char *name = json_string_value(json_object_get(v, "sink"));
            if (!name || strcmp(name, "history") == 0) continue; /* the checkpoint above says it */
            json_t *o = json_object();
            json_object_set_new(o, "sink", json_string(name));
            json_object_set(o, "durable_end_lsn", json_object_get(v, "durable_end_lsn"));
            json_object_set_new(o, "recorded_at", col(res, 0, 1, 's'));
            json_array_append_new(sinks, o);
        }
        json_decref(recorded);
        PQclear(res);
    }
    json_t *slot_o = json_object_get(out, "slot");
    if (slot_o && json_is_string(json_object_get(slot_o, "confirmed_flush_lsn"))) {
        json_t *o = json_object();
        json_object_set_new(o, "sink", json_string("all (slot confirmed)"));
        json_object_set(o, "durable_end_lsn", json_object_get(slot_o, "confirmed_flush_lsn"));
        json_array_append_new(sinks, o);
    }
    json_object_set_new(out, "sinks", sinks);

    sql = xasprintf("SELECT format('%%I.%%I', nspname, relname), state, chunks, rows_read, rows_recorded, "
                    "coalesce(started_at, requested_at)::text FROM %s.backfill WHERE state IN ('requested', 'running') "
                    "ORDER BY 1",
                    s);
    json_t *bl = json_array();
    if ((res = query_take(conn, sql, 0, NULL, why, sizeof(why)))) {
        static const char *const names[] = {"table:s",         "state:s", "chunks:i", "rows_read:i",
                                            "rows_recorded:i", "since:s", NULL};
        for (int i = 0; i < PQntuples(res); i++) json_array_append_new(bl, row_object(res, i, names));
        PQclear(res);
    }
    json_object_set_new(out, "baselines", bl);

    sql = xasprintf("SELECT count(*), max(id), max(commit_time)::text FROM %s.revision "
                    "WHERE actor_type = 'walrev' AND actor_id = 'gap'",
                    s);
    if ((res = query_take(conn, sql, 0, NULL, why, sizeof(why)))) {
        static const char *const names[] = {"count:i", "last_revision:i", "last_time:s", NULL};
        json_object_set_new(out, "gaps", row_object(res, 0, names));
        PQclear(res);
    }

    sql = xasprintf("SELECT state, pid, state_at::text, last_error, last_error_class, last_error_at::text, errors "
                    "FROM %s.worker_state WHERE slot_name = $1",
                    s);
    if ((res = query_take(conn, sql, 1, slot, why, sizeof(why)))) {
        static const char *const names[] = {
            "state:s",         "pid:i",    "state_at:s", "last_error:s", "last_error_class:s",
            "last_error_at:s", "errors:i", NULL};
        json_t *w = row_object(res, 0, names);
        json_object_set_new(out, "worker", w);
        const char *state = json_is_object(w) ? json_string_value(json_object_get(w, "state")) : NULL;
        if (state && (strcmp(state, "failed") == 0 || strcmp(state, "retrying") == 0))
            problem(h, "worker %s: %s", state, json_string_value(json_object_get(w, "last_error")));
        PQclear(res);
    } else {
        json_object_set_new(out, "worker", json_null()); /* a store set up before worker_state */
    }
out:
    free(s);
    PQfinish(conn);
}

static bool parse_count(const char *s, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0) return false;
    *out = v;
    return true;
}

/* "key: value" lines for the aligned form. */
static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static void print_value(FILE *f, json_t *v)
{
    if (!v || json_is_null(v))
        fputs("-", f);
    else if (json_is_string(v))
        fputs(json_string_value(v), f);
    else if (json_is_integer(v))
        fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        fprintf(f, "%.1f", json_real_value(v));
    else if (json_is_boolean(v))
        fputs(json_is_true(v) ? "yes" : "no", f);
}

static void print_aligned(FILE *f, json_t *o)
{
    json_t *slot = json_object_get(o, "slot"), *lag = json_object_get(o, "lag"), *v;
    fprintf(f, "%-16s %s\n", "health", json_is_true(json_object_get(o, "healthy")) ? "healthy" : "degraded");
    size_t i;
    json_array_foreach(json_object_get(o, "problems"), i, v) fprintf(f, "%-16s %s\n", "problem", json_string_value(v));
    fprintf(f, "%-16s %s", "slot", str_or(slot, "name", "-"));
    if (json_is_false(json_object_get(slot, "exists"))) fputs(" (missing)", f);
    fputs(", active ", f);
    print_value(f, json_object_get(slot, "active"));
    fprintf(f, ", wal_status %s, safe_wal_size ", str_or(slot, "wal_status", "-"));
    print_value(f, json_object_get(slot, "safe_wal_size"));
    fprintf(f, "\n%-16s confirmed %s, restart %s, retained WAL ", "slot lsn", str_or(slot, "confirmed_flush_lsn", "-"),
            str_or(slot, "restart_lsn", "-"));
    print_value(f, json_object_get(slot, "retained_wal_bytes"));
    fprintf(f, " bytes\n%-16s ", "lag");
    print_value(f, json_object_get(lag, "bytes"));
    fputs(" bytes, ", f);
    print_value(f, json_object_get(lag, "seconds"));
    fputs(" s\n", f);
    json_t *r = json_object_get(o, "rates");
    fprintf(f, "%-16s ", "rate");
    print_value(f, json_object_get(r, "revisions_per_second"));
    fputs(" revisions/s, ", f);
    print_value(f, json_object_get(r, "changes_per_second"));
    fprintf(f, " changes/s (last %d s)\n", RATE_WINDOW_S);
    json_t *lr = json_object_get(o, "last_revision");
    fprintf(f, "%-16s ", "last revision");
    if (json_is_object(lr)) {
        print_value(f, json_object_get(lr, "id"));
        fprintf(f, " committed %s, end %s\n", str_or(lr, "commit_time", "-"), str_or(lr, "end_lsn", "-"));
    } else {
        fputs("-\n", f);
    }
    json_array_foreach(json_object_get(o, "sinks"), i, v)
    {
        fprintf(f, "%-16s %s durable to %s", "sink", str_or(v, "sink", "-"), str_or(v, "durable_end_lsn", "-"));
        if (json_object_get(v, "revision_id")) {
            fputs(" (revision ", f);
            print_value(f, json_object_get(v, "revision_id"));
            fprintf(f, ", %s)", str_or(v, "updated_at", "-"));
        } else if (json_object_get(v, "recorded_at")) {
            fprintf(f, " (recorded by the worker %s)", str_or(v, "recorded_at", "-"));
        }
        fputc('\n', f);
    }
    json_t *bl = json_object_get(o, "baselines");
    if (json_array_size(bl) == 0) fprintf(f, "%-16s none in progress\n", "baselines");
    json_array_foreach(bl, i, v)
    {
        fprintf(f, "%-16s %s %s since %s: %lld chunks, %lld rows read, %lld recorded\n", "baseline",
                str_or(v, "table", "-"), str_or(v, "state", "-"), str_or(v, "since", "-"),
                (long long)json_integer_value(json_object_get(v, "chunks")),
                (long long)json_integer_value(json_object_get(v, "rows_read")),
                (long long)json_integer_value(json_object_get(v, "rows_recorded")));
    }
    json_t *g = json_object_get(o, "gaps");
    fprintf(f, "%-16s ", "gaps");
    print_value(f, json_object_get(g, "count"));
    if (json_integer_value(json_object_get(g, "count")) > 0) {
        fputs(", last revision ", f);
        print_value(f, json_object_get(g, "last_revision"));
        fprintf(f, " at %s", str_or(g, "last_time", "-"));
    }
    fputc('\n', f);
    json_t *w = json_object_get(o, "worker");
    fprintf(f, "%-16s ", "worker");
    if (json_is_object(w)) {
        fprintf(f, "%s since %s, pid ", str_or(w, "state", "-"), str_or(w, "state_at", "-"));
        print_value(f, json_object_get(w, "pid"));
        fprintf(f, "\n%-16s ", "last error");
        if (json_is_string(json_object_get(w, "last_error")))
            fprintf(f, "%s (%s, at %s; %lld in all)\n", str_or(w, "last_error", "-"),
                    str_or(w, "last_error_class", "-"), str_or(w, "last_error_at", "-"),
                    (long long)json_integer_value(json_object_get(w, "errors")));
        else
            fputs("none\n", f);
    } else {
        fputs("- (no state recorded)\n", f);
    }
}

int status_command(const StatusTarget *cfg, int argc, char **argv)
{
    bool json = false;
    long long max_bytes = 64LL << 20, max_seconds = 60;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", status_long_options, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "aligned") == 0)
                json = false;
            else {
                fprintf(stderr, "walrev status: unknown --format %s: expected aligned or json\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_MAX_LAG_BYTES:
        case OPT_MAX_LAG_SECONDS:
            if (!parse_count(optarg, c == OPT_MAX_LAG_BYTES ? &max_bytes : &max_seconds)) {
                fprintf(stderr, "walrev status: --%s needs a count, not '%s'\n",
                        c == OPT_MAX_LAG_BYTES ? "max-lag-bytes" : "max-lag-seconds", optarg);
                return EXIT_USAGE;
            }
            break;
        default:
            fprintf(stderr, "walrev status: bad option or missing value: %s\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "walrev status: unexpected argument '%s'\nTry 'walrev status --help'.\n", argv[optind]);
        return EXIT_USAGE;
    }
    Health h = {json_array()};
    json_t *out = json_object();
    read_source(cfg, out, &h);
    read_history(cfg, out, &h);
    json_t *lag = json_object_get(out, "lag");
    json_t *lb = lag ? json_object_get(lag, "bytes") : NULL, *ls = lag ? json_object_get(lag, "seconds") : NULL;
    if (json_is_integer(lb) && json_integer_value(lb) > max_bytes)
        problem(&h, "lag %lld bytes is over --max-lag-bytes %lld", (long long)json_integer_value(lb), max_bytes);
    if (json_is_number(ls) && json_number_value(ls) > (double)max_seconds)
        problem(&h, "lag %.1f s is over --max-lag-seconds %lld", json_number_value(ls), max_seconds);
    json_object_set_new(
        out, "limits",
        json_pack("{s:I,s:I}", "max_lag_bytes", (json_int_t)max_bytes, "max_lag_seconds", (json_int_t)max_seconds));
    bool healthy = json_array_size(h.problems) == 0;
    json_object_set_new(out, "healthy", json_boolean(healthy));
    json_object_set_new(out, "problems", h.problems);
    if (json) {
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
    } else {
        print_aligned(stdout, out);
    }
    json_decref(out);
    return healthy ? 0 : 1;
}
