/*
 * verify_reads.c — see verify_reads.h. The chain hashes a context's raw
 * message, not the columns parsed from it, and no keyframe at all (keyframes
 * are taken after their revisions commit); so these columns are checked by
 * deriving them again from what the chain covers, with the worker's own
 * parser and the replay's own fold, rather than by a second hash that
 * whoever can write the tables could recompute.
 */
#include "replay/verify_reads.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decoder/context.h"
#include "pgio/pgio.h"

#define FETCH_ROWS 500
/* The revision warning the worker writes when a user claims the reserved actor type. */
#define RESERVED_WARNING "is reserved for walrev itself"

/* Run sql (text results); *out gets the result when wanted. */
static WrStatus run(PGconn *conn, const char *sql, int nparams, const char *const *params, PGresult **out,
                    const char *what, WrError *err)
{
    char label[160];
    snprintf(label, sizeof(label), "verify: %s", what);
    return pgio_run(conn, sql, nparams, params, out, err, label);
}

/* run() of the statement fmt builds from the quoted schema qs and numbers (safe as they are). */
static WrStatus runf(PGconn *conn, int nparams, const char *const *params, PGresult **out, const char *what,
                     WrError *err, const char *fmt, ...) WR_PRINTF(7, 8);
static WrStatus runf(PGconn *conn, int nparams, const char *const *params, PGresult **out, const char *what,
                     WrError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = xvasprintf(fmt, ap);
    va_end(ap);
    WrStatus st = run(conn, sql, nparams, params, out, what, err);
    free(sql);
    return st;
}

/* Whether the history schema qs has table name yet (one a later store format added). */
static WrStatus has_table(PGconn *conn, const char *qs, const char *name, bool *have, WrError *err)
{
    char what[64];
    snprintf(what, sizeof(what), "looking for the %s table", name);
    PGresult *res = NULL;
    WrStatus st = runf(conn, 0, NULL, &res, what, err, "SELECT to_regclass('%s.%s') IS NOT NULL", qs, name);
    *have = st == WR_OK && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return st;
}

