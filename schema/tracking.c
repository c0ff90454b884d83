/*
 * tracking.c — the tracking rules of docs/tracking.md: excluded tables,
 * untracked and hidden columns, and whether a context may suppress tracking.
 * Pure matching over a small list of patterns ('*' globs within one dotted
 * part); no I/O, no logging. Names are compared exactly (case-sensitive), as
 * PostgreSQL stores them.
 */
#include "schema/tracking.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    RuleKind kind;
    char *text;     /* the pattern as written, for tracking_describe */
    char *parts[3]; /* schema, table[, column]; each may hold '*' */
    int nparts;
} Rule;

struct TrackingRules {
    Rule *rules;
    size_t n;
    size_t cap;
    bool allow_suppress;
    /* walrev's own private table on the source (the context key): never
     * history, whatever the publication; not one of the user's rules. */
    char *private_nsp, *private_rel;
};

TrackingRules *tracking_create(void) { return xcalloc(1, sizeof(TrackingRules)); }

void tracking_destroy(TrackingRules *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->rules[i].text);
        for (int p = 0; p < r->rules[i].nparts; p++) free(r->rules[i].parts[p]);
    }
    free(r->rules);
    free(r->private_nsp);
    free(r->private_rel);
    free(r);
}

static const char *kind_name(RuleKind kind)
{
    switch (kind) {
    case RULE_EXCLUDE: return "exclude";
    case RULE_UNTRACKED: return "untracked";
    case RULE_HIDDEN: return "hidden";
    }
    return "?";
}

/* Glob where '*' matches any run of characters (including none); iterative
 * with one backtrack point, so it is linear-ish and never recurses. */
static bool glob_match(const char *pat, const char *s)
{
    const char *star = NULL, *retry = NULL;
    while (*s) {
        if (*pat == '*') {
            star = pat++;
            retry = s;
        } else if (*pat == *s) {
            pat++;
            s++;
        } else if (star) {
            pat = star + 1;
            s = ++retry;
        } else {
            return false;
        }
    }
    while (*pat == '*') pat++;
    return *pat == '\0';
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Validate and store one trimmed pattern of length len. */
static WrStatus add_one(TrackingRules *r, RuleKind kind, const char *pat, size_t len, WrError *err)
{
    int want = kind == RULE_EXCLUDE ? 2 : 3;
    const char *form = kind == RULE_EXCLUDE ? "schema.table" : "schema.table.column";
    char *text = xstrndup(pat, len);
    Rule rule = {.kind = kind, .text = text};

    for (size_t i = 0; i < len; i++) {
        if (is_space(text[i]) || text[i] == '"') {
            wr_error_set(err, WR_INVALID,
                         "%s pattern '%s': spaces and quotes are not allowed (write names as stored, "
                         "e.g. %s)",
                         kind_name(kind), text, form);
            goto fail;
        }
    }
    const char *p = text;
    while (true) {
        const char *dot = strchr(p, '.');
        size_t plen = dot ? (size_t)(dot - p) : strlen(p);
        if (plen == 0 || rule.nparts == want) {
            wr_error_set(err, WR_INVALID, "%s pattern '%s': expected %s", kind_name(kind), text, form);
            goto fail;
        }
        rule.parts[rule.nparts++] = xstrndup(p, plen);
        if (!dot) break;
        p = dot + 1;
    }
    if (rule.nparts != want) {
        wr_error_set(err, WR_INVALID, "%s pattern '%s': expected %s", kind_name(kind), text, form);
        goto fail;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->rules = xrealloc(r->rules, r->cap * sizeof(Rule));
    }
    r->rules[r->n++] = rule;
    return WR_OK;

fail:
    for (int i = 0; i < rule.nparts; i++) free(rule.parts[i]);
    free(text);
    return err ? err->status : WR_INVALID;
}

WrStatus tracking_add(TrackingRules *r, RuleKind kind, const char *patterns, WrError *err)
{
    const char *p = patterns ? patterns : "";
    size_t before = r->n;
    while (true) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && is_space(*b)) b++;
        while (e > b && is_space(e[-1])) e--;
        if (b == e) {
            /* An empty entry is almost always a typo (",," or a trailing comma
             * meant to be followed by a name): say so rather than guess. */
            wr_error_set(err, WR_INVALID, "%s: empty pattern in '%s'", kind_name(kind), patterns ? patterns : "");
            goto fail;
        }
        if (add_one(r, kind, b, (size_t)(e - b), err) != WR_OK) goto fail;
        if (!comma) break;
        p = comma + 1;
    }
    return WR_OK;

fail:
    /* All or nothing: drop the patterns of this call already added. */
    while (r->n > before) {
        Rule *rule = &r->rules[--r->n];
        free(rule->text);
        for (int i = 0; i < rule->nparts; i++) free(rule->parts[i]);
    }
    return err ? err->status : WR_INVALID;
}

void tracking_set_allow_suppress(TrackingRules *r, bool allow) { r->allow_suppress = allow; }

bool tracking_allow_suppress(const TrackingRules *r) { return r && r->allow_suppress; }

void tracking_set_private_table(TrackingRules *r, const char *nsp, const char *rel)
{
    free(r->private_nsp);
    free(r->private_rel);
    r->private_nsp = xstrdup(nsp);
    r->private_rel = xstrdup(rel);
}

bool tracking_table_excluded(const TrackingRules *r, const char *nsp, const char *rel)
{
    if (!r) return false;
    if (r->private_nsp && strcmp(r->private_nsp, nsp) == 0 && strcmp(r->private_rel, rel) == 0) return true;
    for (size_t i = 0; i < r->n; i++) {
        const Rule *rule = &r->rules[i];
        if (rule->kind == RULE_EXCLUDE && glob_match(rule->parts[0], nsp) && glob_match(rule->parts[1], rel))
            return true;
    }
    return false;
}

TrackMode tracking_column_mode(const TrackingRules *r, const char *nsp, const char *rel, const char *col)
{
    if (!r) return TRACK_FULL;
    bool hidden = false;
    for (size_t i = 0; i < r->n; i++) {
        const Rule *rule = &r->rules[i];
        if (rule->kind == RULE_EXCLUDE) continue;
        if (!glob_match(rule->parts[0], nsp) || !glob_match(rule->parts[1], rel) || !glob_match(rule->parts[2], col))
            continue;
        /* Untracked records strictly less than hidden (not even that the
         * column changed), so when both match, untracked wins. */
        if (rule->kind == RULE_UNTRACKED) return TRACK_UNTRACKED;
        hidden = true;
    }
    return hidden ? TRACK_HIDDEN : TRACK_FULL;
}

void tracking_describe(const TrackingRules *r, StrBuf *out)
{
    static const RuleKind order[] = {RULE_EXCLUDE, RULE_UNTRACKED, RULE_HIDDEN};
    static const char *what[] = {
        "excluded tables (no history at all)",
        "untracked columns (changes ignored)",
        "hidden columns (changes recorded, values never)",
    };
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        strbuf_appendf(out, "%s:\n", what[k]);
        size_t count = 0;
        for (size_t i = 0; r && i < r->n; i++) {
            if (r->rules[i].kind != order[k]) continue;
            strbuf_appendf(out, "  %s\n", r->rules[i].text);
            count++;
        }
        if (count == 0) strbuf_append_str(out, "  (none)\n");
    }
    strbuf_appendf(out, "suppression by context: %s\n", tracking_allow_suppress(r) ? "allowed" : "not allowed");
}
