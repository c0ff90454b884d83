/*
 * main.c — the walrev command line (docs/cli.md): global options, then a
 * command and its options. Builds the Config (defaults < file < environment <
 * flags), installs the signal handlers and dispatches. The only place that
 * calls exit(). Exit codes: 0 success, 1 runtime failure, 2 usage or
 * configuration error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "replay/replay.h"
#include "baseline/baseline.h"
#include "baseline/reconcile.h"
#include "setup/setup.h"
#include "tail/tail.h"
#include "decoder/stream.h"
#include "worker/config.h"
#include "worker/notify.h"
#include "worker/pipeline.h"

#include "exporter/metrics_server.h"
#include "status/status.h"

#ifndef WALREV_VERSION
#define WALREV_VERSION "dev"
#endif

#define EXIT_USAGE 2

typedef enum { CMD_SETUP, CMD_RUN, CMD_RULES, CMD_TAIL, CMD_REPLAY, CMD_BASELINE, CMD_STATUS } CommandKind;

typedef struct {
    const char *name;
    CommandKind kind;
    const char *summary;
} Command;

static const Command commands[] = {
    {"setup", CMD_SETUP, "check the source and create the history store, publication and slot"},
    {"run", CMD_RUN, "stream the slot into the history store and other sinks"},
    {"status", CMD_STATUS, "the slot, lag, rates, positions and errors; exit 1 when degraded"},
    {"rules", CMD_RULES, "print the tracking rules (and strict mode's policy) in force"},
    {"baseline", CMD_BASELINE, "request a table's baseline; show every table's"},
    {"tail", CMD_TAIL, "follow revisions as they are stored"},
    {"verify", CMD_REPLAY, "recompute the checksum chain"},
    {"snapshot", CMD_REPLAY, "a table as of a revision"},
    {"log", CMD_REPLAY, "list revisions"},
    {"show", CMD_REPLAY, "one revision with its deltas"},
    {"history", CMD_REPLAY, "the changes of one row"},
    {"blame", CMD_REPLAY, "who last changed each column of a row"},
    {"diff", CMD_REPLAY, "what changed between two revisions"},
    {"restore", CMD_REPLAY, "put rows back as of a revision"},
    {"revert", CMD_REPLAY, "undo one revision"},
    {"rollback", CMD_REPLAY, "undo every revision after one"},
    {"branch", CMD_REPLAY, "create, list or drop a branch of the tracked tables"},
    {"merge", CMD_REPLAY, "merge a branch into main (plan; --apply)"},
    {"review", CMD_REPLAY, "a branch's change request; --approve"},
    {"erase", CMD_REPLAY, "erase an object's values from the history (GDPR), keeping the chain"},
    {"prune", CMD_REPLAY, "drop the history before a point by whole partitions (retention)"},
    {"compact", CMD_REPLAY, "rebuild the indexes of history partitions no longer written, full"},
};

/* Options every command accepts, before or after the command (for tail and
 * the replay commands split_command_args takes them out of the command's). */
typedef struct {
    const char *config_file;
    char *source; /* not const: scrubbed in argv when it holds a password */
    char *history;
    const char *schema;
    const char *slot;
    const char *publication;
    int verbose;
    int quiet;
    bool help;
    bool version;
    /* setup */
    SetupOptions setup;
    /* run */
    const char *stop_lsn;
    const char *file;
    bool no_history;
    const char *backfill_chunk_rows;
    const char *metrics_listen;
    /* baseline */
    char **tables; /* point into argv */
    int ntables;
    OutFormat format;      /* --format: aligned (default), csv, json */
    const char *null_text; /* --null: NULL in aligned output */
    /* tail and replay: the command's own arguments once the global options
     * are taken out (split_command_args); owned, the strings are argv's or
     * in made[] */
    char **cmd_argv;
    int cmd_argc;
    char **made;
    int nmade;
} Options;

