/*
 * store.c — setup's history store: its schema applied or upgraded
 * (schema/store_sql.h), the context attestation key, and the
 * walrev.context() functions on the source.
 */
#include "setup/steps.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "pgio/pgio.h"
#include "replay/replay.h"
#include "schema/store_sql.h"

/* ---- the history store and the context functions ---- */

static int count_objects(Setup *s, PGconn *c)
{
    const char *p[] = {s->cfg->history_schema};
    char *v = setup_scalar(s, c, "reading the history schema",
                           "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid ="
                           " c.relnamespace WHERE n.nspname = $1) + (SELECT count(*) FROM pg_proc f"
                           " JOIN pg_namespace n ON n.oid = f.pronamespace WHERE n.nspname = $1)"
                           " + (SELECT count(*) FROM pg_namespace WHERE nspname = $1)",
                           1, p);
    int n = v ? atoi(v) : -1;
    free(v);
    return n;
}

bool setup_ensure_history(Setup *s)
{
    int before = count_objects(s, s->hist);
    if (before < 0) return false;
    char *ddl = store_sql_render(s->cfg->history_schema);
    if (!ddl) {
        setup_problem(s, NULL, "this walrev was built without the history store's DDL");
        return false;
    }
    /* Every statement of the DDL is idempotent; one transaction so a failure
     * leaves nothing half-made. */
    bool ok = setup_exec(s, s->hist, "starting the history store transaction", "BEGIN");
    if (ok && s->cfg->partition_revisions > 0) {
        /* history.sql stores it in store_info for the partitions made from now on */
        char set[96];
        snprintf(set, sizeof(set), "SET LOCAL walrev.partition_revisions = '%d'", s->cfg->partition_revisions);
        ok = setup_exec(s, s->hist, "setting the revisions per partition", set);
    }
    if (ok) {
        PGresult *res;
        if (!pgio_exec(s->hist, ddl, 0, NULL, &res)) {
            char line[1024];
            const char *state;
            pgio_error_text(s->hist, res, line, sizeof(line), &state);
            setup_problem(s,
                          state && strcmp(state, "42501") == 0
                              ? "GRANT CREATE ON DATABASE <history database> TO <this role>; or run "
                                "setup as the database owner"
                              : NULL,
                          "creating the history store (schema %s) failed: %s", s->cfg->history_schema, line);
            ok = false;
        }
        PQclear(res);
        /* The replay views and functions over the store come with it. */
        char *replay_sql = ok ? replay_sql_render(s->cfg->history_schema) : NULL;
        if (replay_sql) {
            ok = setup_exec(s, s->hist, "creating the replay views and functions", replay_sql);
            free(replay_sql);
        }
        if (ok)
            ok = setup_exec(s, s->hist, "committing the history store", "COMMIT");
        else
            pgio_run_unchecked(s->hist, "ROLLBACK");
    }
    free(ddl);
    if (!ok) return false;
    int after = count_objects(s, s->hist);
    if (after != before) {
        setup_say("created", "history store in schema %s (%d objects)", s->cfg->history_schema, after);
        s->changes++;
    } else {
        setup_say("ok", "history store in schema %s is up to date", s->cfg->history_schema);
    }
    return true;
}

/*
 * The body of each walrev.context() overload; compared on later runs so an
 * unchanged function is not replaced. Both hand the text to
 * context_attested() with the caller's current_user (a SECURITY INVOKER
 * function sees it; the definer function below would see its owner). The
 * text overload forwards the text as sent, so even invalid JSON reaches the
 * worker (and is recorded as a warning); the jsonb one rejects bad JSON in
 * the caller's transaction. An untyped literal, context('{...}'), resolves
 * to the text overload. %1$s is the schema.
 */
#define CONTEXT_BODY_JSONB " SELECT %s.context_attested(ctx::text, current_user) "
#define CONTEXT_BODY_TEXT " SELECT %s.context_attested(ctx, current_user) "

/*
 * Server-attested identity (docs/history-store.md#who-acted). A client can
 * emit any logical message, so identity it puts there proves nothing; this
 * function, SECURITY DEFINER and owned by setup's role, signs session_user,
 * the caller's current_user (only if session_user is a member of it: a
 * caller cannot name a role it cannot become), application_name and the
 * transaction with a key in <schema>.context_key, which no other role can
 * read. The worker (walrev's role) reads the key and checks the signature:
 * only this function's messages count as attested.
 */
#define CONTEXT_ATTESTED_SQL                                                                                 \
    "CREATE TABLE IF NOT EXISTS %1$s.context_key (ipad bytea NOT NULL, opad bytea NOT NULL);"                \
    " REVOKE ALL ON %1$s.context_key FROM PUBLIC;"                                                           \
    " CREATE OR REPLACE FUNCTION %1$s.context_attested(ctx text, invoker name) RETURNS pg_lsn"               \
    " LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $walrev$"                   \
    " DECLARE k record; su text := session_user::text; cu text; app text; x text; m text; sig text;"         \
    " BEGIN"                                                                                                 \
    "   IF pg_has_role(session_user, invoker, 'MEMBER') THEN cu := invoker::text; END IF;"                   \
    "   app := coalesce(current_setting('application_name', true), '');"                                     \
    "   x := (txid_current() %% 4294967296)::text;"                                                          \
    "   SELECT ck.ipad, ck.opad INTO k FROM %1$s.context_key ck LIMIT 1;"                                    \
    "   m := octet_length(su) || ':' || su || octet_length(coalesce(cu, '')) || ':' || coalesce(cu, '')"     \
    "        || octet_length(app) || ':' || app || octet_length(x) || ':' || x"                              \
    "        || octet_length(ctx) || ':' || ctx;"                                                            \
    "   sig := encode(sha256(k.opad || sha256(k.ipad || convert_to(m, 'UTF8'))), 'hex');"                    \
    "   RETURN pg_logical_emit_message(true, 'walrev', json_build_object('walrev_attest',"                   \
    "       json_build_object('session_user', su, 'current_user', cu, 'application_name', app, 'xid', x,"    \
    "                         'sig', sig), 'context', ctx)::text);"                                          \
    " END $walrev$;"                                                                                         \
    " COMMENT ON FUNCTION %1$s.context_attested(text, name) IS 'walrev: context() signed with the server''s" \
    " view of who acts (docs/history-store.md)'"

