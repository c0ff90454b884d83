/*
 * config.c — loads walrev's configuration (docs/configuration.md): defaults,
 * then the INI file (inih), then WALREV_* environment variables; main.c
 * applies flags last. Every error names the file and line (or the variable).
 * Must never put a secret (password, Kafka credentials) into an error or a
 * log line: errors quote keys, and values only of non-secret settings.
 */
#include "worker/config.h"
#include "exporter/metrics_server.h"

#include <errno.h>
#include <stddef.h>
#include <ini.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <openssl/crypto.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1024 * 1024)

static void set_str(char **dst, const char *value)
{
    free(*dst);
    *dst = value ? xstrdup(value) : NULL;
}

void config_init(Config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->slot_name = xstrdup("walrev");
    cfg->publication = xstrdup("walrev");
    cfg->history_enabled = true;
    cfg->history_schema = xstrdup("walrev");
    cfg->batch_max_revisions = 2000;
    cfg->batch_max_ms = 20;
    cfg->keyframe_factor = 1;
    cfg->retain_interval_s = 3600;
    cfg->compact_interval_s = 3600;
    cfg->kafka_topic_prefix = xstrdup("walrev");
    cfg->status_interval_ms = 1000;
    cfg->row_cache_bytes = 16 * MIB;
    cfg->backfill_chunk_rows = 1000;
    pgio_options_default(&cfg->pgio);
    cfg->slot_create_timeout_s = 120;
    cfg->reconcile_interval_s = 0;
    cfg->reconcile_rows_per_second = 10000;
    cfg->tracking = tracking_create();
    cfg->log_level = LOG_LEVEL_INFO;
}

void config_term(Config *cfg)
{
    if (!cfg) return;
    free(cfg->source_conninfo);
    free(cfg->slot_name);
    free(cfg->publication);
    for (int i = 0; i < cfg->ntables; i++) free(cfg->tables[i]);
    free(cfg->tables);
    free(cfg->history_conninfo);
    free(cfg->history_schema);
    free(cfg->file_path);
    free(cfg->kafka_topic_prefix);
    free(cfg->metrics_listen);
    props_free(cfg->kafka_props, cfg->nkafka_props);
    tracking_destroy(cfg->tracking);
    for (int i = 0; i < cfg->nactor_keys; i++) {
        free(cfg->actor_keys[i].name);
        OPENSSL_cleanse(&cfg->actor_keys[i], sizeof(cfg->actor_keys[i]));
    }
    free(cfg->actor_keys);
    for (int i = 0; i < cfg->nactor_roles; i++) {
        free(cfg->actor_roles[i].role);
        for (int j = 0; j < cfg->actor_roles[i].nactors; j++) free(cfg->actor_roles[i].actors[j]);
        free(cfg->actor_roles[i].actors);
    }
    free(cfg->actor_roles);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- value parsers: return false with a message fragment in why ---- */

/* A number in [min, max]: a decimal one ("0.5", "4"), or with integer a
 * whole one in base 10 (then the message says integer, and the range shows no
 * fraction). */
static bool parse_number(const char *s, bool integer, double min, double max, double *out, char *why, size_t whylen)
{
    char *end;
    errno = 0;
    double v = integer ? (double)strtol(s, &end, 10) : strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v != v) {
        snprintf(why, whylen, "'%s' is not %s", s, integer ? "an integer" : "a number");
        return false;
    }
    if (v < min || v > max) {
        if (integer)
            snprintf(why, whylen, "%.0f is out of range [%.0f, %.0f]", v, min, max);
        else
            snprintf(why, whylen, "%g is out of range [%g, %g]", v, min, max);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_real(const char *s, double min, double max, double *out, char *why, size_t whylen)
{
    return parse_number(s, false, min, max, out, why, whylen);
}

static bool parse_int(const char *s, long min, long max, int *out, char *why, size_t whylen)
{
    double v;
    if (!parse_number(s, true, (double)min, (double)max, &v, why, whylen)) return false;
    *out = (int)v;
    return true;
}

/*
 * A retention period: "730 days" (also day, d), hours (h), minutes (min),
 * seconds (s); a bare number is days. 0 keeps everything; at most 100 years.
 */
static bool parse_period(const char *s, long long *out, char *why, size_t whylen)
{
    static const struct {
        const char *name;
        long long secs;
    } units[] = {{"", 86400},    {"d", 86400},    {"day", 86400}, {"days", 86400}, {"h", 3600},
                 {"hour", 3600}, {"hours", 3600}, {"min", 60},    {"minute", 60},  {"minutes", 60},
                 {"s", 1},       {"second", 1},   {"seconds", 1}};
    size_t n = strspn(s, "0123456789");
    const char *unit = s + n;
    while (*unit == ' ') unit++;
    long long secs = -1;
    for (size_t i = 0; n > 0 && n <= 12 && i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i].name) == 0) secs = units[i].secs;
    if (secs < 0) {
        snprintf(why, whylen, "'%s' is not a period (e.g. 730 days, 12 hours)", s);
        return false;
    }
    long long v = strtoll(s, NULL, 10) * secs;
    if (v > 100LL * 366 * 86400) {
        snprintf(why, whylen, "'%s' is longer than 100 years", s);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out, char *why, size_t whylen)
{
    static const char *yes[] = {"true", "yes", "on", "1"};
    static const char *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return (*out = true), true;
        if (strcasecmp(s, no[i]) == 0) return (*out = false), true;
    }
    snprintf(why, whylen, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", s);
    return false;
}

static bool parse_level(const char *s, LogLevel *out, char *why, size_t whylen)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) return (*out = (LogLevel)i), true;
    }
    if (strcasecmp(s, "warning") == 0) return (*out = LOG_LEVEL_WARN), true;
    snprintf(why, whylen, "unknown level '%s' (error, warn, info or debug)", s);
    return false;
}