enum {
    OPT_SOURCE = 1000,
    OPT_HISTORY,
    OPT_SCHEMA,
    OPT_SLOT,
    OPT_PUBLICATION,
    OPT_STOP_LSN,
    OPT_FILE,
    OPT_NO_HISTORY,
    OPT_RI_FULL,
    OPT_CHECK,
    OPT_NO_BASELINE,
    OPT_BACKFILL_CHUNK_ROWS,
    OPT_TABLE,
    OPT_METRICS_LISTEN,
    OPT_FORMAT,
    OPT_NULL,
};

#define GLOBAL_LONG_OPTIONS                                                                                       \
    {"config", required_argument, NULL, 'c'}, {"source", required_argument, NULL, OPT_SOURCE},                    \
        {"history", required_argument, NULL, OPT_HISTORY}, {"schema", required_argument, NULL, OPT_SCHEMA},       \
        {"slot", required_argument, NULL, OPT_SLOT}, {"publication", required_argument, NULL, OPT_PUBLICATION},   \
        {"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, \
    {                                                                                                             \
        "version", no_argument, NULL, 'V'                                                                         \
    }

static const struct option global_options[] = {GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
static const struct option setup_options[] = {
    GLOBAL_LONG_OPTIONS,
    {"replica-identity-full", no_argument, NULL, OPT_RI_FULL},
    {"check", no_argument, NULL, OPT_CHECK},
    {"no-baseline", no_argument, NULL, OPT_NO_BASELINE},
    {NULL, 0, NULL, 0},
};
static const struct option run_options[] = {
    GLOBAL_LONG_OPTIONS,
    {"stop-lsn", required_argument, NULL, OPT_STOP_LSN},
    {"file", required_argument, NULL, OPT_FILE},
    {"no-history", no_argument, NULL, OPT_NO_HISTORY},
    {"backfill-chunk-rows", required_argument, NULL, OPT_BACKFILL_CHUNK_ROWS},
    {"metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN},
    {NULL, 0, NULL, 0},
};
static const struct option baseline_options[] = {
    GLOBAL_LONG_OPTIONS,
    {"table", required_argument, NULL, OPT_TABLE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"null", required_argument, NULL, OPT_NULL},
    {NULL, 0, NULL, 0},
};
#define SHORT_OPTIONS "+:c:vqhV"

static void print_usage(FILE *out)
{
    fprintf(out, "walrev — history of a PostgreSQL database from its write-ahead log\n\n"
                 "usage: walrev [global options] COMMAND [options]\n\n"
                 "global options:\n"
                 "  -c, --config FILE        read settings from FILE (INI, docs/configuration.md)\n"
                 "      --source CONNINFO    the tracked database (libpq conninfo; default: libpq's\n"
                 "                           defaults, PGHOST, PGDATABASE, PGSERVICE..., as psql)\n"
                 "      --history CONNINFO   the history store's database (default: the source)\n"
                 "      --schema NAME        the history schema (default walrev)\n"
                 "      --slot NAME          the replication slot (default walrev)\n"
                 "      --publication NAME   the publication (default walrev)\n"
                 "  -v, --verbose            log more (repeat for more)\n"
                 "  -q, --quiet              log less (repeat for less)\n"
                 "  -h, --help               show this help (walrev COMMAND --help for a command)\n"
                 "  -V, --version            show the version\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nPasswords do not belong on the command line: use ~/.pgpass, PGPASSWORD or a\n"
                 "service file (PGSERVICE). Exit status: 0 ok, 1 failure, 2 usage or config error.\n");
}

/* `walrev CMD --help`: docs/cli.md holds each verbatim (test_cli_help.sh). */
static void print_command_help(const char *cmd, FILE *out)
{
    if (strcmp(cmd, "setup") == 0)
        fprintf(out, "usage: walrev [global options] setup [--check] [--replica-identity-full] [--no-baseline]\n\n"
                     "  --check                  run the checks only; change nothing\n"
                     "  --replica-identity-full  set REPLICA IDENTITY FULL on published tables\n"
                     "  --no-baseline            do not record the existing rows as the first revision\n");
    else if (strcmp(cmd, "run") == 0)
        fprintf(out, "usage: walrev [global options] run [--stop-lsn LSN] [--file PATH|-] "
                     "[--no-history] [--backfill-chunk-rows N]\n"
                     "                                   [--metrics-listen HOST:PORT]\n\n"
                     "  --stop-lsn LSN             stop once everything up to LSN (X/X) is durable\n"
                     "  --file PATH|-              also write revisions as msgpack to PATH (- = stdout)\n"
                     "  --no-history               do not write the history store\n"
                     "  --backfill-chunk-rows N    rows per chunk of a later table's baseline (default 1000)\n"
                     "  --metrics-listen HOST:PORT serve Prometheus metrics at http://HOST:PORT/metrics\n");
    else if (strcmp(cmd, "baseline") == 0)
        fprintf(out, "usage: walrev [global options] baseline [--table TABLE]... [--format F] [--null TEXT]\n\n"
                     "  --table TABLE    request a new baseline of TABLE (repeatable); the running worker\n"
                     "                   records the rows the history lacks\n"
                     "  --format F       aligned (default), csv or json\n"
                     "  --null TEXT      how aligned output shows NULL (default: empty, as psql)\n\n"
                     "then prints the state of every table's baseline\n");
    else if (strcmp(cmd, "rules") == 0)
        fprintf(out, "usage: walrev [global options] rules\n\n"
                     "prints the tracking rules ([tracking] in the config file) and strict mode's\n"
                     "policy ([actors]) when it is on\n");
    else if (strcmp(cmd, "tail") == 0)
        tail_print_help(out);
    else if (strcmp(cmd, "status") == 0)
        status_print_help(out);
    else
        replay_print_help(cmd, out);
    fprintf(out, "\nGlobal options (-c, --source, --history, --schema, --slot, --publication, -v, -q)\n"
                 "may come before or after the command. See docs/cli.md.\n");
}

/* "walrev CMD: <problem> '<what>'" and a hint; returns the usage exit code. */
static int usage_error(const char *cmd, const char *problem, const char *what)
{
    fprintf(stderr, "walrev%s%s: %s '%s'", cmd ? " " : "", cmd ? cmd : "", problem, what);
    fprintf(stderr, "\nTry 'walrev %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return EXIT_USAGE;
}

/* The option text getopt stopped at, for messages ("--foo", "-x"). */
static const char *bad_option_text(int argc, char **argv, char *buf, size_t size)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (strncmp(arg, "--", 2) != 0 && optopt > ' ' && optopt < 127) {
        snprintf(buf, size, "-%c", optopt);
        return buf;
    }
    /* Drop "=value" so a value never echoes back (it might be a secret). */
    const char *eq = strchr(arg, '=');
    snprintf(buf, size, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    return buf;
}

/* Take a global option (getopt code c, its value arg) into o. False: c is
 * not a global option. */
static bool set_global_option(Options *o, int c, char *arg)
{
    switch (c) {
    case 'c': o->config_file = arg; break;
    case OPT_SOURCE: o->source = arg; break;
    case OPT_HISTORY: o->history = arg; break;
    case OPT_SCHEMA: o->schema = arg; break;
    case OPT_SLOT: o->slot = arg; break;
    case OPT_PUBLICATION: o->publication = arg; break;
    case 'v': o->verbose++; break;
    case 'q': o->quiet++; break;
    case 'h': o->help = true; break;
    case 'V': o->version = true; break;
    default: return false;
    }
    return true;
}

/* Parse options from argv[optind..]. Returns 0 to continue, or an exit code. */
static int parse_options(int argc, char **argv, const char *cmd, const struct option *longopts, Options *o)
{
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, SHORT_OPTIONS, longopts, NULL)) != -1) {
        char buf[128];
        if (set_global_option(o, c, optarg)) continue;
        switch (c) {
        case OPT_STOP_LSN: o->stop_lsn = optarg; break;
        case OPT_FILE: o->file = optarg; break;
        case OPT_NO_HISTORY: o->no_history = true; break;
        case OPT_RI_FULL: o->setup.replica_identity_full = true; break;
        case OPT_CHECK: o->setup.check_only = true; break;
        case OPT_NO_BASELINE: o->setup.no_baseline = true; break;
        case OPT_BACKFILL_CHUNK_ROWS: o->backfill_chunk_rows = optarg; break;
        case OPT_METRICS_LISTEN: o->metrics_listen = optarg; break;
        case OPT_TABLE:
            /* a name of the wrong form is said before any connection (exit 2 with the source down too) */
            if (!ident_is_qualified(optarg))
                return usage_error(cmd, "invalid table name (expected table or schema.table, quoted as in SQL)",
                                   optarg);
            o->tables = xrealloc(o->tables, (size_t)(o->ntables + 1) * sizeof(char *));
            o->tables[o->ntables++] = optarg;
            break;
        case OPT_FORMAT:
            if (!out_parse_format(optarg, &o->format))
                return usage_error(cmd, "unknown --format (expected aligned, csv or json)", optarg);
            break;
        case OPT_NULL: o->null_text = optarg; break;
        case ':': return usage_error(cmd, "missing value for option", bad_option_text(argc, argv, buf, sizeof(buf)));
        default: return usage_error(cmd, "unknown option", bad_option_text(argc, argv, buf, sizeof(buf)));
        }
    }
    return 0;
}

/* An option of the global table (want_global) or of the command's own that
 * name (the text after "--", up to '=' or len) names: an exact match, else
 * the one option it abbreviates, as getopt_long allows. *ambiguous when
 * several. */
static const struct option *find_long(const struct option *cmd_opts, const char *name, size_t len, bool *is_global,
                                      bool *ambiguous)
{
    const struct option *tables[2] = {global_options, cmd_opts};
    const struct option *hit = NULL;
    *ambiguous = false;
    for (int exact = 1; exact >= 0 && !hit; exact--) {
        for (int t = 0; t < 2; t++) {
            for (const struct option *op = tables[t]; op && op->name; op++) {
                bool match = exact ? strlen(op->name) == len && strncmp(op->name, name, len) == 0
                                   : strncmp(op->name, name, len) == 0;
                if (!match) continue;
                if (hit && !exact && strcmp(hit->name, op->name) != 0) *ambiguous = true;
                if (!hit) {
                    hit = op;
                    *is_global = t == 0;
                }
                if (exact) break;
            }
            if (exact && hit) break;
        }
    }
    return hit;
}

static char *keep_made(Options *o, char *text)
{
    o->made = xrealloc(o->made, (size_t)(o->nmade + 1) * sizeof(char *));
    o->made[o->nmade++] = text;
    return text;
}

/*
 * For commands that parse their own options (tail, the replay commands):
 * take the global options out of the command's arguments (argv[0] the
 * command's name) wherever they stand, so `walrev snapshot --source X --at 5`
 * honours --source, and leave the command's own options with their values,
 * and its operands, in o->cmd_argv in their order. Knowing the command's
 * options (and which take a value) is what keeps a value like `--key -v` or
 * `--table --help` a value. Everything after "--" is an operand. An unknown
 * option or a missing value is a usage error before any connection is made.
 * Returns 0 or an exit code.
 */
static int split_command_args(const char *cmd, const struct option *cmd_opts, const char *cmd_short, int argc,
                              char **argv, Options *o)
{
    char buf[128];
    o->cmd_argv = xcalloc(2 * (size_t)argc + 1, sizeof(char *)); /* "--x=v" becomes two */
    o->cmd_argc = 0;
    o->cmd_argv[o->cmd_argc++] = argv[0];
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            while (i < argc) o->cmd_argv[o->cmd_argc++] = argv[i++];
            break;
        }
        if (strncmp(arg, "--", 2) == 0) {
            const char *name = arg + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            bool global = false, ambiguous = false;
            const struct option *op = find_long(cmd_opts, name, len, &global, &ambiguous);
            snprintf(buf, sizeof(buf), "--%.*s", (int)len, name);
            if (!op) return usage_error(cmd, "unknown option", buf);
            if (ambiguous) return usage_error(cmd, "ambiguous option", buf);
            char *value = NULL;
            if (op->has_arg == required_argument) {
                if (eq)
                    value = arg + 2 + len + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else
                    return usage_error(cmd, "missing value for option", buf);
            } else if (eq) {
                return usage_error(cmd, "option takes no value", buf);
            }
            if (global) {
                set_global_option(o, op->val, value);
                continue;
            }
            /* the command's own: its full name, so its parser sees no abbreviation */
            o->cmd_argv[o->cmd_argc++] = keep_made(o, xasprintf("--%s", op->name));
            if (value) o->cmd_argv[o->cmd_argc++] = value;
            continue;
        }
        if (arg[0] != '-' || arg[1] == '\0') { /* an operand; "-" is stdin */
            o->cmd_argv[o->cmd_argc++] = arg;
            continue;
        }
        /* a cluster of short options: -vq, -cFILE, -c FILE, -n5 */
        for (char *p = arg + 1; *p; p++) {
            const char *g = strchr("cvqhV", *p), *own = cmd_short ? strchr(cmd_short, *p) : NULL;
            snprintf(buf, sizeof(buf), "-%c", *p);
            if (*p == ':' || (!g && !own)) return usage_error(cmd, "unknown option", buf);
            bool takes = g ? *p == 'c' : own[1] == ':';
            char *value = NULL;
            if (takes) {
                if (p[1])
                    value = p + 1;
                else if (i + 1 < argc)
                    value = argv[++i];
                else
                    return usage_error(cmd, "missing value for option", buf);
            }
            if (g) {
                set_global_option(o, *p, value);
            } else {
                o->cmd_argv[o->cmd_argc++] = keep_made(o, xasprintf("-%c", *p));
                if (value) o->cmd_argv[o->cmd_argc++] = value;
            }
            if (takes) break;
        }
    }
    o->cmd_argv[o->cmd_argc] = NULL;
    return 0;
}