/* One random key, stored as its HMAC pads; kept across setups (the worker reads it at start). */
static bool ensure_context_key(Setup *s, const char *schema)
{
    StrBuf q;
    strbuf_init(&q);
    strbuf_appendf(&q, "SELECT count(*) FROM %s.context_key", schema);
    char *n = setup_scalar(s, s->src, "reading the context key", q.data, 0, NULL);
    bool ok = n != NULL;
    if (ok && strcmp(n, "0") == 0) {
        uint8_t key[32], ipad[64], opad[64];
        if (RAND_bytes(key, sizeof(key)) != 1) {
            fprintf(stderr, "walrev: no random bytes from OpenSSL for the context key\n");
            abort();
        }
        memset(ipad, 0x36, sizeof(ipad));
        memset(opad, 0x5c, sizeof(opad));
        for (size_t i = 0; i < sizeof(key); i++) {
            ipad[i] ^= key[i];
            opad[i] ^= key[i];
        }
        char hi[129], ho[129];
        for (size_t i = 0; i < 64; i++) {
            snprintf(hi + 2 * i, 3, "%02x", ipad[i]);
            snprintf(ho + 2 * i, 3, "%02x", opad[i]);
        }
        strbuf_reset(&q);
        strbuf_appendf(&q, "INSERT INTO %s.context_key VALUES ('\\x%s', '\\x%s')", schema, hi, ho);
        ok = setup_exec(s, s->src, "storing the context key", q.data);
        OPENSSL_cleanse(key, sizeof(key));
        if (ok) {
            setup_say("created", "context attestation key in %s.context_key (readable by this role only)", schema);
            s->changes++;
        }
    }
    free(n);
    strbuf_free(&q);
    return ok;
}

bool setup_ensure_context_functions(Setup *s)
{
    char *schema = setup_ident(s->src, s->cfg->history_schema);
    const char *types[] = {"jsonb", "text"};

    bool ok = true;
    int created = 0;
    StrBuf sql;
    strbuf_init(&sql);

    strbuf_appendf(&sql, "CREATE SCHEMA IF NOT EXISTS %s; ", schema);
    strbuf_appendf(&sql, CONTEXT_ATTESTED_SQL, schema);
    ok = setup_exec(s, s->src, "creating the attested context function", sql.data) && ensure_context_key(s, schema);
    for (int i = 0; i < 2 && ok; i++) {
        char body[256];
        if (i == 0)
            snprintf(body, sizeof(body), CONTEXT_BODY_JSONB, schema);
        else
            snprintf(body, sizeof(body), CONTEXT_BODY_TEXT, schema);
        strbuf_reset(&sql);
        strbuf_appendf(&sql, "%s.context(%s)", schema, types[i]);
        const char *p[] = {sql.data};
        char *src = setup_scalar(s, s->src, "reading the context function",
                                 "SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)", 1, p);
        if (!src) {
            ok = false;
            break;
        }
        bool same = strcmp(src, body) == 0;
        free(src);
        if (same) continue;
        strbuf_reset(&sql);
        strbuf_appendf(&sql,
                       "CREATE SCHEMA IF NOT EXISTS %s;"
                       " CREATE OR REPLACE FUNCTION %s.context(ctx %s) RETURNS pg_lsn"
                       " LANGUAGE sql VOLATILE AS $walrev$%s$walrev$;"
                       " COMMENT ON FUNCTION %s.context(%s) IS 'walrev: set the actor context of"
                       " the changes after it in this transaction (docs/cli.md)'",
                       schema, schema, types[i], body, schema, types[i]);
        ok = setup_exec(s, s->src, "creating the walrev context function", sql.data);
        created++;
    }
    if (ok) {
        /* Applications call context() as themselves: they need to reach the
         * function, which USAGE on the schema gives without any table access. */
        const char *p[] = {s->cfg->history_schema};
        char *v = setup_scalar(s, s->src, "checking USAGE on the schema",
                               "SELECT has_schema_privilege('public', $1, 'USAGE')", 1, p);
        if (!v) ok = false;
        if (ok && strcmp(v, "t") != 0) {
            strbuf_reset(&sql);
            strbuf_appendf(&sql, "GRANT USAGE ON SCHEMA %s TO PUBLIC", schema);
            ok = setup_exec(s, s->src, "granting USAGE on the schema", sql.data);
            created++;
        }
        free(v);
    }
    if (ok && created) {
        setup_say("created", "functions %s.context(jsonb) and %s.context(text) on the source", s->cfg->history_schema,
                  s->cfg->history_schema);
        s->changes++;
    } else if (ok) {
        setup_say("ok", "functions %s.context(jsonb) and %s.context(text) exist", s->cfg->history_schema,
                  s->cfg->history_schema);
    }
    strbuf_free(&sql);
    free(schema);
    return ok;
}