/* A comma-separated list's next item at *p, the blanks around it trimmed, as
 * [*b, *e); *p moves past its comma, or to NULL after the last item. */
static void next_item(const char **p, const char **b, const char **e)
{
    const char *comma = strchr(*p, ',');
    *b = *p;
    *e = comma ? comma : *p + strlen(*p);
    while (*b < *e && (**b == ' ' || **b == '\t')) (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
    *p = comma ? comma + 1 : NULL;
}

/* Split a comma-separated list into cfg->tables (appending). */
static bool add_tables(Config *cfg, const char *list, char *why, size_t whylen)
{
    for (const char *p = list; p;) {
        const char *b, *e;
        next_item(&p, &b, &e);
        if (b == e) {
            snprintf(why, whylen, "empty table name in '%s'", list);
            return false;
        }
        cfg->tables = xrealloc(cfg->tables, (size_t)(cfg->ntables + 1) * sizeof(char *));
        cfg->tables[cfg->ntables++] = xstrndup(b, (size_t)(e - b));
    }
    return true;
}

/* [actors] key.APP = hex: an application's HMAC key (16 to 64 bytes). A later
 * one of the same name replaces it. The value is a secret: never in why. */
static bool add_actor_key(Config *cfg, const char *app, const char *hex, char *why, size_t whylen)
{
    size_t n = strlen(hex);
    uint8_t key[64];
    if (!*app) {
        snprintf(why, whylen, "an application name is needed after 'key.'");
        return false;
    }
    if (n % 2 != 0 || n < 32 || n > 128) {
        snprintf(why, whylen, "the key must be 32 to 128 hex digits (16 to 64 bytes; `openssl rand -hex 32`)");
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) {
                OPENSSL_cleanse(key, sizeof(key));
                snprintf(why, whylen, "the key must be hex digits only");
                return false;
            }
            v = v * 16 + (unsigned)d;
        }
        key[i] = (uint8_t)v;
    }
    ContextAppKey *k = NULL;
    for (int i = 0; i < cfg->nactor_keys && !k; i++)
        if (strcmp(cfg->actor_keys[i].name, app) == 0) k = &cfg->actor_keys[i];
    if (!k) {
        cfg->actor_keys = xrealloc(cfg->actor_keys, (size_t)(cfg->nactor_keys + 1) * sizeof(ContextAppKey));
        k = &cfg->actor_keys[cfg->nactor_keys++];
        k->name = xstrdup(app);
    }
    context_key_pads(key, n / 2, k->ipad, k->opad);
    OPENSSL_cleanse(key, sizeof(key));
    return true;
}