/* A password given on the command line: warned about and hidden from ps(1)
 * once the conninfo is copied into the configuration. */
static void scrub_password(char *arg, const char *option)
{
    if (!config_conninfo_has_password(arg)) return;
    log_warn("msg=\"password given on the command line: other users can see it in ps; use "
             "~/.pgpass, PGPASSWORD or a service file\" option=%s",
             option);
    memset(arg, 'x', strlen(arg));
}

/* A flag's value set as its config key would be; a bad one names the flag,
 * which is where the user wrote it (the key is in the message too). */
static int apply_flag(Config *cfg, const char *flag, const char *section, const char *key, const char *value)
{
    if (!value) return 0;
    WrError err;
    if (config_set_option(cfg, section, key, value, &err) != WR_OK) {
        fprintf(stderr, "walrev: option %s: %s\n", flag, err.msg);
        return EXIT_USAGE;
    }
    return 0;
}

/* defaults < config file < environment < flags. Returns 0 or an exit code. */
static int build_config(Config *cfg, const Options *o)
{
    WrError err;
    int rc;
    config_init(cfg);
    if (o->config_file && config_load_file(cfg, o->config_file, &err) != WR_OK) {
        fprintf(stderr, "walrev: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (config_load_env(cfg, &err) != WR_OK) {
        fprintf(stderr, "walrev: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if ((rc = apply_flag(cfg, "--source", "source", "conninfo", o->source)) ||
        (rc = apply_flag(cfg, "--history", "history", "conninfo", o->history)) ||
        (rc = apply_flag(cfg, "--schema", "history", "schema", o->schema)) ||
        (rc = apply_flag(cfg, "--slot", "source", "slot", o->slot)) ||
        (rc = apply_flag(cfg, "--publication", "source", "publication", o->publication)) ||
        (rc = apply_flag(cfg, "--file", "file", "path", o->file)) ||
        (rc = apply_flag(cfg, "--backfill-chunk-rows", "worker", "backfill_chunk_rows", o->backfill_chunk_rows)) ||
        (rc = apply_flag(cfg, "--metrics-listen", "metrics", "listen", o->metrics_listen)))
        return rc;
    if (o->no_history) cfg->history_enabled = false;
    if (o->stop_lsn && !lsn_parse(o->stop_lsn, &cfg->stop_lsn)) {
        fprintf(stderr, "walrev run: --stop-lsn '%s' is not an LSN (expected X/X in hex)\n", o->stop_lsn);
        return EXIT_USAGE;
    }
    cfg->replica_identity_full = o->setup.replica_identity_full;

    int level = (int)cfg->log_level + o->verbose - o->quiet;
    if (level < LOG_LEVEL_ERROR) level = LOG_LEVEL_ERROR;
    if (level > LOG_LEVEL_DEBUG) level = LOG_LEVEL_DEBUG;
    cfg->log_level = (LogLevel)level;
    wr_log_set_level(cfg->log_level);

    /* Warn once the level is known; the values are already copied. */
    scrub_password(o->source, "--source");
    scrub_password(o->history, "--history");

    if (config_validate(cfg, &err) != WR_OK) {
        fprintf(stderr, "walrev: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return 0;
}

/*
 * The first SIGTERM/SIGINT asks for a clean stop. A second one during a slow
 * stop (brokers down, a frozen history server) ends the process at once: no
 * more is lost than by a crash, which is nothing: the slot is confirmed only
 * up to what every sink holds, so the rest is sent again at the next start.
 */
static bool stop_log_journal; /* set before the handler is installed */

/* A warning from a signal handler: a logfmt line like every other, made with
 * async-signal-safe calls only. */
static void signal_warn(const char *msg)
{
    char line[256];
    size_t n = wr_log_signal_line(line, sizeof(line), LOG_LEVEL_WARN, stop_log_journal, msg);
    ssize_t ignored = write(2, line, n);
    (void)ignored;
}

static void on_stop_signal(int sig)
{
    if (pipeline_stop_requested) {
        signal_warn("second stop signal: exiting now; what was not yet confirmed to the slot "
                    "is sent again at the next start");
        _exit(128 + sig);
    }
    pipeline_stop_requested = 1;
}

/*
 * SIGHUP's default action ends the process without a clean stop and without a
 * log line, and systemd counts a death by SIGHUP as clean, so Restart=on-failure
 * would not bring the worker back: a stray `kill -HUP` (logrotate, a closed
 * terminal, an operator expecting a reload) would stop the history silently.
 * walrev does not reload its configuration, so `run` says so and goes on.
 */
static void on_hup_signal(int sig)
{
    (void)sig;
    signal_warn("SIGHUP ignored: walrev does not reload its configuration; "
                "restart it to apply a change (SIGTERM stops it cleanly)");
}

/* SIGTERM/SIGINT only set a flag the loop polls; without SA_RESTART a blocked
 * poll() returns EINTR so the loop sees the flag at once. With hup, SIGHUP is
 * logged and otherwise ignored (`walrev run`). */
static void install_stop_handlers(bool hup)
{
    struct sigaction sa;
    stop_log_journal = wr_log_to_journal();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (hup) {
        struct sigaction hsa;
        memset(&hsa, 0, sizeof(hsa));
        hsa.sa_handler = on_hup_signal;
        sigemptyset(&hsa.sa_mask);
        hsa.sa_flags = SA_RESTART;
        sigaction(SIGHUP, &hsa, NULL);
    }
}

/* Setup's hook: the slot and its baseline, through the sinks. */
static int setup_create_slot(const void *arg, bool baseline, bool *created)
{
    return pipeline_create_slot(arg, baseline, created);
}

/* `walrev setup` with what it reads of cfg. */
static int run_setup(const Config *cfg, SetupOptions *opts)
{
    SetupConfig sc = {.source_conninfo = cfg->source_conninfo,
                      .slot_name = cfg->slot_name,
                      .publication = cfg->publication,
                      .tables = cfg->tables,
                      .ntables = cfg->ntables,
                      .history_enabled = cfg->history_enabled,
                      .history_conninfo = cfg->history_conninfo,
                      .history_schema = cfg->history_schema,
                      .partition_revisions = cfg->partition_revisions};
    opts->create_slot = setup_create_slot;
    opts->create_slot_arg = cfg;
    return setup_command(&sc, opts);
}

/* `walrev tail` with what it takes of cfg ([kafka]); argv[0] is the command name. */
static int run_tail(int argc, char **argv, const Config *cfg)
{
    const char **names = xcalloc((size_t)cfg->nkafka_props + 1, sizeof(char *));
    const char **values = xcalloc((size_t)cfg->nkafka_props + 1, sizeof(char *));
    for (int i = 0; i < cfg->nkafka_props; i++) {
        names[i] = cfg->kafka_props[i].name;
        values[i] = cfg->kafka_props[i].value;
    }
    TailConfig tc = {.topic_prefix = cfg->kafka_topic_prefix,
                     .prop_names = names,
                     .prop_values = values,
                     .nprops = cfg->nkafka_props,
                     .stop = &pipeline_stop_requested};
    int rc = tail_command(argc, argv, &tc);
    free(names);
    free(values);
    return rc;
}

/* While a new slot waits for open transactions: systemd's watchdog is fed
 * and told why, and a stop ends the wait. */
static bool slot_waiting(void)
{
    static int64_t last_us;
    int64_t now = mono_now_us();
    if (now - last_us >= 1000000) {
        notify_watchdog();
        notify_status("creating the replication slot: waiting for the transactions open now to end");
        last_us = now;
    }
    return !pipeline_stop_requested;
}

/* `walrev run`: the metrics endpoint (when configured) around the pipeline.
 * An address that cannot be bound ends the run before it streams. */
static int run_worker(const Config *cfg)
{
    MetricsServer *ms = NULL;
    metrics_set_build_info(WALREV_VERSION);
    if (cfg->metrics_listen) {
        WrError err;
        if (metrics_server_start(cfg->metrics_listen, &ms, &err) != WR_OK) {
            log_error("msg=\"%s\" status=%s", err.msg, wr_status_name(err.status));
            return 1;
        }
        log_info("msg=\"serving metrics\" url=http://%s/metrics", metrics_server_address(ms));
    }
    int rc = pipeline_run(cfg) == 0 ? 0 : 1;
    metrics_server_stop(ms);
    return rc;
}

static bool has_arg(int argc, char **argv, const char *arg)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], arg) == 0) return true;
    return false;
}

