/*
 * args.c — the checks of a replay command's arguments that need no
 * database: a point, a table name or a revision range of the wrong form is
 * a usage error (exit 2) even when the history store is down, so each
 * command runs these before it opens the store (rq_open_history). What only
 * the store can answer (does the table, the revision, the key exist) is left
 * to the queries. Never connects, never prints.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "replay/internal.h"

/* text without the spaces resolve_point()'s btrim takes off, as [*start, *end) */
static void trimmed(const char *text, const char **start, const char **end)
{
    const char *s = text, *e = text + strlen(text);
    while (*s == ' ') s++;
    while (e > s && e[-1] == ' ') e--;
    *start = s;
    *end = e;
}

/* [s, e) is 1..max characters, each accepted by ok */
static bool all_of(const char *s, const char *e, size_t max, int (*ok)(int))
{
    if (e <= s || (size_t)(e - s) > max) return false;
    for (const char *p = s; p < e; p++)
        if (!ok((unsigned char)*p)) return false;
    return true;
}

/* A revision id as resolve_point() reads one (digits only): *rev, else false. */
static bool revision_id(const char *text, long long *rev)
{
    const char *s, *e;
    trimmed(text, &s, &e);
    if (!all_of(s, e, 18, isdigit)) return false; /* longer is beyond any history: the store says so */
    *rev = strtoll(s, NULL, 10);
    return true;
}

/*
 * The forms resolve_point() (replay.sql) takes, in its order: a revision id,
 * xid:N, an LSN X/X, and text with both '-' and ':' as a timestamp, which
 * only the server parses (a time that does not parse is still its usage
 * error, SQLSTATE 22007, reported once connected).
 */
static bool point_form(const char *text)
{
    const char *s, *e;
    trimmed(text, &s, &e);
    if (all_of(s, e, SIZE_MAX, isdigit)) return true;
    if (e - s > 4 && strncasecmp(s, "xid:", 4) == 0) return all_of(s + 4, e, 20, isdigit);
    const char *slash = memchr(s, '/', (size_t)(e - s));
    if (slash && all_of(s, slash, 8, isxdigit) && all_of(slash + 1, e, 8, isxdigit)) return true;
    return memchr(s, '-', (size_t)(e - s)) && memchr(s, ':', (size_t)(e - s));
}

WrStatus rq_check_point(ReplayCtx *ctx, const char *what, const char *text, WrError *err)
{
    if (point_form(text)) return WR_OK;
    return rq_usage(ctx, err,
                    "invalid point \"%s\" (%s): expected a revision id, an LSN (X/X), a timestamp with time zone "
                    "or xid:N",
                    text, what);
}

WrStatus rq_check_range(ReplayCtx *ctx, const char *since, const char *until, WrError *err)
{
    if ((since && rq_check_point(ctx, "--since", since, err) != WR_OK) ||
        (until && rq_check_point(ctx, "--until", until, err) != WR_OK))
        return err->status;
    long long s, u;
    /* two revision ids are their own revisions; any other form needs the store (resolve_range) */
    if (since && until && revision_id(since, &s) && revision_id(until, &u) && s > u)
        return rq_usage(ctx, err, "--since %s (revision %lld) is after --until %s (revision %lld)", since, s, until, u);
    return WR_OK;
}

WrStatus rq_check_table_name(ReplayCtx *ctx, const char *name, WrError *err)
{
    if (!ident_is_qualified(name))
        return rq_usage(ctx, err, "invalid table name %s: expected table or schema.table, quoted as in SQL", name);
    return WR_OK;
}

WrStatus rq_check_table_names(ReplayCtx *ctx, const char *const *names, int n, WrError *err)
{
    for (int i = 0; i < n; i++)
        if (rq_check_table_name(ctx, names[i], err) != WR_OK) return err->status;
    return WR_OK;
}

WrStatus rq_check_key(ReplayCtx *ctx, const char *arg, WrError *err)
{
    char *key = NULL;
    WrStatus st = rq_parse_key_arg(ctx, arg, &key, err);
    free(key);
    return st;
}