/* [actors] role.ROLE = TYPE:ID, TYPE:*, ...: the actors ROLE may claim. A later one replaces it. */
static bool add_actor_role(Config *cfg, const char *role, const char *list, char *why, size_t whylen)
{
    if (!*role) {
        snprintf(why, whylen, "a role name is needed after 'role.'");
        return false;
    }
    ContextRoleBinding b = {xstrdup(role), NULL, 0};
    bool ok = true;
    for (const char *p = list; ok && p;) {
        const char *s, *e;
        next_item(&p, &s, &e);
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (s == e || !colon || colon == s || colon + 1 == e) {
            snprintf(why, whylen, "'%.*s' is not an actor TYPE:ID or TYPE:*", (int)(e - s), s);
            ok = false;
            break;
        }
        b.actors = xrealloc(b.actors, (size_t)(b.nactors + 1) * sizeof(char *));
        b.actors[b.nactors++] = xstrndup(s, (size_t)(e - s));
    }
    if (!ok) {
        for (int i = 0; i < b.nactors; i++) free(b.actors[i]);
        free(b.actors);
        free(b.role);
        return false;
    }
    for (int i = 0; i < cfg->nactor_roles; i++) {
        if (strcmp(cfg->actor_roles[i].role, role) == 0) {
            for (int j = 0; j < cfg->actor_roles[i].nactors; j++) free(cfg->actor_roles[i].actors[j]);
            free(cfg->actor_roles[i].actors);
            free(b.role);
            cfg->actor_roles[i].actors = b.actors;
            cfg->actor_roles[i].nactors = b.nactors;
            return true;
        }
    }
    cfg->actor_roles = xrealloc(cfg->actor_roles, (size_t)(cfg->nactor_roles + 1) * sizeof(ContextRoleBinding));
    cfg->actor_roles[cfg->nactor_roles++] = b;
    return true;
}

const ContextStrict *config_strict(const Config *cfg, ContextStrict *out)
{
    if (cfg->nactor_keys == 0 && cfg->nactor_roles == 0) return NULL;
    *out = (ContextStrict){cfg->actor_keys, cfg->nactor_keys, cfg->actor_roles, cfg->nactor_roles};
    return out;
}

/* librdkafka properties that may hold secrets: their values never appear in
 * errors. Every sasl.* and ssl.* property counts, to err on the safe side. */
static bool kafka_key_is_secret(const char *name)
{
    return strncmp(name, "sasl.", 5) == 0 || strncmp(name, "ssl.", 4) == 0 || strstr(name, "password") ||
           strstr(name, "secret") || strstr(name, "key") || strstr(name, "token") || strstr(name, "jaas");
}

/* Check a librdkafka property against librdkafka itself, so a typo fails at
 * load time with a line number instead of at the first connect. */
static bool check_kafka_prop(const char *name, const char *value, char *why, size_t whylen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));
    rd_kafka_conf_destroy(conf);
    if (res == RD_KAFKA_CONF_OK) return true;
    if (res == RD_KAFKA_CONF_UNKNOWN)
        snprintf(why, whylen, "unknown librdkafka property '%s'", name);
    else if (kafka_key_is_secret(name))
        snprintf(why, whylen, "invalid value for librdkafka property '%s'", name);
    else
        snprintf(why, whylen, "%s", errstr);
    return false;
}

static void add_kafka_prop(Config *cfg, const char *name, const char *value)
{
    props_set(&cfg->kafka_props, &cfg->nkafka_props, name, value);
    if (strcmp(name, "bootstrap.servers") == 0) cfg->kafka_enabled = true;
}

/* The settings that are one plain value of Config (a string, a boolean, an
 * int in a range): one row each here instead of a branch of config_set. */
/* SET_SLOT, SET_NAME and SET_CONNINFO are strings checked as they are set,
 * so the error says which layer gave the bad value (file and line, the
 * environment variable, the flag) instead of only the merged result. */
