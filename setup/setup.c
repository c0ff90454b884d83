/*
 * setup.c — `walrev setup` (see setup.h, docs/cli.md). Two phases: checks
 * that only read the catalogs and report every problem with its fix, then
 * steps that create what is missing, each reported as "created" or "ok".
 * It must never drop or overwrite anything it did not create, and never print
 * a password (conninfos are shown redacted).
 */
#include "setup/setup.h"

#include "setup/steps.h"

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgio/pgio.h"
#include "schema/store_sql.h"

/* ---- output ---- */

void setup_say(const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-9s ", tag);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

/* One problem: what is wrong (formatted) and how to fix it. */
void setup_problem(Setup *s, const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (fix) fprintf(stderr, "  fix: %s\n", fix);
    s->problems++;
}

void setup_warn(Setup *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%-9s ", "warning");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    s->warnings++;
}

/* ---- SQL helpers ---- */

/* Run a parameterised query; on failure print it as a problem naming what
 * was being done and return NULL. */
PGresult *setup_run(Setup *s, PGconn *c, const char *what, const char *sql, int n, const char *const *params)
{
    /* Without parameters use the simple protocol: it allows several
     * statements and is the only one a replication connection speaks. */
    PGresult *res;
    if (pgio_exec(c, sql, n, params, &res)) return res;
    char line[1024];
    const char *state;
    pgio_error_text(c, res, line, sizeof(line), &state);
    const char *fix = NULL;
    if (state && strcmp(state, "42501") == 0)
        fix = "run walrev setup as a role with the privilege named above (for example the "
              "database owner or a superuser), then run walrev as the less privileged role";
    setup_problem(s, fix, "%s failed: %s", what, line);
    PQclear(res);
    return NULL;
}

char *setup_scalar(Setup *s, PGconn *c, const char *what, const char *sql, int n, const char *const *params)
{
    PGresult *res = setup_run(s, c, what, sql, n, params);
    if (!res) return NULL;
    char *v = (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) ? xstrdup(PQgetvalue(res, 0, 0)) : xstrdup("");
    PQclear(res);
    return v;
}

/* An identifier quoted as quote_ident() would (only when needed). Caller frees. */
char *setup_ident(PGconn *c, const char *name)
{
    (void)c;
    return store_quote_ident(name);
}

static PGconn *connect_db(Setup *s, const char *what, const char *conninfo, bool replication)
{
    PgioConnect how = {.what = "libpq", .app_name = "walrev-setup", .replication = replication};
    PGconn *c;
    WrError err = {0};
    if (pgio_connect(conninfo, &how, &c, &err) == WR_OK) return c;
    char *red = pgio_redact_conninfo(conninfo);
    const char *line = err.msg;
    if (replication)
        setup_problem(s,
                      "allow the user a replication connection to this database in pg_hba.conf "
                      "(logical replication connections match the database name, not 'replication')",
                      "cannot open a replication connection to the %s database (%s): %s", what, red, line);
    else
        setup_problem(s,
                      "check the conninfo (host, port, dbname, user) and that the server is running; "
                      "put passwords in ~/.pgpass, PGPASSWORD or a service file",
                      "cannot connect to the %s database (%s): %s", what, red, line);
    free(red);
    return NULL;
}

bool setup_exec(Setup *s, PGconn *c, const char *what, const char *sql)
{
    PGresult *res = setup_run(s, c, what, sql, 0, NULL);
    PQclear(res);
    return res != NULL;
}

/* ---- the command ---- */

int setup_command(const SetupConfig *cfg, const SetupOptions *opts)
{
    Setup s = {.cfg = cfg, .opts = opts};
    int rc = 1;

    char *red = pgio_redact_conninfo(cfg->source_conninfo);
    setup_say("source", "%s", red);
    free(red);
    if (cfg->history_enabled) {
        red = pgio_redact_conninfo(cfg->history_conninfo);
        setup_say("history", "%s (schema %s)", red, cfg->history_schema);
        free(red);
    } else {
        setup_say("history", "disabled");
    }

    s.src = connect_db(&s, "source", cfg->source_conninfo, false);
    if (!s.src) goto out;
    if (cfg->history_enabled) {
        if (strcmp(cfg->history_conninfo, cfg->source_conninfo) == 0)
            s.hist = s.src;
        else if (!(s.hist = connect_db(&s, "history", cfg->history_conninfo, false)))
            goto out;
    }

    setup_check_server(&s);
    setup_check_role(&s);
    if (s.problems == 0) {
        /* What walrev run will do: prove it works now rather than at first start. */
        PGconn *repl = connect_db(&s, "source", cfg->source_conninfo, true);
        if (repl) {
            PGresult *res =
                setup_run(&s, repl, "IDENTIFY_SYSTEM on a replication connection", "IDENTIFY_SYSTEM", 0, NULL);
            if (res) setup_say("ok", "replication connection works");
            PQclear(res);
            PQfinish(repl);
        }
    }
    setup_decide_same_db(&s);
    setup_check_history(&s);
    setup_check_publication(&s);

    if (s.problems > 0) {
        fprintf(stderr, "walrev setup: %d problem(s) found; nothing was changed\n", s.problems);
        goto out;
    }
    if (opts->check_only) {
        printf("checks passed; nothing was changed (--check)\n");
        rc = 0;
        goto out;
    }

    if (cfg->history_enabled && !setup_ensure_history(&s)) goto failed;
    if (!setup_ensure_context_functions(&s)) goto failed;
    if (!setup_ensure_ddl_trigger(&s)) goto failed;
    if (!setup_ensure_table_log(&s)) goto failed;
    /* The publication must exist before the slot: pgoutput looks publications
     * up as of each change's position, so one created later is not seen. */
    if (!setup_ensure_publication(&s)) goto failed;
    if (!setup_ensure_table_log_published(&s)) goto failed;
    if (!setup_ensure_capture_published(&s)) goto failed;
    if (!setup_ensure_schema_trigger(&s)) goto failed;
    if (!setup_ensure_slot(&s)) goto failed;
    if (!setup_report_replica_identity(&s)) goto failed;
    if (!setup_report_unlogged(&s)) goto failed;

    if (s.changes == 0)
        printf("nothing to change: walrev is already set up (%d warning(s))\n", s.warnings);
    else
        printf("setup complete: %d change(s), %d warning(s)\n", s.changes, s.warnings);
    rc = 0;
    goto out;

failed:
    fprintf(stderr, "walrev setup: stopped after %d change(s); run it again once fixed\n", s.changes);
out:
    fflush(stdout);
    if (s.hist && s.hist != s.src) PQfinish(s.hist);
    if (s.src) PQfinish(s.src);
    return rc;
}