static int run_command(const Command *c, int argc, char **argv, Options *o)
{
    Config cfg;
    int rc = build_config(&cfg, o);
    if (rc) goto out;
    pgio_configure(&cfg.pgio); /* before any connection or thread */
    ReplStreamOptions stream_opts = {.slot_wait_s = cfg.slot_create_timeout_s, .waiting = slot_waiting};
    repl_stream_configure(&stream_opts);
    /* the context attestation key must never become history (docs/threat-model.md) */
    tracking_set_private_table(cfg.tracking, cfg.history_schema, "context_key");

    switch (c->kind) {
    case CMD_SETUP: rc = run_setup(&cfg, &o->setup); break;
    case CMD_RUN:
        if (!cfg.history_enabled && !cfg.file_path && !cfg.kafka_enabled) {
            fprintf(stderr, "walrev run: nothing to write to: the history store is off and no "
                            "file or Kafka sink is configured\n");
            rc = EXIT_USAGE;
            break;
        }
        install_stop_handlers(true);
        rc = run_worker(&cfg);
        break;
    case CMD_RULES: {
        StrBuf out;
        strbuf_init(&out);
        tracking_describe(cfg.tracking, &out);
        /* strict mode's policy, when on: application names and bindings, never a key */
        ContextStrict strict;
        const ContextStrict *sp = config_strict(&cfg, &strict);
        if (sp) context_strict_describe(sp, &out);
        fputs(out.data ? out.data : "", stdout);
        strbuf_free(&out);
        rc = 0;
        break;
    }
    case CMD_BASELINE: {
        BaselineConfig bcfg;
        pipeline_baseline_config(&cfg, &bcfg);
        rc = backfill_command(&bcfg, o->tables, o->ntables, o->format, o->null_text);
        break;
    }
    case CMD_STATUS: {
        StatusTarget st;
        pipeline_status_target(&cfg, &st);
        optind = 0;
        rc = status_command(&st, argc, argv);
        break;
    }
    case CMD_TAIL: /* reads Kafka or a file-sink file: no database needed */
        install_stop_handlers(false);
        optind = 0;
        rc = run_tail(argc, argv, &cfg);
        break;
    case CMD_REPLAY: {
        if (strcmp(c->name, "verify") == 0 && has_arg(argc, argv, "--against-source")) {
            BaselineConfig vcfg;
            pipeline_baseline_config(&cfg, &vcfg);
            rc = reconcile_command(&vcfg, cfg.slot_name, argc, argv);
            break;
        }
        optind = 0;
        ReplayOptions ro = {.history_conninfo = cfg.history_conninfo,
                            .source_conninfo = cfg.source_conninfo,
                            .schema = cfg.history_schema,
                            .required_approvals = cfg.required_approvals};
        rc = replay_command(c->name, argc, argv, &ro);
        break;
    }
    }
out:
    config_term(&cfg);
    return rc;
}