typedef enum { SET_STR, SET_SLOT, SET_NAME, SET_CONNINFO, SET_BOOL, SET_INT } SettingKind;
static const struct {
    const char *section, *name;
    SettingKind kind;
    long min, max; /* SET_INT */
    size_t offset; /* of the char *, bool or int in Config */
} SETTINGS[] = {
    {"source", "conninfo", SET_CONNINFO, 0, 0, offsetof(Config, source_conninfo)},
    {"source", "slot", SET_SLOT, 0, 0, offsetof(Config, slot_name)},
    {"source", "publication", SET_NAME, 0, 0, offsetof(Config, publication)},
    {"history", "conninfo", SET_CONNINFO, 0, 0, offsetof(Config, history_conninfo)},
    {"history", "schema", SET_NAME, 0, 0, offsetof(Config, history_schema)},
    {"file", "path", SET_STR, 0, 0, offsetof(Config, file_path)},
    {"kafka", "topic_prefix", SET_STR, 0, 0, offsetof(Config, kafka_topic_prefix)},
    {"history", "enabled", SET_BOOL, 0, 0, offsetof(Config, history_enabled)},
    {"source", "allow_unrecorded_leaves", SET_BOOL, 0, 0, offsetof(Config, allow_unrecorded_leaves)},
    {"kafka", "erase_tombstones", SET_BOOL, 0, 0, offsetof(Config, kafka_erase_tombstones)},
    {"history", "batch_max_revisions", SET_INT, 1, 1000000, offsetof(Config, batch_max_revisions)},
    {"history", "batch_max_ms", SET_INT, 1, 600000, offsetof(Config, batch_max_ms)},
    {"history", "partition_revisions", SET_INT, 1, 1000000000, offsetof(Config, partition_revisions)},
    {"history", "retain_interval", SET_INT, 1, 86400, offsetof(Config, retain_interval_s)},
    {"history", "compact_interval", SET_INT, 0, 86400, offsetof(Config, compact_interval_s)},
    {"worker", "status_interval_ms", SET_INT, 10, 3600000, offsetof(Config, status_interval_ms)},
    {"worker", "backfill_chunk_rows", SET_INT, 1, 1000000, offsetof(Config, backfill_chunk_rows)},
    {"worker", "connect_timeout", SET_INT, 0, 3600, offsetof(Config, pgio.connect_timeout_s)},
    {"worker", "tcp_keepalives_idle", SET_INT, 0, 7200, offsetof(Config, pgio.keepalives_idle_s)},
    {"worker", "tcp_keepalives_interval", SET_INT, 1, 3600, offsetof(Config, pgio.keepalives_interval_s)},
    {"worker", "tcp_keepalives_count", SET_INT, 1, 100, offsetof(Config, pgio.keepalives_count)},
    {"worker", "slot_create_timeout", SET_INT, 0, 86400, offsetof(Config, slot_create_timeout_s)},
    {"worker", "reconcile_interval", SET_INT, 0, 31536000, offsetof(Config, reconcile_interval_s)},
    {"worker", "reconcile_rows_per_second", SET_INT, 0, 100000000, offsetof(Config, reconcile_rows_per_second)},
    {"worker", "reply_timeout_ms", SET_INT, 0, 86400000, offsetof(Config, pgio.reply_timeout_ms)},
    {"branches", "required_approvals", SET_INT, 0, 100, offsetof(Config, required_approvals)},
};

/* PostgreSQL accepts only lower-case letters, digits and '_' in slot names. */
static bool valid_slot_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

/* libpq's parse of a conninfo; false with why filled (libpq's message quotes
 * the offending keyword, never a value). */
static bool check_conninfo(const char *conninfo, char *why, size_t whylen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts) {
        PQconninfoFree(opts);
        return true;
    }
    snprintf(why, whylen, "not a valid conninfo: %s", perr ? perr : "out of memory");
    size_t n = strlen(why);
    if (n && why[n - 1] == '\n') why[n - 1] = '\0';
    PQfreemem(perr);
    return false;
}