static const char *field(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static bool text_equal(const char *stored, bool has, const StrBuf *derived)
{
    if (!has || !stored) return !has && !stored;
    return strlen(stored) == derived->len && memcmp(stored, derived->data, derived->len) == 0;
}

/* jsonb prints JSON its own way (spacing, key order): compare as values. */
static bool json_text_equal(const char *stored, bool has, const StrBuf *derived)
{
    if (!has || !stored) return !has && !stored;
    json_t *a = json_loads(stored, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *b = json_loadb(derived->data, derived->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    bool eq = a && b && json_equal(a, b);
    json_decref(a);
    json_decref(b);
    return eq;
}

/* One context row against its raw message; returns the name of the first column that differs, or NULL. */
static const char *context_mismatch(const PGresult *r, int row, ParsedContext *p, StrBuf *scratch)
{
    const char *raw = field(r, row, 2);
    bool hashed = field(r, row, 3)[0] == 't';
    bool reserved_warned = field(r, row, 9)[0] == 't';
    const char *type = field(r, row, 4), *id = field(r, row, 5), *actor = field(r, row, 6), *desc = field(r, row, 7),
               *meta = field(r, row, 8);
    if (hashed) {
        /* Not text the worker could parse (or over the bound): nothing was applied from it. */
        context_parse(p, "", 0, 0, NULL, scratch); /* resets p: every field absent */
    } else {
        strbuf_reset(scratch);
        /* Only walrev's own contexts may carry the reserved actor type; a user's claim left a
         * warning on its revision (which the chain covers), and was parsed untrusted. */
        /* The signature needs the source's key, which the history store does not hold: the
         * worker checked it; here a well-formed attestation gives the identity columns. */
        context_parse(p, raw ? raw : "", raw ? strlen(raw) : 0,
                      (reserved_warned ? 0 : CONTEXT_TRUSTED) | CONTEXT_ATTEST_UNCHECKED, NULL, scratch);
    }
    if (!text_equal(type, p->has_actor_type, &p->actor_type)) return "actor_type";
    if (!text_equal(id, p->has_actor_id, &p->actor_id)) return "actor_id";
    if (!json_text_equal(actor, p->has_actor_json, &p->actor_json)) return "actor";
    if (!text_equal(desc, p->has_description, &p->description)) return "description";
    if (!json_text_equal(meta, p->has_meta, &p->meta_json)) return "meta";
    const char *attested = field(r, row, 10);
    if (attested && attested[0] == 't' && !p->attested) return "attested";
    bool att = attested && attested[0] == 't';
    if (!text_equal(field(r, row, 11), att, &p->session_user)) return "db_session_user";
    if (!text_equal(field(r, row, 12), att && p->has_current_user, &p->current_user)) return "db_current_user";
    if (!text_equal(field(r, row, 13), att, &p->application_name)) return "application_name";
    /* Strict mode's verdict needs keys and bindings verify has not: a true one must be possible,
     * by the way it names (an application's signature, an attested role, walrev's own actor). */
    const char *verified = field(r, row, 14), *by = field(r, row, 15);
    bool ver = verified && verified[0] == 't';
    if (ver != (by != NULL)) return "verified_by";
    if (ver) {
        bool possible = false;
        if (strncmp(by, "key:", 4) == 0)
            possible = p->has_signature;
        else if (strncmp(by, "role:", 5) == 0)
            possible =
                att && (strcmp(by + 5, p->session_user.data ? p->session_user.data : "") == 0 ||
                        (p->has_current_user && p->current_user.data && strcmp(by + 5, p->current_user.data) == 0));
        else if (strcmp(by, "walrev") == 0)
            possible = p->has_actor_type && strcmp(p->actor_type.data, CONTEXT_RESERVED_ACTOR_TYPE) == 0;
        if (!possible) return "actor_verified";
    }
    return NULL;
}

WrStatus verify_contexts(PGconn *conn, const char *qs, int64_t *first_bad, char *why, size_t why_size, WrError *err)
{
    *first_bad = 0;
    ParsedContext p;
    context_init(&p);
    StrBuf scratch;
    strbuf_init(&scratch);
    PGresult *res = NULL;
    WrStatus st;

    /* A revision's actor columns are its first context's (NULL without one). */
    st = runf(conn, 0, NULL, &res, "comparing revisions with their first contexts", err,
              "SELECT r.id, CASE WHEN r.actor_type IS DISTINCT FROM c.actor_type THEN 'actor_type' "
              "WHEN r.actor_id IS DISTINCT FROM c.actor_id THEN 'actor_id' "
              "WHEN r.actor IS DISTINCT FROM c.actor THEN 'actor' "
              "WHEN r.description IS DISTINCT FROM c.description THEN 'description' "
              "WHEN r.meta IS DISTINCT FROM c.meta THEN 'meta' "
              "WHEN (r.actor_verified, r.verified_by) IS DISTINCT FROM (c.actor_verified, c.verified_by) "
              "THEN 'actor_verified' ELSE 'server-side user' END "
              "FROM %1$s.revision r LEFT JOIN %1$s.revision_context c "
              "ON c.revision_id = r.id AND c.context_no = 1 "
              "WHERE (r.actor_type, r.actor_id, r.actor, r.description, r.meta, r.attested, "
              "r.db_session_user, r.db_current_user, r.application_name, r.actor_verified, r.verified_by) "
              "IS DISTINCT FROM (c.actor_type, c.actor_id, c.actor, c.description, c.meta, "
              "coalesce(c.attested, false), c.db_session_user, c.db_current_user, c.application_name, "
              "c.actor_verified, c.verified_by) "
              "ORDER BY r.id LIMIT 1",
              qs);
    if (st != WR_OK) goto done;
    if (PQntuples(res) == 1) {
        *first_bad = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(why, why_size, "revision %" PRId64 ": its %s is not that of its first context", *first_bad,
                 PQgetvalue(res, 0, 1));
        /* a context row may fail earlier: go on looking, the lowest revision wins */
    }
    PQclear(res);
    res = NULL;

    st = runf(conn, 0, NULL, NULL, "opening the context cursor", err,
              "DECLARE walrev_verify_reads NO SCROLL CURSOR FOR "
              "SELECT c.revision_id, c.context_no, c.raw, c.raw_sha256 IS NOT NULL, c.actor_type, c.actor_id, "
              "c.actor::text, c.description, c.meta::text, "
              "coalesce(strpos(r.warnings, '" RESERVED_WARNING "') > 0, false), "
              "c.attested, c.db_session_user, c.db_current_user, c.application_name, c.actor_verified, "
              "c.verified_by "
              "FROM %1$s.revision_context c LEFT JOIN %1$s.revision r ON r.id = c.revision_id "
              "ORDER BY c.revision_id, c.context_no",
              qs);
    if (st != WR_OK) goto done;
    for (bool more = true; more;) {
        char fetch[64];
        snprintf(fetch, sizeof(fetch), "FETCH %d FROM walrev_verify_reads", FETCH_ROWS);
        st = run(conn, fetch, 0, NULL, &res, "fetching contexts", err);
        if (st != WR_OK) goto done;
        int n = PQntuples(res);
        more = n == FETCH_ROWS;
        for (int i = 0; i < n; i++) {
            int64_t rid = strtoll(PQgetvalue(res, i, 0), NULL, 10);
            if (*first_bad && rid > *first_bad) { /* at the same revision, the context is the cause */
                more = false;
                break;
            }
            const char *col = context_mismatch(res, i, &p, &scratch);
            if (col) {
                *first_bad = rid;
                snprintf(why, why_size, "revision %" PRId64 ": context %s's %s is not what its raw message says", rid,
                         PQgetvalue(res, i, 1), col);
                more = false;
                break;
            }
        }
        PQclear(res);
        res = NULL;
    }
    st = run(conn, "CLOSE walrev_verify_reads", 0, NULL, NULL, "closing the context cursor", err);

done:
    PQclear(res);
    context_term(&p);
    strbuf_free(&scratch);
    return st;
}

/*
 * Keyframe row i of kf (id, relid, revision, n_rows, table name) against the
 * image cmp_sql rebuilds from the deltas (verify_keyframes); a keyframe that
 * differs sets *bad_keyframe, *bad_revision and why.
 */
static WrStatus check_keyframe(PGconn *conn, const char *cmp_sql, const PGresult *kf, int i, int64_t *bad_keyframe,
                               int64_t *bad_revision, char *why, size_t why_size, WrError *err)
{
    const char *id = PQgetvalue(kf, i, 0), *relid = PQgetvalue(kf, i, 1), *rev = PQgetvalue(kf, i, 2);
    const char *set[1] = {id};
    WrStatus st = run(conn, "SELECT set_config('walrev.keyframe_below', $1, true)", 1, set, NULL,
                      "hiding a keyframe from keyframe_at", err);
    if (st != WR_OK) return st;
    const char *params[3] = {relid, rev, id};
    PGresult *res = NULL;
    st = run(conn, cmp_sql, 3, params, &res, "rebuilding a keyframe from the deltas", err);
    if (st != WR_OK) return st;
    const char *bad_key = field(res, 0, 1);
    bool count_ok = strcmp(PQgetvalue(res, 0, 0), PQgetvalue(kf, i, 3)) == 0;
    if (!PQgetisnull(res, 0, 2) && strcmp(PQgetvalue(res, 0, 2), id) == 0) {
        st = wr_error_set(err, WR_FATAL,
                          "verify: the history schema's keyframe_at() predates keyframe checks: run "
                          "`walrev setup` to update it");
    } else if (bad_key || !count_ok) {
        *bad_keyframe = strtoll(id, NULL, 10);
        *bad_revision = strtoll(rev, NULL, 10);
        if (bad_key)
            snprintf(why, why_size,
                     "keyframe %s of %s at revision %s: the row of key %.200s differs from what the deltas give", id,
                     PQgetvalue(kf, i, 4), rev, bad_key);
        else
            snprintf(why, why_size, "keyframe %s of %s at revision %s: n_rows %s but %s rows", id, PQgetvalue(kf, i, 4),
                     rev, PQgetvalue(kf, i, 3), PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return st;
}

WrStatus verify_keyframes(PGconn *conn, const char *qs, int64_t *bad_keyframe, int64_t *bad_revision, char *why,
                          size_t why_size, WrError *err)
{
    *bad_keyframe = 0;
    *bad_revision = 0;
    StrBuf cmp;
    strbuf_init(&cmp);
    PGresult *kf = NULL;
    WrStatus st;

    /* The keyframes prune took at its cut (before - 1) stand on dropped
     * deltas: like the anchor they are taken as given, and every later
     * keyframe is checked against them and the deltas kept. */
    int64_t before = 0;
    uint8_t anchor[32];
    char on[16];
    st = verify_prune_anchor(conn, qs, &before, anchor, on, sizeof(on), err);
    if (st != WR_OK) goto done;
    char from[24];
    snprintf(from, sizeof(from), "%lld", (long long)before);
    const char *fp[1] = {from};
    /* Keyframes are few (one per keyframe_factor x rows changes of a table): read them at once. */
    st = runf(conn, 1, fp, &kf, "reading the keyframes", err,
              "SELECT k.id, k.relid, k.revision_id, k.n_rows, "
              "coalesce((SELECT v.nspname || '.' || v.relname FROM %1$s.relation_version v "
              "WHERE v.relid = k.relid ORDER BY v.version DESC LIMIT 1), k.relid::text) "
              "FROM %1$s.keyframe k WHERE k.revision_id >= $1::bigint ORDER BY k.relid, k.revision_id, k.id",
              qs);
    if (st != WR_OK) goto done;
    /*
     * The image the keyframe should hold: snapshot_rows at its revision with
     * this keyframe and those after it hidden from keyframe_at. Values are
     * compared position by position (a keyframe taken before a column was
     * added has a shorter vals array; absent and NULL are the same).
     */
    strbuf_appendf(&cmp,
                   "WITH s AS (SELECT key COLLATE \"C\" AS key, vals FROM %1$s.snapshot_rows($1::oid, $2::bigint)), "
                   "k AS (SELECT key, vals FROM %1$s.keyframe_row WHERE keyframe_id = $3::bigint) "
                   "SELECT (SELECT count(*) FROM k), "
                   "(SELECT coalesce(s.key, k.key) FROM s FULL JOIN k ON k.key = s.key "
                   " WHERE s.key IS NULL OR k.key IS NULL OR EXISTS ("
                   "   SELECT 1 FROM generate_series(1, greatest(cardinality(s.vals), cardinality(k.vals))) g "
                   "   WHERE s.vals[g] IS DISTINCT FROM k.vals[g]) "
                   " ORDER BY 1 LIMIT 1), "
                   "(SELECT keyframe_id FROM %1$s.keyframe_at($1::oid, $2::bigint))",
                   qs);
    for (int i = 0; i < PQntuples(kf) && st == WR_OK && !*bad_keyframe; i++)
        st = check_keyframe(conn, cmp.data, kf, i, bad_keyframe, bad_revision, why, why_size, err);
    if (st != WR_OK) goto done;
    st = run(conn, "SELECT set_config('walrev.keyframe_below', '', true)", 0, NULL, NULL, "restoring keyframe_at", err);

done:
    PQclear(kf);
    strbuf_free(&cmp);
    return st;
}

WrStatus verify_backfill(PGconn *conn, const char *qs, int64_t *first_bad, char *why, size_t why_size, WrError *err)
{
    *first_bad = 0;
    PGresult *res = NULL;
    bool have = false;
    WrStatus st = has_table(conn, qs, "backfill", &have, err);
    if (st != WR_OK || !have) goto done;
    int64_t before = 0;
    uint8_t anchor[32];
    char on[16];
    st = verify_prune_anchor(conn, qs, &before, anchor, on, sizeof(on), err);
    if (st != WR_OK) goto done;
    bool pruned = before > 0;
    /*
     * The chunk revisions of each table (walrev's own contexts only: a user
     * claiming actor type walrev is recorded without an actor) with their
     * snapshot rows. A chunk that added nothing makes no revision, so the
     * record's job is found as the run of revisions after the last one
     * whose next chunk number does not grow (a new job counts from 1), and
     * rows_recorded must be the snapshot rows of a tail of that run (or 0);
     * chunks and rows_read at least what its last revision says.
     */
    st = runf(
        conn, 0, NULL, &res, "comparing the baseline records with their chunk revisions", err,
        "WITH ch AS (SELECT c.revision_id, (c.meta->'backfill'->>'relid')::oid AS relid, "
        "  (c.meta->'backfill'->>'chunk')::int AS chunk, (c.meta->'backfill'->>'rows_read')::bigint AS rows_read "
        "  FROM %1$s.revision_context c WHERE c.actor_type = 'walrev' AND c.actor_id = 'baseline' "
        "  AND c.meta ? 'backfill'), "
        "rec AS (SELECT ch.*, (SELECT count(*) FROM %1$s.object_delta d WHERE d.revision_id = ch.revision_id "
        "  AND d.relid = ch.relid AND d.op = 'S') AS recorded FROM ch), "
        "ord AS (SELECT rec.*, lead(chunk) OVER (PARTITION BY relid ORDER BY revision_id) AS next_chunk FROM rec), "
        "brk AS (SELECT relid, max(revision_id) AS last_break FROM ord WHERE next_chunk <= chunk GROUP BY relid), "
        "run AS (SELECT o.*, sum(o.recorded) OVER (PARTITION BY o.relid ORDER BY o.revision_id DESC) AS tail "
        "  FROM ord o LEFT JOIN brk b ON b.relid = o.relid WHERE o.revision_id > coalesce(b.last_break, 0)), "
        "job AS (SELECT relid, max(revision_id) AS last_rev, (array_agg(chunk ORDER BY revision_id DESC))[1] AS "
        "  last_chunk, (array_agg(rows_read ORDER BY revision_id DESC))[1] AS last_read, "
        "  (array_agg(chunk ORDER BY revision_id))[1] AS first_chunk, array_agg(tail) AS tails, "
        "  sum(recorded) AS total FROM run GROUP BY relid), "
        "setup AS (SELECT DISTINCT c.revision_id FROM %1$s.revision_context c WHERE c.actor_type = 'walrev' "
        "  AND c.actor_id = 'baseline' AND NOT coalesce(c.meta ? 'backfill', false)) "
        "SELECT format('%%I.%%I', b.nspname, b.relname), b.relid, b.chunks, b.rows_read, b.rows_recorded, "
        "  j.last_chunk, j.last_read, j.total, b.rows_recorded = 0 OR b.rows_recorded = ANY (j.tails), "
        "  (SELECT count(*) FROM %1$s.object_delta d WHERE d.relid = b.relid AND d.op = 'S' "
        "    AND d.revision_id IN (SELECT revision_id FROM setup)), "
        "  coalesce(j.last_rev, (SELECT max(id) FROM %1$s.revision)), (SELECT min(revision_id) FROM setup), "
        "  j.relid IS NOT NULL, j.first_chunk "
        "FROM %1$s.backfill b LEFT JOIN job j ON j.relid = b.relid "
        "WHERE b.chunks > 0 OR b.state = 'done' "
        "ORDER BY 11, 2",
        qs);
    if (st != WR_OK) goto done;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *table = PQgetvalue(res, i, 0);
        long long chunks = atoll(PQgetvalue(res, i, 2)), rows_read = atoll(PQgetvalue(res, i, 3)),
                  recorded = atoll(PQgetvalue(res, i, 4));
        int64_t rev = strtoll(PQgetvalue(res, i, 10), NULL, 10);
        bool has_job = PQgetvalue(res, i, 12)[0] == 't';
        if (chunks == 0) {
            /* setup's baseline (done, no chunks): its snapshot rows of the table */
            long long derived = atoll(PQgetvalue(res, i, 9));
            /* A table whose rows the history does not keep (walrev's own context_key in a FOR ALL
             * TABLES publication: counted by setup, never recorded) has none there: not compared. */
            if (recorded == derived || derived == 0) continue;
            *first_bad = PQgetisnull(res, i, 11) ? rev : strtoll(PQgetvalue(res, i, 11), NULL, 10);
            snprintf(why, why_size,
                     "revision %" PRId64 ": the baseline record of %s says rows_recorded %lld, the baseline's "
                     "snapshot rows of it %lld",
                     *first_bad, table, recorded, derived);
            break;
        }
        if (!has_job) {
            if (recorded == 0) continue; /* every chunk added nothing (an empty table): no revision */
            if (pruned) continue;        /* its chunk revisions were before the cut (walrev prune) */
            *first_bad = rev;
            snprintf(why, why_size,
                     "the baseline record of %s says %lld rows recorded in %lld chunks, but no chunk revision of relid "
                     "%s exists",
                     table, recorded, chunks, PQgetvalue(res, i, 1));
            break;
        }
        long long last_chunk = atoll(PQgetvalue(res, i, 5)), last_read = atoll(PQgetvalue(res, i, 6)),
                  total = atoll(PQgetvalue(res, i, 7));
        bool recorded_ok = PQgetvalue(res, i, 8)[0] == 't';
        /* Pruned in the middle of the job (its first kept chunk is not chunk
         * 1): the record counts the dropped chunks' rows too, so it can only
         * be checked to cover the kept ones. */
        if (!recorded_ok && pruned && atoll(PQgetvalue(res, i, 13)) > 1) recorded_ok = recorded >= total;
        *first_bad = rev;
        if (!recorded_ok)
            snprintf(why, why_size,
                     "revision %" PRId64
                     ": the baseline record of %s says rows_recorded %lld, its chunk revisions %lld",
                     rev, table, recorded, total);
        else if (chunks < last_chunk)
            snprintf(why, why_size,
                     "revision %" PRId64
                     ": the baseline record of %s says chunks %lld, its last chunk revision is chunk "
                     "%lld",
                     rev, table, chunks, last_chunk);
        else if (rows_read < last_read)
            snprintf(why, why_size,
                     "revision %" PRId64 ": the baseline record of %s says rows_read %lld, fewer than its last chunk "
                     "revision read (%lld)",
                     rev, table, rows_read, last_read);
        else
            *first_bad = 0;
        if (*first_bad) break;
    }
done:
    PQclear(res);
    return st;
}

WrStatus verify_prune_anchor(PGconn *conn, const char *qs, int64_t *before, uint8_t anchor[32], char *pruned_on,
                             size_t pruned_on_size, WrError *err)
{
    *before = 0;
    memset(anchor, 0, 32);
    if (pruned_on_size) pruned_on[0] = '\0';
    PGresult *res = NULL;
    bool have = false;
    WrStatus st = has_table(conn, qs, "prune", &have, err);
    if (st != WR_OK || !have) goto done;
    st = runf(conn, 0, NULL, &res, "reading the prune anchor", err,
              "SELECT before_id, encode(anchor, 'hex'), pruned_at::date::text FROM %s.prune "
              "ORDER BY before_id DESC LIMIT 1",
              qs);
    if (st != WR_OK || PQntuples(res) == 0) goto done;
    const char *hex = PQgetvalue(res, 0, 1);
    if (strlen(hex) != 64) {
        st = wr_error_set(err, WR_FATAL, "verify: the prune anchor before revision %s is not 32 bytes",
                          PQgetvalue(res, 0, 0));
        goto done;
    }
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            st = wr_error_set(err, WR_FATAL, "verify: the prune anchor is not hex");
            goto done;
        }
        anchor[i] = (uint8_t)v;
    }
    *before = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(pruned_on, pruned_on_size, "%s", PQgetvalue(res, 0, 2));
done:
    PQclear(res);
    return st;
}