/*
 * At exit, on every path: output that could not be written (a full disk, an
 * I/O error) fails the command, exit 1 with the reason, so a snapshot or log
 * cut short is never taken for a whole one. A pipe or socket is left alone:
 * its reader went away (walrev log | head) and has what it wanted; a
 * reader that writes a file reports its own errors.
 */
static void check_stdout(void)
{
    errno = 0;
    bool failed = fflush(stdout) != 0 || ferror(stdout);
    if (!failed) return;
    int why = errno; /* 0 when an earlier write failed: stdio keeps the flag, not the reason */
    struct stat sb;
    if (why == EPIPE || (fstat(STDOUT_FILENO, &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))) return;
    fprintf(stderr, "walrev: cannot write the output (standard output): %s\n",
            why ? strerror(why) : "a write failed (disk full or an I/O error)");
    _exit(1);
}

int main(int argc, char **argv)
{
    Options o;
    memset(&o, 0, sizeof(o));
    /* A closed stdout pipe (walrev log | head) must be an error, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    atexit(check_stdout);

    int rc = parse_options(argc, argv, NULL, global_options, &o);
    if (rc) exit(rc);
    if (o.version) {
        printf("walrev %s\n", WALREV_VERSION);
        exit(0);
    }
    if (optind >= argc) {
        if (o.help) {
            print_usage(stdout);
            exit(0);
        }
        print_usage(stderr);
        exit(EXIT_USAGE);
    }
    const char *name = argv[optind];
    const Command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0) cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "walrev: unknown command '%s'\nTry 'walrev --help'.\n", name);
        exit(EXIT_USAGE);
    }

    /* The command's own argv: argv[0] is its name. */
    int cargc = argc - optind;
    char **cargv = argv + optind;
    if (cmd->kind == CMD_TAIL || cmd->kind == CMD_REPLAY || cmd->kind == CMD_STATUS) {
        bool tail = cmd->kind == CMD_TAIL;
        rc = split_command_args(cmd->name,
                                tail                      ? tail_long_options
                                : cmd->kind == CMD_STATUS ? status_long_options
                                                          : replay_command_options(cmd->name),
                                tail ? TAIL_SHORT_OPTIONS : NULL, cargc, cargv, &o);
        if (rc) exit(rc);
        cargc = o.cmd_argc;
        cargv = o.cmd_argv;
    }
    if (cmd->kind == CMD_SETUP || cmd->kind == CMD_RUN || cmd->kind == CMD_RULES || cmd->kind == CMD_BASELINE) {
        optind = 0; /* glibc: restart getopt from scratch on a new argv */
        const struct option *lo = cmd->kind == CMD_SETUP      ? setup_options
                                  : cmd->kind == CMD_RUN      ? run_options
                                  : cmd->kind == CMD_BASELINE ? baseline_options
                                                              : global_options;
        rc = parse_options(cargc, cargv, cmd->name, lo, &o);
        if (rc) exit(rc);
        if (optind < cargc) exit(usage_error(cmd->name, "unexpected argument", cargv[optind]));
    }
    if (o.help) { /* before the configuration is read: help needs no database and no file */
        print_command_help(cmd->name, stdout);
        exit(0);
    }
    if (o.version) {
        printf("walrev %s\n", WALREV_VERSION);
        exit(0);
    }
    rc = run_command(cmd, cargc, cargv, &o);
    free(o.tables);
    free(o.cmd_argv);
    for (int i = 0; i < o.nmade; i++) free(o.made[i]);
    free(o.made);
    exit(rc);
}