/* A string setting checked by its kind, then set; false with why filled. */
static bool set_checked_str(char **field, SettingKind kind, const char *value, char *why, size_t whylen)
{
    if (kind == SET_SLOT && !valid_slot_name(value)) {
        snprintf(why, whylen, "slot name '%.200s' is not valid: use 1-63 lower-case letters, digits or _", value);
        return false;
    }
    if (kind == SET_NAME && (value[0] == '\0' || strlen(value) > 63)) {
        snprintf(why, whylen, "'%.200s' is not a name of 1 to 63 characters", value);
        return false;
    }
    if (kind == SET_CONNINFO && !check_conninfo(value, why, whylen)) return false;
    set_str(field, value);
    return true;
}

/* Set a SETTINGS row's field from its text; false with why filled. */
static bool set_plain(Config *cfg, size_t row, const char *value, char *why, size_t whylen)
{
    void *field = (char *)cfg + SETTINGS[row].offset;
    switch (SETTINGS[row].kind) {
    case SET_STR: set_str(field, value); return true;
    case SET_SLOT:
    case SET_NAME:
    case SET_CONNINFO: return set_checked_str(field, SETTINGS[row].kind, value, why, whylen);
    case SET_BOOL: return parse_bool(value, field, why, whylen);
    case SET_INT: return parse_int(value, SETTINGS[row].min, SETTINGS[row].max, field, why, whylen);
    }
    return false;
}

/* Set one key of one section. Returns false with why filled; *unknown tells
 * "no such key" apart from "bad value". */
static bool config_set(Config *cfg, const char *section, const char *name, const char *value, bool *unknown, char *why,
                       size_t whylen)
{
    *unknown = false;
    int iv;
    bool bv;
    WrError terr;
#define IS(s, k) (strcmp(section, s) == 0 && strcmp(name, k) == 0)
    for (size_t i = 0; i < sizeof(SETTINGS) / sizeof(SETTINGS[0]); i++)
        if (IS(SETTINGS[i].section, SETTINGS[i].name)) return set_plain(cfg, i, value, why, whylen);
    if (IS("source", "tables"))
        return add_tables(cfg, value, why, whylen);
    else if (IS("history", "synchronous_commit")) {
        if (strcasecmp(value, "auto") == 0) {
            cfg->history_commit = CONFIG_COMMIT_AUTO;
        } else if (parse_bool(value, &bv, why, whylen)) {
            cfg->history_commit = bv ? CONFIG_COMMIT_ON : CONFIG_COMMIT_OFF;
        } else {
            snprintf(why, whylen, "'%s' is not auto or a boolean (true/false, yes/no, on/off, 1/0)", value);
            return false;
        }
    } else if (IS("history", "keyframe_factor")) {
        if (!parse_real(value, 0.01, 1000, &cfg->keyframe_factor, why, whylen)) return false;
    } else if (IS("history", "retain")) {
        if (!parse_period(value, &cfg->retain_s, why, whylen)) return false;
    } else if (strcmp(section, "kafka") == 0) {
        if (!check_kafka_prop(name, value, why, whylen)) return false;
        add_kafka_prop(cfg, name, value);
    } else if (IS("worker", "row_cache_mb")) {
        if (!parse_int(value, 0, 1048576, &iv, why, whylen)) return false;
        cfg->row_cache_bytes = (size_t)iv * MIB;
    } else if (IS("tracking", "exclude") || IS("tracking", "untracked") || IS("tracking", "hidden")) {
        RuleKind kind = strcmp(name, "exclude") == 0     ? RULE_EXCLUDE
                        : strcmp(name, "untracked") == 0 ? RULE_UNTRACKED
                                                         : RULE_HIDDEN;
        if (tracking_add(cfg->tracking, kind, value, &terr) != WR_OK) {
            snprintf(why, whylen, "%.500s", terr.msg);
            return false;
        }
    } else if (IS("tracking", "allow_suppress")) {
        if (!parse_bool(value, &bv, why, whylen)) return false;
        tracking_set_allow_suppress(cfg->tracking, bv);
    } else if (IS("metrics", "listen")) {
        char host[256], port[8];
        if (value[0] && !metrics_parse_listen(value, host, sizeof(host), port, sizeof(port))) {
            snprintf(why, whylen, "'%s' is not HOST:PORT ([IPV6]:PORT, :PORT for every address)", value);
            return false;
        }
        set_str(&cfg->metrics_listen, value[0] ? value : NULL); /* empty: off */
    } else if (strcmp(section, "actors") == 0 && strncmp(name, "key.", 4) == 0) {
        return add_actor_key(cfg, name + 4, value, why, whylen);
    } else if (strcmp(section, "actors") == 0 && strncmp(name, "role.", 5) == 0) {
        return add_actor_role(cfg, name + 5, value, why, whylen);
    } else if (IS("log", "level")) {
        LogLevel lv;
        if (!parse_level(value, &lv, why, whylen)) return false;
        cfg->log_level = lv;
    } else {
        *unknown = true;
        return false;
    }
#undef IS
    return true;
}

static bool known_section(const char *s)
{
    static const char *names[] = {"source",   "history", "file",     "kafka",   "worker",
                                  "tracking", "log",     "branches", "metrics", "actors"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) return true;
    return false;
}

/* ---- INI file ---- */

typedef struct {
    Config *cfg;
    const char *path;
    FILE *f;
    int lineno; /* line being parsed */
    bool at_line_start;
    WrError *err;
    bool failed;
    int failed_line;
} Loader;

static bool known_section(const char *s);

/* inih (built without INI_CALL_HANDLER_ON_NEW_SECTION) calls the handler for
 * keys only, so a misspelt section with no key under it, or only commented
 * ones, would pass unnoticed: a section header is checked here, as read. */
static void check_section_line(Loader *ld, const char *line)
{
    if (ld->failed) return;
    if (ld->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3; /* inih skips a BOM */
    while (*line == ' ' || *line == '\t') line++;
    if (*line != '[') return;
    const char *end = strchr(line + 1, ']');
    if (!end) return; /* inih reports the syntax error */
    char section[128];
    size_t n = (size_t)(end - line - 1);
    if (n >= sizeof(section)) n = sizeof(section) - 1;
    memcpy(section, line + 1, n);
    section[n] = '\0';
    if (known_section(section)) return;
    wr_error_set(ld->err, WR_INVALID, "%s:%d: unknown section [%s]", ld->path, ld->lineno, section);
    ld->failed = true;
    ld->failed_line = ld->lineno;
}

/* fgets-style reader for inih that counts lines, so the handler knows where
 * it is: inih is built here without INI_HANDLER_LINENO. A line longer than the
 * buffer arrives in several chunks; only a chunk after a newline starts a line. */
static char *loader_read(char *str, int num, void *stream)
{
    Loader *ld = stream;
    char *s = fgets(str, num, ld->f);
    if (!s) return NULL;
    if (ld->at_line_start) {
        ld->lineno++;
        check_section_line(ld, s);
    }
    size_t len = strlen(s);
    ld->at_line_start = len > 0 && s[len - 1] == '\n';
    return s;
}

static int loader_handle(void *user, const char *section, const char *name, const char *value)
{
    Loader *ld = user;
    if (ld->failed) return 1; /* keep the first error only */
    ld->failed_line = ld->lineno;
    char why[600];
    bool unknown;
    if (!known_section(section)) {
        if (section[0] == '\0')
            wr_error_set(ld->err, WR_INVALID, "%s:%d: key '%s' outside any [section]", ld->path, ld->lineno, name);
        else
            wr_error_set(ld->err, WR_INVALID, "%s:%d: unknown section [%s]", ld->path, ld->lineno, section);
        ld->failed = true;
        return 0;
    }
    if (!config_set(ld->cfg, section, name, value, &unknown, why, sizeof(why))) {
        if (unknown)
            wr_error_set(ld->err, WR_INVALID, "%s:%d: unknown key '%s' in [%s]", ld->path, ld->lineno, name, section);
        else
            wr_error_set(ld->err, WR_INVALID, "%s:%d: [%s] %s: %s", ld->path, ld->lineno, section, name, why);
        ld->failed = true;
        return 0;
    }
    return 1;
}

WrStatus config_load_file(Config *cfg, const char *path, WrError *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return wr_error_set(err, WR_INVALID, "cannot open config file %s: %s", path, strerror(errno));
    /* Debian's libinih exposes its compile-time switches as variables. Values
     * may be long (conninfo with TLS options) and may contain ';' (passwords
     * in Kafka SASL settings), so: heap line buffer that grows, no inline
     * comments, and no indented continuation lines (repeat a key instead). */
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = 64 * 1024;
    ini_allow_inline_comments = false;
    ini_allow_multiline = false;
    ini_stop_on_first_error = false;

    Loader ld = {.cfg = cfg, .path = path, .f = f, .at_line_start = true, .err = err};
    int rc = ini_parse_stream(loader_read, &ld, loader_handle, &ld);
    bool read_error = ferror(f) != 0;
    fclose(f);
    /* inih reports its own syntax errors by line only; whichever came first wins. */
    if (ld.failed && !(rc > 0 && rc < ld.failed_line)) return WR_INVALID;
    if (read_error) return wr_error_set(err, WR_INVALID, "cannot read config file %s", path);
    if (rc == -2) return wr_error_set(err, WR_FATAL, "out of memory reading %s", path);
    if (rc > 0)
        return wr_error_set(err, WR_INVALID,
                            "%s:%d: syntax error (expected [section], key = value or a comment "
                            "starting with # or ;)",
                            path, rc);
    if (rc != 0) return wr_error_set(err, WR_INVALID, "cannot read config file %s", path);
    return WR_OK;
}

/* ---- environment ---- */

typedef struct {
    const char *var;
    const char *section;
    const char *key;
} EnvMap;

static const EnvMap env_map[] = {
    {"WALREV_SOURCE", "source", "conninfo"},
    {"WALREV_HISTORY", "history", "conninfo"},
    {"WALREV_SCHEMA", "history", "schema"},
    {"WALREV_SLOT", "source", "slot"},
    {"WALREV_PUBLICATION", "source", "publication"},
    {"WALREV_LOG_LEVEL", "log", "level"},
    {"WALREV_FILE", "file", "path"},
    {"WALREV_METRICS_LISTEN", "metrics", "listen"},
};

WrStatus config_load_env(Config *cfg, WrError *err)
{
    for (size_t i = 0; i < sizeof(env_map) / sizeof(env_map[0]); i++) {
        const char *v = getenv(env_map[i].var);
        if (!v) continue;
        char why[600];
        bool unknown;
        if (!config_set(cfg, env_map[i].section, env_map[i].key, v, &unknown, why, sizeof(why)))
            return wr_error_set(err, WR_INVALID, "environment %s: %s", env_map[i].var, why);
    }
    return WR_OK;
}

WrStatus config_set_option(Config *cfg, const char *section, const char *key, const char *value, WrError *err)
{
    char why[600];
    bool unknown;
    if (!config_set(cfg, section, key, value, &unknown, why, sizeof(why))) {
        if (unknown) return wr_error_set(err, WR_INVALID, "unknown key '%s' in [%s]", key, section);
        return wr_error_set(err, WR_INVALID, "[%s] %s: %s", section, key, why);
    }
    return WR_OK;
}

/* ---- validation ---- */

WrStatus config_validate(Config *cfg, WrError *err)
{
    (void)err; /* every value was checked as it was set (set_checked_str) */
    /* No conninfo is libpq's defaults, as for psql and pg_recvlogical: PGHOST,
     * PGPORT, PGDATABASE, PGUSER, PGSERVICE, ~/.pgpass. */
    if (!cfg->source_conninfo) cfg->source_conninfo = xstrdup("");
    if (!cfg->history_conninfo) cfg->history_conninfo = xstrdup(cfg->source_conninfo);
    if (cfg->file_path && cfg->file_path[0] == '\0') {
        free(cfg->file_path);
        cfg->file_path = NULL;
    }
    return WR_OK;
}

/* ---- redaction ---- */

char *config_redact_conninfo(const char *conninfo) { return pgio_redact_conninfo(conninfo); }

bool config_conninfo_has_password(const char *conninfo)
{
    if (!conninfo) return false;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    if (!opts) return strstr(conninfo, "password") != NULL;
    bool found = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if ((strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0) && o->val && o->val[0])
            found = true;
    PQconninfoFree(opts);
    return found;
}
